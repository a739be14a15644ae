"""Tests for bench/augment.py: each transform does what it claims, and the chain's contract."""

from __future__ import annotations

import math

import pytest
import torch

from bench.augment import (
    FILTER_KINDS,
    Augmenter,
    coloured_noise,
    delay,
    fft_filter,
    gain,
    good_fft_size,
    pitch_shift,
    polarity,
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
