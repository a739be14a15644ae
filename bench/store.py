"""The one store of everything bench keeps in its cache folder: entries written atomically with a checksum of
what they serve, verified on every read, listed and cleared by kind.

An entry is a folder ``<cache>/<kind>/<name>/``, built in ``.tmp/`` and renamed into place, of payload files and
``manifest.json`` (the key's fields and digest, each payload file's SHA-256, a label for listing). :meth:`Store.get`
serves an entry only when it holds the asked-for key and every file has its recorded digest; else it says so once
on stderr and removes it, and the caller recomputes: never a crash, never a served value. A single file (a
checkpoint) is sealed by a ``.sha256`` beside it (:func:`seal`, :func:`verify`).

One rule for "is this file unchanged" (:class:`FileDigests`): its SHA-256, memoised by (resolved path, size,
mtime_ns, ctime_ns, inode) in ``file-digests.sqlite`` of the trusted cache folder, so a warm read costs a stat.
A cache folder that cannot be written falls back to ``$TMPDIR/bench-cache-<uid>``, used only when it is a real
folder of this user with mode 0700 (another user could plant entries there); failing that, no cache.

Long because: one module owns the whole trust story (writes, checks, file identity, the fallback folder, the
listing and clearing of every kind), which nine caches used to copy each in their own way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import struct
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

#: every kind in the cache folder, and what ``bench cache clear`` removes without ``--kind``
KINDS = ("demo", "pretrain-audio", "checkpoints", "embeddings", "probes", "results", "renders")
CLEAR_DEFAULT = ("pretrain-audio", "embeddings", "probes", "results", "renders")
MANIFEST, FORMAT, MEMO_NAME = "manifest.json", 1, "file-digests.sqlite"
#: a file modified this recently (before it was hashed) is not memoised (coarse timestamps)
RACY_NS = 2_000_000_000
MISSING, UNREADABLE = "missing", "unreadable"
HASH_THREADS = 4


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def safe(text: Any) -> str:
    """``text`` as a file-name part: letters, digits and ``_.-``, at most 60 characters."""
    return "".join(c if c.isalnum() or c in "_.-" else "-" for c in str(text))[:60] or "x"


def plain(obj: Any) -> Any:
    """JSON for what ``json`` cannot write: numpy values as lists (whole arrays: ``str`` of a large one elides
    values, and so would a key), anything else as its text."""
    return obj.tolist() if type(obj).__module__ == "numpy" else str(obj)


def size_of(path: Path) -> int:
    try:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    except OSError:
        return 0


def remove(path: Path) -> None:
    try:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log(f"warning: could not delete {path} ({exc}); delete it by hand.")


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path``: a reader sees the old file or the whole new one; no temporary file is left."""
    tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- file identity ---------------------------------------------------------------------------------

Stat = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


def identity(path: str) -> Stat | None:
    """A file's identity by the one rule of this module (size, mtime_ns, ctime_ns, inode); None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def settled(st: Stat | None, since_ns: int) -> bool:
    """Whether a file of identity ``st`` was last written or changed more than :data:`RACY_NS` before
    ``since_ns``, so that a rewrite cannot hide in the same timestamp tick (False when it is gone)."""
    return st is not None and max(st[1], st[2]) < since_ns - RACY_NS


def resolve(paths: Iterable[str | Path]) -> list[str]:
    """``os.path.realpath`` of each path, each folder resolved once: a warm run checks tens of thousands of files
    in a few folders, and ``realpath`` costs one ``lstat`` per path component (most of a 3-seed warm
    ``bench reproduce``'s 21 s). The same result: a last component that is a link is resolved in full."""
    folders: dict[str, str] = {}
    out = []
    for p in map(os.fspath, paths):
        head, tail = os.path.split(p)
        if not head or tail in ("", ".", ".."):
            out.append(os.path.realpath(p))
            continue
        if (folder := folders.get(head)) is None:
            folder = folders[head] = os.path.realpath(head)
        full = os.path.join(folder, tail)
        out.append(os.path.realpath(full) if os.path.islink(full) else full)
    return out


def hash_file(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _hash_or_none(path: str) -> str | None:
    try:
        return hash_file(path)
    except OSError:
        return None


class FileDigests:
    """SHA-256 of files, memoised by (resolved path, size, mtime_ns, ctime_ns, inode); ``store``: a SQLite file
    that keeps the memo between processes (None: this process only). A memo that fails is said once and dropped."""

    def __init__(self, store: Path | None = None) -> None:
        self.store = Path(store) if store is not None else None
        self._mem: dict[str, tuple[Stat, str]] = {}
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used by whichever thread asks (one at a time)
        self.hashed = 0  # files read by this object (tests, benchmarks)

    def _sql(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            try:
                if self._db is None and self.store is not None:
                    self._db = sqlite3.connect(str(self.store), timeout=30, check_same_thread=False)
                    self._db.execute("CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, "
                                     "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, sha256 TEXT)")
                if self._db is not None:
                    with self._db:
                        return fn(self._db)
            except sqlite3.Error as exc:
                log(f"warning: the file digest memo {self.store} cannot be used ({exc}); files are hashed without "
                    "it. Delete the file to start a fresh memo.")
                self.close()
                self.store = None
            return None

    def digests(self, paths: Iterable[str | Path]) -> list[str]:
        """The SHA-256 of each file (or :data:`MISSING` / :data:`UNREADABLE`), in order."""
        real = resolve(paths)
        want = [p for p in dict.fromkeys(real) if p not in self._mem]
        for i in range(0, len(want), 500):
            part = want[i : i + 500]
            rows = self._sql(lambda db, part=part: db.execute(
                f"SELECT * FROM digests WHERE path IN ({','.join('?' * len(part))})", part).fetchall()) or []
            self._mem.update({r[0]: (tuple(r[1:5]), r[5]) for r in rows})
        out: dict[str, str] = {}
        todo = []
        for p in dict.fromkeys(real):
            st, known = identity(p), self._mem.get(p)
            if st is None or (known is not None and known[0] == st):
                out[p] = MISSING if st is None else known[1]
            else:
                todo.append((p, st))
        fresh, started = [], time.time_ns()
        with ThreadPoolExecutor(max(1, min(HASH_THREADS, len(todo)))) as pool:
            for (p, st), digest in zip(todo, pool.map(lambda t: _hash_or_none(t[0]), todo)):
                self.hashed += 1
                out[p] = digest or UNREADABLE
                self._mem.pop(p, None)
                # memoised only when stable while read and not racily recent (a second write in the same tick)
                if digest and identity(p) == st and settled(st, started):
                    self._mem[p] = (st, digest)
                    fresh.append((p, *st, digest))
        if fresh:
            self._sql(lambda db: db.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)", fresh))
        return [out[p] for p in real]

    def digest(self, path: str | Path) -> str:
        return self.digests([path])[0]

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None


_digests = FileDigests()


def file_digests() -> FileDigests:
    """The memo this process uses (persistent once :func:`persist_digests` named a trusted folder)."""
    return _digests


def persist_digests(folder: Path | None) -> FileDigests:
    """Keep the process memo in ``folder/file-digests.sqlite`` (None: in memory only); only a folder this user
    alone can write is named here (a memo another user can write would vouch for changed files)."""
    global _digests
    target = Path(folder) / MEMO_NAME if folder is not None else None
    if target != _digests.store:
        old, _digests = _digests, FileDigests(target)
        _digests._mem, _digests.hashed = old._mem, old.hashed
        old.close()
    return _digests


def seal(path: Path, digest: str | None = None) -> None:
    """Record the SHA-256 of a single-file entry (``digest``: of the file about to become it) beside it."""
    atomic_write(Path(f"{path}.sha256"), (digest or file_digests().digest(path)) + "\n")


def verify(path: Path) -> bool | None:
    """Whether ``path`` still has the digest :func:`seal` recorded; None when it was never sealed."""
    try:
        return Path(f"{path}.sha256").read_text().strip() == file_digests().digest(path)
    except OSError:
        return None


# -- where entries live ----------------------------------------------------------------------------


def writable(folder: Path, mode: int = 0o777) -> str:
    """'' when ``folder`` can be created and written, else the reason."""
    try:
        folder.mkdir(mode=mode, parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def fallback_root() -> Path:
    """The per-user fallback cache folder under the system's temporary folder."""
    return Path(tempfile.gettempdir()) / f"bench-cache-{os.getuid() if hasattr(os, 'getuid') else 'u'}"


def private(folder: Path) -> str:
    """'' when ``folder`` is (or is now created as) a real folder of this user with mode 0700, else why not."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder (a symbolic link or a file): not used"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"it belongs to user id {st.st_uid}, not to you ({os.getuid()}): not trusted"
    if stat.S_IMODE(st.st_mode) != 0o700:
        return (f"its mode is {stat.S_IMODE(st.st_mode):o}, not 700: not trusted. "
                f"If you made it, `chmod 700 {folder}` (or delete it) to use it")
    return ""


def cache_dir() -> Path:
    """The cache folder: ``BENCH_CACHE_DIR``, else the user's cache folder (``~/.cache/bench`` on Linux)."""
    env = os.environ.get("BENCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("bench", appauthor=False))


def kind_root(kind: str) -> Path:
    return cache_dir() / kind


def open_root(kind: str, root: Path | None = None, enabled: bool = True) -> Path | None:
    """The folder of ``kind``'s entries: ``root`` (default ``<cache>/<kind>``), the private fallback when it is
    not writable, else None: off (with a warning). The file digest memo is kept beside the folder it settles on."""
    if not enabled:
        return None
    root = Path(root) if root is not None else kind_root(kind)
    why = writable(root)
    if why:
        fallback = fallback_root() / kind
        why2 = private(fallback.parent) or writable(fallback, 0o700)
        if why2:
            log(f"warning: the {kind} cache folder {root} is not writable ({why}), nor is {fallback} ({why2}); "
                f"{kind} will not be cached. Set BENCH_CACHE_DIR to a writable folder.")
            persist_digests(None)
            return None
        log(f"warning: the {kind} cache folder {root} is not writable ({why}); using {fallback} for now. "
            "Set BENCH_CACHE_DIR to a writable folder to keep it between runs.")
        root = fallback
    for build in (root / ".tmp").iterdir() if (root / ".tmp").is_dir() else []:  # left by killed processes
        pid = build.name.split(".")[-2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(build, ignore_errors=True)
    persist_digests(root.parent)
    return root


class EntryError(Exception):
    """An entry on disk that cannot be trusted (the message says what is wrong)."""


class Store:
    """The entries of one kind under one folder; ``root=None`` means caching is off."""

    def __init__(self, kind: str, root: Path | None) -> None:
        self.kind, self.root = kind, Path(root) if root is not None else None

    @classmethod
    def open(cls, kind: str, root: Path | None = None, *, enabled: bool = True) -> "Store":
        return cls(kind, open_root(kind, root, enabled))

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def path(self, name: str) -> Path:
        assert self.root is not None
        return self.root / name

    def check(self, folder: Path, key_fields: Any, digest: str) -> dict[str, Any]:
        """The manifest of ``folder`` when it holds this key and every payload file is as written; else EntryError."""
        try:
            man = json.loads((folder / MANIFEST).read_text())
            files = dict(man["files"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EntryError(f"{MANIFEST} unreadable: {exc}") from None
        if man.get("format") != FORMAT or man.get("digest") != digest or man.get("key") != key_fields:
            raise EntryError("its key does not match the key asked for")
        found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        if found != sorted([*files, MANIFEST]):
            raise EntryError(f"it holds files {found}, its manifest lists {sorted(files)}")
        for name, got in zip(files, file_digests().digests([folder / n for n in files])):
            if got != files[name]:
                raise EntryError(f"{name} does not match the checksum written with it (changed or truncated)")
        return man

    def get(self, name: str, key_fields: Any, digest: str,
            load: Callable[[Path, dict[str, Any]], Any] = lambda folder, man: folder) -> tuple[Any, str]:
        """``(load(folder, manifest), "hit")`` for a verified entry (``load`` may raise EntryError too);
        ``(None, "miss")`` when there is none; ``(None, "rebuilt")`` when a bad one was said and removed."""
        if not self.enabled or not (folder := self.path(name)).exists():
            return None, "miss"
        try:
            return load(folder, self.check(folder, key_fields, digest)), "hit"
        except EntryError as exc:
            log(f"warning: {self.kind} cache entry {folder} is bad ({exc}); removing it and computing it again.")
            remove(folder)
            return None, "rebuilt"

    def put(self, name: str, key_fields: Any, digest: str, write: Callable[[Path], Any],
            label: dict[str, Any] | None = None) -> bool:
        """Build an entry with ``write(folder)`` in ``.tmp/``, record its files' digests, rename it into place.
        A disk that refuses is a warning and False; an entry another process finished first is kept."""
        if not self.enabled:
            return False
        dest, tmp = self.path(name), self.path(".tmp") / f"{safe(name)}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir(parents=True)
            write(tmp)
            names = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
            man = {"format": FORMAT, "kind": self.kind, "digest": digest, "key": key_fields, "label": label or {},
                   "files": {n: hash_file(tmp / n) for n in names}, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            (tmp / MANIFEST).write_text(json.dumps(man, sort_keys=True, default=str))
            try:
                os.rename(tmp, dest)
            except OSError:
                if not dest.exists():
                    raise
        except OSError as exc:
            log(f"warning: could not write {self.kind} cache entry {dest} ({exc}); continuing without it.")
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return True

    def entries(self) -> list[dict[str, Any]]:
        """A row per entry for ``bench cache list``, and per interrupted build under ``.partial/`` (a folder of
        entries: the chunks of an embedding extraction)."""
        if not self.enabled or not self.root.is_dir():
            return []
        out = [self.describe(p) for p in sorted(self.root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        partial = self.root / ".partial"
        for folder in sorted(partial.iterdir() if partial.is_dir() else []):
            parts = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
            first = self.describe(parts[0]) if parts else {}
            out.append(row(self.kind, folder, **{k: first[k] for k in ("encoder", "task", "split") if k in first},
                           status=f"incomplete ({len(parts)} chunk(s))"))
        return out

    def describe(self, folder: Path, status: str = "complete") -> dict[str, Any]:
        try:
            man = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            man, status = {}, "unreadable"
        return row(self.kind, folder, status=status, created=man.get("created", _mtime(folder)),
                   **(man.get("label") or {}))

    def clear(self, encoder: str | None = None, task: str | None = None) -> list[dict[str, Any]]:
        """Remove the entries matching the filters; return their rows."""
        gone = [r for r in self.entries() if encoder in (None, r["encoder"]) and task in (None, r["task"])]
        for r in gone:
            remove(Path(r["path"]))
        return gone


def row(kind: str, path: Path, **fields: Any) -> dict[str, Any]:
    """A listing row: kind, encoder, task, split, rows, skipped, created, status, path(s), size."""
    out = {"kind": kind, "encoder": "-", "task": "-", "split": "-", "rows": None, "skipped": 0,
           "created": _mtime(path), "status": "complete", "path": str(path), "paths": [str(path)], **fields}
    return {**out, "size": sum(size_of(Path(p)) for p in out["paths"])}


def _mtime(path: Path) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(path.stat().st_mtime))
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        pass
    return True


# -- every kind: listing and clearing for `bench cache` ---------------------------------------------


def entries(kinds: Sequence[str] = KINDS) -> list[dict[str, Any]]:
    """One row per entry of the given kinds (see :func:`row`)."""
    out: list[dict[str, Any]] = []
    for kind in kinds:
        folder = kind_root(kind)
        found = sorted(folder.iterdir()) if folder.is_dir() else []
        if kind == "checkpoints":
            out.extend(checkpoint_entries(folder))
        elif kind == "demo":
            out.extend(row(kind, p, task=",".join(sorted(m.name[1:-5] for m in p.glob(".*.done"))) or "-",
                           split=p.name) for p in found if p.is_dir())
        else:
            out.extend(Store(kind, folder).entries())
    if "probes" in kinds:  # a probe's key holds its embeddings' digests; their entries name the encoder
        encoders = {Path(r["path"]).name.rsplit("__", 1)[-1]: r["encoder"] for r in entries(("embeddings",))}
        for r in out:
            if r["kind"] == "probes" and r["encoder"] == "-":
                r["encoder"] = encoders.get(str(r.get("embeddings", ""))[:16], "?")
    return out


def clear(kinds: Sequence[str] = CLEAR_DEFAULT, encoder: str | None = None,
          task: str | None = None) -> list[dict[str, Any]]:
    """Delete the entries of ``kinds`` matching the filters; return their rows. Clearing embeddings or probes
    clears results too (the records made from them would make the next run a warm one)."""
    if {"embeddings", "probes"} & set(kinds) and "results" not in kinds:
        kinds = (*kinds, "results")
    removed = [r for r in entries(kinds) if encoder in (None, r["encoder"]) and task in (None, r["task"])]
    for r in removed:
        for path in r["paths"]:
            remove(Path(path))
    if not encoder and not task:
        for kind in kinds:
            remove(kind_root(kind) / ".tmp")
        if "embeddings" in kinds:  # clearing everything forgets file digests too
            remove(kind_root(MEMO_NAME))
    return removed


def checkpoint_entries(folder: Path) -> list[dict[str, Any]]:
    """Cached checkpoints (``.safetensors`` with their seal, ``.run/`` and ``.lock``; encoder and steps from the
    safetensors header, without torch) and training folders without weights yet (interrupted or running)."""
    out = []
    for path in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.run")) if folder.is_dir() else []:
        if path.suffix == ".run" and path.with_suffix(".safetensors").exists():
            continue
        try:
            with open(path, "rb") as f:
                meta = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))["__metadata__"]
            extra = json.loads(meta.get("extra", "{}"))
            status = "trained" if extra.get("trained") else "initial weights"
        except (OSError, ValueError, KeyError, TypeError, AttributeError, struct.error, MemoryError):
            meta, extra, status = {}, {}, "incomplete (training state)" if path.suffix == ".run" else "unreadable"
        paths = [p for p in (path, Path(f"{path}.sha256"), path.with_suffix(".run"), path.with_suffix(".lock"))
                 if p.exists()]
        out.append(row("checkpoints", path, encoder=meta.get("encoder") or path.stem.rsplit("-", 1)[0],
                       split=f"{extra['steps']} steps" if extra.get("steps") else "-", status=status,
                       paths=list(dict.fromkeys(map(str, paths)))))
    return out
