"""The corruption functions: ``(waveform, sample_rate, strength, seed) -> waveform`` on mono float32.

Each is registered with its unit and levels in :mod:`bench.corruptions.registry`;
call them through :meth:`bench.corruptions.Condition.apply`, which validates the
input and the output and wraps failures. numpy, torch, pedalboard and
soundfile are imported inside the functions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def _rms(x: np.ndarray) -> float:
    import numpy as np

    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _match_rms(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` rescaled to the RMS of ``x`` (unchanged when either is silent)."""
    ry, rx = _rms(y), _rms(x)
    if ry < 1e-12 or rx < 1e-12:
        return y
    return y * (rx / ry)


def _augment(x: np.ndarray, sr: int, s: float, seed: int) -> np.ndarray:
    import torch

    from bench.augment import Augmenter

    # p_apply=1: every test clip is corrupted. With the training default (0.8) a fifth of the
    # clips would stay clean and the measured drop would be diluted by an arbitrary factor.
    gen = torch.Generator().manual_seed(int(seed))
    view = torch.from_numpy(x)[None, None, :]
    return Augmenter(sr, severity=s, p_apply=1.0)(view, gen)[0, 0].numpy()


def _time_stretch(x: np.ndarray, sr: int, s: float, seed: int) -> np.ndarray:
    import pedalboard

    # Rubber Band's faster engine (R2, the long-standing one DAWs ship): pedalboard's default
    # high_quality engine (R3) took 4-5x longer, 1-2 s per 30 s clip, which alone would put a
    # time_stretch condition over the 2x-of-clean-extraction target (benchmarks/bench_corruptions.py)
    return pedalboard.time_stretch(x, sr, stretch_factor=float(s), high_quality=False)[0]


SPLICE_SEGMENT_S = (0.05, 0.25)


def _splice_out(x: np.ndarray, sr: int, s: float, seed: int) -> np.ndarray:
    import numpy as np

    n = len(x)
    target = int(round(s * n))
    if target < 1:
        return x.copy()
    rng = np.random.default_rng(seed)
    lo = max(1, int(SPLICE_SEGMENT_S[0] * sr))
    hi = max(lo, int(SPLICE_SEGMENT_S[1] * sr))
    cut = np.zeros(n, dtype=bool)
    removed = 0
    # random segments (they may overlap) until the union covers the target; the last one is
    # shortened so that exactly `target` samples go
    while removed < target:
        length = int(rng.integers(lo, hi + 1))
        start = int(rng.integers(0, n))
        seg = cut[start : start + length]
        new = np.flatnonzero(~seg)
        if len(new) > target - removed:
            new = new[: target - removed]
        seg[new] = True
        removed += len(new)
    # joins are not cross-faded: the clicks at the splice points are part of the corruption
    return x[~cut]


def _reverb(x: np.ndarray, sr: int, s: float, seed: int) -> np.ndarray:
    import pedalboard

    # dry_level 0.5 is unity gain in pedalboard's (JUCE freeverb) scaling; the tail past the
    # clip's end is cut so the length is kept
    fx = pedalboard.Reverb(room_size=float(s), damping=0.5, wet_level=float(s) / 2, dry_level=0.5)
    return _match_rms(fx(x, sr), x)


def _chorus(x: np.ndarray, sr: int, s: float, seed: int) -> np.ndarray:
    import pedalboard

    fx = pedalboard.Chorus(rate_hz=1.0, depth=float(s), centre_delay_ms=7.0, feedback=0.0, mix=float(s) / 2)
    return _match_rms(fx(x, sr), x)


def _distortion(x: np.ndarray, sr: int, s: float, seed: int) -> np.ndarray:
    import pedalboard

    return _match_rms(pedalboard.Distortion(drive_db=float(s))(x, sr), x)


def _compression(x: np.ndarray, sr: int, s: float, seed: int) -> np.ndarray:
    import pedalboard

    rms = _rms(x)
    if rms < 1e-12:
        return x.copy()
    # threshold relative to the clip's level: an absolute dBFS threshold would leave quiet
    # recordings untouched and crush loud ones at the same "strength"
    threshold = 20 * math.log10(rms) - 10.0
    fx = pedalboard.Compressor(threshold_db=threshold, ratio=float(s), attack_ms=5.0, release_ms=50.0)
    return _match_rms(fx(x, sr), x)


def _reversal(x: np.ndarray, sr: int, s: float, seed: int) -> np.ndarray:
    return x[::-1].copy() if s else x.copy()


def _bitcrush(x: np.ndarray, sr: int, s: float, seed: int) -> np.ndarray:
    import numpy as np
    import pedalboard

    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < 1e-12:
        return x.copy()
    return pedalboard.Bitcrush(bit_depth=float(s))(x / peak, sr) * peak


#: (sample rates, lowest and highest constant bitrate in kbit/s) of MPEG-1, MPEG-2 and MPEG-2.5
#: layer III, and the bitrate range libsndfile's compression level 0..1 is mapped onto.
MP3_VERSIONS = (
    ((32000, 44100, 48000), 32, 320),
    ((16000, 22050, 24000), 8, 160),
    ((8000, 11025, 12000), 8, 64),
)


def mp3_rate(sample_rate: int, kbps: float) -> int:
    """The MP3 sample rate to encode ``sample_rate`` audio at ``kbps``: the highest legal rate
    <= sample_rate whose MPEG version allows that bitrate (the lowest legal one if none is)."""
    ok = sorted((r for rates, lo, hi in MP3_VERSIONS for r in rates if lo <= kbps <= hi), reverse=True)
    if not ok:
        raise ValueError(f"no MP3 sample rate allows {kbps:g} kbit/s (MP3 bitrates are 8..320)")
    below = [r for r in ok if r <= sample_rate]
    return below[0] if below else ok[-1]


def _mp3_level(rate: int, kbps: float) -> float:
    """libsndfile's compression level for a constant bitrate (it maps 0..1 linearly onto the
    version's range, highest first; LAME rounds to the nearest legal bitrate)."""
    lo, hi = next((lo, hi) for rates, lo, hi in MP3_VERSIONS if rate in rates)
    # 1.0 itself is refused by libsndfile 1.2.2 ("Error set compression level"); 0.999 gives the
    # lowest bitrate all the same
    return min(0.999, max(0.0, (hi - kbps) / (hi - lo)))


def _align(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` (a decode of ``x`` that may carry the codec's delay) shifted by its best lag and cut or
    zero-padded to ``len(x)``. Without the gapless tag (libsndfile omits it at low bitrates)
    decoded MP3 starts with the encoder + decoder delay, 1105 samples with LAME + mpg123."""
    import numpy as np

    n, extra = len(x), len(y) - len(x)
    lag = 0
    if extra > 0:
        # cross-correlation over the candidate lags 0..extra, on a 2^16-sample stretch from the
        # middle of the clip (a full-length FFT cost ~250 ms per 30 s clip; this ~2 ms)
        seg = min(n, 1 << 16)
        a = (n - seg) // 2
        xs, ys = x[a : a + seg], y[a : a + seg + extra]
        if _rms(xs) > 1e-9:
            size = 1 << int(math.ceil(math.log2(len(ys) + seg)))
            corr = np.fft.irfft(np.fft.rfft(ys, size) * np.conj(np.fft.rfft(xs, size)), size)
            lag = int(np.argmax(corr[: extra + 1]))
    out = y[lag : lag + n]
    if len(out) < n:
        out = np.concatenate([out, np.zeros(n - len(out), dtype=out.dtype)])
    return out


def _mp3(x: np.ndarray, sr: int, s: float, seed: int) -> np.ndarray:
    import io

    import soundfile as sf

    from bench.audio import resample

    rate = mp3_rate(sr, s)
    src = resample(x, sr, rate) if rate != sr else x
    buf = io.BytesIO()
    sf.write(buf, src, rate, format="MP3", compression_level=_mp3_level(rate, s), bitrate_mode="CONSTANT")
    buf.seek(0)
    y, got = sf.read(buf, dtype="float32")
    if got != rate:
        raise ValueError(f"decoded MP3 at {got} Hz, encoded at {rate} Hz")
    y = _align(y, src)
    return resample(y, rate, sr) if rate != sr else y
