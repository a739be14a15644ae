"""bench robustness and bench sweep end to end on tiny data, and their bad input."""

from __future__ import annotations

import json

import pytest

from bench.cli import main

FAST = ["--seeds", "0", "--probe-grid", "fast", "--device", "cpu", "--no-progress"]
TINY_SSL = ["-O", "preset=tiny", "-O", "label_task=tiny", "-O", "unlabeled_tasks=tiny", "-O", "augment=false"]


def records(folder):
    return {p.name: json.loads(p.read_text()) for p in sorted((folder / "records").glob("*.json"))}


@pytest.fixture
def flaky(monkeypatch):
    """A corruption that fails on one track (test001 of the tiny tasks) and reverses the others."""
    from bench.corruptions import Corruption, registry, track_seed

    bad = track_seed(0, "test001")

    def fn(x, sr, s, seed):
        if seed == bad:
            raise RuntimeError("this file breaks the effect")
        return x[::-1].copy()

    monkeypatch.setitem(registry._REGISTRY, "flaky", Corruption(
        "flaky", fn, "reversal that fails on one track", "1", (1,), (1,), 0, 1, random=True))


def test_robustness_on_tiny_data_records_drops_skips_and_reuses(tiny_two_tasks, tmp_path, flaky, capsys):
    out = tmp_path / "rob"
    argv = ["robustness", "--encoder", "random", "-O", "preset=tiny", "--tasks", "tinyclass",
            "--conditions", "bitcrush@6;flaky", "--out", str(out), *FAST]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "skipped 1 unreadable file(s) in test" in err and "this file breaks the effect" in err
    recs = records(out)
    assert set(recs) == {"random[preset=tiny]__tinyclass__seed0.json", "random[preset=tiny]__tinyclass__bitcrush@6__seed0.json",
                         "random[preset=tiny]__tinyclass__flaky@1__seed0.json"}
    clean, crushed, flaky_rec = (recs["random[preset=tiny]__tinyclass__seed0.json"], recs["random[preset=tiny]__tinyclass__bitcrush@6__seed0.json"],
                                 recs["random[preset=tiny]__tinyclass__flaky@1__seed0.json"])
    assert clean["condition"] == "clean" and "drop" not in clean
    assert crushed["condition"] == "bitcrush@6" and crushed["corruption"]["cache"] == "miss"
    assert crushed["corruption"]["token"].startswith("bitcrush@6|v1|pedalboard=")
    assert crushed["drop"]["method"].startswith("paired") and crushed["drop"]["n_tracks"] == 2
    # the failing file is skipped and counted; the condition is scored on the track left
    assert [s["track_id"] for s in flaky_rec["data"]["skipped"]["test"]] == ["test001"]
    assert flaky_rec["data"]["skipped_count"] == 1 and flaky_rec["drop"]["n_tracks"] == 1
    assert "seed=0" in flaky_rec["corruption"]["token"]  # random corruptions: the seed is in the key
    for name in ("robustness.md", "robustness.csv", "robustness.html", "robustness_tinyclass.png", "leaderboard.md"):
        assert (out / name).is_file(), name
    board = (out / "leaderboard.md").read_text()
    assert board.index("| random[preset=tiny] ") < board.index("[preset=tiny] [bitcrush@6]") < board.index("[flaky@1]")

    # the same run again: every record is reused, nothing is extracted or probed
    assert main(argv) == 0
    assert "reusing 3 record(s)" in capsys.readouterr().err
    # into another folder: the probes run again, the corrupted embeddings come from the cache
    other = tmp_path / "rob2"
    assert main([*argv[:-len(FAST) - 2], "--out", str(other), *FAST]) == 0
    again = records(other)
    assert again["random[preset=tiny]__tinyclass__bitcrush@6__seed0.json"]["corruption"]["cache"] == "hit"
    assert again["random[preset=tiny]__tinyclass__bitcrush@6__seed0.json"]["metrics"] == crushed["metrics"]


def test_robustness_bad_input(tiny_task, tmp_path, capsys):
    base = ["robustness", "--encoder", "random", "-O", "preset=tiny", "--tasks", "tiny", "--out", str(tmp_path)]
    assert main([*base, "--conditions", "reverbb@0.5"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'reverb'" in err and "Available corruptions" in err
    assert main([*base, "--conditions", "mp3@1000"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main([*base, "--conditions", "reverb", "--corruption-seed", "-1"]) == 2
    assert not (tmp_path / "records").exists()


def test_sweep_of_a_recipe_option_resumes_without_training(tiny_task, tmp_path, monkeypatch, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--encoder", "semisupcon", *TINY_SSL, "-O", "steps=1,2", "--tasks", "tiny", "--out", str(out),
            *FAST]
    assert main(argv) == 0
    assert "2 to pretrain" in capsys.readouterr().err
    recs = records(out)
    assert set(recs) == {"semisupcon[steps=1]__tiny__seed0.json", "semisupcon[steps=2]__tiny__seed0.json"}
    one, two = recs["semisupcon[steps=1]__tiny__seed0.json"], recs["semisupcon[steps=2]__tiny__seed0.json"]
    assert one["sweep"] == {"steps": "1"} and two["sweep"] == {"steps": "2"}
    assert one["pretraining"]["steps"] == 1 and two["pretraining"]["steps"] == 2
    assert one["weights_hash"] != two["weights_hash"]
    # the selected probe's validation score rides along (what the sweep ranks on), its interval about it
    for r in (one, two):
        assert set(r["valid_metrics"]) == set(r["metrics"]) and r["valid_confidence"]["metric"] == r["primary_metric"]
        assert r["valid_confidence"]["value"] == pytest.approx(r["valid_metrics"][r["primary_metric"]])
        assert r["probe"]["grid"][0]["valid_score"] == pytest.approx(r["valid_metrics"][r["primary_metric"]], abs=1e-6)
    assert (out / "sweep.png").stat().st_size > 1000
    table = (out / "sweep.md").read_text()
    assert "semisupcon[steps=1]" in table and "| steps" in table.replace("|  steps", "| steps")
    assert "ranked on validation" in table and "## Final table: test scores" in table

    # the rerun (as after an interruption) trains nothing and re-probes nothing
    import bench.pretrain.checkpoints as ck

    def no_training(*a, **k):
        raise AssertionError("a finished variant was pretrained again")

    monkeypatch.setattr(ck, "pretrain", no_training)
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "2 already pretrained, 0 to pretrain" in err and err.count("reusing 1 record(s)") == 2
    # another probe grid: the records no longer match and are made again (still without training)
    grid = ["--probe-grid" if a == "--probe-grid" else ("lr=1e-3;wd=1e-6" if a == "fast" else a) for a in argv]
    assert main(grid) == 0
    assert "reusing" not in capsys.readouterr().err
    assert records(out)["semisupcon[steps=1]__tiny__seed0.json"]["probe"]["grid_spec"] == "lr=1e-3;wd=1e-6"


def test_sweep_grid_parsing_and_labels():
    from bench.experiments.sweep import parse_grid, plan_variants

    fixed, axes = parse_grid(["steps=300", "label_fraction=0.05,1.0", "label_task=mtat+gtzan,nsynth_pitch"])
    assert fixed == {"steps": 300}
    assert [(a.key, a.values) for a in axes] == [("label_fraction", (0.05, 1.0)),
                                                  ("label_task", ("mtat,gtzan", "nsynth_pitch"))]
    _, piped = parse_grid(["label_task=mtat,gtzan|nsynth_pitch"])
    assert piped[0].values == axes[1].values and piped[0].texts == ("mtat+gtzan", "nsynth_pitch")
    # scoped axes apply to their encoder only; unscoped ones to every encoder; a grid is every combination
    _, scoped = parse_grid(["semisupcon:label_fraction=0.05,1.0", "simclr:lr=1e-3,3e-4", "tau=0.1,0.2"])
    variants = plan_variants(["semisupcon", "simclr"], {"steps": 300, "simclr:batch_size": 8}, scoped)
    assert [v.label for v in variants] == [
        "semisupcon[label_fraction=0.05,tau=0.1]", "semisupcon[label_fraction=0.05,tau=0.2]",
        "semisupcon[label_fraction=1.0,tau=0.1]", "semisupcon[label_fraction=1.0,tau=0.2]",
        "simclr[lr=1e-3,tau=0.1]", "simclr[lr=1e-3,tau=0.2]", "simclr[lr=3e-4,tau=0.1]", "simclr[lr=3e-4,tau=0.2]"]
    assert variants[4].options == {"steps": 300, "batch_size": 8, "lr": 1e-3, "tau": 0.1}


@pytest.mark.parametrize("option, words", [
    ("label_fraction=0.05,,1.0", "sweep value 2 of 3 is empty"),
    ("label_fraction=", "has no value"),
    ("label_fraction=0.05,0.05", "appear twice"),
    ("label_fraction", "expected KEY=VALUE"),
])
def test_sweep_grid_syntax_errors(option, words):
    from bench.errors import BenchError
    from bench.experiments.sweep import parse_grid

    with pytest.raises(BenchError, match=words):
        parse_grid([option])


def test_sweep_values_that_do_not_parse_are_named_before_any_training(tiny_task, tmp_path, monkeypatch, capsys):
    import bench.pretrain.checkpoints as ck

    monkeypatch.setattr(ck, "pretrain", lambda *a, **k: pytest.fail("trained before checking the grid"))
    base = ["sweep", "--encoder", "semisupcon", *TINY_SSL, "--tasks", "tiny", "--out", str(tmp_path), *FAST]
    assert main([*base, "-O", "label_fraction=0.05,lots"]) == 2
    err = capsys.readouterr().err
    assert "semisupcon[label_fraction=lots]" in err and "not a number" in err
    assert main([*base, "-O", "steps=1,two"]) == 2
    assert "steps='two'" in capsys.readouterr().err
    assert main([*base, "-O", "label_fractoin=0.05,1.0"]) == 2
    assert "Did you mean 'label_fraction'" in capsys.readouterr().err
    assert main([*base, "-O", "tau=0.2,0.20"]) == 2  # two spellings of one model
    assert "the same model twice" in capsys.readouterr().err
    assert main([*base, "-O", "steps=2"]) == 2
    assert "at least one swept option" in capsys.readouterr().err
    assert main([*base, "-O", "simclr:tau=0.1,0.2"]) == 2
    assert "not an encoder of this run" in capsys.readouterr().err


# --- bench reproduce: the verdict rule on synthetic records, the report end to end on a tiny plan ---


def clean_record(variant, task, seed, values, value=None, fingerprint="fp", tracks=50, metric="roc_auc"):
    import numpy as np

    v = float(np.mean(values)) if value is None else value
    lo, hi = np.percentile(values, [2.5, 97.5])
    return {"schema_version": 1, "encoder": variant.split("[")[0], "variant": variant, "task": task, "seed": seed,
            "condition": "clean", "primary_metric": metric, "metrics": {metric: v}, "demo_data": True,
            "confidence": {"values": list(map(float, values)), "seed": 1, "lo": float(lo), "hi": float(hi),
                           "value": v},
            "data": {"fingerprint": fingerprint, "tracks": {"test": tracks}, "skipped": {"test": []}}}


def test_verdicts_follow_the_intervals_not_the_point_estimates():
    import numpy as np

    from bench.experiments.claims import (AGAINST, DOES_NOT_HOLD, FAVOURS, HOLDS, INCONCLUSIVE, UNCLEAR, Claim,
                                          Spec, compare_metric, evidence, verdict)

    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.05, 1000)  # the track-to-track spread both encoders share (paired resamples)
    recs = []
    for seed in (0, 1):
        recs.append(clean_record("simclr", "mtat", seed, 0.70 + shared))
        recs.append(clean_record("big", "mtat", seed, 0.75 + shared + rng.normal(0, 0.005, 1000)))
        recs.append(clean_record("tiny", "mtat", seed, 0.702 + shared + rng.normal(0, 0.01, 1000)))
        recs.append(clean_record("worse", "mtat", seed, 0.65 + shared + rng.normal(0, 0.005, 1000)))
    # paired: a +0.05 difference is clear although both intervals are +-0.1 wide
    e = compare_metric(recs, Spec("big", "simclr", "mtat"))
    assert e.outcome == FAVOURS and e.method.startswith("paired") and 0.04 < e.lo < e.hi < 0.06
    tiny = compare_metric(recs, Spec("tiny", "simclr", "mtat"))
    assert tiny.diff > 0 and tiny.outcome == UNCLEAR  # a higher point estimate alone decides nothing
    assert compare_metric(recs, Spec("worse", "simclr", "mtat")).outcome == AGAINST

    def claim(*specs):
        return verdict(evidence(recs, Claim(1, "x", list(specs))))

    assert claim(Spec("big", "simclr", "mtat")) == HOLDS
    assert claim(Spec("big", "simclr", "mtat"), Spec("tiny", "simclr", "mtat")) == INCONCLUSIVE
    assert claim(Spec("big", "simclr", "mtat"), Spec("worse", "simclr", "mtat")) == DOES_NOT_HOLD
    assert claim(Spec("big", "simclr", "mtat"), Spec("worse", "simclr", "mtat", counted=False)) == HOLDS
    assert claim(Spec("big", "simclr", "mtat"), Spec("big", "simclr", "gtzan")) == INCONCLUSIVE  # not measured
    assert claim() == INCONCLUSIVE

    # different test tracks: unpaired, the intervals must not overlap (the shared spread no longer cancels)
    other = [dict(r, data={**r["data"], "fingerprint": "other"}) if r["variant"] == "big" else r for r in recs]
    e = compare_metric(other, Spec("big", "simclr", "mtat"))
    assert e.method.startswith("unpaired") and e.outcome == UNCLEAR and e.lo < 0 < e.hi
    far = [clean_record("far", "mtat", s, 0.95 + shared * 0.2, fingerprint="other") for s in (0, 1)]
    assert compare_metric(other + far, Spec("far", "simclr", "mtat")).outcome == FAVOURS


def test_robustness_claim_reads_the_paired_drops():
    import numpy as np

    from bench.experiments.claims import AGAINST, FAVOURS, Spec, compare_drop
    from test_robustness import suite_records

    recs = suite_records({"a": {"reverb@0.5": 0.02, "mp3@32": 0.03}, "b": {"reverb@0.5": 0.25, "mp3@32": 0.3}},
                         with_drop=True)
    for r in recs:
        r["variant"] = r["encoder"]
    ahead = compare_drop(recs, Spec("a", "b", "gtzan"))
    assert ahead.outcome == FAVOURS and ahead.method.startswith("paired") and ahead.hi < 0
    back = compare_drop(recs, Spec("b", "a", "gtzan"))
    assert back.outcome == AGAINST and back.diff > 0 and np.isfinite(back.lo)
    assert compare_drop(recs, Spec("a", "nobody", "gtzan")).detail.startswith("not measured")


def test_reproduce_writes_a_report_with_verdicts_on_a_tiny_plan(tiny_two_tasks, tmp_path):
    from bench.experiments import reproduce
    from bench.experiments.claims import Claim, Spec

    # two conditions out of alphabetical order (a fresh run once handed its records over sorted by condition)
    scale = reproduce.Scale("tiny", {"preset": "tiny"}, (0,), "fast", (), "", "", "reversal;bitcrush@6", demo=False)
    jobs = [reproduce.Job("random", "random", {"preset": "tiny"}, ("tinyclass",), ("tinyclass",), {}, "floor"),
            reproduce.Job("random[seed=7]", "random", {"preset": "tiny", "seed": 7}, ("tinyclass",),
                          ("tinyclass",), {}, "another floor")]
    claims = [Claim(1, "Seed 7 beats seed 123.", [Spec("random[seed=7]", "random", "tinyclass")]),
              Claim(3, "Seed 7 is more robust.", [Spec("random[seed=7]", "random", "tinyclass", kind="drop")]),
              Claim(4, "Needs a task not run.", [Spec("random", "random[seed=7]", "mtat")])]
    plan = reproduce.Plan(scale, ("tinyclass",), jobs, claims)
    out = tmp_path / "repro"
    first = reproduce.run(plan, tiny_two_tasks, out=out, device="cpu")
    assert not first.failures and len(first.lines) == 3
    assert first.lines[2].startswith("claim 4: INCONCLUSIVE")
    md = (out / "report.md").read_text()
    for text in ("## Verdicts", "How a verdict is decided", "## Claim 1: Seed 7 beats seed 123.",
                 "| random[seed=7] | random", "not measured", "Appendix: robustness to corruptions",
                 "reversal@1"):
        assert text in md, text
    assert "<h2>Claim 3" in (out / "report.html").read_text()
    # everything cached: the second run reuses every record and writes the same verdicts
    second = reproduce.run(plan, tiny_two_tasks, out=out, device="cpu")
    assert second.lines == first.lines
    # a fresh output folder on the warm cache (probes from the probe cache), then its rerun: the records come
    # in the same order both times, so the report's tables and charts get the same render keys
    again = reproduce.run(plan, tiny_two_tasks, out=tmp_path / "again", device="cpu")
    rerun = reproduce.run(plan, tiny_two_tasks, out=tmp_path / "again", device="cpu")
    order = [[(r["variant"], r["condition"], r["seed"]) for r in o.records] for o in (first, second, again, rerun)]
    assert order[0] == order[1] == order[2] == order[3]
    assert [c for _, c, _ in order[2][:3]] == ["clean", "reversal@1", "bitcrush@6"]
    assert all("_file" in r for r in second.records)


def test_reproduce_jobs_in_worker_processes_give_the_records_of_one_process(tiny_two_tasks, tmp_path, monkeypatch,
                                                                             capsys):
    import torch

    from bench.experiments import reproduce
    from bench.experiments.claims import Claim, Spec

    scale = reproduce.Scale("tiny", {}, (0,), "fast", (), "", "", "reversal", demo=False)
    jobs = [reproduce.Job("logmel", "logmel", {}, ("tinyclass",), (), {}, "handcrafted"),
            reproduce.Job("random", "random", {}, ("tinyclass",), ("tinyclass",), {}, "floor")]
    plan = reproduce.Plan(scale, ("tinyclass",), jobs, [Claim(1, "Random beats logmel.",
                                                              [Spec("random", "logmel", "tinyclass")])])
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same sums in the same order
    try:
        one = reproduce.run(plan, tiny_two_tasks, out=tmp_path / "one", device="cpu", jobs=1)
    finally:
        torch.set_num_threads(before)
    # a fresh cache, so the workers compute everything again (the tiny task is registered in this process
    # only: the workers get it from here)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache-two"))
    capsys.readouterr()
    two = reproduce.run(plan, tiny_two_tasks, out=tmp_path / "two", device="cpu", jobs=2, threads=1)
    err = capsys.readouterr().err
    assert not one.failures and not two.failures, (one.failures, two.failures)

    def scores(outcome):
        return sorted((r["variant"], r["condition"], r["seed"], json.dumps(r["metrics"], sort_keys=True))
                      for r in outcome.records)

    assert len(two.records) == len(one.records) == 3 and scores(two) == scores(one)
    assert two.lines == one.lines
    assert "2 worker processes of 1 torch thread(s)" in err and "job 2/2 finished: random" in err
    assert (tmp_path / "two" / "logs" / "1-logmel.log").is_file()
    assert "[random x tinyclass seed 0]" in (tmp_path / "two" / "logs" / "2-random.log").read_text()
    assert "jobs ran 2 at a time" in (tmp_path / "two" / "report.md").read_text()


def test_reproduce_workers_for_this_machine():
    from bench.jobs import auto_workers, log_name, order
    from bench.experiments.reproduce import plan

    assert auto_workers(6, "cpu", 2) == (2, 1)
    assert auto_workers(6, "cpu", 8) == (4, 2)
    assert auto_workers(6, "cpu", 64) == (6, 10)
    assert auto_workers(6, "cpu", 1) == (1, 1)
    assert auto_workers(6, "cuda:0", 16)[0] == 1
    assert log_name(5, "semisupcon[label_fraction=0.05]") == "5-semisupcon_label_fraction_0.05.log"
    labels = [plan("demo").jobs[i].label for i in order(plan("demo").jobs)]
    # (each label once per pretraining seed, the seeds of one label together)
    assert list(dict.fromkeys(labels))[:2] == ["semisupcon", "simclr"] and labels[-1] == "random"


def test_reproduce_jobs_option(tmp_path, capsys):
    assert main(["reproduce", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert "--jobs '0'" in capsys.readouterr().err
    assert main(["reproduce", "--jobs", "two", "--out", str(tmp_path)]) == 2


def test_reproduce_command_plan_and_bad_input(capsys, tmp_path, monkeypatch):
    assert main(["reproduce", "--plan"]) == 0
    text = capsys.readouterr().out
    assert "semisupcon[label_fraction=0.05]" in text and "* semisupcon vs simclr on nsynth_pitch" in text
    assert main(["reproduce", "--plan", "--tasks", "gtzan"]) == 0
    assert "(no comparison: its tasks are not in --tasks)" in capsys.readouterr().out
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    assert main(["reproduce", "--scale", "paper", "--out", str(tmp_path)]) == 2
    assert "no data root for mtat" in capsys.readouterr().err
    assert main(["reproduce", "--data-root", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "--scale demo runs on the generated demo data" in capsys.readouterr().err
    assert main(["reproduce", "--tasks", "mtta", "--plan"]) == 2
    assert "mtat" in capsys.readouterr().err


# --- leaderboard and compare with conditions and variants ---


def cond_record(variant, task, seed, value, condition="clean"):
    import numpy as np

    from bench.results import new_record

    vals = list(np.clip(value + np.linspace(-0.04, 0.04, 41), 0, 1))
    return new_record(
        encoder=variant.split("[")[0], variant=variant, condition=condition, task=task, seed=seed,
        primary_metric="accuracy", metrics={"accuracy": value},
        confidence={"metric": "accuracy", "value": value, "lo": min(vals), "hi": max(vals), "seed": 1, "n_boot": 41,
                    "values": vals},
        demo_data=True, encoder_config={}, weights_hash="w", data={"fingerprint": f"fp-{task}"})


def write_results(folder, scores):
    from bench.results import write_record

    for (variant, task, condition), v in scores.items():
        for seed in (0, 1):
            write_record(cond_record(variant, task, seed, v, condition), folder / "records")
    return folder


SCORES = {("simclr", "t", "clean"): 0.60, ("semisupcon[label_fraction=0.05]", "t", "clean"): 0.70,
          ("simclr", "t", "mp3@32"): 0.50, ("semisupcon[label_fraction=0.05]", "t", "mp3@32"): 0.65,
          ("simclr", "t", "augment@1"): 0.40, ("semisupcon[label_fraction=0.05]", "t", "augment@1"): 0.55}


def test_leaderboard_rows_are_variants_per_condition_clean_first(tmp_path):
    from bench import leaderboard
    from bench.results import read_records

    recs = read_records([write_results(tmp_path / "r", SCORES)])
    df = leaderboard.table(recs)
    assert list(df.index) == ["semisupcon[label_fraction=0.05]", "simclr",
                              "semisupcon[label_fraction=0.05] [augment@1]", "simclr [augment@1]",
                              "semisupcon[label_fraction=0.05] [mp3@32]", "simclr [mp3@32]"]
    # ranks compare rows of one condition: each condition has its own 1 and 2
    assert list(df[leaderboard.RANK_COL]) == [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
    md = leaderboard.to_markdown(df)
    # one best value per condition (its interval lies above the other's); ranks have no interval, never bold
    assert md.count("**") == 2 * 3
    entries = leaderboard.baseline(recs)["entries"]
    assert {(e["encoder"], e["condition"]) for e in entries} == {(v, c) for v, _, c in SCORES}


def test_compare_gates_each_condition_and_reads_old_baselines_as_clean(tmp_path, capsys):
    base = write_results(tmp_path / "base", SCORES)
    worse = dict(SCORES)
    worse[("simclr", "t", "mp3@32")] = 0.30  # only the corrupted score of one variant fell
    cur = write_results(tmp_path / "cur", worse)
    assert main(["compare", str(cur), str(base)]) == 1
    out = capsys.readouterr().out
    assert "| condition" in out
    row = next(line for line in out.splitlines() if "regressed" in line)
    assert "simclr " in row and "mp3@32" in row
    assert main(["compare", str(base), str(base)]) == 0
    capsys.readouterr()
    # a baseline written before conditions existed: its entries are the clean rows
    doc = tmp_path / "old.json"
    assert main(["compare", str(base), "--write-baseline", str(doc)]) == 0
    old = json.loads(doc.read_text())
    old["entries"] = [{k: v for k, v in e.items() if k != "condition"} for e in old["entries"]
                      if e["condition"] == "clean"]
    doc.write_text(json.dumps(old))
    assert main(["compare", str(cur), str(doc)]) == 0  # clean rows unchanged; corrupted rows are "new"
    out = capsys.readouterr().out
    assert out.count("| new ") == 4 and "PASS" in out


def test_records_are_reused_when_the_grid_chose_another_lr_than_the_default(tiny_two_tasks, tmp_path, capsys):
    """A rerun reuses its records whatever lr and wd the grid chose (a record holds the chosen point, not the
    probe's default), and does not reuse them under another protocol or grid."""
    out = tmp_path / "rob"
    base = ["robustness", "--encoder", "random", "-O", "preset=tiny", "--tasks", "tinyclass", "--conditions",
            "bitcrush@6", "--out", str(out), "--seeds", "0", "--device", "cpu", "--no-progress"]
    argv = [*base, "--probe-grid", "lr=1e-2;wd=1e-3"]
    assert main(argv) == 0
    rec = records(out)["random[preset=tiny]__tinyclass__seed0.json"]
    assert (rec["probe"]["lr"], rec["probe"]["weight_decay"]) == (1e-2, 1e-3)
    capsys.readouterr()
    assert main(argv) == 0
    assert "reusing 2 record(s)" in capsys.readouterr().err
    assert main([*base, "--probe-grid", "lr=3e-3;wd=1e-3"]) == 0
    assert "reusing" not in capsys.readouterr().err


def test_claim_2_says_when_its_recipe_does_not_augment():
    """Claim 2's premise is pitch-shift augmentation; the demo recipe trains without it, and the report says so."""
    from bench import plugins
    from bench.experiments import reproduce

    demo, paper = (reproduce.claims_for(reproduce.plan(s))[1].reading for s in ("demo", "paper"))
    assert plugins.encoders().get("simclr").create().recipe().augment is False  # the demo preset's recipe
    assert "does not augment" in demo and "does not augment" not in paper
    assert plugins.encoders().get("simclr").create(preset="paper").recipe().augment is True
