"""One split's embeddings through the embedding cache (:mod:`bench.embedding_cache`): keyed by the key
chain (:func:`key_for`), extracted in this process (:func:`embed_split`) or shared by several processes
(:func:`embed_split_shared`, under ``accelerate launch -m bench.cli run ...``).

The split is cut into the embedding cache's chunks (:func:`bench.embedding_cache.chunk_size`,
which depends on the number of tracks only, so one process and N processes
batch exactly the same windows and compute the same bytes). Shared, chunk ``c`` is
extracted by the process of rank ``c mod N``, which writes it as a shard under
the entry's ``.partial/`` folder (so an interrupted extraction resumes, on
each machine, from the shards it finished) and sends it to the main process.
The main process assembles the chunks in order, checks and writes the entry
atomically, and deletes the shards; the others hold no embeddings and go on
to the next split. A process that dies stops the launch (torchrun ends the
others), and since only the main process ever renames a finished entry into
place, there is no half entry, only shards to resume from.

Every process computes the split's cache key from its own index of the data;
a process whose key differs from the main process's (it sees other files or
labels) is an error naming it rather than a silent mix. Errors on any process
(a file system refusing writes, an encoder's exception) are sent to the main
process, and every process raises the same error, so all of them move on to
the next (encoder, task) pair together.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from bench import keys, snapshot
from bench.embedding_cache import EmbeddingCache, assemble, chunk_size
from bench.errors import BenchError
from bench.store import log


def key_for(encoder_name: str, encoder: Any, weights_hash: str, task: Any, split: str, items: Sequence[Any],
            data_root: Path, transform: str | None = None, per_window: bool = False) -> keys.Key:
    """The key of one split of ``task`` embedded by ``encoder`` (registered as ``encoder_name``)."""
    return keys.embeddings_key(
        encoder=encoder_name, encoder_config=encoder.config(), weights=weights_hash,
        plugin=keys.plugin_identity("encoder", encoder_name), task=task.name, task_settings=dict(task.settings),
        split=split, data=snapshot.fingerprint({split: items}, data_root), max_windows=task.max_windows,
        window=encoder.window, sample_rate=encoder.sample_rate, transform=transform, per_window=per_window)


def _desc(encoder: Any, task: Any, split: str, transform: Any) -> str:
    """The progress bar's label of one split's extraction."""
    return f"{encoder.name} x {task.name} [{split}{' ' + transform.id if transform else ''}]"


def embed_split(cache: EmbeddingCache, encoder_name: str, encoder: Any, weights_hash: str, task: Any, split: str,
                items: Sequence[Any], data_root: Path, *, device: str = "cpu", batch_size: int = 32,
                progress: bool = True, transform: Any = None, windows: bool = False) -> tuple[Any, dict[str, Any]]:
    """Embeddings of one split through the cache, in this process (``windows``: every window's too), and
    ``{"status", "key", "fingerprint"}`` for the record (status: hit, miss, resumed, rebuilt, off)."""
    from bench import extract as ex

    key = key_for(encoder_name, encoder, weights_hash, task, split, items, data_root,
                  transform=transform.id if transform is not None else None, per_window=windows)

    def run(sub: Sequence[Any], label: str) -> Any:
        desc = _desc(encoder, task, split, transform) + (f" {label}" if label else "")
        return ex.extract(encoder, sub, device=device, batch_size=batch_size, max_windows=task.max_windows,
                          progress=progress, desc=desc, transform=transform, keep_windows=windows)

    emb, status = cache.get_or_extract(key, items, run, dim=encoder.row_size)
    emb.key = key.digest
    return emb, {"status": status, "key": key.digest, "fingerprint": key.fields["data_fingerprint"]}


def embed_split_shared(procs: Any, store: EmbeddingCache, encoder_name: str, encoder: Any, weights_hash: str,
                       task: Any, split: str, items: Sequence[Any], data_root: Path, *, device: str = "cpu",
                       batch_size: int = 32, progress: bool = True,
                       transform: Any = None) -> tuple[Any, dict[str, Any]]:
    """Like :func:`embed_split`, shared over ``procs``; non-main processes get no rows back.

    Returns ``(embeddings, {"status", "key", "fingerprint"})``; on a process
    other than the main one the embeddings are an empty placeholder.
    """
    import numpy as np

    from bench import extract as ex

    key = key_for(encoder_name, encoder, weights_hash, task, split, items, data_root,
                  transform=transform.id if transform is not None else None)
    info = {"key": key.digest, "fingerprint": key.fields["data_fingerprint"]}
    placeholder = ex.Embeddings([], np.zeros((0, encoder.row_size), np.float32), key=key.digest)

    # 1. the main process looks for a finished entry and tells the others what to do
    found, decision = None, {"state": "extract", "key": key.digest, "status": "miss"}
    if procs.is_main and store.enabled:
        found, decision["status"] = store.load(key, items, encoder.row_size)
        decision["state"] = "hit" if found is not None else "extract"
    decision = procs.broadcast(decision)
    if decision["state"] == "hit":
        found = found if procs.is_main else placeholder
        found.key = key.digest
        return found, {**info, "status": "hit"}

    # 2. every process extracts its chunks (or reads the shards it finished before)
    t0 = time.perf_counter()
    chunk = chunk_size(len(items))
    n_chunks = max(1, -(-len(items) // chunk))
    desc = _desc(encoder, task, split, transform)
    try:
        if decision["key"] != key.digest:
            raise BenchError(f"process {procs.rank} sees other data for {task.name} {split} than the main process "
                             f"(its cache key {key.digest[:16]} vs {decision['key'][:16]}): every process must "
                             "read the same data root (same files, labels and paths)")
        parts, resumed = {}, 0
        for c in range(procs.rank, n_chunks, procs.world):
            sub = list(items[c * chunk : (c + 1) * chunk])
            part = store.load(key, sub, encoder.row_size, shard=c)[0] if store.enabled else None
            resumed += part is not None
            if part is None:
                part = ex.extract(encoder, sub, device=device, batch_size=batch_size, max_windows=task.max_windows,
                                  progress=progress, desc=f"{desc} chunk {c + 1}/{n_chunks}", transform=transform)
                if store.enabled:
                    store.write(key, part, shard=c)
            parts[c] = part
        mine: tuple = ("ok", parts, resumed)
    except Exception as exc:  # sent to the main process, so that every process raises it together
        mine = ("error", f"process {procs.rank}: {type(exc).__name__}: {exc}", 0)
    got = procs.gather(mine)

    # 3. the main process assembles, checks and writes the entry; every process learns the outcome
    emb, outcome = placeholder, None
    if procs.is_main:
        errors = [g[1] for g in got if g[0] == "error"]
        if errors:
            outcome = ("error", "; ".join(errors))
        else:
            merged = {c: p for g in got for c, p in g[1].items()}
            emb = assemble([merged[c] for c in range(n_chunks)], encoder.row_size)
            emb.seconds = time.perf_counter() - t0
            resumed = sum(g[2] for g in got)
            if resumed:
                log(f"[cache] resumed {key.name}: {resumed} of {n_chunks} chunk(s) came from an "
                    "interrupted extraction")
            status = "resumed" if resumed and decision["status"] == "miss" else decision["status"]
            if not store.enabled:
                status = "off"
            elif store.write(key, emb):
                store.drop_partial(key)
            outcome = ("ok", status)
    outcome = procs.broadcast(outcome)
    if outcome[0] == "error":
        raise BenchError(f"extracting {task.name} {split} with {encoder_name} over {procs.world} processes "
                         f"failed: {outcome[1]}")
    emb.key = key.digest
    return emb, {**info, "status": outcome[1]}

