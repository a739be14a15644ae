"""The pair driver every command shares: the protocol's task settings apply everywhere, and robustness scores
its clean rows as bench run does."""

from __future__ import annotations

import json

from bench.cli import main


def _records(out):
    return [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]


def test_robustness_scores_clean_rows_exactly_as_run_does_under_the_semisupcon_protocol(nsynth_tiny, tmp_path):
    from bench.run import make_task

    common = ["-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(nsynth_tiny), "--protocol", "semisupcon",
              "--seeds", "0", "--device", "cpu", "--no-progress"]
    assert main(["run", *common, "--out", str(tmp_path / "run")]) == 0
    assert main(["robustness", *common, "--conditions", "bitcrush@6", "--out", str(tmp_path / "rob")]) == 0
    (ran,) = _records(tmp_path / "run")
    clean = [r for r in _records(tmp_path / "rob") if r["condition"] == "clean"]
    assert len(clean) == 1
    settings = make_task("nsynth_pitch", "semisupcon").settings
    assert settings != make_task("nsynth_pitch").settings  # the protocol changes the task: the test can tell
    for rec in (ran, clean[0]):
        assert rec["protocol"] == "semisupcon" and rec["task_settings"] == settings
    assert clean[0]["metrics"] == ran["metrics"] and clean[0]["confidence"] == ran["confidence"]
    assert clean[0]["n_classes"] == ran["n_classes"] and clean[0]["data"]["fingerprint"] == ran["data"]["fingerprint"]


def test_robustness_and_sweep_use_the_marble_task_settings(nsynth_tiny, tmp_path):
    from bench.run import make_task

    marble = make_task("nsynth_pitch", "marble").settings
    assert marble != make_task("nsynth_pitch").settings
    common = ["-t", "nsynth_pitch", "--data-root", str(nsynth_tiny), "--protocol", "marble", "--seeds", "0",
              "--device", "cpu", "--no-progress"]
    assert main(["robustness", "-e", "logmel", *common, "--conditions", "bitcrush@6",
                 "--out", str(tmp_path / "rob")]) == 0
    assert main(["sweep", "-e", "random", "-O", "preset=tiny", "-O", "seed=1,2", *common,
                 "--out", str(tmp_path / "sweep")]) == 0
    for out, n in (("rob", 2), ("sweep", 2)):
        recs = _records(tmp_path / out)
        assert len(recs) == n and all(r["protocol"] == "marble" and r["task_settings"] == marble for r in recs)
