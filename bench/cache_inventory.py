"""Everything bench keeps in its cache folder, by kind: listing and clearing for ``bench cache``.

Kinds (:data:`KINDS`):

- ``embeddings``: track embeddings per (encoder, task, split) and key
  (:mod:`bench.cache`), including incomplete extractions (``.partial/``);
- ``probes``: fitted probes' outputs per (task, seed) and key
  (:mod:`bench.probe_cache`);
- ``results``: finished (encoder, task) pairs kept by request, whose records a
  warm ``bench run`` writes again without torch (:mod:`bench.run_memo`);
- ``checkpoints``: pretrained weights ``<name>-<key>.safetensors`` and their
  ``.run/`` folders (training state, metrics log) under ``<cache>/checkpoints/``
  (:mod:`bench.pretrain.checkpoints`).

Embeddings, probes and results are derived data: deleting them costs a
recomputation. Clearing embeddings or probes clears the results made from them
too, so that the next run really recomputes (a cold run is a cold run).
A checkpoint can cost hours of pretraining, so clearing without naming a kind
leaves the checkpoints alone (:data:`CLEAR_DEFAULT`). Nothing here imports
torch or numpy: a checkpoint's metadata is read from the safetensors header.
"""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path
from typing import Any

KINDS = ("embeddings", "probes", "results", "checkpoints")
#: what ``bench cache clear`` deletes when no kind is named
CLEAR_DEFAULT = ("embeddings", "probes", "results")


def parse_kinds(text: str | None, default: tuple[str, ...] = KINDS) -> tuple[str, ...]:
    """``"embeddings,probes"`` / ``"all"`` / None -> kinds; an unknown kind is a usage error naming the known ones."""
    from bench.errors import BenchError

    if not text:
        return default
    names = [k.strip().lower() for k in text.split(",") if k.strip()]
    if "all" in names:
        return KINDS
    bad = [k for k in names if k not in KINDS]
    if bad or not names:
        raise BenchError(f"--kind {text!r}: unknown kind {bad[0] if bad else ''!r}; use {', '.join(KINDS)} or all "
                         "(comma-separated)")
    return tuple(k for k in KINDS if k in names)


def checkpoints_root() -> Path:
    from bench.config import cache_dir

    return cache_dir() / "checkpoints"


def entries(kinds: tuple[str, ...] = KINDS) -> list[dict[str, Any]]:
    """One dict per entry of the given kinds: kind, encoder, task, split, rows, skipped, size, created, status, path."""
    from bench.cache import EmbeddingCache, default_root
    from bench.probe_cache import ProbeCache
    from bench.probe_cache import default_root as probes_root

    out: list[dict[str, Any]] = []
    emb = [{**e, "kind": "embeddings"} for e in EmbeddingCache(default_root()).entries()]
    if "embeddings" in kinds:
        out.extend(emb)
    if "probes" in kinds:
        # a probe's key holds its embeddings' digests; the embedding entries' names give the encoder
        names = {Path(e["path"]).name.rsplit("__", 1)[-1]: e["encoder"] for e in emb}
        out.extend(ProbeCache(probes_root()).entries(encoders=names))
    if "results" in kinds:
        from bench import run_memo

        out.extend(run_memo.entries())
    if "checkpoints" in kinds:
        out.extend(checkpoint_entries(checkpoints_root()))
    return out


def clear(kinds: tuple[str, ...] = CLEAR_DEFAULT, encoder: str | None = None,
          task: str | None = None) -> list[dict[str, Any]]:
    """Delete the entries of ``kinds`` matching the filters; return what was deleted."""
    from bench.cache import EmbeddingCache, default_root
    from bench.probe_cache import default_root as probes_root

    removed: list[dict[str, Any]] = []
    if {"embeddings", "probes"} & set(kinds) and "results" not in kinds:
        kinds = (*kinds, "results")  # results made from what is cleared would make the next run a warm one
    others = entries(tuple(k for k in kinds if k != "embeddings"))  # listed first: probes are named via embeddings
    if "embeddings" in kinds:
        removed.extend({**e, "kind": "embeddings"} for e in EmbeddingCache(default_root()).clear(encoder, task))
    for info in others:
        if (encoder and info["encoder"] != encoder) or (task and info["task"] != task):
            continue
        for path in info.get("paths") or [info["path"]]:
            _remove(Path(path))
        removed.append(info)
    if "probes" in kinds and not encoder and not task:
        from bench.render_cache import root as renders_root

        shutil.rmtree(probes_root() / ".tmp", ignore_errors=True)
        shutil.rmtree(renders_root(), ignore_errors=True)  # drawn charts: derived, redrawn on demand
    return removed


def checkpoint_entries(folder: Path) -> list[dict[str, Any]]:
    """Checkpoints (``.safetensors``) and training folders without one yet (``.run/``: interrupted or running)."""
    if not folder.is_dir():
        return []
    from bench.cache import _size

    out = []
    weights = sorted(folder.glob("*.safetensors"))
    for path in weights:
        meta = _safetensors_metadata(path)
        try:
            extra = json.loads(meta.get("extra", "{}")) if meta is not None else {}
        except ValueError:
            extra = {}
        run_dir, lock = path.with_suffix(".run"), path.with_suffix(".lock")
        paths = [p for p in (path, run_dir, lock) if p.exists()]
        status = "unreadable" if meta is None else ("trained" if extra.get("trained") else "initial weights")
        out.append(_info(meta.get("encoder") if meta else None, path, paths, status,
                         f"{extra['steps']} steps" if extra.get("steps") else "-"))
    for run_dir in sorted(folder.glob("*.run")):
        if run_dir.is_dir() and not run_dir.with_suffix(".safetensors").exists():
            lock = run_dir.with_suffix(".lock")
            out.append(_info(None, run_dir, [p for p in (run_dir, lock) if p.exists()],
                             "incomplete (training state)", "-"))
    for info in out:
        info["size"] = sum(_size(p) if p.is_dir() else p.stat().st_size for p in map(Path, info["paths"]))
    return out


def _info(encoder: str | None, path: Path, paths: list[Path], status: str, split: str) -> dict[str, Any]:
    stem = path.name.split(".")[0]
    return {"kind": "checkpoints", "encoder": encoder or stem.rsplit("-", 1)[0], "task": "-", "split": split,
            "rows": None, "skipped": 0, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                                                time.localtime(path.stat().st_mtime)),
            "status": status, "path": str(path), "paths": [str(p) for p in paths], "size": 0}


def _safetensors_metadata(path: Path) -> dict[str, str] | None:
    """The ``__metadata__`` of a safetensors file's JSON header (8-byte little-endian length, then JSON)."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error):
        return None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
