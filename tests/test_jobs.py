"""The job loop's worker processes end, with their own children, when the parent is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

PARENT = textwrap.dedent("""
    import os, subprocess, sys, time
    from bench.jobs import start_pool
    pool = start_pool(1, 1)
    worker = pool.submit(os.getpid).result()
    pool.submit(subprocess.run, ["sleep", "120"])  # the worker busy, with a child of its own
    print(worker, flush=True)
    time.sleep(120)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    return [int(x) for f in Path(f"/proc/{pid}/task").glob("*/children") for x in f.read_text().split()]


def test_a_worker_and_its_children_die_within_seconds_of_a_kill_9_of_the_parent():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        deadline = time.time() + 20
        while not _children(worker) and time.time() < deadline:
            time.sleep(0.1)
        grandchildren = _children(worker)
        assert grandchildren, "the worker did not start its child"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 5
        while any(_alive(p) for p in [worker, *grandchildren]) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived its parent"
        assert not any(_alive(p) for p in grandchildren), "the worker's child outlived it"
    finally:
        parent.kill()
        for pid in [*locals().get("grandchildren", []), locals().get("worker")]:
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_jobs_pretraining_seed_is_its_encoder_seed_option_and_its_label_names_its_rows(tmp_path):
    from bench.config import DataRoots
    from bench.jobs import Job
    from bench.settings import EvalSettings, RunConfig

    base = RunConfig(["simclr"], ["mtat"], EvalSettings(tmp_path, DataRoots()), variants={"logmel": "lm"})
    job = Job("simclr[seed=3]", "simclr", {"preset": "tiny", "simclr:seed": 9}, ("mtat",), pretrain_seed=3)
    got = job.config(base)
    assert got.encoder_options == {"preset": "tiny", "seed": 3} and got.encoders == ["simclr"]
    assert got.variants == {"logmel": "lm", "simclr": "simclr[seed=3]"}
    plain = Job("simclr", "simclr", {"preset": "tiny"}, ("mtat",), names_rows=False).config(base)
    assert plain.encoder_options == {"preset": "tiny"} and plain.variants == {"logmel": "lm"}
