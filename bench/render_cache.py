"""Rendered charts and tables kept on disk, so a warm rerun does not import matplotlib (or pandas) to draw the
same PNG (or table) again: drawing the leaderboard chart was about 40% of a warm ``bench run``'s CPU time.

An entry (a :mod:`bench.store` entry of kind ``renders``, checked on every read) is keyed by the JSON of the
drawing's inputs, the code digest of the module that draws it and the matplotlib version. At most :data:`KEEP`
entries are kept (the least recently used go). A store that cannot be written means drawing every time.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from bench import keys
from bench.store import EntryError, Store, kind_root, plain, remove

#: rendered entries kept; older ones (by last use) are deleted
KEEP = 64


def root() -> Path:
    return kind_root("renders")


def png(name: str, draw: Callable[..., bytes], *args: Any) -> bytes:
    """``draw(*args)``, or the bytes it returned for the same inputs before (``args`` must be JSON-able)."""
    return blob(name, draw, *args, ext="png", valid=lambda data: data.startswith(b"\x89PNG"))


def blob(name: str, make: Callable[..., bytes], *args: Any, ext: str = "bin",
         valid: Callable[[bytes], bool] = lambda data: bool(data)) -> bytes:
    """``make(*args)``, or the verified bytes it returned for the same inputs, the same code of ``make``'s module
    and the same matplotlib before (``valid`` checks what is read back, too)."""
    import importlib.metadata as md

    try:
        mpl = md.version("matplotlib")
    except md.PackageNotFoundError:
        mpl = "?"
    key = keys.make({"args": json.loads(json.dumps(args, sort_keys=True, default=plain)),
                     "code": keys.code_digest(make.__module__), "make": make.__qualname__, "matplotlib": mpl}, name)
    file = f"out.{ext}"

    def load(folder: Path, man: dict[str, Any]) -> bytes:
        data = (folder / file).read_bytes()
        if not valid(data):
            raise EntryError(f"{file} is not a valid {ext} file")
        os.utime(folder)  # recently used
        return data

    store = Store.open("renders")
    data, _ = store.get(key.name, key.fields, key.digest, load)
    if data is None:
        data = make(*args)
        if store.put(key.name, key.fields, key.digest, lambda folder: (folder / file).write_bytes(data),
                     {"task": name, "split": ext}):
            _prune(store)
    return data


def _prune(store: Store) -> None:
    def used(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return time.time()

    folders = [p for p in store.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for p in sorted(folders, key=used, reverse=True)[KEEP:]:
        remove(p)
