"""The verdict of a claim, decided by intervals of differences, never by point estimates alone.

A claim is checked through comparisons (:class:`Spec`): variant A against
variant B on one task, either on the primary metric (``kind="metric"``: A
should score higher) or on the drop under corruption (``kind="drop"``: the
mean over the corrupted conditions of clean - corrupted; A should lose less).
Each comparison gives the difference A - B (for drops, drop(A) - drop(B)) and
its 95% interval (:func:`compare_metric`, :func:`compare_drop`):

- *paired*, when both sides were scored on the same test tracks with the same
  bootstrap resamples (same data fingerprint, number of test tracks, skipped
  files, bootstrap seed): the seeds of each side are averaged resample by
  resample and the interval is the 2.5 / 97.5 percentiles of the resample-wise
  differences (for drops: :func:`bench.robustness.compare`, which pairs the
  drops the same way);
- otherwise *unpaired*: the difference counts only when the two sides' own
  intervals do not overlap (the interval shown is [lo(A) - hi(B), hi(A) - lo(B)],
  which excludes 0 exactly then).

Each comparison's outcome is ``favours`` (the interval excludes 0 on the
claim's side), ``against`` (it excludes 0 on the other side), ``unclear``
(it contains 0) or ``missing`` (not measured). :data:`RULE` turns the outcomes
of the comparisons a claim counts into its verdict (:func:`verdict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
FAVOURS, AGAINST, UNCLEAR, MISSING = "favours", "against", "unclear", "missing"

RULE = ("A claim **holds** when every comparison it counts favours it with a 95% interval of the difference that "
        "excludes 0; it **does not hold** when at least one counted comparison goes against it with an interval "
        "that excludes 0; otherwise (an interval that contains 0, or a comparison that was not measured) it is "
        "**inconclusive**. Differences are paired over the same test tracks (bootstrap resamples over test tracks, "
        "probe seeds averaged resample by resample) when both sides were scored on the same tracks; with several "
        "pretraining seeds the interval is a multi-bootstrap over pretraining seeds and test tracks together (seeds "
        "resampled per side, widened for few seeds); otherwise two sides differ only when their own 95% intervals "
        "do not overlap. Point estimates alone never decide.")


@dataclass(frozen=True)
class Spec:
    """One comparison: variant ``a`` against ``b`` on ``task`` (``kind``: "metric" or "drop")."""

    a: str
    b: str
    task: str
    kind: str = "metric"
    #: counted in the verdict; False = context shown in the evidence table only
    counted: bool = True
    note: str = ""


@dataclass
class Evidence:
    spec: Spec
    metric: str = ""
    a_value: float | None = None
    b_value: float | None = None
    diff: float | None = None
    lo: float | None = None
    hi: float | None = None
    method: str = ""
    outcome: str = MISSING
    detail: str = ""
    #: pretraining seeds of A and of B (1 = one checkpoint)
    n_pt: tuple[int, int] = (1, 1)

    @property
    def detectable(self) -> float | None:
        """The smallest difference this comparison's interval could have told from 0: its half-width
        (:func:`bench.confidence.min_detectable`)."""
        from bench.confidence import min_detectable

        return min_detectable(self.lo, self.hi)


@dataclass
class Claim:
    """A claim of the paper: its number, the claim in one sentence, the comparisons that decide it."""

    number: int
    sentence: str
    specs: list[Spec] = field(default_factory=list)
    #: how the evidence answers the claim (shown under its table)
    reading: str = ""


def _label(r: dict[str, Any]) -> str:
    return str(r.get("variant") or r["encoder"])


def _clean(records: list[dict[str, Any]], label: str, task: str) -> dict[Any, list[dict[str, Any]]]:
    """The clean records of ``label`` on ``task``, per pretraining seed (None: one unnamed seed), by probe seed."""
    from bench.leaderboard import pt_seed

    out: dict[Any, dict[int, dict[str, Any]]] = {}
    for r in records:
        if _label(r) == label and r["task"] == task and (r.get("condition") or "clean") == "clean":
            out.setdefault(pt_seed(r), {})[r["seed"]] = r
    return {p: [out[p][s] for s in sorted(out[p])] for p in sorted(out, key=str)}


def _tracks(r: dict[str, Any]) -> tuple:
    """What fixes a record's bootstrap resamples: its test tracks and the bootstrap seed."""
    data = r.get("data") or {}
    skipped = sorted(str(s.get("track_id", s)) if isinstance(s, dict) else str(s)
                     for s in (data.get("skipped") or {}).get("test") or [])
    return (data.get("fingerprint"), (data.get("tracks") or {}).get("test"), tuple(skipped),
            (r.get("confidence") or {}).get("seed"))


def _outcome(lo: float | None, hi: float | None, higher_is_claimed: bool = True) -> str:
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return UNCLEAR
    if lo > 0:
        return FAVOURS if higher_is_claimed else AGAINST
    if hi < 0:
        return AGAINST if higher_is_claimed else FAVOURS
    return UNCLEAR


def compare_metric(records: list[dict[str, Any]], spec: Spec) -> Evidence:
    """A's primary metric minus B's on ``spec.task`` (clean test audio), with its interval and outcome.

    Each side pools its pretraining seeds (mean over pretraining seeds of the
    probe-seed means); the interval is the multi-bootstrap of the difference
    (:func:`bench.confidence.multi_difference`), paired over the test tracks.
    """
    import numpy as np

    from bench.confidence import multi_difference, multi_interval

    ev = Evidence(spec)
    a, b = _clean(records, spec.a, spec.task), _clean(records, spec.b, spec.task)
    if not a or not b:
        ev.detail = (f"not measured: no clean records of {' or '.join(x for x, rs in ((spec.a, a), (spec.b, b)) if not rs)}"
                     f" on {spec.task}")
        return ev
    metric = next(iter(a.values()))[0]["primary_metric"]
    ev.metric = metric

    def value(groups: dict[Any, list[dict[str, Any]]]) -> float:
        return float(np.mean([np.mean([float(r["metrics"].get(metric, float("nan"))) for r in rs])
                              for rs in groups.values()]))

    ev.a_value, ev.b_value = value(a), value(b)
    ev.diff = ev.a_value - ev.b_value
    ev.n_pt = (len(a), len(b))
    both = [r for g in (a, b) for rs in g.values() for r in rs]
    ga = [[r.get("confidence") for r in rs] for rs in a.values()]
    gb = [[r.get("confidence") for r in rs] for rs in b.values()]
    res = None
    if len({_tracks(r) for r in both}) == 1:
        res = multi_difference(ga, gb)
    if res is not None and res["lo"] == res["lo"] and res["hi"] == res["hi"]:
        ev.lo, ev.hi = res["lo"], res["hi"]
        n_tracks = both[0]["data"]["tracks"]["test"]
        if max(ev.n_pt) > 1:
            ev.method = (f"paired {res['method']} ({n_tracks} test tracks; pretraining seeds {len(a)} / {len(b)}, "
                         "resampled independently per side)")
        else:
            ev.method = f"paired bootstrap over the same {n_tracks} test tracks"
    else:
        la, ha, _ = multi_interval(ga)
        lb, hb, _ = multi_interval(gb)
        ev.lo, ev.hi = la - hb, ha - lb
        ev.method = "unpaired: the two 95% intervals must not overlap"
    ev.outcome = _outcome(ev.lo, ev.hi)
    return ev


def compare_drop(records: list[dict[str, Any]], spec: Spec) -> Evidence:
    """drop(A) - drop(B) on ``spec.task``, averaged over the corrupted conditions both were tested under.

    Negative favours the claim (A loses less). Computed by
    :func:`bench.robustness.summary` and :func:`bench.robustness.compare`.
    """
    from bench import robustness
    from bench.errors import BenchError
    from bench.leaderboard import pt_seed

    ev = Evidence(spec)
    mine = [r for r in records if _label(r) in (spec.a, spec.b) and r["task"] == spec.task]
    conds = {lab: {r.get("condition") or "clean" for r in mine if _label(r) == lab} - {"clean"}
             for lab in (spec.a, spec.b)}
    shared = conds[spec.a] & conds[spec.b]
    if not shared:
        ev.detail = "not measured: no corrupted condition tested for both"
        return ev
    mine = [r for r in mine if (r.get("condition") or "clean") in shared | {"clean"}]
    try:
        rows = robustness.table(mine)
    except BenchError as exc:
        ev.detail = f"not comparable: {exc}"
        return ev
    summary = robustness.summary(rows)
    out = [c for c in robustness.compare(summary, spec.a, spec.b) if c["task"] == spec.task]
    if not out:
        ev.detail = "not measured: no drop could be computed"
        return ev
    c = out[0]
    ev.metric = f"mean drop of {c['metric']} over {len(shared)} condition(s)"
    ev.a_value, ev.b_value, ev.diff, ev.lo, ev.hi = c["drop_a"], c["drop_b"], c["diff"], c["lo"], c["hi"]
    ev.method = c["method"]
    ev.n_pt = tuple(len({str(pt_seed(r)) for r in mine if _label(r) == lab}) for lab in (spec.a, spec.b))
    ev.outcome = _outcome(ev.lo, ev.hi, higher_is_claimed=False)
    return ev


def evidence(records: list[dict[str, Any]], claim: Claim) -> list[Evidence]:
    """Every comparison of ``claim`` measured on ``records``."""
    return [compare_drop(records, s) if s.kind == "drop" else compare_metric(records, s) for s in claim.specs]


def verdict(items: list[Evidence]) -> str:
    """:data:`RULE` applied to the counted comparisons."""
    counted = [e.outcome for e in items if e.spec.counted]
    if not counted:
        return INCONCLUSIVE
    if AGAINST in counted:
        return DOES_NOT_HOLD
    if all(o == FAVOURS for o in counted):
        return HOLDS
    return INCONCLUSIVE
