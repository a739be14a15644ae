"""Probe cache: a fitted probe's outputs on disk, so a warm rerun trains no probe (most of a run once the
embeddings are cached). A :mod:`bench.store` entry per :func:`bench.keys.probe_key`: ``result.json`` (chosen lr
and weight decay, every grid point's validation figures, epochs, loss; the metrics and intervals of each test
set) and ``scores.npz`` (the score arrays), both checked on every read.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Callable

from bench import keys
from bench.store import EntryError, Store, open_root, plain

RESULT, SCORES = "result.json", "scores.npz"


def cached(compute: Callable[[], tuple[Any, dict, dict]], *, task: Any, classes: list[str], embeddings: dict[str, Any],
           conditions: dict[str, Any], probe: dict[str, Any], grid: list[tuple[float, float]], seed: int,
           protocol: str = "bench", enabled: bool = True) -> tuple[tuple[Any, dict, dict], str]:
    """``compute()`` (the chosen probe, metrics, intervals) through the cache, and the status (hit, miss, rebuilt,
    off). The ``key`` of every split's and condition's embeddings goes into the probe key; without keys, no cache."""
    keyed = all(e.key for e in [*embeddings.values(), *conditions.values()])
    store = ProbeCache.open(enabled=enabled and keyed)
    if not store.enabled:
        return compute(), "off"
    key = keys.probe_key(task=task, classes=classes, embedding_keys={s: e.key for s, e in embeddings.items()},
                         condition_keys={c: e.key for c, e in conditions.items()}, probe=probe, grid=grid,
                         seed=seed, protocol=protocol)
    rows = {"clean": len(embeddings["test"].items), **{c: len(e.items) for c, e in conditions.items()}}
    return store.get_or_compute(key, compute, rows)


class ProbeCache(Store):
    """Probe entries: a :class:`bench.store.Store` of kind ``probes``; ``root=None``: off."""

    def __init__(self, root: Path | None) -> None:
        super().__init__("probes", root)

    @classmethod
    def open(cls, root: Path | None = None, *, enabled: bool = True) -> "ProbeCache":  # type: ignore[override]
        return cls(open_root("probes", root, enabled))

    def get_or_compute(self, key: keys.Key, compute: Callable[[], tuple[Any, dict, dict]],
                       rows: dict[str, int]) -> tuple[tuple[Any, dict, dict], str]:
        """``(selected probe, metrics, confidence)`` for ``key``: read, or computed by ``compute()`` and stored.
        ``rows``: test set name ("clean" or a condition) -> its number of tracks, checked against the scores."""
        if not self.enabled:
            return compute(), "off"
        got, status = self.get(key.name, key.fields, key.digest, lambda folder, man: _load(folder, rows))
        if got is not None:
            return got, status
        out = compute()
        self.put(key.name, key.fields, key.digest, lambda folder: _write(folder, *out),
                 {"task": key.fields["task"]["name"], "split": f"seed {key.fields['seed']}",
                  "embeddings": key.fields["embeddings"].get("test", "")})
        return out, status


def _write(folder: Path, sel: Any, metrics: dict, confidence: dict) -> None:
    import numpy as np

    res = sel.result
    arrays = {"test": res.test_scores, **({"valid": res.valid_scores} if res.valid_scores is not None else {}),
              **{f"extra:{k}": v for k, v in res.extra_scores.items()}}
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    (folder / SCORES).write_bytes(buf.getvalue())
    doc = {"selected": {"lr": sel.lr, "weight_decay": sel.weight_decay, "grid": sel.grid,
                        "selection_metric": sel.selection_metric},
           "result": {"valid_loss": res.valid_loss, "best_epoch": res.best_epoch, "epochs": res.epochs,
                      "seconds": res.seconds},
           "metrics": metrics, "confidence": confidence,
           "valid": list(sel.valid_figures) if sel.valid_figures is not None else None}
    (folder / RESULT).write_text(json.dumps(doc, sort_keys=True, default=plain))


def _load(folder: Path, rows: dict[str, int]) -> tuple[Any, dict, dict]:
    """The probe outputs of a verified entry; EntryError when they do not fit this run's test sets."""
    import numpy as np

    from bench.probe import ProbeResult, SelectedProbe

    try:
        doc = json.loads((folder / RESULT).read_text())
        with np.load(folder / SCORES, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        sel, res = doc["selected"], doc["result"]
        extra = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("extra:")}
        result = ProbeResult(test_scores=arrays["test"], valid_loss=res["valid_loss"], best_epoch=res["best_epoch"],
                             epochs=res["epochs"], seconds=res["seconds"], valid_scores=arrays.get("valid"),
                             extra_scores=extra)
        valid = doc.get("valid")  # absent from entries written before validation figures were kept
        selected = SelectedProbe(result, sel["lr"], sel["weight_decay"], sel["grid"], sel["selection_metric"],
                                 (valid[0], valid[1]) if valid else None)
        metrics, confidence = doc["metrics"], doc["confidence"]
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise EntryError(f"incomplete ({type(exc).__name__}: {exc})") from None
    got = {"clean": len(result.test_scores), **{c: len(v) for c, v in extra.items()}}
    if got != rows or set(metrics) != set(rows) or set(confidence) != set(rows):
        raise EntryError(f"it scored test sets of {got} tracks, this run has {rows}")
    return selected, metrics, confidence

