"""The `bench` command line. Thin: each verb imports what it needs when it runs.

Verbs: list, run, leaderboard, data (demo, check), and the ones plugins and
other stages add. `bench VERB --help` documents each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.errors import BenchError

EPILOG = """examples:
  bench list
  bench run --encoder logmel --tasks all
  bench run --encoder logmel,semisupcon --tasks nsynth_pitch,gtzan --data-root ~/datasets
  bench leaderboard bench-results/run-20261121-120000
  bench compare bench-results/run-20261121-120000 baseline.json --tolerance 0.01
  bench cache list
  bench data check --task nsynth_pitch --data-root ~/datasets

environment:
  BENCH_DATA_ROOT       data root (folder holding nsynth/, magnatagatune/, ...)
  BENCH_CACHE_DIR       cache folder (demo data, checkpoints, embeddings)
  BENCH_STRICT_PLUGINS  1 = a plugin that fails to load is fatal
  BENCH_THREADS         torch CPU threads (as --threads)
  BENCH_CONFIG          config file (TOML; default <user config dir>/bench/config.toml)
"""


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Benchmark learned music representations: pretrain or load an encoder, "
        "embed the standard music tasks, train probes, compare on a leaderboard.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--strict-plugins", action="store_true",
                        help="fail when a plugin cannot be loaded (default: warn and skip it)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list encoders and tasks and the plugins that provide them",
                       description="List the registered encoders and tasks, with the plugin, distribution "
                       "and version that provides each, and any plugin that failed to load.")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="evaluate encoders on tasks and print a leaderboard",
                       description="Evaluate one or more encoders on one or more tasks: extract embeddings, "
                       "train a probe per task, write one JSON record per encoder x task x seed and a leaderboard. "
                       "With no data root configured, generated demo data is used (and every table says so).",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--encoder", "-e", required=True, help="encoder name(s), comma-separated (see `bench list`)")
    p.add_argument("--tasks", "-t", default="all", help="'all' or task names, comma-separated (default: all)")
    p.add_argument("--out", "-o", type=Path, default=None,
                   help="folder for records and leaderboard (default: ./bench-results/run-<time>)")
    p.add_argument("--data-root", action="append", metavar="DIR|TASK=DIR",
                   help="data root, or a per-task root as TASK=DIR (repeatable; default: $BENCH_DATA_ROOT, "
                   "the config file, else demo data)")
    p.add_argument("--demo-size", default="small", choices=["tiny", "small"], help="size of generated demo data")
    p.add_argument("--device", default="auto", help="torch device: auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--seeds", "--probe-seeds", dest="seeds", default="0,1,2",
                   help="probe seeds, comma-separated; one record per seed (default: 0,1,2)")
    p.add_argument("--probe-grid", default="default", metavar="GRID",
                   help="lr x weight-decay grid chosen on validation: 'default' (lr 1e-3,3e-4 x wd 1e-6,1e-4), "
                   "'fast' (one point, the paper's lr 3e-4 wd 1e-6: for CI) or 'lr=1e-3,3e-4;wd=1e-6,1e-4'")
    p.add_argument("--no-cache", action="store_true",
                   help="do not read or write the embedding cache (see `bench cache list`)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per encoder batch (default: 32)")
    p.add_argument("--checkpoint", default=None,
                   help="encoder weights to evaluate (skips pretraining); the encoder takes the options it was "
                        "trained with (preset, seed, objective) from the checkpoint")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads for extraction and pretraining (default: $BENCH_THREADS, else torch's "
                        "choice, one per core). On a machine shared with other jobs, 1 can be faster")
    p.add_argument("--option", "-O", action="append", default=None, metavar="KEY=VALUE",
                   help="encoder option, repeatable, e.g. -O preset=paper -O label_task=mtat,gtzan "
                        "(values: numbers, true/false, none, else text); given to every encoder of the run, "
                        "or to one as ENCODER:KEY=VALUE (-O semisupcon:label_fraction=0.05)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("leaderboard", help="build a leaderboard from result folders",
                       description="Read the result records under one or more folders and print and write "
                       "the leaderboard (markdown, CSV, JSON).")
    p.add_argument("paths", nargs="+", type=Path, help="result folders or record files")
    p.add_argument("--out", "-o", type=Path, default=None, help="where to write the leaderboard files "
                   "(default: the first folder)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("data", help="build demo data or check a data root",
                       description="Build the generated demo datasets, or check what a data root holds.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    d = dsub.add_parser("demo", help="build the demo datasets (real formats, generated audio)",
                        description="Build the demo datasets of the given tasks into the cache folder "
                        "(or --out DIR) in the real on-disk formats.")
    d.add_argument("--tasks", "-t", default="all", help="'all' or task names (default: all)")
    d.add_argument("--size", default="small", choices=["tiny", "small"], help="demo size (default: small)")
    d.add_argument("--seed", type=int, default=0, help="generation seed (default: 0)")
    d.add_argument("--out", type=Path, default=None, help="write here instead of the cache folder")
    d.set_defaults(func=cmd_data_demo)
    d = dsub.add_parser("check", help="report what a data root holds for a task",
                        description="Index a task's splits under a data root and report tracks per split, "
                        "problems (malformed rows, missing files), corrupt files (--decode) and audio files "
                        "that belong to no split.")
    d.add_argument("--task", "-t", required=True, help="task name, or 'all'")
    d.add_argument("--data-root", action="append", metavar="DIR|TASK=DIR", help="data root (default as for run)")
    d.add_argument("--decode", action="store_true", help="also decode every file to find corrupt ones")
    d.set_defaults(func=cmd_data_check)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    _extend(sub)
    return parser


def _extend(sub) -> None:
    """Sub-commands that live with their stage (added only if the stage is installed)."""
    import importlib.util

    for module in ("bench.pretrain", "bench.compare", "bench.cache"):
        if importlib.util.find_spec(module) is None:
            continue
        mod = __import__(module, fromlist=["add_cli"])
        if hasattr(mod, "add_cli"):
            mod.add_cli(sub)


def _version() -> str:
    from bench import __version__

    return __version__


def cmd_list(args) -> int:
    from bench import plugins

    enc, tasks = plugins.encoders(), plugins.tasks()
    for title, reg in (("Encoders", enc), ("Tasks", tasks)):
        print(f"{title}:")
        width = max((len(n) for n in reg.names()), default=4)
        for name in reg.names():
            e = reg.entries[name]
            src = f"{e.plugin.distribution} {e.plugin.version}".strip() or "in-process"
            print(f"  {name:<{width}}  {e.description}  [plugin {e.plugin.name}, {src}]")
        if not reg.names():
            print("  (none)")
    failed = plugins.failures()
    if failed:
        print("Plugins that failed to load:")
        for f in failed:
            print(f"  {f.plugin.name} ({f.plugin.distribution} {f.plugin.version}): {f.stage}: {f.error}")
    return 0


def _data_roots(values, demo_size="small"):
    from bench.config import DataRoots

    return DataRoots.from_args(values, demo_size=demo_size)


def cmd_run(args) -> int:
    from bench import plugins
    from bench.run import RunConfig, resolve_device, run

    from bench.probe import parse_grid

    parse_grid(args.probe_grid)  # a bad grid is an error before any work is done
    encoders = plugins.encoders().resolve(args.encoder)
    tasks = plugins.tasks().resolve(args.tasks)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        raise BenchError(f"--seeds takes integers separated by commas, got {args.seeds!r}") from None
    out = args.out or Path("bench-results") / time.strftime("run-%Y%m%d-%H%M%S")
    config = RunConfig(
        encoders=encoders,
        tasks=tasks,
        out=out,
        data_roots=_data_roots(args.data_root, args.demo_size),
        device=resolve_device(args.device),
        seeds=seeds or (0,),
        batch_size=args.batch_size,
        checkpoint=args.checkpoint,
        encoder_options=parse_options(args.option),
        probe_grid=args.probe_grid,
        cache=not args.no_cache,
        progress=not args.no_progress and sys.stderr.isatty() or bool(os.environ.get("BENCH_PROGRESS")),
    )
    outcome = run(config)
    if outcome.failures:
        print(f"\n{len(outcome.failures)} part(s) of the run failed:", file=sys.stderr)
        for f in outcome.failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    return 0


def cmd_leaderboard(args) -> int:
    from bench import leaderboard
    from bench.results import read_records

    records = read_records(args.paths)
    if not records:
        raise BenchError(f"no result records under {', '.join(map(str, args.paths))}")
    out = args.out or (args.paths[0] if args.paths[0].is_dir() else args.paths[0].parent)
    files = leaderboard.write(records, out)
    print(leaderboard.render(records))
    print(f"Leaderboard written to {files['markdown']} (also .csv, .json, .html, .png)", file=sys.stderr)
    return 0


def cmd_data_demo(args) -> int:
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


def cmd_data_check(args) -> int:
    from bench import plugins
    from bench.datacheck import check, format_report

    roots = _data_roots(args.data_root)
    status = 0
    for name in plugins.tasks().resolve(args.task):
        task = plugins.get_task(name)
        try:
            report = check(task, roots.root(task), decode=args.decode)
        except BenchError as exc:
            print(f"{name}: {exc}")
            status = 1
            continue
        print(format_report(report))
    return status


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.strict_plugins:
        os.environ["BENCH_STRICT_PLUGINS"] = "1"
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        if hasattr(args, "threads"):  # run, pretrain: the verbs that compute with torch
            apply_threads(args.threads)
        return int(args.func(args) or 0)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
