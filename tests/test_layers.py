"""A stack of layers (Encoder.layers): extracted as one row per track, split per layer for the probes, checked
against the contract, and the per-layer curve rendered (bench.layers). The hf encoder's `-O layer=all` end to
end is in test_hf.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench import layers
from bench.encoder import Encoder, check_embeddings
from bench.errors import EncoderContractError
from bench.extract import Embeddings, extract
from bench.task import Item
from conftest import write_wav_array


class _Stack(Encoder):
    """Three 'layers' of two features each, elementwise on the samples (exact whatever the batch)."""

    name, sample_rate, window, dim, layers = "stack", 4000, 400, 2, 3

    def embed(self, waveforms):
        return torch.stack([waveforms[:, :2] * (i + 1) + waveforms[:, 100 + i: 102 + i] for i in range(3)], dim=1)


class _Layer(_Stack):
    """Layer ``i`` of :class:`_Stack` alone."""

    layers = 1

    def __init__(self, i: int) -> None:
        super().__init__()
        self.i = i

    def embed(self, waveforms):
        return _Stack.embed(self, waveforms)[:, self.i]


def _items(tmp_path, n=4):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        path = tmp_path / f"t{i}.wav"
        write_wav_array(path, rng.standard_normal(int((0.3 + 0.4 * i) * 4000)) * 0.1)
        items.append(Item(f"t{i}", str(path), 0))
    return items


def test_a_stack_is_one_row_per_track_and_each_layer_is_that_layer_alone(tmp_path):
    items = _items(tmp_path)
    enc = _Stack()
    assert enc.output_shape(5) == (5, 3, 2) and enc.row_size == 6
    out = extract(enc, items, batch_size=3, progress=False, keep_windows=True)
    out.key = "abc"
    assert out.X.shape == (4, 6) and out.window_X.shape[1] == 6
    parts = layers.split(out, 3)
    assert [p.key for p in parts] == ["abc#layer0", "abc#layer1", "abc#layer2"]  # one probe-cache entry per layer
    for i, part in enumerate(parts):
        alone = extract(_Layer(i), items, batch_size=3, progress=False, keep_windows=True)
        np.testing.assert_allclose(part.X, alone.X, atol=1e-6)
        np.testing.assert_allclose(part.window_X, alone.window_X, atol=1e-6)
        assert part.items == out.items and part.windows == out.windows
    with pytest.raises(ValueError, match="not 4 layers"):
        layers.split(out, 4)


def test_the_contract_checks_the_stack_shape():
    enc = _Stack()
    check_embeddings(enc, torch.zeros(2, 3, 2), 2)
    with pytest.raises(EncoderContractError, match=r"\[B, layers, dim\] = \[2, 3, 2\]"):
        check_embeddings(enc, torch.zeros(2, 6), 2)
    bad = torch.zeros(2, 3, 2)
    bad[1, 2, 0] = float("nan")
    with pytest.raises(EncoderContractError, match="for 1 of 2 windows"):
        check_embeddings(enc, bad, 2)


def _rec(seed, chosen, valid, test, variant="hf[layer=all]"):
    curve = [{"layer": i, "valid": v, "test": t} for i, (v, t) in enumerate(zip(valid, test))]
    return {"variant": variant, "task": "gtzan", "condition": "clean", "seed": seed, "primary_metric": "accuracy",
            "metrics": {"accuracy": test[chosen]},
            "layers": {"count": len(curve), "chosen": chosen, "metric": "accuracy", "chosen_on": "valid accuracy",
                       "curve": curve}}


def test_the_curve_of_a_run_is_the_mean_over_seeds_with_the_chosen_layers(tmp_path):
    recs = [_rec(0, 1, [0.2, 0.6, 0.5], [0.25, 0.55, 0.6]), _rec(1, 2, [0.2, 0.5, 0.7], [0.35, 0.45, 0.7]),
            {"variant": "logmel", "task": "gtzan", "condition": "clean", "metrics": {}}]
    [c] = layers.curves(recs)
    assert c["chosen"] == [1, 2] and c["score"] == pytest.approx((0.55 + 0.7) / 2)
    assert [r["test"] for r in c["rows"]] == pytest.approx([0.3, 0.5, 0.65])
    assert [r["valid"] for r in c["rows"]] == pytest.approx([0.2, 0.55, 0.6])
    files = layers.write(recs, tmp_path)
    text = files["layers_markdown"].read_text()
    assert "| 1 | 0.5500 | 0.5000 | * |" in text and "| 0 | 0.2000 | 0.3000 |  |" in text
    assert files["layers_png"].read_bytes()[:4] == b"\x89PNG"
    assert layers.write(recs[2:], tmp_path / "none") == {}  # no stack, no files


def test_record_field_gives_each_condition_its_own_test_curve():
    from bench.settings import Evaluation

    choice = layers.LayerChoice(Evaluation(0, None, {}, {}), {}, {}, 1,
                                [{"layer": 0, "valid": 0.1, "valid_loss": 1.0, "test": {"clean": 0.2, "noise": 0.1}},
                                 {"layer": 1, "valid": 0.3, "valid_loss": 0.9, "test": {"clean": 0.4, "noise": 0.3}}])
    assert layers.record_field(choice, "accuracy", "noise")["curve"] == [
        {"layer": 0, "valid": 0.1, "test": 0.1}, {"layer": 1, "valid": 0.3, "test": 0.3}]
    assert layers.record_field(layers.LayerChoice(Evaluation(0, None, {}, {}), {}, {}), "accuracy") is None


def test_empty_embeddings_split_too():
    emb = Embeddings([], np.zeros((0, 6), np.float32))
    assert [p.X.shape for p in layers.split(emb, 3)] == [(0, 2)] * 3


def test_the_layer_is_chosen_on_validation_ties_by_loss_then_the_lower_layer(monkeypatch):
    """Validation metric first (NaN last), then the lower validation loss, then the lower layer; test scores
    never take part."""
    from types import SimpleNamespace

    from bench import run
    from bench.probe import ProbeResult, SelectedProbe
    from bench.settings import Evaluation

    def fake(valid, loss, test):
        def evaluate(data, embs, settings, seed, conditions=None):
            i = int(embs["train"].key.rsplit("layer", 1)[1])
            sel = SelectedProbe(ProbeResult(np.zeros((1, 1)), loss[i], 0, 1, 0.0), 1e-3, 0.0,
                                [{"lr": 1e-3, "weight_decay": 0.0, "valid_score": valid[i]}], "accuracy")
            return Evaluation(seed, sel, {"clean": {"accuracy": test[i]}}, {"clean": {}})
        return evaluate

    data = SimpleNamespace(task=SimpleNamespace(primary_metric="accuracy"))
    embs = {s: Embeddings([], np.zeros((0, 8), np.float32), key=s) for s in ("train", "valid", "test")}
    cases = [([0.5, 0.7, 0.7, 0.1], [1.0, 0.9, 0.8, 0.5], 2),   # tie on valid: the lower loss
             ([0.5, 0.7, 0.7, None], [1.0, 0.9, 0.9, 0.1], 1),  # full tie: the lower layer; no score ranks last
             ([None, None, None, None], [1.0, 0.4, 0.9, 0.6], 1)]
    for valid, loss, want in cases:
        monkeypatch.setattr(run, "evaluate", fake(valid, loss, [0.9, 0.1, 0.2, 0.99]))
        choice = layers.evaluate(data, embs, None, 0, {}, 4)
        assert choice.layer == want and choice.embeddings["test"].key == f"test#layer{want}"
        assert [p["test"]["clean"] for p in choice.curve] == [0.9, 0.1, 0.2, 0.99]
