"""Scoring time: the paired drop of one probe's clean and corrupted scores on the tracks both have."""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterable

import numpy as np

from bench import confidence
from bench.robustness.stats import PAIRED_SCORED, _arr, _percentile, _round, _sub


def common_tracks(clean_ids: Iterable[str], corrupted_ids: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(ci, ki)`` such that ``clean_ids[ci] == corrupted_ids[ki]``, in clean order.

    For when the corrupted test set lost tracks (a corruption failed on them):
    score both on the tracks they share.
    """
    clean_ids, corrupted_ids = list(clean_ids), list(corrupted_ids)
    where = {t: i for i, t in enumerate(corrupted_ids)}
    ci = [i for i, t in enumerate(clean_ids) if t in where]
    return np.asarray(ci, dtype=np.int64), np.asarray([where[clean_ids[i]] for i in ci], dtype=np.int64)


def tracks_digest(track_ids: Iterable[str]) -> str:
    """A short digest of an ordered list of track ids (to check two results used the same tracks)."""
    h = hashlib.sha256()
    for t in track_ids:
        h.update(str(t).encode() + b"\n")
    return h.hexdigest()[:16]


#: the clean side's bootstrap, by content: every condition of one probe pairs against the same clean scores
_CLEAN: dict[tuple, dict[str, Any]] = {}
_CLEAN_MAX = 64


def _clean_bootstrap(score_fn: Callable[[Any, Any], dict[str, float]], y: np.ndarray, c: np.ndarray, metric: str,
                     kw: dict[str, Any]) -> dict[str, Any]:
    """:func:`bench.confidence.bootstrap` of the clean scores, computed once per (scorer, labels, scores, settings).

    A robustness run differences each condition against the same clean scores of a probe; recomputing
    their bootstrap per condition was a large part of a warm `bench reproduce`.
    """
    h = hashlib.sha256()
    for a in (y, c):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    key = (score_fn, metric, tuple(sorted(kw.items())), h.hexdigest())
    if key not in _CLEAN:
        if len(_CLEAN) >= _CLEAN_MAX:
            _CLEAN.pop(next(iter(_CLEAN)))
        _CLEAN[key] = confidence.bootstrap(score_fn, y, c, metric, **kw)
    return _CLEAN[key]


def paired_drop(
    score_fn: Callable[[Any, Any], dict[str, float]],
    y_true: np.ndarray,
    clean_scores: np.ndarray,
    corrupted_scores: np.ndarray,
    metric: str,
    *,
    track_ids: Iterable[str] | None = None,
    n_boot: int = confidence.N_BOOT,
    level: float = confidence.LEVEL,
    seed: int = confidence.BOOT_SEED,
    time_budget_s: float = 60.0,
) -> dict[str, Any]:
    """The drop ``metric(clean) - metric(corrupted)`` on the same tracks, with a paired bootstrap interval.

    ``y_true``, ``clean_scores`` and ``corrupted_scores`` are aligned row by
    row (same track in the same row; see :func:`common_tracks`); the scores
    come from the same probe. Both are bootstrapped with the same resamples
    (:func:`bench.confidence.bootstrap`, same ``seed``) and differenced
    resample by resample. Store the result as the corrupted record's
    :data:`DROP_KEY` field; :func:`table` prefers it.
    """
    y = np.asarray(y_true)
    c = np.asarray(clean_scores, dtype=np.float64)
    k = np.asarray(corrupted_scores, dtype=np.float64)
    if not (len(y) == len(c) == len(k)):
        raise ValueError(f"y_true, clean and corrupted scores differ in length: {len(y)}, {len(c)}, {len(k)}")
    kw = {"n_boot": n_boot, "level": level, "seed": seed, "time_budget_s": time_budget_s / 2}
    bc = _clean_bootstrap(score_fn, y, c, metric, kw)
    bk = confidence.bootstrap(score_fn, y, k, metric, **kw)
    # the scorer-per-resample strategy may stop early under its time budget; resample b is the same
    # tracks in both, so the common prefix stays paired
    m = min(len(bc["values"]), len(bk["values"]))
    values = _arr(bc["values"][:m]) - _arr(bk["values"][:m])
    lo, hi, se = _percentile(values, level)
    out = {
        "metric": metric,
        "clean": bc["value"],
        "corrupted": bk["value"],
        "drop": _round(_sub(bc["value"], bk["value"])),
        "lo": _round(lo),
        "hi": _round(hi),
        "se": _round(se),
        "level": level,
        "n_boot": int(m),
        "seed": seed,
        "n_tracks": int(len(y)),
        "method": PAIRED_SCORED,
        "values": [_round(v) for v in values],
    }
    if track_ids is not None:
        out["tracks_digest"] = tracks_digest(track_ids)
    return out
