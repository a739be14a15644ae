"""One command's reading of the data: each task split indexed, and each list of tracks fingerprinted, once per
process while the command's jobs run (:func:`scope`), instead of once per job and pair.

Why: ``bench reproduce`` runs 18 jobs on the same four tasks. Each job indexed every task (its annotation
files parsed, every audio file's identity checked for the data key) and planned its pretraining pools again:
72 indexings and 15 plans, most of a warm rerun's time (benchmarks/README.md). Within a scope the first
job reads the data and the others reuse what it read: the annotations as they were when first read (a
value is keyed by the labels it was computed with), the data key only while every audio file keeps its
identity and was not written in the last seconds (a file changed during the command is hashed again). A
failed or empty indexing, and a data key with a file that could not be read, are not kept (the next job
tries again and reports it). Outside a scope nothing is kept and every call reads the data, as before.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from bench.task import Split, Task

#: what this process read in the open scope; None: no scope open
_memo: dict[tuple[Any, ...], Any] | None = None


@contextmanager
def scope() -> Iterator[None]:
    """Read each split once inside the block (nested scopes share the outer one)."""
    global _memo
    if _memo is not None:
        yield
        return
    _memo = {}
    try:
        yield
    finally:
        _memo = None


def begin() -> None:
    """Open a scope for the rest of this process: a worker process that runs the jobs of one command."""
    global _memo
    _memo = {}


def items(task: Task, split: str, root: Path) -> Split:
    """``task.items(split, root)``, read once per scope (a copy: callers may cut its items, ``--limit``)."""
    from bench.task import Split

    if _memo is None:
        return task.items(split, root)
    key = ("items", type(task).__module__, type(task).__qualname__, task.name,
           json.dumps(task.settings, sort_keys=True, default=str), split, os.fspath(root))
    got = _memo.get(key) or task.items(split, root)
    if got.items:  # an empty listing is an error the next job reports again, from a fresh reading
        _memo[key] = got
    return Split(got.name, list(got.items), list(got.problems))


def fingerprint(splits: dict[str, Iterable[Any]], root: Path) -> str:
    """:func:`bench.keys.data_fingerprint` of ``splits``, computed once per scope for the same track objects
    while every file keeps its identity (:func:`bench.store.identity`: size, times, inode): a file changed
    during the command gets its content hashed again, so no value is keyed by content it was not made from."""
    from bench import store
    from bench.keys import data_fingerprint

    if _memo is None:
        return data_fingerprint(splits, root)
    lists: dict[str, list[Any]] = {s: list(splits[s]) for s in sorted(splits)}
    files = tuple(store.identity(it.path) for v in lists.values() for it in v)
    # the entry holds the tracks themselves, so their ids cannot be reused by other objects while it is kept
    key = ("fingerprint", os.path.abspath(root), tuple((s, tuple(map(id, v))) for s, v in lists.items()))
    got = _memo.get(key)
    if got is not None and got[1] == files:
        return str(got[0])
    started = time.time_ns()
    unread: list[str] = []
    value = data_fingerprint(dict(lists), root, unread=unread)
    # kept only when every file was read and is not racily recent (a rewrite within one timestamp tick keeps
    # the identity): an unreadable file (a transient I/O error) is tried again by the next job
    if not unread and all(store.settled(f, started) for f in files):
        _memo[key] = (value, files, lists)
    else:
        _memo.pop(key, None)
    return value
