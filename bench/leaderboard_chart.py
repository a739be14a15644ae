"""The leaderboard's chart: one panel per task, a bar per encoder (primary mean) with its interval as whiskers.

Read at a glance: panels of one metric share their y axis (a 0.04 bar is drawn a tenth as tall as a 0.4
one, never as tall), the chance level (``chance`` blocks of the records, :func:`bench.metrics.chance_scores`)
is a dashed line, ROC-AUC bars rise from 0.5 (its chance level) rather than from 0, and the figure is at most
:data:`MAX_WIDTH_PX` pixels wide: panels wrap onto further rows instead of widening it, so the PNG fits a
1,400 px window at its natural size (the HTML also scales it to the page).
"""

from __future__ import annotations

import io
import math
from typing import Any

from bench.corruptions import CLEAN

DPI = 110
#: the widest figure, in inches and pixels (at :data:`DPI`)
MAX_WIDTH_IN = 12.0
MAX_WIDTH_PX = int(MAX_WIDTH_IN * DPI)
#: where a metric's bars start (its chance level when that is a constant); others start at 0
BAR_BASE = {"roc_auc": 0.5}


def layout(n_tasks: int, n_bars: int) -> tuple[int, int, float, float]:
    """(columns, rows, width in, height in) of the figure: panels as wide as their bars need, wrapped so the
    figure is never wider than :data:`MAX_WIDTH_IN`."""
    panel = min(MAX_WIDTH_IN, max(3.0, 1.4 + 0.55 * n_bars))
    cols = max(1, min(n_tasks, int(MAX_WIDTH_IN // panel)))
    rows = max(1, math.ceil(n_tasks / cols))
    return cols, rows, panel * cols, 3.5 * rows + 0.7


def y_limits(values: list[float], metric: str) -> tuple[float, float]:
    """One metric's y range over every panel that shows it: from its bar base (0, or 0.5 for ROC-AUC; lower
    when a value is below it) to a little above the highest value, at most 1 for scores in [0, 1]."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    base = BAR_BASE.get(metric, 0.0)
    if not vals:
        return base, 1.0
    lo, hi = min(vals + [base]), max(vals)
    span = max(hi - lo, 1e-3)
    bottom = lo if lo >= base else lo - 0.05 * span
    top = hi + 0.08 * span
    if lo >= 0 and hi <= 1:
        top = min(top, 1.0) if hi < 1 else 1.0 + 0.02 * span
    return bottom, max(top, bottom + 1e-3)


def chart_png(rows: list[dict[str, Any]], demo: bool, chance: dict[str, float] | None = None) -> bytes:
    """A PNG of the primary metric per task (see the module doc); ``chance``: the chance level per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    chance = chance or {}
    prim = [r for r in rows if r["primary"]]
    if any(r.get("condition", CLEAN) == CLEAN for r in prim):  # corrupted rows have their own curves
        prim = [r for r in prim if r.get("condition", CLEAN) == CLEAN]
    tasks = sorted({r["task"] for r in prim})
    encoders = list(dict.fromkeys(r["encoder"] for r in prim))
    metric_of = {r["task"]: r["metric"] for r in prim}
    by_metric: dict[str, list[float]] = {}
    for r in prim:
        by_metric.setdefault(r["metric"], []).extend([r["mean"], r["lo"], r["hi"]])
    for task, v in chance.items():
        if task in metric_of:
            by_metric.setdefault(metric_of[task], []).append(v)
    limits = {m: y_limits(vals, m) for m, vals in by_metric.items()}
    cols, nrows, width, height = layout(len(tasks), len(encoders))
    fig, axes = plt.subplots(nrows, cols, figsize=(width, height), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(tasks):]:
        ax.set_visible(False)
    for ax, task in zip(flat, tasks):
        rs = {r["encoder"]: r for r in prim if r["task"] == task}
        names = [e for e in encoders if e in rs]
        metric = metric_of[task]
        base = BAR_BASE.get(metric, 0.0)
        means = [rs[e]["mean"] for e in names]
        err = [[max(0.0, rs[e]["mean"] - rs[e]["lo"]) if rs[e]["lo"] is not None else 0.0 for e in names],
               [max(0.0, rs[e]["hi"] - rs[e]["mean"]) if rs[e]["hi"] is not None else 0.0 for e in names]]
        ax.bar(range(len(names)), [m - base for m in means], bottom=base, yerr=err, capsize=4,
               color=[colors[encoders.index(e) % len(colors)] for e in names])
        if task in chance and math.isfinite(chance[task]):
            ax.axhline(chance[task], color="0.3", linestyle="--", linewidth=1.2, zorder=3)
        ax.set_ylim(*limits[metric])
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_title(task, fontsize=9)
        ax.set_ylabel(metric, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    head = ("DEMO DATA - " if demo else "") + "primary metric, mean over seeds, 95% interval"
    head += "; panels of one metric share their y axis"
    if chance:
        fig.legend(handles=[Line2D([], [], color="0.3", linestyle="--", label="chance level (label prior)")],
                   loc="upper right", fontsize=8, frameon=False)
    fig.suptitle(head, fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()
