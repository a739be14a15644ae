"""`accelerate launch -m bench.cli run` with 2 CPU processes: the same records as one process; a death leaves no half entry."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.embedding_cache import chunk_size


def _launcher():
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate launcher not installed beside this python")
    return [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
            "no", "--dynamo_backend", "no", "--main_process_port", str(29600 + os.getpid() % 300)]


def _run_args(root, out):
    return ["-m", "bench.cli", "run", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(root), "--seeds", "1",
            "--probe-grid", "fast", "--device", "cpu", "--no-progress", "--out", str(out)]


def _env(cache):
    return {**os.environ, "OMP_NUM_THREADS": "1", "BENCH_CACHE_DIR": str(cache)}


def _records(out):
    recs = {}
    for p in sorted((out / "records").glob("*.json")):
        r = json.loads(p.read_text())
        for k in ("created", "command", "timings"):
            r.pop(k)
        for g in r["probe"]["grid"]:
            g.pop("seconds")
        recs[p.name] = r
    return recs


def test_chunks_depend_on_the_number_of_tracks_only():
    assert chunk_size(39) == 16 and chunk_size(1000) == 63 and chunk_size(25_863) == 512 and chunk_size(1) == 16


@pytest.fixture(scope="module")
def one_process(nsynth_tiny, tmp_path_factory):
    """A single-process run (its own cache): the reference records and entries."""
    tmp = tmp_path_factory.mktemp("one")
    one = subprocess.run([sys.executable, *_run_args(nsynth_tiny, tmp / "one")], env=_env(tmp / "c1"),
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    return tmp


def test_two_processes_write_the_records_of_one(nsynth_tiny, one_process, tmp_path):
    for name in ("one", "c1"):
        (tmp_path / name).symlink_to(one_process / name)
    two = subprocess.run([*_launcher(), *_run_args(nsynth_tiny, tmp_path / "two")], env=_env(tmp_path / "c2"),
                         capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert _records(tmp_path / "two") == _records(tmp_path / "one")
    assert two.stdout.count("Leaderboard:") == 1  # the main process alone reports
    for c in ("c1", "c2"):  # the same entries, the same bytes; no shard left behind
        assert len(list((tmp_path / c / "embeddings").glob("logmel__*"))) == 3
        assert not list((tmp_path / c / "embeddings").glob(".partial/*/shard-*"))
    for e1 in sorted((tmp_path / "c1" / "embeddings").glob("logmel__*")):
        e2 = tmp_path / "c2" / "embeddings" / e1.name
        for f in sorted((e1 / "data").glob("*.arrow")):
            assert f.read_bytes() == (e2 / "data" / f.name).read_bytes()
    # warm: the two processes find the entries and the probes
    warm = subprocess.run([*_launcher(), *_run_args(nsynth_tiny, tmp_path / "warm")], env=_env(tmp_path / "c2"),
                          capture_output=True, text=True, timeout=600)
    assert warm.returncode == 0, warm.stderr[-3000:]
    rec = json.loads((tmp_path / "warm" / "records" / "logmel__nsynth_pitch__seed1.json").read_text())
    assert rec["cache"] == {"train": "hit", "valid": "hit", "test": "hit"} and rec["probe"]["cache"] == "hit"


def test_a_process_that_dies_leaves_no_half_entry_and_the_rerun_resumes(nsynth_tiny, one_process, tmp_path):
    psutil = pytest.importorskip("psutil")
    from bench.embedding_cache import EmbeddingCache
    from bench.embedding_cache import read_table as _read_table

    cache = tmp_path / "cache"
    proc = subprocess.Popen([*_launcher(), *_run_args(nsynth_tiny, tmp_path / "dead")], env=_env(cache),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    partial = cache / "embeddings" / ".partial"
    deadline = time.time() + 300
    while time.time() < deadline and not list(partial.glob("*/shard-*")):
        assert proc.poll() is None, "the run ended before any shard was written"
        time.sleep(0.01)
    workers = {int(p.environ().get("RANK", -1)): p for p in psutil.Process(proc.pid).children(recursive=True)
               if "bench.cli" in " ".join(p.cmdline())}
    workers[0].send_signal(signal.SIGSTOP)  # freeze the main process: it cannot assemble anything meanwhile
    workers[1].kill()
    workers[0].send_signal(signal.SIGCONT)
    log = proc.communicate(timeout=300)[0]
    assert proc.returncode != 0, log[-2000:]
    assert not (tmp_path / "dead" / "records").exists() or not any((tmp_path / "dead" / "records").iterdir())
    # whatever is an entry is a whole one: it loads and passes its checks
    store = EmbeddingCache(cache / "embeddings")
    for info in store.entries():
        assert info["status"] == "complete" or info["status"].startswith("incomplete"), info
    complete = [Path(i["path"]) for i in store.entries() if i["status"] == "complete"]
    assert len(complete) < 3
    for entry in complete:
        meta = json.loads((entry / "meta.json").read_text())
        ids, X = _read_table(entry / "data")
        assert len(ids) == meta["rows"] == X.shape[0]
    # one process finishes the job from what is there, with the records of a clean run
    again = subprocess.run([sys.executable, *_run_args(nsynth_tiny, tmp_path / "again")], env=_env(cache),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    strip = {k: {**v, "cache": None, "probe": {**v["probe"], "cache": None}} for k, v in _records(tmp_path / "again")
             .items()}
    assert strip == {k: {**v, "cache": None, "probe": {**v["probe"], "cache": None}} for k, v in
                     _records(one_process / "one").items()}
