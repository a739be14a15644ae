"""Probing protocols: each one's settings reach the probe and the metric; records, cache and CLI carry them."""

from __future__ import annotations

import numpy as np
import pytest

from bench import metrics, protocols
from bench.errors import BenchError
from bench.probe import ProbeConfig, _head, train_probe
from bench.probe_data import ProbeData, WindowSet, segments
from bench.run import make_task


def acc(y, s):
    return {"accuracy": metrics.accuracy(y, s)}


def windowed(n_tracks: int, per_track: int, d: int = 4, seed: int = 0) -> tuple[WindowSet, np.ndarray]:
    """Tracks whose windows are all different (window k of track t holds t*100 + k in every column)."""
    rng = np.random.default_rng(seed)
    counts = np.full(n_tracks, per_track)
    W = np.concatenate([np.repeat((t * 100 + np.arange(per_track))[:, None], d, 1) for t in range(n_tracks)])
    W = W.astype(np.float32) + 0.01 * rng.normal(size=W.shape).astype(np.float32)
    means = np.stack([W[t * per_track:(t + 1) * per_track].mean(0) for t in range(n_tracks)])
    return WindowSet(means, W, counts), (np.arange(n_tracks) % 2)


# -- the protocols' task settings reach the metric ---------------------------------------------------


def test_fifths_rule_changes_a_known_weighted_score():
    """C major estimated as F major (a fifth below): 0.5 under bench (both directions), 0 under the official
    code's and MARBLE's mir_eval default (a fifth above only); G major (a fifth above) is 0.5 everywhere."""
    from bench_tasks.giantsteps import KEY_NAMES

    c, f, g = KEY_NAMES.index("C major"), KEY_NAMES.index("F major"), KEY_NAMES.index("G major")
    y = np.array([c, c])
    scores = np.zeros((2, 24))
    scores[0, f] = scores[1, g] = 1.0
    got = {p: make_task("giantsteps_key", p).score(y, scores)["weighted_score"] for p in protocols.NAMES}
    assert got == {"bench": 0.5, "semisupcon": 0.25, "marble": 0.25}


def test_pitch_range_changes_the_class_count(tmp_path):
    counts = {p: len(make_task("nsynth_pitch", p).classes(tmp_path)) for p in protocols.NAMES}
    assert counts == {"bench": 88, "semisupcon": 112, "marble": 128}


def test_giantsteps_valid_split_follows_the_protocol():
    assert make_task("giantsteps_key", "semisupcon").settings == {"fifths": "ascending", "valid_fraction": 0.15,
                                                                 "valid_split": "track"}
    assert make_task("giantsteps_key", "bench").settings["valid_split"] == "artist"
    assert make_task("giantsteps_key", "marble").settings["valid_split"] == "marble"
    assert make_task("mtat", "marble").settings["drop_untagged"] is False
    assert make_task("mtat", "semisupcon").settings["drop_untagged"] is True


def test_probe_config_of_each_protocol():
    gs, mtat, ns = make_task("giantsteps_key"), make_task("mtat"), make_task("nsynth_pitch")
    b = protocols.get("bench").probe_config(gs)
    assert (b.head, b.standardise, b.bias, b.train_on, b.patience, b.monitor) == ("linear", True, True, "track", 10, "")
    s = protocols.get("semisupcon")
    c = s.probe_config(gs)
    assert (c.head, c.standardise, c.bias, c.train_on, c.lr, c.weight_decay, c.patience, c.max_epochs) == (
        "linear", False, False, "crop", 3e-4, 1e-6, 50, 200)
    assert c.replacement and c.drop_last and not s.uses_grid
    assert [s.probe_config(t).patience for t in (mtat, ns)] == [15, 2]
    assert s.window_splits(gs) == ("train", "valid")
    m = protocols.get("marble")
    g = m.probe_config(gs, window_seconds=59535 / 22050)
    assert (g.head, g.dropout, g.train_on, g.segment, g.monitor, g.weight_decay, g.plateau_patience) == (
        "mlp", 0.2, "segments", 11, "weighted_score", 0.0, 5)
    assert m.window_splits(gs) == ("train", "valid", "test") and m.window_splits(mtat) == ()
    assert m.probe_config(make_task("gtzan")).lr == 5e-3
    with pytest.raises(BenchError, match="window length"):
        m.probe_config(gs)
    with pytest.raises(BenchError, match="Did you mean 'marble'"):
        protocols.get("marbel")


def test_grid_refused_with_a_fixed_protocol():
    from bench.commands.common import check_protocol_grid

    assert check_protocol_grid("bench", None) == "default"
    assert check_protocol_grid("bench", "fast") == "fast"
    assert check_protocol_grid("semisupcon", None) == "default"
    with pytest.raises(BenchError, match="sets the probe's learning rate"):
        check_protocol_grid("semisupcon", "fast")
    with pytest.raises(BenchError, match="marble protocol sets"):
        check_protocol_grid("marble", "default")


# -- the probe -----------------------------------------------------------------------------------------


def test_heads_without_bias_and_with_dropout():
    lin = _head(ProbeConfig(head="linear", bias=False), 8, 3)
    mlp = _head(ProbeConfig(head="mlp", hidden=16, bias=False, dropout=0.2), 8, 3)
    assert lin.bias is None and all("bias" not in n for n, _ in mlp.named_parameters())
    assert [type(m).__name__ for m in mlp] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert [type(m).__name__ for m in _head(ProbeConfig(), 8, 3)] == ["Linear", "ReLU", "Linear"]


def test_no_standardisation_keeps_the_features():
    ws, y = windowed(6, 3)
    raw = ProbeData(ws.means, y, ws.means, y, ws.means, ProbeConfig(standardise=False))
    std = ProbeData(ws.means, y, ws.means, y, ws.means, ProbeConfig())
    assert np.allclose(raw.xtr.numpy(), ws.means)
    assert abs(float(std.xtr.mean())) < 1e-5


def test_crop_training_draws_different_windows_every_epoch(monkeypatch):
    """Each epoch draws one window per track (with replacement over tracks); the windows differ between
    epochs, lie inside their track, and validation sees fresh windows too."""
    ws, y = windowed(10, 8)
    seen: list[np.ndarray] = []
    orig = ProbeData.train_batch

    def spy(self, idx, crop_u=None):
        x, yy = orig(self, idx, crop_u)
        seen.append(np.round(x[:, 0].numpy()).astype(int))
        return x, yy

    monkeypatch.setattr(ProbeData, "train_batch", spy)
    conf = ProbeConfig(head="linear", train_on="crop", standardise=False, bias=False, replacement=True,
                       drop_last=True, max_epochs=4, patience=100, hidden=8)
    train_probe(ws, y, ws, y, ws.means, kind="multiclass", n_classes=2, config=conf, seed=0)
    assert len(seen) == 4  # 10 tracks < one batch of 64: one batch per epoch, kept
    picks = [sorted(p.tolist()) for p in seen]
    assert all(len(p) == 10 for p in picks) and picks[0] != picks[1] != picks[2]
    for p in seen:
        track, window = p // 100, p % 100
        assert ((window >= 0) & (window < 8)).all() and ((track >= 0) & (track < 10)).all()
    # the same seed draws the same crops
    seen.clear()
    train_probe(ws, y, ws, y, ws.means, kind="multiclass", n_classes=2, config=conf, seed=0)
    assert [sorted(p.tolist()) for p in seen] == picks


def test_segments_and_logits_averaged_per_track():
    W = np.arange(30, dtype=np.float32)[:, None]
    X, owner = segments(W, np.array([25, 5]), 11)
    assert owner.tolist() == [0, 0, 1]  # 25 windows: two whole segments (remainder dropped); 5: kept whole
    assert X[:, 0].tolist() == [5.0, 16.0, 27.0]
    ws = WindowSet(np.array([[12.0], [27.0]], np.float32), W, np.array([25, 5]))
    conf = ProbeConfig(head="linear", train_on="segments", segment=11, standardise=False, max_epochs=1)
    data = ProbeData(ws, np.array([0, 1]), ws, np.array([0, 1]), ws, conf)
    assert data.n_train() == 3
    import torch

    lin = torch.nn.Linear(1, 2)
    out = data.track_logits(lin, "test")
    with torch.no_grad():
        expect = torch.stack([lin(torch.tensor([[5.0], [16.0]])).mean(0), lin(torch.tensor([27.0]))])
    assert torch.allclose(out, expect)


def test_metric_monitor_needs_the_scorer_and_plateau_runs():
    ws, y = windowed(12, 2)
    conf = ProbeConfig(head="mlp", hidden=8, monitor="accuracy", plateau_patience=1, max_epochs=6, dropout=0.2)
    with pytest.raises(ValueError, match="needs the task's scorer"):
        train_probe(ws.means, y, ws.means, y, ws.means, kind="multiclass", n_classes=2, config=conf)
    a = train_probe(ws.means, y, ws.means, y, ws.means, kind="multiclass", n_classes=2, config=conf, score_fn=acc)
    b = train_probe(ws.means, y, ws.means, y, ws.means, kind="multiclass", n_classes=2, config=conf, score_fn=acc)
    assert np.array_equal(a.test_scores, b.test_scores)  # dropout is seeded


def test_bench_protocol_numbers_unchanged():
    """Golden values measured before protocols existed: the default probe gives the same scores."""
    from bench.probe import GRIDS, select_probe

    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 12)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    want = {"mlp": 13.814997851848602, "linear": -27.901349648833275}
    for head, total in want.items():
        r = select_probe(X[:120], y[:120], X[120:160], y[120:160], X[160:], kind="multiclass", n_classes=4,
                         config=ProbeConfig(head=head, max_epochs=20, hidden=16), grid=GRIDS["default"], seed=1,
                         score_fn=acc, metric="accuracy")
        assert float(np.float64(r.result.test_scores).sum()) == pytest.approx(total, rel=1e-6, abs=1e-5)
        assert (r.lr, r.weight_decay, r.result.best_epoch) == (1e-3, 1e-4, 20)


# -- the per-window cache entry ---------------------------------------------------------------------


def test_per_window_cache_entry_round_trip_and_checks(tmp_path):
    from bench.embedding_cache import EmbeddingCache
    from bench.keys import embeddings_key as make_key
    from bench.extract import Embeddings
    from bench.task import Item

    items = [Item(f"t{i}", f"/x/{i}.wav", 0) for i in range(3)]
    counts = np.array([2, 1, 3])
    W = np.arange(12, dtype=np.float32).reshape(6, 2)

    def extract(sub, label):
        means = np.stack([W[:2].mean(0), W[2:3].mean(0), W[3:].mean(0)])
        return Embeddings(list(sub), means, [], 6, 0.0, window_X=W.copy(), window_counts=counts.copy())

    kw = dict(encoder="e", encoder_config={}, weights="h", task="t", task_settings={}, split="train",
              data="f", max_windows=64, window=10, sample_rate=100)
    key = make_key(**kw, per_window=True)
    assert key.digest != make_key(**kw).digest and "per_window" not in make_key(**kw).fields["extraction"]
    cache = EmbeddingCache(tmp_path)
    _, status = cache.get_or_extract(key, items, extract, dim=2)
    emb, status2 = cache.get_or_extract(key, items, extract, dim=2)
    assert (status, status2) == ("miss", "hit")
    assert np.array_equal(emb.window_X, W) and emb.window_counts.tolist() == [2, 1, 3]
    import json

    meta = cache.entry_dir(key) / "meta.json"
    doc = json.loads(meta.read_text())
    doc["window_counts"] = [2, 2, 2]
    meta.write_text(json.dumps(doc))
    _, status3 = cache.get_or_extract(key, items, extract, dim=2)
    assert status3 == "rebuilt"


# -- records and the leaderboard --------------------------------------------------------------------


def record(encoder="a", task="mtat", protocol=None, demo=False, seed=0, value=0.8):
    rec = {"schema_version": 1, "encoder": encoder, "variant": encoder, "task": task, "seed": seed,
           "primary_metric": "roc_auc", "metrics": {"roc_auc": value, "average_precision": 0.3}, "demo_data": demo,
           "weights_hash": "w", "encoder_config": {}, "data": {"fingerprint": "fp"}, "created": "x",
           "confidence": None}
    if protocol:
        rec["protocol"] = protocol
    return rec


def test_leaderboard_refuses_to_mix_protocols_in_a_column():
    from bench import leaderboard

    recs = [record("a", protocol="semisupcon"), record("b")]
    with pytest.raises(BenchError, match="different probing protocols"):
        leaderboard.render(recs)
    text = leaderboard.render([record("a", protocol="marble"), record("b", protocol="marble")])
    assert "probing protocol marble" in text
    assert "probing protocol" not in leaderboard.render([record("a"), record("b", protocol="bench")])


def test_reference_rows_shown_beside_real_records_of_the_protocol_only(tmp_path):
    from bench import leaderboard

    real = [record("a", protocol="marble", value=0.9), record("b", protocol="marble", value=0.85)]
    text = leaderboard.render(real, reference="marble")
    assert "CLMR (published)" in text and "0.8950" in text and "Jukebox-5B (published)" in text
    # records without intervals: no row is bold (a published row never is: tests/test_report_context.py)
    assert "**" not in text
    assert "Shown for: mtat" in text
    files = leaderboard.write(real, tmp_path, reference="marble")
    assert "MusiCNN (published)" in files["csv"].read_text()
    # demo data: refused, and the table says why
    demo = [record("a", protocol="marble", demo=True)]
    text = leaderboard.render(demo, reference="marble")
    assert "(published)" not in text.split("Intervals")[0] and "demo data (published numbers" in text
    # another protocol: refused with the protocol to use
    text = leaderboard.render([record("a")], reference="marble")
    assert "(published)" not in text.split("Intervals")[0] and "run with --protocol marble" in text
    # CLMR's README rows go beside semisupcon records, on MTAT only
    text = leaderboard.render([record("a", protocol="semisupcon")], reference="clmr")
    assert "CLMR SampleCNN, MLP head (published)" in text and "0.8930" in text


def test_cli_protocol_option(capsys, tmp_path):
    from bench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "--encoder", "logmel", "--protocol", "nope", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
    code = main(["run", "--encoder", "logmel", "--protocol", "semisupcon", "--probe-grid", "fast",
                 "--out", str(tmp_path)])
    assert code == 2 and "sets the probe's learning rate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["leaderboard", str(tmp_path), "--reference", "mert"])
