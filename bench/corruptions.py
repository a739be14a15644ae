"""Named audio corruptions for the robustness experiment (method.md, "Robustness experiment").

A corruption is a function ``(waveform, sample_rate, strength, seed) -> waveform``
on a mono float32 numpy array. The output has the same sample rate; its length
is the input's except for ``time_stretch`` (about length / factor) and
``splice_out`` (exactly length - round(fraction x length)): they change what a
corruption is, so the track simply yields more or fewer windows. The same seed
gives the same output; the effects that draw nothing random ignore it.

Use: corrupt the decoded track at the encoder's sample rate, before it is cut
into windows, with a seed per track::

    cond = parse_conditions("reverb@0.5")[0]
    y = cond.apply(x, sample_rate, seed=track_seed(run_seed, item.track_id))

A *condition* is a corruption at one strength; its id (``reverb@0.5``) names
it in records and cache keys, and :data:`CLEAN` names the uncorrupted audio.
Strengths are in each corruption's own unit (a bit depth, a bitrate, a speed
factor), so an id reads as what was done:

=============  ====================================================  ===============  ========
name           strength (unit)                                       default levels   identity
=============  ====================================================  ===============  ========
augment        severity of the training augmentation chain           0, 0.5, 1,       0
               (bench.augment.Augmenter, applied to every clip)      1.5, 2
time_stretch   speed factor, pitch kept (pedalboard.time_stretch,    0.7, 0.85,       1
               Rubber Band R2); > 1 faster and shorter               1.15, 1.3
splice_out     fraction of the duration cut out, in 50-250 ms       0.1, 0.2, 0.3    0
               segments, the rest joined (shorter output)
reverb         room size; wet level = strength / 2 (pedalboard)      0.25, 0.5, 1     0
chorus         depth; mix = strength / 2 (pedalboard)                0.25, 0.5, 1     0
distortion     drive in dB (pedalboard tanh distortion)              10, 20, 30       none
compression    ratio, threshold 10 dB under the clip's RMS           2, 5, 20         1
               (pedalboard compressor)
reversal       1 = the clip played backwards                         1                0
bitcrush       bit depth relative to the clip's peak (pedalboard)    8, 6, 4          none
mp3            bitrate in kbit/s, constant bitrate MP3 (LAME via     64, 32, 16       none
               soundfile/libsndfile), decoded back
=============  ====================================================  ===============  ========

Level: reverb, chorus, distortion and compression rescale their output to the
input's RMS, so that they measure a change of timbre or dynamics and not of
loudness (loudness is the augment chain's gain). Bitcrush quantises relative
to the clip's peak, so a quiet clip is crushed as hard as a loud one
(pedalboard's step is 2^-bits of the peak).

:func:`parse_conditions` reads a user's list (``"augment@0.5,1;reverb;mp3@32"``);
:data:`SUITES` holds the default and a quick suite. A corruption that fails
on one clip raises :class:`CorruptionError`, which the caller counts and skips.

numpy, torch, pedalboard and soundfile are imported inside the functions:
parsing a condition list costs nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from bench.errors import BenchError, UnknownNameError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CLEAN",
    "SUITES",
    "Condition",
    "ConditionSpecError",
    "Corruption",
    "CorruptionError",
    "UnknownCorruptionError",
    "corruptions",
    "get",
    "parse_condition",
    "parse_conditions",
    "suite",
    "track_seed",
]

#: The condition name of the uncorrupted audio in records.
CLEAN = "clean"


class CorruptionError(Exception):
    """A corruption failed on one clip (or gave a non-finite or empty result).

    Not a BenchError on purpose: like :class:`bench.audio.AudioError`, the
    extraction stage catches it, counts the clip as skipped and goes on.
    """

    def __init__(self, condition: str, reason: str) -> None:
        super().__init__(f"corruption {condition} failed: {reason}")
        self.condition = condition
        self.reason = reason


class UnknownCorruptionError(UnknownNameError):
    """A corruption name that is not in the registry."""


class ConditionSpecError(BenchError):
    """A condition list that does not parse, or a strength out of range."""


# --------------------------------------------------------------------------- helpers


def _rms(x: np.ndarray) -> float:
    import numpy as np

    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _match_rms(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` rescaled to the RMS of ``x`` (unchanged when either is silent)."""
    ry, rx = _rms(y), _rms(x)
    if ry < 1e-12 or rx < 1e-12:
        return y
    return y * (rx / ry)


def _fmt(strength: float) -> str:
    """A strength as it appears in a condition id: shortest round-trip form, no trailing zeros."""
    s = float(strength)
    return str(int(s)) if s.is_integer() and abs(s) < 1e15 else repr(s)


# --------------------------------------------------------------------------- the corruptions


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


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Corruption:
    """One named corruption: its function and what its strength means.

    ``fn(waveform, sample_rate, strength, seed)`` does the work; call it through
    :meth:`Condition.apply`, which validates and wraps failures.
    """

    name: str
    fn: Callable[..., "np.ndarray"]
    description: str
    unit: str
    strengths: tuple[float, ...]  # the default levels, mildest first
    quick: tuple[float, ...]  # the levels of the quick suite
    lo: float  # valid strength range, inclusive
    hi: float
    identity: float | None = None  # the strength that leaves the audio unchanged (None: none does)
    harsher: str = "up"  # which way the strength gets harsher: "up", "down" or "away" (from identity)
    choices: tuple[float, ...] | None = None  # the only valid strengths, where the strength is discrete
    random: bool = False  # draws random numbers (the seed matters)
    changes_length: bool = False
    libraries: tuple[str, ...] = ()  # distributions whose version can change the output
    version: int = 1  # bump when the algorithm changes: cached embeddings are keyed by it

    def harshness(self, strength: float) -> float:
        """A number that grows with how harsh ``strength`` is (for sorting mild -> harsh)."""
        s = float(strength)
        if self.harsher == "down":
            return -s
        if self.harsher == "away":
            ref = self.identity if self.identity is not None else 0.0
            return abs(math.log(s / ref)) if s > 0 and ref > 0 else abs(s - ref)
        return s

    def check(self, strength: float) -> float:
        """``strength`` as a float, or ConditionSpecError saying the valid range."""
        try:
            s = float(strength)
        except (TypeError, ValueError):
            raise ConditionSpecError(
                f"corruption {self.name}: strength {strength!r} is not a number ({self.unit}, "
                f"{_fmt(self.lo)}..{_fmt(self.hi)})"
            ) from None
        if not math.isfinite(s) or not self.lo <= s <= self.hi:
            raise ConditionSpecError(
                f"corruption {self.name}: strength {_fmt(s) if math.isfinite(s) else s} is out of range; "
                f"its strength is the {self.unit}, {_fmt(self.lo)}..{_fmt(self.hi)} "
                f"(defaults {', '.join(map(_fmt, self.strengths))})"
            )
        if self.choices is not None and s not in self.choices:
            raise ConditionSpecError(
                f"corruption {self.name}: strength {_fmt(s)} is not one of {', '.join(map(_fmt, self.choices))} "
                f"({self.unit})"
            )
        return s


_REGISTRY: dict[str, Corruption] = {}


def _register(c: Corruption) -> None:
    if c.name in _REGISTRY:
        raise ValueError(f"corruption {c.name!r} registered twice")
    for s in (*c.strengths, *c.quick):
        c.check(s)
    _REGISTRY[c.name] = c


_register(Corruption(
    "augment", _augment, "the SemiSupCon augmentation chain at this severity, applied to every clip",
    "severity", (0, 0.5, 1, 1.5, 2), (1,), 0, 4, identity=0, random=True, libraries=("torch",)))
_register(Corruption(
    "time_stretch", _time_stretch, "tempo change with pitch kept (pedalboard.time_stretch); length / factor",
    "speed factor", (0.7, 0.85, 1.15, 1.3), (0.7, 1.3), 0.25, 4, identity=1, harsher="away",
    changes_length=True, libraries=("pedalboard",)))
_register(Corruption(
    "splice_out", _splice_out, "random 50-250 ms segments cut out and the rest joined; shorter output",
    "fraction of the duration removed", (0.1, 0.2, 0.3), (0.2,), 0, 0.9, identity=0, random=True,
    changes_length=True))
_register(Corruption(
    "reverb", _reverb, "pedalboard Reverb, room size = strength, wet level = strength / 2; RMS kept",
    "room size", (0.25, 0.5, 1), (0.5,), 0, 1, identity=0, libraries=("pedalboard",)))
_register(Corruption(
    "chorus", _chorus, "pedalboard Chorus (1 Hz, 7 ms), depth = strength, mix = strength / 2; RMS kept",
    "depth", (0.25, 0.5, 1), (0.5,), 0, 1, identity=0, libraries=("pedalboard",)))
_register(Corruption(
    "distortion", _distortion, "pedalboard Distortion (tanh) with this drive; RMS kept",
    "drive in dB", (10, 20, 30), (20,), 0, 60, libraries=("pedalboard",)))
_register(Corruption(
    "compression", _compression,
    "pedalboard Compressor, threshold 10 dB under the clip's RMS, attack 5 ms, release 50 ms; RMS kept",
    "ratio", (2, 5, 20), (5,), 1, 100, identity=1, libraries=("pedalboard",)))
_register(Corruption(
    "reversal", _reversal, "the clip played backwards", "1 = reversed", (1,), (1,), 0, 1,
    identity=0, choices=(0, 1)))
_register(Corruption(
    "bitcrush", _bitcrush, "pedalboard Bitcrush at this bit depth, relative to the clip's peak",
    "bit depth", (8, 6, 4), (6,), 1, 32, harsher="down", libraries=("pedalboard",)))
_register(Corruption(
    "mp3", _mp3, "constant-bitrate MP3 (LAME through soundfile) and back; low bitrates cut the highs",
    "bitrate in kbit/s", (64, 32, 16), (32,), 8, 320, harsher="down", libraries=("soundfile", "soxr")))


def corruptions() -> dict[str, Corruption]:
    """Every registered corruption by name, in the order of the default suite."""
    return dict(_REGISTRY)


def _key(name: str) -> str:
    # "time-stretch", "Time_Stretch" and "timestretch" all name time_stretch
    return name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")


def get(name: str) -> Corruption:
    """The corruption called ``name`` (case, ``-`` and ``_`` ignored), or UnknownCorruptionError."""
    by_key = {_key(n): c for n, c in _REGISTRY.items()}
    if _key(name) in by_key:
        return by_key[_key(name)]
    close = difflib.get_close_matches(_key(name), list(by_key), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(by_key[c].name) for c in close)}?" if close else ""
    raise UnknownCorruptionError(
        f"unknown corruption {name.strip()!r}.{hint} Available corruptions: {', '.join(_REGISTRY)}."
    )


# --------------------------------------------------------------------------- conditions


def track_seed(seed: int, track_id: str) -> int:
    """A per-track seed from the run's corruption seed and a track id (stable across processes:
    Python's ``hash`` of a string is not)."""
    digest = hashlib.sha256(f"{int(seed)}\x00{track_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class Condition:
    """A corruption at one strength: what one corrupted test set is made with."""

    corruption: Corruption
    strength: float

    @property
    def name(self) -> str:
        return self.corruption.name

    @property
    def id(self) -> str:
        """The stable id used in records and cache keys, e.g. ``reverb@0.5``."""
        return f"{self.corruption.name}@{_fmt(self.strength)}"

    def __str__(self) -> str:
        return self.id

    @property
    def is_identity(self) -> bool:
        """True where this strength leaves the audio unchanged (``augment@0``): clean embeddings serve."""
        return self.corruption.identity is not None and self.strength == self.corruption.identity

    def cache_token(self, seed: int) -> str:
        """What the corrupted embeddings depend on, for a cache key: the id, the algorithm's version,
        the versions of the libraries that compute it, and the seed where the corruption is random."""
        import importlib.metadata as md

        libs = []
        for dist in self.corruption.libraries:
            try:
                libs.append(f"{dist}={md.version(dist)}")
            except md.PackageNotFoundError:
                libs.append(f"{dist}=?")
        parts = [self.id, f"v{self.corruption.version}", *libs]
        if self.corruption.random:
            parts.append(f"seed={int(seed)}")
        return "|".join(parts)

    def apply(self, waveform: np.ndarray, sample_rate: int, seed: int = 0) -> np.ndarray:
        """The corrupted waveform (float32, same sample rate; see the module table for length).

        ``waveform``: 1-D float array. ``seed``: use :func:`track_seed` for a
        different draw per track. A failure of the effect, an empty or a
        non-finite result raises :class:`CorruptionError`.
        """
        import numpy as np

        x = np.ascontiguousarray(waveform, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"corruptions take a mono 1-D waveform, got shape {x.shape}")
        if x.size == 0:
            raise CorruptionError(self.id, "empty waveform")
        if self.is_identity:
            return x.copy()
        try:
            y = self.corruption.fn(x, int(sample_rate), float(self.strength), int(seed))
        except CorruptionError:
            raise
        except Exception as exc:  # pedalboard / libsndfile raise many types; the caller skips the clip
            raise CorruptionError(self.id, f"{type(exc).__name__}: {exc}") from exc
        y = np.ascontiguousarray(y, dtype=np.float32)
        if y.ndim != 1 or y.size == 0:
            raise CorruptionError(self.id, f"result has shape {y.shape}")
        if not np.isfinite(y).all():
            raise CorruptionError(self.id, "result contains NaN or infinity")
        return y

    def __call__(self, waveform: np.ndarray, sample_rate: int, seed: int = 0) -> np.ndarray:
        return self.apply(waveform, sample_rate, seed)


def parse_condition(cid: str) -> Condition:
    """A condition from its id (``reverb@0.5``, or a bare name for a single-level corruption)."""
    text = cid.strip()
    name, sep, value = text.partition("@")
    c = get(name)
    if not sep:
        if len(c.strengths) != 1:
            raise ConditionSpecError(
                f"condition {text!r} names no strength; write {c.name}@<{c.unit}>, "
                f"e.g. {c.name}@{_fmt(c.strengths[0])}"
            )
        return Condition(c, float(c.strengths[0]))
    return Condition(c, c.check(value.strip()))


#: Named suites: ``default`` is the full robustness experiment, ``quick`` one or two levels each.
SUITES = {
    "default": lambda: [Condition(c, float(s)) for c in _REGISTRY.values() for s in c.strengths],
    "quick": lambda: [Condition(c, float(s)) for c in _REGISTRY.values() for s in c.quick],
}


def suite(name: str = "default") -> list[Condition]:
    """The conditions of a named suite (see :data:`SUITES`)."""
    if name not in SUITES:
        raise ConditionSpecError(f"unknown suite {name!r}; suites: {', '.join(SUITES)}")
    return SUITES[name]()


SPEC_HELP = (
    "a ';'-separated list of NAME or NAME@S1,S2,... (strengths in the corruption's unit; a bare NAME "
    "takes its default levels), or a suite name (" + ", ".join(SUITES) + "); e.g. "
    "'augment@0.5,1;reverb@0.3;mp3'"
)


def parse_conditions(spec: str) -> list[Condition]:
    """Conditions from a user's list, e.g. ``"augment@0.5,1;reverb@0.3;mp3"``.

    ``;`` separates corruptions; ``@`` gives strengths, ``,`` separated; a
    bare name takes the default levels; ``default`` / ``quick`` add a suite;
    ``clean`` is accepted and ignored (the clean condition is always
    measured). Duplicates are dropped, order is kept. Raises
    UnknownCorruptionError (with did-you-mean) or ConditionSpecError.
    """
    out: dict[str, Condition] = {}
    items = [p.strip() for p in str(spec).split(";")]
    if not any(items):
        raise ConditionSpecError(f"no corruption given; expected {SPEC_HELP}")
    for item in items:
        if not item:
            continue
        name, sep, values = item.partition("@")
        name = name.strip()
        if not sep and name.lower() in SUITES:
            conds = suite(name.lower())
        elif not sep and _key(name) == CLEAN:
            continue
        else:
            try:
                c = get(name)
            except UnknownCorruptionError as exc:
                raise UnknownCorruptionError(f"{exc} Suites: {', '.join(SUITES)}.") from None
            if sep:
                levels = [v.strip() for v in values.split(",")]
                if not all(levels):
                    raise ConditionSpecError(f"{item!r}: empty strength; expected {SPEC_HELP}")
                conds = [Condition(c, c.check(v)) for v in levels]
            else:
                conds = [Condition(c, float(s)) for s in c.strengths]
        for cond in conds:
            out.setdefault(cond.id, cond)
    if not out:
        raise ConditionSpecError(f"no corruption given in {spec!r}; expected {SPEC_HELP}")
    return list(out.values())
