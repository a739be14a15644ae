"""The plan `bench run` prints first (bench.plan): per encoder pretraining, extraction, probing and what is
cached, with estimates only from what was measured here (or a stated default), each saying its source."""

import json
from pathlib import Path

import pytest

from bench import plan
from bench.config import DataRoots
from bench.settings import EvalSettings, RunConfig


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _config(encoders=("logmel",), tasks=("gtzan", "mtat"), seeds=(0,), limit=None, root=None, device="cpu",
            options=None):
    return RunConfig(list(encoders), list(tasks),
                     EvalSettings(out=Path("."), data_roots=DataRoots(str(root) if root else None), seeds=seeds,
                                  limit=limit, device=device), encoder_options=dict(options or {}))


def _text(config):
    return "\n".join(plan.describe(config))


def _rec(task, seed, extract_s, probe_s, encoder="logmel", tracks=None, cache="miss", **extra):
    return {"encoder": encoder, "variant": encoder, "task": task, "condition": "clean", "seed": seed,
            "timings": {"extract_s": extract_s, "probe_s": probe_s}, "device": "cpu",
            "data": {"tracks": {"train": tracks or 0}}, "cache": {"train": cache}, **extra}


def test_no_estimate_without_a_measurement_then_one_from_the_records():
    text = _text(_config())
    assert "extraction: not estimated for gtzan, mtat (not run here before" in text
    assert text.endswith("no estimate of the whole (not estimated: logmel extraction of 2 task(s); "
                         "logmel probing of 2 task(s))")
    cfg = _config()
    # reused records measured nothing; another --limit is another pair
    plan.observe([_rec("gtzan", 0, 500.0, 1.0, reused={"from": "x"}), _rec("mtat", 0, 9.0, 1.0, limit=8)], cfg)
    assert "not estimated for gtzan, mtat" in _text(cfg)
    plan.observe([_rec("gtzan", s, 100.0, 10.0) for s in (0, 1, 2)], cfg)
    lines = list(plan.describe(_config(seeds=(0, 1, 2, 3, 4, 5))))  # 100 s + 6 x 10 s
    assert lines[2] == "    extraction: about 2 min (gtzan about 2 min); not estimated for mtat (not run here before: " \
                       "the tracks are counted when it is indexed); less where embeddings are cached"
    assert lines[3].startswith("    probing (6 seed(s)): about 1 min (gtzan about 1 min); not estimated for mtat")
    assert lines[-1] == "  in all about 3 min, plus what is not estimated (logmel extraction of 1 task(s); " \
                        "logmel probing of 1 task(s))"
    assert "mtat under a minute" in _text(_config(limit=8))
    # another data root is another pair: the demo's times say nothing about real data
    assert "not estimated for gtzan, mtat" in _text(_config(root="/data/real"))


def test_extraction_is_tracks_at_the_encoders_measured_rate_and_probing_borrows_the_tasks_other_probes():
    cfg = _config(encoders=("logmel", "random"))
    plan.observe([_rec("gtzan", 0, 10.0, 2.0, tracks=100),  # logmel: 10 tracks/s
                  _rec("mtat", 0, 1.0, 4.0, encoder="random", tracks=600),
                  _rec("mtat", 0, 0.1, 4.0, tracks=600, cache="hit")], cfg)  # served from the cache: no rate
    text = _text(_config(encoders=("logmel",), tasks=("mtat",)))
    # logmel's mtat was cached last time: its 0.1 s says nothing of an extraction, so 600 tracks at 10 tracks/s
    assert "extraction: about 1 min (mtat about 1 min [600 tracks at ~10 tracks/s])" in text
    text = _text(_config(encoders=("random",), tasks=("gtzan",)))
    assert "gtzan under a minute [as other encoders' probes of it]" in text


#: the demo recipe's views and augmentation, as a start event logs them
_DEMO_RECIPE = {"views": 2, "augment": False}


def _start(path, encoder="semisupcon", device="cpu", window=19683, rates=(), saved=None, recipe=_DEMO_RECIPE):
    """A run folder's log as the pretraining writes it: a start event (the run's identity, device and recipe;
    ``recipe=None`` leaves the recipe out, as a log that does not say it), then ``train`` events."""
    path.parent.mkdir(parents=True, exist_ok=True)
    events = [{"event": "start", "step": 0, "encoder": encoder, "device": device, "config": {"window": window},
               **({"recipe": recipe} if recipe is not None else {})}]
    events += [{"event": "train", "step": i + 1, "clips_per_s": r} for i, r in enumerate(rates)]
    if saved:
        events.append({"event": "interrupted", "step": saved})
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


def _checkpoint(cfg):
    from bench import plugins
    from bench.pretrain import default_checkpoint
    from bench.store import cache_dir

    enc = plugins.encoders().get("semisupcon").create()
    path, _ = default_checkpoint(enc, enc.recipe().replace(steps=130, batch_size=10), cfg.settings.data_roots,
                                 cache_dir())
    return path


def test_pretraining_is_estimated_from_logged_rates_else_a_stated_default(nsynth_tiny, _cache):
    opts = {"semisupcon:steps": 130, "semisupcon:batch_size": 10}
    cfg = _config(encoders=("semisupcon",), tasks=("nsynth_pitch",), root=nsynth_tiny, options=opts)
    # nothing logged: the CPU default, 180 views/s without augmentation (the demo recipe's) at this window,
    # 2 views a clip: 1300 clips in 14 s
    assert ("pretraining: 130 steps x 10 clips = 1300 clips at ~90 clips/s (a rough default for a CPU: 180 views/s "
            "at a 19683-sample window without augmentation, measured on an idle 2-core machine)") in _text(cfg)
    # with augmentation, 120 views/s; one view a clip doubles the clips a second
    aug = _config(encoders=("semisupcon",), tasks=("nsynth_pitch",), root=nsynth_tiny,
                  options={**opts, "semisupcon:augment": True, "semisupcon:views": 1})
    assert "1300 clips at ~120 clips/s (a rough default for a CPU: 120 views/s at a 19683-sample window with " \
        "augmentation" in _text(aug)
    # on another device there is no default
    cuda = _config(encoders=("semisupcon",), tasks=("nsynth_pitch",), root=nsynth_tiny, options=opts, device="cuda")
    assert ("time not estimated (no earlier pretraining on cuda with this window, views and augmentation in the "
            "cache to measure from)") in _text(cuda)
    assert list(plan.describe(cuda))[-1] == "  no estimate of the whole (not estimated: semisupcon pretraining; " \
        "semisupcon extraction of 1 task(s); semisupcon probing of 1 task(s))"
    # logged rates: the median after each start's first (warm-up) line; another window or device is not used
    _start(_cache / "checkpoints" / "semisupcon-aaaa.run" / "metrics.jsonl", rates=(500, 8, 10, 12))
    _start(_cache / "checkpoints" / "simclr-bbbb.run" / "metrics.jsonl", encoder="simclr", rates=(1, 1000, 1000))
    _start(_cache / "checkpoints" / "semisupcon-cccc.run" / "metrics.jsonl", window=59535, rates=(1, 1, 1))
    _start(_cache / "checkpoints" / "semisupcon-dddd.run" / "metrics.jsonl", device="cuda:0", rates=(1, 1, 1))
    text = _text(cfg)
    assert "1300 clips at ~10 clips/s (measured in 1 earlier run(s) of semisupcon in the cache): about 3 min" in text
    # a run folder with a saved state resumes from its last saved step
    path = _checkpoint(cfg)
    run_dir = path.with_suffix(".run")
    _start(run_dir / "metrics.jsonl", rates=(1, 10, 10), saved=100)
    (run_dir / "train-state.pt").write_bytes(b"state")
    assert "pretraining: resumes at step 100 of 130: 30 steps x 10 clips = 300 clips at ~10 clips/s" in _text(cfg)
    # cached weights: nothing to pretrain, and the embeddings may be cached
    path.write_bytes(b"weights")
    text = _text(cfg)
    assert f"pretraining: none, pretrained weights cached ({path.name})" in text
    assert "less where embeddings are cached" not in text  # nothing estimated for the extraction yet


def test_logged_rates_are_pooled_only_from_runs_of_the_same_views_and_augmentation(nsynth_tiny, _cache):
    # the recipe: 2 views a clip, no augmentation (the demo recipe's), 130 x 10 = 1300 clips
    cfg = _config(encoders=("semisupcon",), tasks=("nsynth_pitch",), root=nsynth_tiny,
                  options={"semisupcon:steps": 130, "semisupcon:batch_size": 10})
    runs = _cache / "checkpoints"
    # runs of this encoder and window on a CPU that are not this recipe: 1 view a clip (about twice the clips a
    # second), augmentation on, and a log that does not say its recipe; none is this recipe's rate
    _start(runs / "semisupcon-1view.run" / "metrics.jsonl", recipe={"views": 1, "augment": False},
           rates=(1, 200, 200, 200))
    _start(runs / "semisupcon-augment.run" / "metrics.jsonl", recipe={"views": 2, "augment": True},
           rates=(1, 60, 60, 60))
    _start(runs / "semisupcon-unsaid.run" / "metrics.jsonl", recipe=None, rates=(1, 300, 300, 300))
    _start(runs / "semisupcon-noviews.run" / "metrics.jsonl", recipe={"augment": False}, rates=(1, 300, 300))
    # none is used: the CPU default
    assert "1300 clips at ~90 clips/s (a rough default for a CPU" in _text(cfg)
    # another encoder's run of this recipe is used before them, then this encoder's own
    _start(runs / "simclr-2view.run" / "metrics.jsonl", encoder="simclr", rates=(1, 20, 20))
    assert ("1300 clips at ~20 clips/s (measured in 1 earlier run(s) of encoders with this window, views and "
            "augmentation)") in _text(cfg)
    _start(runs / "semisupcon-2view.run" / "metrics.jsonl", rates=(1, 10, 10))
    assert "1300 clips at ~10 clips/s (measured in 1 earlier run(s) of semisupcon in the cache)" in _text(cfg)
    # a 1-view recipe uses the 1-view run's rate
    one = _config(encoders=("semisupcon",), tasks=("nsynth_pitch",), root=nsynth_tiny,
                  options={"semisupcon:steps": 130, "semisupcon:batch_size": 10, "semisupcon:views": 1})
    assert "1300 clips at ~200 clips/s (measured in 1 earlier run(s) of semisupcon in the cache)" in _text(one)


def test_a_request_the_results_memo_holds_is_said_cached_and_nothing_else_is_planned():
    from bench import run_memo
    from bench.run import make_task

    cfg = _config(tasks=("gtzan",))
    run_memo.new_run()
    key = run_memo.request_key("logmel", make_task("gtzan"), cfg, {})
    entry = run_memo.root() / key.name
    entry.mkdir(parents=True)
    (entry / "manifest.json").write_text(json.dumps({"digest": "another request"}))
    assert "cached:" not in _text(cfg)
    (entry / "manifest.json").write_text(json.dumps({"digest": key.digest}))
    lines = list(plan.describe(cfg))
    assert lines[1:] == ["  logmel:", "    cached: the results of gtzan for this request (reused when the data and "
                         "weights are unchanged; nothing computed)", "  in all: nothing to compute"]


def test_rough_durations_carry_no_fake_precision():
    assert [plan.rough(s) for s in (5, 61, 599, 1234, 9000)] == [
        "under a minute", "about 2 min", "about 10 min", "about 20 min", "about 2.5 h"]
