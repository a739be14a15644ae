"""Leaderboard stage: a table of encoders x tasks from result records.

One row per encoder (its variant label when it has one, e.g.
``semisupcon[label_fraction=0.05]``) and condition: the clean rows first,
then a row per encoder and corruption condition (``simclr [reverb@0.5]``),
ranked among the rows of their condition; per task the primary metric as
the mean over probe seeds with its 95% interval, then the tasks' other
metrics (means over seeds), then the average rank over tasks (rank of the
primary metric, 1 = best, ties averaged). A primary-metric cell is marked
(bold in markdown and HTML) only when its row is the best of its condition and
its interval lies above the interval of every other row of that condition
(overlapping intervals: no mark; columns without intervals are never marked).
When the records carry a ``chance`` block (:func:`bench.metrics.chance_scores`:
the task's metrics for a predictor that outputs the test split's class
frequencies), a ``chance`` row shows it: never ranked, never marked, never in
the baseline entries that ``bench compare`` gates.
Interval: the seeds' bootstrap resamples over test tracks are paired
(same resamples for every seed), averaged resample by resample, and the 2.5 /
97.5 percentiles of those averages are the interval ("pooled paired
bootstrap", :func:`bench.confidence.pooled_interval`); when the records lack
the resample values the mean of the per-seed bounds is used and the table says
so. Records of several pretraining seeds (``pretraining.seed``) of one variant
share a row: its interval is the multi-bootstrap over pretraining seeds and
test tracks (:func:`bench.confidence.multi_interval`), an ``n_pt`` column says
how many seeds each row pools and the notes give the seeds' spread; with one
pretraining seed every file is as before.

This module pools the records into summary rows and writes the files; the wide table and its renderings
are :mod:`bench.leaderboard_tables`. Written as markdown (tabulate), CSV and JSON of the same numbers, a
self-contained HTML report (tables, the chart inline as a base64 PNG and a
provenance block from the records, :mod:`bench.provenance`) and a PNG chart
(:mod:`bench.leaderboard_chart`: one panel per task, a bar per encoder with
interval whiskers, a shared y axis per metric and the chance line).

Trust rules: a table whose numbers come from the generated demo data says so
in its title; demo and real records are never averaged together (rows are
labelled "(demo data)"); two records of the same encoder and task that come
from different data (fingerprints differ) are refused; two versions of an
encoder under one name (different weights or config) become separate rows
labelled with a short hash; records of another schema version are refused; a
(encoder, task, seed) seen twice keeps the newest record, with a warning.
Records of different probing protocols (bench.protocols) are never put in one
task column (refused with the records named); a table of one protocol other
than ``bench`` says so in its title. ``reference=NAME`` adds published rows
(bench.references), marked "(published)", unranked and never bold, only in the
columns of real-data records of the reference's protocol.

Long because one summary is written in five formats (markdown, CSV, JSON,
HTML, PNG) under the same trust rules, and they belong together.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

from bench import provenance, render_cache
from bench.corruptions import CLEAN
from bench.errors import BenchError
# drawn through the render cache, whose key holds the code of the drawing function's own module
from bench.leaderboard_chart import chart_png
from bench.leaderboard_tables import BOLD_RULE, CHANCE, PT_COL, RANK_COL, to_markdown  # noqa: F401 - also ours
from bench.leaderboard_tables import chance_by_task, html_page, renderings, table_libs, tables_of, wide
from bench.leaderboard_tables import notes, with_chance, with_reference

DEMO_NOTE = "DEMO DATA: generated data in the real formats; these numbers say nothing about real music."
BASELINE_FORMAT = "bench-baseline"
BASELINE_FORMAT_VERSION = 1


# -- records -> summary ------------------------------------------------------------------------------


def pt_seed(r: dict[str, Any]) -> Any:
    """The record's pretraining seed (``pretraining.seed``); None (one unnamed seed) when it has none."""
    return (r.get("pretraining") or {}).get("seed")


def _variant(r: dict[str, Any]) -> str:
    """What tells two versions of one row label apart: weights and config; for a record with a pretraining
    seed, the config and pretraining recipe without the seed (its seeds' weights differ by design)."""
    if pt_seed(r) is None:
        cfg = json.dumps(r.get("encoder_config"), sort_keys=True, default=str)
        return hashlib.sha256(f"{r.get('weights_hash')}|{cfg}".encode()).hexdigest()[:8]
    cfg = {k: v for k, v in (r.get("encoder_config") or {}).items() if k != "seed"}
    recipe = {k: v for k, v in ((r.get("pretraining") or {}).get("recipe") or {}).items() if k != "seed"}
    text = json.dumps([cfg, recipe], sort_keys=True, default=str)
    return "pt-" + hashlib.sha256(text.encode()).hexdigest()[:8]


def _row(r: dict[str, Any]) -> str:
    """The readable row label of a record: its variant (``semisupcon[label_fraction=0.05]``) or encoder."""
    return str(r.get("variant") or r["encoder"])


def _fingerprint(r: dict[str, Any]) -> str | None:
    return (r.get("data") or {}).get("fingerprint")


def prepare(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check records can share a table and give each its row label (``_label``).

    Raises BenchError for another schema version or for one encoder x task
    measured on different data; keeps the newest of duplicated seeds.
    """
    from bench.results import SCHEMA_VERSION, check_record

    if not records:
        raise BenchError("no result records to tabulate")
    for r in records:
        if r.get("schema_version") != SCHEMA_VERSION:
            raise BenchError(
                f"{r.get('_file', 'a record')}: schema version {r.get('schema_version')}, this bench reads "
                f"version {SCHEMA_VERSION}. Re-run the benchmark, or tabulate it with the bench that wrote it."
            )
        check_record(r, r.get("_file", f"the record of {r.get('encoder')} x {r.get('task')}"))
    _check_protocols(records)
    mixed = _mixed(records)
    variants: dict[str, set[str]] = {}
    for r in records:
        variants.setdefault(_row(r), set()).add(_variant(r))
    out: dict[tuple[str, str, Any], dict[str, Any]] = {}
    for r in records:
        base = _row(r)
        if len(variants[base]) > 1:  # one row label, several weights or configs: tell them apart
            base += f" @{_variant(r)}"
        if mixed and r.get("demo_data"):
            base += " (demo data)"
        cond = str(r.get("condition") or CLEAN)  # none: a record from before conditions, clean
        # a condition is its own row: "semisupcon [reverb@0.5]" beside "semisupcon" (clean)
        label = base if cond == CLEAN else f"{base} [{cond}]"
        r = {**r, "_label": label, "_base": base, "_condition": cond}
        k = (label, r["task"], r["seed"], pt_seed(r))
        if k in out:
            older, newer = sorted([out[k], r], key=lambda x: str(x.get("created", "")))
            pts = "" if k[3] is None else f" (pretraining seed {k[3]})"
            print(f"warning: {label} x {r['task']} seed {r['seed']}{pts} appears twice; keeping the newer record "
                  f"({newer.get('_file', '?')}) over {older.get('_file', '?')}", file=sys.stderr)
            r = newer
        out[k] = r
    recs = list(out.values())
    by_pair: dict[tuple[str, str], dict[str | None, list[str]]] = {}
    for r in recs:
        by_pair.setdefault((r["_label"], r["task"]), {}).setdefault(_fingerprint(r), []).append(
            r.get("_file", f"seed {r['seed']}"))
    for (label, task), fps in by_pair.items():
        if len(fps) > 1:
            detail = "; ".join(f"{(fp or 'none')[:12]}: {', '.join(files[:3])}" for fp, files in fps.items())
            raise BenchError(
                f"records of {label} on {task} come from different data (data fingerprints differ: {detail}). "
                "Their seeds cannot be averaged: tabulate each run on its own, or re-run on the same data."
            )
    return recs


def _check_protocols(records: list[dict[str, Any]]) -> None:
    """One task column, one probing protocol: scores of different protocols are not comparable."""
    from bench.protocols import of_record

    by_task: dict[str, dict[str, list[str]]] = {}
    for r in records:
        by_task.setdefault(r["task"], {}).setdefault(of_record(r), []).append(r.get("_file", r.get("variant", "?")))
    mixed = {t: p for t, p in by_task.items() if len(p) > 1}
    if mixed:
        detail = "; ".join(f"{t}: " + ", ".join(f"{proto} ({', '.join(files[:2])})" for proto, files in p.items())
                           for t, p in sorted(mixed.items()))
        raise BenchError(f"records of different probing protocols in one task column ({detail}). A score depends "
                         "on its protocol: tabulate each protocol's records on their own.")


def summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Long form: one row per (encoder, task, metric) with mean, std over seeds and, for the primary, the interval.

    A row pools its pretraining seeds: the mean is the mean over pretraining
    seeds of the probe-seed means, the primary's interval the multi-bootstrap
    (:func:`bench.confidence.multi_interval`; with one pretraining seed exactly
    the pooled paired bootstrap of before). Rows of 2+ pretraining seeds also
    carry ``n_pt``, ``pt_seeds`` and the spread of the seed means (``pt_min``,
    ``pt_max``, ``pt_sd``); rows of one seed are unchanged.
    """
    from bench.confidence import multi_interval
    from bench.protocols import of_record

    recs = prepare(records)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in recs:
        groups.setdefault((r["_label"], r["task"]), []).append(r)
    rows = []
    for (label, task), rs in groups.items():
        rs.sort(key=lambda r: (r["seed"], str(pt_seed(r))))
        by_pt: dict[Any, list[dict[str, Any]]] = {}
        for r in rs:
            by_pt.setdefault(pt_seed(r), []).append(r)
        pts = sorted(by_pt, key=str)
        primary = rs[0]["primary_metric"]
        names = list(dict.fromkeys(m for r in rs for m in r["metrics"]))
        for metric in names:
            # null and NaN mean "undefined for that seed": the mean is then undefined too (NaN),
            # never the mean of the other seeds, so a gate cannot pass on what was not measured
            vals = [_undefined_to_nan(r["metrics"][metric]) for r in rs if metric in r["metrics"]]
            means = [_mean([_undefined_to_nan(r["metrics"][metric]) for r in by_pt[p] if metric in r["metrics"]])
                     for p in pts]
            means = [m for m in means if m is not None]
            mean = sum(means) / len(means) if means else float("nan")
            std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
            row = {
                "encoder": label,
                "encoder_name": rs[0]["encoder"],
                "variant": rs[0]["_base"],
                "condition": rs[0]["_condition"],
                "task": task,
                "metric": metric,
                "primary": metric == primary,
                "mean": mean,
                "std": std,
                "n_seeds": len(vals),
                "seeds": [r["seed"] for r in rs],
                "demo_data": bool(rs[0].get("demo_data")),
                "data_fingerprint": _fingerprint(rs[0]),
                "weights_hash": rs[0].get("weights_hash"),
                "protocol": of_record(rs[0]),
                "lo": None,
                "hi": None,
                "interval": None,
            }
            if len(pts) > 1:
                sd = (sum((m - mean) ** 2 for m in means) / (len(means) - 1)) ** 0.5 if len(means) > 1 else 0.0
                row.update(n_pt=len(pts), pt_seeds=pts, pt_min=min(means, default=float("nan")),
                           pt_max=max(means, default=float("nan")), pt_sd=sd)
            if metric == primary:
                lo, hi, how = multi_interval([[r.get("confidence") for r in by_pt[p]] for p in pts])
                if math.isfinite(lo) and math.isfinite(hi):
                    row.update(lo=lo, hi=hi, interval=how)
            rows.append(row)
    return rows


def chance_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chance row(s) of ``records``: per task and metric the mean chance level of its records.

    From the records' ``chance`` blocks (records without one add nothing: no chance row for their task). The
    clean records of a task are used when it has any (corruptions keep the labels). In a table of demo and
    real records each gets its own row, labelled like the encoder rows. Each row: ``encoder`` (its label),
    ``task``, ``metric``, ``primary``, ``mean``, the ``min`` and ``max`` over the records (they differ when the
    records scored different test tracks: files skipped, other data), ``n_records`` and ``method``.
    """
    taken = {str(r.get("variant") or r.get("encoder")) for r in records}
    base = CHANCE if CHANCE not in taken else f"{CHANCE} (label prior)"
    mixed = _mixed(records)
    clean = {r["task"] for r in records if str(r.get("condition") or CLEAN) == CLEAN}
    vals: dict[tuple[str, str, str], list[float]] = {}
    meta: dict[tuple[str, str, str], tuple[bool, str]] = {}
    for r in records:
        block = r.get("chance")
        if not isinstance(block, dict) or not isinstance(block.get("metrics"), dict):
            continue
        if r["task"] in clean and str(r.get("condition") or CLEAN) != CLEAN:
            continue
        label = base + (" (demo data)" if mixed and r.get("demo_data") else "")
        for metric, v in block["metrics"].items():
            if metric in r["metrics"] and isinstance(v, (int, float)) and not isinstance(v, bool):
                key = (label, r["task"], metric)
                vals.setdefault(key, []).append(float(v))
                meta[key] = (metric == r["primary_metric"], str(block.get("method") or ""))
    out = []
    for (label, task, metric), vs in vals.items():
        finite = [v for v in vs if math.isfinite(v)]
        out.append({"encoder": label, "task": task, "metric": metric, "primary": meta[(label, task, metric)][0],
                    "mean": sum(finite) / len(finite) if finite else float("nan"),
                    "min": min(finite, default=float("nan")), "max": max(finite, default=float("nan")),
                    "n_records": len(vs), "method": meta[(label, task, metric)][1]})
    return out


def _mean(vals: list[float]) -> float | None:
    return sum(vals) / len(vals) if vals else None


def _undefined_to_nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def table(records: list[dict[str, Any]]):
    """A pandas DataFrame indexed by encoder: per task the primary mean and its bounds, other metrics, avg rank;
    last, the chance row when the records carry their chance levels (:func:`chance_rows`)."""
    return with_chance(wide(summary(records)), chance_rows(records))


def _mixed(records: list[dict[str, Any]]) -> bool:
    return len({bool(r.get("demo_data")) for r in records}) > 1


def title(records: list[dict[str, Any]]) -> str:
    metrics = {}
    for r in records:
        metrics[r["task"]] = r["primary_metric"]
    seeds = sorted({r["seed"] for r in records})
    head = "Leaderboard: " + ", ".join(f"{t} = {m}" for t, m in sorted(metrics.items()))
    pts = {str(pt_seed(r)) for r in records}
    if len(pts) > 1:  # several pretraining seeds: say so (one-seed titles stay as they were)
        head += f" (mean over pretraining seeds x probe seeds {seeds}, [95% multi-bootstrap interval])"
    else:
        head += f" (mean over probe seeds {seeds}, [95% interval])"
    from bench.protocols import of_record

    protos = sorted({of_record(r) for r in records})
    if protos != ["bench"]:
        head += f"; probing protocol {', '.join(protos)}"
    if all(r.get("demo_data") for r in records):
        head = DEMO_NOTE + "\n" + head
    elif _mixed(records):
        head = "Mixed: rows marked (demo data) come from generated demo data.\n" + head
    return head


#: inside the page rather than widening it, the chart is scaled down to the page when the window is narrower
# -- baseline entries (shared with bench.compare) ------------------------------------------------------


def baseline(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The committed-baseline document: per (variant, task, condition) the primary mean and interval.

    ``leaderboard.json`` embeds the same ``entries``, so either file can be
    the BASELINE of ``bench compare``.
    """
    from bench.results import SCHEMA_VERSION

    import time

    rows = [r for r in summary(records) if r["primary"]]
    return {
        "format": BASELINE_FORMAT,
        "format_version": BASELINE_FORMAT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "demo_data": all(r.get("demo_data") for r in records),
        # `bench run --limit N` records: bench compare refuses a document that has this
        **({"limited": True} if any(r.get("limit") is not None for r in records) else {}),
        # "encoder" is the row's variant without its condition; "condition" says which test audio
        # ("clean" for the test split as is), so `bench compare` gates each condition on its own
        "entries": [
            {**{k: _num(r[k]) for k in ("task", "metric", "mean", "std", "lo", "hi", "n_seeds", "demo_data",
                                        "data_fingerprint", "interval", "protocol")},
             "encoder": r["variant"], "condition": r["condition"],
             **({"n_pt": r["n_pt"], "pt_sd": _num(r["pt_sd"])} if r.get("n_pt") else {})}
            for r in rows
        ],
    }


def _num(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else None
    return v


# -- files ---------------------------------------------------------------------------------------------


def write(records: list[dict[str, Any]], out_dir: Path, reference: str | None = None) -> dict[str, Path]:
    """Write leaderboard .md/.csv/.json/.html/.png into ``out_dir`` and return their paths."""
    rows = summary(records)
    chance = chance_rows(records)
    tables, ref_note = _rendered(records, rows, reference, chance)
    out_dir.mkdir(parents=True, exist_ok=True)
    head = title(records)
    files: dict[str, Path] = {}
    md = out_dir / "leaderboard.md"
    md.write_text(head + "\n\n" + tables["markdown"] + "\n\n" + notes(rows, chance) + ref_note + "\n")
    files["markdown"] = md
    csv = out_dir / "leaderboard.csv"
    csv.write_text(tables["csv"])
    files["csv"] = csv
    js = out_dir / "leaderboard.json"
    doc = baseline(records)
    doc.update({
        "title": head,
        "notes": notes(rows, chance) + ref_note,
        "rows": tables["rows"],
        "summary": [{k: _num(v) for k, v in r.items()} for r in rows],
        # the chance levels (also the table's chance row); never among the gated "entries"
        "chance": [{k: _num(v) for k, v in c.items()} for c in chance],
        "provenance": {head_: lines for head_, lines in provenance.items(records)},
    })
    js.write_text(json.dumps(doc, indent=2))
    files["json"] = js
    # drawn once per distinct chart: a warm rerun reads the PNG instead of importing matplotlib
    png = render_cache.png("leaderboard", chart_png, rows, all(r.get("demo_data") for r in records),
                           chance_by_task(chance))
    (out_dir / "leaderboard.png").write_bytes(png)
    files["png"] = out_dir / "leaderboard.png"
    page = out_dir / "leaderboard.html"
    demo = all(r.get("demo_data") for r in records)
    banner = DEMO_NOTE if demo else "Mixed table: rows marked (demo data) come from generated demo data." \
        if _mixed(records) else ""
    page.write_text(html_page(*tables["html"], png, [x for x in head.splitlines() if x != DEMO_NOTE],
                              notes(rows, chance) + ref_note, banner, provenance.html_block(records)))
    files["html"] = page
    return files


def _rendered(records: list[dict[str, Any]], rows: list[dict[str, Any]], reference: str | None,
              chance: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """(the wide table's renderings, the reference note). Without a reference they are made once per distinct
    set of summary and chance rows (bench.render_cache): a warm rerun reads them instead of importing pandas."""
    if reference:
        df, ref_note = with_reference(records, wide(rows), reference)
        return json.loads(tables_of(with_chance(df, chance))), ref_note
    return json.loads(render_cache.blob("leaderboard-tables", renderings, rows, chance, table_libs(), ext="json")), ""


def render(records: list[dict[str, Any]], reference: str | None = None) -> str:
    rows = summary(records)
    chance = chance_rows(records)
    tables, ref_note = _rendered(records, rows, reference, chance)
    return title(records) + "\n\n" + tables["markdown"] + "\n\n" + notes(rows, chance) + ref_note
