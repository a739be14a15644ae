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
See docs/augmentation.md for the algorithms and the choices made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import torch

__all__ = [
    "FILTER_KINDS",
    "Augmenter",
    "coloured_noise",
    "delay",
    "fft_filter",
    "gain",
    "good_fft_size",
    "pitch_shift",
    "polarity",
    "white_noise",
]

#: Filter type codes used by :func:`fft_filter` (an int tensor indexes this tuple).
FILTER_KINDS = ("bandpass", "bandstop", "highpass", "lowpass")


# --------------------------------------------------------------------------- helpers


def good_fft_size(n: int) -> int:
    """Smallest integer >= n whose only prime factors are 2, 3, 5 (fast for every FFT backend)."""
    n = max(int(n), 1)
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _rows(param: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """A per-row parameter as a float32 column [M, 1] on x's device."""
    t = torch.as_tensor(param, dtype=torch.float32)
    t = t.to(x.device).reshape(-1, 1)
    if t.shape[0] == 1 and x.shape[0] != 1:
        t = t.expand(x.shape[0], 1)
    return t


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean(dim=-1, keepdim=True).sqrt()


# --------------------------------------------------------------------------- transforms


def gain(x: torch.Tensor, db: torch.Tensor | float) -> torch.Tensor:
    """Multiply each row by 10^(db/20)."""
    return x * torch.pow(10.0, _rows(db, x) / 20.0).to(x.dtype)


def polarity(x: torch.Tensor, flip: torch.Tensor | bool) -> torch.Tensor:
    """Negate the rows where ``flip`` is true."""
    flip = torch.as_tensor(flip, dtype=torch.bool).to(x.device).reshape(-1, 1)
    return torch.where(flip, -x, x)


def white_noise(m: int, t: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The Gaussian draws :func:`coloured_noise` shapes: ``[m, good_fft_size(t)]`` on the generator's device."""
    gdev = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(m, good_fft_size(t), generator=generator, device=gdev, dtype=torch.float32)


def coloured_noise(
    x: torch.Tensor,
    snr_db: torch.Tensor | float,
    slope: torch.Tensor | float,
    generator: torch.Generator | None = None,
    white: torch.Tensor | None = None,
) -> torch.Tensor:
    """Add noise with power spectral density ~ 1/f^slope at ``snr_db`` below each row's RMS.

    slope 0 = white, 1 = pink, 2 = brown, -1 = blue, -2 = violet (the
    ``f_decay`` of torch_audiomentations' AddColoredNoise). The DC bin is zeroed,
    the noise is scaled to RMS ``rms(x) / 10^(snr/20)``, so the SNR of the
    result is exact. White Gaussian noise is drawn from ``generator`` on the
    generator's device (CPU by default) and moved to ``x``'s device, or taken
    from ``white`` (as made by :func:`white_noise`) when given.
    """
    m, t = x.shape
    if white is None:
        white = white_noise(m, t, generator)
    n = white.shape[-1]
    if n < t:
        raise ValueError(f"white noise has {n} samples per row, fewer than the {t} of x")
    spec = torch.fft.rfft(white.to(x.device, torch.float32), dim=-1)
    k = torch.arange(spec.shape[-1], device=x.device, dtype=torch.float32).clamp(min=1.0)
    # amplitude ~ f^(-slope/2) so that power ~ f^(-slope); computed in log domain
    shape = torch.exp(-0.5 * _rows(slope, x) * torch.log(k)[None, :])
    shape[:, 0] = 0.0
    noise = torch.fft.irfft(spec * shape, n=n, dim=-1)[:, :t]
    noise = noise / _rms(noise).clamp(min=1e-12)
    target = _rms(x.float()) / torch.pow(10.0, _rows(snr_db, x) / 20.0)
    return (x.float() + noise * target).to(x.dtype)


def _kind_codes(kind, m: int, device) -> torch.Tensor:
    if isinstance(kind, str):
        if kind not in FILTER_KINDS:
            raise ValueError(f"unknown filter kind {kind!r}; expected one of {FILTER_KINDS}")
        return torch.full((m, 1), FILTER_KINDS.index(kind), device=device, dtype=torch.long)
    codes = torch.as_tensor(kind, dtype=torch.long).to(device).reshape(-1, 1)
    return codes.expand(m, 1) if codes.shape[0] == 1 else codes


def filter_response(
    freqs: torch.Tensor,
    kind,
    low: torch.Tensor | float,
    high: torch.Tensor | float,
    order: int = 4,
) -> torch.Tensor:
    """Magnitude of analog Butterworth filters at ``freqs`` (Hz), one row per filter.

    lowpass: cutoff ``high``; highpass: cutoff ``low``; band-pass / band-stop:
    edges ``low`` .. ``high`` (the band Butterworth obtained with the usual
    s -> (s^2 + w0^2) / (s B) transform, -3 dB exactly at both edges).
    A kind code of -1 gives an all-pass row.
    """
    f = freqs.reshape(1, -1).clamp(min=1e-3)
    m = max(torch.as_tensor(low).numel(), torch.as_tensor(high).numel())
    codes = _kind_codes(kind, m, f.device)
    m = codes.shape[0]
    lo = _rows(low, f).expand(m, 1).clamp(min=1e-3)
    hi = _rows(high, f).expand(m, 1).clamp(min=1e-3)
    two_n = 2 * order
    # each ratio r gives |H|^2 = 1 / (1 + r^2n); clamp keeps r^2n finite in float32
    cap = 1e30 ** (1.0 / two_n)
    r_lp = (f / hi).clamp(max=cap)
    r_hp = (lo / f).clamp(max=cap)
    bw = (hi - lo).clamp(min=1e-3)
    f0sq = lo * hi
    r_bp = ((f * f - f0sq).abs() / (f * bw)).clamp(max=cap)
    r_bs = (f * bw / (f * f - f0sq).abs().clamp(min=1e-6)).clamp(max=cap)
    r = torch.where(
        codes == 0, r_bp, torch.where(codes == 1, r_bs, torch.where(codes == 2, r_hp, r_lp))
    )
    h = torch.rsqrt(1.0 + r.pow(two_n))
    return torch.where(codes < 0, torch.ones_like(h), h)


def fft_filter(
    x: torch.Tensor,
    sample_rate: int,
    kind,
    low: torch.Tensor | float,
    high: torch.Tensor | float,
    order: int = 4,
) -> torch.Tensor:
    """Zero-phase FFT-domain Butterworth filtering of each row of ``x [M, T]``.

    ``kind``: a name from :data:`FILTER_KINDS` for all rows, or per-row int codes
    (indices into it; -1 = leave the row unchanged). Cutoffs are in Hz and are
    clamped to 0.95 x Nyquist. The signal is reflect-padded on both sides before
    the FFT so that the circular convolution does not wrap the end onto the start.
    """
    m, t = x.shape
    nyq = sample_rate / 2.0
    low = _rows(low, x).clamp(max=0.95 * nyq)
    high = _rows(high, x).clamp(max=0.95 * nyq)
    pad = min(t - 1, max(256, sample_rate // 20))
    xf = x.float()
    if pad > 0:
        xf = torch.nn.functional.pad(xf[:, None, :], (pad, pad), mode="reflect")[:, 0]
    n = good_fft_size(xf.shape[-1])
    spec = torch.fft.rfft(xf, n=n, dim=-1)
    freqs = torch.fft.rfftfreq(n, d=1.0 / sample_rate).to(x.device)
    h = filter_response(freqs, _kind_codes(kind, m, x.device), low, high, order=order)
    y = torch.fft.irfft(spec * h, n=n, dim=-1)[:, pad : pad + t]
    return y.to(x.dtype)


def pitch_shift(
    x: torch.Tensor,
    sample_rate: int,
    semitones: torch.Tensor | float,
    n_fft: int | None = None,
    hop: int | None = None,
) -> torch.Tensor:
    """Shift each row's pitch by ``semitones`` keeping its length (frequency-domain phase vocoder).

    One STFT for the whole batch; every output bin k takes the magnitude of
    source position k / ratio (linear interpolation) and advances its phase at
    ratio x the instantaneous frequency measured at the nearest source bin, so a
    sinusoid at f comes out at f x ratio with the same duration. No
    time-stretch + resampling step is needed, so rows with different ratios
    share one STFT grid. Rows with 0 semitones are returned unchanged.

    ``n_fft`` defaults to ~46 ms (1024 at 22050 Hz), ``hop`` to n_fft / 4.
    """
    m, t = x.shape
    if n_fft is None:
        n_fft = 1 << max(6, round(math.log2(sample_rate * 0.046)))
    if n_fft // 2 >= t:  # reflect padding of the STFT needs n_fft / 2 < T
        n_fft = max(4, 1 << max(2, (t - 1).bit_length() - 1))
    hop = hop or n_fft // 4
    semis = _rows(semitones, x)[:, 0]
    ratio = torch.pow(2.0, semis / 12.0)  # [M]
    window = torch.hann_window(n_fft, device=x.device, dtype=torch.float32)
    xf = x.float()
    # torch.stft gives [M, F, K] as a transposed view of a frames-major buffer: work in that
    # [M, K, F] layout (contiguous), which also makes gathers along F and the istft copy-free.
    spec = torch.stft(xf, n_fft, hop_length=hop, window=window, center=True, return_complex=True)
    spec = spec.transpose(1, 2)
    n_frames, n_bins = spec.shape[1], spec.shape[2]
    mag = spec.abs()

    # deviation of each bin's phase advance per hop from its centre frequency, already wrapped to
    # (-pi, pi]: the angle of X[k] * conj(X[k-1] * exp(i omega hop)) (one atan2 pass, no unwrapping)
    # bin centre frequencies in rad/sample
    omega = 2.0 * math.pi * torch.arange(n_bins, device=x.device, dtype=torch.float64) / n_fft
    rot = torch.polar(torch.ones_like(omega), omega * hop).to(spec.dtype)
    dev = torch.angle(spec[:, 1:] * (spec[:, :-1] * rot).conj())  # [M, K-1, F]

    # source position [M, F] of every output bin
    src = torch.arange(n_bins, device=x.device, dtype=torch.float32)[None, :] / ratio[:, None]
    valid = src <= (n_bins - 1)
    src = src.clamp(max=n_bins - 1)
    i0 = src.floor().long()
    i1 = (i0 + 1).clamp(max=n_bins - 1)
    frac = (src - i0.float())[:, None, :]
    inear = torch.round(src).long()

    def take(a: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """a[r, k, idx[r, f]] for every row r, frame k and output bin f."""
        return torch.gather(a, 2, idx[:, None, :].expand(m, a.shape[1], n_bins))

    mag_out = torch.lerp(take(mag, i0), take(mag, i1), frac.expand(m, n_frames, n_bins))
    if not bool(valid.all()):
        mag_out *= valid[:, None, :]
    # output phase: the source bin's start phase, then per hop ratio x (centre advance + deviation).
    # The centre part is reduced mod 2 pi in float64 so the running phase stays small and precise.
    base = torch.remainder(ratio.double()[:, None] * omega[inear] * hop, 2.0 * math.pi)
    base = base.float()  # [M, F]
    phase_out = torch.empty_like(mag_out)
    phase_out[:, 0] = torch.gather(torch.angle(spec[:, 0]), 1, inear)
    if n_frames > 1:
        inc = take(dev, inear).mul_(ratio[:, None, None]).add_(base[:, None, :])
        torch.cumsum(inc, dim=1, out=phase_out[:, 1:])
        phase_out[:, 1:] += phase_out[:, :1]
    # cos/sin + complex() rather than torch.polar: polar is not vectorised on CPU (3x slower)
    out_spec = torch.complex(mag_out * torch.cos(phase_out), mag_out * torch.sin(phase_out))
    y = torch.istft(
        out_spec.transpose(1, 2), n_fft, hop_length=hop, window=window, center=True, length=t
    )
    y = torch.where((semis == 0)[:, None], xf, y)
    return y.to(x.dtype)


def delay(
    x: torch.Tensor,
    sample_rate: int,
    delay_s: torch.Tensor | float,
    volume: torch.Tensor | float,
    repeats: torch.Tensor | int,
    attenuation: torch.Tensor | float,
) -> torch.Tensor:
    """Echo: ``y = (x + volume * sum_{r=1..repeats} attenuation^(r-1) x(t - r d)) / 2``.

    ``d = round(delay_s * sample_rate)`` samples per row. The echoes are taps at
    multiples of the delay (a feedback-free multi-tap delay); the wet signal is
    averaged with the dry one (the CLMR/SemiSupCon convention). The output
    keeps the length: echoes past the end are cut.
    """
    m, t = x.shape
    d = torch.round(_rows(delay_s, x) * sample_rate).long()  # [M, 1]
    vol = _rows(volume, x)
    att = _rows(attenuation, x)
    reps = torch.as_tensor(repeats).to(x.device).reshape(-1, 1).long()
    if reps.shape[0] == 1:
        reps = reps.expand(m, 1)
    xf = x.float()
    wet = torch.zeros_like(xf)
    pos = torch.arange(t, device=x.device)[None, :]
    max_r = int(reps.max().item()) if reps.numel() else 0
    for r in range(1, max_r + 1):
        idx = pos - r * d
        tap = torch.gather(xf, 1, idx.clamp(min=0)) * (idx >= 0)
        coef = torch.where(reps >= r, att.pow(r - 1), torch.zeros_like(att))
        wet = wet + coef * tap
    return (0.5 * (xf + vol * wet)).to(x.dtype)


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


class Augmenter:
    """The SemiSupCon augmentation chain, batched over clips and views.

    ``Augmenter(sample_rate)(views [B, N, T], generator)`` returns augmented
    views of the same shape, device and dtype. Deterministic given the
    generator; the same seed draws the same parameters and noise on CPU and GPU
    (they are drawn on the generator's device, CPU by default, then moved).
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

    def __init__(
        self,
        sample_rate: int,
        severity: float = 1.0,
        p_apply: float = 0.8,
        *,
        max_rows: int | None = None,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if severity < 0:
            raise ValueError(f"severity must be >= 0, got {severity}")
        if not 0.0 <= p_apply <= 1.0:
            raise ValueError(f"p_apply must be in [0, 1], got {p_apply}")
        self.sample_rate = int(sample_rate)
        self.severity = float(severity)
        self.p_apply = float(p_apply)
        self.max_rows = max_rows  # views per chunk; None = chosen per device (see chunk_rows)

    def __repr__(self) -> str:
        return f"Augmenter(sample_rate={self.sample_rate}, severity={self.severity}, p_apply={self.p_apply})"

    def prob(self, name: str) -> float:
        return min(1.0, self.P[name] * self.severity)

    # ---------------------------------------------------------------- drawing
    def draw(self, b: int, n: int, generator: torch.Generator | None = None) -> ChainParams:
        """Draw every parameter for ``b`` clips x ``n`` views (always the same number of draws)."""
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
        self, views: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """views [B, N, T] float (B clips x N views) on any device -> augmented [B, N, T], same device/dtype."""
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
        white = white_noise(int(p.noise_on.sum()), t, generator)
        noise_rank = torch.cumsum(p.noise_on.long(), 0) - 1
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
        if (i := rows(p.noise_on)) is not None:
            x[i] = coloured_noise(x[i], sub(p.snr_db, i), sub(p.slope, i), white=white)
        if (i := rows(p.filter_on)) is not None:
            x[i] = fft_filter(
                x[i], sr, sub(p.filter_kind, i), sub(p.filter_low, i), sub(p.filter_high, i)
            )
        if (i := rows(p.pitch_on & (p.semitones != 0))) is not None:
            x[i] = pitch_shift(x[i], sr, sub(p.semitones, i))
        if (i := rows(p.delay_on)) is not None:
            x[i] = delay(
                x[i], sr, sub(p.delay_s, i), sub(p.delay_volume, i),
                sub(p.delay_repeats, i), sub(p.delay_attenuation, i),
            )  # fmt: skip
        return x
