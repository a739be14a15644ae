"""The plan ``bench run`` prints before it starts: its pairs and how long each took here before.

How an estimate is made: after a run, each (encoder, task, --limit) pair's
measured times are kept in ``<cache>/timings.json`` (embedding time, and probe
time per seed, from the records' ``timings``). The next plan estimates a pair as
that embedding time plus the probe time per seed times the seeds asked for,
rounded coarsely. A pair never run on this machine has no estimate, and the plan
says so; pretraining a trainable encoder that has no cached weights is not
estimated. Timings depend on the caches: a pair whose embeddings were cached last
time is fast again only while they still are.
"""

from __future__ import annotations

import json
import math
from typing import Any

from bench.settings import RunConfig

FILE = "timings.json"


def _path() -> Any:
    from bench.store import cache_dir

    return cache_dir() / FILE


def _key(encoder: str, task: str, limit: int | None) -> str:
    return f"{encoder}|{task}|{limit if limit is not None else 'all'}"


def _load() -> dict[str, Any]:
    try:
        doc = json.loads(_path().read_text())
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def rough(seconds: float) -> str:
    """A duration with no more precision than an estimate has."""
    if seconds < 60:
        return "under a minute"
    minutes = seconds / 60
    if minutes < 10:
        return f"about {math.ceil(minutes)} min"
    if minutes < 120:
        return f"about {round(minutes / 5) * 5} min"
    return f"about {round(minutes / 60, 1):g} h"


def describe(config: RunConfig) -> list[str]:
    """The plan's lines: one per encoder, its tasks with estimates where this machine measured them before."""
    s = config.settings
    known = _load()
    lines = [f"Plan: {len(config.encoders)} encoder(s) x {len(config.tasks)} task(s), probe seeds "
             f"{list(s.seeds)}" + (f", at most {s.limit} tracks per split (--limit)" if s.limit else "")
             + f", device {s.device}. Estimates: earlier runs of the same pair on this machine ({FILE} in the cache)."]
    total, unknown = 0.0, 0
    for enc in config.encoders:
        parts = []
        for task in config.tasks:
            t = known.get(_key(enc, task, s.limit))
            if not t:
                parts.append(f"{task} (not run here before)")
                unknown += 1
                continue
            est = float(t["extract_s"]) + float(t["probe_s_per_seed"]) * len(s.seeds)
            total += est
            parts.append(f"{task} {rough(est)}")
        lines.append(f"  {enc}: " + ", ".join(parts))
    if total:
        lines.append(f"  in all {rough(total)}" + (f", plus {unknown} pair(s) with no estimate" if unknown else "")
                     + "; pretraining, when an encoder has no cached weights, comes on top and is not estimated")
    return lines


def observe(records: list[dict[str, Any]]) -> None:
    """Keep the measured times of the pairs these records come from (reused records measured nothing)."""
    pairs: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("reused") or r.get("condition", "clean") != "clean" or "(own head)" in str(r.get("variant")):
            continue
        pairs.setdefault(_key(r["encoder"], r["task"], r.get("limit")), []).append(r)
    if not pairs:
        return
    doc = _load()
    for key, rs in pairs.items():
        timings = [r.get("timings") or {} for r in rs]
        probe = [float(t.get("probe_s") or 0.0) for t in timings]
        doc[key] = {"extract_s": max(float(t.get("extract_s") or 0.0) for t in timings),
                    "probe_s_per_seed": sum(probe) / len(probe), "seeds": len(rs),
                    "created": rs[-1].get("created")}
    try:
        from bench.store import atomic_write

        _path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write(_path(), json.dumps(doc, indent=2, sort_keys=True) + "\n")
    except OSError:
        pass  # an estimate for next time is never worth failing a run
