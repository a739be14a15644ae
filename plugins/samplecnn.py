"""SampleCNN: the raw-waveform backbone of SemiSupCon, SimCLR (CLMR) and the supervised baseline.

This module is the network and its presets only; the encoder plugins that
register names live in :mod:`bench_plugins.ssl_encoders`. It imports torch at
module level, so it is imported lazily (only when an encoder is built).

Shape (method.md, preset ``paper``)::

    x [B, 59535] @ 22050 Hz
    stem   Conv1d(1->128, k3, s3) + BN + ReLU                     -> [B, 128, 19845]
    9 x    Conv1d(k3, p1) + BN + ReLU + MaxPool(3)                -> [B, 512, 1]
           channels 128,128,256,256,256,256,256,256,512
    last   Conv1d(512->512, k3, p1) + BN + ReLU, flatten          -> [B, 512]
    head   Linear(512,512, no bias) - ReLU - Linear(512,128, no bias)  (contrastive loss only)

The window is exactly what makes the time axis 1 after the last pool:
``window // 3`` (stem) then ``// 3`` per block (floor, as MaxPool does).

Preset ``demo`` keeps that shape (stem, pooled blocks, last conv, 2-layer
head) but is small enough to pretrain on 2 CPU cores in minutes:

- 16000 Hz instead of 22050: pitch and key content of the demo data lies
  well below 8 kHz, and it cuts the samples per second of audio by 27%.
- window 3^9 = 19683 samples (1.23 s): with the stride-3 stem that leaves
  3^8 samples, so 8 pooled blocks reach a time axis of exactly 1 (the paper
  uses 9 blocks because its window is ~3^10). One block fewer is the only
  change of depth; every block keeps its role.
- channels divided by 4 (32,32,64,64,64,64,64,128; last 128): the first two
  blocks run at the highest time resolution and dominate the cost, which is
  roughly quadratic in their width, so /4 is ~16x cheaper there.
- embedding 128-d (the last block's width, as in the paper where embedding
  = last width = 512), projection head 128 -> 128 -> 64 (the paper's head
  keeps its hidden width equal to the embedding and outputs 1/4 of it).

Training recipe per preset (``recipe`` below): paper = Adam 1e-4, no weight
decay, batch 96 clips x 2 views, 50k steps, seed 123, the official
augmentation chain (method.md); demo = Adam 1e-3, batch 32 x 2, 800 steps, no
augmentation, for SemiSupCon, SimCLR and the supervised baseline alike (which
takes one view). The demo recipe was chosen on the validation splits of the
medium demo with 3 pretraining seeds: with the earlier one (Adam 3e-4, 300
steps, augmentation on) SemiSupCon labeled by pitch ended below the untrained
network on NSynth pitch; docs/pretraining.md "Demo recipe" has the runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "sample_rate": 22050,
        "window": 59535,
        "stem_channels": 128,
        "channels": (128, 128, 256, 256, 256, 256, 256, 256, 512),
        "dim": 512,
        "proj_hidden": 512,
        "proj_dim": 128,
        "recipe": {"lr": 1e-4, "batch_size": 96, "views": 2, "steps": 50_000, "seed": 123,
                   "checkpoint_every": 1000, "log_every": 50, "augment_variant": "official",
                   "store_dtype": "int16"},
    },
    "demo": {
        "sample_rate": 16000,
        "window": 19683,
        "stem_channels": 32,
        "channels": (32, 32, 64, 64, 64, 64, 64, 128),
        "dim": 128,
        "proj_hidden": 128,
        "proj_dim": 64,
        # probe_every 50: the learning curve (docs/pretraining.md "Learning curves"); it cost 3% of the wall
        # time (6% CPU) of a demo semisupcon pretraining, measured with and without.
        # lr 1e-3, 800 steps, no augmentation: chosen on the validation splits (docs/pretraining.md "Demo
        # recipe"), the recipe of every pretrained encoder of the demo; the paper preset keeps the augmentation
        "recipe": {"lr": 1e-3, "batch_size": 32, "views": 2, "steps": 800, "seed": 123, "augment": False,
                   "checkpoint_every": 100, "log_every": 10, "probe_every": 50},
    },
}


def preset(name: str) -> dict[str, Any]:
    """The settings of a preset, or a clear error listing the known ones."""
    if name not in PRESETS:
        from bench.errors import PluginError

        raise PluginError(f"unknown SampleCNN preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def time_after(window: int, n_blocks: int) -> int:
    """Length of the time axis after the stem and ``n_blocks`` pooled blocks."""
    t = (window - 3) // 3 + 1
    for _ in range(n_blocks):
        t //= 3
    return t


class TrainPool(nn.MaxPool1d):
    """``MaxPool1d(k)`` (stride k, no padding) with a faster path when gradients flow.

    On CPU, max pooling with the indices backward needs is as slow as the
    convolution before it (bench_flops profile: 18% of a demo step); a max over
    a ``[..., n, k]`` view computes the same values and sends each gradient to
    the same (first) maximum, 2.4x faster forward and backward on the first
    block. Without gradients (extraction) the plain pool is the fast one, so
    it is kept there. Same values and gradients, ties included
    (tests/test_samplecnn.py); no parameters, so state dicts are unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad):
            return super().forward(x)
        k = int(self.kernel_size)
        n = x.shape[-1] // k
        return x[..., : n * k].unflatten(-1, (n, k)).max(-1).values


class SampleCNN(nn.Module):
    """SampleCNN backbone: ``[B, window]`` waveform -> ``[B, dim]`` embedding."""

    def __init__(self, window: int, stem_channels: int, channels: tuple[int, ...], dim: int) -> None:
        super().__init__()
        t = time_after(window, len(channels))
        if t != 1:
            raise ValueError(
                f"SampleCNN: a window of {window} samples leaves a time axis of {t} after the stem and "
                f"{len(channels)} blocks; it must be 1 (use window = 3^(blocks+1), e.g. "
                f"{3 ** (len(channels) + 1)})"
            )
        self.window = window
        # ReLU in place (batch norm keeps its input, not its output, for backward), and after the max-pool
        # in the blocks: max and ReLU commute exactly, values and gradients alike, so the block computes what
        # conv-BN-ReLU-pool does with a third of the ReLU work and no extra activation (tests/test_samplecnn.py).
        # Neither holds parameters, so the state-dict keys are those of the canonical order.
        self.stem = nn.Sequential(
            nn.Conv1d(1, stem_channels, kernel_size=3, stride=3), nn.BatchNorm1d(stem_channels), nn.ReLU(inplace=True)
        )
        blocks = []
        c_in = stem_channels
        for c_out in channels:
            blocks.append(
                nn.Sequential(
                    nn.Conv1d(c_in, c_out, kernel_size=3, padding=1),
                    nn.BatchNorm1d(c_out),
                    TrainPool(3),
                    nn.ReLU(inplace=True),
                )
            )
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.last = nn.Sequential(nn.Conv1d(c_in, dim, kernel_size=3, padding=1), nn.BatchNorm1d(dim),
                                  nn.ReLU(inplace=True))
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[-1] != self.window:
            raise ValueError(f"SampleCNN expects [B, {self.window}] waveforms, got {tuple(x.shape)}")
        h = self.last(self.blocks(self.stem(x.unsqueeze(1))))
        return h.flatten(1)


def projection_head(dim: int, hidden: int, out: int) -> nn.Module:
    """The contrastive projection head: Linear(no bias) - ReLU - Linear(no bias)."""
    return nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, out, bias=False))


class WithHead(nn.Module):
    """Backbone plus an optional head; ``forward`` returns the head's output.

    The training loop wraps *this* module (DDP), so the head's output must be
    what ``forward`` returns: DDP only synchronises gradients of a forward
    that went through the wrapper.
    """

    def __init__(self, encoder: SampleCNN, head: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        return self.head(h) if self.head is not None else h


def build(preset_name: str, seed: int, head: str | None = "projection") -> WithHead:
    """A seeded SampleCNN (+ projection head); the same seed gives the same weights.

    The global torch RNG is left as it was (``fork_rng``), so building an
    encoder never changes the random stream of the caller.
    """
    p = preset(preset_name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc = SampleCNN(p["window"], p["stem_channels"], tuple(p["channels"]), p["dim"])
        h = projection_head(p["dim"], p["proj_hidden"], p["proj_dim"]) if head == "projection" else None
        return WithHead(enc, h)
