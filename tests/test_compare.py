"""`bench compare`: exit status, statuses, baseline files, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.cli import main
from bench.results import SCHEMA_VERSION, new_record, write_record


def rec(encoder, task, seed, value, demo=True, protocol=None):
    vals = list(np.clip(value + np.linspace(-0.04, 0.04, 41), 0, 1))
    return new_record(
        encoder=encoder, task=task, seed=seed, primary_metric="accuracy", metrics={"accuracy": value},
        confidence={"metric": "accuracy", "value": value, "lo": min(vals), "hi": max(vals), "seed": 1,
                    "n_boot": 41, "values": vals},
        demo_data=demo, encoder_config={}, weights_hash="w", data={"fingerprint": f"fp-{task}"},
        **({"protocol": protocol} if protocol else {}),
    )


def results(tmp_path, name, scores, demo=True, protocol=None):
    folder = tmp_path / name
    for (enc, task), v in scores.items():
        for seed in (0, 1):
            write_record(rec(enc, task, seed, v, demo, protocol), folder / "records")
    return folder


@pytest.fixture
def base(tmp_path):
    folder = results(tmp_path, "base", {("a", "t1"): 0.80, ("a", "t2"): 0.50})
    out = tmp_path / "baseline.json"
    assert main(["compare", str(folder), "--write-baseline", str(out)]) == 0
    return out


def test_baseline_file_format(base):
    doc = json.loads(base.read_text())
    assert doc["format"] == "bench-baseline" and doc["schema_version"] == SCHEMA_VERSION and doc["demo_data"]
    e = {(x["encoder"], x["task"]): x for x in doc["entries"]}
    assert e[("a", "t1")]["mean"] == pytest.approx(0.8)
    assert e[("a", "t1")]["lo"] < 0.8 < e[("a", "t1")]["hi"]


def test_pass_within_tolerance(tmp_path, base, capsys):
    cur = results(tmp_path, "cur", {("a", "t1"): 0.795, ("a", "t2"): 0.52})
    assert main(["compare", str(cur), str(base), "--tolerance", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "| ok " in out and "improved" in out and "DEMO DATA" in out


def test_regression_fails_with_a_delta_table(tmp_path, base, capsys):
    cur = results(tmp_path, "cur", {("a", "t1"): 0.70, ("a", "t2"): 0.50})
    assert main(["compare", str(cur), str(base), "--tolerance", "0.01"]) == 1
    out = capsys.readouterr().out
    assert "regressed" in out and "-0.1000" in out and "FAIL" in out
    assert main(["compare", str(cur), str(base), "--tolerance", "0.2"]) == 0


def test_below_interval_rule(tmp_path, base):
    # lower bound of a t1 is 0.76: 0.77 passes, 0.75 fails, whatever the tolerance
    ok = results(tmp_path, "ok", {("a", "t1"): 0.77, ("a", "t2"): 0.5})
    bad = results(tmp_path, "bad", {("a", "t1"): 0.75, ("a", "t2"): 0.5})
    assert main(["compare", str(ok), str(base), "--below-interval"]) == 0
    assert main(["compare", str(bad), str(base), "--below-interval", "--tolerance", "1"]) == 1


def test_new_pair_is_reported_missing_pair_fails_unless_allowed(tmp_path, base, capsys):
    cur = results(tmp_path, "cur", {("a", "t1"): 0.8, ("b", "t1"): 0.3})
    assert main(["compare", str(cur), str(base)]) == 1
    out = capsys.readouterr().out
    assert "| new " in out and "| missing " in out
    assert main(["compare", str(cur), str(base), "--allow-missing"]) == 0


def test_leaderboard_json_and_results_folders_work_as_baseline(tmp_path):
    from bench.cli import main as cli

    b = results(tmp_path, "b", {("a", "t1"): 0.8})
    assert cli(["leaderboard", str(b)]) == 0
    cur = results(tmp_path, "cur", {("a", "t1"): 0.6})
    assert cli(["compare", str(cur), str(b / "leaderboard.json")]) == 1
    assert cli(["compare", str(cur), str(b)]) == 1
    assert cli(["compare", str(b), str(cur)]) == 0


def test_refusals_exit_2_with_a_message(tmp_path, base, capsys):
    real = results(tmp_path, "real", {("a", "t1"): 0.8, ("a", "t2"): 0.5}, demo=False)
    assert main(["compare", str(real), str(base)]) == 2
    assert "demo data" in capsys.readouterr().err
    doc = json.loads(base.read_text())
    doc["schema_version"] = SCHEMA_VERSION + 1
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    cur = results(tmp_path, "cur", {("a", "t1"): 0.8, ("a", "t2"): 0.5})
    assert main(["compare", str(cur), str(old)]) == 2
    assert "schema version" in capsys.readouterr().err
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]")
    assert main(["compare", str(cur), str(junk)]) == 2
    assert "not a baseline file" in capsys.readouterr().err
    assert main(["compare", str(cur), str(tmp_path / "nope.json")]) == 2


def test_a_score_under_another_protocol_is_refused(tmp_path, base, capsys):
    # the baseline's records carry no protocol (older files): they count as `bench`
    same = results(tmp_path, "same", {("a", "t1"): 0.80, ("a", "t2"): 0.50}, protocol="bench")
    assert main(["compare", str(same), str(base)]) == 0
    other = results(tmp_path, "other", {("a", "t1"): 0.80, ("a", "t2"): 0.50}, protocol="semisupcon")
    capsys.readouterr()
    assert main(["compare", str(other), str(base)]) == 2
    err = capsys.readouterr().err
    assert "a x t1 x clean" in err and "'semisupcon'" in err and "'bench'" in err and "--protocol bench" in err


def test_limited_records_never_pass_or_set_a_gate(tmp_path, base, capsys):
    """`bench run --limit N` records (a few tracks per split) are refused as CURRENT, as a baseline source, and
    through the leaderboard.json of such a run: exit 2 with a message, never a silent pass."""
    from bench import leaderboard

    folder = tmp_path / "limited"
    for seed in (0, 1):
        for task, v in (("t1", 0.80), ("t2", 0.50)):
            write_record({**rec("a", task, seed, v), "limit": 8}, folder / "records")
    assert main(["compare", str(folder), str(base)]) == 2
    err = capsys.readouterr().err
    assert "--limit" in err and "a x t1 (limit 8)" in err
    assert main(["compare", str(folder), "--write-baseline", str(tmp_path / "b.json")]) == 2
    assert not (tmp_path / "b.json").exists()
    from bench.results import read_records

    board = tmp_path / "leaderboard.json"
    board.write_text(json.dumps(leaderboard.baseline(read_records([folder]))))
    assert main(["compare", str(board), str(base)]) == 2
    assert "--limit" in capsys.readouterr().err
