"""Tests for bench/augment.py: each transform does what it claims, and the chain's contract."""

from __future__ import annotations

import dataclasses
import hashlib
import math

import pytest

from bench.errors import BenchError
import torch

from bench.augment import (
    FILTER_KINDS,
    Augmenter,
    coloured_noise,
    delay,
    fast_pitch_ratios,
    fft_filter,
    gain,
    good_fft_size,
    hz_to_mel,
    official_coloured_noise,
    official_white_noise,
    pitch_shift,
    polarity,
    sinc_filter,
)

SR = 16000
T = 16000


def sine(freq, t=T, sr=SR, amp=0.5):
    n = torch.arange(t, dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * freq * n)).float()


def peak_hz(x: torch.Tensor, sr: int = SR) -> tuple[float, float]:
    """Frequency of the largest FFT peak and the width of one FFT bin (Hz)."""
    spec = torch.fft.rfft(x.double() * torch.hann_window(x.shape[-1], dtype=torch.float64)).abs()
    return spec.argmax().item() * sr / x.shape[-1], sr / x.shape[-1]


def tone_level(x: torch.Tensor, freq: float, sr: int = SR) -> float:
    """Amplitude of the component at ``freq`` (a sine at an exact bin of the full-length FFT)."""
    spec = torch.fft.rfft(x.double())
    k = round(freq * x.shape[-1] / sr)
    return (2 * spec[..., k].abs() / x.shape[-1]).item()


# ------------------------------------------------------------------ pitch shift


@pytest.mark.parametrize("semitones", [-4.0, -2.5, 1.0, 3.0, 4.0])
def test_pitch_shift_moves_sine_by_ratio_and_keeps_length(semitones):
    x = sine(440.0)[None]
    y = pitch_shift(x, SR, torch.tensor([semitones]))
    assert y.shape == x.shape
    got, bin_hz = peak_hz(y[0])
    want = 440.0 * 2 ** (semitones / 12)
    assert abs(got - want) <= bin_hz, (got, want)
    # the energy stays in the same ballpark (no silence, no blow-up)
    assert 0.5 < y.pow(2).mean().sqrt() / x.pow(2).mean().sqrt() < 1.5


def test_pitch_shift_per_row_and_zero_is_identity():
    x = torch.stack([sine(330.0), sine(880.0), sine(500.0)])
    semis = torch.tensor([4.0, -3.0, 0.0])
    y = pitch_shift(x, SR, semis)
    for r in range(2):
        got, bin_hz = peak_hz(y[r])
        want = [330.0, 880.0][r] * 2 ** (semis[r].item() / 12)
        assert abs(got - want) <= bin_hz
    assert torch.equal(y[2], x[2])


def test_pitch_shift_22050_paper_rate():
    x = sine(1000.0, t=22050, sr=22050)[None]
    y = pitch_shift(x, 22050, torch.tensor([-4.0]))
    got, bin_hz = peak_hz(y[0], 22050)
    assert abs(got - 1000.0 * 2 ** (-4 / 12)) <= bin_hz


# ------------------------------------------------------------------ filters


def test_lowpass_and_highpass_attenuate_the_right_side():
    x = (sine(250.0) + sine(4000.0))[None].repeat(2, 1)
    lp = fft_filter(x[:1], SR, "lowpass", 0.0, 1000.0)
    hp = fft_filter(x[1:], SR, "highpass", 1000.0, 0.0)
    assert tone_level(lp[0], 250) > 0.45 and tone_level(lp[0], 4000) < 0.01
    assert tone_level(hp[0], 4000) > 0.45 and tone_level(hp[0], 250) < 0.01


def test_bandpass_and_bandstop_attenuate_the_right_side():
    x = (sine(200.0) + sine(1000.0) + sine(5000.0))[None].repeat(2, 1)
    kind = torch.tensor([FILTER_KINDS.index("bandpass"), FILTER_KINDS.index("bandstop")])
    y = fft_filter(x, SR, kind, torch.tensor([700.0, 700.0]), torch.tensor([1400.0, 1400.0]))
    bp, bs = y
    assert tone_level(bp, 1000) > 0.45
    assert tone_level(bp, 200) < 0.02 and tone_level(bp, 5000) < 0.02
    assert tone_level(bs, 1000) < 0.02
    assert tone_level(bs, 200) > 0.45 and tone_level(bs, 5000) > 0.45


def test_filter_cutoffs_are_clamped_below_nyquist_and_kind_minus_one_is_identity():
    x = torch.randn(2, 4000)
    y = fft_filter(
        x, 8000, torch.tensor([3, -1]), torch.tensor([0.0, 0.0]), torch.tensor([7500.0, 7500.0])
    )
    assert torch.isfinite(y).all()
    assert torch.allclose(y[1], x[1], atol=1e-5)
    with pytest.raises(ValueError, match="unknown filter kind"):
        fft_filter(x, 8000, "notch", 0.0, 100.0)


# ------------------------------------------------------------------ noise, gain, polarity, delay


def test_coloured_noise_lands_at_the_drawn_snr():
    g = torch.Generator().manual_seed(1)
    x = torch.stack([sine(440.0), sine(1000.0, amp=0.01), sine(60.0, amp=2.0), sine(3000.0)])
    snr = torch.tensor([3.0, 10.0, 20.0, 30.0])
    slope = torch.tensor([-2.0, 0.0, 1.0, 2.0])
    y = coloured_noise(x, snr, slope, g)
    noise = (y - x).double()
    got = 10 * torch.log10(x.double().pow(2).mean(-1) / noise.pow(2).mean(-1))
    assert torch.allclose(got, snr.double(), atol=0.5), got


def test_coloured_noise_slope_tilts_the_spectrum():
    g = torch.Generator().manual_seed(2)
    x = torch.ones(3, 32768) * 0.0 + sine(1000.0, t=32768)
    y = coloured_noise(x, torch.tensor([0.0] * 3), torch.tensor([2.0, 0.0, -2.0]), g) - x
    p = torch.fft.rfft(y.double()).abs().pow(2)
    f = p.shape[-1]
    low = p[:, f // 100 : f // 50].mean(-1)
    high = p[:, f // 2 : f].mean(-1)
    tilt = 10 * torch.log10(low / high)
    assert tilt[0] > 20 and abs(tilt[1]) < 2 and tilt[2] < -20, tilt


def test_gain_in_db_is_exact():
    x = torch.randn(3, 100, dtype=torch.float64)
    db = torch.tensor([-15.0, 0.0, 5.0])
    y = gain(x, db)
    ratio = y.abs().sum(-1) / x.abs().sum(-1)
    assert torch.allclose(20 * torch.log10(ratio), db.double(), atol=1e-5)


def test_polarity_flips_only_the_selected_rows():
    x = torch.randn(3, 50)
    y = polarity(x, torch.tensor([True, False, True]))
    assert torch.equal(y[0], -x[0]) and torch.equal(y[1], x[1]) and torch.equal(y[2], -x[2])


def test_delay_puts_the_echoes_at_the_drawn_times():
    x = torch.zeros(3, SR)
    x[:, 0] = 1.0
    d_s = torch.tensor([0.1, 0.25, 0.5])
    vol = torch.tensor([0.7, 0.3, 0.7])
    reps = torch.tensor([3, 2, 1])
    att = torch.tensor([0.3, 0.7, 0.3])
    y = delay(x, SR, d_s, vol, reps, att)
    for r in range(3):
        d = round(d_s[r].item() * SR)
        expect = torch.zeros(SR)
        expect[0] = 0.5
        for k in range(1, reps[r].item() + 1):
            if k * d < SR:
                expect[k * d] = 0.5 * vol[r] * att[r] ** (k - 1)
        assert torch.allclose(y[r], expect, atol=1e-6), r


def test_delay_cross_correlation_finds_the_delay_on_noise():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 8000, generator=g)
    y = delay(x, 8000, torch.tensor([0.137]), 0.7, 1, 0.3)
    wet = 2 * y - x  # = 0.7 * x(t - d)
    xc = torch.fft.irfft(torch.fft.rfft(wet, n=16000) * torch.fft.rfft(x, n=16000).conj(), n=16000)
    assert xc[0, :8000].argmax().item() == round(0.137 * 8000)


def _delay_by_gathers(x, sr, delay_s, volume, repeats, attenuation, dry_tap=False):
    """The delay as it was before its CPU path became slice-adds: one gather of every row per tap."""
    m, t = x.shape
    d = torch.round(delay_s.reshape(-1, 1) * sr).long()
    vol, att = volume.reshape(-1, 1), attenuation.reshape(-1, 1)
    reps = repeats.reshape(-1, 1).long()
    wet = torch.zeros_like(x)
    pos = torch.arange(t)[None, :]
    first = 0 if dry_tap else 1
    for r in range(first, first + int(reps.max())):
        idx = pos - r * d
        tap = torch.gather(x, 1, idx.clamp(min=0)) * (idx >= 0)
        wet = wet + torch.where(reps > r - first, att.pow(r - first), torch.zeros_like(att)) * tap
    return 0.5 * (x + vol * wet)


@pytest.mark.parametrize("dry_tap", [False, True])
def test_delay_slices_equal_the_gathers_bit_for_bit(dry_tap):
    g = torch.Generator().manual_seed(11)
    m, t = 24, 3000
    x = torch.randn(m, t, generator=g)
    d_s = torch.rand(m, generator=g) * 0.5  # 0 .. 4000 samples at 8 kHz: some taps fall past the end
    d_s[0] = 0.0  # a zero delay stacks the taps on the dry signal
    vol = torch.tensor([0.3, 0.7])[torch.randint(2, (m,), generator=g)]
    att = torch.tensor([0.3, 0.7])[torch.randint(2, (m,), generator=g)]
    reps = torch.randint(0, 4, (m,), generator=g)
    y = delay(x, 8000, d_s, vol, reps, att, dry_tap=dry_tap)
    assert torch.equal(y, _delay_by_gathers(x, 8000, d_s, vol, reps, att, dry_tap))


def test_chain_with_the_slice_delay_equals_the_chain_with_the_gathers(monkeypatch):
    """A fixed-seed augmentation of a demo-sized batch, new delay against old: the same views to the bit."""
    import bench.augment as aug

    views = 0.1 * torch.randn(6, 2, 4000, generator=torch.Generator().manual_seed(5))
    new = Augmenter(8000, p_apply=1.0)(views, generator=torch.Generator().manual_seed(7))

    calls = []

    def old(x, sr, d, v, r, a, dry_tap=False):
        calls.append(x.shape[0])
        return _delay_by_gathers(x, sr, d, v, r, a, dry_tap)

    monkeypatch.setattr(aug, "delay", old)
    ref = Augmenter(8000, p_apply=1.0)(views, generator=torch.Generator().manual_seed(7))
    assert calls and sum(calls) > 0  # the delay was drawn for some views
    assert torch.equal(new, ref)


def test_good_fft_size():
    assert good_fft_size(59535) >= 59535
    for n in [1, 7, 19683, 59535, 65537]:
        m = good_fft_size(n)
        assert m >= n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        assert m == 1


# ------------------------------------------------------------------ the chain


def views(b=4, n=2, t=4000, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (0.1 * torch.randn(b, n, t, generator=g)).to(dtype)


def test_severity_zero_is_identity():
    v = views()
    out = Augmenter(SR, severity=0.0, p_apply=1.0)(v, torch.Generator().manual_seed(0))
    assert torch.equal(out, v)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device_unchanged(dtype):
    v = views(dtype=dtype)
    out = Augmenter(SR, p_apply=1.0)(v, torch.Generator().manual_seed(0))
    assert out.shape == v.shape and out.dtype == v.dtype and out.device == v.device
    assert torch.isfinite(out).all()
    assert not torch.equal(out, v)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu_draws():
    v = views()
    a = Augmenter(SR, p_apply=1.0)
    cpu = a(v, torch.Generator().manual_seed(5))
    gpu = a(v.cuda(), torch.Generator().manual_seed(5))
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-3)


def test_deterministic_given_the_generator():
    v = views()
    a = Augmenter(SR, p_apply=1.0)
    o1 = a(v, torch.Generator().manual_seed(42))
    o2 = a(v, torch.Generator().manual_seed(42))
    o3 = a(v, torch.Generator().manual_seed(43))
    assert torch.equal(o1, o2)
    assert not torch.equal(o1, o3)


def test_parameters_are_drawn_per_view():
    a = Augmenter(SR, p_apply=1.0)
    p = a.draw(64, 2, torch.Generator().manual_seed(0))
    for name in ("gain_db", "snr_db", "slope", "semitones", "delay_s", "filter_low"):
        val = getattr(p, name).reshape(64, 2)
        assert (val[:, 0] != val[:, 1]).all(), name
    for name in ("gain_on", "flip_on", "noise_on", "pitch_on", "delay_on"):
        on = getattr(p, name).reshape(64, 2)
        assert (on[:, 0] != on[:, 1]).any(), name
    # the filter type is one per clip
    kind = p.filter_kind.reshape(64, 2)
    assert torch.equal(kind[:, 0], kind[:, 1])
    assert len(set(kind[:, 0].tolist())) == len(FILTER_KINDS)
    # identical input views come out different
    same = sine(440.0, t=4000)[None, None].repeat(8, 2, 1)
    out = a(same, torch.Generator().manual_seed(0))
    assert not torch.equal(out[:, 0], out[:, 1])


def test_probabilities_and_ranges_follow_the_spec():
    a = Augmenter(SR)
    m = 20000
    p = a.draw(m // 2, 2, torch.Generator().manual_seed(0))
    clip_on = p.gain_on | p.flip_on | p.noise_on | p.filter_on | p.pitch_on | p.delay_on
    assert abs(clip_on.reshape(-1, 2).any(1).float().mean() - 0.8) < 0.02
    for name, prob in [("gain_on", 0.4), ("flip_on", 0.6), ("noise_on", 0.6), ("filter_on", 0.3),
                       ("pitch_on", 0.6), ("delay_on", 0.6)]:  # fmt: skip
        rate = getattr(p, name).float().mean().item()
        assert abs(rate - 0.8 * prob) < 0.02, (name, rate)
    assert p.gain_db.min() >= -15 and p.gain_db.max() <= 5
    assert p.snr_db.min() >= 3 and p.snr_db.max() <= 30
    assert p.semitones.abs().max() <= 4
    assert p.delay_s.min() >= 0.1 and p.delay_s.max() <= 0.5
    assert {round(v, 6) for v in p.delay_volume.tolist()} == {0.3, 0.7}
    assert {round(v, 6) for v in p.delay_attenuation.tolist()} == {0.3, 0.7}
    assert set(p.delay_repeats.tolist()) == {1, 2, 3}
    band = p.filter_kind <= 1
    assert (p.filter_low[band] > 0).all() and (p.filter_high[band] > p.filter_low[band]).all()
    hp = p.filter_kind == 2
    assert p.filter_low[hp].min() >= 200 and p.filter_low[hp].max() <= 2400
    lp = p.filter_kind == 3
    assert p.filter_high[lp].min() >= 150 and p.filter_high[lp].max() <= 7500


def test_severity_scales_ranges_and_probabilities():
    half = Augmenter(SR, severity=0.5, p_apply=1.0).draw(5000, 2, torch.Generator().manual_seed(0))
    assert half.gain_db.min() >= -7.5 and half.gain_db.max() <= 2.5
    assert half.snr_db.min() >= 6 and half.snr_db.max() <= 60
    assert half.semitones.abs().max() <= 2
    assert abs(half.gain_on.float().mean() - 0.2) < 0.02
    double = Augmenter(SR, severity=2.0, p_apply=1.0).draw(
        5000, 2, torch.Generator().manual_seed(0)
    )
    assert double.flip_on.all() and double.noise_on.all()  # 0.6 x 2 capped at 1
    assert double.semitones.abs().max() > 4 and double.gain_db.min() < -15


def test_clips_not_drawn_are_unchanged():
    v = views(b=16)
    a = Augmenter(SR, p_apply=0.5)
    g = torch.Generator().manual_seed(7)
    out = a(v, g)
    p = a.draw(16, 2, torch.Generator().manual_seed(7))
    touched = (p.gain_on | p.flip_on | p.noise_on | p.filter_on | p.pitch_on | p.delay_on).reshape(
        16, 2
    )
    for c in range(16):
        for k in range(2):
            assert torch.equal(out[c, k], v[c, k]) == (not touched[c, k].item())
    assert torch.equal(Augmenter(SR, p_apply=0.0)(v, g), v)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        Augmenter(SR)(torch.zeros(2, 100))
    with pytest.raises(ValueError):
        Augmenter(SR, severity=-1)
    with pytest.raises(TypeError):
        Augmenter(SR)(torch.zeros(1, 2, 100, dtype=torch.long))


def test_chunking_does_not_change_the_result():
    v = views(b=6, t=3000)
    whole = Augmenter(SR, p_apply=1.0, max_rows=12)(v, torch.Generator().manual_seed(9))
    small = Augmenter(SR, p_apply=1.0, max_rows=1)(v, torch.Generator().manual_seed(9))
    # same draws; only float rounding of differently-batched FFTs may differ
    assert torch.allclose(small, whole, atol=1e-3, rtol=0)
    assert (small - whole).abs().mean() < 1e-5


def test_standalone_noise_and_chain_use_the_generator_only():
    v = views(b=2, t=2000)
    torch.manual_seed(0)
    a = Augmenter(SR, p_apply=1.0)(v, torch.Generator().manual_seed(1))
    torch.manual_seed(12345)  # the global RNG must not matter when a generator is given
    b = Augmenter(SR, p_apply=1.0)(v, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


# ------------------------------------------------------------------ variants: bench unchanged


def golden_views() -> torch.Tensor:
    g = torch.Generator().manual_seed(2024)
    t = torch.arange(6000, dtype=torch.float64) / 16000
    tones = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (220.0, 440.0, 990.0)])
    return tones.float()[:, None, :].repeat(1, 2, 1) + 0.02 * torch.randn(3, 2, 6000, generator=g)


def test_bench_variant_is_the_default_and_unchanged():
    """Draws and outputs recorded with the chain as it was before the variants existed."""
    a = Augmenter(16000, severity=1.0, p_apply=1.0)
    assert a.variant == "bench"
    p = a.draw(3, 2, torch.Generator().manual_seed(77))
    digest = hashlib.sha256()
    for f in dataclasses.fields(p):
        digest.update(getattr(p, f.name).contiguous().numpy().tobytes())
    assert digest.hexdigest() == "7366b353e96981f662bacc9a9ded8433705fa3dbd9d1a1ab8ba20e9d312b2ad5"
    out = a(golden_views(), torch.Generator().manual_seed(77)).reshape(6, -1).double()
    explicit = Augmenter(16000, severity=1.0, p_apply=1.0, variant="bench")
    assert torch.equal(
        explicit(golden_views(), torch.Generator().manual_seed(77)).reshape(6, -1).double(), out
    )
    want_sum = [-0.93592, -8.08045, 4e-05, -1.56836, 0.13971, 0.57239]
    want_sumsq = [1.94666, 272.65887, 0.60426, 6.26845, 5.50796, 96.55729]
    want_at = [[-0.032713, 0.023488, -0.017484, 0.003995],
               [0.022847, 0.092177, -0.33933, -0.035554],
               [0.022124, 0.004579, 0.008001, 0.004508],
               [-0.224331, 0.02259, -0.013124, -0.053578],
               [-0.003274, 0.02818, 0.024368, 0.052936],
               [0.011956, -0.146798, 0.125571, -0.162336]]  # fmt: skip
    assert torch.allclose(out.sum(1), torch.tensor(want_sum, dtype=torch.float64), atol=2e-3)
    assert torch.allclose(
        out.pow(2).sum(1), torch.tensor(want_sumsq, dtype=torch.float64), rtol=1e-4, atol=1e-3
    )
    assert torch.allclose(
        out[:, [0, 1234, 3000, 5999]], torch.tensor(want_at, dtype=torch.float64), atol=2e-5
    )


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant"):
        Augmenter(SR, variant="paper")


# ------------------------------------------------------------------ official variant: delay


def test_official_delay_with_one_repeat_leaves_no_echo():
    x = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    for vol in (0.3, 0.7):
        y = delay(x, SR, 0.1, vol, 1, 0.7, dry_tap=True)
        assert torch.allclose(y, (1 + vol) / 2 * x, atol=1e-6)  # a gain, no echo
    click = torch.zeros(1, 8000)
    click[0, 100] = 1.0
    y = delay(click, SR, 0.1, 0.7, 1, 0.7, dry_tap=True)
    assert y[0, 101:].abs().max() == 0
    # three repeats: the dry tap plus echoes at d and 2d, attenuated by att and att^2
    y = delay(click, SR, 0.1, 0.7, 3, 0.3, dry_tap=True)[0]
    d = int(0.1 * SR)
    assert y[100].item() == pytest.approx((1 + 0.7) / 2)
    assert y[100 + d].item() == pytest.approx(0.7 * 0.3 / 2)
    assert y[100 + 2 * d].item() == pytest.approx(0.7 * 0.09 / 2)
    assert (y.abs() > 0).sum() == 3
    # the bench delay echoes even with one repeat
    assert delay(click, SR, 0.1, 0.7, 1, 0.7)[0, 100 + d] == pytest.approx(0.35)


def echo_to_dry(x: torch.Tensor, y: torch.Tensor, start: int) -> torch.Tensor:
    """Per row: energy of y outside its projection on x, over the energy of that projection."""
    x, y = x[:, start:].double(), y[:, start:].double()
    c = (x * y).sum(1, keepdim=True) / (x * x).sum(1, keepdim=True)
    return (y - c * x).pow(2).sum(1) / (c * x).pow(2).sum(1)


def test_official_delay_echo_to_dry_energy():
    sr, m = 8000, 400
    off = Augmenter(sr, p_apply=1.0, variant="official").draw(m, 1, torch.Generator().manual_seed(1))
    ben = Augmenter(sr, p_apply=1.0).draw(m, 1, torch.Generator().manual_seed(1))
    assert set(off.delay_repeats.tolist()) == {1, 3}
    x = torch.randn(m, 3 * 4000 + 8000, generator=torch.Generator().manual_seed(2))
    start = 2 * 4000  # past the longest possible second echo: every row has all its taps
    y_off = delay(x, sr, off.delay_s, off.delay_volume, off.delay_repeats, off.delay_attenuation,
                  dry_tap=True)  # fmt: skip
    y_ben = delay(x, sr, ben.delay_s, ben.delay_volume, ben.delay_repeats, ben.delay_attenuation)
    r_off = echo_to_dry(x, y_off, start)
    one = off.delay_repeats == 1
    assert r_off[one].max() < 1e-9
    v, a = off.delay_volume[~one].double(), off.delay_attenuation[~one].double()
    want = v**2 * (a**2 + a**4) / (1 + v) ** 2  # two echoes against the (1 + v) dry tap
    assert torch.allclose(r_off[~one], want, rtol=0.1, atol=2e-3)
    # about 0.02 on average (0.005..0.12 with three repeats) against about 0.36 for the bench delay
    assert 0.015 < r_off.mean() < 0.032
    assert 0.30 < echo_to_dry(x, y_ben, start).mean() < 0.42


# ------------------------------------------------------------------ official variant: filters


def ks_uniform(u: torch.Tensor) -> float:
    """Kolmogorov-Smirnov statistic of samples in [0, 1] against the uniform distribution."""
    u, _ = torch.sort(u.double())
    n = u.numel()
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return max((i / n - u).max().item(), (u - (i - 1) / n).max().item())


@pytest.mark.parametrize("variant", ["official", "bench"])
def test_official_cutoffs_are_mel_uniform_and_bench_cutoffs_hz_uniform(variant):
    p = Augmenter(22050, p_apply=1.0, variant=variant).draw(
        24000, 1, torch.Generator().manual_seed(3)
    )
    band = p.filter_kind <= 1
    samples = {
        "lowpass": (p.filter_high[p.filter_kind == 3], 150.0, 7500.0),
        "highpass": (p.filter_low[p.filter_kind == 2], 200.0, 2400.0),
        # band edges are c(1 -/+ w/2) officially and c -/+ cw/2 here: the centre is their mean
        "centre": ((p.filter_low[band] + p.filter_high[band]) / 2, 200.0, 4000.0),
    }
    for name, (hz, lo, hi) in samples.items():
        n = hz.numel()
        assert n > 4000, name
        crit = 1.95 / math.sqrt(n)  # KS critical value at alpha = 0.001
        in_mel = (hz_to_mel(hz) - hz_to_mel(lo)) / (hz_to_mel(hi) - hz_to_mel(lo))
        in_hz = (hz.double() - lo) / (hi - lo)
        if variant == "official":
            assert ks_uniform(in_mel) < crit, name
            assert ks_uniform(in_hz) > 5 * crit, name
        else:
            assert ks_uniform(in_hz) < crit, name
            assert ks_uniform(in_mel) > 5 * crit, name
    lp = samples["lowpass"][0]
    median = lp.median().item()
    assert (1800 < median < 2100) if variant == "official" else (3600 < median < 4050)


def tone_gain_db(y: torch.Tensor, x: torch.Tensor, edge: int) -> float:
    """Output/input level in dB over the middle of the clip (filter edge transients left out)."""
    ym, xm = y[..., edge:-edge].double(), x[..., edge:-edge].double()
    return 20 * math.log10(ym.pow(2).mean().sqrt().item() / xm.pow(2).mean().sqrt().item())


def test_official_lowpass_attenuates_by_the_sinc_stop_band():
    sr, fc, t = 22050, 1000.0, 22050
    edge = int(8 / (fc / sr) / 2) + 1  # julius' half-length at this cutoff
    lp = torch.tensor([3])

    def through(freq, filt):
        x = sine(freq, t=t, sr=sr)[None]
        return tone_gain_db(filt(x, sr, lp, 0.0, fc), x, edge)

    # Hann-windowed sinc, 8 zero crossings: -6 dB at the cutoff, about -44 dB at 1.25 fc and
    # -80 dB at 2 fc; flat (+-0.06 dB) below 0.8 fc
    assert abs(through(500.0, sinc_filter)) < 0.1
    assert through(1250.0, sinc_filter) < -40
    assert through(2000.0, sinc_filter) < -75
    assert through(4000.0, sinc_filter) < -75
    # the bench Butterworth (order 4, 24 dB/octave) lets 2 fc through at about -24 dB
    assert -27 < through(2000.0, fft_filter) < -21


def test_sinc_filter_matches_julius_row_by_row():
    import julius

    sr = 22050
    x = torch.randn(5, 9000, generator=torch.Generator().manual_seed(4))
    kind = torch.tensor([0, 1, 2, 3, -1])
    low = torch.tensor([2.0, 300.0, 500.0, 0.0, 0.0])  # 2 Hz: a kernel longer than the clip
    high = torch.tensor([900.0, 4000.0, 0.0, 3000.0, 0.0])
    y = sinc_filter(x, sr, kind, low, high)
    lo, hi = (low / sr).tolist(), (high / sr).tolist()
    want = [
        julius.bandpass_filter(x[0], lo[0], hi[0]),
        x[1] - julius.bandpass_filter(x[1], lo[1], hi[1]),
        x[2] - julius.lowpass_filter(x[2], lo[2]),
        julius.lowpass_filter(x[3], hi[3]),
        x[4],
    ]
    for i, w in enumerate(want):
        assert torch.allclose(y[i], w, atol=2e-5), i


# ------------------------------------------------------------------ official variant: pitch, noise


def test_official_pitch_ratios_are_the_fast_shifts():
    ratios = fast_pitch_ratios(22050, 4.0)
    assert [str(r) for r in ratios] == [
        "5/6", "21/25", "6/7", "9/10", "45/49", "14/15", "49/50",
        "50/49", "15/14", "49/45", "10/9", "7/6", "25/21", "6/5",
    ]  # fmt: skip
    assert max(abs(12 * math.log2(r)) for r in ratios) == pytest.approx(3.156, abs=1e-3)
    assert [str(r) for r in fast_pitch_ratios(16000, 4.0)] == ["4/5", "125/128", "128/125", "5/4"]
    p = Augmenter(22050, p_apply=1.0, variant="official").draw(
        2000, 1, torch.Generator().manual_seed(5)
    )
    drawn = torch.pow(2.0, p.semitones.double() / 12)
    allowed = torch.tensor([float(r) for r in ratios], dtype=torch.float64)
    nearest = (drawn[:, None] - allowed[None, :]).abs().min(1)
    assert nearest.values.max() < 1e-6
    assert set(nearest.indices.tolist()) == set(range(14))  # every ratio is drawn
    # the shifter moves a tone by the drawn ratio
    x = sine(440.0, t=22050, sr=22050)[None]
    y = pitch_shift(x, 22050, torch.tensor([12 * math.log2(6 / 5)]))
    got, bin_hz = peak_hz(y[0], 22050)
    assert abs(got - 440.0 * 6 / 5) <= bin_hz


def log_psd_slope(noise: torch.Tensor, sr: int, lo: float = 500.0, hi: float = 8000.0) -> float:
    """Least-squares slope of log PSD against log frequency over lo..hi Hz (rows averaged)."""
    n = noise.shape[-1]
    win = torch.hann_window(n, dtype=torch.float64)
    psd = (torch.fft.rfft(noise.double() * win).abs() ** 2).mean(0)
    f = torch.fft.rfftfreq(n, 1 / sr).double()
    sel = (f >= lo) & (f <= hi)
    a = torch.stack([f[sel].log(), torch.ones_like(f[sel])], 1)
    return torch.linalg.lstsq(a, psd[sel].log()[:, None]).solution[0, 0].item()


@pytest.mark.parametrize("f_decay", [-1.0, 1.0, 2.0])
def test_official_noise_psd_falls_twice_as_fast_as_its_nominal_decay(f_decay):
    sr, t = 22050, 2 * 22050 + 5000
    g = torch.Generator().manual_seed(6)
    x = torch.full((16, t), 1e-3)
    y = official_coloured_noise(x, sr, 0.0, f_decay, official_white_noise(16, sr, g)) - x
    # the official ramp is linear in f, so amplitude ~ f^-f_decay and power ~ f^(-2 f_decay)
    # (a little less steep near 500 Hz, where the ramp's offset of 1 still counts)
    assert -2.05 < log_psd_slope(y, sr) / f_decay < -1.8
    bench = coloured_noise(x, 0.0, f_decay, g) - x
    assert abs(log_psd_slope(bench, sr) / f_decay + 1) < 0.05  # power ~ f^-slope, as named
    # one second of noise, repeated; SNR exact to the noise's RMS over the row
    assert torch.equal(y[:, :sr], y[:, sr : 2 * sr])
    snr = 20 * torch.log10(x.pow(2).mean(1).sqrt() / y.pow(2).mean(1).sqrt())
    assert snr.abs().max() < 0.3


# ------------------------------------------------------------------ official variant: the chain


def test_official_probabilities_ranges_and_severity():
    a = Augmenter(22050, variant="official")
    p = a.draw(10000, 2, torch.Generator().manual_seed(7))
    for name, prob in [("gain_on", 0.4), ("flip_on", 0.6), ("noise_on", 0.6), ("filter_on", 0.3),
                       ("pitch_on", 0.6), ("delay_on", 0.6)]:  # fmt: skip
        assert abs(getattr(p, name).float().mean().item() - 0.8 * prob) < 0.02, name
    d = torch.round(p.delay_s.double() * 22050)
    assert d.min() >= 2205 and d.max() <= 11025
    assert {round(v, 6) for v in p.delay_volume.tolist()} == {0.3, 0.7}
    assert {round(v, 6) for v in p.delay_attenuation.tolist()} == {0.3, 0.7}
    assert p.slope.min() >= -2 and p.slope.max() <= 2
    band = p.filter_kind <= 1
    frac = (p.filter_high - p.filter_low)[band] / ((p.filter_high + p.filter_low)[band] / 2)
    assert frac.min() >= 0.5 - 1e-4 and frac.max() <= 1.99 + 1e-4
    # severity 2: capped probabilities (0.7, 0.8, 0.8, 0.6, 0.75, 0.6), repeats 3|5
    p2 = Augmenter(22050, severity=2.0, p_apply=1.0, variant="official").draw(
        10000, 1, torch.Generator().manual_seed(8)
    )
    for name, prob in [("gain_on", 0.7), ("flip_on", 0.8), ("noise_on", 0.8), ("filter_on", 0.6),
                       ("pitch_on", 0.75), ("delay_on", 0.6)]:  # fmt: skip
        assert abs(getattr(p2, name).float().mean().item() - prob) < 0.02, name
    assert set(p2.delay_repeats.tolist()) == {3, 5}
    assert p2.slope.min() < -3.5 and p2.slope.max() > 3.5
    # the official chain is not defined at low severities (its delay range would be empty)
    with pytest.raises(ValueError, match="severity 0.1"):
        Augmenter(22050, severity=0.1, variant="official")
    v = views()
    assert torch.equal(Augmenter(SR, severity=0.0, variant="official")(v), v)


def test_official_chain_contract():
    v = views(b=6, t=4000)
    a = Augmenter(SR, p_apply=0.7, variant="official")
    out = a(v, torch.Generator().manual_seed(9))
    assert out.shape == v.shape and torch.isfinite(out).all()
    assert torch.equal(out, a(v, torch.Generator().manual_seed(9)))
    p = a.draw(6, 2, torch.Generator().manual_seed(9))
    touched = p.gain_on | p.flip_on | p.noise_on | p.filter_on | p.pitch_on | p.delay_on
    for r, hit in enumerate(touched.tolist()):
        assert torch.equal(out.reshape(12, -1)[r], v.reshape(12, -1)[r]) == (not hit)
    one = Augmenter(SR, p_apply=0.7, variant="official", max_rows=1)
    assert torch.allclose(one(v, torch.Generator().manual_seed(9)), out, atol=1e-4)
    assert "official" in repr(a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_official_cuda_matches_cpu():
    v = views()
    a = Augmenter(SR, p_apply=1.0, variant="official")
    cpu = a(v, torch.Generator().manual_seed(5))
    gpu = a(v.cuda(), torch.Generator().manual_seed(5))
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-3)


@pytest.mark.parametrize("only", ["noise", "filter", "pitch", "delay"])
def test_official_chain_applies_the_official_transform(only):
    """With one transform forced on, the chain equals that official transform with its draws."""
    sr = 22050
    v = views(b=8, n=1, t=6000)
    a = Augmenter(sr, p_apply=1.0, variant="official")
    a.P_OFFICIAL = {k: ((1.0, 1.0) if k == only else (0.0, 0.0)) for k in Augmenter.P_OFFICIAL}
    g = torch.Generator().manual_seed(10)
    out = a(v, g)[:, 0]
    g = torch.Generator().manual_seed(10)
    p = a.draw(8, 1, g)
    x = v[:, 0]
    if only == "noise":
        want = official_coloured_noise(x, sr, p.snr_db, p.slope, official_white_noise(8, sr, g))
    elif only == "filter":
        want = sinc_filter(x, sr, p.filter_kind, p.filter_low, p.filter_high)
    elif only == "pitch":
        want = pitch_shift(x, sr, p.semitones)
    else:
        want = delay(x, sr, p.delay_s, p.delay_volume, p.delay_repeats, p.delay_attenuation,
                     dry_tap=True)  # fmt: skip
    assert torch.allclose(out, want, atol=1e-5)


def test_recipe_knows_the_augmenter_variants():
    from bench.augment import VARIANTS
    from bench.encoder import Recipe

    assert Recipe.AUGMENT_VARIANTS == VARIANTS
    assert Recipe(steps=1, batch_size=1, lr=1.0).replace(augment_variant="official").augment_variant == "official"
    with pytest.raises(BenchError, match="'bench' or 'official'"):
        Recipe(steps=1, batch_size=1, lr=1.0, augment_variant="offical")
