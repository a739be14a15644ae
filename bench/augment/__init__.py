"""Batched SemiSupCon augmentation chain in plain torch (no torchaudio).

The reference implementation augments one clip at a time inside DataLoader
workers (torch_audiomentations on CPU). Here the whole batch of views
``[B, N, T]`` is augmented at once on the training device, with every random
parameter drawn *per view*. Parameters (and the noise) are drawn from one
``torch.Generator`` before anything runs on the device, so a seed gives the same
draws on CPU and GPU.

Each transform is also a function usable on its own. They take a batch
``x [M, T]`` and per-row parameter tensors (shape ``[M]``); they transform every
row they are given. :class:`Augmenter` calls them only on the rows where the
transform was drawn (an index select + scatter back), so rows not drawn are left
bit-for-bit unchanged and the expensive transforms (pitch shift) only pay for
the rows that need them.

The chain (severity ``s``, method.md "Views and augmentation"), applied to a
clip's views with probability ``p_apply``; inside, each transform draws its own
probability and parameters per view:

=============  ===================================================  =============
transform      parameters (s = 1)                                   probability
=============  ===================================================  =============
gain           -15s .. +5s dB, uniform                              0.4 s
polarity       sign flip                                            0.6 s
coloured noise SNR 3/s .. 30/s dB, PSD slope -2 .. 2 (1/f^slope)    0.6 s
filter         one type per clip (band-pass, band-stop, high-pass,  0.3 s
               low-pass); per view: centre 200..4000 Hz and
               bandwidth fraction 0.5..1.99 / cutoff 200..2400 Hz /
               cutoff 150..7500 Hz
pitch shift    +-4s semitones, duration kept                        0.6 s
delay          100..500 ms, volume 0.3|0.7, repeats 1..3,           0.6 s
               attenuation 0.3|0.7
=============  ===================================================  =============

Probabilities are ``min(1, p * s)``; ``s = 0`` is the identity. ``p_apply`` is
not scaled (it is a separate knob; pass ``p_apply=1`` to corrupt every clip).

That table is the ``"bench"`` variant (the default). ``Augmenter(...,
variant="official")`` keeps the transforms and their order but gives them the
shapes of the official SemiSupCon code: a delay whose delayed signal includes
the dry tap (repeats 1 or 3, so half the delays have no echo), mel-uniform
cutoffs with julius windowed-sinc filters, torch_audiomentations' coloured
noise (PSD slope twice its nominal f_decay), pitch ratios from the sample
rate's "fast" set (14 at 22050 Hz, at most 3.16 semitones) and capped
probabilities. See docs/augmentation.md for the algorithms, the choices made and
file:line sources for the official shapes.

Label-aware augmentation: ``skip`` switches named transforms off for chosen
clips after every parameter is drawn (bench.pretrain.loop passes the labeled
clips of tasks whose labels a transform changes, e.g. pitch shift for pitch).

Long because the chain is one object: drawing (both variants), skipping and
applying share its parameter layout; the transforms live in transforms.py and
official.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import ClassVar

import torch

from bench.augment.official import (VARIANTS, fast_pitch_ratios, hz_to_mel, mel_to_hz, official_coloured_noise,
                                    official_ranges, official_white_noise, sinc_filter)
from bench.augment.transforms import (FILTER_KINDS, coloured_noise, delay, fft_filter, gain, good_fft_size,
                                      pitch_shift, polarity, white_noise)

__all__ = [
    "FILTER_KINDS",
    "TRANSFORMS",
    "VARIANTS",
    "Augmenter",
    "coloured_noise",
    "delay",
    "fast_pitch_ratios",
    "fft_filter",
    "gain",
    "good_fft_size",
    "hz_to_mel",
    "mel_to_hz",
    "official_coloured_noise",
    "official_ranges",
    "official_white_noise",
    "pitch_shift",
    "polarity",
    "sinc_filter",
    "white_noise",
]


# --------------------------------------------------------------------------- the chain


@dataclass
class ChainParams:
    """Every random draw of one call, on the CPU (rows = B x N views, clip-major)."""

    gain_on: torch.Tensor
    gain_db: torch.Tensor
    flip_on: torch.Tensor
    noise_on: torch.Tensor
    snr_db: torch.Tensor
    slope: torch.Tensor
    filter_on: torch.Tensor
    filter_kind: torch.Tensor
    filter_low: torch.Tensor
    filter_high: torch.Tensor
    pitch_on: torch.Tensor
    semitones: torch.Tensor
    delay_on: torch.Tensor
    delay_s: torch.Tensor
    delay_volume: torch.Tensor
    delay_repeats: torch.Tensor
    delay_attenuation: torch.Tensor

    def rows(self, start: int, stop: int) -> ChainParams:
        return ChainParams(*(getattr(self, f.name)[start:stop] for f in fields(self)))


#: transform names a task may declare its labels not invariant to (bench.task.Task.label_variant_transforms),
#: and the draw that switches each on
TRANSFORMS: dict[str, str] = {"gain": "gain_on", "polarity": "flip_on", "noise": "noise_on", "filter": "filter_on",
                              "pitch_shift": "pitch_on", "delay": "delay_on"}


class Augmenter:
    """The SemiSupCon augmentation chain, batched over clips and views.

    ``Augmenter(sample_rate)(views [B, N, T], generator)`` returns augmented
    views of the same shape, device and dtype. Deterministic given the
    generator; the same seed draws the same parameters and noise on CPU and GPU
    (they are drawn on the generator's device, CPU by default, then moved).

    ``variant`` picks the transforms' shapes (see :data:`VARIANTS` and
    docs/augmentation.md): ``"bench"`` (the default; the shapes this harness
    has always used) or ``"official"`` (the official SemiSupCon code's:
    mel-uniform windowed-sinc filters, the dry-tap delay with 1 or 3 repeats,
    its coloured noise, the fast pitch ratios, its probability caps and
    severity formulas). Same transforms, order and per-view drawing in both.
    """

    # ranges at severity 1
    GAIN_DB = (-15.0, 5.0)
    SNR_DB = (3.0, 30.0)
    SLOPE = (-2.0, 2.0)
    BAND_CENTRE_HZ = (200.0, 4000.0)
    BAND_FRACTION = (0.5, 1.99)
    HIGHPASS_HZ = (200.0, 2400.0)
    LOWPASS_HZ = (150.0, 7500.0)
    SEMITONES = 4.0
    DELAY_S = (0.1, 0.5)
    DELAY_VOLUMES = (0.3, 0.7)
    DELAY_REPEATS = (1, 3)
    DELAY_ATTENUATIONS = (0.3, 0.7)
    P: ClassVar[dict[str, float]] = {
        "gain": 0.4,
        "polarity": 0.6,
        "noise": 0.6,
        "filter": 0.3,
        "pitch": 0.6,
        "delay": 0.6,
    }
    #: official per-transform probabilities: ``min(cap, p * s)`` for each (p, cap)
    P_OFFICIAL: ClassVar[dict[str, tuple[float, float]]] = {
        "gain": (0.4, 0.7),
        "polarity": (0.6, 0.8),
        "noise": (0.6, 0.8),
        "filter": (0.3, 0.6),
        "pitch": (0.6, 0.75),
        "delay": (0.6, 0.6),
    }

    def __init__(
        self,
        sample_rate: int,
        severity: float = 1.0,
        p_apply: float = 0.8,
        *,
        variant: str = "bench",
        max_rows: int | None = None,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if severity < 0:
            raise ValueError(f"severity must be >= 0, got {severity}")
        if not 0.0 <= p_apply <= 1.0:
            raise ValueError(f"p_apply must be in [0, 1], got {p_apply}")
        if variant not in VARIANTS:
            raise ValueError(f"unknown augmentation variant {variant!r}; expected one of {VARIANTS}")
        self.sample_rate = int(sample_rate)
        self.severity = float(severity)
        self.p_apply = float(p_apply)
        self.variant = variant
        self.max_rows = max_rows  # views per chunk; None = chosen per device (see chunk_rows)
        self.official = official_ranges(self.sample_rate, self.severity) if (
            variant == "official" and self.severity > 0
        ) else None  # fmt: skip

    def __repr__(self) -> str:
        return (f"Augmenter(sample_rate={self.sample_rate}, severity={self.severity}, "
                f"p_apply={self.p_apply}, variant={self.variant!r})")  # fmt: skip

    def prob(self, name: str) -> float:
        if self.variant == "official":
            p, cap = self.P_OFFICIAL[name]
            return min(cap, p * self.severity)
        return min(1.0, self.P[name] * self.severity)

    # ---------------------------------------------------------------- drawing
    def draw(self, b: int, n: int, generator: torch.Generator | None = None) -> ChainParams:
        """Draw every parameter for ``b`` clips x ``n`` views (always the same number of draws)."""
        if self.official is not None:
            return self._draw_official(b, n, generator)
        s = self.severity
        m = b * n
        gdev = generator.device if generator is not None else torch.device("cpu")

        def u(shape, lo=0.0, hi=1.0):
            r = torch.rand(shape, generator=generator, device=gdev, dtype=torch.float64).cpu()
            return (lo + (hi - lo) * r).float()

        def pick(values, shape):
            i = torch.randint(len(values), shape, generator=generator, device=gdev).cpu()
            return torch.as_tensor(values, dtype=torch.float32)[i]

        clip_on = (u(b) < self.p_apply).repeat_interleave(n)

        def on(name):
            return clip_on & (u(m) < self.prob(name))

        gain_on = on("gain")
        gain_db = u(m, self.GAIN_DB[0] * s, self.GAIN_DB[1] * s)
        flip_on = on("polarity")
        noise_on = on("noise")
        snr_lo, snr_hi = (self.SNR_DB[0] / s, self.SNR_DB[1] / s) if s > 0 else (math.inf, math.inf)
        snr_db = u(m, snr_lo, snr_hi) if s > 0 else torch.full((m,), math.inf)
        slope = u(m, *self.SLOPE)

        filter_on = on("filter")
        kind = torch.randint(len(FILTER_KINDS), (b,), generator=generator, device=gdev).cpu()
        kind = kind.repeat_interleave(n)
        centre = u(m, *self.BAND_CENTRE_HZ)
        width = centre * u(m, *self.BAND_FRACTION)
        hp = u(m, *self.HIGHPASS_HZ)
        lp = u(m, *self.LOWPASS_HZ)
        is_band = kind <= 1
        low = torch.where(is_band, centre - width / 2, hp)
        high = torch.where(is_band, centre + width / 2, lp)

        pitch_on = on("pitch")
        semitones = u(m, -self.SEMITONES * s, self.SEMITONES * s)

        delay_on = on("delay")
        delay_s = u(m, *self.DELAY_S)
        volume = pick(self.DELAY_VOLUMES, (m,))
        repeats = torch.randint(
            self.DELAY_REPEATS[0], self.DELAY_REPEATS[1] + 1, (m,), generator=generator, device=gdev
        ).cpu()
        attenuation = pick(self.DELAY_ATTENUATIONS, (m,))
        return ChainParams(
            gain_on, gain_db, flip_on, noise_on, snr_db, slope,
            filter_on, kind, low, high, pitch_on, semitones,
            delay_on, delay_s, volume, repeats, attenuation,
        )  # fmt: skip

    def _draw_official(self, b: int, n: int, generator: torch.Generator | None) -> ChainParams:
        """:meth:`draw` for the official variant: its ranges (:func:`official_ranges`), mel-uniform
        cutoffs, fast pitch ratios and delays in whole samples. ``slope`` holds its ``f_decay``."""
        r = self.official
        m = b * n
        gdev = generator.device if generator is not None else torch.device("cpu")

        def u(shape, lo=0.0, hi=1.0):
            x = torch.rand(shape, generator=generator, device=gdev, dtype=torch.float64).cpu()
            return lo + (hi - lo) * x

        def mel_u(shape, lo_hz, hi_hz):
            return mel_to_hz(u(shape, float(hz_to_mel(lo_hz)), float(hz_to_mel(hi_hz))))

        def pick(values, shape):
            i = torch.randint(len(values), shape, generator=generator, device=gdev).cpu()
            return torch.as_tensor(values, dtype=torch.float64)[i]

        clip_on = (u(b) < self.p_apply).repeat_interleave(n)

        def on(name):
            return clip_on & (u(m) < self.prob(name))

        gain_on = on("gain")
        gain_db = u(m, *r["gain_db"])
        flip_on = on("polarity")
        noise_on = on("noise")
        snr_db = u(m, *r["snr_db"])
        f_decay = u(m, *r["f_decay"])

        filter_on = on("filter")
        kind = torch.randint(len(FILTER_KINDS), (b,), generator=generator, device=gdev).cpu()
        kind = kind.repeat_interleave(n)
        centre = mel_u(m, *r["band_centre_hz"])
        fraction = u(m, *r["band_fraction"])
        hp = mel_u(m, *r["highpass_hz"])
        lp = mel_u(m, *r["lowpass_hz"])
        is_band = kind <= 1
        low = torch.where(is_band, centre * (1 - 0.5 * fraction), hp)
        high = torch.where(is_band, centre * (1 + 0.5 * fraction), lp)

        pitch_on = on("pitch")
        ratios = torch.tensor([float(q) for q in r["pitch_ratios"]], dtype=torch.float64)
        which = torch.randint(len(ratios), (m,), generator=generator, device=gdev).cpu()
        semitones = 12.0 * torch.log2(ratios[which])

        delay_on = on("delay")
        lo_d, hi_d = r["delay_samples"]
        d = torch.randint(lo_d, hi_d + 1, (m,), generator=generator, device=gdev).cpu()
        volume = pick(r["delay_volumes"], (m,))
        repeats = pick(r["delay_repeats"], (m,)).long()
        attenuation = pick(r["delay_attenuations"], (m,))
        f32 = [v.float() for v in (gain_db, snr_db, f_decay, low, high, semitones)]
        gain_db, snr_db, f_decay, low, high, semitones = f32
        return ChainParams(
            gain_on, gain_db, flip_on, noise_on, snr_db, f_decay,
            filter_on, kind, low, high, pitch_on, semitones,
            delay_on, (d.double() / self.sample_rate).float(), volume.float(), repeats,
            attenuation.float(),
        )  # fmt: skip

    # ---------------------------------------------------------------- applying
    def chunk_rows(self, device: torch.device, t: int) -> int:
        """Views processed together. On CPU a few rows at a time keeps the pitch shifter's STFT
        intermediates (about 80 bytes per sample per row) in cache, which measured ~3x faster per
        row than one call over the whole batch; on a GPU large chunks fill the device."""
        if self.max_rows is not None:
            return max(1, int(self.max_rows))
        if device.type == "cpu":
            return max(1, (1 << 19) // max(t, 1))  # 8 rows at the paper window
        return max(1, (1 << 23) // max(t, 1))  # ~140 rows at the paper window

    def __call__(
        self, views: torch.Tensor, generator: torch.Generator | None = None,
        skip: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """views [B, N, T] float (B clips x N views) on any device -> augmented [B, N, T], same device/dtype.

        ``skip``: transform name (:data:`TRANSFORMS`) -> bool ``[B]``, the clips whose views never get
        that transform (label-aware augmentation). Parameters are still drawn for them, so every
        other clip's augmentation is the same as without ``skip``.
        """
        if views.dim() != 3:
            raise ValueError(f"views must be [B, N, T], got shape {tuple(views.shape)}")
        if not views.is_floating_point():
            raise TypeError(f"views must be a float tensor, got {views.dtype}")
        b, n, t = views.shape
        if self.severity == 0 or self.p_apply == 0 or views.numel() == 0:
            return views.clone()
        p = self.draw(b, n, generator)
        m = b * n
        # all random draws happen here, before any chunking, so results do not depend on it
        n_noise = int(p.noise_on.sum())
        if self.official is not None:
            white = official_white_noise(n_noise, self.sample_rate, generator)
        else:
            white = white_noise(n_noise, t, generator)
        noise_rank = torch.cumsum(p.noise_on.long(), 0) - 1
        if skip:  # after every draw (the noise included), so the random stream is unchanged
            p = self._skipping(p, skip, b, n)
        x = views.reshape(m, t)
        out = torch.empty(m, t, dtype=torch.float32, device=views.device)
        step = self.chunk_rows(views.device, t)
        spans = [(start, min(m, start + step)) for start in range(0, m, step)]

        def run(span: tuple[int, int]) -> None:
            start, stop = span
            on = p.noise_on[start:stop]
            w = white[noise_rank[start:stop][on]] if on.any() else None
            out[start:stop] = self._apply(x[start:stop].float(), p.rows(start, stop), w)

        # Chunks run one after the other in the calling thread with the caller's torch threads.
        # (A thread pool over chunks was tried: forked DataLoader workers started later in the
        # same process then hung in their first FFT, so the chain stays single-caller.)
        for span in spans:
            run(span)
        return out.reshape(b, n, t).to(views.dtype)

    @staticmethod
    def _skipping(p: ChainParams, skip: dict[str, torch.Tensor], b: int, n: int) -> ChainParams:
        """``p`` with the named transforms switched off on the views of the clips marked in ``skip``."""
        changes = {}
        for name, clips in skip.items():
            if name not in TRANSFORMS:
                raise ValueError(f"unknown transform {name!r} to skip; known: {', '.join(TRANSFORMS)}")
            clips = torch.as_tensor(clips, dtype=torch.bool).cpu().reshape(-1)
            if clips.numel() != b:
                raise ValueError(f"skip[{name!r}] has {clips.numel()} entries for {b} clips")
            flag = TRANSFORMS[name]
            changes[flag] = changes.get(flag, getattr(p, flag)) & ~clips.repeat_interleave(n)
        return replace(p, **changes)

    def _apply(self, x: torch.Tensor, p: ChainParams, white: torch.Tensor | None) -> torch.Tensor:
        """The chain on rows ``x [M, T]`` with their drawn parameters ``p``."""
        x = x.clone()
        dev = x.device
        sr = self.sample_rate

        def rows(mask: torch.Tensor) -> torch.Tensor | None:
            idx = mask.nonzero().flatten()
            return idx.to(dev) if idx.numel() else None

        def sub(v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return v[idx.cpu()].to(dev)

        if (i := rows(p.gain_on)) is not None:
            x[i] = gain(x[i], sub(p.gain_db, i))
        if (i := rows(p.flip_on)) is not None:
            x[i] = -x[i]
        official = self.official is not None
        if (i := rows(p.noise_on)) is not None:
            if official:
                x[i] = official_coloured_noise(x[i], sr, sub(p.snr_db, i), sub(p.slope, i), white)
            else:
                x[i] = coloured_noise(x[i], sub(p.snr_db, i), sub(p.slope, i), white=white)
        if (i := rows(p.filter_on)) is not None:
            ci = i.cpu()  # the sinc kernels are built on the CPU from the drawn cutoffs
            filt = sinc_filter if official else fft_filter
            x[i] = filt(x[i], sr, p.filter_kind[ci], p.filter_low[ci], p.filter_high[ci])
        if (i := rows(p.pitch_on & (p.semitones != 0))) is not None:
            x[i] = pitch_shift(x[i], sr, sub(p.semitones, i))
        if (i := rows(p.delay_on)) is not None:
            x[i] = delay(
                x[i], sr, sub(p.delay_s, i), sub(p.delay_volume, i),
                sub(p.delay_repeats, i), sub(p.delay_attenuation, i), dry_tap=official,
            )  # fmt: skip
        return x
