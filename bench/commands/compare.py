"""``bench compare CURRENT BASELINE``: the CI gate (bench.compare computes, this parses and reports)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from bench.errors import BenchError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare results against a baseline; exit 1 on a regression (for CI)",
        description="Compare the primary metric of every encoder x task in CURRENT with BASELINE (results "
        "folders, baseline files or leaderboard.json). Exit 1 when a score fell by more than --tolerance "
        "(or, with --below-interval, below the baseline's 95% interval) or a baseline pair is missing; "
        "exit 0 otherwise. With --write-baseline FILE, write CURRENT's baseline file instead.",
        epilog="examples:\n  bench compare ci-results baselines/demo.json --tolerance 0.02\n"
        "  bench compare ci-results --write-baseline baselines/demo.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("current", type=Path, help="results folder, or a baseline / leaderboard.json file")
    p.add_argument("baseline", type=Path, nargs="?", help="baseline file or results folder")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="largest allowed absolute drop of a primary metric (default: 0.01)")
    p.add_argument("--below-interval", action="store_true",
                   help="fail only when the current mean is below the baseline's interval lower bound")
    p.add_argument("--allow-missing", action="store_true",
                   help="do not fail when a baseline encoder x task is missing from CURRENT")
    p.add_argument("--write-baseline", type=Path, metavar="FILE", default=None,
                   help="write CURRENT as a baseline file to FILE and exit")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the comparison as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.compare import (EXIT_FAIL, EXIT_PASS, compare, format_table, load_entries, order_problem,
                               order_warning, write_baseline)

    if not math.isfinite(args.tolerance) or args.tolerance < 0:
        raise BenchError(f"--tolerance must be a finite number >= 0 (an absolute drop, e.g. 0.01), "
                         f"got {args.tolerance}")
    if args.write_baseline:
        doc = write_baseline(args.current, args.write_baseline)
        print(f"Baseline of {len(doc['entries'])} encoder x task pair(s) written to {args.write_baseline}"
              + (" (demo data)" if doc.get("demo_data") else ""))
        return EXIT_PASS
    if args.baseline is None:
        raise BenchError("bench compare needs CURRENT and BASELINE (or --write-baseline FILE)")
    swapped = order_problem(args.current, args.baseline)
    if swapped:
        raise BenchError(swapped)
    cur, base = load_entries(args.current, role="current"), load_entries(args.baseline, role="baseline")
    newer = order_warning(cur, base)
    if newer:
        print(newer, file=sys.stderr)
    rows, ok = compare(cur, base, tolerance=args.tolerance, below_interval=args.below_interval,
                       allow_missing=args.allow_missing)
    rule = "below the baseline's interval lower bound" if args.below_interval else f"drop > {args.tolerance:g}"
    if cur.get("demo_data"):
        print("DEMO DATA: both sides are generated demo data.")
    print(f"Comparing {args.current} against baseline {args.baseline} (fail: {rule}"
          + ("" if args.allow_missing else ", or a baseline pair missing") + ")\n")
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps({"pass": ok, "rows": rows}, indent=2, default=str))
    bad = [r for r in rows if r["status"] in ("regressed", "below-interval")
           or (r["status"] == "missing" and not args.allow_missing)]
    print(f"\n{'PASS' if ok else 'FAIL'}: {len(rows)} pair(s), {len(bad)} failing")
    return EXIT_PASS if ok else EXIT_FAIL
