"""Probe cache: a fitted probe's outputs on disk, so a warm rerun trains no probe.

Why: once the embeddings are cached, probe training is most of a run (a warm
``bench run --tasks all`` was only 2.9x faster than a cold one). A probe's
result is a pure function of what this key holds, so a second run with the
same inputs reads it instead of training again.

Key (:func:`make_key`): the embedding cache keys of the splits the probe used
(train, valid, test) and of every further test set it scored (conditions: a
corrupted test split is its own embedding entry), the task (name, kind,
classes, primary metric), the probe configuration (:class:`bench.probe.ProbeConfig`,
device included: probes are bit-identical per seed on one device, not across
devices), the lr x weight-decay grid, the probe seed, the protocol id (the
evaluation protocol's name; ``"bench"`` for the default one), the torch and
numpy versions, and a SHA-256 of the source of the code that trains and scores
(:data:`CODE_MODULES` and the task's module): an edit to the probe, the
metrics or a task's scorer recomputes instead of serving stale numbers. The
embedding keys already hold the data fingerprint (labels included), the
encoder weights and config, and the extraction settings.

What is kept: the chosen probe (lr, weight decay, every grid point's
validation figures, epochs, loss, seconds), the metrics and bootstrap
intervals of each test set, and the score arrays (``scores.npz``), whose
SHA-256 is kept in ``result.json`` and checked on load (like the embedding
cache: a bad entry is reported, deleted and recomputed, never trusted).

Layout under ``cache_dir()/probes/``::

    <task>__seed<N>__<key16>/result.json, scores.npz   complete entries
    .tmp/                                              builds in progress (renamed into place)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

#: bump when what an entry holds changes meaning (its layout, or what the key leaves out)
PROBE_CACHE_VERSION = 1
#: modules whose code decides a probe's numbers; their source is hashed into every key
CODE_MODULES = ("bench.probe", "bench.metrics", "bench.confidence")
RESULT = "result.json"
SCORES = "scores.npz"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class ProbeEntryError(Exception):
    """An entry on disk that cannot be trusted (the message says what is wrong)."""


@dataclass(frozen=True)
class ProbeKey:
    fields: dict[str, Any]
    digest: str

    @property
    def name(self) -> str:
        from bench.cache import _safe

        return f"{_safe(self.fields['task']['name'])}__seed{self.fields['seed']}__{self.digest[:16]}"


_code_digests: dict[str, str] = {}


def code_digest(module_names: tuple[str, ...]) -> str:
    """SHA-256 of the source files of ``module_names`` (imported), memoised per process."""
    import importlib

    out = hashlib.sha256()
    for name in module_names:
        if name not in _code_digests:
            path = importlib.import_module(name).__file__
            _code_digests[name] = hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else "builtin"
        out.update(f"{name}:{_code_digests[name]}\n".encode())
    return out.hexdigest()


def make_key(*, task: Any, classes: list[str], embedding_keys: dict[str, str], condition_keys: dict[str, str],
             probe: dict[str, Any], grid: list[tuple[float, float]], seed: int, protocol: str = "bench") -> ProbeKey:
    """The key of one probe seed on one task's embeddings (see the module doc for what it holds)."""
    from bench.results import versions

    fields = {
        "version": PROBE_CACHE_VERSION,
        "protocol": protocol,
        "task": {"name": task.name, "kind": task.kind, "classes": list(classes), "metric": task.primary_metric},
        "embeddings": dict(embedding_keys),
        "conditions": dict(condition_keys),
        "probe": dict(probe),
        "grid": [[float(lr), float(wd)] for lr, wd in grid],
        "seed": int(seed),
        "code": code_digest(CODE_MODULES + (type(task).__module__,)),
        "versions": {k: versions().get(k) for k in ("torch", "numpy")},
    }
    canon = json.dumps(fields, sort_keys=True, default=str)
    return ProbeKey(json.loads(canon), hashlib.sha256(canon.encode()).hexdigest())


def cached(compute: Callable[[], tuple[Any, dict, dict]], *, task: Any, classes: list[str], embeddings: dict[str, Any],
           conditions: dict[str, Any], probe: dict[str, Any], grid: list[tuple[float, float]], seed: int,
           protocol: str = "bench", enabled: bool = True) -> tuple[tuple[Any, dict, dict], str]:
    """``compute()`` (the run's evaluate step: the chosen probe, metrics, intervals) through the cache.

    ``embeddings``: split -> :class:`bench.extract.Embeddings`, ``conditions``:
    name -> the further test sets; their ``key`` (embedding cache key) goes
    into the probe's key. Embeddings without a key (not made through the
    embedding cache) are never cached. Returns the triple and the status.
    """
    keyed = all(e.key for e in [*embeddings.values(), *conditions.values()])
    store = ProbeCache.open(enabled=enabled and keyed)
    key = make_key(task=task, classes=classes, embedding_keys={s: e.key for s, e in embeddings.items()},
                   condition_keys={c: e.key for c, e in conditions.items()}, probe=probe, grid=grid, seed=seed,
                   protocol=protocol) if store.enabled else None
    rows = {"clean": len(embeddings["test"].items), **{c: len(e.items) for c, e in conditions.items()}}
    return store.get_or_compute(key, compute, rows)


def default_root() -> Path:
    from bench.config import cache_dir

    return cache_dir() / "probes"


class ProbeCache:
    """Probe entries under one folder; ``root=None`` means caching is off."""

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None

    @classmethod
    def open(cls, root: Path | None = None, *, enabled: bool = True) -> "ProbeCache":
        """The cache at ``root`` (default ``cache_dir()/probes``); off, with a warning, when it is not writable."""
        from bench.cache import _writable

        if not enabled:
            return cls(None)
        root = Path(root) if root is not None else default_root()
        why = _writable(root)
        if why:
            log(f"warning: the probe cache folder {root} is not writable ({why}); probes will be trained again "
                "next time. Set BENCH_CACHE_DIR to a writable folder.")
            return cls(None)
        return cls(root)

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def get_or_compute(self, key: ProbeKey, compute: Callable[[], tuple[Any, dict, dict]],
                       rows: dict[str, int]) -> tuple[tuple[Any, dict, dict], str]:
        """``(selected probe, metrics, confidence)`` for ``key``: read, or computed by ``compute()`` and stored.

        ``rows``: test set name ("clean" or a condition) -> its number of
        tracks, checked against the stored scores. Returns the triple and the
        status: ``hit``, ``miss``, ``rebuilt`` (a bad entry was replaced) or ``off``.
        """
        if not self.enabled:
            return compute(), "off"
        entry = self.root / key.name
        status = "miss"
        if entry.exists():
            try:
                return _load(entry, key, rows), "hit"
            except ProbeEntryError as exc:
                log(f"warning: probe cache entry {entry} is bad ({exc}); deleting it and training again.")
                shutil.rmtree(entry, ignore_errors=True)
                status = "rebuilt"
        out = compute()
        self._write(entry, key, *out)
        return out, status

    def _write(self, dest: Path, key: ProbeKey, sel: Any, metrics: dict, confidence: dict) -> None:
        """Write atomically (a folder built in ``.tmp/`` and renamed); a refusing disk is a warning."""
        tmp = self.root / ".tmp" / f"{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir(parents=True)
            blob = _scores_blob(sel.result)
            (tmp / SCORES).write_bytes(blob)
            res = sel.result
            doc = {
                "format": PROBE_CACHE_VERSION,
                "digest": key.digest,
                "key": key.fields,
                "task": key.fields["task"]["name"],
                "seed": key.fields["seed"],
                "scores_sha256": hashlib.sha256(blob).hexdigest(),
                "selected": {"lr": sel.lr, "weight_decay": sel.weight_decay, "grid": sel.grid,
                             "selection_metric": sel.selection_metric},
                "result": {"valid_loss": res.valid_loss, "best_epoch": res.best_epoch, "epochs": res.epochs,
                           "seconds": res.seconds},
                "metrics": metrics,
                "confidence": confidence,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            (tmp / RESULT).write_text(json.dumps(doc, sort_keys=True, default=_plain))
            try:
                os.rename(tmp, dest)
            except OSError:
                if not dest.exists():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # another process stored the same probe first
        except OSError as exc:
            log(f"warning: could not write probe cache entry {dest} ({exc}); continuing without it.")
            shutil.rmtree(tmp, ignore_errors=True)

    def entries(self, encoders: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """One dict per entry (for ``bench cache list``).

        ``encoders``: first 16 hex digits of an embedding key -> encoder name
        (from the embedding cache's entries), to name the encoder of a probe,
        whose key holds only the digests of its embeddings; "?" when unknown.
        """
        encoders = encoders or {}
        if not self.enabled or not self.root.is_dir():
            return []
        from bench.cache import _size

        out = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                doc = json.loads((folder / RESULT).read_text())
                status = "complete"
            except (OSError, ValueError):
                doc, status = {}, "unreadable"
            test_key = ((doc.get("key") or {}).get("embeddings") or {}).get("test", "")
            out.append({"kind": "probes", "encoder": encoders.get(test_key[:16], "?"),
                        "task": doc.get("task", folder.name.split("__")[0]),
                        "split": f"seed {doc.get('seed', '?')}", "rows": None, "skipped": 0,
                        "created": doc.get("created", "?"), "status": status, "path": str(folder),
                        "size": _size(folder)})
        return out


def _scores_blob(res: Any) -> bytes:
    import numpy as np

    arrays = {"test": res.test_scores}
    if res.valid_scores is not None:
        arrays["valid"] = res.valid_scores
    arrays.update({f"extra:{k}": v for k, v in res.extra_scores.items()})
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def _load(entry: Path, key: ProbeKey, rows: dict[str, int]) -> tuple[Any, dict, dict]:
    """Read and check one entry; raise ProbeEntryError when it cannot be trusted."""
    import numpy as np

    from bench.probe import ProbeResult, SelectedProbe

    try:
        doc = json.loads((entry / RESULT).read_text())
        blob = (entry / SCORES).read_bytes()
    except (OSError, ValueError) as exc:
        raise ProbeEntryError(f"unreadable: {exc}") from None
    if doc.get("format") != PROBE_CACHE_VERSION or doc.get("digest") != key.digest or doc.get("key") != key.fields:
        raise ProbeEntryError("its key does not match the folder's key")
    if doc.get("scores_sha256") != hashlib.sha256(blob).hexdigest():
        raise ProbeEntryError("its scores do not match the checksum written with them")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        sel, res = doc["selected"], doc["result"]
        extra = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("extra:")}
        result = ProbeResult(test_scores=arrays["test"], valid_loss=res["valid_loss"], best_epoch=res["best_epoch"],
                             epochs=res["epochs"], seconds=res["seconds"], valid_scores=arrays.get("valid"),
                             extra_scores=extra)
        selected = SelectedProbe(result, sel["lr"], sel["weight_decay"], sel["grid"], sel["selection_metric"])
        metrics, confidence = doc["metrics"], doc["confidence"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProbeEntryError(f"incomplete ({type(exc).__name__}: {exc})") from None
    got = {"clean": len(result.test_scores), **{c: len(v) for c, v in extra.items()}}
    if got != rows or set(metrics) != set(rows) or set(confidence) != set(rows):
        raise ProbeEntryError(f"it scored test sets of {got} tracks, this run has {rows}")
    return selected, metrics, confidence


def _plain(obj: Any) -> Any:
    """JSON for numpy scalars and arrays inside metrics and intervals."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
