"""`bench run --limit N` (a few tracks per split, recorded) and the saved run_config.json / `--config`."""

import json

from bench.cli import main


def test_limit_keeps_n_tracks_per_split_says_so_and_config_reruns_it(nsynth_tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(nsynth_tiny), "--out", str(out),
                 "--limit", "4", "--probe-grid", "fast", "--seeds", "0"]) == 0
    rec = json.loads((out / "records" / "logmel__nsynth_pitch__seed0.json").read_text())
    assert rec["limit"] == 4 and rec["data"]["tracks"] == {"train": 4, "valid": 4, "test": 4}
    saved = json.loads((out / "run_config.json").read_text())
    assert saved["limit"] == 4 and saved["encoders"] == ["logmel"] and saved["tasks"] == ["nsynth_pitch"]
    assert saved["data_roots"]["general"] == str(nsynth_tiny) and saved["probe_grid"] == "fast"
    assert saved["seeds"] == [0]
    capsys.readouterr()
    # the saved config reruns the same request into another folder: the same tracks and scores
    again = tmp_path / "again"
    assert main(["run", "--config", str(out / "run_config.json"), "--out", str(again)]) == 0
    rec2 = json.loads((again / "records" / "logmel__nsynth_pitch__seed0.json").read_text())
    assert rec2["limit"] == 4 and rec2["data"]["fingerprint"] == rec["data"]["fingerprint"]
    assert rec2["metrics"] == rec["metrics"]
    assert json.loads((again / "run_config.json").read_text())["out"] == str(again)
    # a limited run is never a gate
    assert main(["compare", str(out), "--write-baseline", str(tmp_path / "b.json")]) == 2
    assert "--limit" in capsys.readouterr().err


def test_limit_choice_is_fixed_by_track_id_not_order():
    from bench.run import limit_items
    from bench.task import Item

    items = [Item(f"t{i:02d}", f"/x/t{i:02d}.wav", i % 3) for i in range(20)]
    kept = limit_items(items, 5)
    assert len(kept) == 5 and kept == [it for it in items if it in kept]  # in their order
    assert {it.track_id for it in limit_items(items[::-1], 5)} == {it.track_id for it in kept}
    assert limit_items(items, 50) == items


def test_bad_limit_and_config_are_usage_errors(tmp_path, capsys):
    assert main(["run", "-e", "logmel", "-t", "nsynth_pitch", "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
    bad = tmp_path / "run_config.json"
    bad.write_text("{}")
    assert main(["run", "--config", str(bad)]) == 2
    assert "run_config.json" in capsys.readouterr().err
    assert main(["run"]) == 2
    assert "--encoder" in capsys.readouterr().err


def test_log_predictions_writes_targets_and_scores_that_give_the_recorded_accuracy(nsynth_tiny, tmp_path):
    import numpy as np

    from bench import predictions

    out = tmp_path / "out"
    assert main(["run", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(nsynth_tiny), "--out", str(out),
                 "--limit", "6", "--probe-grid", "fast", "--seeds", "0,1", "--log-predictions"]) == 0
    for seed in (0, 1):
        rec = json.loads((out / "records" / f"logmel__nsynth_pitch__seed{seed}.json").read_text())
        header, rows = predictions.read(out / "records" / f"logmel__nsynth_pitch__seed{seed}.predictions.jsonl")
        assert header["seed"] == seed and header["kind"] == "multiclass" and header["task"] == "nsynth_pitch"
        assert len(rows) == rec["data"]["tracks"]["test"] == 6
        assert all(len(r["scores"]) == len(header["classes"]) for r in rows)
        assert all(r["predicted"] == int(np.argmax(r["scores"])) for r in rows)
        accuracy = np.mean([r["predicted"] == r["target"] for r in rows])
        assert accuracy == rec["metrics"]["accuracy"]  # the file holds what the record scored
    assert json.loads((out / "run_config.json").read_text())["log_predictions"] is True
