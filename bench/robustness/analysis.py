"""Records -> rows: the metric and its drop per encoder x task x condition, summaries, A-vs-B comparison."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from bench import confidence
from bench.corruptions import CLEAN, corruptions
from bench.errors import BenchError
from bench.robustness.stats import (DROP_KEY, PAIRED_RECORDS, PAIRED_SCORED, UNPAIRED, _metric, _percentile,
                                    _pooled, _row_se, _se, _significance, _z)


def encoder_label(rec: dict[str, Any]) -> str:
    """The row label of a record: the encoder, with its variant in brackets when it has one."""
    variant, name = rec.get("variant"), str(rec["encoder"])
    if isinstance(variant, dict):
        variant = ",".join(f"{k}={variant[k]}" for k in sorted(variant))
    if not variant:
        return name
    # the run writes the whole row label ("semisupcon[label_fraction=0.05]", or just "logmel")
    if variant == name or str(variant).startswith(name + "["):
        return str(variant)
    return f"{name}[{variant}]"


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
        k = (encoder_label(r), r["task"], condition_of(r), r["seed"], pt_seed(r))
        if k in out:
            older, newer = sorted([out[k], r], key=lambda x: str(x.get("created", "")))
            pts = "" if k[4] is None else f" (pretraining seed {k[4]})"
            print(f"warning: {k[0]} x {k[1]} x {k[2]} seed {k[3]}{pts} appears twice; keeping the newer record "
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


def pt_seed(rec: dict[str, Any]) -> Any:
    """The record's pretraining seed (``pretraining.seed``); None: one unnamed seed."""
    return (rec.get("pretraining") or {}).get("seed")


def _key(rec: dict[str, Any]) -> tuple[str, int]:
    """A record's seeds within its row: (pretraining seed as text, "" for none; probe seed)."""
    p = pt_seed(rec)
    return ("" if p is None else str(p), rec["seed"])


def _by_pt(seeds: list[tuple[str, int]], values: list[np.ndarray], points: list[float]
           ) -> tuple[np.ndarray, np.ndarray] | None:
    """Per pretraining seed, its probe seeds' drop values and drops averaged: ``(M [S, B], points [S])``;
    None with one pretraining seed (the interval is then the paired bootstrap of before)."""
    groups: dict[str, list[int]] = {}
    for i, (p, _) in enumerate(seeds):
        groups.setdefault(p, []).append(i)
    if len(groups) < 2:
        return None
    M = np.stack([np.mean(np.stack([values[i] for i in ix]), axis=0) for ix in groups.values()])
    return M, np.array([np.mean([points[i] for i in ix]) for ix in groups.values()])


def _multi(sides: list[tuple[tuple[np.ndarray, np.ndarray] | None, Any, float, float]], level: float
           ) -> tuple[float, float] | None:
    """The multi-bootstrap interval of ``sum(sign * drop)`` when a side pools 2+ pretraining seeds, else None.

    ``sides``: (per-seed drops or None, the pooled drop values, the drop, sign);
    a side of one seed enters as its pooled values (one row).
    """
    if all(sd is None for sd, _, _, _ in sides):
        return None
    args = []
    for sd, values, point, sign in sides:
        if sd is None:
            args.append((np.asarray(values)[None, :], np.array([point]), sign))
        else:
            args.append((sd[0], sd[1], sign))
    res = confidence.multi_bootstrap(args, level)
    return res["lo"], res["hi"]


def _drop(clean: dict[Any, dict], corr: dict[Any, dict], metric: str, level: float) -> dict[str, Any]:
    """Drop clean - corrupted over the (pretraining, probe) seeds both conditions have, with its interval."""
    seeds = sorted(set(clean) & set(corr))
    seed_drops = None
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
            per = [_pooled([d["values"]]) for d in stored]
            seed_drops = _by_pt(seeds, per, [d["drop"] for d in stored])
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
            per = [_pooled([c["values"]]) - _pooled([k["values"]]) for c, k in zip(cc, kc)]
            seed_drops = _by_pt(seeds, per, list(np.subtract(cv, kv)))
        else:
            values, method = None, UNPAIRED
            se = math.hypot(_se(cc), _se(kc))
            z = _z(level)
            lo, hi = point - z * se, point + z * se
    if values is not None:
        lo, hi, _ = _percentile(values, level)
        multi = _multi([(seed_drops, values, point, 1.0)], level)
        if multi is not None:
            (lo, hi), method = multi, f"{method}; {confidence.MULTI_METHOD}"
    return {
        "clean": float(np.nanmean(cv)),
        "drop": point,
        "drop_lo": lo if math.isfinite(lo) else None,
        "drop_hi": hi if math.isfinite(hi) else None,
        "drop_method": method,
        "_drop_values": values,
        "_pair_key": pk,
        "_seed_drops": seed_drops,
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
        groups.setdefault((label, r["task"]), {}).setdefault(condition_of(r), {})[_key(r)] = r
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
            by_pt: dict[str, list[dict[str, Any]]] = {}
            for k in sorted(rs):
                by_pt.setdefault(k[0], []).append(rs[k].get("confidence"))
            lo, hi, _how = confidence.multi_interval(list(by_pt.values()), level)
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
                "seeds": [k[1] for k in sorted(rs)],
                "n_tracks": ((one.get("data") or {}).get("tracks") or {}).get("test"),
                "skipped": len(((one.get("data") or {}).get("skipped") or {}).get("test") or []),
                "demo_data": all(bool(r.get("demo_data")) for r in rs.values()),
                "_order": (order.get(name, -1 if cond == CLEAN else len(order)), name,
                           c.harshness(strength) if c and strength is not None else 0.0),
                "_drop_values": None,
                "_pair_key": None,
                "_seed_drops": None,
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


def _mean_seed_drops(rs: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-pretraining-seed drops averaged over conditions (one checkpoint per seed under every condition);
    None unless every row has the same number of pretraining seeds, 2+."""
    sds = [r.get("_seed_drops") for r in rs]
    if any(sd is None for sd in sds) or len({sd[0].shape for sd in sds}) != 1:
        return None
    return np.mean(np.stack([sd[0] for sd in sds]), axis=0), np.mean(np.stack([sd[1] for sd in sds]), axis=0)


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
        values, pk, seed_drops = None, None, None
        if None not in keys and len(keys) == 1 and all(r["_drop_values"] is not None for r in rs):
            values, pk = np.mean(np.stack([r["_drop_values"] for r in rs]), axis=0), keys.pop()
            lo, hi, _ = _percentile(values, level)
            method = "paired bootstrap over test tracks, averaged over conditions"
            seed_drops = _mean_seed_drops(rs)
            multi = _multi([(seed_drops, values, point, 1.0)], level)
            if multi is not None:
                (lo, hi), method = multi, f"{method}; {confidence.MULTI_METHOD}"
        else:
            se = math.sqrt(sum(_row_se(r, level) ** 2 for r in rs)) / len(rs)
            lo, hi = point - _z(level) * se, point + _z(level) * se
            method = UNPAIRED + ", conditions treated as independent"
        out.append({
            "encoder": enc, "task": task, "metric": metric, "condition": sub, "n_conditions": len(rs),
            "drop": point, "drop_lo": lo if math.isfinite(lo) else None, "drop_hi": hi if math.isfinite(hi) else None,
            "significant": _significance(lo, hi), "drop_method": method,
            "_drop_values": values, "_pair_key": pk, "_seed_drops": seed_drops if values is not None else None,
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
            multi = _multi([(ra.get("_seed_drops"), ra["_drop_values"], ra["drop"], 1.0),
                            (rb.get("_seed_drops"), rb["_drop_values"], rb["drop"], -1.0)], level)
            if multi is not None:  # pretraining seeds resampled per encoder, the tracks shared
                (lo, hi), method = multi, f"paired {confidence.MULTI_METHOD}"
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
