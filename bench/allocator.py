"""Keep glibc's allocator from returning torch's large CPU buffers to the kernel after every use.

glibc serves an allocation above ``M_MMAP_THRESHOLD`` (at most 32 MB by its
dynamic rule) with a fresh ``mmap`` and unmaps it on free. A CPU training
step of the demo SampleCNN allocates activation and gradient buffers of
tens to hundreds of MB (batch 64 x 32 channels x 19,683 samples x 4 bytes
is 161 MB), so every step maps fresh pages and the kernel zero-fills each of
them on first touch: measured on the 2-core development machine
(``bench pretrain --encoder simclr --steps 20``), 5.1 million minor page
faults and 17 s of system time in a 27 s run, 30 clips/s. With large blocks
kept in the heap (``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` raised):
0.3 million faults, 1.4 s of system time, 60 clips/s (benchmarks/README.md).
The heap then keeps its peak size until the process ends, which is what a
training or extraction process needs anyway.

:func:`tune` does this once per process through ``mallopt`` (glibc only; a
no-op elsewhere and when ``BENCH_MALLOC=default``). It must run before the
first large allocation: the CLI calls it for every verb that computes with
torch, before torch is imported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: the largest value mallopt takes (an int): blocks up to 2 GB come from the heap
LIMIT = 2**31 - 1


@functools.cache
def tune() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once); True when they were set."""
    if os.environ.get("BENCH_MALLOC", "").strip().lower() == "default" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(LIMIT))) and \
            bool(libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(LIMIT)))
    except (OSError, AttributeError):  # no mallopt in this C library: keep its defaults
        return False


def passive_omp_wait() -> None:
    """Let torch's idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``), unless set.

    By default a thread that waits for the others at the end of a parallel
    region spins. When other processes load the cores (the workers of
    ``bench reproduce --jobs``, a shared CI machine), the spinning thread
    takes the core from the one it waits for: on the 2-core development
    machine under load a demo training step took 1.89 s of CPU and 2.82 s of
    wall by default, 0.80 s and 1.21 s with passive waiting, with the loss the
    same to the bit (``benchmarks/bench_step_compare.py --mode env``,
    benchmarks/README.md). OpenMP reads the variable when torch loads, so
    this must run before torch is imported; a user's own setting wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
