"""Published reference numbers, shown as extra leaderboard rows marked "published" (``--reference NAME``).

A published number is comparable only with a score measured the same way on
the same data. So reference rows are added to a task column only when that
column holds records of real data (never the generated demo data) scored
under the reference's protocol (:mod:`bench.protocols`); otherwise the table
says why they were left out. The values are copied from their sources as
fractions (89.5 -> 0.895); they are never computed here.

- ``marble``: MARBLE v1 (Yuan et al., NeurIPS 2023 Datasets and Benchmarks
  track), Table 3, frozen-encoder probes; protocol ``marble``.
- ``clmr``: the CLMR README (github.com/Spijkervet/CLMR, "Results /
  MagnaTagATune"); CLMR's linear evaluation trains on one random crop per
  track and averages chunk outputs over the test track, closest to the
  ``semisupcon`` protocol (SemiSupCon's probe derives from it;
  docs/protocols.md lists the differences).

This module imports neither torch nor numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reference:
    """Published rows: model -> task -> metric -> value, with where they come from."""

    name: str
    source: str
    protocol: str
    rows: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    note: str = ""


def _marble(mtat: tuple[float, float], gs: float, gtzan: float, nsynth: float) -> dict[str, dict[str, float]]:
    return {"mtat": {"roc_auc": mtat[0] / 100, "average_precision": mtat[1] / 100},
            "giantsteps_key": {"weighted_score": gs / 100}, "gtzan": {"accuracy": gtzan / 100},
            "nsynth_pitch": {"accuracy": nsynth / 100}}


REFERENCES: dict[str, Reference] = {
    "marble": Reference(
        name="marble",
        source="MARBLE v1: Yuan et al., NeurIPS 2023 Datasets and Benchmarks track, Table 3",
        protocol="marble",
        rows={
            "CLMR": _marble((89.5, 36.0), 14.8, 65.2, 47.0),
            "MusiCNN": _marble((90.3, 37.8), 14.4, 73.5, 64.1),
            "MERT-v1-95M": _marble((91.0, 39.3), 63.5, 74.8, 92.6),
            "Jukebox-5B": _marble((91.4, 40.6), 63.8, 77.9, 91.6),
        },
    ),
    "clmr": Reference(
        name="clmr",
        source="CLMR's README, Results / MagnaTagATune (github.com/Spijkervet/CLMR)",
        protocol="semisupcon",
        rows={
            "CLMR SampleCNN, linear head": {"mtat": {"roc_auc": 0.887, "average_precision": 0.356}},
            "CLMR SampleCNN, MLP head": {"mtat": {"roc_auc": 0.893, "average_precision": 0.360}},
            "SampleCNN fully supervised": {"mtat": {"roc_auc": 0.886, "average_precision": 0.344}},
        },
        note="CLMR's own evaluation, closest to the semisupcon protocol (not identical: docs/protocols.md)",
    ),
}

NAMES: tuple[str, ...] = tuple(REFERENCES)
SUFFIX = " (published)"


def get(name: str) -> Reference:
    from bench.errors import BenchError

    if name not in REFERENCES:
        raise BenchError(f"unknown reference {name!r}; known: {', '.join(NAMES)}")
    return REFERENCES[name]


def eligible_tasks(ref: Reference, records: list[dict[str, Any]]) -> tuple[set[str], list[str]]:
    """The task columns that may show ``ref``'s rows, and why each other column of ``ref`` may not."""
    from bench.protocols import of_record

    tasks = {t for rows in ref.rows.values() for t in rows}
    ok, why = set(), []
    for task in sorted(tasks):
        recs = [r for r in records if r["task"] == task]
        if not recs:
            continue
        real = [r for r in recs if not r.get("demo_data")]
        if not real:
            why.append(f"{task}: demo data (published numbers are shown only beside real-data records)")
            continue
        protos = sorted({of_record(r) for r in real})
        if protos != [ref.protocol]:
            why.append(f"{task}: scored under protocol {', '.join(protos)}, the {ref.name} numbers under "
                       f"{ref.protocol} (run with --protocol {ref.protocol})")
            continue
        ok.add(task)
    return ok, why


def add_rows(df: Any, ref: Reference, tasks: set[str], primary: dict[str, str]) -> Any:
    """``df`` (the wide leaderboard table) with one row per published model, in the columns of ``tasks``.

    ``primary``: each task's primary metric (its column is named by the task; other metrics are
    ``"<task> <metric>"``). A value whose column the table does not have is left out.
    """
    import pandas as pd

    new = {}
    for model, per_task in ref.rows.items():
        row = {}
        for task, values in per_task.items():
            if task not in tasks:
                continue
            for metric, value in values.items():
                col = task if primary.get(task) == metric else f"{task} {metric}"
                if col in df.columns:
                    row[col] = value
        if row:
            new[f"{model}{SUFFIX}"] = row
    if not new:
        return df
    extra = pd.DataFrame.from_dict(new, orient="index").reindex(columns=df.columns)
    return pd.concat([df, extra.astype(float)])


def is_published(label: str) -> bool:
    return str(label).endswith(SUFFIX)


def notes(ref: Reference, shown: set[str], refused: list[str]) -> str:
    text = f"Rows marked (published): {ref.source}" + (f"; {ref.note}" if ref.note else "") + "."
    if shown:
        text += f" Shown for: {', '.join(sorted(shown))}."
    if refused:
        text += " Not shown for " + "; ".join(refused) + "."
    return text
