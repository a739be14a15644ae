"""Hostile-user cases of the second review (issue 22, the parts outside the caches): each fails on the code
the review found and passes after.

Sections:
  1. boolean options: one strict rule (``bool("no")`` is True)
  2. installing: the packages a wheel holds, the Python it asks for
  3. demo data reached through --data-root
  4. processes: --threads, WORLD_SIZE without a launcher, a full disk under the error boundary
  5. input: huge lines, lying WAV headers, a diverging probe grid, repeated names, paths of the wrong kind
  6. metrics: non-finite scores refused; ties, n=2 and one class pinned against scikit-learn
"""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.errors import BenchError, PluginError


def bench(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return code, out.out, out.err


# == 1. boolean options ====================================================================================


def test_parse_bool_accepts_only_the_strict_words():
    from bench.options import parse_bool

    for word in ("true", "YES", " on ", "1", 1, True):
        assert parse_bool(word, "x", "encoder 'e'") is True
    for word in ("false", "No", "OFF", "0", 0, False):
        assert parse_bool(word, "x", "encoder 'e'") is False
    for junk in ("maybe", "", "2", 2, 0.5, None, "nope", "y"):
        with pytest.raises(PluginError, match=r"encoder 'e': option x=.* must be true or false"):
            parse_bool(junk, "x", "encoder 'e'")


@pytest.fixture(scope="module")
def remote_model(tmp_path_factory):
    """A model folder with its own code that leaves a marker file when that code runs."""
    pytest.importorskip("transformers")
    from hf_tiny import make_model

    folder = make_model("remote", tmp_path_factory.mktemp("hf") / "remote")
    marker = folder.parent / "REMOTE_CODE_RAN"
    path = folder / "configuration_tinymert.py"
    path.write_text(path.read_text() + f"\nopen({str(marker)!r}, 'w').close()\n")
    return folder, marker


@pytest.mark.parametrize("word", ["no", "off", "false", "0", "No"])
def test_trust_remote_code_no_runs_no_remote_code(remote_model, word):
    from bench_plugins.hf import HFEncoder

    folder, marker = remote_model
    with pytest.raises(PluginError, match="trust_remote_code=true"):
        HFEncoder(model=str(folder), seconds=1, trust_remote_code=word)
    assert not marker.exists(), f"-O trust_remote_code={word} ran the model folder's own code"


def test_trust_remote_code_no_at_the_command_line(remote_model, capsys, nsynth_tiny, tmp_path):
    folder, marker = remote_model
    code, _, err = bench(capsys, "run", "-e", "hf", "-t", "nsynth_pitch", "-O", f"model={folder}", "-O",
                         "trust_remote_code=no", "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "o"))
    assert code == 2 and "trust_remote_code=true" in err and not marker.exists()


def test_hf_boolean_options_refuse_junk_naming_the_option():
    pytest.importorskip("transformers")
    from bench_plugins.hf import HFEncoder

    for option in ("trust_remote_code", "download"):
        with pytest.raises(PluginError, match=rf"encoder 'hf': option {option}='maybe' must be true or false"):
            HFEncoder(model="x", **{option: "maybe"})


def test_hf_download_no_does_not_download(monkeypatch):
    """``-O download=no`` must look in the local cache only (``local_files_only=True``)."""
    pytest.importorskip("transformers")
    import huggingface_hub

    from bench_plugins.hf import HFEncoder

    seen = {}

    def fake_snapshot_download(model, revision=None, local_files_only=None, **kw):
        seen["local_files_only"] = local_files_only
        raise huggingface_hub.errors.LocalEntryNotFoundError("not here")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    with pytest.raises(PluginError):
        HFEncoder(model="tiny-org/not-cached", seconds=1, download="no")
    assert seen == {"local_files_only": True}


@pytest.mark.parametrize("encoder,option", [("semisupcon", "weighted"), ("semisupcon", "gather"),
                                            ("semisupcon", "label_aware_augment"), ("simclr", "gather"),
                                            ("supervised", "label_aware_augment")])
def test_samplecnn_boolean_options_follow_the_strict_rule(encoder, option):
    from bench import plugins

    cls = plugins.encoders().get(encoder).load()
    for word, value in (("no", False), ("off", False), ("0", False), ("yes", True), ("on", True), (1, True)):
        enc = cls(**{option: word})
        got = enc.objective.get(option, False)
        assert got is value, (option, word, got)
    if option == "label_aware_augment":
        assert cls(**{option: "no"}).label_spec().label_aware_augment is False
        assert cls(**{option: "on"}).label_spec().label_aware_augment is True
    with pytest.raises(PluginError, match=rf"encoder '{encoder}': option {option}='perhaps' must be true or false"):
        cls(**{option: "perhaps"})


def test_recipe_augment_follows_the_strict_rule():
    from bench.encoder import Recipe

    r = Recipe(steps=1, batch_size=2, lr=1e-3)
    assert r.replace(augment="off").augment is False and r.replace(augment="on").augment is True
    with pytest.raises(BenchError, match=r"recipe: option augment='sometimes' must be true or false"):
        r.replace(augment="sometimes")


def test_a_junk_boolean_at_the_command_line_exits_2(capsys, nsynth_tiny, tmp_path):
    code, _, err = bench(capsys, "run", "-e", "semisupcon", "-t", "nsynth_pitch", "-O", "label_aware_augment=nah",
                         "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "o"))
    assert code == 2 and "label_aware_augment='nah' must be true or false" in err and "semisupcon" in err


# == 2. installing =========================================================================================


def test_a_wheel_holds_the_subpackages_and_asks_for_python_3_11():
    """`pip install .` left out bench.commands and six more: `bench --help` died with ModuleNotFoundError.
    (tests/test_structure.py checks the list against every folder; CI installs a wheel and runs it.)"""
    import tomllib

    from conftest import REPO

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = set(cfg["tool"]["setuptools"]["packages"])
    assert {"bench.commands", "bench.pretrain", "bench.experiments", "bench.augment", "bench.robustness",
            "bench.corruptions", "bench.testing"} <= packages
    assert cfg["project"]["requires-python"] == ">=3.11"
    assert "data/**/*" in " ".join(cfg["tool"]["setuptools"]["package-data"]["bench_tasks"])
    assert "pip wheel" in (REPO / ".ci" / "run").read_text()


# == 3. demo data reached through --data-root ==============================================================


def test_demo_data_given_as_a_data_root_is_still_demo_data(capsys, nsynth_tiny, tmp_path):
    """`bench data demo` suggests --data-root DIR; the demo_metadata.json there makes everything say demo."""
    import json

    assert (nsynth_tiny / "nsynth" / "demo_metadata.json").is_file()
    out = tmp_path / "o"
    code, stdout, err = bench(capsys, "run", "-e", "logmel", "-t", "nsynth_pitch", "--protocol", "marble",
                              "--seeds", "0", "--data-root", str(nsynth_tiny), "--no-progress", "--out", str(out))
    assert code == 0, err
    assert "DEMO DATA" in stdout + err
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert records and all(r["demo_data"] is True for r in records)
    code, stdout, err = bench(capsys, "compare", str(out), str(out))
    assert code == 0 and "DEMO DATA" in stdout and "real data" not in stdout + err
    code, stdout, err = bench(capsys, "leaderboard", str(out), "--reference", "marble")
    assert code == 0 and "MERT-v1-95M" not in stdout and "demo data" in err


def test_a_real_looking_root_is_not_taken_for_demo_data(tmp_path):
    from bench.config import DataRoots, has_demo_metadata
    from bench_tasks.nsynth import NSynthPitch

    task = NSynthPitch()
    (tmp_path / "nsynth").mkdir()
    roots = DataRoots(general=str(tmp_path))
    assert not has_demo_metadata(task, tmp_path) and not roots.demo_data(task, tmp_path)
    (tmp_path / "nsynth" / "demo_metadata.json").write_text("{}")
    assert roots.demo_data(task, tmp_path)
    assert DataRoots().demo_data(task, tmp_path / "elsewhere")  # no root configured: generated demo data


# == 4. processes ==========================================================================================


def test_threads_beyond_the_cores_are_clamped_with_a_note(capsys, monkeypatch):
    import torch

    from bench.commands.common import apply_threads
    from bench.limits import usable_cores

    before = torch.get_num_threads()
    try:
        assert apply_threads(100000) == usable_cores()
        assert torch.get_num_threads() == usable_cores()
        assert "more than the" in capsys.readouterr().err
        monkeypatch.setenv("BENCH_THREADS", "99999")
        assert apply_threads(None) == usable_cores()
        assert apply_threads(1) == 1 and "note" not in capsys.readouterr().err.split("99999")[-1]
    finally:
        torch.set_num_threads(before)


def test_world_size_without_a_launcher_is_a_message_not_a_traceback(capsys, monkeypatch, tmp_path):
    from bench.limits import check_launcher

    monkeypatch.setenv("WORLD_SIZE", "2")
    for k in ("RANK", "LOCAL_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK"):
        monkeypatch.delenv(k, raising=False)
    for verb in (["run", "-e", "logmel", "-t", "nsynth_pitch", "--out", str(tmp_path / "o")],
                 ["pretrain", "-e", "simclr"]):
        code, _, err = bench(capsys, *verb)
        assert code == 2 and "no launcher started this one" in err and "accelerate launch" in err
    check_launcher({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"})  # a launcher's process: fine
    check_launcher({"WORLD_SIZE": "1"})
    with pytest.raises(BenchError, match="not a whole number"):
        check_launcher({"WORLD_SIZE": "two"})


def _disk_full_under(monkeypatch, folder):
    """Every whole-file write under ``folder`` fails as on a full disk: the file is created, then ENOSPC.

    The store writes through uniquely named temporary files (``.NAME.<pid>.<random>.tmp``), so a link to
    /dev/full at a predictable name cannot stand in for a full disk there."""
    import errno
    import pathlib

    real_bytes, real_text = pathlib.Path.write_bytes, pathlib.Path.write_text
    root = str(folder)

    def failing(real):
        def write(self, data, *a, **kw):
            if str(self).startswith(root):
                real(self, data[:0], *a, **kw)
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
            return real(self, data, *a, **kw)
        return write

    monkeypatch.setattr(pathlib.Path, "write_bytes", failing(real_bytes))
    monkeypatch.setattr(pathlib.Path, "write_text", failing(real_text))


def _full(path):
    """Make ``path`` a file on a full disk: a link to /dev/full (every write fails with ENOSPC)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink("/dev/full", path)


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
def test_the_error_boundary_survives_a_full_disk_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    from bench import results
    from bench.run import guarded

    out = tmp_path / "out"
    _full(out / "errors.log")
    failures = []

    def plugin_bug():
        raise RuntimeError("x" * 100_000)

    assert guarded("enc x task", failures, out, plugin_bug) is None
    assert len(failures) == 1 and "No space left on device" in failures[0] and len(failures[0]) < 1000
    rec = {"encoder": "logmel", "task": "gtzan", "seed": 0}
    (out / "records").mkdir(parents=True)
    _disk_full_under(monkeypatch, out / "records")
    with pytest.raises(BenchError, match="cannot write the record .*No space left"):
        results.write_record(rec, out / "records")
    assert list((out / "records").iterdir()) == []  # the temporary file is gone
    assert guarded("write", failures, out, results.write_record, rec, out / "records") is None
    assert "cannot write the record" in failures[-1]


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
def test_a_run_on_a_full_disk_ends_with_a_message(capsys, nsynth_tiny, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    _disk_full_under(monkeypatch, out)
    code, _, err = bench(capsys, "run", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(nsynth_tiny),
                         "--seeds", "0", "--probe-grid", "fast", "--no-progress", "--out", str(out))
    assert code != 0 and "No space left on device" in err
    assert not any(p.name.endswith(".tmp") for p in out.rglob("*"))


# == 5. input ==============================================================================================

HUGE = 1_000_000  # a 200 MB line behaves the same, only slower


def test_a_huge_line_in_a_gtzan_split_list_is_quoted_short(tmp_path, capsys):
    from bench.config import DataRoots
    from bench.run import index_task
    from bench_tasks.gtzan import GTZANTask as GTZAN

    from conftest import write_wav

    root = tmp_path / "data"
    g = root / "gtzan"
    for i, genre in enumerate(("blues", "rock", "jazz")):
        write_wav(g / "genres" / genre / f"{genre}.0000{i}.wav", seconds=0.2, sr=4000)
    (g / "train_filtered.txt").write_text("blues/blues.00000.wav\n" + "x" * HUGE + "\n")
    (g / "valid_filtered.txt").write_text("rock/rock.00001.wav\n")
    (g / "test_filtered.txt").write_text("jazz/jazz.00002.wav\n")
    task = GTZAN()
    split = task.items("train", root)
    assert len(split.items) == 1 and len(split.problems) == 1
    assert len(str(split.problems[0])) < 1000 and "more characters" in str(split.problems[0])
    data = index_task(task, DataRoots(general=str(root)))
    assert sum(len(p) for ps in data.problems.values() for p in ps) < 2000  # what records and memo copy
    assert len(capsys.readouterr().err) < 2000  # what the run echoes


def test_a_huge_mtat_field_is_reported_as_too_long_not_as_broken_quoting(tmp_path):
    from bench_tasks.mtat import parse_annotations

    folder = tmp_path / "magnatagatune"
    folder.mkdir()
    rows = ["clip_id\tguitar\tmp3_path", "1\t1\t0/a.mp3", "2\t" + "1" * HUGE + "\t1/b.mp3", "3\t0\t2/c.mp3"]
    (folder / "annotations_final.csv").write_text("\n".join(rows) + "\n")
    index = parse_annotations(folder / "annotations_final.csv", folder)
    msgs = [m for _, m, _ in index.problems]
    assert len(msgs) == 1 and "characters" in msgs[0] and "quoting" not in msgs[0] and len(msgs[0]) < 300


def _wav_bytes(frames: int, sr: int = 16000) -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    x = np.random.default_rng(0).uniform(-0.5, 0.5, frames).astype(np.float32)
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_lying_truncated_and_one_sample_wavs_are_skipped_with_a_reason(tmp_path):
    import struct

    from bench.audio import AudioError, load, load_windows

    whole = _wav_bytes(16000 * 2)
    i = whole.find(b"data")
    n = struct.unpack("<I", whole[i + 4:i + 8])[0]
    cases = {
        "lies.wav": (whole[:i + 4] + struct.pack("<I", n * 1000) + whole[i + 8:], "truncated"),
        "cut.wav": (whole[: len(whole) // 2], "truncated"),
        "one.wav": (_wav_bytes(1), "too short"),
    }
    (tmp_path / "whole.wav").write_bytes(whole)
    assert load(tmp_path / "whole.wav", 16000).shape == (32000,)
    for name, (data, words) in cases.items():
        (tmp_path / name).write_bytes(data)
        for read in (lambda p: load(p, 16000), lambda p: load_windows(p, 16000, 1000, 4)):
            with pytest.raises(AudioError, match=words):
                read(tmp_path / name)
    streamed = whole[:i + 4] + struct.pack("<I", 0xFFFFFFFF) + whole[i + 8:]  # size unknown: not a lie
    (tmp_path / "streamed.wav").write_bytes(streamed)
    assert load(tmp_path / "streamed.wav", 16000).shape == (32000,)


@pytest.mark.parametrize("grid", ["lr=1e9", "lr=1e-3;wd=inf"])
def test_a_diverging_probe_grid_is_refused(capsys, tmp_path, grid):
    code, _, err = bench(capsys, "run", "-e", "logmel", "-t", "nsynth_pitch", "--probe-grid", grid,
                         "--out", str(tmp_path))
    assert code == 2 and "--probe-grid" in err


def test_tasks_all_twice_is_every_task_once():
    from bench import plugins

    names = [n for n in plugins.tasks().names() if not plugins.tasks().entries[n].group]  # 'all': no group
    assert plugins.tasks().resolve("all,all") == names == plugins.tasks().resolve("all, gtzan")
    assert plugins.tasks().resolve("gtzan,gtzan") == ["gtzan"]


def test_a_checkpoint_that_is_a_directory_gets_a_clear_message(capsys, nsynth_tiny, tmp_path):
    (tmp_path / "ckpt").mkdir()
    code, _, err = bench(capsys, "run", "-e", "semisupcon", "-t", "nsynth_pitch", "--checkpoint",
                         str(tmp_path / "ckpt"), "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "o"))
    assert code == 2 and "is a directory; give the .safetensors file itself" in err


def test_plugin_new_out_a_file_gets_a_clear_message(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err = bench(capsys, "plugin", "new", "foo", "--out", str(tmp_path / "file"))
    assert code == 2 and "is a file" in err


# == 6. metrics ============================================================================================


@pytest.mark.parametrize("name", ["accuracy", "roc_auc", "average_precision"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_metrics_refuse_non_finite_scores_as_scikit_learn_does(name, bad):
    import numpy as np

    from bench import metrics

    rng = np.random.default_rng(0)
    y = np.eye(3)[rng.integers(0, 3, 20)] if name != "accuracy" else rng.integers(0, 3, 20)
    y = y if name == "accuracy" else np.maximum(y, np.eye(3)[np.arange(20) % 3] * (np.arange(20) < 3)[:, None])
    s = rng.normal(size=(20, 3))
    metrics.METRICS[name](y, s)  # finite: fine
    s[4, 1] = bad
    with pytest.raises(metrics.NonFiniteScores, match="1 NaN or infinite value"):
        metrics.METRICS[name](y, s)
    with pytest.raises(metrics.NonFiniteScores):
        metrics.METRICS[name](y, np.full((20, 3), np.nan))


def test_non_finite_scores_name_the_encoder_and_task_through_the_error_boundary(tmp_path):
    import numpy as np

    from bench import metrics
    from bench.run import guarded

    failures = []
    guarded("logmel x gtzan", failures, tmp_path, metrics.accuracy, np.array([0, 1]), np.full((2, 2), np.nan))
    assert failures == [failures[0]] and failures[0].startswith("logmel x gtzan: the probe's scores hold 4 NaN")
    assert not (tmp_path / "errors.log").exists()  # a BenchError: a message, no traceback to keep


def test_a_diverged_grid_point_ranks_last_and_the_chosen_probe_is_finite():
    import numpy as np

    from bench import probe

    assert np.isnan(probe._valid_score(lambda y, s: {"accuracy": probe.check_finite(s) and 1.0},
                                       np.zeros(2), np.full((2, 2), np.nan), "accuracy"))


def _sk_cases():
    import numpy as np

    rng = np.random.default_rng(1)
    y_ties = (rng.random((30, 4)) < 0.4).astype(float)
    y_ties[0], y_ties[1] = 1, 0  # every class has both
    s_ties = rng.integers(0, 3, (30, 4)).astype(float)  # few distinct values: many ties
    y_two = np.array([[1.0, 0.0], [0.0, 1.0]])
    s_two = np.array([[0.2, 0.9], [0.7, 0.1]])
    y_one = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # class 0: positives only
    s_one = rng.normal(size=(4, 2))
    return {"ties": (y_ties, s_ties), "n=2": (y_two, s_two), "one class": (y_one, s_one)}


@pytest.mark.parametrize("case", ["ties", "n=2", "one class"])
def test_multilabel_metrics_match_scikit_learn_on_ties_two_tracks_and_one_class(case):
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    from bench import metrics

    y, s = _sk_cases()[case]
    valid = [c for c in range(y.shape[1]) if 0 < y[:, c].sum() < len(y)]  # one-class columns are left out
    assert metrics.roc_auc(y, s) == pytest.approx(np.mean([roc_auc_score(y[:, c], s[:, c]) for c in valid]))
    assert metrics.average_precision(y, s) == pytest.approx(
        np.mean([average_precision_score(y[:, c], s[:, c]) for c in valid]))
    if case == "one class":
        assert valid == [1]
        with pytest.warns(Warning, match="one class"):  # scikit-learn: undefined (NaN); bench leaves it out
            assert np.isnan(roc_auc_score(y[:, 0], s[:, 0]))
        assert np.isnan(metrics.roc_auc(y[:, :1], s[:, :1]))  # nothing left: undefined here too


def test_accuracy_matches_scikit_learn_on_ties_two_tracks_and_one_class():
    import numpy as np
    from sklearn.metrics import accuracy_score

    from bench import metrics

    for y, s in ((np.array([0, 1, 2, 1]), np.array([[1.0, 1, 0], [0, 1, 1], [2, 2, 2], [0, 0, 0]])),  # ties: first
                 (np.array([1, 0]), np.array([[0.2, 0.8], [0.9, 0.1]])),
                 (np.array([2, 2, 2]), np.array([[0.0, 0, 1], [1, 0, 0], [0, 0, 3]]))):
        assert metrics.accuracy(y, s) == accuracy_score(y, s.argmax(axis=1))
    assert metrics.roc_auc(np.ones((3, 2)), np.zeros((3, 2))) != metrics.roc_auc(np.ones((3, 2)), np.zeros((3, 2)))
