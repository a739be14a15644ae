"""Learning curves (``-O probe_every=N``) and per-term loss logging of pretraining (issue 23 item 4)."""

from __future__ import annotations

import json

import numpy as np
import torch

from test_pretrain import make, semisupcon, state_of, train


def events(run_dir, kind):
    return [e for e in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if e["event"] == kind]


def test_probe_every_logs_a_curve_with_the_expected_steps_and_finite_values(tiny_task, tmp_path):
    from bench.pretrain.curves import PLOT_FILE, load_curves

    enc, recipe = semisupcon(steps=5, probe_every=2, log_every=1)
    r = train((enc, recipe), tiny_task, tmp_path / "run")
    probes = events(tmp_path / "run", "probe")
    assert [(p["step"], p["task"], p["metric"]) for p in probes] == [(s, "tiny", "roc_auc") for s in (0, 2, 4, 5)]
    assert all(np.isfinite(p["value"]) and 0 <= p["value"] <= 1 for p in probes)
    assert r.record["probe_curve"] == [{k: p[k] for k in ("step", "task", "metric", "value")} for p in probes]
    assert r.record["probe"]["tasks"]["tiny"] == {"metric": "roc_auc", "train_tracks": 6, "valid_tracks": 2}
    assert (tmp_path / "run" / PLOT_FILE).stat().st_size > 1000
    assert [s for s, _ in load_curves(tmp_path / "run").probe["tiny"]] == [0, 2, 4, 5]
    assert not enc.module.training  # the trained encoder is left in eval mode, as without probes


def test_probing_changes_no_weight_bit(tiny_task, tmp_path):
    """Eval-mode extraction, no random draw: the same weights with and without probes, bit for bit."""
    runs = {}
    for every in (0, 1):
        enc, recipe = semisupcon(steps=4, probe_every=every, augment=True)
        train((enc, recipe), tiny_task, tmp_path / f"every{every}")
        runs[every] = state_of(enc)
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert events(tmp_path / "every1", "probe") and not events(tmp_path / "every0", "probe")


def test_probe_every_off_keeps_checkpoint_keys_and_is_checked():
    import pytest

    from bench.encoder import Recipe
    from bench.errors import BenchError

    base = Recipe(steps=3, batch_size=4, lr=1e-3)
    assert "probe_every" not in base.key_dict() and "probe_every" not in base.identity()
    assert base.replace(probe_every="5").key_dict()["probe_every"] == 5
    with pytest.raises(BenchError, match="probe_every"):
        base.replace(probe_every=-1)


def test_contrastive_terms_add_up_to_the_loss_and_are_logged(tiny_task, tmp_path):
    enc, recipe = semisupcon(steps=3, log_every=1)
    train((enc, recipe), tiny_task, tmp_path / "run")
    lines = events(tmp_path / "run", "train")
    assert len(lines) == 3
    for e in lines:
        t = e["terms"]
        assert set(t) == {"view", "label", "label_pairs_per_anchor"}
        assert t["view"] + t["label"] == pytest_approx(e["loss"])
    assert any(e["terms"]["label"] > 0 for e in lines)  # the tiny task's clips share tags


def pytest_approx(x):
    import pytest

    return pytest.approx(x, rel=1e-4, abs=1e-5)


def test_simclr_has_only_the_view_term_and_supervised_one_term_per_task(tiny_two_tasks, tmp_path):
    from bench_plugins.ssl_encoders import SimCLREncoder, SupervisedEncoder

    train(make(SimCLREncoder, unlabeled_tasks=("tiny",), augment=False, steps=2, log_every=1), tiny_two_tasks,
          tmp_path / "sim")
    for e in events(tmp_path / "sim", "train"):
        assert set(e["terms"]) == {"view"} and e["terms"]["view"] == pytest_approx(e["loss"])
    train(make(SupervisedEncoder, label_task="tiny,tinyclass", steps=4, log_every=1, labeled_mix="row"),
          tiny_two_tasks, tmp_path / "sup")
    for e in events(tmp_path / "sup", "train"):
        t = e["terms"]
        assert set(t) <= {"bce:tiny", "ce:tinyclass"} and t
        assert np.mean(list(t.values())) == pytest_approx(e["loss"])  # the loss is the mean over the tasks


def test_a_third_party_encoder_without_terms_still_trains(tiny_task, tmp_path):
    from bench_plugins.ssl_encoders import SemiSupConEncoder

    from bench.encoder import TrainableEncoder

    class Plain(SemiSupConEncoder):
        loss_terms = TrainableEncoder.loss_terms  # the contract's default: no terms

    enc, recipe = make(Plain, label_task="tiny", unlabeled_tasks=("tiny",), augment=False, steps=2)
    train((enc, recipe), tiny_task, tmp_path / "run")
    assert all("terms" not in e for e in events(tmp_path / "run", "train"))


def test_plot_curves_draws_several_runs_side_by_side(tiny_task, tmp_path):
    from bench.pretrain.curves import load_curves, plot_curves

    for name in ("a", "b"):
        enc, recipe = semisupcon(steps=2, probe_every=1, seed=1 if name == "a" else 2)
        train((enc, recipe), tiny_task, tmp_path / name)
    # a resumed run's log can repeat a step: the last line wins
    with (tmp_path / "a" / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"event": "probe", "step": 2, "task": "tiny", "metric": "roc_auc", "value": 0.25}) + "\n")
    c = load_curves(tmp_path / "a")
    assert [s for s, _ in c.probe["tiny"]] == [0, 1, 2] and c.probe["tiny"][-1] == (2, 0.25)
    out = plot_curves({"a": tmp_path / "a", "b": tmp_path / "b"}, tmp_path / "side.png")
    assert out is not None and out.stat().st_size > 1000
    assert plot_curves({"none": tmp_path / "missing"}, tmp_path / "none.png") is None
    # the same curves again: the same bytes from the render cache, without matplotlib (a warm `bench reproduce`)
    import sys

    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "matplotlib", None)  # importing it now raises
        mp.setitem(sys.modules, "matplotlib.pyplot", None)
        again = plot_curves({"a": tmp_path / "a", "b": tmp_path / "b"}, tmp_path / "again.png")
        assert again is not None and again.read_bytes() == out.read_bytes()
        with pytest.raises(ImportError):
            plot_curves({"a": tmp_path / "a"}, tmp_path / "other.png")  # other curves: drawn


def test_curves_of_a_record_fall_back_to_its_probe_curve(tmp_path):
    from bench.pretrain.curves import curves_of, plot_curves

    points = [{"step": s, "task": "t", "metric": "accuracy", "value": v} for s, v in ((5, 0.5), (0, 0.1))]
    c = curves_of({"run_dir": str(tmp_path / "gone"), "probe_curve": points})
    assert c.probe == {"t": [(0, 0.1), (5, 0.5)]} and c.metric == {"t": "accuracy"} and not c.terms
    assert c.probe_curve() == sorted(points, key=lambda p: p["step"])
    assert plot_curves({"x": c}, tmp_path / "x.png") is not None


def test_no_task_to_probe_trains_without_the_curve_and_says_so(tiny_task, tmp_path):
    from bench_plugins.ssl_encoders import SimCLREncoder

    folder = tmp_path / "data" / "tiny" / "train"
    r = train(make(SimCLREncoder, unlabeled_dirs=(str(folder),), augment=False, steps=2, probe_every=1), tiny_task,
              tmp_path / "run")
    assert "no classification task" in r.record["probe"]["off"] and "probe_curve" not in r.record
    assert not events(tmp_path / "run", "probe")


def test_a_curve_without_unlabeled_pool_covers_the_tasks_of_all_not_every_registered_task():
    """supervised (no unlabeled pool): the curve falls back to `--tasks all`; every registered task meant building
    the demo data of eight more tasks (10 minutes of a supervised job in `bench reproduce`)."""
    from bench import plugins
    from bench.pretrain.pools import PoolPlan
    from bench.pretrain.probing import probe_task_names

    every, main_tasks = plugins.tasks().names(), plugins.tasks().resolve("all")
    assert set(main_tasks) < set(every)  # the extended tasks are registered too
    assert probe_task_names(PoolPlan(), None) == list(main_tasks)
    assert probe_task_names(PoolPlan(), ("gtzan",)) == ["gtzan"]
