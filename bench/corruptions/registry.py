"""The corruption registry: what each corruption's strength means, its levels, and lookup by name."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from bench.corruptions.effects import (_bitcrush, _chorus, _compression, _distortion, _mp3, _reversal, _reverb,
                                       _splice_out, _time_stretch, _augment)
from bench.errors import BenchError, UnknownNameError

if TYPE_CHECKING:
    import numpy as np

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


def _fmt(strength: float) -> str:
    """A strength as it appears in a condition id: shortest round-trip form, no trailing zeros."""
    s = float(strength)
    return str(int(s)) if s.is_integer() and abs(s) < 1e15 else repr(s)


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
