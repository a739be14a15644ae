"""Throughput of the batched augmentation chain vs per-clip augmentation in DataLoader workers.

(a) batched: ``Augmenter`` over a whole batch ``[B, N, T]`` on the training device
    (what bench/pretrain.py does);
(b) per-clip (the reference implementation's approach): a torch ``Dataset`` whose
    ``__getitem__`` augments one clip's N views (the same transforms, same
    per-view draws, with M = N rows), served by a ``DataLoader`` with 2 worker
    processes; the collated batch is then moved to the training device.

Both read the same in-memory synthetic clips, so decoding is left out of both;
the difference measured is the augmentation pipeline only.

    python benchmarks/bench_augment.py                   # paper preset: 22050 Hz, 59535 samples, 96 x 2
    python benchmarks/bench_augment.py --preset demo     # 16000 Hz, 19683 samples
    python benchmarks/bench_augment.py --device cuda     # on a GPU
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch
from torch.utils.data import DataLoader, Dataset

from bench.augment import Augmenter

PRESETS = {
    "paper": {"sample_rate": 22050, "window": 59535},
    "demo": {"sample_rate": 16000, "window": 19683},
}


def synthetic_clips(n_clips: int, n_views: int, window: int, sample_rate: int, seed: int = 0) -> torch.Tensor:
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

    def __init__(self, clips: torch.Tensor, augmenter: Augmenter, length: int, seed: int = 0) -> None:
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


def bench_batched(clips, augmenter, device, steps, seed) -> float:
    views = clips.to(device)
    g = torch.Generator().manual_seed(seed)
    augmenter(views, g)  # warm-up (allocator, FFT plans, kernels)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        views = clips.to(device)
        out = augmenter(views, g)
    sync(device)
    dt = time.perf_counter() - t0
    assert out.shape == clips.shape
    return clips.shape[0] * steps / dt


def bench_per_clip(clips, augmenter, device, batches, workers, seed) -> float:
    b = clips.shape[0]
    ds = PerClipDataset(clips, augmenter, length=b * (batches + 1), seed=seed)
    loader = DataLoader(ds, batch_size=b, shuffle=False, num_workers=workers, persistent_workers=workers > 0)
    it = iter(loader)
    next(it)  # warm-up batch: starts the workers, not timed
    t0 = time.perf_counter()
    n = 0
    for batch in it:
        out = batch.to(device)
        n += batch.shape[0]
    sync(device)
    dt = time.perf_counter() - t0
    assert out.shape == clips.shape
    return n / dt


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    ap.add_argument("--batch", type=int, default=96, help="clips per batch")
    ap.add_argument("--views", type=int, default=2, help="views per clip")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=3, help="timed batches of the batched version")
    ap.add_argument("--baseline-batches", type=int, default=2, help="timed batches of the per-clip loader")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the per-clip baseline")
    ap.add_argument("--severity", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args(argv)

    preset = PRESETS[args.preset]
    sr, window = preset["sample_rate"], preset["window"]
    device = torch.device(args.device)
    clips = synthetic_clips(args.batch, args.views, window, sr, seed=args.seed)
    augmenter = Augmenter(sr, severity=args.severity)

    print(f"device: {device_name(device)}; torch {torch.__version__}")
    print(f"preset {args.preset}: {sr} Hz x {window} samples, batch {args.batch} clips x {args.views} views")
    batched = bench_batched(clips, augmenter, device, args.steps, args.seed)
    print(f"(a) batched Augmenter on {device.type}:            {batched:8.1f} clips/s")
    per_clip = bench_per_clip(clips, augmenter, device, args.baseline_batches, args.workers, args.seed)
    print(f"(b) per-clip in DataLoader ({args.workers} workers, CPU):    {per_clip:8.1f} clips/s")
    print(f"ratio (a)/(b): {batched / per_clip:.2f}x")


if __name__ == "__main__":
    main()
