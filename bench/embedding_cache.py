"""Embedding cache: track embeddings on disk, so a second run decodes no audio (extraction is a run's slow stage).

An entry per (encoder, task, split) and key (:func:`bench.keys.embeddings_key`) is a :mod:`bench.store` entry:
``data/`` a Hugging Face ``datasets`` Arrow table (``track_id``, ``embedding`` float32, memory-mapped),
``windows/`` the same per window when the key says ``per_window``, and ``meta.json`` (rows, skipped files,
decoder warnings, window counts). The store checks every file's checksum; this module checks that the rows are
the split's tracks, finite and of the encoder's size. Extraction goes in chunks (:func:`chunk_size`); in a large
split each is kept as a shard under ``.partial/<entry>/`` (a store of its own), so an interrupted extraction
resumes. Batch size and device are not in the key (they change float rounding only).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from bench import keys
from bench.store import EntryError, Store, log, open_root, persist_digests, remove

#: tracks per persisted chunk: the granularity at which an interrupted extraction resumes
CHUNK_TRACKS = 512
#: a split is cut into at least this many chunks (of at least MIN_CHUNK_TRACKS), so that several processes share it
MIN_CHUNKS, MIN_CHUNK_TRACKS = 16, 16
META, DATA, WINDOWS = "meta.json", "data", "windows"


def chunk_size(n_tracks: int) -> int:
    """Tracks per chunk of a split of ``n_tracks``: :data:`CHUNK_TRACKS`, fewer for small splits. It depends on
    the number of tracks only, so one process and several (:mod:`bench.shard`) compute the same bytes."""
    return max(1, min(CHUNK_TRACKS, max(MIN_CHUNK_TRACKS, -(-n_tracks // MIN_CHUNKS))))


class EmbeddingCache(Store):
    """Embedding entries: a :class:`bench.store.Store` of kind ``embeddings``; ``root=None``: off."""

    def __init__(self, root: Path | None) -> None:
        super().__init__("embeddings", root)

    @classmethod
    def open(cls, root: Path | None = None, *, enabled: bool = True) -> "EmbeddingCache":  # type: ignore[override]
        """The cache at ``root`` (default ``<cache>/embeddings``), the private fallback, or off."""
        if not enabled:
            persist_digests(None)
        return cls(open_root("embeddings", root, enabled))

    def entry_dir(self, key: keys.Key) -> Path:
        return self.path(key.name)

    def partial_dir(self, key: keys.Key) -> Path:
        return self.path(".partial") / key.name

    def _where(self, key: keys.Key, shard: int | None) -> tuple[Store, str]:
        """The store and name of ``key``'s entry, or of its chunk ``shard`` (a store under ``.partial/``)."""
        return (self, key.name) if shard is None else (Store("embeddings", self.partial_dir(key)),
                                                             f"shard-{shard:05d}")

    def load(self, key: keys.Key, items: Sequence[Any], dim: int, shard: int | None = None) -> tuple[Any, str]:
        """The verified entry (or chunk) of ``key`` holding ``items``: ``(emb, "hit")``, else ``(None, "miss" |
        "rebuilt")``."""
        store, name = self._where(key, shard)
        return store.get(name, key.fields, key.digest, lambda folder, man: _load(folder, key, items, dim))

    def write(self, key: keys.Key, emb: Any, shard: int | None = None) -> bool:
        (store, name), f = self._where(key, shard), key.fields
        return store.put(name, f, key.digest, lambda folder: _write(folder, emb), {
            "encoder": f["encoder"], "task": f["task"], "split": f["split"], "rows": len(emb.items),
            "skipped": len(emb.skipped)})

    def drop_partial(self, key: keys.Key) -> None:
        remove(self.partial_dir(key))

    def get_or_extract(self, key: keys.Key, items: Sequence[Any], extract_fn: Callable[[Sequence[Any], str], Any],
                       *, dim: int, chunk_tracks: int | None = None) -> tuple[Any, str]:
        """Embeddings of ``items`` for ``key``: from the cache, or extracted (``extract_fn(items, label)``) and
        stored. Status ``hit``, ``miss``, ``resumed`` (chunks from an interrupted run), ``rebuilt`` or ``off``."""
        if not self.enabled:
            return extract_fn(items, ""), "off"
        t0 = time.perf_counter()
        emb, status = self.load(key, items, dim)
        if emb is not None:
            emb.seconds = time.perf_counter() - t0
            return emb, status
        chunk = max(1, int(chunk_tracks or chunk_size(len(items))))
        n_chunks = max(1, -(-len(items) // chunk))
        # in one process, shards pay (for resuming) only when the split is larger than one full chunk
        persist = n_chunks > 1 and (chunk_tracks is not None or len(items) > CHUNK_TRACKS)
        parts, resumed = [], 0
        for c in range(n_chunks):
            sub = list(items[c * chunk : (c + 1) * chunk])
            part = self.load(key, sub, dim, shard=c)[0] if persist else None
            resumed += part is not None
            if part is None:
                part = extract_fn(sub, f"chunk {c + 1}/{n_chunks}" if n_chunks > 1 else "")
                if persist:
                    self.write(key, part, shard=c)
            parts.append(part)
        if resumed:
            log(f"[cache] resumed {key.name}: {resumed} of {n_chunks} chunk(s) came from an interrupted extraction")
            status = "resumed" if status == "miss" else status
        emb = assemble(parts, dim)
        if self.write(key, emb):
            self.drop_partial(key)
        return emb, status


def assemble(parts: list[Any], dim: int) -> Any:
    """One split's embeddings from its chunks, in chunk order (window embeddings too, when every chunk has them).
    Here, not in :mod:`bench.extract`: that module's code is in every embeddings key, and assembling does not
    change a value."""
    import numpy as np

    from bench.extract import Embeddings

    X = np.concatenate([p.X for p in parts]) if parts else np.zeros((0, dim), np.float32)
    emb = Embeddings([it for p in parts for it in p.items], X.astype(np.float32, copy=False),
                     [s for p in parts for s in p.skipped], sum(p.windows for p in parts),
                     sum(p.seconds for p in parts), [w for p in parts for w in p.warnings])
    if parts and all(p.window_X is not None for p in parts):
        emb.window_X = np.concatenate([p.window_X for p in parts]).astype(np.float32, copy=False)
        emb.window_counts = np.concatenate([p.window_counts for p in parts]).astype(np.int64)
    return emb


def _write(folder: Path, emb: Any) -> None:
    dim = emb.X.shape[1]
    write_table(folder / DATA, [it.track_id for it in emb.items], emb.X, dim)
    meta: dict[str, Any] = {"rows": len(emb.items), "dim": dim, "windows": int(emb.windows),
                            "skipped": list(emb.skipped), "warnings": list(emb.warnings),
                            "extract_seconds": round(float(emb.seconds), 3)}
    if emb.window_X is not None:
        counts = [int(c) for c in emb.window_counts]
        write_table(folder / WINDOWS, [it.track_id for it, c in zip(emb.items, counts) for _ in range(c)],
                    emb.window_X, dim)
        meta["window_counts"] = counts
    (folder / META).write_text(json.dumps(meta, sort_keys=True))


def _load(folder: Path, key: keys.Key, items: Sequence[Any], dim: int) -> Any:
    """The embeddings of a verified entry or shard; EntryError when they are not the split's tracks."""
    import numpy as np

    from bench.extract import Embeddings

    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError) as exc:
        raise EntryError(f"{META} unreadable: {exc}") from None
    ids, X = read_table(folder / DATA)
    if len(ids) != meta.get("rows") or X.shape[0] != len(ids):
        raise EntryError(f"{len(ids)} rows on disk, {meta.get('rows')} expected")
    if X.ndim != 2 or X.shape[1] != dim:
        raise EntryError(f"embedding size {X.shape[1:]} on disk, the encoder gives {dim}")
    if not np.isfinite(X).all():
        raise EntryError("it holds NaN or infinite values")
    skipped = list(meta.get("skipped") or [])
    skipped_ids = {s["track_id"] for s in skipped}
    if skipped_ids - {it.track_id for it in items}:
        raise EntryError("it lists skipped tracks that are not in the split")
    expected = [it for it in items if it.track_id not in skipped_ids]
    if [it.track_id for it in expected] != ids:
        raise EntryError("its track ids differ from the split's tracks")
    emb = Embeddings(expected, X, skipped, int(meta.get("windows", 0)), 0.0, list(meta.get("warnings") or []))
    if key.fields["extraction"].get("per_window"):
        counts = meta.get("window_counts")
        if not isinstance(counts, list) or len(counts) != len(expected) or any(c < 1 for c in counts):
            raise EntryError("its per-window counts are missing or do not match its tracks")
        wids, W = read_table(folder / WINDOWS)
        if W.shape[0] != sum(counts) or W.shape[1] != dim or not np.isfinite(W).all():
            raise EntryError(f"{W.shape[0]} window rows on disk, {sum(counts)} finite ones expected")
        if wids != [it.track_id for it, c in zip(expected, counts) for _ in range(c)]:
            raise EntryError("its window rows do not follow its tracks")
        emb.window_X, emb.window_counts = W, np.asarray(counts, dtype=np.int64)
    return emb


# -- Arrow tables ----------------------------------------------------------------------------------


def write_table(folder: Path, ids: list[str], X: Any, dim: int) -> None:
    """Save ``ids`` and the ``[N, dim]`` float32 matrix as a ``datasets`` table in ``folder`` (columns built from
    the matrix's buffer: ``Dataset.from_dict`` goes through a Python list per row, 18x slower; same files)."""
    import numpy as np
    import pyarrow as pa

    import datasets
    from datasets.table import InMemoryTable

    datasets.disable_progress_bars()
    features = datasets.Features({"track_id": datasets.Value("string"),
                                  "embedding": datasets.List(datasets.Value("float32"), length=dim)})
    X = np.ascontiguousarray(X, dtype=np.float32).reshape(len(ids), dim)
    table = pa.table({"track_id": pa.array(list(ids), pa.string()),
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), dim)})
    datasets.Dataset(InMemoryTable(table), info=datasets.DatasetInfo(features=features)).save_to_disk(str(folder))


def read_table(folder: Path) -> tuple[list[str], Any]:
    """Ids and ``[N, D]`` matrix of a :func:`write_table` table: the Arrow files ``state.json`` lists, mapped with
    pyarrow directly (importing ``datasets`` costs a second, ``to_numpy`` imports pandas); EntryError if unreadable."""
    import numpy as np
    import pyarrow as pa

    try:
        state = json.loads((folder / "state.json").read_text())
        tables = [pa.ipc.open_stream(pa.memory_map(str(folder / f["filename"]), "r")).read_all()
                  for f in state["_data_files"]]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        ids = table.column("track_id").to_pylist()
        col = table.column("embedding").combine_chunks()
        dim, n = col.type.list_size, len(ids)
        if col.null_count or col.values.null_count:
            raise EntryError("embedding column holds nulls")
        first = col.offset * dim + col.values.offset
        X = np.frombuffer(col.values.buffers()[1], dtype=np.float32, count=n * dim, offset=first * 4) if n \
            else np.zeros(0, np.float32)
    except EntryError:
        raise
    except Exception as exc:  # pyarrow raises many types for damaged files
        raise EntryError(f"data unreadable ({type(exc).__name__}: {exc})") from None
    return ids, X.reshape(n, dim)
