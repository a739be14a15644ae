"""Embedding cache: track embeddings on disk, so a second run decodes no audio.

Long because: one entry's whole life is here and is easiest to check read in
one place: its key, the atomic build, chunked resume, the trust checks on load
(rows, ids, finiteness, checksum), the private fallback folder and listing.
The table files themselves are in :mod:`bench.cache_tables`.

Why: extraction (decode, resample, run the encoder over every window) is the
slow stage of a run; probes, seeds and leaderboards are cheap. The cache makes
re-running a probe grid, adding seeds or re-scoring free, and it must never
hand back embeddings that do not match what a fresh extraction would give.

Storage: one entry per (encoder, task, split) and key, a Hugging Face
``datasets`` Arrow table (``track_id`` string, ``embedding`` fixed-size list
of float32), read memory-mapped, plus ``meta.json`` (the key fields, the rows,
the skipped files, the window count, when it was made). The Audio feature of
``datasets`` is not used (it needs torchcodec); the cache holds embeddings only.

Key (:func:`make_key`): encoder name, encoder weights hash, encoder config,
task name and settings, split, the split's data fingerprint
(:func:`bench.fingerprint.data_fingerprint` over that split only: a SHA-256 of
every file's bytes, memoised by stat, so overwriting a file with other audio of
the same size changes the key, and editing the test split does not invalidate
train), and the extraction settings (max
windows, window length, sample rate, :data:`EXTRACT_VERSION`). Changing any of
them recomputes exactly the affected entries; the batch size and the device are
not part of the key (they do not change what is computed, only float rounding).

Safety:
- writes are atomic: an entry is built in ``.tmp/`` and renamed into place, so
  a reader never sees a half-written entry;
- extraction is done in chunks of :data:`CHUNK_TRACKS` tracks, each persisted
  as a shard under ``.partial/``; an interrupted extraction resumes from the
  completed shards and the final entry appears only when every chunk is done;
- every entry is checked on load (readable, row count, ids equal to the split's
  tracks minus the skipped ones, finite values, dimension, and a SHA-256 of the
  ids and matrix bytes kept in ``meta.json``, so reordered or edited rows are
  caught); a bad one is reported, deleted and rebuilt, never trusted;
- a cache folder that cannot be written falls back, with a warning, to
  ``$TMPDIR/bench-embeddings-<uid>``, used only when it is a real folder owned
  by this user with mode 0700 (another local user could otherwise create it
  first and plant entries that would be read as hits); failing that, no cache:
  the cache never fails a run.

The file digest memo of :mod:`bench.fingerprint` is kept in the same folder
(``file-digests.sqlite``), so it is trusted exactly as far as the entries are.

Layout under ``cache_dir()/embeddings/``::

    <encoder>__<task>__<split>__<key16>/meta.json, data/   complete entries
    .partial/<entry name>/shard-00000/meta.json, data/      resumable chunks
    .tmp/                                                   builds in progress
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from bench.cache_tables import (CacheEntryError, _concat_windows, _read_table, _read_windows, _write_table,
                                _write_windows, checksum)

if TYPE_CHECKING:  # pragma: no cover
    pass  # imported where used: `bench cache` and `bench list` import this module

#: bump when the extraction code changes what it computes (windowing, pooling, resampling)
EXTRACT_VERSION = "2"  # 2: long tracks read only their chosen windows (bench.audio.load_windows)
#: version of the on-disk entry layout (2: meta.json holds the data checksum)
ENTRY_FORMAT = 2
#: tracks per persisted chunk: the granularity at which an interrupted extraction resumes
CHUNK_TRACKS = 512
#: a split is cut into at least this many chunks (of at least MIN_CHUNK_TRACKS), so that several processes share it
MIN_CHUNKS, MIN_CHUNK_TRACKS = 16, 16

META = "meta.json"
DATA = "data"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)




# -- keys ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheKey:
    """The fields that determine an entry's embeddings, their digest and the entry's folder name."""

    fields: dict[str, Any]
    digest: str

    @property
    def name(self) -> str:
        f = self.fields
        return f"{_safe(f['encoder'])}__{_safe(f['task'])}__{_safe(f['split'])}__{self.digest[:16]}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text))[:60] or "x"


def make_key(
    *,
    encoder: str,
    encoder_config: dict[str, Any],
    weights_hash: str,
    task: str,
    task_settings: dict[str, Any],
    split: str,
    data_fingerprint: str,
    max_windows: int | None,
    window: int,
    sample_rate: int,
    transform: str | None = None,
    per_window: bool = False,
) -> CacheKey:
    fields = {
        "encoder": encoder,
        "encoder_config": encoder_config,
        "weights_hash": weights_hash,
        "task": task,
        "task_settings": task_settings,
        "split": split,
        "data_fingerprint": data_fingerprint,
        "extraction": {
            "max_windows": max_windows,
            "window": int(window),
            "sample_rate": int(sample_rate),
            "version": EXTRACT_VERSION,
        },
    }
    if transform is not None:  # absent for clean audio, so clean keys stay what they were
        fields["extraction"]["transform"] = transform
    if per_window:  # an entry that also keeps every window's embedding (crop/segment probes)
        fields["extraction"]["per_window"] = True
    # Round-trip through JSON so the stored fields compare equal to the ones read back.
    canon = json.dumps(fields, sort_keys=True, default=str)
    return CacheKey(json.loads(canon), hashlib.sha256(canon.encode()).hexdigest())


def key_for(encoder_name: str, encoder: Any, weights_hash: str, task: Any, split: str, items: Sequence[Any],
            data_root: Path, transform: str | None = None, per_window: bool = False) -> CacheKey:
    """The key of one split of ``task`` embedded by ``encoder`` (fingerprint computed over that split)."""
    from bench.fingerprint import data_fingerprint

    return make_key(
        encoder=encoder_name,
        encoder_config=encoder.config(),
        weights_hash=weights_hash,
        task=task.name,
        task_settings=dict(task.settings),
        split=split,
        data_fingerprint=data_fingerprint({split: items}, data_root),
        max_windows=task.max_windows,
        window=encoder.window,
        sample_rate=encoder.sample_rate,
        transform=transform,
        per_window=per_window,
    )


def embed_split(cache: "EmbeddingCache", encoder_name: str, encoder: Any, weights_hash: str, task: Any, split: str,
                items: Sequence[Any], data_root: Path, *, device: str = "cpu", batch_size: int = 32,
                progress: bool = True, transform: Any = None, windows: bool = False) -> tuple[Any, dict[str, Any]]:
    """Embeddings of one split through the cache; the run pipeline's only way to extract.

    ``windows``: the entry also keeps every window's embedding (a separate
    entry: its key says ``per_window``), for probes that train on crops or
    segments (:mod:`bench.protocols`).

    Returns the :class:`bench.extract.Embeddings` and ``{"status", "key",
    "fingerprint"}`` for the record (status: hit, miss, resumed, rebuilt, off).
    """
    from bench import extract as ex

    key = key_for(encoder_name, encoder, weights_hash, task, split, items, data_root,
                  transform=transform.id if transform is not None else None, per_window=windows)

    def run(sub: Sequence[Any], label: str) -> Any:
        desc = f"{encoder.name} x {task.name} [{split}{' ' + transform.id if transform else ''}]" + (
            f" {label}" if label else "")
        return ex.extract(encoder, sub, device=device, batch_size=batch_size, max_windows=task.max_windows,
                          progress=progress, desc=desc, transform=transform, keep_windows=windows)

    emb, status = cache.get_or_extract(key, items, run, dim=encoder.dim)
    emb.key = key.digest
    return emb, {"status": status, "key": key.digest, "fingerprint": key.fields["data_fingerprint"]}


def chunk_size(n_tracks: int) -> int:
    """Tracks per chunk of a split of ``n_tracks``: :data:`CHUNK_TRACKS`, fewer for small splits.

    It depends on the number of tracks only: one process and several
    (:mod:`bench.shard`) cut a split the same way, so the encoder sees the same
    batches and the embeddings are the same bytes.
    """
    return max(1, min(CHUNK_TRACKS, max(MIN_CHUNK_TRACKS, -(-n_tracks // MIN_CHUNKS))))


# -- the store -------------------------------------------------------------------------------------


def default_root() -> Path:
    from bench.config import cache_dir

    return cache_dir() / "embeddings"


def _writable(folder: Path, mode: int = 0o777) -> str:
    """'' when ``folder`` can be created and written, else the reason."""
    try:
        folder.mkdir(mode=mode, parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def fallback_root() -> Path:
    """The per-user fallback folder under the system's temporary folder."""
    return Path(tempfile.gettempdir()) / f"bench-embeddings-{os.getuid() if hasattr(os, 'getuid') else 'u'}"


def _private(folder: Path) -> str:
    """'' when ``folder`` is (or is now created as) a real folder of this user that only they can use.

    The shared temporary folder is writable by every local user: whoever
    creates ``bench-embeddings-<uid>`` first owns it, and entries planted there
    would be read as cache hits. So it is created with mode 0700 and used only
    when it is not a link, belongs to this user and has mode 0700.
    """
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


class EmbeddingCache:
    """Embedding entries under one folder; ``root=None`` means caching is off."""

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None

    @classmethod
    def open(cls, root: Path | None = None, *, enabled: bool = True) -> "EmbeddingCache":
        """The cache at ``root`` (default ``cache_dir()/embeddings``), or a fallback when it is not writable."""
        from bench import fingerprint

        if not enabled:
            fingerprint.persist_in(None)
            return cls(None)
        root = Path(root) if root is not None else default_root()
        why = _writable(root)
        if not why:
            cache = cls(root)
            cache._clean_stale_builds()
            fingerprint.persist_in(root)
            return cache
        fallback = fallback_root()
        why2 = _private(fallback) or _writable(fallback, 0o700)
        if not why2:
            log(f"warning: the embedding cache folder {root} is not writable ({why}); using {fallback} for now. "
                "Set BENCH_CACHE_DIR to a writable folder to keep embeddings between runs.")
            cache = cls(fallback)
            cache._clean_stale_builds()
            fingerprint.persist_in(fallback)
            return cache
        log(f"warning: the embedding cache folder {root} is not writable ({why}), nor is {fallback} ({why2}); "
            "embeddings will not be cached. Set BENCH_CACHE_DIR to a writable folder.")
        fingerprint.persist_in(None)
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _clean_stale_builds(self) -> None:
        """Delete ``.tmp`` builds left by processes that no longer run (killed mid-write)."""
        tmp = self.root / ".tmp" if self.root is not None else None
        if tmp is None or not tmp.is_dir():
            return
        for build in tmp.iterdir():
            try:
                pid = int(build.name.split(".")[-2])
            except (ValueError, IndexError):
                continue
            if pid != os.getpid() and not _alive(pid):
                shutil.rmtree(build, ignore_errors=True)

    # paths
    def entry_dir(self, key: CacheKey) -> Path:
        assert self.root is not None
        return self.root / key.name

    def partial_dir(self, key: CacheKey) -> Path:
        assert self.root is not None
        return self.root / ".partial" / key.name

    def _tmp_dir(self, label: str) -> Path:
        assert self.root is not None
        tmp = self.root / ".tmp" / f"{label}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        return tmp

    # -- main entry point ---------------------------------------------------------------------
    def get_or_extract(
        self,
        key: CacheKey,
        items: Sequence[Any],
        extract_fn: Callable[[Sequence[Any], str], Any],
        *,
        dim: int,
        chunk_tracks: int | None = None,
    ) -> tuple[Any, str]:
        """Embeddings of ``items`` for ``key``: from the cache, or extracted and stored.

        ``extract_fn(items, label)`` returns a :class:`bench.extract.Embeddings`
        (``label`` is for its progress bar). Returns ``(embeddings, status)``
        with status ``hit``, ``miss``, ``resumed`` (some chunks came from an
        interrupted run), ``rebuilt`` (a bad entry was replaced) or ``off``.
        """
        import numpy as np

        from bench.extract import Embeddings

        if not self.enabled:
            return extract_fn(items, ""), "off"
        t0 = time.perf_counter()
        status = "miss"
        entry = self.entry_dir(key)
        if entry.exists():
            try:
                emb = self._load(entry, key, items, dim)
                emb.seconds = time.perf_counter() - t0
                return emb, "hit"
            except CacheEntryError as exc:
                log(f"warning: embedding cache entry {entry} is bad ({exc}); deleting it and extracting again.")
                self._remove(entry)
                status = "rebuilt"

        chunk = max(1, int(chunk_tracks or chunk_size(len(items))))
        n_chunks = max(1, -(-len(items) // chunk))
        # in one process, shards pay (for resuming) only when the split is larger than one full chunk
        persist = n_chunks > 1 and (chunk_tracks is not None or len(items) > CHUNK_TRACKS)
        parts: list[Any] = []
        resumed = 0
        for c in range(n_chunks):
            sub = list(items[c * chunk : (c + 1) * chunk])
            label = f"chunk {c + 1}/{n_chunks}" if n_chunks > 1 else ""
            shard = self.partial_dir(key) / f"shard-{c:05d}"
            part = None
            if persist and shard.exists():
                try:
                    part = self._load(shard, key, sub, dim)
                    resumed += 1
                except CacheEntryError as exc:
                    log(f"warning: partial embeddings {shard} are bad ({exc}); extracting that chunk again.")
                    self._remove(shard)
            if part is None:
                part = extract_fn(sub, label)
                if persist:
                    self._write(shard, key, part, dim, note="shard")
            parts.append(part)
        if resumed:
            log(f"[cache] resumed {key.name}: {resumed} of {n_chunks} chunk(s) came from an interrupted extraction")
            status = "resumed" if status == "miss" else status

        kept = [it for p in parts for it in p.items]
        X = np.concatenate([p.X for p in parts]) if parts else np.zeros((0, dim), np.float32)
        emb = Embeddings(kept, X.astype(np.float32, copy=False), [s for p in parts for s in p.skipped],
                         sum(p.windows for p in parts), sum(p.seconds for p in parts),
                         [w for p in parts for w in p.warnings])
        _concat_windows(emb, parts, dim)
        if self._write(entry, key, emb, dim, note="entry"):
            self._remove(self.partial_dir(key))
        return emb, status

    # -- reading --------------------------------------------------------------------------------
    def _load(self, folder: Path, key: CacheKey, items: Sequence[Any], dim: int) -> Any:
        """Read and check one entry or shard; raise CacheEntryError when it cannot be trusted."""
        import numpy as np

        from bench.extract import Embeddings

        try:
            meta = json.loads((folder / META).read_text())
        except (OSError, ValueError) as exc:
            raise CacheEntryError(f"{META} unreadable: {exc}") from None
        if meta.get("format") != ENTRY_FORMAT:
            raise CacheEntryError(f"entry format {meta.get('format')!r}, expected {ENTRY_FORMAT}")
        if meta.get("key") != key.fields or meta.get("digest") != key.digest:
            raise CacheEntryError("its key fields do not match the folder's key")
        ids, X = _read_table(folder / DATA)
        if len(ids) != meta.get("rows") or X.shape[0] != len(ids):
            raise CacheEntryError(f"{len(ids)} rows on disk, {meta.get('rows')} expected")
        if X.ndim != 2 or X.shape[1] != dim:
            raise CacheEntryError(f"embedding size {X.shape[1:]} on disk, the encoder gives {dim}")
        if not np.isfinite(X).all():
            raise CacheEntryError("it holds NaN or infinite values")
        if meta.get("checksum") != checksum(ids, X):
            raise CacheEntryError("its data does not match the checksum written with it "
                                  "(rows reordered or values changed after it was written)")
        skipped = meta.get("skipped") or []
        skipped_ids = {s["track_id"] for s in skipped}
        expected = [it for it in items if it.track_id not in skipped_ids]
        if len(skipped_ids - {it.track_id for it in items}):
            raise CacheEntryError("it lists skipped tracks that are not in the split")
        if [it.track_id for it in expected] != ids:
            raise CacheEntryError("its track ids differ from the split's tracks")
        emb = Embeddings(expected, X, list(skipped), int(meta.get("windows", 0)), 0.0,
                         list(meta.get("warnings") or []))
        if key.fields["extraction"].get("per_window"):
            _read_windows(folder, meta, emb, dim)
        return emb

    # -- writing --------------------------------------------------------------------------------
    def _write(self, dest: Path, key: CacheKey, emb: Any, dim: int, note: str) -> bool:
        """Write ``emb`` atomically to ``dest``; False (with a warning) when the disk refuses."""
        tmp = None
        try:
            tmp = self._tmp_dir(dest.name)
            _write_table(tmp / DATA, [it.track_id for it in emb.items], emb.X, dim)
            window_meta = _write_windows(tmp, emb, dim)
            meta = {
                "format": ENTRY_FORMAT,
                "kind": note,
                "digest": key.digest,
                "key": key.fields,
                "encoder": key.fields["encoder"],
                "task": key.fields["task"],
                "split": key.fields["split"],
                "rows": len(emb.items),
                "dim": dim,
                "checksum": checksum([it.track_id for it in emb.items], emb.X),
                "windows": int(emb.windows),
                "skipped": list(emb.skipped),
                "warnings": list(emb.warnings),  # files decoded despite decoder messages (bench.decoder_messages)
                "extract_seconds": round(float(emb.seconds), 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **window_meta,
            }
            (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, dest)
            except OSError:
                if dest.exists():  # another process finished the same entry first: keep theirs
                    shutil.rmtree(tmp, ignore_errors=True)
                    return True
                raise
            return True
        except OSError as exc:
            log(f"warning: could not write embedding cache {note} {dest} ({exc}); continuing without it.")
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            return False

    def _remove(self, folder: Path) -> None:
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log(f"warning: could not delete {folder} ({exc}); delete it by hand.")

    # -- listing and clearing -------------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """One dict per complete entry and per incomplete (partial) extraction."""
        if not self.enabled or not self.root.is_dir():
            return []
        out = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            out.append(_describe(folder, "complete"))
        partial = self.root / ".partial"
        if partial.is_dir():
            for folder in sorted(p for p in partial.iterdir() if p.is_dir()):
                shards = sorted(folder.glob("shard-*"))
                info = _describe(shards[0], f"incomplete ({len(shards)} chunk(s))") if shards else {
                    "encoder": "?", "task": "?", "split": "?", "rows": 0, "created": "?", "status": "incomplete"}
                info.update(path=str(folder), size=_size(folder),
                            rows=sum(_describe(s, "")["rows"] or 0 for s in shards))
                out.append(info)
        return out

    def clear(self, encoder: str | None = None, task: str | None = None) -> list[dict[str, Any]]:
        """Delete the entries (and partial extractions) matching the filters; return what was deleted."""
        removed = []
        for info in self.entries():
            if encoder and info["encoder"] != encoder:
                continue
            if task and info["task"] != task:
                continue
            self._remove(Path(info["path"]))
            removed.append(info)
        if not encoder and not task and self.enabled:
            self._remove(self.root / ".tmp")
            from bench.fingerprint import MEMO_NAME

            (self.root / MEMO_NAME).unlink(missing_ok=True)  # clearing everything forgets file digests too
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def _describe(folder: Path, status: str) -> dict[str, Any]:
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        meta = {}
        status = "unreadable"
    parts = folder.name.split("__")
    return {
        "encoder": meta.get("encoder", parts[0] if len(parts) == 4 else "?"),
        "task": meta.get("task", parts[1] if len(parts) == 4 else "?"),
        "split": meta.get("split", parts[2] if len(parts) == 4 else "?"),
        "rows": meta.get("rows"),
        "skipped": len(meta.get("skipped") or []),
        "created": meta.get("created", "?"),
        "status": status,
        "path": str(folder),
        "size": _size(folder),
    }


def _size(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover
