"""Command-line habits for people: `bench list --json`, did-you-mean for options, near-miss data roots,
swapped `bench compare` arguments."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.cli import main


def bench(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return code, out.out, out.err


def test_list_json_parses_with_task_metadata(capsys):
    code, out, _ = bench(capsys, "list", "--json")
    assert code == 0
    data = json.loads(out)
    tasks = {t["name"]: t for t in data["tasks"]}
    assert {"gtzan", "mtat", "nsynth_pitch", "giantsteps_key"} <= set(tasks)
    g = tasks["gtzan"]
    assert g["kind"] == "multiclass" and g["splits"] == ["train", "valid", "test"]
    assert g["num_classes"] == 10 and "blues" in g["classes"] and g["primary_metric"] == "accuracy"
    assert g["download"] == "bench data download gtzan --to DIR" and g["licence"] and g["homepage"]
    assert tasks["nsynth_pitch"]["licence"] == "CC BY 4.0" and tasks["nsynth_pitch"]["num_classes"] == 88
    assert tasks["mtat"]["kind"] == "multilabel" and tasks["mtat"]["classes"] is None  # read from the data
    encoders = {e["name"]: e for e in data["encoders"]}
    assert {"logmel", "semisupcon"} <= set(encoders) and encoders["logmel"]["description"]
    assert data["plugin_failures"] == []


def test_list_json_imports_neither_torch_nor_numpy():
    code = ("import sys, io, contextlib\nfrom bench.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['list', '--json'])\n"
            "print('HEAVY=' + ','.join(m for m in ('torch', 'numpy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "HEAVY=\n" in out, out


def _results(tmp_path, name, value, data, created=None):
    import numpy as np

    from bench.results import new_record, write_record

    folder = tmp_path / name
    for seed in (0, 1):
        vals = list(np.clip(value + np.linspace(-0.04, 0.04, 41), 0, 1))
        r = new_record(encoder="a", task="t1", seed=seed, primary_metric="accuracy", metrics={"accuracy": value},
                       confidence={"metric": "accuracy", "value": value, "lo": min(vals), "hi": max(vals),
                                   "seed": 1, "n_boot": 41, "values": vals},
                       demo_data=True, encoder_config={}, weights_hash="w", data=data,
                       task_settings={"pitch_max": 108})
        if created:
            r["created"] = created
        write_record(r, folder / "records")
    return folder


DATA = {"fingerprint": "fp-1", "split_fingerprints": {"train": "a", "valid": "b", "test": "c"},
        "tracks": {"train": 10, "valid": 4, "test": 6}}


def test_compare_with_swapped_arguments_is_refused(capsys, tmp_path):
    res = _results(tmp_path, "res", 0.8, DATA)
    baseline = tmp_path / "baseline.json"
    assert main(["compare", str(res), "--write-baseline", str(baseline)]) == 0
    code, _, err = bench(capsys, "compare", baseline, res)
    assert code == 2 and "swapped" in err and f"bench compare {res} {baseline}" in err


def test_compare_warns_when_the_baseline_is_newer_than_the_current_results(capsys, tmp_path):
    old = _results(tmp_path, "old", 0.8, DATA, created="2026-01-01T10:00:00+0000")
    new = _results(tmp_path, "new", 0.8, DATA, created="2026-06-01T10:00:00+0000")
    code, _, err = bench(capsys, "compare", old, new)
    assert code == 0 and "newer than the current results" in err and "swapped" in err
    code, _, err = bench(capsys, "compare", new, old)
    assert code == 0 and "newer" not in err


def test_compare_says_which_split_of_the_data_differs(capsys, tmp_path):
    res = _results(tmp_path, "res", 0.8, DATA)
    baseline = tmp_path / "baseline.json"
    assert main(["compare", str(res), "--write-baseline", str(baseline)]) == 0
    other = {"fingerprint": "fp-2", "split_fingerprints": {"train": "a", "valid": "b", "test": "X"},
             "tracks": {"train": 10, "valid": 4, "test": 5}}
    cur = _results(tmp_path, "cur", 0.8, other)
    code, out, _ = bench(capsys, "compare", cur, baseline)
    assert code == 0 and "data differs from the baseline's: test split (5 tracks vs 6)" in out
    assert "train split" not in out
    # an older baseline file with only the combined fingerprint: said so, with the fingerprints
    doc = json.loads(baseline.read_text())
    for e in doc["entries"]:
        e.pop("data", None)
    baseline.write_text(json.dumps(doc))
    code, out, _ = bench(capsys, "compare", cur, baseline)
    assert code == 0 and "fingerprint fp-2 vs fp-1" in out and "per-split detail" in out


@pytest.mark.parametrize("argv,words", [
    (["run", "--probe-grd", "fast"], "did you mean --probe-grid (not --probe-grd)?"),
    (["run", "-e", "logmel", "--probe-grd=fast"], "did you mean --probe-grid"),
    (["compare", "a", "b", "--tolerence", "0.1"], "did you mean --tolerance"),
    (["data", "check", "--tsk", "gtzan"], "did you mean --task"),
    (["data", "download", "gtzan", "--too", "x"], "did you mean --to (not --too)"),
    (["list", "--jsn"], "did you mean --json"),
    (["runn"], "did you mean 'run'?"),
])
def test_a_misspelled_option_gets_the_verbs_usage_and_a_suggestion(capsys, argv, words):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and words in err, err
    if argv[0] != "runn":
        assert f"usage: bench {argv[0]}" in err  # the verb's usage, not the top-level one


def test_an_unrelated_unknown_option_gets_no_wild_guess(capsys):
    with pytest.raises(SystemExit):
        main(["run", "-e", "logmel", "--zzz"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --zzz" in err and "did you mean" not in err


def _check(capsys, task, root):
    code, out, err = bench(capsys, "data", "check", "--task", task, "--data-root", root)
    assert code == 2
    return out + err


def test_gtzan_in_upper_case_is_named_with_the_rename(capsys, tmp_path):
    (tmp_path / "GTZAN" / "genres" / "blues").mkdir(parents=True)
    msg = _check(capsys, "gtzan", tmp_path)
    assert f"Found {tmp_path / 'GTZAN'}" in msg and f"mv {tmp_path / 'GTZAN'} {tmp_path / 'gtzan'}" in msg


def test_kaggle_gtzan_one_folder_too_deep_gets_the_link_that_fixes_it(capsys, tmp_path):
    from bench import plugins

    (tmp_path / "gtzan" / "Data" / "genres_original" / "blues").mkdir(parents=True)
    msg = _check(capsys, "gtzan", tmp_path)
    link = tmp_path / "gtzan" / "genres_original"
    assert "one folder too deep" in msg and f"ln -s Data/genres_original {link}" in msg
    link.symlink_to("Data/genres_original")  # doing what it says makes the folder readable
    assert plugins.get_task("gtzan").audio_dir(tmp_path) == link


def test_kaggle_archive_as_the_data_root_gets_the_link_and_flag(capsys, tmp_path):
    archive = tmp_path / "archive"
    (archive / "Data" / "genres_original").mkdir(parents=True)
    msg = _check(capsys, "gtzan", archive)
    assert f"ln -s Data {archive / 'gtzan'} then --data-root {archive}" in msg


@pytest.mark.parametrize("task,folder,marker", [
    ("gtzan", "gtzan", "genres"), ("nsynth_pitch", "nsynth", "nsynth-train"),
    ("mtat", "magnatagatune", "annotations_final.csv"),
    ("giantsteps_key", "giantsteps-key-dataset", "annotations/key"),
])
def test_data_root_pointing_at_the_dataset_folder_itself_gets_the_flag(capsys, tmp_path, task, folder, marker):
    ds = tmp_path / folder
    target = ds / marker
    if "." in target.name:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x")
    else:
        target.mkdir(parents=True)
    msg = _check(capsys, task, ds)
    assert f"is the {folder}/ folder itself" in msg and f"--data-root {tmp_path}" in msg
    assert f"--data-root {task}={tmp_path}" in msg


def test_a_plain_missing_dataset_gets_no_invented_hint(capsys, tmp_path):
    (tmp_path / "unrelated").mkdir()
    msg = _check(capsys, "gtzan", tmp_path)
    assert "not found" in msg and "Found" not in msg and "ln -s" not in msg
