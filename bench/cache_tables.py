"""The embedding cache's tables on disk: Arrow files of track embeddings (and of window embeddings), checksums.

:mod:`bench.cache` decides what is an entry and when it can be trusted; this
module only writes and reads its tables (HF ``datasets`` Arrow, memory-mapped)
and computes the checksum that is kept beside them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np  # imported where used: bench.cache is imported by `bench cache` and `bench list`


class CacheEntryError(Exception):
    """An entry on disk that cannot be trusted (the message says what is wrong)."""


def checksum(ids: Sequence[str], X: np.ndarray) -> str:
    """SHA-256 of the track ids, in order, and the float32 matrix bytes: kept in meta.json, checked on load."""
    import numpy as np


    h = hashlib.sha256()
    h.update(json.dumps(list(ids)).encode())
    X = np.ascontiguousarray(X, dtype=np.float32)
    h.update(f"{X.shape}".encode())
    h.update(memoryview(X).cast("B"))
    return "sha256:" + h.hexdigest()


# -- Arrow I/O -------------------------------------------------------------------------------------


def _write_table(folder: Path, ids: list[str], X: np.ndarray, dim: int) -> None:
    """Save ``ids`` and the ``[N, dim]`` float32 matrix as a ``datasets`` table (Arrow) in ``folder``.

    The Arrow columns are built from the matrix's buffer directly: ``Dataset.from_dict`` with a numpy matrix
    goes through a Python list of floats per row (for 60,000 rows of 192: 4.6 s and 500 MB more peak memory,
    against 0.26 s here); the files written are the same bytes.
    """
    import numpy as np
    import pyarrow as pa

    import datasets
    from datasets.table import InMemoryTable

    datasets.disable_progress_bars()
    features = datasets.Features({
        "track_id": datasets.Value("string"),
        "embedding": datasets.List(datasets.Value("float32"), length=dim),
    })
    X = np.ascontiguousarray(X, dtype=np.float32).reshape(len(ids), dim)
    table = pa.table({"track_id": pa.array(list(ids), pa.string()),
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), dim)})
    ds = datasets.Dataset(InMemoryTable(table), info=datasets.DatasetInfo(features=features))
    ds.save_to_disk(str(folder))


def _matrix(col: Any, n: int) -> np.ndarray:
    """``[n, D]`` float32 view of a fixed-size-list column, straight from its (memory-mapped) buffer.

    Done by hand because ``flatten``/``to_numpy`` import pyarrow.compute and
    pandas (half a second), which is most of a warm run's extraction stage.
    """
    import numpy as np


    dim = col.type.list_size
    if col.null_count or col.values.null_count:
        raise CacheEntryError("embedding column holds nulls")
    vals = col.values
    first = (col.offset * dim) + vals.offset
    buf = vals.buffers()[1]
    X = np.frombuffer(buf, dtype=np.float32, count=n * dim, offset=first * 4) if n else np.zeros(0, np.float32)
    return X.reshape(n, dim)


def _read_table(folder: Path) -> tuple[list[str], np.ndarray]:
    """Track ids and the ``[N, D]`` float32 matrix of a dataset saved by :func:`_write_table`.

    The Arrow files that ``datasets.save_to_disk`` listed in ``state.json`` are
    memory-mapped with pyarrow directly: importing ``datasets`` costs about a
    second, more than reading every entry of a run, and the files are the same
    (``datasets.load_from_disk`` opens an entry too). An unexpected layout
    falls back to ``datasets.load_from_disk``.
    """
    import pyarrow as pa

    try:
        try:
            state = json.loads((folder / "state.json").read_text())
            files = [folder / f["filename"] for f in state["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError):
            files = []
        if files:
            tables = [pa.ipc.open_stream(pa.memory_map(str(f), "r")).read_all() for f in files]
            table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        else:
            import datasets

            table = datasets.load_from_disk(str(folder)).data.table
        ids = table.column("track_id").to_pylist()
        X = _matrix(table.column("embedding").combine_chunks(), len(ids))
    except Exception as exc:  # pyarrow/datasets raise many types for damaged files
        raise CacheEntryError(f"data unreadable ({type(exc).__name__}: {exc})") from None
    return ids, X


# -- per-window embeddings (crop and segment probes, bench.protocols) --------------------------------
# An entry whose key says ``per_window`` holds, besides the track means, every window's embedding
# in a second table (``windows/``: one row per window, in track order) and the window count per
# track in ``meta.json``; checked on load like the means.

WINDOWS = "windows"


def _concat_windows(emb: Any, parts: Sequence[Any], dim: int) -> None:
    """Join the per-window embeddings of an extraction's chunks onto ``emb`` (when they were kept)."""
    import numpy as np


    if parts and all(p.window_X is not None for p in parts):
        emb.window_X = np.concatenate([p.window_X for p in parts]).astype(np.float32, copy=False)
        emb.window_counts = np.concatenate([p.window_counts for p in parts]).astype(np.int64)


def _write_windows(folder: Path, emb: Any, dim: int) -> dict[str, Any]:
    """Write ``emb``'s window table into ``folder`` (nothing without one); the fields for ``meta.json``."""
    if emb.window_X is None:
        return {}
    counts = [int(c) for c in emb.window_counts]
    ids = [it.track_id for it, c in zip(emb.items, counts) for _ in range(c)]
    _write_table(folder / WINDOWS, ids, emb.window_X, dim)
    return {"window_counts": counts}


def _read_windows(folder: Path, meta: dict[str, Any], emb: Any, dim: int) -> None:
    """Load and check the window table of a per-window entry onto ``emb``; CacheEntryError when it is wrong."""
    import numpy as np


    counts = meta.get("window_counts")
    if not isinstance(counts, list) or len(counts) != len(emb.items):
        raise CacheEntryError("its per-window counts are missing or do not match its tracks")
    ids, W = _read_table(folder / WINDOWS)
    if W.shape[0] != sum(counts) or (W.ndim == 2 and W.shape[1] != dim) or any(c < 1 for c in counts):
        raise CacheEntryError(f"{W.shape[0]} window rows on disk, {sum(counts)} expected")
    if ids != [it.track_id for it, c in zip(emb.items, counts) for _ in range(c)]:
        raise CacheEntryError("its window rows do not follow its tracks")
    if not np.isfinite(W).all():
        raise CacheEntryError("its window embeddings hold NaN or infinite values")
    emb.window_X, emb.window_counts = W, np.asarray(counts, dtype=np.int64)
