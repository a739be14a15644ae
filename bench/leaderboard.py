"""Leaderboard stage: a table of encoders x tasks from result records.

One row per encoder, one column per task holding the task's primary metric
(mean over probe seeds), then the tasks' other metrics. Written as markdown
(tabulate), CSV and JSON. A table whose numbers come from the generated demo
data says so in its title; records from demo and real data are never averaged
together (they are shown as separate rows, the demo ones marked).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.errors import BenchError

DEMO_NOTE = "DEMO DATA: generated data in the real formats; these numbers say nothing about real music."


def table(records: list[dict[str, Any]]):
    """A pandas DataFrame indexed by encoder with one column per task metric."""
    import pandas as pd

    if not records:
        raise BenchError("no result records to tabulate")
    rows = []
    for r in records:
        label = r["encoder"] + (" (demo data)" if _mixed(records) and r.get("demo_data") else "")
        for metric, value in r["metrics"].items():
            rows.append({
                "encoder": label,
                "task": r["task"],
                "metric": metric,
                "primary": metric == r["primary_metric"],
                "seed": r["seed"],
                "value": value,
            })
    df = pd.DataFrame(rows)
    agg = df.groupby(["encoder", "task", "metric", "primary"], sort=False)["value"].agg(["mean", "std", "count"])
    agg = agg.reset_index()
    agg["column"] = agg.apply(lambda r: r["task"] if r["primary"] else f"{r['task']} {r['metric']}", axis=1)
    wide = agg.pivot(index="encoder", columns="column", values="mean")
    tasks = sorted(agg["task"].unique())
    primary_cols = [t for t in tasks if t in wide.columns]
    other_cols = sorted(c for c in wide.columns if c not in primary_cols)
    wide = wide[primary_cols + other_cols]
    if primary_cols:
        wide = wide.sort_values(primary_cols[0], ascending=False)
    return wide


def _mixed(records: list[dict[str, Any]]) -> bool:
    return len({bool(r.get("demo_data")) for r in records}) > 1


def title(records: list[dict[str, Any]]) -> str:
    metrics = {}
    for r in records:
        metrics[r["task"]] = r["primary_metric"]
    seeds = sorted({r["seed"] for r in records})
    head = "Leaderboard: " + ", ".join(f"{t} = {m}" for t, m in sorted(metrics.items()))
    head += f" (mean over probe seeds {seeds})"
    if all(r.get("demo_data") for r in records):
        head = DEMO_NOTE + "\n" + head
    elif _mixed(records):
        head = "Mixed: rows marked (demo data) come from generated demo data.\n" + head
    return head


def to_markdown(df) -> str:
    from tabulate import tabulate

    return tabulate(df.reset_index(), headers="keys", tablefmt="github", floatfmt=".4f", showindex=False)


def write(records: list[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    """Write leaderboard.md/.csv/.json into ``out_dir`` and return their paths."""
    df = table(records)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "leaderboard.md"
    md.write_text(title(records) + "\n\n" + to_markdown(df) + "\n")
    csv = out_dir / "leaderboard.csv"
    df.to_csv(csv)
    js = out_dir / "leaderboard.json"
    js.write_text(json.dumps({
        "title": title(records),
        "demo_data": all(r.get("demo_data") for r in records),
        "rows": json.loads(df.reset_index().to_json(orient="records")),
    }, indent=2))
    return {"markdown": md, "csv": csv, "json": js}


def render(records: list[dict[str, Any]]) -> str:
    return title(records) + "\n\n" + to_markdown(table(records))
