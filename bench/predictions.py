"""``bench run --log-predictions``: each test track's target and the probe's scores, beside the records.

One JSON line per test track of the clean test split, per probe seed, in
``records/<record name>.predictions.jsonl`` (the record's file name with
``.predictions.jsonl`` for ``.json``; not read as a record). Fields:
``track_id``, ``target`` (the label as the task gives it: a class index, a tuple
of tag indices or a number), ``scores`` (the probe's output row: logits for a
multiclass task, probabilities for a multilabel one, the prediction for a
regression) and, for a multiclass task, ``predicted`` (the class index of the
highest score). The first line is a header: ``{"header": {...}}`` with the
encoder, task, seed, kind and class names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SUFFIX = ".predictions.jsonl"


def path_for(record_file: str | Path) -> Path:
    p = Path(record_file)
    return p.with_name(p.name.removesuffix(".json") + SUFFIX)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write(record: dict[str, Any], items: list[Any], scores: np.ndarray, classes: list[str], kind: str) -> Path:
    """Write the predictions of ``record``'s test split (``items`` and the ``scores`` rows, in order); the path."""
    from bench.store import atomic_write

    scores = np.asarray(scores)
    if len(scores) != len(items):
        raise ValueError(f"{len(items)} test tracks but {len(scores)} score rows")
    header = {"encoder": record.get("variant") or record.get("encoder"), "task": record.get("task"),
              "seed": record.get("seed"), "condition": record.get("condition"), "kind": kind, "classes": classes}
    lines = [json.dumps({"header": header})]
    for it, row in zip(items, scores):
        row = np.atleast_1d(row).astype(float)
        line: dict[str, Any] = {"track_id": it.track_id, "target": _plain(it.label), "scores": row.tolist()}
        if kind == "multiclass":
            line["predicted"] = int(np.argmax(row))
        lines.append(json.dumps(line))
    path = path_for(record["_file"])
    atomic_write(path, "\n".join(lines) + "\n")
    return path


def read(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, one dict per test track) of a predictions file."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return rows[0]["header"], rows[1:]
