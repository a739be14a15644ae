"""Metrics stage: the field's standard scores.

Multiclass: ``accuracy`` (top-1). Multilabel: ``roc_auc`` (macro ROC-AUC) and
``average_precision`` (macro PR-AUC), equal to scikit-learn's per-class scores. Classes absent from the test labels (no
positive or no negative) are left out of the macro averages, as is usual; how
many were left out is reported as ``<metric>_classes``.
Regression: ``r2`` (the coefficient of determination per target, then the
plain mean over targets: scikit-learn's ``r2_score`` with
``multioutput="uniform_average"``); :func:`r2_per_target` gives each target's.
Task-specific metrics (key weighted score, pitch-class accuracy) live in their
task and call :func:`score` for the rest.
"""

from __future__ import annotations

import numpy as np

from bench.errors import BenchError


class NonFiniteScores(BenchError):
    """Probe outputs holding NaN or infinity: no metric is defined on them (scikit-learn refuses them too).

    Raised without the encoder's and task's names, which the caller adds (the error boundary of a
    pair prefixes ``ENCODER x TASK``)."""

    def __init__(self, bad: int, total: int, what: str = "scores") -> None:
        super().__init__(f"the probe's {what} hold {bad} NaN or infinite value(s) of {total}: no metric is "
                         "computed on them (a diverged probe, or embeddings too large). Try a lower probe learning "
                         "rate (--probe-grid) or check the scale of the encoder's output.")
        self.bad, self.total = bad, total


def check_finite(scores: np.ndarray, what: str = "scores") -> np.ndarray:
    """``scores`` as an array, or :class:`NonFiniteScores` when any value is NaN or infinite."""
    scores = np.asarray(scores)
    ok = np.isfinite(scores)
    if not ok.all():
        raise NonFiniteScores(int(ok.size - ok.sum()), int(ok.size), what)
    return scores


def accuracy(y_true: np.ndarray, scores: np.ndarray) -> float:
    return float((check_finite(scores).argmax(axis=1) == np.asarray(y_true)).mean())


def _macro(fn, y_true: np.ndarray, scores: np.ndarray) -> tuple[float, int]:
    y_true = np.asarray(y_true)
    scores = check_finite(scores)
    pos = y_true.sum(axis=0)
    valid = (pos > 0) & (pos < len(y_true))
    if not valid.any():
        return float("nan"), 0
    vals = [fn(y_true[:, c], scores[:, c]) for c in np.flatnonzero(valid)]
    return float(np.mean(vals)), int(valid.sum())


# Per-class ROC-AUC and AP use the vectorised implementations of
# bench.confidence (the bootstrap needs them anyway), which equal
# Weighted per-class scores: one row of weights per bootstrap resample (bench.confidence), or a
# single row of ones for the plain metric.
def _groups(sorted_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position of a sorted array: first and last position of its group of tied values."""
    n = len(sorted_scores)
    new = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    gid = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], n] - 1
    return starts[gid], ends[gid]


def weighted_roc_auc(y: np.ndarray, s: np.ndarray, W: np.ndarray) -> np.ndarray:
    """ROC-AUC of one class for every row of weights ``W`` ``[B, n]`` (NaN where a class is absent)."""
    order = np.argsort(s, kind="mergesort")
    ss, pos = s[order], y[order] > 0.5
    Wo = W[:, order]
    neg_w = Wo * ~pos
    cum = np.cumsum(neg_w, axis=1)
    first, last = _groups(ss)
    p = np.flatnonzero(pos)
    below = cum[:, first[p]] - neg_w[:, first[p]]
    tied = cum[:, last[p]] - below
    num = (Wo[:, p] * (below + 0.5 * tied)).sum(axis=1)
    wp, wn = Wo[:, p].sum(axis=1), neg_w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((wp > 0) & (wn > 0), num / (wp * wn), np.nan)


def weighted_average_precision(y: np.ndarray, s: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Average precision (scikit-learn's definition) of one class for every row of ``W``."""
    order = np.argsort(-s, kind="mergesort")
    ss, pos = s[order], y[order] > 0.5
    Wo = W[:, order]
    tp = np.cumsum(Wo * pos, axis=1)
    fp = np.cumsum(Wo * ~pos, axis=1)
    _, last = _groups(ss)
    ends = np.unique(last)
    tpg, fpg = tp[:, ends], fp[:, ends]
    wp, wn = tp[:, -1], fp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(tpg + fpg > 0, tpg / np.maximum(tpg + fpg, 1e-300), 0.0)
        rec = tpg / wp[:, None]
        drec = np.diff(np.concatenate([np.zeros((len(W), 1)), rec], axis=1), axis=1)
        ap = (drec * prec).sum(axis=1)
    return np.where((wp > 0) & (wn > 0), ap, np.nan)


# scikit-learn's roc_auc_score / average_precision_score (tested) but skip its
# input validation: probe selection scores every grid point on validation, and
# sklearn's per-call checks were most of a warm run's time.
def _one(fn):
    def per_class(y: np.ndarray, s: np.ndarray) -> float:
        return float(fn(np.asarray(y, dtype=np.float64), np.asarray(s, dtype=np.float64), np.ones((1, len(y))))[0])

    return per_class


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    return _macro(_one(weighted_roc_auc), y_true, scores)[0]


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    return _macro(_one(weighted_average_precision), y_true, scores)[0]


def r2_per_target(y_true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """R² of each column (scikit-learn's ``r2_score(..., multioutput="raw_values")``, force_finite).

    A constant target scores 1.0 when predicted exactly, else 0.0; fewer than two rows: NaN.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = check_finite(np.asarray(pred, dtype=np.float64), "predictions")
    if y.ndim == 1:
        y, p = y[:, None], p.reshape(len(p), -1)
    if len(y) < 2:
        return np.full(y.shape[1], np.nan)
    ss_res = ((y - p) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - ss_res / ss_tot
    return np.where(ss_tot > 0, r2, np.where(ss_res > 0, 0.0, 1.0))


def r2(y_true: np.ndarray, pred: np.ndarray) -> float:
    """Mean R² over the targets (scikit-learn's ``multioutput="uniform_average"``)."""
    return float(np.mean(r2_per_target(y_true, pred)))


METRICS = {
    "accuracy": accuracy,
    "r2": r2,
    "roc_auc": roc_auc,
    "average_precision": average_precision,
}


def score(kind: str, y_true, scores, names) -> dict[str, float]:
    """Compute the named metrics that this module knows; unknown names raise KeyError."""
    out = {}
    for name in names:
        if name not in METRICS:
            raise KeyError(f"metric {name!r} is not a generic metric; the task must compute it")
        out[name] = METRICS[name](y_true, scores)
    return out


#: how :func:`chance_scores` scores (recorded in each record's ``chance`` block and said in the leaderboard notes)
CHANCE_METHOD = ("a predictor that ignores the audio and outputs the test split's class frequencies for every "
                 "track: the most frequent class's accuracy and key score, ROC-AUC 0.5, each tag's positive rate as "
                 "average precision (macro-averaged)")


def chance_scores(task, labels, n_classes: int) -> dict[str, object]:
    """The ``chance`` block of a record: ``task``'s own metrics for a predictor that ignores the audio.

    ``labels``: the test split's labels as the task gives them (a class index per track, or a list of class
    indices per track for a multilabel task). The predictor outputs the test split's class frequencies for every
    track, so every metric of the task (its own scorer included) is that of the label prior: the majority class
    for top-1 metrics, 0.5 for ROC-AUC (all scores tied), the positive rate for average precision; a regression
    task's predictor outputs the test split's mean target (R² 0). A scorer that
    fails on this constant input gives ``metrics: {}`` and its error: the record is kept, without a chance level.
    """
    y: np.ndarray
    if task.kind == "multiclass":
        y = np.asarray(labels, dtype=np.int64)
        prior = np.bincount(y, minlength=n_classes)[:n_classes] / max(len(y), 1)
    elif task.kind == "regression":  # the test split's mean target for every track (R² 0)
        y = np.asarray(labels, dtype=np.float64).reshape(len(labels), n_classes)
        prior = y.mean(axis=0) if len(y) else np.zeros(n_classes)
    else:
        y = np.zeros((len(labels), n_classes), dtype=np.float32)
        for i, lab in enumerate(labels):
            y[i, list(lab)] = 1.0
        prior = y.mean(axis=0) if len(y) else np.zeros(n_classes)
    scores = np.tile(prior.astype(np.float64), (len(y), 1))
    out: dict[str, object] = {"method": CHANCE_METHOD, "n_tracks": int(len(y))}
    try:
        out["metrics"] = {k: float(v) for k, v in task.score(y, scores).items()}
    except Exception as exc:  # a task's own scorer (plugin code): the record must not be lost for its chance level
        out.update(metrics={}, error=f"{type(exc).__name__}: {exc}"[:300])
    return out
