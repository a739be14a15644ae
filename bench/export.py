"""Embeddings written for one's own probes (`bench embed`), and read back.

Per encoder x task folder ``DIR/<variant>/<task>/``:

- ``meta.json``: encoder, variant, weights hash, task, its settings and the
  protocol that set them, kind, classes, data fingerprint and root, embedding
  size, window length, tracks and skipped files per split, format, bench
  version;
- per split, with ``--format npy``: ``<split>.embeddings.npy`` (float32
  ``[N, D]``), ``<split>.labels.npy`` (int64 class indices ``[N]``, or a uint8
  multi-hot ``[N, C]`` for a multilabel task) and ``<split>.track_ids.json``;
- with ``--format parquet``: ``<split>.parquet``, one row per track with
  ``track_id``, ``label`` (class index, or the list of class indices) and
  ``embedding`` (a list of float32).

Rows are in the task's item order without the tracks that could not be
decoded (listed in ``meta.json``). :func:`read_split` loads either format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = ("npy", "parquet")


def _safe(name: str) -> str:
    """A folder name for a variant label (``semisupcon[label_fraction=0.05]`` keeps its brackets)."""
    return "".join(c if c.isalnum() or c in "-_.=[],+" else "_" for c in name)


def folder(root: Path, variant: str, task: str) -> Path:
    return Path(root) / _safe(variant) / _safe(task)


def write_task(root: Path, fmt: str, *, encoder: str, variant: str, weights_hash: str, data: Any,
               embs: dict[str, Any], protocol: str = "bench") -> Path:
    """Write every split of ``embs`` (bench.extract.Embeddings by split) and ``meta.json``; returns the folder."""
    from bench import __version__

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: one of {FORMATS}")
    task = data.task
    out = folder(root, variant, task.name)
    out.mkdir(parents=True, exist_ok=True)
    dims = set()
    for split, e in embs.items():
        ids = [it.track_id for it in e.items]
        X = np.asarray(e.X, dtype=np.float32)
        dims.add(int(X.shape[1]) if X.ndim == 2 else 0)
        if fmt == "npy":
            np.save(out / f"{split}.embeddings.npy", X)
            np.save(out / f"{split}.labels.npy", _labels(task.kind, e.items, len(data.classes)))
            (out / f"{split}.track_ids.json").write_text(json.dumps(ids) + "\n")
        else:
            import pandas as pd

            labels = [list(map(int, it.label)) if task.kind == "multilabel" else list(map(float, it.label))
                      if task.kind == "regression" else int(it.label) for it in e.items]
            pd.DataFrame({"track_id": ids, "label": labels, "embedding": list(X)}).to_parquet(
                out / f"{split}.parquet", index=False)
    meta = {
        "encoder": encoder, "variant": variant, "weights_hash": weights_hash, "task": task.name,
        "kind": task.kind, "classes": list(data.classes), "task_settings": task.settings, "protocol": protocol,
        "data_root": str(data.root), "data_fingerprint": data.fingerprint, "demo_data": data.demo,
        "embedding_dim": sorted(dims)[0] if len(dims) == 1 else sorted(dims),
        "window_seconds": next((e.window_seconds for e in embs.values() if e.window_seconds), None),
        "splits": {s: {"tracks": len(e.items), "skipped": e.skipped} for s, e in embs.items()},
        "format": fmt, "bench_version": __version__,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return out


def _labels(kind: str, items: list[Any], n_classes: int) -> np.ndarray:
    if kind == "regression":
        return np.asarray([list(it.label) for it in items], dtype=np.float32).reshape(len(items), n_classes)
    if kind == "multilabel":
        y = np.zeros((len(items), n_classes), dtype=np.uint8)
        for i, it in enumerate(items):
            y[i, list(it.label)] = 1
        return y
    return np.asarray([int(it.label) for it in items], dtype=np.int64)


def read_split(path: Path, split: str) -> tuple[list[str], np.ndarray, np.ndarray | list[Any]]:
    """(track ids, embeddings ``[N, D]``, labels) of one split written by :func:`write_task`."""
    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    if meta["format"] == "parquet":
        import pandas as pd

        df = pd.read_parquet(path / f"{split}.parquet")
        X = np.stack([np.asarray(v, dtype=np.float32) for v in df["embedding"]]) if len(df) else np.zeros((0, 0))
        labels = [list(v) for v in df["label"]] if meta["kind"] in ("multilabel", "regression") else df["label"].to_numpy()
        return list(df["track_id"]), X, labels
    ids = json.loads((path / f"{split}.track_ids.json").read_text())
    return ids, np.load(path / f"{split}.embeddings.npy"), np.load(path / f"{split}.labels.npy")
