"""The key chain, computed without torch, each key made from the one before (docs/architecture.md draws it):
data key (:func:`data_fingerprint`) -> weights key (:func:`weights_key`) -> embeddings key
(:func:`embeddings_key`) -> probe key (:func:`probe_key`). A key holds every cause of its value. File contents
go through the one file-identity memo of :mod:`bench.store`, so a warm rerun reads no data file again;
:func:`code_digest` is the one digest of source code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from bench.store import MISSING, UNREADABLE, FileDigests, file_digests, safe

#: bump when the extraction code changes what it computes (windowing, pooling, resampling)
EXTRACT_VERSION = "2"
#: bump when what a probe entry holds changes meaning
PROBE_VERSION = 2
#: modules whose code decides a probe's numbers (the task's module is added per key)
PROBE_MODULES = ("bench.probe", "bench.probe_data", "bench.metrics", "bench.confidence", "bench.protocols")
#: modules whose code decides an extraction's numbers (the encoder plugin's package is added per key)
EXTRACT_MODULES = ("bench.extract", "bench.audio", "bench.dsp")


@dataclass(frozen=True)
class Key:
    """The fields that determine a value, their digest, and the entry name ``<parts>__<digest16>``."""

    fields: dict[str, Any]
    digest: str
    prefix: str = ""

    @property
    def name(self) -> str:
        return f"{self.prefix}__{self.digest[:16]}" if self.prefix else self.digest[:24]


def make(fields: dict[str, Any], *parts: Any) -> Key:
    """A :class:`Key` of ``fields`` (round-tripped through JSON, so stored fields compare equal when read back)."""
    canon = json.dumps(fields, sort_keys=True, default=str)
    return Key(json.loads(canon), hashlib.sha256(canon.encode()).hexdigest(), "__".join(safe(p) for p in parts))


def _files(module: str, package: bool, recursive: bool) -> dict[str, Path]:
    """The module's source files by name (relative to its folder)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return {}
    folder = Path(spec.origin).parent
    if recursive:
        files = sorted(folder.rglob("*.py"))
    else:
        files = sorted(folder.glob("*.py")) if package else [Path(spec.origin)]
    return {p.relative_to(folder).as_posix(): p for p in files}


def code_digest(*modules: str, package: bool = False, recursive: bool = False) -> str:
    """SHA-256 over the content of the modules' source files (``package``: every ``.py`` of each module's
    folder, for a plugin whose module imports its siblings; ``recursive``: and of its subfolders, for a whole
    package such as bench). Found without importing the modules."""
    h = hashlib.sha256()
    for module in modules:
        files = _files(module, package, recursive)
        for name, digest in zip(files, file_digests().digests(files.values())):
            h.update(f"{module}\t{name}\t{digest}\n".encode())
        if not files:
            h.update(f"{module}\tnot found\n".encode())
    return h.hexdigest()


def plugin_identity(kind: str, name: str) -> dict[str, str]:
    """Distribution, version and code digest of the plugin that registered encoder/task ``name``."""
    from bench import plugins

    entry = (plugins.encoders() if kind == "encoder" else plugins.tasks()).get(name)
    module = entry.target.partition(":")[0] if isinstance(entry.target, str) else entry.target.__module__
    return {"distribution": entry.plugin.distribution, "version": entry.plugin.version,
            "code": code_digest(module, package=True)}


# -- the chain -------------------------------------------------------------------------------------


def data_fingerprint(splits: dict[str, Iterable[Any]], data_root: Path, digests: FileDigests | None = None,
                     unread: list[str] | None = None) -> str:
    """Data key: SHA-256 over every split's items (track id, path relative to the data root, the file's content
    digest, label, span). One definition for the embedding key (one split) and the record (all splits).
    ``unread``: gets the paths of files that were missing or could not be read (keyed as such)."""
    root = os.path.abspath(data_root)  # not resolved: a dataset folder that is a link keeps its relative paths
    h = hashlib.sha256()
    h.update(b"bench-data-fingerprint v2 (sha256 of file bytes)\n")
    for split in sorted(splits):
        items = list(splits[split])
        for item, digest in zip(items, (digests or file_digests()).digests([it.path for it in items])):
            if unread is not None and digest in (MISSING, UNREADABLE):
                unread.append(item.path)
            path = os.path.abspath(item.path)
            rel = path[len(root) + 1 :] if path.startswith(root + os.sep) else path
            h.update(f"{split}\t{item.track_id}\t{rel}\t{digest}\t{item.label}\t{item.start}\t{item.end}\n".encode())
    return h.hexdigest()


def folder_fingerprint(folder: str | Path) -> str:
    """Content fingerprint of a folder of audio (``-O unlabeled_dirs=DIR``): relative paths and file digests."""
    from bench.audio import find_audio

    files = find_audio(folder) if Path(folder).is_dir() else []
    h = hashlib.sha256()
    for path, digest in zip(files, file_digests().digests(files)):
        h.update(f"{path.relative_to(folder).as_posix()}\t{digest}\n".encode())
    return h.hexdigest()


def weights_key(checkpoint: str | Path | None = None, *, checkpoint_key: str | None = None) -> str:
    """Weights key: the checkpoint key of a cached pretrained checkpoint, or the content digest of a given
    checkpoint file (memoised by file identity, so no weights are read on a warm rerun)."""
    if checkpoint_key:
        return f"checkpoint:{checkpoint_key}"
    return f"file:{file_digests().digest(checkpoint)}" if checkpoint else "none"


def embeddings_key(*, encoder: str, encoder_config: dict[str, Any], weights: str, task: str,
                   task_settings: dict[str, Any], split: str, data: str, max_windows: int | None, window: int,
                   sample_rate: int, plugin: dict[str, str] | None = None, transform: str | None = None,
                   per_window: bool = False) -> Key:
    """Embeddings key of one split (``plugin``: :func:`plugin_identity` of the encoder, with the extraction
    code's digest added here)."""
    extraction: dict[str, Any] = {"max_windows": max_windows, "window": int(window),
                                  "sample_rate": int(sample_rate), "version": EXTRACT_VERSION}
    if transform is not None:
        extraction["transform"] = transform
    if per_window:  # an entry that also keeps every window's embedding (crop/segment probes)
        extraction["per_window"] = True
    fields = {"encoder": encoder, "encoder_config": encoder_config, "weights_hash": weights,
              "plugin": plugin or {}, "code": code_digest(*EXTRACT_MODULES), "task": task,
              "task_settings": task_settings, "split": split, "data_fingerprint": data, "extraction": extraction}
    return make(fields, encoder, task, split)


def probe_key(*, task: Any, classes: list[str], embedding_keys: dict[str, str], condition_keys: dict[str, str],
              probe: dict[str, Any], grid: list[tuple[float, float]], seed: int, protocol: str = "bench") -> Key:
    """Probe key of one seed on one task's embeddings (``*_keys``: embeddings key digests)."""
    fields = {
        "version": PROBE_VERSION, "protocol": protocol,
        "task": {"name": task.name, "kind": task.kind, "classes": list(classes), "metric": task.primary_metric},
        "embeddings": dict(embedding_keys), "conditions": dict(condition_keys), "probe": dict(probe),
        "grid": [[float(lr), float(wd)] for lr, wd in grid], "seed": int(seed),
        "code": code_digest(*PROBE_MODULES, type(task).__module__),
        "versions": dict(_versions("torch", "numpy")),
    }
    return make(fields, task.name, f"seed{int(seed)}")


@functools.lru_cache(maxsize=4)
def _versions(*dists: str) -> dict[str, str | None]:
    import importlib.metadata as md

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    return {d: version(d) for d in dists}
