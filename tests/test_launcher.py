"""``--launcher slurm`` (bench/launcher.py) through submitit's local executor, and the paper-scale options of
``bench reproduce`` (--protocol, --unlabeled-dir, -O, --fractions, --plan, a dry run end to end)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main

TESTS = Path(__file__).resolve().parent


def scores(outcome):
    return sorted((r["variant"], r["condition"], r["seed"], json.dumps(r["metrics"], sort_keys=True))
                  for r in outcome.records)


def test_reproduce_through_submitit_gives_the_report_of_a_local_run_and_a_rerun_collects(
        tiny_two_tasks, tmp_path, monkeypatch, capsys):
    pytest.importorskip("submitit")
    import torch

    from bench.experiments import reproduce
    from bench.experiments.claims import Claim, Spec
    from bench.launcher import SlurmLauncher, SlurmSettings

    scale = reproduce.Scale("tiny", {}, (0,), "fast", (), "", "", "reversal", demo=False)
    jobs = [reproduce.Job("logmel", "logmel", {}, ("tinyclass",), (), {}, "handcrafted"),
            reproduce.Job("random", "random", {}, ("tinyclass",), ("tinyclass",), {}, "floor")]
    plan = reproduce.Plan(scale, ("tinyclass",), jobs, [Claim(1, "Random beats logmel.",
                                                              [Spec("random", "logmel", "tinyclass")])])
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the jobs' thread count (--slurm-cpus 1): the same sums in the same order
    try:
        local = reproduce.run(plan, tiny_two_tasks, out=tmp_path / "local", device="cpu", jobs=1)
    finally:
        torch.set_num_threads(before)
    # a fresh cache: the cluster jobs compute everything again; the tiny task lives in conftest (in-process
    # plugin, handed to the jobs), importable by the job processes through PYTHONPATH
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache-slurm"))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    launcher = SlurmLauncher(SlurmSettings(gpus=0, cpus=1, cluster="local", poll_s=0.2, device="cpu"))
    capsys.readouterr()
    slurm = reproduce.run(plan, tiny_two_tasks, out=tmp_path / "slurm", device="cpu", launcher=launcher)
    err = capsys.readouterr().err
    assert not local.failures and not slurm.failures, (local.failures, slurm.failures, err[-3000:])
    assert len(slurm.records) == len(local.records) == 3 and scores(slurm) == scores(local)
    assert slurm.lines == local.lines
    assert "0 collected from an earlier run, 0 still on the cluster from an earlier run, 2 submitted" in err
    assert "job 2/2 finished: random" in err and "[random x tinyclass seed 0]" in err  # the job's log, replayed
    assert (tmp_path / "cache-slurm" / "embeddings").is_dir()  # the jobs wrote into the submitter's cache
    md = (tmp_path / "slurm" / "report.md").read_text()
    assert "launcher: local processes through submitit" in md

    # a rerun collects both outcomes and submits nothing; one outcome lost: that job alone is submitted again
    again = reproduce.run(plan, tiny_two_tasks, out=tmp_path / "slurm", device="cpu", launcher=launcher)
    assert "2 collected from an earlier run, 0 still on the cluster from an earlier run, 0 submitted" in \
        capsys.readouterr().err
    assert scores(again) == scores(local)
    results = sorted((tmp_path / "slurm" / "slurm" / "results").glob("*.pkl"))
    assert len(results) == 2
    results[0].write_bytes(b"torn")
    third = reproduce.run(plan, tiny_two_tasks, out=tmp_path / "slurm", device="cpu", launcher=launcher)
    assert "1 collected from an earlier run, 0 still on the cluster from an earlier run, 1 submitted" in \
        capsys.readouterr().err
    assert scores(third) == scores(local)


def test_a_job_that_dies_is_a_named_failure_and_the_rerun_submits_it_again(tiny_two_tasks, tmp_path, monkeypatch,
                                                                           capsys):
    pytest.importorskip("submitit")
    from bench.jobs import Job, JobSet
    from bench.launcher import SlurmLauncher, SlurmSettings
    from bench.settings import EvalSettings, RunConfig

    settings = EvalSettings(out=tmp_path / "out", data_roots=tiny_two_tasks, probe_grid="fast", progress=False)
    js = JobSet(RunConfig(encoders=[], tasks=["tinyclass"], settings=settings))
    launcher = SlurmLauncher(SlurmSettings(gpus=0, cpus=1, cluster="local", poll_s=0.2, device="cpu"))
    # a job whose process dies before writing its outcome: it cannot import the module of the task it is handed
    monkeypatch.delenv("PYTHONPATH", raising=False)
    failures: list[str] = []
    records, _ = launcher.run_jobs([Job("logmel", "logmel", {}, ("tinyclass",))], js, failures)
    assert not records and len(failures) == 1
    assert "logmel: its cluster job" in failures[0] and "Rerun the same command" in failures[0], failures
    assert "conftest" in failures[0]  # the reason: the job's exception
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    failures = []
    records, _ = launcher.run_jobs([Job("logmel", "logmel", {}, ("tinyclass",))], js, failures)
    assert not failures and len(records) == 1
    assert "0 collected from an earlier run, 0 still on the cluster from an earlier run, 1 submitted" in \
        capsys.readouterr().err


def test_launcher_options_are_checked_before_anything_runs(tmp_path, capsys, monkeypatch):
    from bench.launcher import parse_time

    assert parse_time("90") == 90 and parse_time("01:30") == 90 and parse_time("1:30:00") == 90
    assert parse_time("2-00:00:00") == 2880 and parse_time("0:00:30") == 1
    for bad in ("", "1h", "0", "2-5"):
        with pytest.raises(Exception, match="--slurm-time"):
            parse_time(bad)
    base = ["reproduce", "--plan", "--out", str(tmp_path)]
    assert main([*base, "--slurm-partition", "gpu"]) == 2
    assert "applies to --launcher slurm" in capsys.readouterr().err
    assert main([*base, "--launcher", "slurm", "--slurm-gpus", "4"]) == 2
    assert "accelerate launch" in capsys.readouterr().err
    assert main([*base, "--launcher", "slurm", "--slurm-time", "soon"]) == 2
    assert main([*base, "--launcher", "slurm", "--slurm-partition", "gpu", "--slurm-time", "12:00:00"]) == 0
    out = capsys.readouterr().out
    assert "launcher: Slurm; one job per row above (1 GPU, 8 CPU cores, 12:00 h; partition gpu)" in out
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "submitit" else real(name, *a))
    assert main([*base, "--launcher", "slurm"]) == 2
    assert "pip install music-bench[slurm]" in capsys.readouterr().err
    assert main(["sweep", "--encoder", "logmel", "-O", "x=1,2", "--launcher", "slurm", "--out", str(tmp_path)]) == 2


def test_help_does_not_import_submitit():
    code = ("import sys\nfrom bench.cli import main\n"
            "for argv in (['--help'], ['reproduce', '--help'], ['sweep', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('submitit' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False False", out.stderr[-2000:]


# --- the paper scale's options ---


def test_paper_plan_prints_the_official_grid_pools_and_protocol(tmp_path, capsys):
    from bench.pretrain import fma

    fma.make_demo(tmp_path / "fma")
    assert main(["reproduce", "--scale", "paper", "--protocol", "semisupcon", "--unlabeled-dir",
                 str(tmp_path / "fma"), "--plan"]) == 0
    out = capsys.readouterr().out
    for text in ("protocol: semisupcon (official SemiSupCon code",
                 "label fractions (p_s): 0.05, 0.1, 0.25, 0.5, 0.75, and 1.0 (semisupcon) = the official grid",
                 f"unlabeled pool: FMA at {(tmp_path / 'fma').resolve()} (its training split)",
                 "semisupcon[label_fraction=0.75]",
                 "pools: labeled mtat train split(s), p_s 0.25; unlabeled FMA at",
                 "pools: no labels; unlabeled FMA at", "pools: not pretrained"):
        assert text in out, text
    # the supervised baseline reads labels only; -O reaches every job, recipe keys only the pretrained ones
    assert main(["reproduce", "--scale", "paper", "--plan", "-O", "steps=2", "-O", "semisupcon:tau=0.2",
                 "--fractions", "0.01,0.2"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and "options:" in line}
    assert "semisupcon[label_fraction=0.01]" in rows and "semisupcon[label_fraction=0.05]" not in rows
    assert "steps=2" in rows["simclr"] and "tau=0.2" in rows["semisupcon"] and "tau" not in rows["simclr"]
    assert "steps" not in rows["random"]
    assert "the task train splits present (give --unlabeled-dir" in out
    assert main(["reproduce", "--scale", "paper", "--plan", "-O", "official_ps_twice=true"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if "options:" in line}
    assert "official_ps_twice=True" in rows["semisupcon"] and "official_ps_twice" not in rows["simclr"]
    for bad, says in ((["-O", "label_fraction=0.1"], "--fractions"), (["--fractions", "1.5"], "--fractions"),
                      (["--unlabeled-dir", str(tmp_path / "nowhere")], "no such folder"),
                      (["--protocol", "nope"], "invalid choice"), (["--conditions", "nonsense@9"], "nonsense")):
        with pytest.raises(SystemExit) if bad[0] == "--protocol" else _nothing():
            assert main(["reproduce", "--scale", "paper", "--plan", *bad]) == 2
        assert says in capsys.readouterr().err, bad


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_paper_scale_dry_run_end_to_end_on_tiny_stand_ins_locally_and_through_submitit(
        nsynth_tiny, tmp_path, capsys, monkeypatch):
    """The paper scale's whole path (official protocol, FMA pool, p_s sweep, robustness) at 2 steps on tiny data,
    in this process and then as submitit jobs (its local executor) on a fresh cache: the same records and
    verdicts."""
    pytest.importorskip("submitit")
    import torch

    from bench.pretrain import fma

    fma.make_demo(tmp_path / "fma")
    argv = ["reproduce", "--scale", "paper", "--tasks", "nsynth_pitch", "--data-root", f"nsynth_pitch={nsynth_tiny}",
            "--protocol", "semisupcon", "--unlabeled-dir", str(tmp_path / "fma"), "--fractions", "0.05",
            "--conditions", "reversal", "-O", "preset=demo", "-O", "steps=2", "-O", "batch_size=4",
            "-O", "probe_every=0", "-O", "semisupcon:label_task=nsynth_pitch",
            "-O", "supervised:label_task=nsynth_pitch", "--jobs", "1", "--device", "cpu"]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the jobs' thread count (--slurm-cpus 1): the same pretraining sums
    try:
        assert main([*argv, "--out", str(tmp_path / "local")]) == 0, capsys.readouterr().err[-3000:]
    finally:
        torch.set_num_threads(before)
    local = capsys.readouterr()

    def records(out):
        return [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]

    recs = records(tmp_path / "local")
    variants = {r["variant"] for r in recs}
    assert variants >= {"semisupcon", "simclr", "supervised", "random", "semisupcon[label_fraction=0.05]",
                        "semisupcon[label_task=nsynth_pitch]"}, variants
    assert {r["protocol"] for r in recs} == {"semisupcon"}
    assert any(r["condition"] != "clean" for r in recs if r["variant"] == "simclr")
    semi = next(r for r in recs if r["variant"] == "semisupcon[label_fraction=0.05]")
    assert "fma" in json.dumps(semi).lower()
    md = (tmp_path / "local" / "report.md").read_text()
    assert "probing protocol: semisupcon; label fractions (p_s): 0.05; unlabeled pool:" in md

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache-slurm"))
    assert main([*argv, "--out", str(tmp_path / "slurm"), "--launcher", "slurm", "--slurm-cluster", "local",
                 "--slurm-gpus", "0", "--slurm-cpus", "1", "--slurm-poll", "0.2"]) == 0, \
        capsys.readouterr().err[-3000:]
    slurm = capsys.readouterr()
    assert "6 submitted" in slurm.err

    def scores(rs):
        return sorted((r["variant"], r["condition"], r["seed"], json.dumps(r["metrics"], sort_keys=True)) for r in rs)

    assert scores(records(tmp_path / "slurm")) == scores(recs)
    verdicts = [ln for ln in local.out.splitlines() if ln.startswith("claim ")]
    assert len(verdicts) == 4 and verdicts == [ln for ln in slurm.out.splitlines() if ln.startswith("claim ")]


def test_a_rerun_waits_for_a_job_still_on_the_cluster_instead_of_submitting_it_again(tmp_path, monkeypatch, capsys):
    pytest.importorskip("submitit")
    import pickle

    import submitit

    from bench.config import DataRoots
    from bench.jobs import Finished, Job, JobSet
    from bench.launcher import SlurmLauncher, SlurmSettings, job_key
    from bench.settings import EvalSettings, RunConfig

    settings = EvalSettings(out=tmp_path / "out", data_roots=DataRoots(), progress=False)
    js = JobSet(RunConfig(encoders=[], tasks=["gtzan"], settings=settings))
    job = Job("logmel", "logmel", {}, ("gtzan",))
    launcher = SlurmLauncher(SlurmSettings(cluster="slurm", poll_s=0.01))
    folder = tmp_path / "out" / "slurm"
    (folder / "results").mkdir(parents=True)
    key = job_key(job, js)
    (folder / "jobs.json").write_text(json.dumps({key: {"label": "logmel", "job_id": "4242", "cluster": "slurm"}}))
    record = {"variant": "logmel", "condition": "clean", "seed": 0, "metrics": {"accuracy": 0.5}}
    states = {"4242": "RUNNING", "4343": "FAILED"}

    class FakeSlurmJob:  # the queue as sacct would report it; the running job ends at its first poll
        def __init__(self, folder, job_id):
            self.job_id, self.state = job_id, states[job_id]
            self.paths = type("P", (), {"stderr": folder / f"{job_id}.err"})()

        def done(self):
            with open(tmp_path / "out" / "slurm" / "results" / f"{key}.pkl", "wb") as fh:
                pickle.dump(Finished(0, [record], [], 12.5), fh)
            return True

        def stderr(self):
            return "[logmel x gtzan seed 0] accuracy=0.5"

        def stdout(self):
            return ""

    monkeypatch.setattr(submitit, "SlurmJob", FakeSlurmJob)
    monkeypatch.setattr(SlurmLauncher, "executor", lambda self, folder: pytest.fail("nothing is submitted"))
    failures: list[str] = []
    records, seconds = launcher.run_jobs([job], js, failures)
    err = capsys.readouterr().err
    assert records == [record] and not failures and seconds == {"logmel": 12.5}
    assert "0 collected from an earlier run, 1 still on the cluster from an earlier run, 0 submitted" in err
    assert "[logmel x gtzan seed 0] accuracy=0.5" in err
    assert launcher._live(folder, {"cluster": "slurm", "job_id": "4343"}) is None  # failed: submitted again
    assert launcher._live(folder, {"cluster": "local", "job_id": "4242"}) is None  # died with its submitter
    # an outcome with a failed part is submitted again, and its stale file is not taken for the new outcome
    with open(folder / "results" / f"{key}.pkl", "wb") as fh:
        pickle.dump(Finished(0, [], ["logmel x gtzan: it broke"], 1.0), fh)
    states["4444"] = "PENDING"
    submitted = []

    class FakeExecutor:
        def update_parameters(self, **kw):
            pass

        def submit(self, fn, *args):
            submitted.append(args[1].label)
            return FakeSlurmJob(folder, "4444")

    monkeypatch.setattr(SlurmLauncher, "executor", lambda self, folder: FakeExecutor())
    failures = []
    records, _ = launcher.run_jobs([job], js, failures)
    assert submitted == ["logmel"] and records == [record] and not failures
    assert json.loads((folder / "jobs.json").read_text())[key]["job_id"] == "4444"


def test_sweep_through_submitit_writes_its_leaderboard(tiny_two_tasks, tmp_path, monkeypatch, capsys):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    out = tmp_path / "sweep"
    assert main(["sweep", "--encoder", "random", "-O", "preset=demo", "-O", "seed=1,2", "--tasks", "tinyclass",
                 "--seeds", "0", "--probe-grid", "fast", "--device", "auto", "--out", str(out), "--launcher", "slurm",
                 "--slurm-cluster", "local", "--slurm-gpus", "0", "--slurm-cpus", "1", "--slurm-poll", "0.2"]) == 0
    err = capsys.readouterr().err
    assert "0 collected from an earlier run, 0 still on the cluster from an earlier run, 2 submitted" in err
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert sorted(r["variant"] for r in records) == ["random[seed=1]", "random[seed=2]"]
    assert all(r["device"] == "cpu" for r in records)  # "auto", resolved by each job on its node
    assert (out / "sweep.md").is_file() and (out / "leaderboard.md").is_file()
