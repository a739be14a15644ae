"""``bench leaderboard DIR...``: rebuild the leaderboard files from result records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import BenchError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="build a leaderboard from result folders",
                       description="Read the result records under one or more folders and print and write "
                       "the leaderboard (markdown, CSV, JSON, HTML, PNG).")
    p.add_argument("paths", nargs="+", type=Path, help="result folders or record files")
    p.add_argument("--out", "-o", type=Path, default=None, help="where to write the leaderboard files "
                   "(default: the first folder)")
    from bench.references import NAMES

    p.add_argument("--reference", default=None, choices=NAMES, metavar="NAME",
                   help="add published numbers as rows marked (published): marble (MARBLE v1 Table 3; protocol "
                   "marble) or clmr (CLMR README; protocol semisupcon). Shown only beside real-data records of "
                   "that protocol")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench import leaderboard
    from bench.results import read_records

    records = read_records(args.paths)
    if not records:
        raise BenchError(f"no result records under {', '.join(map(str, args.paths))}")
    out = args.out or (args.paths[0] if args.paths[0].is_dir() else args.paths[0].parent)
    if args.reference:
        from bench import references

        shown, refused = references.eligible_tasks(references.get(args.reference), records)
        for why in refused:
            print(f"note: --reference {args.reference}: not shown for {why}", file=sys.stderr)
        if not shown:
            print(f"note: --reference {args.reference}: no published row shown", file=sys.stderr)
    files = leaderboard.write(records, out, reference=args.reference)
    print(leaderboard.render(records, reference=args.reference))
    print(f"Leaderboard written to {files['markdown']} (also .csv, .json, .html, .png)", file=sys.stderr)
    return 0
