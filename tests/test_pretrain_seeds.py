"""``--pretrain-seeds``: one model per seed of every seeded encoder, records that say which, rows that pool them."""

import json
import re

from bench.cli import main


def _records(out):
    return {p.name: json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))}


def test_run_pretrain_seeds_make_one_model_per_seed_and_one_pooled_row(tiny_task, tmp_path, capsys):
    root = tiny_task.per_task["tiny"]
    out = tmp_path / "out"
    argv = ["run", "-e", "random,logmel", "-O", "random:preset=tiny", "-t", "tiny", "--data-root", f"tiny={root}",
            "--seeds", "0,1", "--probe-grid", "fast", "--pretrain-seeds", "0,1", "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "logmel has no seed of its weights" in err and "evaluated once" in err
    recs = _records(out)
    assert set(recs) == {f"random[preset=tiny]__tiny__pt{p}__seed{s}.json" for p in (0, 1) for s in (0, 1)} | {
        f"logmel__tiny__seed{s}.json" for s in (0, 1)}
    rand = {name: r for name, r in recs.items() if name.startswith("random")}
    # the row label is the same for both seeds (the seed is not in it); the records say which seed
    assert {r["variant"] for r in rand.values()} == {"random[preset=tiny]"}
    assert {r["pretraining"]["seed"] for r in rand.values()} == {0, 1}
    assert len({r["weights_hash"] for r in rand.values()}) == 2  # two initialisations
    assert recs["logmel__tiny__seed0.json"].get("pretraining") is None
    board = json.loads((out / "leaderboard.json").read_text())
    rows = [r for r in board["summary"] if r["primary"] and r["encoder"] == "random[preset=tiny]"]
    assert len(rows) == 1 and rows[0]["n_pt"] == 2 and rows[0]["pt_seeds"] == [0, 1]
    assert rows[0]["n_seeds"] == 4
    saved = json.loads((out / "run_config.json").read_text())
    assert saved["pretrain_seeds"] == [0, 1]

    # a rerun reuses every record (nothing is recomputed, the same numbers)
    assert main(argv) == 0
    again = _records(out)
    assert {k: v["metrics"] for k, v in again.items()} == {k: v["metrics"] for k, v in recs.items()}


def test_pretrain_seeds_with_seed_option_or_bad_list_are_usage_errors(tiny_task, tmp_path, capsys):
    root = tiny_task.per_task["tiny"]
    base = ["run", "-e", "random", "-O", "preset=tiny", "-t", "tiny", "--data-root", f"tiny={root}",
            "--out", str(tmp_path / "o")]
    assert main([*base, "-O", "seed=3", "--pretrain-seeds", "0,1"]) == 2
    assert "-O seed and --pretrain-seeds" in capsys.readouterr().err
    assert main([*base, "--pretrain-seeds", "0,0"]) == 2
    assert "--pretrain-seeds names 0 more than once" in capsys.readouterr().err
    assert main([*base, "--pretrain-seeds", "a"]) == 2
    assert "--pretrain-seeds takes whole numbers" in capsys.readouterr().err


def test_reproduce_demo_plans_three_pretraining_seeds_and_claims_compare_pooled_rows(capsys):
    from bench.experiments import reproduce
    from bench.plugins import encoders

    p = reproduce.plan("demo")
    assert p.scale.pretrain_seeds == (0, 1, 2)
    assert len(p.jobs) == 18 and {j.pretrain_seed for j in p.jobs} == {0, 1, 2}
    assert len({j.name for j in p.jobs}) == 18  # logs and timings tell the seeds apart
    labels = {sp.a for c in p.claims for sp in c.specs} | {sp.b for c in p.claims for sp in c.specs}
    assert "simclr" in labels and not any("seed" in lab for lab in labels)  # claims compare the pooled rows
    one = reproduce.plan("demo", pretrain_seeds=(5,))
    assert len(one.jobs) == 6 and {j.pretrain_seed for j in one.jobs} == {5}
    assert "pretraining seeds: 0, 1, 2" in reproduce.describe(p)
    # the seed of a job is its encoder's option `seed`, which is a trainable encoder's training seed too
    config = one.jobs[0].config(_base_config())
    assert config.encoder_options["seed"] == 5 and config.pretrain_seed == 5
    assert encoders().get("semisupcon").create(seed=5).recipe().seed == 5
    assert main(["reproduce", "--plan", "--pretrain-seeds", "7"]) == 0
    assert "semisupcon (pretraining seed 7)" in capsys.readouterr().out


def _base_config():
    from pathlib import Path

    from bench.config import DataRoots
    from bench.settings import EvalSettings, RunConfig

    return RunConfig(encoders=[], tasks=[], settings=EvalSettings(out=Path("."), data_roots=DataRoots()))


def test_reproduce_with_pretraining_seeds_pools_them_in_claims_and_report(tiny_two_tasks, tmp_path):
    from bench.experiments import reproduce
    from bench.experiments.claims import Claim, Spec
    from bench.jobs import with_pretrain_seeds

    scale = reproduce.Scale("tiny", {}, (0,), "fast", (), "", "", "", demo=False, pretrain_seeds=(0, 1))
    jobs = [reproduce.Job("logmel", "logmel", {}, ("tinyclass",), (), {}, "handcrafted"),
            reproduce.Job("random", "random", {"preset": "tiny"}, ("tinyclass",), (), {}, "floor")]
    plan = reproduce.Plan(scale, ("tinyclass",), with_pretrain_seeds(jobs, scale.pretrain_seeds),
                          [Claim(1, "Random beats logmel.", [Spec("random", "logmel", "tinyclass")])])
    assert [j.name for j in plan.jobs] == ["logmel", "random (pretraining seed 0)", "random (pretraining seed 1)"]
    outcome = reproduce.run(plan, tiny_two_tasks, out=tmp_path / "out", device="cpu", jobs=1)
    assert not outcome.failures, outcome.failures
    assert sorted((r["variant"], (r.get("pretraining") or {}).get("seed")) for r in outcome.records) == [
        ("logmel", None), ("random", 0), ("random", 1)]
    report = (tmp_path / "out" / "report.md").read_text()
    # the claim's evidence row says 2 pretraining seeds for random, 1 for logmel, with a multi-bootstrap
    row = next(line for line in report.splitlines() if line.startswith("| random | logmel | tinyclass"))
    assert re.search(r"\|\s*2 / 1\s*\|", row), row
    assert "multi-bootstrap" in report
    assert "pretraining seeds: 0, 1 (every seeded encoder trained once per seed" in report
