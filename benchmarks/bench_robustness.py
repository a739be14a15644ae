"""Corrupted vs clean extraction of the test splits of the four demo tasks, per condition (target: within 2x).

For one encoder (default: the demo-preset SampleCNN with seeded weights,
``random``: the same network and cost as the trained demo encoders), this
extracts the test split of every demo task (``bench.extract.extract``, no
cache) clean and under each condition of a suite, back to back (clean, then
the condition, then the next clean...), so that the load of a shared machine
drifts less between the two halves of a ratio. Three figures per condition,
summed over the four tasks:

- ``clean``: wall seconds of the clean extraction measured just before;
- ``corrupted``: wall seconds with the corruption as the extractor runs it,
  inside its decode thread pool (the transform runs in the worker that decoded
  the track, overlapped with the model embedding earlier tracks);
- ``alone``: wall seconds of the corruption by itself on the same decoded
  tracks, one after the other in one thread (what a corruption applied
  outside the pool, before embedding, would add at the least).

``ratio = corrupted / clean`` is the target's figure; ``serial estimate =
(clean + alone) / clean`` is what the same corruption would cost without the
overlap. The machine's load average is printed with the figures.

    python benchmarks/bench_robustness.py                       # quick suite, demo data 'small'
    python benchmarks/bench_robustness.py --suite 'mp3@32;time_stretch@0.7' --repeats 2
    python benchmarks/bench_robustness.py --workers 1           # one decode thread
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default="random")
    ap.add_argument("--suite", default="quick", help="a suite name or a condition list (bench.corruptions)")
    ap.add_argument("--tasks", default="mtat,nsynth_pitch,giantsteps_key,gtzan")
    ap.add_argument("--demo-size", default="small")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="decode threads of the extractor (its default: 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    a = ap.parse_args()

    import torch

    from bench import plugins
    from bench.audio import load
    from bench.config import DataRoots
    from bench.corruptions import parse_conditions, track_seed
    from bench.pair import corruption_transform
    from bench.extract import extract

    if a.threads:
        torch.set_num_threads(a.threads)
    encoder = plugins.encoders().get(a.encoder).create().eval()
    roots = DataRoots(demo_size=a.demo_size)
    splits = []
    for name in a.tasks.split(","):
        task = plugins.tasks().get(name).create()
        root = roots.root(task)
        splits.append((task, task.items("test", root).items))
    n_tracks = sum(len(items) for _, items in splits)
    conds = parse_conditions(a.suite)

    def run(transform=None) -> float:
        t0 = time.perf_counter()
        for task, items in splits:
            extract(encoder, items, max_windows=task.max_windows, workers=a.workers, progress=False,
                    transform=transform)
        return time.perf_counter() - t0

    decoded = [(it, load(it.path, encoder.sample_rate, it.start, it.end)) for _, items in splits for it in items]
    run()  # warm-up: imports, file cache
    print(f"# {a.encoder} on the test splits of {a.tasks} (demo {a.demo_size}, {n_tracks} tracks); {os.cpu_count()} "
          f"cores, torch {torch.get_num_threads()} threads, {a.workers} decode threads; load average "
          f"{os.getloadavg()[0]:.1f} at start; median of {a.repeats}")
    print(f"{'condition':16s} {'clean s':>8s} {'corrupted s':>11s} {'ratio':>6s} {'alone s':>8s} {'serial est.':>11s}")
    over = []
    for cond in conds:
        rows = []
        for _ in range(a.repeats):
            clean = run()
            corrupted = run(corruption_transform(cond, 0))
            t0 = time.perf_counter()
            for it, x in decoded:
                try:
                    cond.apply(x, encoder.sample_rate, seed=track_seed(0, it.track_id))
                except Exception:  # counted as skipped by the extractor; its time is in the figure all the same
                    pass
            rows.append((clean, corrupted, time.perf_counter() - t0))
        clean, corrupted, alone = (statistics.median(r[i] for r in rows) for i in range(3))
        ratio = corrupted / clean
        if ratio > 2:
            over.append(f"{cond.id} ({ratio:.2f}x)")
        print(f"{cond.id:16s} {clean:8.2f} {corrupted:11.2f} {ratio:6.2f} {alone:8.2f} {(clean + alone) / clean:11.2f}",
              flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}; over the 2x target: " + (", ".join(over) or "none"))


if __name__ == "__main__":
    main()
