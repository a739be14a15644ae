"""Finished pairs reused by request (bench.run_memo): a warm rerun builds no encoder and imports no torch,
and anything the records depend on (data, checkpoint, pools, cache clearing, --no-cache) makes it run again."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path


import pytest

from bench.cli import main

FAST = ["--seeds", "0", "--probe-grid", "fast", "--device", "cpu", "--no-progress"]


def _records(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((folder / "records").glob("*.json"))}


def _entry(pattern: str = "*") -> Path:
    """The records file of the one stored pair matching ``pattern``. Not the store's ``.tmp`` build folder
    beside the entries (``Path.glob("*")`` lists hidden names, in the file system's order: on ext4 a hash of
    the name, and the entry's name holds a digest of the session's data path, so ``.tmp`` came first now and
    then and the test damaged a file in it instead of the entry)."""
    from bench import run_memo

    found = [p for p in run_memo.root().glob(pattern) if not p.name.startswith(".")]
    assert len(found) == 1, found
    return found[0] / run_memo.RECORDS


def _run(nsynth_tiny, out, *extra):
    return main(["run", "--encoder", "logmel", "--tasks", "nsynth_pitch", "--data-root",
                 f"nsynth_pitch={nsynth_tiny}", "--out", str(out), *FAST, *extra])


def test_warm_rerun_writes_the_same_records_without_building_the_encoder(nsynth_tiny, tmp_path, capsys,
                                                                          monkeypatch):
    assert _run(nsynth_tiny, tmp_path / "a") == 0
    first = _records(tmp_path / "a")
    capsys.readouterr()
    import bench.run

    def refuse(*args, **kwargs):
        raise AssertionError("the encoder was built although the pair was reusable")

    monkeypatch.setattr(bench.run, "prepare_encoder", refuse)
    assert _run(nsynth_tiny, tmp_path / "b") == 0
    assert "reusing 1 record(s) of the same run" in capsys.readouterr().err
    again = _records(tmp_path / "b")
    assert again.keys() == first.keys()
    for name, rec in again.items():
        assert rec["metrics"] == first[name]["metrics"] and rec["confidence"] == first[name]["confidence"]
        assert rec["reused"]["created"] == first[name]["created"]
    assert (tmp_path / "b" / "leaderboard.md").read_text() == (tmp_path / "a" / "leaderboard.md").read_text()


def test_changed_data_no_cache_and_a_cleared_cache_run_again(nsynth_tiny, tmp_path, capsys, monkeypatch):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(nsynth_tiny, root)
    assert _run(root, tmp_path / "a") == 0
    capsys.readouterr()
    # --no-cache neither reads nor writes the stored pairs
    assert _run(root, tmp_path / "b", "--no-cache") == 0
    assert "reusing" not in capsys.readouterr().err
    # a test file's bytes change: the data fingerprint differs, the pair runs again
    wav = sorted(root.rglob("*.wav"))[0]
    data = bytearray(wav.read_bytes())
    data[-2:] = b"\x01\x02" if data[-2:] != b"\x01\x02" else b"\x03\x04"
    wav.write_bytes(bytes(data))
    assert _run(root, tmp_path / "c") == 0
    assert "reusing" not in capsys.readouterr().err
    assert _run(root, tmp_path / "d") == 0
    assert "reusing 1 record(s)" in capsys.readouterr().err
    # clearing the probes (or embeddings) clears the results made from them: the next run is cold
    assert main(["cache", "clear", "--kind", "probes"]) == 0
    capsys.readouterr()
    assert _run(root, tmp_path / "e") == 0
    assert "reusing" not in capsys.readouterr().err


def test_trainable_encoder_checkpoint_and_pools_are_checked(tiny_task, tmp_path, capsys):
    from bench import run_memo

    argv = ["run", "--encoder", "semisupcon", "-O", "preset=tiny", "-O", "label_task=tiny", "-O",
            "unlabeled_tasks=tiny", "-O", "augment=false", "--tasks", "tiny", "--data-root",
            f"tiny={tiny_task.per_task['tiny']}", "--out", str(tmp_path / "a"), *FAST]
    assert main(argv) == 0
    entry = json.loads(_entry("semisupcon__tiny__*").read_text())
    assert entry["checkpoint"].endswith(".safetensors") and entry["weights"].startswith("file:")
    assert entry["pools"]["sources"]["labeled"]["tiny"]["train"]
    capsys.readouterr()
    assert main(argv) == 0
    assert "reusing" in capsys.readouterr().err
    # other pretraining data (what the checkpoint key hashes) is another checkpoint: not reused
    real = run_memo._pool_sources

    def other_data(spec, recipe, roots):
        sources = real(spec, recipe, roots)
        sources["labeled"]["tiny"]["train"] = "0" * 64
        return sources

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_memo, "_pool_sources", other_data)
        assert main(argv) == 0
    assert "reusing" not in capsys.readouterr().err
    # the checkpoint file's bytes changed (its mtime kept): not reused
    assert main(argv) == 0
    assert "reusing" in capsys.readouterr().err
    ckpt = Path(json.loads(_entry("semisupcon__tiny__*").read_text())["checkpoint"])
    st = ckpt.stat()
    data = bytearray(ckpt.read_bytes())
    data[-1] ^= 1
    ckpt.write_bytes(bytes(data))
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert main(argv) == 0
    assert "reusing" not in capsys.readouterr().err


def test_cache_list_shows_results_and_a_damaged_entry_is_a_miss(nsynth_tiny, tmp_path, capsys):

    assert _run(nsynth_tiny, tmp_path / "a") == 0
    capsys.readouterr()
    assert main(["cache", "list", "--kind", "results"]) == 0
    out = capsys.readouterr().out
    assert "results" in out and "logmel" in out and "nsynth_pitch" in out
    _entry().write_text("{not json")
    assert _run(nsynth_tiny, tmp_path / "b") == 0
    err = capsys.readouterr().err
    assert "reusing" not in err and err.count("results cache entry") == 1 and "checksum" in err


def test_warm_rerun_does_not_import_torch(nsynth_tiny, tmp_path):
    """The point of the memo: the second run of a cached command never imports torch."""
    argv = ["run", "--encoder", "logmel", "--tasks", "nsynth_pitch", "--data-root", f"nsynth_pitch={nsynth_tiny}",
            "--out", str(tmp_path / "out"), "--seeds", "0", "--probe-grid", "fast", "--no-progress"]
    code = ("import sys; from bench.cli import main; rc = main(%r); "
            "print('TORCH', 'torch' in sys.modules); sys.exit(rc)") % (argv,)
    env = {**os.environ}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    from bench.device import gpu_possible

    if not gpu_possible():  # where a GPU may be present, "auto" asks torch
        assert "TORCH False" in second.stdout, second.stderr
    assert "reusing 1 record(s)" in second.stderr


def test_auto_device_without_gpu_device_nodes_is_cpu_without_torch(monkeypatch):
    from bench import device

    monkeypatch.setattr(device, "gpu_possible", lambda: False)
    monkeypatch.setitem(sys.modules, "torch", None)  # importing torch would fail
    assert device.resolve_device("auto") == "cpu" and device.resolve_device(None) == "cpu"


def test_other_classes_and_a_failing_store_do_not_mislead(nsynth_tiny, tmp_path, capsys, monkeypatch):
    from bench import run_memo

    assert _run(nsynth_tiny, tmp_path / "a") == 0
    # the same files under other class names (a renamed tag column) is another evaluation: not reused
    import bench.pair

    real_index = bench.pair.index_task

    def renamed(*a, **k):
        data = real_index(*a, **k)
        return dataclasses.replace(data, classes=list(reversed(data.classes)))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench.pair, "index_task", renamed)
        capsys.readouterr()
        assert _run(nsynth_tiny, tmp_path / "b") == 0
        assert "reusing" not in capsys.readouterr().err
    # keeping a pair that is done must never fail it
    monkeypatch.setattr(run_memo, "store", lambda *a, **k: 1 / 0)
    assert _run(nsynth_tiny, tmp_path / "d", "--seeds", "1") == 0
    err = capsys.readouterr().err
    assert "not kept for reuse: ZeroDivisionError" in err
    assert (tmp_path / "d" / "records" / "logmel__nsynth_pitch__seed1.json").is_file()
