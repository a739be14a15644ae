"""The plan `bench run` prints first (bench.plan): estimates only from pairs measured here before."""

from pathlib import Path

from bench import plan
from bench.config import DataRoots
from bench.settings import EvalSettings, RunConfig


def _config(seeds=(0,), limit=None):
    return RunConfig(["logmel"], ["gtzan", "mtat"],
                     EvalSettings(out=Path("."), data_roots=DataRoots(), seeds=seeds, limit=limit))


def _rec(task, seed, extract_s, probe_s, **extra):
    return {"encoder": "logmel", "variant": "logmel", "task": task, "condition": "clean", "seed": seed,
            "timings": {"extract_s": extract_s, "probe_s": probe_s}, **extra}


def test_no_estimate_without_a_measurement_then_one_from_the_records():
    lines = plan.describe(_config())
    assert "gtzan (not run here before)" in lines[1] and "in all" not in "\n".join(lines)
    # reused records measured nothing; another --limit is another pair
    plan.observe([_rec("gtzan", 0, 500.0, 1.0, reused={"from": "x"}), _rec("mtat", 0, 9.0, 1.0, limit=8)])
    assert "gtzan (not run here before)" in plan.describe(_config())[1]
    plan.observe([_rec("gtzan", s, 100.0, 10.0) for s in (0, 1, 2)])
    lines = plan.describe(_config(seeds=(0, 1, 2, 3, 4, 5)))  # 100 s + 6 x 10 s
    assert "gtzan about 3 min" in lines[1] and "mtat (not run here before)" in lines[1]
    assert "in all about 3 min, plus 1 pair(s) with no estimate" in lines[2]
    assert "mtat under a minute" in plan.describe(_config(limit=8))[1]


def test_rough_durations_carry_no_fake_precision():
    assert [plan.rough(s) for s in (5, 61, 599, 1234, 9000)] == [
        "under a minute", "about 2 min", "about 10 min", "about 20 min", "about 2.5 h"]
