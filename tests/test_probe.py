"""Probes: determinism, grid selection on validation, early stopping, grid parsing."""

from __future__ import annotations

import numpy as np
import pytest

from bench import metrics
from bench.errors import BenchError
from bench.probe import GRIDS, ProbeConfig, parse_grid, select_probe, targets, train_probe


def blobs(n: int, d: int = 16, c: int = 4, seed: int = 0, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(size=(c, d)) * 2.0
    y = rng.integers(0, c, n)
    X = (centers[y] + noise * rng.normal(size=(n, d))).astype(np.float32)
    return X, y


def split3(seed=0):
    Xtr, ytr = blobs(120, seed=seed)
    Xva, yva = blobs(40, seed=seed + 1)
    Xte, yte = blobs(60, seed=seed + 2)
    return Xtr, ytr, Xva, yva, Xte, yte


def acc_score(y, s):
    return {"accuracy": metrics.accuracy(y, s)}


@pytest.mark.parametrize("head", ["mlp", "linear"])
def test_same_seed_same_result_different_seed_differs(head):
    Xtr, ytr, Xva, yva, Xte, _ = split3()
    conf = ProbeConfig(head=head, max_epochs=15, hidden=32)
    a = train_probe(Xtr, ytr, Xva, yva, Xte, kind="multiclass", n_classes=4, config=conf, seed=3)
    b = train_probe(Xtr, ytr, Xva, yva, Xte, kind="multiclass", n_classes=4, config=conf, seed=3)
    c = train_probe(Xtr, ytr, Xva, yva, Xte, kind="multiclass", n_classes=4, config=conf, seed=4)
    assert np.array_equal(a.test_scores, b.test_scores)
    assert a.valid_loss == b.valid_loss and a.best_epoch == b.best_epoch
    assert not np.array_equal(a.test_scores, c.test_scores)


def test_select_probe_is_deterministic_and_records_the_grid():
    Xtr, ytr, Xva, yva, Xte, _ = split3()
    conf = ProbeConfig(max_epochs=10, hidden=32)
    kw = dict(kind="multiclass", n_classes=4, config=conf, grid=GRIDS["default"], seed=0, score_fn=acc_score,
              metric="accuracy")
    a = select_probe(Xtr, ytr, Xva, yva, Xte, **kw)
    b = select_probe(Xtr, ytr, Xva, yva, Xte, **kw)
    assert np.array_equal(a.result.test_scores, b.result.test_scores)
    assert [(g["lr"], g["weight_decay"]) for g in a.grid] == GRIDS["default"]
    assert all(g["valid_score"] is not None and g["valid_loss"] is not None for g in a.grid)


def test_grid_choice_is_the_best_validation_score():
    """A learning rate too small to learn anything in 5 epochs must lose to a sensible one."""
    Xtr, ytr, Xva, yva, Xte, _ = split3()
    conf = ProbeConfig(head="linear", max_epochs=5)
    sel = select_probe(Xtr, ytr, Xva, yva, Xte, kind="multiclass", n_classes=4, config=conf,
                       grid=[(1e-9, 0.0), (1e-2, 0.0)], seed=0, score_fn=acc_score, metric="accuracy")
    scores = [g["valid_score"] for g in sel.grid]
    assert scores[1] > scores[0]
    assert sel.lr == 1e-2 and sel.selection_metric == "accuracy"
    # the tested scores are those of the chosen point
    alone = train_probe(Xtr, ytr, Xva, yva, Xte, kind="multiclass", n_classes=4,
                        config=ProbeConfig(head="linear", max_epochs=5, lr=1e-2, weight_decay=0.0), seed=0)
    assert np.array_equal(sel.result.test_scores, alone.test_scores)


def test_undefined_validation_metric_falls_back_to_validation_loss():
    Xtr, ytr, Xva, yva, Xte, _ = split3()
    conf = ProbeConfig(head="linear", max_epochs=5)
    sel = select_probe(Xtr, ytr, Xva, yva, Xte, kind="multiclass", n_classes=4, config=conf,
                       grid=[(1e-9, 0.0), (1e-2, 0.0)], seed=0, score_fn=lambda y, s: {"m": float("nan")},
                       metric="m")
    assert sel.lr == 1e-2  # lower validation loss
    assert all(g["valid_score"] is None for g in sel.grid)


def test_early_stopping_and_best_epoch():
    Xtr, ytr, Xva, yva, Xte, _ = split3()
    conf = ProbeConfig(max_epochs=300, patience=3, lr=1e-2, hidden=64)
    r = train_probe(Xtr, ytr, Xva, yva, Xte, kind="multiclass", n_classes=4, config=conf, seed=0)
    assert r.epochs < 300 and r.epochs - r.best_epoch <= 3 and r.best_epoch >= 1


def test_global_torch_rng_is_left_alone():
    import torch

    Xtr, ytr, Xva, yva, Xte, _ = split3()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_probe(Xtr, ytr, Xva, yva, Xte, kind="multiclass", n_classes=4,
                config=ProbeConfig(max_epochs=2, hidden=8), seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_multilabel_probe_outputs_probabilities():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 8)).astype(np.float32)
    labels = [tuple(np.flatnonzero(row > 0.8)) for row in X[:, :3]]
    y = targets(labels, 3, "multilabel")
    r = train_probe(X[:60], y[:60], X[60:75], y[60:75], X[75:], kind="multilabel", n_classes=3,
                    config=ProbeConfig(max_epochs=5, hidden=16), seed=0)
    assert r.test_scores.shape == (15, 3) and (r.test_scores >= 0).all() and (r.test_scores <= 1).all()


def test_parse_grid():
    assert parse_grid("fast") == [(3e-4, 1e-6)]
    assert parse_grid("default") == GRIDS["default"] and len(GRIDS["default"]) == 4
    assert parse_grid("lr=1e-3,3e-4;wd=0,1e-4") == [(1e-3, 0.0), (1e-3, 1e-4), (3e-4, 0.0), (3e-4, 1e-4)]
    assert parse_grid("lr=1e-3") == [(1e-3, 1e-6)]
    for bad in ("fastest", "lr=abc", "wd=1e-4", "lr=-1", "lr=1e-3;x=2"):
        with pytest.raises(BenchError, match="--probe-grid"):
            parse_grid(bad)


def test_run_records_carry_grid_and_interval(tmp_path, monkeypatch):
    """One record per seed, each with the chosen grid point, every grid point's validation score and a CI."""
    import json

    from bench.cli import main

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    rc = main(["run", "--encoder", "logmel", "--tasks", "nsynth_pitch", "--demo-size", "tiny", "--seeds", "0,1",
               "--probe-grid", "lr=1e-3,3e-4;wd=1e-6", "--no-progress", "--out", str(tmp_path / "out")])
    assert rc == 0
    recs = [json.loads((tmp_path / "out" / "records" / f"logmel__nsynth_pitch__seed{s}.json").read_text())
            for s in (0, 1)]
    for r in recs:
        assert len(r["probe"]["grid"]) == 2 and r["probe"]["lr"] in (1e-3, 3e-4)
        assert r["probe"]["selection_metric"] == "accuracy"
        ci = r["confidence"]
        assert ci["metric"] == "accuracy" and ci["n_boot"] == 1000 and len(ci["values"]) == 1000
        assert ci["lo"] <= r["metrics"]["accuracy"] <= ci["hi"]
    # same config and seed, same machine: identical metrics
    rc = main(["run", "--encoder", "logmel", "--tasks", "nsynth_pitch", "--demo-size", "tiny", "--seeds", "0",
               "--probe-grid", "lr=1e-3,3e-4;wd=1e-6", "--no-progress", "--out", str(tmp_path / "again")])
    again = json.loads((tmp_path / "again" / "records" / "logmel__nsynth_pitch__seed0.json").read_text())
    assert again["metrics"] == recs[0]["metrics"] and again["probe"]["grid"][0]["valid_loss"] == \
        recs[0]["probe"]["grid"][0]["valid_loss"]
