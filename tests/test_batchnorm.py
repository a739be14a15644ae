"""``--official-batchnorm`` (bench/batchnorm.py): BatchNorm statistics re-estimated on the task's train windows,
the pretrained ones put back after, other keys for the embeddings, records that say so."""

from __future__ import annotations

import numpy as np


def _prep_and_data(tiny_task, tmp_path, official: bool, encoder: str = "random", batch_size: int = 10_000):
    from bench import plugins
    from bench.run import index_task, prepare_encoder
    from bench.settings import EvalSettings, RunConfig

    settings = EvalSettings(out=tmp_path / "out", data_roots=tiny_task, probe_grid="fast", progress=False,
                            batch_size=batch_size, official_batchnorm=official)
    options = {"preset": "tiny"} if encoder == "random" else {}
    config = RunConfig(encoders=[encoder], tasks=["tiny"], settings=settings, encoder_options=options)
    prep = prepare_encoder(encoder, config)
    prep.encoder.to("cpu").eval()
    return prep, index_task(plugins.get_task("tiny"), tiny_task), settings


def test_statistics_are_the_train_windows_and_the_pretrained_ones_come_back(tiny_task, tmp_path):
    import torch

    from bench import batchnorm
    from bench.extract import extract
    from bench.run import embed

    prep, data, settings = _prep_and_data(tiny_task, tmp_path, official=True)
    bns = batchnorm.layers(prep.encoder.module)
    assert bns, "the tiny SampleCNN has BatchNorm layers"
    before = {k: v.clone() for k, v in prep.encoder.module.state_dict().items()}
    # what the first BatchNorm layer sees of the train windows (nothing before it normalises): its statistics
    # after the re-estimate, all windows in one batch, are their mean and unbiased variance per channel
    seen: list[torch.Tensor] = []
    hook = bns[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    extract(prep.encoder, data.splits["train"].items, batch_size=10_000, max_windows=data.task.max_windows,
            progress=False)
    hook.remove()
    x = torch.cat(seen).transpose(0, 1).reshape(bns[0].num_features, -1)
    with batchnorm.adapted(prep, data, device="cpu", batch_size=10_000) as weights:
        assert weights != prep.weights_hash
        assert torch.allclose(bns[0].running_mean, x.mean(1), atol=1e-5)
        assert torch.allclose(bns[0].running_var, x.var(1, unbiased=True), rtol=1e-4, atol=1e-6)
        assert not prep.encoder.module.training and not bns[0].training
    after = prep.encoder.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the pretrained statistics are back
    assert bns[0].momentum == 0.1

    # the embeddings differ from the eval-mode ones, under another key; the adapted statistics are reused
    on, status_on = embed(prep, data, settings)
    prep_off, _, off_settings = _prep_and_data(tiny_task, tmp_path, official=False)
    off, status_off = embed(prep_off, data, off_settings)
    assert status_on["test"]["key"] != status_off["test"]["key"]
    assert not np.allclose(on["test"].X, off["test"].X)
    again, status_again = embed(prep, data, settings)
    assert status_again["test"]["status"] == "hit" and np.array_equal(again["test"].X, on["test"].X)


def test_an_encoder_without_batchnorm_keeps_its_keys_and_records_say_the_option(tiny_task, tmp_path, capsys,
                                                                               monkeypatch):
    from bench import batchnorm
    from bench.cli import main

    # the in-process memo of adapted statistics: an earlier test of the suite may have adapted the same
    # seeded weights on the same tiny data, and then nothing is re-estimated (or logged) here
    monkeypatch.setattr(batchnorm, "_ADAPTED", {})

    prep, data, _ = _prep_and_data(tiny_task, tmp_path, official=True, encoder="logmel")
    assert not batchnorm.layers(prep.encoder.module)
    with batchnorm.adapted(prep, data, device="cpu", batch_size=32) as weights:
        assert weights == prep.weights_hash
    out = tmp_path / "run"
    assert main(["run", "--encoder", "random", "-O", "preset=tiny", "--tasks", "tiny", "--seeds", "0",
                 "--probe-grid", "fast", "--official-batchnorm", "--out", str(out)]) == 0
    import json

    recs = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert recs and all(r["official_batchnorm"] is True for r in recs)
    assert "re-estimating" in capsys.readouterr().err
    assert json.loads((out / "run_config.json").read_text())["official_batchnorm"] is True
