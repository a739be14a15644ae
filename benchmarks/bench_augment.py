"""Throughput of the batched augmentation chain vs per-clip augmentation in DataLoader workers.

(a) batched: ``Augmenter`` over a whole batch ``[B, N, T]`` on the training device
    (what bench/pretrain.py does);
(b) per-clip (the reference implementation's approach): a torch ``Dataset`` whose
    ``__getitem__`` augments one clip's N views (the same transforms, same
    per-view draws, with M = N rows), served by a ``DataLoader`` with 2 worker
    processes; the collated batch is then moved to the training device.

Both read the same in-memory synthetic clips, so decoding is left out of both;
the difference measured is the augmentation pipeline only. Each round times
both for every augmentation variant (``--variants``, default ``bench,official``:
the two shapes of ``Augmenter(variant=...)``), interleaved, so the variants'
figures come from the same run and the same load.

    python benchmarks/bench_augment.py                   # paper preset: 22050 Hz, 59535 samples, 96 x 2
    python benchmarks/bench_augment.py --preset demo     # 16000 Hz, 19683 samples
    python benchmarks/bench_augment.py --device cuda     # on a GPU
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import torch
from torch.utils.data import DataLoader, Dataset

from bench.augment import Augmenter

PRESETS = {
    "paper": {"sample_rate": 22050, "window": 59535},
    "demo": {"sample_rate": 16000, "window": 19683},
}


def synthetic_clips(
    n_clips: int, n_views: int, window: int, sample_rate: int, seed: int = 0
) -> torch.Tensor:
    """Music-like test signals: a few harmonic tones with decaying notes, plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(window, dtype=torch.float32) / sample_rate
    out = torch.zeros(n_clips, n_views, window)
    for k in range(3):
        f0 = 110.0 * 2 ** (torch.rand(n_clips, n_views, 1, generator=g) * 4)
        env = torch.exp(-((t * (1 + k)) % 0.5) * 6.0)
        for h in range(1, 5):
            out += (0.2 / h) * env * torch.sin(2 * math.pi * h * f0 * t + k)
    out += 0.01 * torch.randn(n_clips, n_views, window, generator=g)
    return out


class PerClipDataset(Dataset):
    """What a per-clip pipeline does: augment clip ``i``'s views inside ``__getitem__``."""

    def __init__(
        self, clips: torch.Tensor, augmenter: Augmenter, length: int, seed: int = 0
    ) -> None:
        self.clips = clips
        self.augmenter = augmenter
        self.length = length
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        clip = self.clips[i % self.clips.shape[0]]
        return self.augmenter(clip[None], g)[0]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {model}, torch threads {torch.get_num_threads()}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_batched(clips, augmenter, device, steps, seed) -> tuple[float, float]:
    """(clips/s wall, CPU-seconds of this process per clip) of the batched Augmenter."""
    views = clips.to(device)
    g = torch.Generator().manual_seed(seed)
    augmenter(views, g)  # warm-up (allocator, FFT plans, kernels)
    sync(device)
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        views = clips.to(device)
        out = augmenter(views, g)
    sync(device)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert out.shape == clips.shape
    n = clips.shape[0] * steps
    return n / dt, cpu / n


def _collate(items):
    # runs in the worker: report its pid and cumulative CPU time with each batch
    return torch.stack(items), os.getpid(), time.process_time()


def bench_per_clip(clips, augmenter, device, batches, workers, seed) -> tuple[float, float]:
    """(clips/s wall, CPU-seconds per clip summed over workers and main) of the per-clip loader.

    The first batch of every worker is a warm-up (worker start-up); it is not timed, and
    it gives each worker's starting CPU clock."""
    b = clips.shape[0]
    warm = max(workers, 1)
    ds = PerClipDataset(clips, augmenter, length=b * (batches + warm), seed=seed)
    loader = DataLoader(ds, batch_size=b, shuffle=False, num_workers=workers, collate_fn=_collate)
    it = iter(loader)
    seen: dict[int, list[float]] = {}
    for _ in range(warm):
        batch, pid, cpu = next(it)
        seen.setdefault(pid, []).append(cpu)
    c0, t0 = time.process_time(), time.perf_counter()
    n = 0
    worker_cpu = 0.0
    for batch, pid, cpu in it:
        out = batch.to(device)
        n += batch.shape[0]
        if workers == 0:
            continue
        if pid in seen:
            worker_cpu += cpu - seen[pid][-1]
            seen[pid].append(cpu)
        else:  # a worker whose warm-up batch came late: its first batch only sets the clock
            seen[pid] = [cpu]
            n -= batch.shape[0]
    sync(device)
    dt, main_cpu = time.perf_counter() - t0, time.process_time() - c0
    assert out.shape == clips.shape
    return n / dt, (worker_cpu + main_cpu) / n


def loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    ap.add_argument("--batch", type=int, default=96, help="clips per batch")
    ap.add_argument("--views", type=int, default=2, help="views per clip")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=3, help="timed batches of the batched version")
    ap.add_argument(
        "--baseline-batches", type=int, default=4, help="timed batches of the per-clip loader"
    )
    ap.add_argument(
        "--workers", type=int, default=2, help="DataLoader workers of the per-clip baseline"
    )
    ap.add_argument("--severity", type=float, default=1.0)
    ap.add_argument(
        "--rounds", type=int, default=3, help="interleaved (a)/(b) measurements; medians reported"
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="torch threads of the batched process"
    )
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument(
        "--variants",
        default="bench,official",
        help="comma-separated Augmenter variants to time (bench, official)",
    )
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]

    if args.threads:
        torch.set_num_threads(args.threads)
    preset = PRESETS[args.preset]
    sr, window = preset["sample_rate"], preset["window"]
    device = torch.device(args.device)
    clips = synthetic_clips(args.batch, args.views, window, sr, seed=args.seed)
    augmenters = {v: Augmenter(sr, severity=args.severity, variant=v) for v in variants}

    print(f"device: {device_name(device)}; torch {torch.__version__}")
    print(f"preset {args.preset}: {sr} Hz x {window} samples, batch {args.batch} clips x {args.views} views, "
          f"severity {args.severity}; load average before: {loadavg()}")  # fmt: skip
    rows: dict[str, list[tuple[float, float, float, float]]] = {v: [] for v in variants}
    for r in range(args.rounds):
        # interleaved, so a busy neighbour on a shared machine hits every setup alike
        for v, augmenter in augmenters.items():
            a_wall, a_cpu = bench_batched(clips, augmenter, device, args.steps, args.seed + r)
            b_wall, b_cpu = bench_per_clip(
                clips, augmenter, device, args.baseline_batches, args.workers, args.seed + r
            )
            rows[v].append((a_wall, b_wall, a_cpu, b_cpu))
            print(f"  round {r} {v:>8}: batched {a_wall:7.1f} clips/s ({1e3 * a_cpu:6.1f} CPU-ms/clip) | "
                  f"per-clip {b_wall:7.1f} clips/s ({1e3 * b_cpu:6.1f} CPU-ms/clip)")  # fmt: skip
    print(f"load average after: {loadavg()}; medians over {args.rounds} rounds:")
    medians = {}
    for v in variants:
        a_wall, b_wall, a_cpu, b_cpu = (statistics.median(col) for col in zip(*rows[v]))
        medians[v] = (a_wall, a_cpu)
        print(f"[{v}] (a) batched Augmenter on {device}: {a_wall:8.1f} clips/s, "
              f"{1e3 * a_cpu:6.1f} CPU-ms/clip")  # fmt: skip
        print(f"[{v}] (b) per-clip, DataLoader with {args.workers} workers (CPU): "
              f"{b_wall:8.1f} clips/s, {1e3 * b_cpu:6.1f} CPU-ms/clip")  # fmt: skip
        print(f"[{v}] ratio (a)/(b): {a_wall / b_wall:.2f}x clips/s; "
              f"{b_cpu / a_cpu:.2f}x less CPU per clip")  # fmt: skip
    if {"bench", "official"} <= set(medians):
        (bw, bc), (ow, oc) = medians["bench"], medians["official"]
        print(f"batched official / bench: {ow / bw:.2f}x clips/s, {oc / bc:.2f}x CPU per clip")


if __name__ == "__main__":
    main()
