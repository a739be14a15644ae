"""Extract stage: track embeddings from an encoder.

Every track is decoded, resampled to the encoder's rate and cut into
non-overlapping windows of the encoder's length (at most the task's
``max_windows``, spread over the track); windows from several tracks are
batched through ``encoder.embed`` under ``torch.no_grad()`` in eval mode on the
chosen device, and a track's embedding is the mean of its windows'. Decoding
runs in a small thread pool ahead of the model. A file that cannot be decoded
is skipped and listed; an encoder that breaks its contract (wrong shape, NaN)
stops the extraction with an error naming it. What the C decoders print on
fd 2 while decoding a file (libmpg123 on a damaged MP3) is captured per file
(:mod:`bench.decoder_messages`): it joins the reason of a skipped file, and a
file that decoded despite it is kept and listed in ``warnings``.

An optional :class:`AudioTransform` changes each decoded track before it is
windowed (the robustness experiments corrupt the test audio this way); its
``id`` is part of the embedding cache key. A track the transform fails on is
skipped and listed like an undecodable file.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from bench import decoder_messages
from bench.audio import AudioError, load, load_windows, windows
from bench.encoder import Encoder, check_embeddings
from bench.task import Item

#: decoded tracks allowed ahead of the model, per decode worker (bounds memory, keeps the workers busy)
AHEAD_PER_WORKER = 4


@dataclass
class Embeddings:
    """Track embeddings of one split, in item order, without the skipped tracks."""

    items: list[Item]
    X: np.ndarray
    skipped: list[dict[str, str]] = field(default_factory=list)
    windows: int = 0
    seconds: float = 0.0
    #: files kept although the decoder printed warnings: {"track_id", "path", "messages": [...]}
    warnings: list[dict[str, Any]] = field(default_factory=list)
    #: digest of the embedding cache key these rows belong to ('' when unknown); keys the probe cache
    key: str = ""
    #: per-window embeddings ``[windows, D]`` in item order (only when asked: crop and segment probes)
    window_X: np.ndarray | None = None
    #: windows per item, in item order (with ``window_X``)
    window_counts: np.ndarray | None = None
    #: the encoder's window length in seconds (set by bench.run.embed; segment probes need it)
    window_seconds: float | None = None


@dataclass(frozen=True)
class AudioTransform:
    """A change of the decoded audio of every track, applied before windowing.

    ``fn(waveform, sample_rate, track_id)`` returns the changed mono float32
    waveform at the same sample rate; it must be deterministic for a track
    (seed it from ``track_id``). ``id`` names the change with all its settings
    and seed (e.g. ``"reverb@0.5/seed0"``): it is part of the cache key, so
    two transforms with one id must compute the same thing.
    """

    id: str
    fn: Callable[[np.ndarray, int, str], np.ndarray]


def _decode(item: Item, sample_rate: int, length: int, max_windows: int,
            transform: AudioTransform | None = None) -> tuple[Item, np.ndarray | None, str, list[str]]:
    """(item, windows or None, reason it was skipped, what the decoder printed on fd 2)."""
    with decoder_messages.capture() as notes:
        item, w, reason = _decode_windows(item, sample_rate, length, max_windows, transform)
    if w is None and notes:
        reason = f"{reason} [decoder: {decoder_messages.summary(notes)}]"
    return item, w, reason, notes


def _decode_windows(item: Item, sample_rate: int, length: int, max_windows: int,
                    transform: AudioTransform | None) -> tuple[Item, np.ndarray | None, str]:
    try:
        if transform is None:
            # only the windows that are used are read: a two-hour file is not decoded whole
            return item, load_windows(item.path, sample_rate, length, max_windows, item.start, item.end), ""
        x = load(item.path, sample_rate, item.start, item.end)  # a transform sees the whole track
    except AudioError as exc:
        return item, None, exc.reason
    try:
        x = np.asarray(transform.fn(x, sample_rate, item.track_id), dtype=np.float32)
    except Exception as exc:  # one file the effect fails on is skipped and counted, the rest goes on
        return item, None, f"transform {transform.id} failed: {type(exc).__name__}: {exc}"
    if x.ndim != 1 or not np.isfinite(x).all():
        return item, None, f"transform {transform.id} returned a non-finite or non-mono signal"
    return item, windows(x, length, max_windows), ""


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
    transform: AudioTransform | None = None,
    keep_windows: bool = False,
) -> Embeddings:
    """Embed ``items`` with ``encoder`` (already on ``device`` and in eval mode), after ``transform``.

    ``keep_windows``: also return every window's embedding (``window_X``,
    ``window_counts``), for probes that train on crops or segments.
    """
    import torch

    t0 = time.perf_counter()
    kept: list[Item] = []
    skipped: list[dict[str, str]] = []
    warned: list[dict[str, Any]] = []
    # One float32 row per kept track, written when its last window is embedded. Only the tracks whose
    # windows are still in flight hold a float64 sum (a few dozen): a float64 matrix for the whole split
    # cost 1.5 KB per track at 192-d, twice the embeddings themselves, and a small array per track
    # plus stacking cost more still. The row is the float64 mean cast to float32, as before, bit for bit.
    X = np.zeros((len(items), encoder.row_size), dtype=np.float32)
    open_sums: dict[int, np.ndarray] = {}
    open_left: dict[int, int] = {}
    counts: list[int] = []
    buf: list[np.ndarray] = []
    owners: list[int] = []
    n_windows = 0
    per_window: dict[int, list[np.ndarray]] = {}

    def flush() -> None:
        nonlocal buf, owners
        if not buf:
            return
        batch = torch.from_numpy(np.concatenate(buf)).to(device)
        with torch.no_grad():
            out = encoder.embed(batch)
        check_embeddings(encoder, out, batch.shape[0])
        emb = out.detach().float().cpu().numpy().reshape(batch.shape[0], -1)  # a stack of layers: side by side
        for row, owner in zip(emb, np.concatenate(owners)):
            owner = int(owner)
            open_sums[owner] += row
            if keep_windows:
                per_window[owner].append(row)
            open_left[owner] -= 1
            if not open_left[owner]:
                total = open_sums.pop(owner)
                del open_left[owner]
                total /= counts[owner]
                X[owner] = total.astype(np.float32)
        buf, owners = [], []

    bar = _progress(len(items), desc, progress)
    pending = 0
    with ThreadPoolExecutor(max(1, workers)) as pool:
        decoded = _ahead(pool, lambda it: _decode(it, encoder.sample_rate, encoder.window, max_windows, transform),
                         items, AHEAD_PER_WORKER * max(1, workers))
        for item, w, reason, notes in decoded:
            bar.update(1)
            if w is None:
                skipped.append({"track_id": item.track_id, "path": item.path, "reason": reason})
                continue
            if notes:
                warned.append({"track_id": item.track_id, "path": item.path, "messages": notes})
            idx = len(kept)
            kept.append(item)
            if keep_windows:
                per_window[idx] = []
            counts.append(len(w))
            open_sums[idx] = np.zeros(encoder.row_size, dtype=np.float64)
            open_left[idx] = len(w)
            n_windows += len(w)
            buf.append(w)
            owners.append(np.full(len(w), idx))
            pending += len(w)
            if pending >= batch_size:
                flush()
                pending = 0
        flush()
    bar.close()
    out = Embeddings(kept, X[: len(kept)], skipped, n_windows, time.perf_counter() - t0, warned)
    if keep_windows:
        rows = [r for i in range(len(kept)) for r in per_window[i]]
        out.window_X = np.stack(rows).astype(np.float32) if rows else np.zeros((0, encoder.row_size), np.float32)
        out.window_counts = np.asarray(counts, dtype=np.int64)
    return out


def _ahead(pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: Iterable[Any], ahead: int) -> Iterator[Any]:
    """``pool.map(fn, items)`` with at most ``ahead`` results in flight or waiting.

    ``Executor.map`` submits every item at once, so when decoding outruns the
    model the decoded windows of a whole chunk pile up in memory (512 MTAT
    clips: about 900 MB); here memory holds a few tracks whatever the split's size.
    """
    from collections import deque

    it = iter(items)
    queue = deque(pool.submit(fn, x) for x in itertools.islice(it, ahead))
    while queue:
        result = queue.popleft().result()
        for x in itertools.islice(it, 1):
            queue.append(pool.submit(fn, x))
        yield result


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="track", disable=not enabled, leave=False, dynamic_ncols=True)
