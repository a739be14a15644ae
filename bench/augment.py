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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import ClassVar

import julius
import torch

__all__ = [
    "FILTER_KINDS",
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
    *,
    dry_tap: bool = False,
) -> torch.Tensor:
    """Echo: ``y = (x + volume * sum_{r=1..repeats} attenuation^(r-1) x(t - r d)) / 2``.

    ``d = round(delay_s * sample_rate)`` samples per row. The echoes are taps at
    multiples of the delay (a feedback-free multi-tap delay); the wet signal is
    averaged with the dry one (the CLMR convention). The output keeps the
    length: echoes past the end are cut.

    ``dry_tap=True`` is the official SemiSupCon delay: its delayed signal starts
    with the dry signal itself, ``y = (x + volume * sum_{i=0..repeats-1}
    attenuation^i x(t - i d)) / 2``, so ``repeats=1`` gives ``(1 + volume) / 2 * x``
    with no echo and ``repeats=3`` gives two echoes. ``repeats=0`` gives ``x / 2``.
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
    first = 0 if dry_tap else 1  # offset (in delays) of the first tap
    for r in range(first, first + max_r):
        idx = pos - r * d
        tap = torch.gather(xf, 1, idx.clamp(min=0)) * (idx >= 0)
        coef = torch.where(reps > r - first, att.pow(r - first), torch.zeros_like(att))
        wet = wet + coef * tap
    return (0.5 * (xf + vol * wet)).to(x.dtype)


# --------------------------------------------------------------------------- official shapes
# The transforms below reproduce the shapes of the official SemiSupCon chain
# (torch_audiomentations 0.11 + its custom Delay); docs/augmentation.md cites the lines.


def hz_to_mel(f: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale, ``2595 log10(1 + f / 700)`` (torch_audiomentations' conversion)."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_to_hz(m: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (torch.pow(10.0, torch.as_tensor(m, dtype=torch.float64) / 2595.0) - 1.0)


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def fast_pitch_ratios(sample_rate: int, max_semitones: float) -> list[Fraction]:
    """The pitch ratios torch_audiomentations' PitchShift draws from, in increasing order.

    torch_pitch_shift's ``get_fast_shifts`` rule: every ratio ``i / j`` of two
    divisors (> 1) of the sample rate, ``!= 1``, within
    ``2^(-max_semitones/12) .. 2^(max_semitones/12)``. PitchShift then picks one
    uniformly per view. At 22050 Hz and 4 semitones these are 14 ratios, the
    largest 6/5 (3.16 semitones); at 16000 Hz only 4 (5/4, 128/125 and inverses).
    """
    divs = [d for d in _divisors(int(sample_rate)) if d > 1]
    # the bounds are compared as exact fractions of the float 2^(s/12), as in get_fast_shifts
    lo = Fraction(2.0 ** (-max_semitones / 12.0))
    hi = Fraction(2.0 ** (max_semitones / 12.0))
    found = {Fraction(i, j) for i in divs for j in divs}
    return sorted(r for r in found if lo <= r <= hi and r != 1)


def _sinc_kernel(code: int, low: float, high: float, zeros: float) -> torch.Tensor:
    """One row's FIR kernel (odd length, centred) as torch_audiomentations builds it from julius.

    lowpass: julius low-pass at ``high``; highpass: identity minus the low-pass at
    ``low``; band-pass: julius' band-pass (difference of two low-passes sharing the
    length set by the lower cutoff); band-stop: identity minus that band-pass.
    Cutoffs are fractions of the sample rate. Code -1 is the identity.
    """
    if code < 0:
        return torch.ones(1)
    if code in (2, 3):
        k = julius.LowPassFilters([high if code == 3 else low], zeros=zeros).filters[0, 0]
    else:
        pair = julius.LowPassFilters([low, high], zeros=zeros).filters[:, 0]
        k = pair[1] - pair[0]
    if code in (1, 2):  # the complement: x - filtered(x)
        k = -k
        k[k.shape[0] // 2] += 1.0
    return k


def sinc_filter(
    x: torch.Tensor,
    sample_rate: int,
    kind,
    low: torch.Tensor | float,
    high: torch.Tensor | float,
    zeros: float = 8,
) -> torch.Tensor:
    """Windowed-sinc FIR filtering of each row of ``x [M, T]`` (the official filters' shape).

    The kernels are julius' Hann-windowed sincs with ``zeros`` zero crossings each
    side (so the length is ``8 / cutoff`` samples: sharp at low cutoffs), combined
    per kind as torch_audiomentations does (see :func:`_sinc_kernel`); ``kind`` as in
    :func:`fft_filter`. Like julius, each row is replicate-padded and the output
    keeps the length. All rows are filtered in one batched FFT convolution per
    group of similar kernel lengths (rows pay for their own group's length, not for
    the longest kernel in the batch). Cutoffs are clamped to 1 Hz .. Nyquist:
    julius refuses cutoffs above Nyquist, and the kernel length grows as
    ``4 sr / cutoff`` a side (the official draws never go below 1 Hz).
    """
    m, t = x.shape
    codes = _kind_codes(kind, m, "cpu")[:, 0].tolist()
    nyq = sample_rate / 2.0

    def fractions(v) -> list[float]:
        v = torch.as_tensor(v, dtype=torch.float64).detach().cpu().reshape(-1)
        v = v.expand(m) if v.numel() == 1 else v
        return (v.clamp(min=1.0, max=nyq) / sample_rate).tolist()

    kernels = [
        _sinc_kernel(c, lo, hi, zeros)
        for c, lo, hi in zip(codes, fractions(low), fractions(high), strict=True)
    ]
    halves = [k.shape[0] // 2 for k in kernels]
    groups: dict[int, list[int]] = {}
    for i, h in enumerate(halves):
        groups.setdefault((t + 2 * h).bit_length(), []).append(i)
    xf = x.float()
    out = torch.empty_like(xf)
    for rows in groups.values():
        h = max(halves[i] for i in rows)
        bank = torch.zeros(len(rows), 2 * h + 1)
        for j, i in enumerate(rows):
            bank[j, h - halves[i] : h + halves[i] + 1] = kernels[i]
        idx = torch.tensor(rows, device=x.device)
        # replicate padding by the group's longest half-length equals julius' padding by each
        # row's own half-length: the extra taps of a shorter kernel are zeros
        xp = torch.nn.functional.pad(xf[idx][:, None, :], (h, h), mode="replicate")[:, 0]
        n = good_fft_size(xp.shape[-1])
        spec = torch.fft.rfft(xp, n=n, dim=-1) * torch.fft.rfft(bank.to(x.device), n=n, dim=-1)
        # the kernels are symmetric, so convolution = julius' correlation; the first 2h
        # outputs of the circular convolution are the ones that wrap
        out[idx] = torch.fft.irfft(spec, n=n, dim=-1)[:, 2 * h : 2 * h + t]
    return out.to(x.dtype)


def official_white_noise(
    m: int, sample_rate: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The Gaussian draws :func:`official_coloured_noise` shapes: one second, ``[m, sample_rate]``."""
    gdev = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(m, int(sample_rate), generator=generator, device=gdev, dtype=torch.float32)


def official_coloured_noise(
    x: torch.Tensor,
    sample_rate: int,
    snr_db: torch.Tensor | float,
    f_decay: torch.Tensor | float,
    white: torch.Tensor,
) -> torch.Tensor:
    """torch_audiomentations' AddColoredNoise: one second of shaped noise, tiled, at ``snr_db``.

    The spectrum of one second of white noise (1 Hz bins) is multiplied by
    ``linspace(1, sqrt(sr/2), bins) ^ -f_decay``. That ramp is linear in
    frequency, so the power spectral density falls as about ``f^(-2 f_decay)``
    above ~100 Hz: twice the nominal ``1/f^f_decay`` slope (f_decay 1 gives
    brown-like noise, not pink). The DC bin is kept. The second of noise is
    RMS-normalised, repeated to the row length (the noise is periodic with a
    period of one second) and scaled to ``rms(x) / 10^(snr/20)``. ``white`` is
    ``[M, sample_rate]`` (:func:`official_white_noise`).
    """
    m, t = x.shape
    spec = torch.fft.rfft(white.to(x.device, torch.float32), dim=-1)
    ramp = torch.linspace(1.0, (sample_rate / 2.0) ** 0.5, spec.shape[-1], device=x.device)
    shape = torch.exp(-_rows(f_decay, x) * torch.log(ramp)[None, :])
    noise = torch.fft.irfft(spec * shape, dim=-1)
    noise = noise / (_rms(noise) + 1e-8)
    noise = noise.repeat(1, -(-t // noise.shape[-1]))[:, :t]
    target = _rms(x.float()) / torch.pow(10.0, _rows(snr_db, x) / 20.0)
    return (x.float() + target * noise).to(x.dtype)


#: Augmenter variants: "bench" (this harness' shapes, the default) and "official" (the
#: official SemiSupCon code's shapes, see docs/augmentation.md).
VARIANTS = ("bench", "official")


def official_ranges(sample_rate: int, severity: float) -> dict:
    """The official chain's parameter ranges at ``severity`` s (its ``severity_modifier / 2``).

    Follows the official datamodule's formulas, quirks included: the delay's
    repeats are ``int(2s) -/+ 1`` (1 or 3 at s = 1, never below 0 taps), its
    volumes and attenuations ``0.5s -/+ 0.2`` (attenuation capped at 1 first),
    the probabilities are capped (:attr:`Augmenter.P_OFFICIAL`). Raises
    ValueError where the official code would refuse the severity (a range whose
    minimum exceeds its maximum, or no fast pitch ratio in range): the chain is
    defined for s = 0 and about 0.2 <= s <= 3.98.
    """
    s, sr = float(severity), int(sample_rate)
    vol, rep, att = 0.5 * s, int(2 * s), min(1.0, 0.5 * s)
    r = {
        "gain_db": (-15.0 * s, 5.0 * s),
        "snr_db": (3.0 / s, 30.0 / s),
        "f_decay": (-2.0 * s, 2.0 * s),
        "band_centre_hz": (200.0, 4000.0),
        "band_fraction": (0.5 * s, 1.99),
        "highpass_hz": (200.0 * s, min(0.5 * sr, 2400.0 * s)),
        "lowpass_hz": (max(75.0, 150.0 / s), 7500.0 / max(1.0, s)),
        "delay_samples": (int(100.0 / s * sr / 1000), int(500.0 * sr / 1000)),
        "delay_volumes": (vol - 0.2, vol + 0.2),
        "delay_repeats": (max(0, rep - 1), max(0, rep + 1)),
        "delay_attenuations": (att - 0.2, att + 0.2),
    }
    for name, (lo, hi) in r.items():
        if lo > hi:
            raise ValueError(
                f"augmentation variant 'official' is not defined at severity {s}: its {name} "
                f"range would be {lo:g}..{hi:g}; use a severity between 0.2 and 3.98, or 0"
            )
    r["pitch_ratios"] = fast_pitch_ratios(sr, 4.0 * s)
    if not r["pitch_ratios"]:
        raise ValueError(
            f"augmentation variant 'official' has no pitch ratio within +-{4 * s:g} semitones at "
            f"{sr} Hz (the official PitchShift refuses this too); use a larger severity"
        )
    return r


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
        n_noise = int(p.noise_on.sum())
        if self.official is not None:
            white = official_white_noise(n_noise, self.sample_rate, generator)
        else:
            white = white_noise(n_noise, t, generator)
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
