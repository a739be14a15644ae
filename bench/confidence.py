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


# -- pretraining seeds: the multi-bootstrap ------------------------------------------------------------

#: the generator of the pretraining-seed resamples (one stream per side of a comparison)
MB_SEED = 20261204
MULTI_METHOD = "multi-bootstrap over pretraining seeds and test tracks"
SMALL_SEEDS = "t-widened for few pretraining seeds"


def seed_means(groups: list[list[dict[str, Any] | None]], n: int | None = None,
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """Per pretraining seed (a group of its probe seeds' ``confidence`` records), the probe seeds averaged.

    Returns ``(M, points)``: ``M[s, b]`` is seed ``s``'s metric on test-track
    resample ``b`` (its probe seeds averaged resample by resample, as
    :func:`pooled_interval` does) and ``points[s]`` its value on the whole test
    set; or None when the records cannot be paired (values missing, another
    bootstrap seed or resample count). ``n``: use the first ``n`` resamples of
    each record (records whose time budget stopped them at different counts).
    """
    cis = [c for g in groups for c in g]
    usable = [c for c in cis if c and c.get("values")]
    if not groups or not all(groups) or len(usable) != len(cis):
        return None
    if len({(c.get("seed"), n or len(c["values"])) for c in usable}) != 1:
        return None
    rows, points = [], []
    for g in groups:
        V = np.array([[np.nan if v is None else v for v in c["values"][:n]] for c in g], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            rows.append(V.mean(axis=0))
        points.append(np.mean([np.nan if c.get("value") is None else c["value"] for c in g]))
    return np.stack(rows), np.asarray(points, dtype=np.float64)


def seed_resamples(n_seeds: int, n_boot: int, stream: int = 0) -> np.ndarray:
    """``[n_boot, n_seeds]`` pretraining-seed indices drawn with replacement, one row per test-track resample.

    Row ``b`` goes with test-track resample ``b``: seeds and tracks are
    resampled jointly. ``stream`` tells independent sides of a comparison apart;
    with one seed every index is 0 (and nothing is random).
    """
    return np.random.default_rng([MB_SEED, stream]).integers(0, n_seeds, size=(n_boot, n_seeds))


def multi_bootstrap(sides: list[tuple[np.ndarray, np.ndarray, float]], level: float = LEVEL,
                    small_seed_correction: bool = True) -> dict[str, Any]:
    """Interval of ``sum(sign * mean over seeds)`` over ``sides`` = ``[(M, points, sign), ...]`` (see :func:`seed_means`).

    Each side's pretraining seeds are resampled independently (stream = its
    position), jointly with the test-track resample ``b`` that every side
    shares (paired over tracks). Plain (``small_seed_correction=False``) this is
    the Multi-Bootstrap of Sellam et al. (2022). With the correction, which
    only acts when a side has 2+ seeds: each side's resampled seed deviation is
    scaled by sqrt(S/(S-1)) (the bootstrap's variance of a mean of S draws is
    (S-1)/S of the unbiased one), and the percentile interval is widened about
    the point estimate by t_nu / z, nu the Welch-Satterthwaite degrees of
    freedom of the total variance (test tracks: from the resamples, taken as
    infinite; seeds: S-1 each). A plain percentile bootstrap over 3 seeds
    under-covers (0.915 at 95% in the demo design of tests/test_multibootstrap.py,
    0.954 corrected; docs/experiments.md).

    Returns point, lo, hi, values (the resampled statistic), the seed and track
    variance shares and how the interval was made.
    """
    n_boot = min(M.shape[1] for M, _, _ in sides)
    total = np.zeros(n_boot)
    centre = np.zeros(n_boot)
    point, seed_var, terms = 0.0, 0.0, 0.0
    for stream, (M, points, sign) in enumerate(sides):
        M = M[:, :n_boot]
        S = M.shape[0]
        mean = M.mean(axis=0)
        idx = seed_resamples(S, n_boot, stream)
        draw = np.take_along_axis(M.T, idx, axis=1).mean(axis=1)  # [B]: mean of the resampled seeds' values
        if S > 1 and small_seed_correction:
            draw = mean + math.sqrt(S / (S - 1)) * (draw - mean)
            v = float(np.var(points, ddof=1)) / S
            seed_var += v
            terms += v * v / (S - 1)
        total += sign * draw
        centre += sign * mean
        point += sign * float(np.mean(points))
    finite = total[np.isfinite(total)]
    alpha = (1 - level) / 2
    out: dict[str, Any] = {"point": point, "values": total, "level": level, "lo": float("nan"), "hi": float("nan"),
                           "method": MULTI_METHOD, "seed_var": seed_var, "track_var": float("nan"), "df": math.inf}
    if not len(finite):
        return out
    lo, hi = (float(x) for x in np.percentile(finite, [100 * alpha, 100 * (1 - alpha)]))
    c = centre[np.isfinite(centre)]
    track_var = float(c.var(ddof=1)) if len(c) > 1 else 0.0
    out["track_var"] = track_var
    if seed_var > 0 and terms > 0 and math.isfinite(point):
        from scipy.special import ndtri, stdtrit  # what scipy.stats' t.ppf and norm.ppf call, without its 1.5 s import

        df = (track_var + seed_var) ** 2 / terms
        k = float(stdtrit(df, 1 - alpha) / ndtri(1 - alpha))
        lo, hi = point + k * (lo - point), point + k * (hi - point)
        out.update(df=df, method=f"{MULTI_METHOD}, {SMALL_SEEDS}")
    out.update(lo=lo, hi=hi)
    return out


def multi_interval(groups: list[list[dict[str, Any] | None]], level: float = LEVEL) -> tuple[float, float, str]:
    """The interval of a row pooled over its pretraining seeds (``groups``: one list of probe-seed
    ``confidence`` records per pretraining seed).

    With one pretraining seed it is :func:`pooled_interval` exactly. When the
    records cannot be paired it falls back to the envelope (lowest low, highest
    high) of the seeds' own intervals.
    """
    if len(groups) == 1:
        return pooled_interval(groups[0], level)
    sm = seed_means(groups)
    if sm is not None:
        res = multi_bootstrap([(sm[0], sm[1], 1.0)], level)
        if math.isfinite(res["lo"]) and math.isfinite(res["hi"]):
            return res["lo"], res["hi"], res["method"]
    per = [pooled_interval(g, level) for g in groups]
    los = [p[0] for p in per if math.isfinite(p[0])]
    his = [p[1] for p in per if math.isfinite(p[1])]
    if los and his:
        return min(los), max(his), "envelope of the pretraining seeds' intervals"
    return float("nan"), float("nan"), "none"


def min_detectable(lo: float | None, hi: float | None) -> float | None:
    """The smallest difference an interval [lo, hi] of a difference can tell from 0: its half-width h.

    An interval of half-width h about a roughly normal estimate excludes 0 when
    |estimate| > h: a true difference of h is declared about half the time, one
    of h (z_0.975 + z_0.8) / z_0.975 = 1.43 h about 80% of the time (the usual
    minimum detectable effect at 80% power). The report prints h.
    """
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (hi - lo) / 2


def multi_difference(groups_a: list[list[dict[str, Any] | None]], groups_b: list[list[dict[str, Any] | None]],
                     level: float = LEVEL, shared_seeds: bool = False) -> dict[str, Any] | None:
    """A - B pooled over each side's pretraining and probe seeds, paired over the same test-track resamples.

    ``groups_*``: per pretraining seed, its probe seeds' ``confidence``
    records; both sides must have been scored on the same tracks with the same
    bootstrap (the caller checks the tracks; None here when the resamples
    differ). Pretraining seeds are resampled independently per side (two
    encoders trained with seed 0 share at most an initialisation and a data
    order, not a checkpoint); ``shared_seeds=True`` pairs them instead (both
    sides must list the same seeds in the same order): the per-seed
    differences are resampled. With one pretraining seed per side this is the
    paired bootstrap of before, exactly.
    """
    cis = [c for g in (*groups_a, *groups_b) for c in g]
    if not all(c and c.get("values") for c in cis) or len({c.get("seed") for c in cis}) != 1:
        return None
    n = min(len(c["values"]) for c in cis)
    a, b = seed_means(groups_a, n), seed_means(groups_b, n)
    if a is None or b is None:
        return None
    if shared_seeds and a[0].shape[0] > 1:
        if a[0].shape != b[0].shape:
            raise ValueError("shared pretraining seeds: both sides need the same seeds")
        return multi_bootstrap([(a[0] - b[0], a[1] - b[1], 1.0)], level)
    return multi_bootstrap([(a[0], a[1], 1.0), (b[0], b[1], -1.0)], level)
