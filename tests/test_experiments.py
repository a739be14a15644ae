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
    assert (out / "sweep.png").stat().st_size > 1000
    table = (out / "sweep.md").read_text()
    assert "semisupcon[steps=1]" in table and "| steps" in table.replace("|  steps", "| steps")

    # the rerun (as after an interruption) trains nothing and re-probes nothing
    import bench.pretrain.checkpoints as ck

    def no_training(*a, **k):
        raise AssertionError("a finished variant was pretrained again")

    monkeypatch.setattr(ck, "pretrain", no_training)
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "2 already pretrained, 0 to pretrain" in err and err.count("reusing 1 record(s)") == 2


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
    assert main([*base, "-O", "tau=0.1,0.1000"]) == 2  # two spellings of one model
    assert "the same model twice" in capsys.readouterr().err
    assert main([*base, "-O", "steps=2"]) == 2
    assert "at least one swept option" in capsys.readouterr().err
    assert main([*base, "-O", "simclr:tau=0.1,0.2"]) == 2
    assert "not an encoder of this run" in capsys.readouterr().err
