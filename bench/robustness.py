"""Robustness analysis: the primary metric and its drop under each corruption, from result records.

The experiment (method.md): probes trained on clean embeddings are tested on
corrupted test audio. Each record is one (encoder, task, probe seed,
condition); ``condition`` is :data:`bench.corruptions.CLEAN` (also assumed
when absent) or a condition id such as ``reverb@0.5``; ``variant`` (optional)
names a configuration of the encoder and becomes part of its row label
(``semisupcon[label_fraction=0.05]``).

The drop is ``clean - corrupted`` of the primary metric (every primary metric
here is higher-is-better), so a positive drop means the corruption hurt. Its
interval is a bootstrap over the test tracks, *paired*: the same resampled
tracks score the clean and the corrupted predictions, so the track-to-track
spread that both share cancels. Where it comes from, best first:

1. the corrupted record's ``drop`` field: the output of :func:`paired_drop`,
   computed at scoring time from the same probe's clean and corrupted scores
   on the tracks both have (exact even when the corruption skipped a track);
2. the two records' stored bootstrap values (``confidence.values``): resample
   ``b`` is the same set of test tracks in both when the bootstrap seed and
   count match and the test tracks are the same (same data fingerprint, same
   number of test tracks, same skipped test files), since
   :func:`bench.confidence.resample_counts` depends only on those;
3. otherwise an unpaired normal approximation from the two bootstrap
   standard errors (wider; the table says which method each row used).

Probe seeds are averaged resample by resample, as the leaderboard does.

Outputs: :func:`table` (long-form rows), :func:`summary` (mean drop over
conditions), :func:`compare` (drop of encoder A minus drop of encoder B, paired
over the same tracks: the evidence for "A is more robust"), markdown, CSV,
JSON, degradation curves as PNG (one figure per task) and an HTML fragment
for the report. Nothing here reads or writes audio.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from bench import confidence
from bench.corruptions import CLEAN, corruptions
from bench.errors import BenchError

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


# --------------------------------------------------------------------------- scoring time


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
    bc = confidence.bootstrap(score_fn, y, c, metric, **kw)
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


# --------------------------------------------------------------------------- records -> rows


def encoder_label(rec: dict[str, Any]) -> str:
    """The row label of a record: the encoder, with its variant in brackets when it has one."""
    variant = rec.get("variant")
    if isinstance(variant, dict):
        variant = ",".join(f"{k}={variant[k]}" for k in sorted(variant))
    return f"{rec['encoder']}[{variant}]" if variant else str(rec["encoder"])


def condition_of(rec: dict[str, Any]) -> str:
    return rec.get("condition") or CLEAN


def split_condition(cid: str) -> tuple[str, float | None]:
    """``"reverb@0.5"`` -> ``("reverb", 0.5)``; ``"clean"`` -> ``("clean", None)``. Lenient: records
    may name a corruption this version does not know."""
    name, _, value = cid.partition("@")
    try:
        return name, float(value) if value else None
    except ValueError:
        return cid, None


def _dedupe(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from bench.results import SCHEMA_VERSION

    out: dict[tuple, dict[str, Any]] = {}
    for r in records:
        if r.get("schema_version") != SCHEMA_VERSION:
            raise BenchError(
                f"{r.get('_file', 'a record')}: schema version {r.get('schema_version')}, this bench reads "
                f"version {SCHEMA_VERSION}. Re-run the benchmark, or analyse it with the bench that wrote it."
            )
        k = (encoder_label(r), r["task"], condition_of(r), r["seed"])
        if k in out:
            older, newer = sorted([out[k], r], key=lambda x: str(x.get("created", "")))
            print(f"warning: {k[0]} x {k[1]} x {k[2]} seed {k[3]} appears twice; keeping the newer record "
                  f"({newer.get('_file', '?')}) over {older.get('_file', '?')}", file=sys.stderr)
            r = newer
        out[k] = r
    return list(out.values())


def _test_tracks(rec: dict[str, Any]) -> tuple:
    """What identifies a record's test tracks (and so its bootstrap resamples)."""
    data = rec.get("data") or {}
    skipped = (data.get("skipped") or {}).get("test") or []
    return (
        data.get("fingerprint"),
        (data.get("tracks") or {}).get("test"),
        tuple(sorted(str(s.get("path", s)) if isinstance(s, dict) else str(s) for s in skipped)),
    )


def _pair_key(ci: dict[str, Any] | None, tracks: tuple) -> tuple | None:
    """Two bootstrap value lists with the same key were drawn on the same resampled tracks."""
    if not ci or not ci.get("values"):
        return None
    return (ci.get("seed"), len(ci["values"]), ci.get("tracks_digest") or tracks)


def _pooled(value_lists: list[Any]) -> np.ndarray:
    """Seeds' bootstrap values averaged resample by resample (they must have one length)."""
    return np.mean(np.stack([_arr(v) for v in value_lists]), axis=0)


def _drop(clean: dict[int, dict], corr: dict[int, dict], metric: str, level: float) -> dict[str, Any]:
    """Drop clean - corrupted over the probe seeds both conditions have, with its interval."""
    seeds = sorted(set(clean) & set(corr))
    if not seeds:
        return {"drop_method": "no clean record with the same probe seed"}
    cv = [_metric(clean[s], metric) for s in seeds]
    kv = [_metric(corr[s], metric) for s in seeds]
    stored = [corr[s].get(DROP_KEY) for s in seeds]
    pk = None
    if all(d and d.get("drop") is not None for d in stored):
        point = float(np.mean([d["drop"] for d in stored]))
        keys = {_pair_key(d, _test_tracks(corr[s])) for d, s in zip(stored, seeds)}
        if None not in keys and len(keys) == 1:
            values, method, pk = _pooled([d["values"] for d in stored]), PAIRED_SCORED, keys.pop()
        else:
            values, method = None, "mean of the seeds' paired drops; no pooled interval"
            lo = float(np.mean([d["lo"] for d in stored if d.get("lo") is not None] or [np.nan]))
            hi = float(np.mean([d["hi"] for d in stored if d.get("hi") is not None] or [np.nan]))
    else:
        point = float(np.nanmean(np.subtract(cv, kv)))
        cc = [clean[s].get("confidence") for s in seeds]
        kc = [corr[s].get("confidence") for s in seeds]
        keys = {_pair_key(c, _test_tracks(clean[s])) for c, s in zip(cc, seeds)}
        keys |= {_pair_key(c, _test_tracks(corr[s])) for c, s in zip(kc, seeds)}
        if None not in keys and len(keys) == 1:
            values = _pooled([c["values"] for c in cc]) - _pooled([c["values"] for c in kc])
            method, pk = PAIRED_RECORDS, keys.pop()
        else:
            values, method = None, UNPAIRED
            se = math.hypot(_se(cc), _se(kc))
            z = _z(level)
            lo, hi = point - z * se, point + z * se
    if values is not None:
        lo, hi, _ = _percentile(values, level)
    return {
        "clean": float(np.nanmean(cv)),
        "drop": point,
        "drop_lo": lo if math.isfinite(lo) else None,
        "drop_hi": hi if math.isfinite(hi) else None,
        "drop_method": method,
        "_drop_values": values,
        "_pair_key": pk,
    }


def table(records: list[dict[str, Any]], level: float = confidence.LEVEL) -> list[dict[str, Any]]:
    """One row per encoder x task x condition (clean included): the primary metric and its drop.

    Row fields: see :data:`FIELDS` (``value``/``lo``/``hi``: mean over probe
    seeds and its pooled interval; ``drop``/``drop_lo``/``drop_hi``: the drop
    and its interval; ``significant``: ``"worse"`` or ``"better"`` when the
    interval excludes 0, else ``"n.s."``; ``skipped``: test tracks the
    condition lost). Rows are sorted by encoder, task, corruption (registry
    order) and harshness. Private fields (``_drop_values``, ``_pair_key``)
    feed :func:`summary` and :func:`compare`.
    """
    if not records:
        raise BenchError("no result records to analyse")
    recs = _dedupe(records)
    mixed = len({bool(r.get("demo_data")) for r in recs}) > 1
    groups: dict[tuple[str, str], dict[str, dict[int, dict]]] = {}
    for r in recs:
        # demo and real numbers never share a row (the leaderboard's rule)
        label = encoder_label(r) + (" (demo data)" if mixed and r.get("demo_data") else "")
        groups.setdefault((label, r["task"]), {}).setdefault(condition_of(r), {})[r["seed"]] = r
    registry = corruptions()
    order = {n: i for i, n in enumerate(registry)}
    rows = []
    for (label, task), by_cond in groups.items():
        metrics = {r["primary_metric"] for rs in by_cond.values() for r in rs.values()}
        if len(metrics) > 1:
            raise BenchError(f"records of {label} on {task} disagree on the primary metric: {sorted(metrics)}")
        metric = metrics.pop()
        fps = {(r.get("data") or {}).get("fingerprint") for rs in by_cond.values() for r in rs.values()}
        if len(fps) > 1:
            raise BenchError(
                f"records of {label} on {task} come from different data (data fingerprints "
                f"{', '.join(sorted(str(f)[:12] for f in fps))}): clean and corrupted results cannot be "
                "compared. Analyse each run on its own, or re-run on the same data."
            )
        clean = by_cond.get(CLEAN, {})
        for cond, rs in by_cond.items():
            name, strength = split_condition(cond)
            c = registry.get(name)
            vals = [_metric(r, metric) for r in rs.values()]
            lo, hi, _how = confidence.pooled_interval([r.get("confidence") for r in rs.values()], level)
            one = next(iter(rs.values()))
            row: dict[str, Any] = {
                "encoder": label,
                "task": task,
                "metric": metric,
                "condition": cond,
                "corruption": name,
                "strength": strength,
                "unit": c.unit if c else "",
                "value": float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan"),
                "lo": lo if math.isfinite(lo) else None,
                "hi": hi if math.isfinite(hi) else None,
                "clean": None, "drop": None, "drop_lo": None, "drop_hi": None, "drop_pct": None,
                "significant": None, "drop_method": None,
                "n_seeds": len(rs),
                "seeds": sorted(rs),
                "n_tracks": ((one.get("data") or {}).get("tracks") or {}).get("test"),
                "skipped": len(((one.get("data") or {}).get("skipped") or {}).get("test") or []),
                "demo_data": all(bool(r.get("demo_data")) for r in rs.values()),
                "_order": (order.get(name, -1 if cond == CLEAN else len(order)), name,
                           c.harshness(strength) if c and strength is not None else 0.0),
                "_drop_values": None,
                "_pair_key": None,
                "_identity": bool(c and strength is not None and c.identity is not None and strength == c.identity),
            }  # fmt: skip
            if cond != CLEAN and clean:
                row.update(_drop(clean, rs, metric, level))
                row["significant"] = _significance(row["drop_lo"], row["drop_hi"])
                if row["clean"] and row["drop"] is not None and math.isfinite(row["drop"]):
                    row["drop_pct"] = 100.0 * row["drop"] / row["clean"]
            elif cond != CLEAN:
                row["drop_method"] = "no clean records"
            rows.append(row)
    rows.sort(key=lambda r: (r["encoder"], r["task"], r["_order"]))
    return rows


def summary(rows: list[dict[str, Any]], by: str = "all", level: float = confidence.LEVEL) -> list[dict[str, Any]]:
    """Mean drop over the corrupted conditions of each encoder x task (identity conditions left out).

    ``by="all"``: one row per encoder x task (condition ``"mean"``);
    ``by="corruption"``: one per corruption (condition ``"<name>:mean"``, the
    mean over its strengths). The interval is paired (resample by resample)
    when every averaged drop was paired on the same tracks, else a normal
    approximation that treats the conditions as independent.
    """
    if by not in ("all", "corruption"):
        raise ValueError(f"by must be 'all' or 'corruption', got {by!r}")
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r["condition"] == CLEAN or r["_identity"] or r["drop"] is None:
            continue
        sub = "mean" if by == "all" else f"{r['corruption']}:mean"
        groups.setdefault((r["encoder"], r["task"], r["metric"], sub), []).append(r)
    out = []
    for (enc, task, metric, sub), rs in groups.items():
        keys = {r["_pair_key"] for r in rs}
        point = float(np.mean([r["drop"] for r in rs]))
        values, pk = None, None
        if None not in keys and len(keys) == 1 and all(r["_drop_values"] is not None for r in rs):
            values, pk = np.mean(np.stack([r["_drop_values"] for r in rs]), axis=0), keys.pop()
            lo, hi, _ = _percentile(values, level)
            method = "paired bootstrap over test tracks, averaged over conditions"
        else:
            se = math.sqrt(sum(_row_se(r, level) ** 2 for r in rs)) / len(rs)
            lo, hi = point - _z(level) * se, point + _z(level) * se
            method = UNPAIRED + ", conditions treated as independent"
        out.append({
            "encoder": enc, "task": task, "metric": metric, "condition": sub, "n_conditions": len(rs),
            "drop": point, "drop_lo": lo if math.isfinite(lo) else None, "drop_hi": hi if math.isfinite(hi) else None,
            "significant": _significance(lo, hi), "drop_method": method,
            "_drop_values": values, "_pair_key": pk,
        })  # fmt: skip
    return out


def compare(rows: list[dict[str, Any]], a: str, b: str, level: float = confidence.LEVEL) -> list[dict[str, Any]]:
    """Per task x condition: ``drop(a) - drop(b)`` with an interval (rows of :func:`table` or :func:`summary`).

    Negative means ``a`` lost less than ``b``. Paired over the same resampled
    test tracks when both drops were paired on the same tracks (the two
    encoders were scored on the same test set), else a normal approximation.
    ``verdict``: ``"<a> more robust"`` / ``"<b> more robust"`` when the
    interval excludes 0, else ``"inconclusive"``.
    """
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        if r["encoder"] in (a, b) and r.get("drop") is not None and r["condition"] != CLEAN:
            by_key[(r["encoder"], r["task"], r["condition"])] = r
    out = []
    for (enc, task, cond), ra in by_key.items():
        if enc != a or (b, task, cond) not in by_key:
            continue
        rb = by_key[(b, task, cond)]
        diff = ra["drop"] - rb["drop"]
        if (ra["_drop_values"] is not None and rb["_drop_values"] is not None and ra["_pair_key"] is not None
                and ra["_pair_key"] == rb["_pair_key"]):
            lo, hi, _ = _percentile(ra["_drop_values"] - rb["_drop_values"], level)
            method = "paired bootstrap over test tracks"
        else:
            se = math.hypot(_row_se(ra, level), _row_se(rb, level))
            lo, hi, method = diff - _z(level) * se, diff + _z(level) * se, UNPAIRED
        verdict = "inconclusive"
        if math.isfinite(hi) and hi < 0:
            verdict = f"{a} more robust"
        elif math.isfinite(lo) and lo > 0:
            verdict = f"{b} more robust"
        out.append({"task": task, "condition": cond, "metric": ra["metric"], "a": a, "b": b,
                    "drop_a": ra["drop"], "drop_b": rb["drop"], "diff": diff,
                    "lo": lo if math.isfinite(lo) else None, "hi": hi if math.isfinite(hi) else None,
                    "method": method, "verdict": verdict})
    return out


# --------------------------------------------------------------------------- rendering


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
    are reversed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    registry = corruptions()
    rs = [r for r in rows if r["task"] == task]
    if not rs:
        raise ValueError(f"no rows for task {task!r}")
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
        c = registry.get(name)
        ticks: set[float] = set()
        for i, enc in enumerate(encoders):
            color = colors[i % len(colors)]
            pts = sorted((r["strength"], r["value"], r["lo"], r["hi"]) for r in rs
                         if r["encoder"] == enc and r["corruption"] == name and r["strength"] is not None)
            cl = clean.get(enc)
            if cl is not None and c is not None and c.identity is not None:
                if all(p[0] != c.identity for p in pts):
                    pts = sorted(pts + [(float(c.identity), cl["value"], cl["lo"], cl["hi"])])
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
        if c is not None and c.harsher == "down":
            ax.invert_xaxis()
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(c.unit if c else "strength", fontsize=8)
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
    fig.suptitle(("DEMO DATA - " if demo else "") + _title(rows, task)
                 + " (dashed: clean, where no strength is the identity)", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def html_fragment(rows: list[dict[str, Any]], curves: dict[str, bytes] | None = None) -> str:
    """A ``<section>`` for the HTML report: per task the table and (if given) its curves as an inline PNG."""
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
    parts.append(f"<p>{html.escape(_notes(rows))}</p></section>")
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
        "html": (folder / "robustness_fragment.html", html_fragment(rows, curves)),
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


# --------------------------------------------------------------------------- small helpers


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


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
