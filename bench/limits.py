"""What this machine and this start allow a run: no more threads than cores, several processes only
under a launcher. Checked once at the start of every verb that computes (bench/cli.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from bench.errors import BenchError

#: a launcher (torchrun, ``accelerate launch``, an MPI launcher) gives each process it starts a rank in one of these
RANK_VARS = ("RANK", "LOCAL_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def clamp_threads(threads: int, source: str = "--threads") -> int:
    """``threads`` at most :func:`usable_cores`, with a note when it was more (100000 threads crash torch)."""
    cores = usable_cores()
    if threads > cores:
        print(f"note: {source} {threads} is more than the {cores} CPU core(s) this process may use; "
              f"using {cores}", file=sys.stderr)
        return cores
    return threads


def check_launcher(env: Mapping[str, str] | None = None) -> None:
    """Refuse ``WORLD_SIZE`` > 1 in a process no launcher started (BenchError naming what is missing)."""
    env = os.environ if env is None else env
    value = env.get("WORLD_SIZE", "").strip()
    if not value:
        return
    try:
        world = int(value)
    except ValueError:
        raise BenchError(f"WORLD_SIZE={value[:40]!r} is not a whole number; unset it, or start the run with "
                         "`accelerate launch -m bench.cli ...`") from None
    if world < 1:
        raise BenchError(f"WORLD_SIZE={world} must be at least 1; unset it for a single process")
    if world > 1 and not any(env.get(v, "").strip() for v in RANK_VARS):
        raise BenchError(f"WORLD_SIZE={world} asks for {world} processes, but no launcher started this one "
                         "(it has no RANK). Start several processes with `accelerate launch --num_processes N "
                         "-m bench.cli run ...` (docs/scale.md), or unset WORLD_SIZE to run in one process.")
