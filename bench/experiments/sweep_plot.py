"""The sweep's own outputs from its records: a table of variants x tasks and the metric against the swept value.

Both read the ``sweep`` field of the records (swept option -> value as
written) and the leaderboard's summary (mean over probe seeds, pooled 95%
interval), so they can be rebuilt from a results folder.

``rank_on="valid"`` (``bench sweep``'s default) ranks and plots the variants
by the selected probe's score on the validation splits (the records'
``valid_metrics`` / ``valid_confidence``), so a recipe is chosen without
looking at test; the test scores then appear only in a final table titled as
such. ``rank_on="test"`` ranks on the test splits (flagged as such in the
table); ``None`` keeps the records' order and shows test scores (the reproduce
report's figure of a claim).
"""

from __future__ import annotations

import io
import math
from typing import Any

from bench import leaderboard


#: what a sweep can rank its variants on: the validation splits (the default) or the test splits
RANK_ON = ("valid", "test")


def valid_view(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as if their validation figures were their scores: ``metrics`` and ``confidence`` replaced by
    ``valid_metrics`` and ``valid_confidence``; records without them (written before records carried them, or a
    probe whose validation scores were not finite) are left out."""
    return [{**r, "metrics": r["valid_metrics"], "confidence": r.get("valid_confidence")}
            for r in records if isinstance(r.get("valid_metrics"), dict) and r.get("primary_metric") in r["valid_metrics"]]


def _points(records: list[dict[str, Any]],
            split: str = "test") -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """The clean primary rows of the leaderboard summary of ``split`` and each row label's swept values."""
    sweep = {}
    for r in records:
        if (r.get("condition") or "clean") == "clean":
            sweep[str(r.get("variant") or r["encoder"])] = {k: str(v) for k, v in (r.get("sweep") or {}).items()}
    scored = valid_view(records) if split == "valid" else records
    rows = [r for r in leaderboard.summary(scored) if r["primary"] and r.get("condition", "clean") == "clean"]
    return rows, sweep


def _check_rank_on(rank_on: str | None) -> None:
    if rank_on is not None and rank_on not in RANK_ON:
        from bench.errors import BenchError

        raise BenchError(f"--rank-on {rank_on!r}: use 'valid' (rank on the validation splits) or 'test'")


def ranking(records: list[dict[str, Any]], split: str) -> list[str]:
    """Variant labels, best first by the mean over tasks of their clean primary metric on ``split``; variants
    without a score there (e.g. records written before they carried validation figures) come last."""
    rows, sweep = _points(records, split)
    scores: dict[str, list[float]] = {}
    for r in rows:
        if r["mean"] is not None and math.isfinite(r["mean"]):
            scores.setdefault(r["variant"], []).append(r["mean"])
    mean = {v: sum(vs) / len(vs) for v, vs in scores.items()}
    everyone = list(dict.fromkeys([*(r["variant"] for r in _points(records)[0]), *mean]))
    return sorted(everyone, key=lambda v: (v not in mean, -mean.get(v, 0.0)))  # stable: ties keep record order


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def sweep_table(records: list[dict[str, Any]], axes: list[str], rank_on: str | None = None) -> str:
    """Markdown: a row per variant, its swept values, and per task the primary metric [95% interval].

    ``rank_on="valid"``: the variants ranked on the validation splits, then a final table of their test scores
    in the same order; ``"test"``: ranked on the test splits; ``None``: test scores in the records' order."""
    _check_rank_on(rank_on)
    demo = all(r.get("demo_data") for r in records)
    text = leaderboard.DEMO_NOTE + "\n\n" if demo else ""
    if rank_on is None:
        return text + _table(records, axes, "test", None, "## Sweep: primary metric per variant")
    order = ranking(records, rank_on)
    if rank_on == "test":
        return text + _table(records, axes, "test", order, "## Sweep: test score per variant, ranked on the TEST "
                             "splits (--rank-on test: do not choose a recipe by this table)")
    missing = [v for v in order if v not in {r["variant"] for r in _points(records, "valid")[0]}]
    text += _table(records, axes, "valid", order, "## Sweep: validation score per variant, ranked on validation")
    if missing:
        text += (f"\n{len(missing)} variant(s) have no validation scores (records written before records carried "
                 f"them; rerun with a fresh --out to rank them): {', '.join(missing)}\n")
    return text + "\n" + _table(records, axes, "test", order, "## Final table: test scores (not used for ranking or "
                                "choosing; same order as above)")


def _table(records: list[dict[str, Any]], axes: list[str], split: str, order: list[str] | None, title: str) -> str:
    from tabulate import tabulate

    rows, sweep = _points(records, split)
    every = _points(records)[0] if split != "test" else rows  # the tasks and metrics of the sweep, scored or not
    tasks = sorted({r["task"] for r in every})
    metric = {r["task"]: r["metric"] for r in every}
    at = {(r["variant"], r["task"]): r for r in rows}
    variants = order if order is not None else list(dict.fromkeys(r["variant"] for r in rows))
    cells = []
    for i, v in enumerate(variants, 1):
        sv = sweep.get(v, {})
        line = ([str(i)] if order is not None else []) + [v, *[sv.get(a, "") for a in axes]]
        for t in tasks:
            r = at.get((v, t))
            if r is None or r["mean"] is None or not math.isfinite(r["mean"]):
                line.append("")
            else:
                line.append(f"{r['mean']:.4f}" + (f" [{r['lo']:.4f}, {r['hi']:.4f}]" if r["lo"] is not None else ""))
        cells.append(line)
    head = [f"{t} ({metric[t]}, {split})" if order is not None else f"{t} ({metric[t]})" for t in tasks]
    text = title + "\n\n" + tabulate(cells, headers=[*(["rank"] if order is not None else []), "variant", *axes,
                                                      *head], tablefmt="github", disable_numparse=True)
    where = "validation tracks" if split == "valid" else "test tracks"
    return text + f"\n\nMean over probe seeds [95% interval, pooled paired bootstrap over {where}].\n"


def sweep_png(records: list[dict[str, Any]], axes: list[str], dpi: int = 100, split: str = "test") -> bytes:
    """One panel per task: the primary metric on ``split`` ("valid" or "test"; mean, 95% interval) against the
    first swept option;
    a line per encoder and combination of the other swept options. Numeric values are placed on a
    numeric axis (logarithmic when they span a factor of 10 or more), others side by side. Drawn once
    per set of inputs (:mod:`bench.render_cache`): a rerun with the same numbers reuses the PNG."""
    from bench import render_cache

    _check_rank_on(split)
    rows, sweep = _points(records, split)
    demo = all(r.get("demo_data") for r in records)
    return render_cache.png("sweep", _draw, rows, sweep, axes, demo, dpi, split)


def _draw(rows: list[dict[str, Any]], sweep: dict[str, dict[str, str]], axes: list[str], demo: bool,
          dpi: int, split: str = "test") -> bytes:
    """The drawing of :func:`sweep_png` from its points (:func:`_points`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_axis, others = axes[0], axes[1:]
    tasks = sorted({r["task"] for r in rows})
    texts = list(dict.fromkeys(sweep.get(r["variant"], {}).get(x_axis, "") for r in rows))
    texts = [t for t in texts if t]
    nums = [_number(t) for t in texts]
    numeric = bool(texts) and all(n is not None for n in nums)
    fig, axs = plt.subplots(1, max(1, len(tasks)), figsize=(max(5.0, 3.6 * len(tasks)), 3.6), squeeze=False)
    for ax, task in zip(axs[0], tasks):
        lines: dict[str, list[tuple[float, float, Any, Any]]] = {}
        for r in rows:
            sv = sweep.get(r["variant"], {})
            if r["task"] != task or x_axis not in sv or r["mean"] is None or not math.isfinite(r["mean"]):
                continue
            line = r["encoder_name"] + "".join(f", {o}={sv.get(o, '')}" for o in others)
            x = _number(sv[x_axis]) if numeric else float(texts.index(sv[x_axis]))
            lines.setdefault(line, []).append((x, r["mean"], r["lo"], r["hi"]))
        for name, pts in lines.items():
            pts.sort()
            xs = [p[0] for p in pts]
            ax.plot(xs, [p[1] for p in pts], marker="o", markersize=4, label=name)
            if all(p[2] is not None and p[3] is not None for p in pts):
                ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], alpha=0.15, linewidth=0)
        if numeric:
            positive = [n for n in nums if n is not None and n > 0]
            if len(positive) == len(nums) and max(positive) / min(positive) >= 10:
                ax.set_xscale("log")
            ax.set_xticks(sorted(n for n in nums if n is not None))
            ax.set_xticklabels([f"{n:g}" for n in sorted(n for n in nums if n is not None)], fontsize=7)
        else:
            ax.set_xticks(range(len(texts)))
            ax.set_xticklabels(texts, rotation=20, ha="right", fontsize=7)
        metric = next((r["metric"] for r in rows if r["task"] == task), "")
        ax.set_title(f"{task}\n{metric}", fontsize=9)
        ax.set_xlabel(x_axis, fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    handles, labels = axs[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    where = "VALIDATION splits" if split == "valid" else "test splits"
    fig.suptitle(("DEMO DATA - " if demo else "") + f"primary metric on the {where} against {x_axis}\n(mean over "
                 "probe seeds, 95% interval)", fontsize=9)
    fig.tight_layout(rect=(0, 0.1 if handles else 0, 1, 0.9))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
