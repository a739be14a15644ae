"""Content fingerprints of a task's data: a SHA-256 of every file's bytes, memoised by its stat.

Why content: a fingerprint of relative paths and byte sizes cannot see a file
overwritten with other audio of the same length (every NSynth WAV has the same
size), so the embedding cache handed back stale embeddings and a record's data
fingerprint did not change. Both now use :func:`data_fingerprint`, so whatever
changes one changes the other.

Why a memo: hashing reads every byte, which a warm run (embeddings cached)
must not pay again. A file's digest is reused while its absolute path, size,
``mtime_ns``, ``ctime_ns`` and inode are all unchanged (ctime too: restoring an
old mtime with ``touch -d`` still moves ctime). A file modified less than
:data:`RACY_NS` before it was hashed is not memoised: on filesystems with
coarse timestamps a second write in the same tick would keep every stat field
(git's "racily clean" problem), so such a file is hashed again next time.

Where the memo lives: in memory for the process, and in a SQLite file
(:data:`MEMO_NAME`) inside the embedding cache folder when
:meth:`bench.cache.EmbeddingCache.open` has settled on a folder it trusts
(:func:`persist_in`). A memo that cannot be read or written is reported once
and the process goes on with the in-memory one: the memo never fails a run.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Sequence

#: file name of the persistent memo inside the embedding cache folder
MEMO_NAME = "file-digests.sqlite"
#: a file modified this recently (before it was hashed) is not memoised (coarse timestamps)
RACY_NS = 2_000_000_000
#: digest placeholders for files that cannot be hashed (the extract stage reports them)
MISSING = "missing"
UNREADABLE = "unreadable"
#: threads that hash files (hashlib releases the GIL on large reads; also overlaps I/O)
HASH_THREADS = 4
_CHUNK = 1 << 20

Stat = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _stat(path: str) -> Stat | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def hash_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks, never whole)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class FileDigests:
    """SHA-256 of files, memoised by (absolute path, size, mtime_ns, ctime_ns, inode).

    ``store``: a SQLite file that keeps the memo between processes, or None
    for a memo of this process only.
    """

    def __init__(self, store: Path | None = None) -> None:
        self.store = Path(store) if store is not None else None
        self._mem: dict[str, tuple[Stat, str]] = {}
        self._db: sqlite3.Connection | None = None
        self._broken = False
        #: files hashed (read) by this object, for tests and benchmarks
        self.hashed = 0

    # -- persistent memo ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection | None:
        if self.store is None or self._broken:
            return None
        if self._db is None:
            try:
                db = sqlite3.connect(str(self.store), timeout=30)
                db.execute("CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, "
                           "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, sha256 TEXT)")
                db.commit()
                self._db = db
            except sqlite3.Error as exc:
                self._give_up(exc)
        return self._db

    def _give_up(self, exc: Exception) -> None:
        _log(f"warning: the file digest memo {self.store} cannot be used ({exc}); data files are hashed "
             "without it (a warm run reads them again). Delete the file to start a fresh memo.")
        self._broken = True
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def _load(self, paths: Sequence[str]) -> None:
        """Bring the stored memo rows of ``paths`` into memory."""
        db = self._conn()
        if db is None:
            return
        want = [p for p in paths if p not in self._mem]
        try:
            for i in range(0, len(want), 500):
                part = want[i : i + 500]
                rows = db.execute(
                    f"SELECT path, size, mtime_ns, ctime_ns, inode, sha256 FROM digests WHERE path IN "
                    f"({','.join('?' * len(part))})", part).fetchall()
                for path, size, mtime, ctime, ino, digest in rows:
                    self._mem[path] = ((size, mtime, ctime, ino), digest)
        except sqlite3.Error as exc:
            self._give_up(exc)

    def _save(self, rows: list[tuple[str, Stat, str]]) -> None:
        db = self._conn()
        if db is None or not rows:
            return
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)",
                               [(p, *st, d) for p, st, d in rows])
        except sqlite3.Error as exc:
            self._give_up(exc)

    # -- digests -----------------------------------------------------------------------------------
    def digests(self, paths: Iterable[str | Path]) -> list[str]:
        """The SHA-256 of each file (or :data:`MISSING` / :data:`UNREADABLE`), in order."""
        absp = [os.path.abspath(p) for p in paths]
        self._load(absp)
        out: dict[str, str] = {}
        todo: list[tuple[str, Stat]] = []
        for p in dict.fromkeys(absp):
            st = _stat(p)
            if st is None:
                out[p] = MISSING
                continue
            known = self._mem.get(p)
            if known is not None and known[0] == st:
                out[p] = known[1]
            else:
                todo.append((p, st))
        fresh: list[tuple[str, Stat, str]] = []
        if todo:
            started = time.time_ns()
            with ThreadPoolExecutor(max(1, min(HASH_THREADS, len(todo)))) as pool:
                for (p, st), digest in zip(todo, pool.map(lambda t: _hash_or_none(t[0]), todo)):
                    self.hashed += 1
                    out[p] = digest or UNREADABLE
                    # memoise only what was stable while read and not racily recent
                    if digest and _stat(p) == st and st[1] < started - RACY_NS and st[2] < started - RACY_NS:
                        self._mem[p] = (st, digest)
                        fresh.append((p, st, digest))
                    else:
                        self._mem.pop(p, None)
        self._save(fresh)
        return [out[p] for p in absp]

    def digest(self, path: str | Path) -> str:
        """The SHA-256 of one file (see :meth:`digests`)."""
        return self.digests([path])[0]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _hash_or_none(path: str) -> str | None:
    try:
        return hash_file(path)
    except OSError:
        return None


# -- the process-wide memo ----------------------------------------------------------------------------

_default = FileDigests()


def default() -> FileDigests:
    """The memo this process uses (persistent once :func:`persist_in` named a trusted folder)."""
    return _default


def persist_in(folder: Path | None) -> FileDigests:
    """Keep the process memo in ``folder/`` :data:`MEMO_NAME` (None: in memory only).

    Called by the embedding cache with the folder it trusts: a memo in a folder
    another user can write would let them vouch for files that changed.
    """
    global _default
    store = Path(folder) / MEMO_NAME if folder is not None else None
    if store != _default.store:
        old = _default
        _default = FileDigests(store)
        _default._mem.update(old._mem)  # what this process already hashed stays known
        _default.hashed = old.hashed
        old.close()
    return _default


# -- the data fingerprint -----------------------------------------------------------------------------


def data_fingerprint(splits: dict[str, Iterable[Any]], data_root: Path, digests: FileDigests | None = None) -> str:
    """SHA-256 over every split's items: track id, path relative to the data root, the file's
    content digest, label and span.

    One definition for the embedding cache key (per split) and the record's
    data fingerprint (all splits): a file whose bytes change changes both.
    """
    memo = digests or default()
    # absolute, not resolved: a dataset folder that is a link to another disk keeps its relative paths
    root = os.path.abspath(data_root)
    h = hashlib.sha256()
    h.update(b"bench-data-fingerprint v2 (sha256 of file bytes)\n")
    for split in sorted(splits):
        items = list(splits[split])
        sums = memo.digests([it.path for it in items])
        for item, digest in zip(items, sums):
            path = os.path.abspath(item.path)
            rel = path[len(root) + 1 :] if path.startswith(root + os.sep) else path
            h.update(f"{split}\t{item.track_id}\t{rel}\t{digest}\t{item.label}\t{item.start}\t{item.end}\n".encode())
    return h.hexdigest()
