"""Shared constants and small numeric helpers of the robustness analysis (percentiles, standard errors)."""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from bench import confidence

DROP_KEY = "drop"
DEMO_NOTE = "DEMO DATA: generated data in the real formats; these numbers say nothing about real music."
PAIRED_SCORED = "paired bootstrap over test tracks (scored together)"
PAIRED_RECORDS = "paired bootstrap over test tracks (from the records' resamples)"
UNPAIRED = "unpaired normal approximation (bootstrap standard errors)"

# columns of the CSV / JSON output, in order
FIELDS = (
    "encoder", "task", "metric", "condition", "corruption", "strength", "unit", "value", "lo", "hi",
    "clean", "drop", "drop_lo", "drop_hi", "drop_pct", "significant", "drop_method", "n_seeds",
    "n_tracks", "skipped", "demo_data",
)  # fmt: skip


def _pooled(value_lists: list[Any]) -> np.ndarray:
    """Seeds' bootstrap values averaged resample by resample (they must have one length)."""
    return np.mean(np.stack([_arr(v) for v in value_lists]), axis=0)


def _arr(values: Iterable[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _sub(a: float | None, b: float | None) -> float:
    return float("nan") if a is None or b is None else float(a) - float(b)


def _metric(rec: dict[str, Any], metric: str) -> float:
    v = (rec.get("metrics") or {}).get(metric)
    return float("nan") if v is None else float(v)


def _percentile(values: np.ndarray, level: float) -> tuple[float, float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi), float(finite.std(ddof=1)) if len(finite) > 1 else 0.0


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def _se(cis: list[dict[str, Any] | None]) -> float:
    """Standard error of the seed-averaged metric from the seeds' bootstrap records."""
    usable = [c for c in cis if c and c.get("values")]
    if usable and len(usable) == len(cis) and len({len(c["values"]) for c in usable}) == 1:
        return _percentile(_pooled([c["values"] for c in usable]), confidence.LEVEL)[2]
    ses = [c["se"] for c in cis if c and c.get("se") is not None]
    return float(np.mean(ses)) if ses else float("nan")


def _row_se(r: dict[str, Any], level: float) -> float:
    if r.get("_drop_values") is not None:
        return _percentile(r["_drop_values"], level)[2]
    if r.get("drop_lo") is not None and r.get("drop_hi") is not None:
        return (r["drop_hi"] - r["drop_lo"]) / (2 * _z(level))
    return float("nan")


def _significance(lo: float | None, hi: float | None) -> str:
    if lo is not None and math.isfinite(lo) and lo > 0:
        return "worse"
    if hi is not None and math.isfinite(hi) and hi < 0:
        return "better"
    return "n.s."


def _round(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return round(x, 6) if math.isfinite(x) else None


def _num(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else None
    return v
