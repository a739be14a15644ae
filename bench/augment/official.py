"""The shapes of the official SemiSupCon augmentation (``Augmenter(..., variant="official")``).

Mel-uniform cutoffs with julius windowed-sinc filters, torch_audiomentations'
coloured noise, the sample rate's "fast" pitch ratios and the official
severity formulas; docs/augmentation.md cites the official file and line of
each.
"""

from __future__ import annotations

import math
from fractions import Fraction

import julius
import torch

from bench.augment.transforms import _kind_codes, _rms, _rows, good_fft_size


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
