"""The leaderboard's wide table (a row per encoder and condition, a column per task's primary mean and
interval and per other metric, the average rank) and its renderings: markdown, CSV, JSON rows, HTML cells and
page. :mod:`bench.leaderboard` pools the records into the summary rows this module lays out, and writes the files.
"""

from __future__ import annotations

import base64
import html
import json
import math
from typing import Any, Sequence

from bench.corruptions import CLEAN, display_order

RANK_COL = "avg rank"
#: the chance row's label
CHANCE = "chance"
#: the column of how many pretraining seeds a row pools
PT_COL = "n_pt"


def with_chance(df, chance: list[dict[str, Any]]):
    """``df`` with the chance row(s) appended (unranked; their labels in ``df.attrs["chance"]``)."""
    import pandas as pd

    new: dict[str, dict[str, float]] = {}
    for c in chance:
        col = c["task"] if c["primary"] else f"{c['task']} {c['metric']}"
        if col in df.columns:
            new.setdefault(c["encoder"], {})[col] = c["mean"]
    if not new:
        return df
    extra = pd.DataFrame.from_dict(new, orient="index").reindex(columns=df.columns).astype(float)
    out = pd.concat([df, extra])
    out.index.name = df.index.name
    out.attrs = {**df.attrs, "chance": list(new)}
    return out


def wide(rows: list[dict[str, Any]]):
    import pandas as pd

    tasks = sorted({r["task"] for r in rows})
    encoders = list(dict.fromkeys(r["encoder"] for r in rows))
    data: dict[str, dict[str, float]] = {e: {} for e in encoders}
    others: set[str] = set()
    pooled = any(r.get("n_pt") for r in rows)
    for r in rows:
        if pooled:  # how many pretraining seeds each row pools (shown only when some row pools several)
            data[r["encoder"]][PT_COL] = float(r.get("n_pt") or 1)
        if r["primary"]:
            data[r["encoder"]][r["task"]] = r["mean"]
            data[r["encoder"]][f"{r['task']} lo"] = r["lo"] if r["lo"] is not None else float("nan")
            data[r["encoder"]][f"{r['task']} hi"] = r["hi"] if r["hi"] is not None else float("nan")
        else:
            col = f"{r['task']} {r['metric']}"
            others.add(col)
            data[r["encoder"]][col] = r["mean"]
    undefined = sorted((r["encoder"], r["task"] if r["primary"] else f"{r['task']} {r['metric']}")
                       for r in rows if not math.isfinite(r["mean"]))
    df = pd.DataFrame.from_dict(data, orient="index")
    df.index.name = "encoder"
    primary_cols = [t for t in tasks if t in df.columns]
    cols = ([PT_COL] if pooled else []) + [c for t in primary_cols for c in (t, f"{t} lo", f"{t} hi")] + sorted(others)
    df = df.reindex(columns=cols).astype(float)
    if primary_cols:
        # ranks compare rows of one condition only (a corrupted row does not compete with clean ones); clean first
        cond = {r["encoder"]: r.get("condition", CLEAN) for r in rows}
        order = {c: i for i, c in enumerate(display_order(cond.values()))}
        group = df.index.map(lambda e: order[cond.get(e, CLEAN)])
        ranks = df[primary_cols].groupby(group).rank(ascending=False, method="average")
        df[RANK_COL] = ranks.mean(axis=1, skipna=True)
        df["_group"] = group
        df = df.sort_values(["_group", RANK_COL, primary_cols[0]], ascending=[True, True, False])
        df = df.drop(columns="_group")
        df.attrs["conditions"] = cond
    # cells with a record whose value is NaN, told apart from cells with no record (both NaN here)
    df.attrs["undefined"] = undefined
    return df


def display(df, bold: str) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells (primary = 'mean [lo, hi]'); ``bold`` wraps the best, e.g. '**{}**'."""
    primary = [c for c in df.columns if f"{c} lo" in df.columns]
    shown = [c for c in df.columns if not (c.endswith(" lo") or c.endswith(" hi")) or c[:-3] not in primary]
    from bench.references import is_published

    undefined = {tuple(u) for u in df.attrs.get("undefined", ())}
    # the measured rows of one condition compete (clean rows with clean rows only); published and chance rows
    # never do
    cond = df.attrs.get("conditions", {})
    chance = set(df.attrs.get("chance", ()))
    groups: dict[str, list[Any]] = {}
    for enc in df.index:
        if not is_published(enc) and enc not in chance:
            groups.setdefault(cond.get(enc, CLEAN), []).append(enc)
    marked = {(enc, c) for members in groups.values() for c in primary for enc in [_separated_best(df, members, c)]
              if enc is not None}
    cells = []
    for enc, row in df.iterrows():
        out = [str(enc)]
        for c in shown:
            v = row[c]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                out.append("NaN" if (enc, c) in undefined else "")
                continue
            if c == PT_COL:
                out.append(f"{v:.0f}")
                continue
            text = f"{v:.2f}" if c == RANK_COL else f"{v:.4f}"
            if c in primary and not math.isnan(row[f"{c} lo"]):
                text += f" [{row[f'{c} lo']:.4f}, {row[f'{c} hi']:.4f}]"
            if (enc, c) in marked:
                text = bold.format(text)
            out.append(text)
        cells.append(out)
    return ["encoder"] + shown, cells


def _separated_best(df, members: list[Any], col: str) -> Any:
    """The row of ``members`` with the best ``col`` when its interval lies above every other member's
    (:data:`BOLD_RULE`); None when it does not, when the best is tied, or when a row has no interval."""
    vals = df.loc[members, col].dropna()
    if len(vals) < 2:
        return None
    ranked = vals.sort_values(ascending=False)
    top, others = ranked.index[0], ranked.index[1:]
    if ranked.iloc[1] >= ranked.iloc[0] - 1e-12:
        return None
    lo = df.loc[top, f"{col} lo"]
    his = df.loc[others, f"{col} hi"]
    if math.isnan(lo) or his.isna().any() or not lo > his.max():
        return None
    return top


def to_markdown(df) -> str:
    from tabulate import tabulate

    headers, cells = display(df, "**{}**")
    return tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True)


def chance_by_task(chance: list[dict[str, Any]]) -> dict[str, float]:
    """The primary metric's chance level per task, for the chart (the clean-data row of a mixed table)."""
    out: dict[str, float] = {}
    for c in chance:
        if c["primary"] and math.isfinite(c["mean"]) and (c["task"] not in out or c["encoder"] == CHANCE):
            out[c["task"]] = c["mean"]
    return out


#: the page's style: at most 1,300 px of content (a 1,400 px window shows all of it), tables scroll sideways
STYLE = ("body{font-family:sans-serif;margin:2em auto;padding:0 1em;max-width:1300px}"
         ".scroll{max-width:100%;overflow-x:auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}td:first-child,th:first-child"
         "{text-align:left;white-space:nowrap}.demo{background:#fff3cd;border:1px solid #e0c060;padding:8px;font-weight:bold}"
         "img.chart{display:block;max-width:100%;height:auto}")


def html_page(headers: list[str], cells: list[list[str]], png: bytes, title_lines: list[str], notes: str,
              banner: str, provenance_html: str) -> str:
    """The self-contained HTML report: the table, its title and notes, the chart inline, the provenance block."""
    from bench.leaderboard_chart import MAX_WIDTH_PX

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_esc_keep_bold(c)}</td>" for c in row) + "</tr>" for row in cells)
    banner = f'<p class="demo">{html.escape(banner)}</p>' if banner else ""
    img = base64.b64encode(png).decode()
    title_html = "<br>".join(html.escape(x) for x in title_lines)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bench leaderboard</title>
<style>{STYLE}</style></head>
<body><h1>bench leaderboard</h1>{banner}<p>{title_html}</p>
<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>
<p>{html.escape(notes)}</p>
<img class="chart" style="max-width:min(100%,{MAX_WIDTH_PX}px)" alt="primary metric per task and encoder with 95% \
intervals, the chance level dashed" src="data:image/png;base64,{img}">
{provenance_html}
</body></html>
"""


def _esc_keep_bold(text: str) -> str:
    if text.startswith("<b>") and text.endswith("</b>"):
        return "<b>" + html.escape(text[3:-4]) + "</b>"
    return html.escape(text)


def renderings(rows: list[dict[str, Any]], chance: list[dict[str, Any]], libs: list[str]) -> bytes:
    """The wide table's renderings (markdown, CSV, JSON rows, HTML cells) from the summary and chance rows, as
    JSON bytes.

    ``libs`` (pandas and tabulate versions) is only part of the render cache's key.
    """
    return tables_of(with_chance(wide(rows), chance)).encode()


def tables_of(df) -> str:
    headers, cells = display(df, "<b>{}</b>")
    return json.dumps({"markdown": to_markdown(df), "csv": csv_cells(df).to_csv(),
                       "rows": json.loads(df.reset_index().to_json(orient="records")), "html": [headers, cells]})


def table_libs() -> list[str]:
    import importlib.metadata as md

    out = []
    for dist in ("pandas", "tabulate"):
        try:
            out.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            out.append(f"{dist} ?")
    return out


def csv_cells(df):
    """``df`` as text cells (6 decimals): empty where there is no record, ``NaN`` where the value is undefined."""
    cells = df.map(lambda v: "" if v != v else f"{v:.6f}")
    for enc, col in df.attrs.get("undefined", ()):
        if col in cells.columns:
            cells.loc[enc, col] = "NaN"
    return cells


#: what a marked (bold) cell means, said in every table's notes
BOLD_RULE = ("Bold: the best row of a task's primary metric, only when its 95% interval lies entirely above the "
             "interval of every other row (overlapping intervals: no row is bold; the other metrics and the average "
             "rank have no interval and are never bold); a row under a corruption is ranked and compared among the "
             "rows of its condition only.")


def notes(rows: list[dict[str, Any]], chance: Sequence[dict[str, Any]] = ()) -> str:
    how = sorted({r["interval"] for r in rows if r["primary"] and r["interval"]})
    text = "Intervals: " + (", ".join(how) if how else "none recorded") + " (bootstrap over test tracks). "
    text += f"'{RANK_COL}': mean rank of the primary metric over tasks (1 = best). " + BOLD_RULE
    if chance:
        labels = ", ".join(f"'{x}'" for x in dict.fromkeys(c["encoder"] for c in chance))
        methods = sorted({c["method"] for c in chance if c["method"]})
        text += (f" Row {labels}: the chance level on the test split, scored by "
                 f"{'; '.join(methods) or 'a predictor that ignores the audio'}. It is not ranked, never bold and "
                 "not gated.")
        differ = [c for c in chance if c["primary"] and c["max"] - c["min"] > 1e-9]
        if differ:
            text += " The chance level differs between the records of " + "; ".join(
                f"{c['task']} ({c['min']:.4f}-{c['max']:.4f})" for c in differ) + " (they scored different test " \
                "tracks: skipped files or other data); their mean is shown."
    spread = [r for r in rows if r["primary"] and r.get("n_pt")]
    if spread:
        text += (f" '{PT_COL}': pretraining seeds pooled in the row; the interval is then a multi-bootstrap over "
                 "pretraining seeds and test tracks together (docs/experiments.md). Spread of the pretraining seeds' "
                 "means (min-max, sd): " + "; ".join(
                     f"{r['encoder']} x {r['task']}: {r['pt_min']:.4f}-{r['pt_max']:.4f} (sd {r['pt_sd']:.4f}, "
                     f"{r['n_pt']} seeds)" for r in spread) + ".")
    if any(not math.isfinite(r["mean"]) for r in rows):
        text += (" NaN: the metric was undefined (NaN or null) for at least one seed; see the records. "
                 "It takes no rank, and `bench compare` fails on it.")
    return text


def with_reference(records: list[dict[str, Any]], df, reference: str | None) -> tuple[Any, str]:
    """``df`` with the published rows of ``reference`` where they may stand, and the note saying what was shown."""
    if not reference:
        return df, ""
    from bench import references

    ref = references.get(reference)
    tasks, refused = references.eligible_tasks(ref, records)
    primary = {r["task"]: r["primary_metric"] for r in records}
    out = references.add_rows(df, ref, tasks, primary)
    out.attrs = dict(df.attrs)  # which row is of which condition, which cells are undefined
    return out, " " + references.notes(ref, tasks, refused)
