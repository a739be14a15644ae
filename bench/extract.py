"""Extract stage: track embeddings from an encoder.

Every track is decoded, resampled to the encoder's rate and cut into
non-overlapping windows of the encoder's length (at most the task's
``max_windows``, spread over the track); windows from several tracks are
batched through ``encoder.embed`` under ``torch.no_grad()`` in eval mode on the
chosen device, and a track's embedding is the mean of its windows'. Decoding
runs in a small thread pool ahead of the model. A file that cannot be decoded
is skipped and listed; an encoder that breaks its contract (wrong shape, NaN)
stops the extraction with an error naming it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from bench.audio import AudioError, load_windows
from bench.encoder import Encoder, check_embeddings
from bench.task import Item


@dataclass
class Embeddings:
    """Track embeddings of one split, in item order, without the skipped tracks."""

    items: list[Item]
    X: np.ndarray
    skipped: list[dict[str, str]] = field(default_factory=list)
    windows: int = 0
    seconds: float = 0.0


def _decode(item: Item, sample_rate: int, length: int, max_windows: int) -> tuple[Item, np.ndarray | None, str]:
    try:
        # only the windows that are used are read: a two-hour file is not decoded whole
        return item, load_windows(item.path, sample_rate, length, max_windows, item.start, item.end), ""
    except AudioError as exc:
        return item, None, exc.reason


def extract(
    encoder: Encoder,
    items: Sequence[Item],
    *,
    device: str = "cpu",
    batch_size: int = 32,
    max_windows: int = 64,
    workers: int = 2,
    progress: bool = True,
    desc: str = "extract",
) -> Embeddings:
    """Embed ``items`` with ``encoder`` (already on ``device`` and in eval mode)."""
    import torch

    t0 = time.perf_counter()
    kept: list[Item] = []
    skipped: list[dict[str, str]] = []
    sums: list[np.ndarray] = []
    counts: list[int] = []
    buf: list[np.ndarray] = []
    owners: list[int] = []
    n_windows = 0

    def flush() -> None:
        nonlocal buf, owners
        if not buf:
            return
        batch = torch.from_numpy(np.concatenate(buf)).to(device)
        with torch.no_grad():
            out = encoder.embed(batch)
        check_embeddings(encoder, out, batch.shape[0])
        emb = out.detach().float().cpu().numpy()
        for row, owner in zip(emb, np.concatenate(owners)):
            sums[owner] += row
        buf, owners = [], []

    bar = _progress(len(items), desc, progress)
    pending = 0
    with ThreadPoolExecutor(max(1, workers)) as pool:
        decoded: Iterable = pool.map(lambda it: _decode(it, encoder.sample_rate, encoder.window, max_windows), items)
        for item, w, reason in decoded:
            bar.update(1)
            if w is None:
                skipped.append({"track_id": item.track_id, "path": item.path, "reason": reason})
                continue
            idx = len(kept)
            kept.append(item)
            sums.append(np.zeros(encoder.dim, dtype=np.float64))
            counts.append(len(w))
            n_windows += len(w)
            buf.append(w)
            owners.append(np.full(len(w), idx))
            pending += len(w)
            if pending >= batch_size:
                flush()
                pending = 0
        flush()
    bar.close()
    X = (np.stack(sums) / np.asarray(counts)[:, None]).astype(np.float32) if kept else np.zeros((0, encoder.dim), np.float32)
    return Embeddings(kept, X, skipped, n_windows, time.perf_counter() - t0)


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="track", disable=not enabled, leave=False, dynamic_ncols=True)
