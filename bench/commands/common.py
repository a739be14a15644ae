"""Options and parsing shared by several verbs: one definition each, one meaning everywhere."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError

if TYPE_CHECKING:  # pragma: no cover
    from bench.config import DataRoots
    from bench.settings import RunConfig

def demo_sizes() -> tuple[str, ...]:
    from bench.config import DEMO_SIZES

    return tuple(DEMO_SIZES)


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


def add_official_batchnorm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--official-batchnorm", action="store_true",
                   help="emulate the official SemiSupCon probe's BatchNorm quirk (Lightning 2.1 runs the frozen "
                        "encoder in train mode): each task embedded with the encoder's BatchNorm statistics "
                        "re-estimated on its train windows (docs/protocols.md; off by default)")


def check_protocol_grid(protocol: str, grid: str | None) -> str:
    """The probe grid to use: a grid given with a protocol that fixes lr and weight decay is refused."""
    from bench.protocols import get

    proto = get(protocol)
    if grid is not None and not proto.uses_grid:
        raise BenchError(f"--probe-grid {grid!r}: the {proto.name} protocol sets the probe's learning rate(s) and "
                         "weight decay itself (as its reference code does); the grid applies to --protocol bench only")
    return grid or "default"


def data_roots(args: argparse.Namespace) -> DataRoots:
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


def parse_seeds(text: str, flag: str = "--seeds", what: str = "probes") -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2): whole numbers in [0, 2**32), each once (``flag`` names the option in errors)."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise BenchError(f"{flag} takes whole numbers separated by commas, got {text!r}") from None
    if not seeds:
        raise BenchError(f"{flag} is empty; give at least one seed, e.g. {flag} 0")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise BenchError(f"{flag}: {bad[0]} is outside 0..{2**32 - 1}")
    dupes = sorted({s for s in seeds if seeds.count(s) > 1})
    if dupes:
        raise BenchError(f"{flag} names {', '.join(map(str, dupes))} more than once: identical {what} would be "
                         "counted as independent seeds")
    return seeds


def add_pretrain_seeds(p: argparse.ArgumentParser, default_text: str = "each encoder's own seed, one model") -> None:
    """``--pretrain-seeds``: one model per seed of every seeded encoder, pooled in one row (not given: the
    command's own default, which ``default_text`` names)."""
    p.add_argument("--pretrain-seeds", default=None, metavar="SEEDS",
                   help="pretraining seeds, comma-separated: every seeded encoder (SampleCNN ones: trainable, "
                   "random) is trained (initialised) once per seed, and its row pools them; intervals are then a "
                   f"multi-bootstrap over pretraining seeds and test tracks (default: {default_text})")


def pretrain_seeds(args: argparse.Namespace) -> tuple[int, ...]:
    """The parsed ``--pretrain-seeds`` (empty when not given)."""
    text = getattr(args, "pretrain_seeds", None)
    return parse_seeds(text, "--pretrain-seeds", "pretrainings") if text else ()


def apply_threads(threads: int | None) -> int | None:
    """Set torch's CPU thread count from ``--threads`` or ``BENCH_THREADS`` (through ``OMP_NUM_THREADS`` when
    torch is not imported yet); None leaves torch's default."""
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
    from bench.limits import clamp_threads

    threads = clamp_threads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:  # read when torch loads: a command whose workers do the computing never imports it here (2-3 s)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    return threads


def add_evaluation(p: argparse.ArgumentParser, out_help: str) -> None:
    """The options of every verb that probes embeddings: output folder, probe seeds and grid, cache, batch."""
    p.add_argument("--out", "-o", type=Path, default=None, help=out_help)
    p.add_argument("--seeds", "--probe-seeds", dest="seeds", default="0,1,2",
                   help="probe seeds, comma-separated; one record per seed (default: 0,1,2)")
    p.add_argument("--probe-grid", default=None, metavar="GRID",
                   help="lr x weight-decay grid chosen on validation: 'default' (lr 1e-3,3e-4 x wd 1e-6,1e-4), "
                   "'fast' (one point, the paper's lr 3e-4 wd 1e-6: for CI) or 'lr=1e-3,3e-4;wd=1e-6,1e-4' "
                   "(protocol bench only)")
    add_protocol(p)
    add_official_batchnorm(p)
    p.add_argument("--no-cache", action="store_true",
                   help="do not read or write the embedding cache (see `bench cache list`)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per encoder batch (default: 32)")


def check_out(out: Path) -> Path:
    """The output folder, created; a file in the way or an unwritable place is a usage error."""
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file; give a folder for the records and the leaderboard")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{time.time_ns()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BenchError(f"--out {out}: cannot write there ({exc.strerror or exc}); choose another folder") from None
    return out


def run_config(args: argparse.Namespace, encoders: list[str], tasks: list[str], default_out: str,
               **extra: Any) -> RunConfig:
    """The :class:`bench.settings.RunConfig` of a verb's parsed arguments; every bad value is refused before work starts.

    ``default_out``: the output folder's name under ./bench-results when --out is not given
    (``%`` codes of time.strftime are expanded).
    """
    from bench import plugins
    from bench.device import resolve_device
    from bench.probe import parse_grid
    from bench.run import check_option_scopes
    from bench.settings import EvalSettings, RunConfig

    grid = check_protocol_grid(args.protocol, args.probe_grid)
    parse_grid(grid)  # a bad grid is an error before any work is done
    if args.batch_size < 1:
        raise BenchError(f"--batch-size must be at least 1, got {args.batch_size}")
    seeds = parse_seeds(args.seeds)
    options = extra.pop("encoder_options", None)
    if options is None:
        options = parse_options(args.option)
        check_option_scopes(options, encoders)
    roots = data_roots(args)
    roots.check_tasks(plugins.tasks().names())
    settings = EvalSettings(
        out=check_out(args.out or Path("bench-results") / time.strftime(default_out)),
        data_roots=roots,
        device=resolve_device(args.device),
        seeds=seeds,
        batch_size=args.batch_size,
        probe_grid=grid,
        protocol=args.protocol,
        cache=not args.no_cache,
        progress=progress_enabled(args),
        official_batchnorm=bool(getattr(args, "official_batchnorm", False)),
    )
    return RunConfig(encoders=encoders, tasks=tasks, settings=settings, encoder_options=options,
                     pretrain_seeds=pretrain_seeds(args), **extra)


def report_failures(failures: list[str], any_records: bool, what: str = "run") -> int:
    """Name the parts that failed; the exit status (2 when some did, else 0).

    Each failure's message was printed once already, when it happened (:func:`bench.run.guarded`, or a
    worker's log replayed): the summary names the parts only, so no error is printed twice."""
    if not failures:
        return 0
    names = [f.split(": ", 1)[0] for f in failures]
    print(f"\n{len(failures)} part(s) of the {what} failed, each with its error above"
          + (" (the records of the others were written)" if any_records else "") + ": " + "; ".join(names),
          file=sys.stderr)
    return 2
