"""Options and parsing shared by several verbs: one definition each, one meaning everywhere."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from bench.errors import BenchError

DEMO_SIZES_FALLBACK = ("tiny", "small")


def demo_sizes() -> tuple[str, ...]:
    from bench import config

    return tuple(getattr(config, "DEMO_SIZES", DEMO_SIZES_FALLBACK))


def add_data_root(p: argparse.ArgumentParser, demo_size: bool = True) -> None:
    p.add_argument("--data-root", action="append", metavar="DIR|TASK=DIR",
                   help="data root, or a per-task root as TASK=DIR (repeatable; default: $BENCH_DATA_ROOT, "
                        "the config file, else the generated demo data)")
    if demo_size:
        p.add_argument("--demo-size", default="small", choices=demo_sizes(),
                       help="size of the generated demo data when no data root is set (default: small)")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto",
                   help="torch device: auto (GPU when there is one; the default), cpu, cuda, cuda:N, mps")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default: $BENCH_THREADS, else one per core); on a machine shared "
                        "with other jobs, 1 can be faster")


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_encoder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--option", "-O", action="append", default=None, metavar="KEY=VALUE",
                   help="encoder option, repeatable, e.g. -O preset=paper -O label_task=mtat,gtzan (values: "
                        "numbers, true/false, none, else text; lists comma-separated); given to every encoder "
                        "of the run, or to one as ENCODER:KEY=VALUE (-O semisupcon:label_fraction=0.05)")


def add_protocol(p: argparse.ArgumentParser) -> None:
    """``--protocol NAME``: the probing protocol (bench.protocols), shared by the commands that score."""
    from bench.protocols import DEFAULT, PROTOCOLS

    p.add_argument("--protocol", default=DEFAULT, choices=tuple(PROTOCOLS), metavar="NAME",
                   help="probing protocol: " + "; ".join(f"{n}: {pr.summary.split(':')[0]}" for n, pr in
                                                          PROTOCOLS.items())
                   + f" (default: {DEFAULT}; docs/protocols.md has every difference)")


def check_protocol_grid(protocol: str, grid: str | None) -> str:
    """The probe grid to use: a grid given with a protocol that fixes lr and weight decay is refused."""
    from bench.protocols import get

    proto = get(protocol)
    if grid is not None and not proto.uses_grid:
        raise BenchError(f"--probe-grid {grid!r}: the {proto.name} protocol fixes the probe's learning rate and "
                         "weight decay (as its reference code does); the grid applies to --protocol bench only")
    return grid or "default"


def data_roots(args: argparse.Namespace) -> Any:
    from bench.config import DataRoots

    return DataRoots.from_args(args.data_root, demo_size=getattr(args, "demo_size", "small"))


def progress_enabled(args: argparse.Namespace) -> bool:
    if getattr(args, "no_progress", False):
        return False
    return sys.stderr.isatty() or bool(os.environ.get("BENCH_PROGRESS"))


def parse_value(text: str) -> Any:
    """An option value from the command line: int, float, true/false, none, else the text itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_options(values: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` to a dict; a malformed item is a usage error naming it."""
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"--option {item!r}: expected KEY=VALUE, e.g. -O preset=paper")
        out[key.strip()] = parse_value(val)
    return out


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2): whole numbers in [0, 2**32), each once."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise BenchError(f"--seeds takes whole numbers separated by commas, got {text!r}") from None
    if not seeds:
        raise BenchError("--seeds is empty; give at least one seed, e.g. --seeds 0")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise BenchError(f"--seeds: {bad[0]} is outside 0..{2**32 - 1}")
    dupes = sorted({s for s in seeds if seeds.count(s) > 1})
    if dupes:
        raise BenchError(f"--seeds names {', '.join(map(str, dupes))} more than once: identical probes would be "
                         "counted as independent seeds")
    return seeds


def apply_threads(threads: int | None) -> int | None:
    """Set torch's CPU thread count from ``--threads`` or ``BENCH_THREADS``; None leaves torch's default."""
    if threads is None:
        env = os.environ.get("BENCH_THREADS", "").strip()
        if not env:
            return None
        try:
            threads = int(env)
        except ValueError:
            raise BenchError(f"BENCH_THREADS={env!r} is not a whole number of threads") from None
    if threads < 1:
        raise BenchError(f"--threads / BENCH_THREADS must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
    return threads
