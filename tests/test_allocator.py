"""bench.allocator: glibc keeps large blocks in the heap for the verbs that compute (no mmap/munmap per step)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

CODE = "from bench import allocator; print(allocator.tune(), allocator.tune())"


def _run(env_extra):
    import os

    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=True).stdout


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tune_sets_the_thresholds_once_and_can_be_turned_off():
    assert _run({"BENCH_MALLOC": ""}).split() == ["True", "True"]
    assert _run({"BENCH_MALLOC": "default"}).split() == ["False", "False"]

