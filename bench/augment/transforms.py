"""The augmentation transforms of the bench variant, batched over rows in plain torch.

Each takes a batch ``x [M, T]`` and per-row parameter tensors (shape ``[M]``)
and transforms every row it is given; :class:`bench.augment.Augmenter` picks
the rows and draws the parameters.
"""

from __future__ import annotations

import math

import torch


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
    max_r = int(reps.max().item()) if reps.numel() else 0
    first = 0 if dry_tap else 1  # offset (in delays) of the first tap
    if x.device.type == "cpu":
        # one slice-add per row and tap: the same products and sums, in the same order, as the gathers
        # below, without materialising a [M, T] index and tap per repeat (about 3x less CPU; benchmarks/bench_step_compare.py)
        shifts, coefs = d[:, 0].tolist(), att[:, 0]
        n_reps = reps[:, 0].tolist()
        for r in range(first, first + max_r):
            c = coefs.pow(r - first).tolist()
            for i in range(m):
                s = r * shifts[i]
                if n_reps[i] > r - first and s < t:
                    wet[i, s:] += c[i] * xf[i, : t - s]
        return (0.5 * (xf + vol * wet)).to(x.dtype)
    pos = torch.arange(t, device=x.device)[None, :]
    for r in range(first, first + max_r):
        idx = pos - r * d
        tap = torch.gather(xf, 1, idx.clamp(min=0)) * (idx >= 0)
        coef = torch.where(reps > r - first, att.pow(r - first), torch.zeros_like(att))
        wet = wet + coef * tap
    return (0.5 * (xf + vol * wet)).to(x.dtype)


# --------------------------------------------------------------------------- official shapes
# The transforms below reproduce the shapes of the official SemiSupCon chain
# (torch_audiomentations 0.11 + its custom Delay); docs/augmentation.md cites the lines.
