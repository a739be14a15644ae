"""Peak memory after each stage of one logmel x MTAT evaluation, in one process, without the cache.

    python benchmarks/bench_memory_stages.py ROOT        # an MTAT-shaped root, e.g. from bench_fullsize.py

Prints the process's peak RSS (``ru_maxrss``) after building the encoder and
indexing the task, after extracting every split, and after the probe and its
bootstrap intervals. Run it on roots of two sizes (``bench_fullsize.py --clips
2000`` and ``--clips 8000``) and divide the differences by the extra tracks to
see which stage's memory grows with the number of tracks, against the
embedding matrix's 0.77 KB per track (192 float32). ``--trace`` also follows
Python's own allocations (numpy arrays included) with :mod:`tracemalloc`: the
traced memory held and the traced peak of each stage, and the largest
allocation sites still held; RSS includes the heap the allocator keeps (the
CLI raises glibc's trim threshold, :mod:`bench.allocator`), the traced figures
do not. ``--no-cache`` semantics:
the embedding and probe caches are neither read nor written, so the cache
writer's own memory is not in these figures (``bench_fullsize.py`` has it).
"""

from __future__ import annotations

import argparse
import resource
import tracemalloc
from pathlib import Path


def peak(tag: str) -> None:
    line = f"{tag}: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    if tracemalloc.is_tracing():
        held, top = tracemalloc.get_traced_memory()
        line += f"; traced: held {held / 1e6:.1f} MB, stage peak {top / 1e6:.1f} MB"
        sites = tracemalloc.take_snapshot().statistics("lineno")[:5]
        line += "".join(f"\n    {st}" for st in sites)
        tracemalloc.reset_peak()
    print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="MTAT-shaped data root")
    ap.add_argument("--trace", action="store_true", help="also trace Python allocations per stage (tracemalloc)")
    args = ap.parse_args()

    from bench import allocator
    from bench.config import DataRoots
    from bench.run import embed, evaluate, index_task, make_task, prepare_encoder
    from bench.settings import EvalSettings, RunConfig

    allocator.tune()
    settings = EvalSettings(out=Path("bench-results/memory-stages"), data_roots=DataRoots(general=args.root),
                            seeds=(0,), probe_grid="fast", cache=False, progress=False)
    cfg = RunConfig(encoders=["logmel"], tasks=["mtat"], settings=settings)
    peak("start")
    prep = prepare_encoder("logmel", cfg)
    task = make_task("mtat")
    if args.trace:  # after the imports and the encoder: what follows is the run's own data
        tracemalloc.start()
    data = index_task(task, settings.data_roots)
    peak(f"encoder built, {sum(len(s) for s in data.splits.values())} tracks indexed")
    embs, _ = embed(prep, data, settings)
    peak("every split extracted")
    evaluate(data, embs, settings, 0)
    peak("probe fitted, bootstrap intervals")


if __name__ == "__main__":
    main()
