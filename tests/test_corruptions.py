"""The corruption library: each effect does something measurable, is deterministic, and fails cleanly."""

from __future__ import annotations

import numpy as np
import pytest

from bench import corruptions as C
from bench.errors import BenchError, UnknownNameError

SR = 16000


def music_like(seconds: float = 1.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Harmonic notes with a decaying envelope (dynamics for the compressor) plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    for i, f0 in enumerate((220.0, 330.0, 262.0, 392.0)):
        start = i * seconds / 4
        env = np.where(t >= start, np.exp(-6 * (t - start)), 0.0)
        for h in range(1, 6):
            x += env * np.sin(2 * np.pi * f0 * h * t) / h
    x = 0.3 * x / np.abs(x).max() + 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def rel_diff(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - x) ** 2)) / np.sqrt(np.mean(x**2)))


CORRUPTING = [c for c in C.suite("default") if not c.is_identity]


def test_registry_has_the_methods_corruptions():
    assert list(C.corruptions()) == [
        "augment", "time_stretch", "splice_out", "reverb", "chorus", "distortion", "compression",
        "reversal", "bitcrush", "mp3",
    ]
    assert [c.strength for c in C.parse_conditions("augment")] == [0, 0.5, 1, 1.5, 2]
    ts = [c.strength for c in C.parse_conditions("time_stretch")]
    assert min(ts) == 0.7 and max(ts) == 1.3


@pytest.mark.parametrize("cond", CORRUPTING, ids=lambda c: c.id)
def test_every_condition_changes_the_signal_and_stays_sane(cond):
    x = music_like()
    y = cond.apply(x, SR, seed=3)
    assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()
    if cond.corruption.changes_length:
        assert len(y) != len(x)
    else:
        assert len(y) == len(x)
        assert rel_diff(y, x) > 1e-3, f"{cond.id} left the signal (almost) unchanged"
    assert np.array_equal(y, cond.apply(x, SR, seed=3)), f"{cond.id} is not deterministic for a seed"
    assert np.array_equal(x, music_like()), f"{cond.id} modified its input in place"


@pytest.mark.parametrize("name", [n for n, c in C.corruptions().items() if c.random])
def test_random_corruptions_depend_on_the_seed(name):
    cond = C.parse_conditions(name)[-1]
    x = music_like()
    a, b = cond.apply(x, SR, seed=1), cond.apply(x, SR, seed=2)
    assert len(a) != len(b) or not np.array_equal(a, b)


@pytest.mark.parametrize("name", [n for n, c in C.corruptions().items() if c.identity is not None])
def test_the_effect_itself_is_the_identity_at_its_identity_strength(name):
    c = C.corruptions()[name]
    x = music_like()
    # the condition short-circuits the identity; the effect should agree with that shortcut
    assert np.array_equal(C.Condition(c, c.identity).apply(x, SR), x)
    if name == "time_stretch":  # a phase vocoder at factor 1 still resynthesises; not bit-exact
        return
    y = c.fn(x, SR, float(c.identity), 0)
    assert len(y) == len(x) and rel_diff(y, x) < 1e-4


def test_distortion_and_bitcrush_are_near_identity_at_their_mild_end():
    x = music_like() * 0.03  # tanh is linear for small signals
    assert rel_diff(C.get("distortion").fn(x, SR, 0.0, 0), x) < 1e-3
    assert rel_diff(C.get("bitcrush").fn(x, SR, 24.0, 0), x) < 1e-4
    assert rel_diff(C.get("bitcrush").fn(x, SR, 4.0, 0), x) > 10 * rel_diff(C.get("bitcrush").fn(x, SR, 8.0, 0), x)


def test_reversal_reverses():
    x = music_like()
    assert np.array_equal(C.parse_condition("reversal").apply(x, SR), x[::-1])


def test_time_stretch_changes_length_by_the_factor():
    x = music_like()
    for f in (0.7, 1.3):
        y = C.parse_condition(f"time_stretch@{f}").apply(x, SR)
        assert abs(len(y) - len(x) / f) <= 0.01 * len(x)


def test_splice_out_removes_the_fraction_and_keeps_the_order():
    ramp = np.arange(SR, dtype=np.float32) / SR  # strictly increasing: order and provenance checkable
    y = C.parse_condition("splice_out@0.3").apply(ramp, SR, seed=5)
    assert len(y) == SR - round(0.3 * SR)
    assert np.all(np.diff(y) > 0) and np.isin(y, ramp).all()
    # in segments, not scattered samples: few jumps
    jumps = int(np.sum(np.diff(y) > 1.5 / SR))
    assert 1 <= jumps <= 0.3 / C.SPLICE_SEGMENT_S[0] + 1


def test_low_bitrate_mp3_removes_high_frequencies():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(2 * SR)).astype(np.float32)

    def high(y):
        spec = np.abs(np.fft.rfft(y)) ** 2
        f = np.fft.rfftfreq(len(y), 1 / SR)
        return spec[f > 5000].sum()

    low = C.parse_condition("mp3@16").apply(x, SR)
    hi = C.parse_condition("mp3@64").apply(x, SR)
    assert len(low) == len(x)
    assert high(low) < 0.2 * high(x)
    assert high(hi) > 2 * high(low)
    # decoded and aligned: the 64 kbit/s copy still correlates with the input
    assert np.corrcoef(hi, x)[0, 1] > 0.8


def test_mp3_picks_a_legal_rate_for_the_bitrate():
    assert C.mp3_rate(16000, 32) == 16000
    assert C.mp3_rate(22050, 16) == 22050
    assert C.mp3_rate(44100, 16) == 24000  # MPEG-1 has no 16 kbit/s: encoded as MPEG-2
    assert C.mp3_rate(44100, 128) == 44100
    x = music_like(0.5, sr=44100)
    y = C.parse_condition("mp3@16").apply(x, 44100)
    assert len(y) == len(x) and np.isfinite(y).all()


def test_augment_is_the_training_chain_on_every_clip():
    import torch

    from bench.augment import Augmenter

    x = music_like()
    y = C.parse_condition("augment@1").apply(x, SR, seed=7)
    ref = Augmenter(SR, severity=1, p_apply=1.0)(torch.from_numpy(x)[None, None], torch.Generator().manual_seed(7))
    assert np.array_equal(y, ref[0, 0].numpy())


def test_failures_raise_corruption_error():
    boom = C.Corruption("boom", lambda x, sr, s, seed: 1 / 0, "fails", "unit", (1,), (1,), 0, 1)
    with pytest.raises(C.CorruptionError, match="boom@1.*ZeroDivisionError"):
        C.Condition(boom, 1).apply(music_like(), SR)
    nan = C.Corruption("nan", lambda x, sr, s, seed: x * np.nan, "nan", "unit", (1,), (1,), 0, 1)
    with pytest.raises(C.CorruptionError, match="NaN"):
        C.Condition(nan, 1).apply(music_like(), SR)
    with pytest.raises(C.CorruptionError, match="empty"):
        C.parse_condition("reverb@0.5").apply(np.zeros(0, np.float32), SR)
    err = C.CorruptionError("reverb@0.5", "why")
    assert not isinstance(err, BenchError) and err.condition == "reverb@0.5" and err.reason == "why"
    with pytest.raises(ValueError, match="mono"):
        C.parse_condition("reverb@0.5").apply(np.zeros((2, 100), np.float32), SR)


def test_parse_conditions_syntax():
    ids = [c.id for c in C.parse_conditions("augment@0.5,1; reverb@0.3 ;mp3;clean;Time-Stretch@0.8;reverb@0.30")]
    assert ids == ["augment@0.5", "augment@1", "reverb@0.3", "mp3@64", "mp3@32", "mp3@16", "time_stretch@0.8"]
    assert [c.id for c in C.parse_conditions("reversal")] == ["reversal@1"]
    assert len(C.parse_conditions("default")) == len(C.parse_conditions("Default;quick")) == 31
    assert 0 < len(C.parse_conditions("quick")) < 31
    for cond in C.suite("default"):
        assert C.parse_condition(cond.id) == cond  # ids round-trip


@pytest.mark.parametrize(
    "spec, error, pattern",
    [
        ("reverbb", C.UnknownCorruptionError, r"Did you mean 'reverb'.*Available corruptions: augment, "),
        ("bit-crsh@4", C.UnknownCorruptionError, r"Did you mean 'bitcrush'"),
        ("zzz", C.UnknownCorruptionError, r"unknown corruption 'zzz'\. Available corruptions: .*mp3\. Suites: default, quick\."),
        ("reverb@2", C.ConditionSpecError, r"reverb: strength 2 is out of range.*room size, 0\.\.1"),
        ("mp3@loud", C.ConditionSpecError, r"'loud' is not a number"),
        ("mp3@nan", C.ConditionSpecError, r"out of range"),
        ("mp3@32,", C.ConditionSpecError, r"empty strength"),
        (" ; ", C.ConditionSpecError, r"no corruption given"),
        ("clean", C.ConditionSpecError, r"no corruption given"),
        ("reversal@0.5", C.ConditionSpecError, r"not one of 0, 1"),
    ],
)
def test_parse_errors_are_clear(spec, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        C.parse_conditions(spec)
    assert isinstance(info.value, BenchError) and info.value.exit_code == 2
    if error is C.UnknownCorruptionError:
        assert isinstance(info.value, UnknownNameError)


def test_parse_condition_needs_a_strength_for_multi_level_corruptions():
    with pytest.raises(C.ConditionSpecError, match=r"write reverb@<room size>"):
        C.parse_condition("reverb")


def test_ids_tokens_and_seeds_are_stable():
    cond = C.parse_condition("reverb@0.50")
    assert cond.id == str(cond) == "reverb@0.5"
    assert C.parse_condition("mp3@32.0").id == "mp3@32"
    assert "seed" not in cond.cache_token(1) and cond.cache_token(1) == cond.cache_token(2)
    aug = C.parse_condition("augment@1")
    assert aug.cache_token(1) != aug.cache_token(2) and aug.cache_token(1).startswith("augment@1|v1|torch=")
    assert C.track_seed(0, "a") == C.track_seed(0, "a") != C.track_seed(0, "b") != C.track_seed(1, "b")
    assert C.track_seed(0, "a") == 4174393671465045295  # fixed across processes and versions
    assert C.parse_condition("augment@0").is_identity and not C.parse_condition("distortion@10").is_identity


def test_harshness_orders_mild_to_harsh():
    def order(name):
        c = C.get(name)
        return sorted(c.strengths, key=c.harshness)

    assert order("mp3") == [64, 32, 16]
    assert order("bitcrush") == [8, 6, 4]
    assert order("time_stretch")[-2:] in ([0.7, 1.3], [1.3, 0.7])
    assert order("reverb") == [0.25, 0.5, 1]


def test_parsing_imports_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys; from bench import corruptions as C; C.parse_conditions('default');"
            "print(','.join(m for m in ('numpy', 'torch', 'pedalboard', 'soundfile') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
