"""Rendering of the robustness rows: CSV, JSON, markdown, degradation curves (PNG), an HTML fragment, files."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from bench import confidence
from bench.corruptions import CLEAN, corruptions
from bench.robustness.analysis import table
from bench.robustness.stats import DEMO_NOTE, FIELDS, _num


def public(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their private fields, numbers rounded to 6 digits (for CSV / JSON)."""
    return [{k: _num(v) for k, v in r.items() if not k.startswith("_")} for r in rows]


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(FIELDS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in public(rows):
        w.writerow({k: "" if r.get(k) is None else r[k] for k in FIELDS})
    return buf.getvalue()


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(public(rows), indent=2, sort_keys=True)


def _cell(r: dict[str, Any]) -> str:
    """'value, drop d [lo, hi]' with a '*' when the drop's interval excludes 0."""
    if r["value"] is None or not math.isfinite(r["value"]):
        return ""
    text = f"{r['value']:.3f}"
    if r["condition"] == CLEAN:
        if r["lo"] is not None:
            text += f" [{r['lo']:.3f}, {r['hi']:.3f}]"
        return text
    if r["drop"] is not None:
        text += f", drop {r['drop']:+.3f}"
        if r["drop_lo"] is not None:
            text += f" [{r['drop_lo']:+.3f}, {r['drop_hi']:+.3f}]"
        if r["significant"] in ("worse", "better"):
            text += "*"
    if r["skipped"]:
        text += f" ({r['skipped']} skipped)"
    return text


def _grid(rows: list[dict[str, Any]], task: str) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of one task's table: a row per condition, a column per encoder."""
    rs = [r for r in rows if r["task"] == task]
    encoders = list(dict.fromkeys(r["encoder"] for r in rs))
    conds = [r["condition"] for r in sorted(rs, key=lambda r: r["_order"])]
    conds = list(dict.fromkeys(conds))
    at = {(r["encoder"], r["condition"]): r for r in rs}
    cells = [[c] + [_cell(at[(e, c)]) if (e, c) in at else "" for e in encoders] for c in conds]
    return ["condition"] + encoders, cells


def _title(rows: list[dict[str, Any]], task: str) -> str:
    metric = next(r["metric"] for r in rows if r["task"] == task)
    return f"{task}: {metric} under corruption"


def _notes(rows: list[dict[str, Any]]) -> str:
    how = sorted({r["drop_method"] for r in rows if r["drop_method"]})
    skipped = sum(r["skipped"] for r in rows if r["condition"] != CLEAN)
    text = ("Cells: metric (mean over probe seeds), then its drop = clean - corrupted (positive = worse) with "
            f"a {int(round(100 * confidence.LEVEL))}% interval; * = the interval excludes 0. Drop intervals: "
            + ("; ".join(how) if how else "none") + ".")
    if skipped:
        text += f" {skipped} corrupted test track(s) were skipped in all (the corruption failed on them)."
    return text


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """One table per task (conditions x encoders), with the demo banner and the notes."""
    from tabulate import tabulate

    parts = []
    if rows and all(r["demo_data"] for r in rows):
        parts.append(DEMO_NOTE + "\n")
    for task in dict.fromkeys(r["task"] for r in rows):
        headers, cells = _grid(rows, task)
        parts.append(f"### {_title(rows, task)}\n")
        parts.append(tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True) + "\n")
    parts.append(_notes(rows) + "\n")
    return "\n".join(parts)


def curves_png(rows: list[dict[str, Any]], task: str, dpi: int = 100) -> bytes:
    """Degradation curves of one task: a panel per corruption, a line per encoder (metric vs strength).

    The clean value is drawn at the corruption's identity strength where it
    has one (so the curve starts from it), else as a dashed line; shading is
    the metric's interval; axes run from mild to harsh (bitrate and bit depth
    are reversed). Drawn once per set of inputs (:mod:`bench.render_cache`):
    a rerun with the same numbers reuses the PNG.
    """
    from bench import render_cache

    registry = corruptions()
    rs = [r for r in rows if r["task"] == task]
    if not rs:
        raise ValueError(f"no rows for task {task!r}")
    meta = {}
    for name in sorted({r["corruption"] for r in rs if r["corruption"]}):
        c = registry.get(name)
        meta[name] = None if c is None else {"identity": c.identity, "harsher": c.harsher, "unit": c.unit}
    return render_cache.png("robustness-curves", _draw_curves, rs, meta, _title(rows, task), dpi)


def _draw_curves(rs: list[dict[str, Any]], meta: dict[str, dict[str, Any] | None], title: str, dpi: int) -> bytes:
    """The drawing of :func:`curves_png`: ``rs`` one task's rows, ``meta`` each corruption's identity strength,
    direction and unit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    encoders = list(dict.fromkeys(r["encoder"] for r in rs))
    names = list(dict.fromkeys(r["corruption"] for r in sorted(rs, key=lambda r: r["_order"])
                               if r["condition"] != CLEAN and r["strength"] is not None))
    clean = {r["encoder"]: r for r in rs if r["condition"] == CLEAN}
    ncols = max(1, min(5, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 2.7 * nrows + 0.6), sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        c = meta.get(name)
        ticks: set[float] = set()
        for i, enc in enumerate(encoders):
            color = colors[i % len(colors)]
            pts = sorted((r["strength"], r["value"], r["lo"], r["hi"]) for r in rs
                         if r["encoder"] == enc and r["corruption"] == name and r["strength"] is not None)
            cl = clean.get(enc)
            if cl is not None and c is not None and c["identity"] is not None:
                if all(p[0] != c["identity"] for p in pts):
                    pts = sorted(pts + [(float(c["identity"]), cl["value"], cl["lo"], cl["hi"])])
            elif cl is not None:
                ax.axhline(cl["value"], color=color, linestyle="--", linewidth=0.8, alpha=0.7)
            if not pts:
                continue
            x = [p[0] for p in pts]
            ticks.update(x)
            ax.plot(x, [p[1] for p in pts], marker="o", markersize=3, color=color, label=enc)
            if all(p[2] is not None and p[3] is not None for p in pts):
                ax.fill_between(x, [p[2] for p in pts], [p[3] for p in pts], color=color, alpha=0.15, linewidth=0)
        if ticks:
            ax.set_xticks(sorted(ticks))
            ax.set_xticklabels([f"{t:g}" for t in sorted(ticks)])
        if c is not None and c["harsher"] == "down":
            ax.invert_xaxis()
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(c["unit"] if c else "strength", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(rs[0]["metric"], fontsize=8)
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lab, h)
    handles, labels = list(legend.values()), list(legend)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    demo = all(r["demo_data"] for r in rs)
    fig.suptitle(("DEMO DATA - " if demo else "") + title
                 + " (dashed: clean, where no strength is the identity)", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def html_fragment(rows: list[dict[str, Any]], curves: dict[str, bytes] | None = None,
                  records: list[dict[str, Any]] | None = None) -> str:
    """A ``<section>`` for the HTML report: per task the table and (if given) its curves as an inline PNG; with
    ``records``, their provenance (:func:`bench.provenance.html_block`) last."""
    parts = ['<section class="robustness"><h2>Robustness to corruptions</h2>']
    if rows and all(r["demo_data"] for r in rows):
        parts.append(f'<p class="demo">{html.escape(DEMO_NOTE)}</p>')
    for task in dict.fromkeys(r["task"] for r in rows):
        headers, cells = _grid(rows, task)
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
        parts.append(f"<h3>{html.escape(_title(rows, task))}</h3>")
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if curves and task in curves:
            img = base64.b64encode(curves[task]).decode()
            parts.append(f'<img alt="{html.escape(task)}: metric against corruption strength per encoder" '
                         f'src="data:image/png;base64,{img}">')
    parts.append(f"<p>{html.escape(_notes(rows))}</p>")
    if records:
        from bench import provenance

        parts.append(provenance.html_block(records, "Provenance of the robustness records"))
    parts.append("</section>")
    return "\n".join(parts) + "\n"


def write_report(records: list[dict[str, Any]], folder: Path) -> dict[str, Path]:
    """Write robustness.{md,csv,json}, one curves PNG per task and robustness_fragment.html into ``folder``."""
    rows = table(records)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    curves = {task: curves_png(rows, task) for task in dict.fromkeys(r["task"] for r in rows)}
    files = {
        "markdown": (folder / "robustness.md", to_markdown(rows)),
        "csv": (folder / "robustness.csv", to_csv(rows)),
        "json": (folder / "robustness.json", to_json(rows)),
        "html": (folder / "robustness_fragment.html", html_fragment(rows, curves, records)),
    }
    out = {}
    for key, (path, text) in files.items():
        path.write_text(text)
        out[key] = path
    for task, png in curves.items():
        path = folder / f"robustness_{_safe(task)}.png"
        path.write_bytes(png)
        out[f"png:{task}"] = path
    return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
