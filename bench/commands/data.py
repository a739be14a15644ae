"""``bench data demo`` / ``check`` / ``download``: build the demo datasets, see what a data root holds, fetch one."""

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
    d.add_argument("--checksums", action="store_true",
                   help="verify the files `bench data download` fetched into --data-root against the published "
                   "checksums (or the digests recorded on first download where none is published)")
    d.add_argument("--sources", type=Path, default=None, metavar="FILE",
                   help="with --checksums: an index of sources of your own (default: the one bench ships)")
    d.set_defaults(func=run_check)
    d = actions.add_parser("download", help="fetch a task's dataset from its source, resumable, verified",
                           description="Download a task's dataset from its official source into DIR (resumable: "
                           "a rerun continues a broken download), verify each file against the checksum its "
                           "publisher's index gives (mirdata, the dataset's own md5 lists) or record its digest "
                           "as unverified where none is published, and unpack it in the layout the task reads. "
                           "Then use --data-root DIR. docs/data.md lists every source and licence.")
    d.add_argument("task", help="task name, or 'all' (the tasks with a download recipe)")
    d.add_argument("--to", type=Path, required=True, metavar="DIR", help="the data root to fill")
    d.add_argument("--url", action="append", default=[], metavar="NAME=URL",
                   help="fetch file NAME from URL instead (a mirror; the published checksum still decides)")
    d.add_argument("--sources", type=Path, default=None, metavar="FILE",
                   help="an index of sources of your own, same shape as bench/dataset_sources.json")
    d.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a transfer is "
                   "given up (rerun to resume; default: 60)")
    d.set_defaults(func=run_download)
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

    if args.checksums:
        return _check_checksums(args)
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


def _download_tasks(spec: str, sources: dict) -> list[str]:
    return sorted(sources) if spec == "all" else [t.strip() for t in spec.split(",") if t.strip()]


def run_download(args: argparse.Namespace) -> int:
    from bench.download import download, load_sources

    sources = load_sources(args.sources)
    urls = {}
    for value in args.url:
        name, sep, url = value.partition("=")
        if not sep or not name or not url:
            raise BenchError(f"--url {value!r}: expected NAME=URL, e.g. --url genres.tar.gz=https://example.org/genres.tar.gz")
        urls[name] = url
    for task in _download_tasks(args.task, sources):
        entry = sources.get(task, {})
        if entry.get("note"):
            print(f"{task}: {entry['note']}")
        summary = download(task, args.to, sources, urls=urls, timeout=args.timeout)
        unverified = [n for n, s in summary["files"].items() if s != "verified"]
        print(f"{task}: done in {args.to}" + (f"; no published checksum for {', '.join(unverified)} (digests recorded "
                                                "in downloads/checksums.json)" if unverified else "; every file verified"))
        print(f"  licence: {entry.get('licence', 'not stated')}; source: {entry.get('homepage', '')}")
    print(f"Use it with --data-root {args.to}")
    return 0


def _check_checksums(args: argparse.Namespace) -> int:
    from bench.datacheck import format_checks, verify
    from bench.download import load_sources

    roots = args.data_root or []
    general = [r for r in roots if "=" not in r]
    if not general:
        raise BenchError("--checksums needs --data-root DIR: the folder `bench data download ... --to DIR` filled")
    root = Path(general[-1]).expanduser()
    sources = load_sources(args.sources)
    status = 0
    for task in _download_tasks(args.task, sources):
        checks = verify(task, root, sources)
        print(format_checks(task, root, checks))
        if any(c.bad for c in checks):
            status = 2
    return status
