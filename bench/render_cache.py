"""Rendered charts and tables kept on disk, so a warm rerun does not import matplotlib (or pandas) to draw the
same PNG (or table) again.

Why: on a warm `bench run` (embeddings and probes cached) drawing the
leaderboard chart was the largest cost after importing torch: importing
pyplot and rendering took about 40% of the run's CPU time, to produce bytes
identical to the last run's.

A chart is stored under ``<cache>/renders/<name>-<key>.png``, keyed by a
SHA-256 of the JSON of its inputs, the source of the module that draws it
and the matplotlib version, so new numbers, a changed drawing function or
another matplotlib draw it again. At most :data:`KEEP` files are kept (the
least recently used go). A folder that cannot be written means drawing every
time, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

#: rendered files kept; older ones (by last use) are deleted
KEEP = 64


def root() -> Path:
    from bench.config import cache_dir

    return cache_dir() / "renders"


def png(name: str, draw: Callable[..., bytes], *args: Any) -> bytes:
    """``draw(*args)``, or the bytes it returned for the same inputs before.

    ``args`` must be JSON-able (they are the key); ``draw``'s module source is
    part of the key.
    """
    return blob(name, draw, *args, ext="png", valid=lambda data: data.startswith(b"\x89PNG"))


def blob(name: str, make: Callable[..., bytes], *args: Any, ext: str = "bin",
         valid: Callable[[bytes], bool] = lambda data: bool(data)) -> bytes:
    """``make(*args)``, or the bytes it returned for the same inputs, the same source of ``make``'s module
    and the same matplotlib before (stored as ``<name>-<key>.<ext>``; ``valid`` checks what is read back)."""
    import importlib.metadata as md

    module = sys.modules.get(make.__module__)
    source = Path(module.__file__).read_bytes() if module is not None and module.__file__ else b""
    try:
        mpl = md.version("matplotlib")
    except md.PackageNotFoundError:
        mpl = "?"
    h = hashlib.sha256(json.dumps(args, sort_keys=True, default=_plain).encode())
    h.update(hashlib.sha256(source).digest())
    h.update(f"{make.__qualname__} matplotlib {mpl}".encode())
    path = root() / f"{name}-{h.hexdigest()[:24]}.{ext}"
    try:
        data = path.read_bytes()
        if valid(data):
            os.utime(path)  # recently used
            return data
    except OSError:
        pass
    data = make(*args)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        _prune(path.parent, ext)
    except OSError:
        pass
    return data


def _plain(obj: Any) -> Any:
    """JSON for numpy values (whole arrays: ``str`` of a large one elides values, and so would the key)."""
    if type(obj).__module__ == "numpy":
        return obj.tolist()
    return str(obj)


def _prune(folder: Path, ext: str = "png") -> None:
    files = sorted(folder.glob(f"*.{ext}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in files[KEEP:]:
        p.unlink(missing_ok=True)
