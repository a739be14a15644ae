"""Conditions: a corruption at one strength, its id and cache token, per-track seeds, and parsing a user's list."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from bench.corruptions.registry import (CLEAN, ConditionSpecError, Corruption, CorruptionError, UnknownCorruptionError,
                                        _fmt, _key, _REGISTRY, get)

if TYPE_CHECKING:
    import numpy as np


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


def display_order(condition_ids: Iterable[str]) -> list[str]:
    """Condition ids in display order, :data:`CLEAN` first (always included), then by corruption in
    registry order and mild to harsh; ids of corruptions this version does not know come last."""
    names = list(_REGISTRY)

    def key(cid: str) -> tuple:
        name, _, value = cid.partition("@")
        c = _REGISTRY.get(name)
        try:
            harsh = c.harshness(float(value)) if c and value else 0.0
        except ValueError:
            harsh = 0.0
        return (cid != CLEAN, names.index(name) if c else len(names), name, harsh, cid)

    return sorted(set(condition_ids) | {CLEAN}, key=key)
