"""`bench compare`: gate CI on scores not falling against a committed baseline.

CURRENT and BASELINE are each a results folder (records are read and
summarised like the leaderboard does) or a JSON file with baseline ``entries``:
a baseline file written by ``bench compare RESULTS --write-baseline FILE`` or a
``leaderboard.json`` (it embeds the same entries). Format of a baseline file::

    {"format": "bench-baseline", "format_version": 1, "schema_version": 1,
     "demo_data": true, "created": "...",
     "entries": [{"encoder": "logmel", "task": "nsynth_pitch", "metric": "accuracy",
                  "mean": 0.29, "lo": 0.22, "hi": 0.36, "std": 0.01, "n_seeds": 3,
                  "demo_data": true, "data_fingerprint": "...", "interval": "..."}]}

Per (encoder, task, condition) the primary metric's mean is compared (the
encoder is the row's variant label, e.g. ``semisupcon[label_fraction=0.05]``;
the condition is ``clean``, or a corruption such as ``reverb@0.5`` from
``bench robustness``, so a CI job can gate robustness too; an entry without a
condition, as older baselines have, is ``clean``): the pair fails
("regressed") when it fell by more than ``--tolerance`` (absolute), or with
``--below-interval`` when it is below the baseline's interval lower bound. A
pair only in CURRENT is "new" (never a failure); a pair only in BASELINE is
"missing" and fails unless ``--allow-missing``. Exit status: 0 pass, 1 fail,
2 unusable input (the message names the file and what to do).

Comparing demo numbers against a real-data baseline (or the reverse), a
score against one measured under another probing protocol (``--protocol``;
an entry without one is ``bench``), or files of another schema version, is
refused: such a delta means nothing.

The gate cannot pass on nothing: a baseline mean that is NaN, null or not a
number is unusable input (exit 2, naming the file and the entry); a current
mean that is NaN or null (the metric was undefined) is a regression (exit 1);
``--write-baseline`` refuses results with an undefined primary metric; a
``--tolerance`` that is NaN, infinite or negative is refused.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.corruptions import CLEAN
from bench.errors import BenchError

EXIT_PASS = 0
EXIT_FAIL = 1


def load_entries(path: Path, role: str = "baseline") -> dict[str, Any]:
    """A baseline-shaped document from a results folder, a record file set, or a baseline/leaderboard JSON.

    ``role`` is ``"baseline"`` (every mean must be a finite number) or
    ``"current"`` (a NaN or null mean is allowed: :func:`compare` fails it).
    Raises BenchError naming the file and entry for anything else.
    """
    from bench import leaderboard
    from bench.results import SCHEMA_VERSION, read_records

    path = Path(path)
    if path.is_dir():
        records = read_records([path])
        if not records:
            raise BenchError(f"{path}: no result records found (expected records/*.json from `bench run`)")
        _refuse_limited(path, records)
        doc = leaderboard.baseline(records)
        _attach_data(doc, records)
        doc["_newest"] = max((str(r.get("created") or "") for r in records), default="")
    elif path.is_file():
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BenchError(f"{path}: not a readable JSON file ({exc})") from None
        if not isinstance(doc, dict) or "entries" not in doc:
            if isinstance(doc, dict) and "schema_version" in doc and "encoder" in doc:
                records = read_records([path])
                _refuse_limited(path, records)
                doc = leaderboard.baseline(records)
            else:
                raise BenchError(
                    f"{path}: not a baseline file (no 'entries'). Write one with "
                    f"`bench compare RESULTS_DIR --write-baseline {path.name}`, or pass a results folder "
                    "or its leaderboard.json."
                )
    else:
        raise BenchError(f"{path} does not exist (expected a results folder or a baseline JSON file)")
    if doc.get("limited"):
        raise BenchError(f"{path}: made from `bench run --limit` records (a few tracks per split); their scores "
                         "cannot pass or set a gate. Run again without --limit.")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise BenchError(
            f"{path}: written for record schema version {doc.get('schema_version')}, this bench uses "
            f"{SCHEMA_VERSION}. Regenerate it with this version (`bench compare RESULTS --write-baseline FILE`)."
        )
    if not isinstance(doc.get("entries"), list):
        raise BenchError(f"{path}: 'entries' is not a list. Regenerate it with `bench compare RESULTS "
                         "--write-baseline FILE`.")
    for i, e in enumerate(doc["entries"]):
        _check_entry(path, i, e, role)
    doc["_source"] = str(path)
    doc.setdefault("_newest", str(doc.get("created") or ""))
    return doc


def _refuse_limited(path: Path, records: list[dict[str, Any]]) -> None:
    """Records of ``bench run --limit N`` scored a few tracks per split: never a gate's current side or baseline."""
    limited = sorted({f"{r.get('encoder')} x {r.get('task')} (limit {r['limit']})" for r in records
                      if r.get("limit") is not None})
    if limited:
        raise BenchError(
            f"{path}: {len(limited)} pair(s) were run with `bench run --limit`, on a few tracks per split: "
            f"{', '.join(limited[:5])}{' ...' if len(limited) > 5 else ''}. Their scores cannot pass or set a "
            "gate; run them again without --limit.")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_entry(path: Path, i: int, e: Any, role: str) -> None:
    """Raise BenchError when entry ``i`` of ``path`` cannot be compared (see :func:`load_entries`)."""
    regen = "Regenerate the file (`bench compare RESULTS --write-baseline FILE`) or fix that entry."
    if not isinstance(e, dict):
        raise BenchError(f"{path}: entry {i} is {type(e).__name__}, not an object. {regen}")
    missing = sorted({"encoder", "task", "mean"} - set(e))
    if missing:
        raise BenchError(f"{path}: entry {i} lacks {missing}: {json.dumps(e)[:200]}. {regen}")
    name = f"entry {i} ({e['encoder']} x {e['task']})"
    if not isinstance(e["encoder"], str) or not isinstance(e["task"], str):
        raise BenchError(f"{path}: {name}: encoder and task must be strings. {regen}")
    for field in ("mean", "lo", "hi", "std"):
        v = e.get(field)
        if v is not None and not _number(v):
            raise BenchError(f"{path}: {name}: {field} is {v!r}, not a number. {regen}")
    if role == "baseline" and not (_number(e["mean"]) and math.isfinite(e["mean"])):
        raise BenchError(
            f"{path}: {name}: the baseline mean is {e['mean']!r}, not a finite number, so any result would "
            "pass against it. Make the baseline from results whose primary metric is defined "
            "(`bench compare RESULTS --write-baseline FILE`), or remove that entry."
        )


def compare(current: dict[str, Any], base: dict[str, Any], *, tolerance: float = 0.01,
            below_interval: bool = False, allow_missing: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """Rows of (encoder, task, metric, baseline, current, delta, status) and whether the gate passes."""
    if bool(current.get("demo_data")) != bool(base.get("demo_data")):
        kind = lambda d: "demo data" if d.get("demo_data") else "real data"  # noqa: E731
        raise BenchError(
            f"{current['_source']} is on {kind(current)} but the baseline {base['_source']} is on {kind(base)}; "
            "their scores cannot be compared. Use a baseline made from the same kind of data."
        )
    _check_protocols(current, base)
    cur = {entry_key(e): e for e in current["entries"]}
    ref = {entry_key(e): e for e in base["entries"]}
    rows, ok = [], True
    for key in sorted(set(cur) | set(ref), key=lambda k: (k[2] != CLEAN, k)):
        c, b = cur.get(key), ref.get(key)
        row = {"encoder": key[0], "task": key[1], "condition": key[2], "metric": (c or b).get("metric", ""),
               "baseline": b["mean"] if b else None, "current": c["mean"] if c else None,
               "delta": None, "baseline_lo": b.get("lo") if b else None, "status": "", "note": ""}
        if b is None:
            row["status"] = "new"
        elif c is None:
            row["status"] = "missing"
            ok = ok and allow_missing
            if allow_missing:
                row["note"] = "allowed (--allow-missing)"
        else:
            if c.get("metric") and b.get("metric") and c["metric"] != b["metric"]:
                raise BenchError(f"{' x '.join(key)}: the primary metric is {c['metric']} now but "
                                 f"{b['metric']} in the baseline {base['_source']}; regenerate the baseline.")
            cm, bm = _f(c["mean"]), _f(b["mean"])
            delta = cm - bm
            row["delta"] = delta
            if math.isnan(cm):
                row["status"], fail = "regressed", True
                row["note"] = "current value is undefined (NaN)"
            elif below_interval:
                lo = _f(b.get("lo"))
                if math.isnan(lo):
                    raise BenchError(f"{base['_source']}: {key[0]} x {key[1]} has no interval; "
                                     "compare with --tolerance instead of --below-interval.")
                fail = cm < lo
                row["status"] = "below-interval" if fail else ("improved" if delta > 0 else "ok")
            else:
                fail = delta < -tolerance
                row["status"] = "regressed" if fail else ("improved" if delta > tolerance else "ok")
            ok = ok and not fail
            if c.get("data_fingerprint") and b.get("data_fingerprint") and \
                    c["data_fingerprint"] != b["data_fingerprint"]:
                row["note"] = (row["note"] + "; " if row["note"] else "") + data_difference(c, b, base["_source"])
        rows.append(row)
    return rows, ok


def entry_protocol(e: dict[str, Any]) -> str:
    """The probing protocol of an entry; an entry without one (older files) was measured under ``bench``."""
    return str(e.get("protocol") or "bench")


def _check_protocols(current: dict[str, Any], base: dict[str, Any]) -> None:
    """Refuse a (variant, task, condition) scored under one protocol in CURRENT and another in BASELINE.

    A score depends on its probing protocol (bench.protocols: crops, heads, patience, metric settings),
    so such a delta measures the protocol change, not the encoder.
    """
    ref = {entry_key(e): entry_protocol(e) for e in base["entries"]}
    for e in current["entries"]:
        key = entry_key(e)
        if key in ref and ref[key] != entry_protocol(e):
            raise BenchError(
                f"{' x '.join(key)}: scored under the probing protocol {entry_protocol(e)!r} in "
                f"{current['_source']} but {ref[key]!r} in the baseline {base['_source']}; scores of different "
                f"protocols cannot be compared. Run with `--protocol {ref[key]}`, or write a baseline under "
                f"this protocol (`bench compare RESULTS --write-baseline FILE`)."
            )


def entry_key(e: dict[str, Any]) -> tuple[str, str, str]:
    """(variant, task, condition) of a baseline entry; an entry without a condition (older files) is clean."""
    return str(e["encoder"]), str(e["task"]), str(e.get("condition") or CLEAN)


def _f(v: Any) -> float:
    return float("nan") if v is None else float(v)


def format_table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    def num(v: Any, sign: bool = False) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return f"{v:+.4f}" if sign else f"{v:.4f}"

    # the condition column appears when something was measured under a corruption
    conds = any(r.get("condition", CLEAN) != CLEAN for r in rows)
    table = [[r["encoder"], r["task"], *([r.get("condition", CLEAN)] if conds else []), r["metric"],
              num(r["baseline"]), num(r["current"]), num(r["delta"], True), r["status"], r["note"]] for r in rows]
    headers = ["encoder", "task", *(["condition"] if conds else []), "metric", "baseline", "current", "delta",
               "status", "note"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def write_baseline(source: Path, out: Path) -> dict[str, Any]:
    """Write the baseline file of a results folder (atomically)."""
    doc = load_entries(source, role="current")
    undefined = [f"{e['encoder']} x {e['task']}" for e in doc["entries"]
                 if e["mean"] is None or not math.isfinite(e["mean"])]
    if undefined:
        raise BenchError(
            f"{source}: refusing to write a baseline: the primary metric is undefined (NaN or null) for "
            f"{', '.join(undefined)}. A baseline of NaN lets every later result pass; fix or re-run those "
            "pairs first (the records say why, e.g. a class absent from the test split)."
        )
    doc.pop("_source", None)
    doc.pop("_newest", None)
    for k in ("title", "notes", "rows", "summary"):  # a leaderboard.json source: keep the baseline part
        doc.pop(k, None)
    from bench.store import atomic_write

    atomic_write(out, json.dumps(doc, indent=2) + "\n")
    return doc


# -- what differs, and arguments given the wrong way round -----------------------------------------------


def _attach_data(doc: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Give each entry the data details of its records (per-split fingerprints and track counts, task
    settings), so that a later comparison can say which split differs, not only that the data does."""
    detail: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        d = r.get("data") or {}
        if d.get("fingerprint"):
            detail.setdefault((str(r.get("task")), d["fingerprint"]), {
                k: v for k, v in (("split_fingerprints", d.get("split_fingerprints")), ("tracks", d.get("tracks")),
                                  ("task_settings", r.get("task_settings"))) if v})
    for e in doc["entries"]:
        found = detail.get((str(e.get("task")), e.get("data_fingerprint")))
        if found:
            e["data"] = found


def data_difference(c: dict[str, Any], b: dict[str, Any], base_source: str) -> str:
    """'data differs from the baseline's: ...' naming the splits (with track counts) and task settings that
    differ, or saying that the baseline records only the combined fingerprint."""
    cd, bd = c.get("data") or {}, b.get("data") or {}
    parts = []
    cs, bs = cd.get("split_fingerprints") or {}, bd.get("split_fingerprints") or {}
    ct, bt = cd.get("tracks") or {}, bd.get("tracks") or {}
    if cd and bd:
        for split in ("train", "valid", "test"):
            if cs.get(split) != bs.get(split) or ct.get(split) != bt.get(split):
                same = ct.get(split) == bt.get(split)
                parts.append(f"{split} split ({ct.get(split)} tracks, as in the baseline: contents or labels differ)"
                             if same else f"{split} split ({ct.get(split)} tracks vs {bt.get(split)})")
        cset, bset = cd.get("task_settings") or {}, bd.get("task_settings") or {}
        parts += [f"task setting {k} = {cset.get(k)!r} vs {bset.get(k)!r}" for k in sorted(set(cset) | set(bset))
                  if cset.get(k) != bset.get(k)]
    if not parts:
        fp = lambda e: str(e.get("data_fingerprint"))[:12]  # noqa: E731
        return (f"data differs from the baseline's (fingerprint {fp(c)} vs {fp(b)}; {base_source} records no "
                "per-split detail: a baseline written by `--write-baseline` now does)")
    return "data differs from the baseline's: " + "; ".join(parts)


def is_baseline_file(path: Path) -> bool:
    """A baseline file written by ``--write-baseline`` (not a results folder or a leaderboard.json)."""
    if not Path(path).is_file():
        return False
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == "bench-baseline"


def order_problem(current: Path, baseline: Path) -> str | None:
    """A refusal when CURRENT is a baseline file and BASELINE a results folder: the arguments are swapped."""
    if is_baseline_file(current) and Path(baseline).is_dir():
        return (f"the arguments look swapped: CURRENT ({current}) is a baseline file and BASELINE ({baseline}) "
                f"a results folder. bench compare takes the new results first: `bench compare {baseline} {current}`")
    return None


def order_warning(current: dict[str, Any], base: dict[str, Any]) -> str | None:
    """A warning when the baseline's results are newer than the current ones (swapped arguments?)."""
    from datetime import datetime

    def when(doc: dict[str, Any]) -> datetime | None:
        try:
            return datetime.strptime(doc.get("_newest") or "", "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            return None

    c, b = when(current), when(base)
    if c and b and b > c:
        return (f"warning: the baseline {base['_source']} ({b:%Y-%m-%d %H:%M}) is newer than the current results "
                f"{current['_source']} ({c:%Y-%m-%d %H:%M}); bench compare takes CURRENT first. Are the arguments "
                "swapped?")
    return None
