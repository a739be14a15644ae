"""Interval widths of a leaderboard run, and whether a given difference between two encoders is decided.

    python benchmarks/demo_intervals.py RESULTS_DIR [--pair logmel,random] [--delta 0.05]

Reads the run's records (``RESULTS_DIR/records/*.json``). Per task: test tracks
scored, each encoder's seed-averaged primary metric with its 95% interval and
the interval's width, then the paired difference of the two encoders of
``--pair`` with its 95% interval. The records' bootstrap resamples are the same
test tracks for every seed and encoder (fixed bootstrap seed), so averaging
seeds and subtracting encoders resample by resample gives the paired bootstrap
of the difference. Last, the half-width a single encoder's interval has at
accuracy 0.5 on that many test tracks (binomial, 1.96 sigma): a difference of
``--delta`` is outside an encoder's interval when that half-width is below it.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--pair", default="logmel,random")
    ap.add_argument("--delta", type=float, default=0.05)
    args = ap.parse_args()
    recs = [json.loads(p.read_text()) for p in sorted((args.results / "records").glob("*.json"))]
    by = defaultdict(list)
    for r in recs:
        by[(r["task"], r["encoder"])].append(r)
    a, b = args.pair.split(",")
    for task in sorted({t for t, _ in by}):
        boots, n_test = {}, None
        print(f"{task}:")
        for enc in sorted({e for t, e in by if t == task}):
            rs = by[(task, enc)]
            vals = np.mean([r["confidence"]["values"] for r in rs], axis=0)
            mean = float(np.mean([r["confidence"]["value"] for r in rs]))
            lo, hi = np.percentile(vals, [2.5, 97.5])
            boots[enc] = vals
            n_test = rs[0]["data"]["tracks"]["test"]  # tracks scored (unreadable ones already left out)
            print(f"  {enc:10s} {rs[0]['primary_metric']} {mean:.4f} [{lo:.4f}, {hi:.4f}] width {hi - lo:.4f} "
                  f"({len(rs)} seeds)")
        if a in boots and b in boots:
            d = boots[a] - boots[b]
            lo, hi = np.percentile(d, [2.5, 97.5])
            print(f"  {a} - {b}: {float(np.mean(d)):+.4f} [{lo:+.4f}, {hi:+.4f}] width {hi - lo:.4f}")
        half = 1.96 * math.sqrt(0.25 / n_test) if n_test else float("nan")
        print(f"  test tracks {n_test}; binomial half-width at p=0.5: {half:.4f} "
              f"({'<' if half < args.delta else '>='} {args.delta})")


if __name__ == "__main__":
    main()
