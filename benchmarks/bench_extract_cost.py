"""Where a cold logmel extraction's CPU goes: decoding, the encoder alone, and both in the extractor.

    python benchmarks/bench_extract_cost.py --root DIR [--files 400] [--threads 2,1]

Why: issue 15 asks a cold full-size MTAT run with logmel to stay within 1.5x
of decoding the same files. On a machine whose cores are all busy in both
(decode-only runs two decode threads; the extractor runs two decode threads
beside the model), the wall-time ratio is bounded below by the CPU-time ratio
(decode + encoder) / decode. This script measures the three on the same MP3s
(``--root``: any folder of audio, e.g. the MTAT-shaped root that
``bench_fullsize.py`` writes) in one process, per torch thread count:

- decode only: every file decoded and windowed as the extractor does (2 threads);
- the extractor: ``bench.extract.extract`` with the logmel encoder;
- the encoder only: ``LogMelEncoder.embed`` on as many zero windows, batch 32.

Prints wall and CPU seconds of each and the CPU ratio (decode + encoder) / decode.
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True, help="folder of audio files (searched recursively)")
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--threads", default="2,1", help="torch thread counts to measure (comma-separated)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from bench import allocator
    from bench.extract import _decode, extract
    from bench.task import Item
    from bench_plugins.logmel import LogMelEncoder

    allocator.tune()
    files = sorted(p for p in args.root.rglob("*") if p.suffix.lower() in (".mp3", ".wav", ".flac"))[: args.files]
    if not files:
        raise SystemExit(f"no audio files under {args.root}")
    items = [Item(str(f), str(f), 0) for f in files]
    enc = LogMelEncoder()
    enc.eval()
    print(f"{len(items)} files under {args.root}; logmel: {enc.sample_rate} Hz, {enc.window}-sample windows")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        t, c = time.perf_counter(), cpu()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda it: _decode(it, enc.sample_rate, enc.window, 64), items))
        dec = (time.perf_counter() - t, cpu() - c)
        t, c = time.perf_counter(), cpu()
        e = extract(enc, items, progress=False)
        ext = (time.perf_counter() - t, cpu() - c)
        w = torch.from_numpy(np.zeros((32, enc.window), np.float32))
        t, c = time.perf_counter(), cpu()
        for _ in range(max(1, e.windows // 32)):
            with torch.no_grad():
                enc.embed(w)
        mod = (time.perf_counter() - t, cpu() - c)
        print(f"torch threads {threads}: decode only {dec[0]:.2f} s wall / {dec[1]:.2f} s CPU; "
              f"extractor {ext[0]:.2f} / {ext[1]:.2f}; encoder only ({e.windows} windows) {mod[0]:.2f} / "
              f"{mod[1]:.2f}; CPU (decode + encoder) / decode = {(dec[1] + mod[1]) / dec[1]:.2f}; "
              f"extractor / decode wall = {ext[0] / dec[0]:.2f}")


if __name__ == "__main__":
    main()
