"""``bench run``: the main job (encoders x tasks -> records and a leaderboard)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.commands.common import (add_data_root, add_device, add_encoder_options, add_progress, add_protocol,
                                   add_threads, check_protocol_grid, data_roots, parse_options, parse_seeds,
                                   progress_enabled)

EPILOG = """examples:
  bench run --encoder logmel --tasks all
  bench run --encoder logmel,semisupcon --tasks nsynth_pitch,gtzan --data-root ~/datasets
  bench run --encoder semisupcon -O label_fraction=0.05 -O steps=600 --tasks mtat
  bench run --encoder semisupcon --checkpoint my.safetensors --tasks all
  bench run --encoder simclr,semisupcon --tasks all --protocol semisupcon
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="evaluate encoders on tasks and print a leaderboard",
                       description="Evaluate one or more encoders on one or more tasks: extract embeddings, "
                       "train a probe per task, write one JSON record per encoder x task x seed and a leaderboard. "
                       "A trainable encoder with no weights yet is pretrained first (cached) on the data present. "
                       "With no data root configured, generated demo data is used (and every table says so).",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--encoder", "-e", required=True, help="encoder name(s), comma-separated (see `bench list`)")
    p.add_argument("--tasks", "-t", default="all", help="'all' or task names, comma-separated (default: all)")
    p.add_argument("--out", "-o", type=Path, default=None,
                   help="folder for records and leaderboard (default: ./bench-results/run-<time>)")
    add_data_root(p)
    add_device(p)
    p.add_argument("--seeds", "--probe-seeds", dest="seeds", default="0,1,2",
                   help="probe seeds, comma-separated; one record per seed (default: 0,1,2)")
    p.add_argument("--probe-grid", default=None, metavar="GRID",
                   help="lr x weight-decay grid chosen on validation: 'default' (lr 1e-3,3e-4 x wd 1e-6,1e-4), "
                   "'fast' (one point, the paper's lr 3e-4 wd 1e-6: for CI) or 'lr=1e-3,3e-4;wd=1e-6,1e-4' "
                   "(protocol bench only)")
    add_protocol(p)
    p.add_argument("--no-cache", action="store_true",
                   help="do not read or write the embedding cache (see `bench cache list`)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per encoder batch (default: 32)")
    p.add_argument("--checkpoint", default=None,
                   help="encoder weights to evaluate (skips pretraining); the encoder takes the options it was "
                        "trained with from the checkpoint")
    add_threads(p)
    add_encoder_options(p)
    add_progress(p)
    p.set_defaults(func=run)


def check_out(out: Path) -> Path:
    """The output folder, created; a file in the way or an unwritable place is a usage error."""
    from bench.errors import BenchError

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


def run(args: argparse.Namespace) -> int:
    from bench import plugins
    from bench.device import resolve_device
    from bench.errors import BenchError
    from bench.probe import parse_grid
    from bench.run import RunConfig, check_option_scopes
    from bench.run import run as run_job

    grid = check_protocol_grid(args.protocol, args.probe_grid)
    parse_grid(grid)  # a bad grid is an error before any work is done
    if args.batch_size < 1:
        raise BenchError(f"--batch-size must be at least 1, got {args.batch_size}")
    encoders = plugins.encoders().resolve(args.encoder)
    tasks = plugins.tasks().resolve(args.tasks)
    seeds = parse_seeds(args.seeds)
    options = parse_options(args.option)
    check_option_scopes(options, encoders)
    roots = data_roots(args)
    roots.check_tasks(plugins.tasks().names())
    config = RunConfig(
        encoders=encoders,
        tasks=tasks,
        out=check_out(args.out or Path("bench-results") / time.strftime("run-%Y%m%d-%H%M%S")),
        data_roots=roots,
        device=resolve_device(args.device),
        seeds=seeds,
        batch_size=args.batch_size,
        checkpoint=args.checkpoint,
        encoder_options=options,
        probe_grid=grid,
        protocol=args.protocol,
        cache=not args.no_cache,
        progress=progress_enabled(args),
    )
    outcome = run_job(config)
    if outcome.failures:
        print(f"\n{len(outcome.failures)} part(s) of the run failed"
              + (" (the records of the others were written)" if outcome.records else "") + ":", file=sys.stderr)
        for f in outcome.failures:
            print(f"  - {f}", file=sys.stderr)
        return 2
    return 0
