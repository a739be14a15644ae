"""``bench data demo`` / ``bench data check``: build the demo datasets, or see what a data root holds."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.commands.common import add_data_root, data_roots, demo_sizes
from bench.errors import BenchError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build demo data or check a data root",
                       description="Build the generated demo datasets, or check what a data root holds.")
    actions = p.add_subparsers(dest="data_command", metavar="ACTION")
    d = actions.add_parser("demo", help="build the demo datasets (real formats, generated audio)",
                           description="Build the demo datasets of the given tasks into the cache folder "
                           "(or --out DIR) in the real on-disk formats.")
    d.add_argument("--tasks", "-t", default="all", help="'all' or task names (default: all)")
    d.add_argument("--size", default="small", choices=demo_sizes(), help="demo size (default: small)")
    d.add_argument("--seed", type=int, default=0, help="generation seed (default: 0)")
    d.add_argument("--out", type=Path, default=None, help="write here instead of the cache folder")
    d.set_defaults(func=run_demo)
    d = actions.add_parser("check", help="report what a data root holds for a task",
                           description="Index a task's splits under a data root and report tracks per split, "
                           "problems (malformed rows, missing files), corrupt files (--decode) and audio files "
                           "that belong to no split.")
    d.add_argument("--task", "-t", required=True, help="task name, or 'all'")
    add_data_root(d, demo_size=False)
    d.add_argument("--decode", action="store_true", help="also decode every file to find corrupt ones")
    d.set_defaults(func=run_check)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def run_demo(args: argparse.Namespace) -> int:
    from bench import plugins
    from bench.config import demo_root, ensure_demo

    for name in plugins.tasks().resolve(args.tasks):
        task = plugins.get_task(name)
        t0 = time.perf_counter()
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            task.make_demo(args.out, size=args.size, seed=args.seed)
            where = args.out
        else:
            where = ensure_demo(task, size=args.size, seed=args.seed, quiet=True)
        print(f"{name}: demo data in {where} ({time.perf_counter() - t0:.1f}s)")
    if not args.out:
        print(f"Use it with --data-root {demo_root(args.size, args.seed)} (it is the default when no data root is set).")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from bench import plugins
    from bench.datacheck import check, format_report

    roots = data_roots(args)
    status = 0
    for name in plugins.tasks().resolve(args.task):
        task = plugins.get_task(name)
        try:
            report = check(task, roots.root(task), decode=args.decode)
        except BenchError as exc:  # this task's data is missing or unreadable: said, the other tasks go on
            print(f"{name}: {exc}")
            status = 2
            continue
        print(format_report(report))
    return status
