"""Confidence intervals: a percentile bootstrap over the test tracks.

Why: demo and real test sets are small enough that a difference of a point or
two between encoders can be noise. Each (encoder, task, seed) record carries a
95% interval of its primary metric, obtained by resampling the test tracks
with replacement (1000 resamples, percentile interval), and the bootstrap
values themselves, so the leaderboard can pool seeds (see
:func:`pooled_interval`).

The resamples are drawn from a fixed generator (:data:`BOOT_SEED`) that does
not depend on the probe seed: resample ``b`` is the same set of test tracks for
every seed, so averaging the seeds' values resample by resample gives the
bootstrap distribution of the seed-averaged metric (paired bootstrap).

Three ways to compute a resample's metric, fastest first, each checked
against the task's own scorer on the full test set before it is used:
1. macro ROC-AUC / macro average precision: vectorised with integer weights
   (a resample = a count per track), identical to scikit-learn on the
   resampled arrays;
2. metrics that are a mean over tracks (accuracy, key weighted score,
   pitch-class accuracy): per-track values from the task's scorer, averaged
   with the resample counts;
3. anything else: the task's scorer on every resample (within a time budget;
   the number of resamples actually used is recorded).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterator

import numpy as np

from bench import metrics
from bench.metrics import weighted_average_precision, weighted_roc_auc

N_BOOT = 1000
LEVEL = 0.95
BOOT_SEED = 20240713
METHOD = "percentile bootstrap over test tracks"


#: resamples computed together: the bootstrap's memory is BLOCK x test tracks, not N_BOOT x test tracks
BLOCK = 100


def resample_blocks(n: int, n_boot: int = N_BOOT, seed: int = BOOT_SEED, block: int = BLOCK,
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The resamples of :func:`resample_counts` ``block`` rows at a time: (indices, counts), each ``[b, n]``.

    The rows are drawn from the same generator stream in order, so block after
    block they are exactly the rows of the whole matrix (tested): resample
    ``b`` is the same set of tracks however it is computed. Whole, the index
    and count matrices of a 4,000-track test split cost about 100 MB at once
    (an int64 index, the flat bincount input, its counts and their float64
    copy); a block of 100 resamples costs a tenth of one of them.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        counts = np.empty((b, n), dtype=np.float64)
        for r in range(b):
            counts[r] = np.bincount(idx[r], minlength=n)
        yield idx, counts


def resample_counts(n: int, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Resample indices ``[B, n]`` and the matching counts ``[B, n]`` (how often each track is drawn)."""
    blocks = list(resample_blocks(n, n_boot, seed))
    if not blocks:
        return np.zeros((0, n), dtype=np.int64), np.zeros((0, n))
    return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])


_VECTORISED = {"roc_auc": weighted_roc_auc, "average_precision": weighted_average_precision}


def _macro_weighted(fn, y: np.ndarray, s: np.ndarray, W: np.ndarray) -> np.ndarray:
    per_class = np.stack([fn(y[:, c], s[:, c], W) for c in range(y.shape[1])], axis=1)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(per_class)
        total = np.where(valid, per_class, 0.0).sum(axis=1)
        k = valid.sum(axis=1)
        return np.where(k > 0, total / np.maximum(k, 1), np.nan)


def bootstrap(
    score_fn: Callable[[Any, Any], dict[str, float]],
    y_true: np.ndarray,
    scores: np.ndarray,
    metric: str,
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = BOOT_SEED,
    time_budget_s: float = 60.0,
) -> dict[str, Any]:
    """Bootstrap interval of ``metric`` as computed by ``score_fn(y_true, scores)``.

    Returns the point value, ``lo``/``hi`` (percentile interval at ``level``),
    ``se`` (bootstrap standard deviation), the resample values (rounded to 6
    digits, for pooling over seeds), how they were computed and how many.
    """
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    n = len(y)
    full = float(score_fn(y, s)[metric])
    values, strategy = None, ""

    if metric in _VECTORISED and y.ndim == 2:
        generic = metrics.METRICS[metric](y, s)
        if math.isclose(generic, full, rel_tol=0, abs_tol=1e-9) or (math.isnan(generic) and math.isnan(full)):
            fn = _VECTORISED[metric]
            values = np.concatenate([_macro_weighted(fn, y, s, W) for _, W in resample_blocks(n, n_boot, seed)])
            strategy = f"vectorised macro {metric}"

    if values is None and n <= 200_000:
        try:
            per = np.array([float(score_fn(y[i : i + 1], s[i : i + 1])[metric]) for i in range(n)])
        except Exception:  # a scorer that cannot score one track (e.g. needs two classes)
            per = None
        if per is not None and np.isfinite(per).all() and math.isclose(per.mean(), full, abs_tol=1e-9):
            values = np.concatenate([W @ per / n for _, W in resample_blocks(n, n_boot, seed)])
            strategy = "mean of per-track values"

    if values is None:
        t0 = time.perf_counter()
        out: list[float] = []
        for row in (row for idx, _ in resample_blocks(n, n_boot, seed) for row in idx):
            out.append(float(score_fn(y[row], s[row])[metric]))
            if time.perf_counter() - t0 > time_budget_s and len(out) >= 100:
                break
        values, strategy = np.asarray(out), "task scorer on each resample"

    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    alpha = (1 - level) / 2
    if len(finite):
        lo, hi = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
        se = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
    else:
        lo = hi = se = float("nan")
    return {
        "metric": metric,
        "value": _round(full),
        "lo": _round(lo),
        "hi": _round(hi),
        "se": _round(se),
        "level": level,
        "n_boot": int(len(values)),
        "seed": seed,
        "method": METHOD,
        "strategy": strategy,
        "values": [_round(v) for v in values],
    }


def _round(x: float) -> float | None:
    x = float(x)
    return round(x, 6) if math.isfinite(x) else None


def pooled_interval(cis: list[dict[str, Any]], level: float = LEVEL) -> tuple[float, float, str]:
    """The interval of the seed-averaged metric from the seeds' bootstrap records.

    When every seed has the same paired resamples (same bootstrap seed and
    count, values stored), the seeds are averaged resample by resample and the
    percentile interval is taken over those averages ("pooled paired
    bootstrap"). Otherwise the interval is the mean of the seeds' bounds
    ("mean of per-seed intervals"), a cruder but still honest figure.
    """
    usable = [c for c in cis if c and c.get("values")]
    same = len(usable) == len(cis) and len({(c.get("seed"), len(c["values"])) for c in usable}) == 1
    if cis and same:
        V = np.array([[np.nan if v is None else v for v in c["values"]] for c in usable], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            pooled = V.mean(axis=0)
        pooled = pooled[np.isfinite(pooled)]
        if len(pooled):
            alpha = (1 - level) / 2
            lo, hi = np.percentile(pooled, [100 * alpha, 100 * (1 - alpha)])
            return float(lo), float(hi), "pooled paired bootstrap over seeds"
    los = [c["lo"] for c in cis if c and c.get("lo") is not None]
    his = [c["hi"] for c in cis if c and c.get("hi") is not None]
    if los and his:
        return float(np.mean(los)), float(np.mean(his)), "mean of per-seed intervals"
    return float("nan"), float("nan"), "none"
