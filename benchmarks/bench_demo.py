"""Time the demo generators of the four built-in tasks and show what they wrote.

    python benchmarks/bench_demo.py [--size small] [--seed 0]

Prints wall and CPU seconds per generator and, per split, the item count, the
problems the loader reports, and the class balance.
"""

from __future__ import annotations

import argparse
import collections
import resource
import tempfile
import time
from pathlib import Path

from bench_tasks.giantsteps import GiantStepsKey
from bench_tasks.gtzan import GTZANTask
from bench_tasks.mtat import MTATTask
from bench_tasks.nsynth import NSynthPitch


def cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="small")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    total, total_cpu = 0.0, cpu()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for task in (NSynthPitch(), MTATTask(), GiantStepsKey(), GTZANTask()):
            t, c = time.perf_counter(), cpu()
            task.make_demo(root, size=args.size, seed=args.seed)
            wall = time.perf_counter() - t
            total += wall
            print(f"{task.name}: make_demo({args.size!r}) {wall:.1f} s wall, {cpu() - c:.1f} s CPU")
            names = task.classes(root)
            for split in ("train", "valid", "test"):
                sp = task.items(split, root)
                if task.kind == "multilabel":
                    counts = collections.Counter(c for it in sp for c in it.label)
                    balance = f"{len(counts)}/{len(names)} tags present, positives min {min(counts.values())} " \
                              f"max {max(counts.values())}"
                else:
                    counts = collections.Counter(it.label for it in sp)
                    balance = f"{len(counts)}/{len(names)} classes present, per class min {min(counts.values())} " \
                              f"max {max(counts.values())}"
                print(f"  {split}: {len(sp)} items, {len(sp.problems)} problems; {balance}")
    print(f"total {total:.1f} s wall, {cpu() - total_cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
