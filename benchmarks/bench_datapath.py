"""The pretraining data path at the paper preset: store build, disk per hour of audio, peak RSS, sampler speed.

    python benchmarks/bench_datapath.py --work /tmp/datapath [--clips 2000] [--workers 2] [--dtype int16]
        [--steps 30] [--json out.json]

Data: the MTAT-shaped root of ``benchmarks/bench_fullsize.py`` (29.1 s MP3 clips at 16 kHz, 16 distinct
clips hard-linked under every name, so every decode reads from the page cache) cut to ``--clips`` clips.
Measured, in one invocation:

1. build: a cold :class:`bench.pretrain.audio_store.AudioStore` of every clip at 22,050 Hz (decode,
   resample, quantise, stream into the store) with ``--workers`` decoding processes; wall time, peak RSS
   (this process by ``getrusage``; the process tree, summed and largest, sampled every 0.2 s), the
   store's bytes on disk and per hour of audio;
2. sampler: :class:`bench.pretrain.sampling.BatchSampler` at the paper recipe (96 clips x 2 views of
   59,535 samples a step, all unlabeled) for ``--steps`` steps in this one process (one core; the store
   warm in the page cache): clips/s of wall time and clips per CPU-second, and so the CPU cores that
   deliver 2,700 clips/s (50k steps of 96 clips in an hour, :doc:`docs/scale.md`);
3. extrapolated (and labelled so): the build time of the 25,863 clips of full MTAT at the same rate.

The figures are of a shared machine: compare them within one run, read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fullsize import MTAT_CLIPS, RssSampler, write_root  # noqa: E402

SR, WINDOW, BATCH, VIEWS, TARGET = 22050, 59535, 96, 2, 2700


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the data root and the store (kept)")
    ap.add_argument("--clips", type=int, default=2000, help="clips to write and store (default 2000)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decoding processes")
    ap.add_argument("--dtype", default="int16", choices=("int16", "float32"), help="the store's sample type")
    ap.add_argument("--steps", type=int, default=30, help="sampler steps to time (default 30)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()

    import numpy as np

    from bench.pretrain.audio_store import AudioStore
    from bench.pretrain.pools import Pools, Track
    from bench.pretrain.sampling import BatchSampler

    files = write_root(args.work / "root", args.clips)
    tracks = [Track(str(f), f.stem, "bench") for f in files]
    cache = args.work / f"cache-{args.dtype}"
    shutil.rmtree(cache, ignore_errors=True)
    load0 = os.getloadavg()[0]
    rss = RssSampler(os.getpid())  # this process, the forkserver and its decoding workers, every 0.2 s
    t0 = time.perf_counter()
    store = AudioStore(tracks, SR, cache, dtype=args.dtype, workers=args.workers)
    build_s = time.perf_counter() - t0
    rss.stop()
    rss_parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    samples = int(len(store.data))
    hours = samples / SR / 3600
    disk = (store.folder / "audio.npy").stat().st_size

    pools = Pools(unlabeled=[t for t in tracks if store.has(t)])
    sampler = BatchSampler(pools, store, batch_size=BATCH, labeled_share=0.0, views=VIEWS, window=WINDOW, seed=0)
    sampler.batch(0)  # page the store in once
    w0, c0 = time.perf_counter(), time.process_time()
    for step in range(1, args.steps + 1):
        views, _, _ = sampler.batch(step)
        assert views.shape == (BATCH, VIEWS, WINDOW) and views.dtype == np.float32
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    clips = BATCH * args.steps
    per_cpu_s = clips / cpu
    out = {
        "clips": args.clips, "failed": len(store.failed), "dtype": args.dtype, "workers": args.workers,
        "cpu_count": os.cpu_count(), "load_before": load0, "load_after": os.getloadavg()[0],
        "build_s": round(build_s, 1), "build_clips_per_s": round(args.clips / build_s, 1),
        "audio_hours": round(hours, 3), "store_bytes": disk, "bytes_per_sample": round(disk / samples, 4),
        "store_gb_per_hour": round(disk / hours / 1e9, 4),
        "peak_rss_parent_mb": round(rss_parent), "peak_rss_build_tree_mb": round(rss.peak_sum / 2**20),
        "peak_rss_largest_build_process_mb": round(rss.peak_one / 2**20),
        "sampler_clips_per_s_wall": round(clips / wall, 1), "sampler_clips_per_cpu_s": round(per_cpu_s, 1),
        "cores_for_2700_clips_per_s": round(TARGET / per_cpu_s, 2),
        "extrapolated_full_mtat_build_s": round(build_s * MTAT_CLIPS / args.clips),
        "extrapolated_full_mtat_store_gb": round(disk * MTAT_CLIPS / args.clips / 1e9, 2),
    }
    for k, v in out.items():
        print(f"{k:34s} {v}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
