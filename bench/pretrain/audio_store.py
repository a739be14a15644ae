"""The pretraining audio store: every pool track decoded once at the encoder's sample rate into one
memory-mapped file, a :mod:`bench.store` entry (kind ``pretrain-audio``) shared by runs and by the processes
of a DDP run. Keyed by each track's content SHA-256 and span, the sample rate and the sample type (audio
changed in place, size and mtime kept, is decoded again); a flipped or truncated store fails its check and is
rebuilt.

Two sample types (recipe ``store_dtype``): ``float32`` (4 bytes a sample, the decoder's values; the demo's)
and ``int16`` (2 bytes a sample: the audio clipped to [-1, 1] and rounded to multiples of 1/32767, so a stored
sample is within 0.5/32767 of the decoded one; the paper preset's). An int16 store is converted to float32 per
crop by the sampler (:func:`bench.pretrain.sampling.crop_views`), never as a whole. A float32 store keeps the
key and the bytes it had before int16 existed.

The build decodes tracks in a process pool (``workers``, default one per CPU core) with at most two tracks
per worker in flight, and streams each decoded track, in pool order, into the one ``audio.npy`` (its header
written last): memory stays a few tracks whatever the pool's size, and the file is the same for any number
of workers (a test checks).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from bench.errors import BenchError, DataError
from bench.filelock import exclusive
from bench.pretrain.pools import Track
from bench.store import EntryError, Store, file_digests

#: the sample types a store can hold
DTYPES = ("float32", "int16")
#: an int16 sample q stands for q * INT16_SCALE
INT16_SCALE = np.float32(1.0 / 32767.0)


def quantize(audio: np.ndarray, dtype: str) -> np.ndarray:
    """``audio`` (float32) as stored: unchanged for float32; clipped to [-1, 1] and rounded to int16 steps."""
    if dtype == "float32":
        return np.asarray(audio, dtype=np.float32)
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def _decode(key: tuple, sample_rate: int, dtype: str) -> tuple[np.ndarray | None, str | None, str | None]:
    """One track: (its samples as stored, or None; why not; the decoder's notes on a track it did decode)."""
    from bench.audio import AudioError, load
    from bench.decoder_messages import capture, summary

    # what libmpg123 prints on fd 2 is kept with its file, not sprayed over the progress bar
    with capture() as notes:
        try:
            audio, err = quantize(load(key[0], sample_rate, key[1], key[2]), dtype), None
        except AudioError as exc:
            audio, err = None, str(exc)
    warn = None
    if notes:
        note = f"[decoder: {summary(notes)}]"
        err, warn = (f"{err} {note}", None) if err else (None, f"{key[0]}: {note}")
    return audio, err, warn


def _npy_header(dtype: str, n: int) -> bytes:
    out = io.BytesIO()
    header = np.lib.format.header_data_from_array_1_0(np.zeros(0, dtype=dtype))
    np.lib.format.write_array_header_1_0(out, {**header, "shape": (n,)})
    return out.getvalue()


class AudioStore:
    """Every pool track decoded once, as one memory-mapped array; undecodable files listed in ``failed``."""

    def __init__(self, tracks: list[Track], sample_rate: int, cache_dir: Path, quiet: bool = True,
                 dtype: str = "float32", workers: int | None = None) -> None:
        from bench import keys

        if dtype not in DTYPES:
            raise BenchError(f"store_dtype={dtype!r}: the pretraining audio store holds {' or '.join(DTYPES)}")
        self.dtype = dtype
        spans = sorted({(t.path, t.start, t.end) for t in tracks}, key=lambda k: (k[0], k[1] or 0.0, k[2] or 0.0))
        # float32: the key it had before int16 existed, so existing stores stay valid
        h = hashlib.sha256(f"sr={sample_rate}".encode() + (b"" if dtype == "float32" else f"|{dtype}".encode()))
        for (path, start, end), digest in zip(spans, file_digests().digests([k[0] for k in spans])):
            h.update(f"{path}|{digest}|{start}|{end}\n".encode())
        fields = {"sample_rate": sample_rate, "tracks": len(spans), "content": h.hexdigest(),
                  **({} if dtype == "float32" else {"dtype": dtype})}
        key = keys.make(fields, "pool")
        store = Store.open("pretrain-audio", Path(cache_dir) / "pretrain-audio")
        if not store.enabled:
            raise DataError(f"no writable folder for the pretraining audio under {cache_dir}: set BENCH_CACHE_DIR")
        n_workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        found, _ = store.get(key.name, key.fields, key.digest, self._open)
        if found is None:
            # two processes that need the same pool (the jobs of `bench reproduce --jobs 2`, two `bench run`
            # on one cache) decode it once: the second waits for the first and reads what it wrote
            with exclusive(store.root / f".{key.name}.lock"):
                found, _ = store.get(key.name, key.fields, key.digest, self._open)
                if found is None:
                    store.put(key.name, key.fields, key.digest,
                              lambda folder: self._build(spans, sample_rate, folder, quiet, dtype, n_workers),
                              {"split": f"{len(spans)} tracks", "task": f"{sample_rate} Hz {dtype}"})
                    found, _ = store.get(key.name, key.fields, key.digest, self._open)
        if found is None:
            raise DataError(f"the pretraining audio could not be stored under {store.root} (see the warning above)")
        self.folder = store.path(key.name)

    def _open(self, folder: Path, manifest: dict) -> bool:
        try:
            index = json.loads((folder / "index.json").read_text())
            self.data = np.load(folder / "audio.npy", mmap_mode="r")
            self.failed: list[str] = index["failed"]
            self.spans = {(p, s, e): (o, n) for p, s, e, o, n in index["spans"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EntryError(f"unreadable ({type(exc).__name__}: {exc})") from None
        if self.data.dtype != np.dtype(self.dtype) or self.data.ndim != 1:
            raise EntryError(f"its audio is {self.data.dtype}{list(self.data.shape)}, not one {self.dtype} array")
        if any(o < 0 or o + n > len(self.data) for o, n in self.spans.values()):
            raise EntryError("its index points past the end of its audio")
        return True

    @staticmethod
    def _build(keys: list[tuple], sample_rate: int, folder: Path, quiet: bool, dtype: str = "float32",
               workers: int = 1) -> None:
        from tqdm.auto import tqdm

        spans, failed, warned, offset = [], [], [], 0
        with open(folder / "audio.npy", "wb") as out:
            out.write(_npy_header(dtype, 0))  # the header's length does not depend on the count (numpy pads it)
            bar = tqdm(total=len(keys), desc="decoding pool", unit="track", disable=quiet)
            for key, (audio, err, warn) in zip(keys, _decoded(keys, sample_rate, dtype, workers)):
                bar.update(1)
                if warn:
                    warned.append(warn)
                if audio is None:
                    failed.append(err)
                    continue
                out.write(np.ascontiguousarray(audio).tobytes())
                spans.append([key[0], key[1], key[2], offset, len(audio)])
                offset += len(audio)
            bar.close()
            header = _npy_header(dtype, offset)
            if len(header) != len(_npy_header(dtype, 0)):  # numpy changed its padding: never write a bad file
                raise OSError("numpy's .npy header changed length with the array's size")
            out.seek(0)
            out.write(header)
        (folder / "index.json").write_text(json.dumps({"sample_rate": sample_rate, "dtype": dtype, "spans": spans,
                                                       "failed": failed, "decoder_warnings": warned}))

    def has(self, t: Track) -> bool:
        return (t.path, t.start, t.end) in self.spans

    def get(self, t: Track) -> np.ndarray:
        """The stored samples of ``t`` (a memory-mapped view: float32, or int16 steps of :data:`INT16_SCALE`)."""
        o, n = self.spans[(t.path, t.start, t.end)]
        return self.data[o : o + n]


def _decoded(keys: list[tuple], sample_rate: int, dtype: str, workers: int):
    """``_decode`` of every key, in order: in this process with one worker, else in a process pool with at
    most ``2 * workers`` tracks in flight (the parent's memory stays a few tracks)."""
    if workers <= 1 or len(keys) <= 1:
        for key in keys:
            yield _decode(key, sample_rate, dtype)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: the workers do not inherit the parent's threads (torch's, OpenMP's) or its memory
    with ProcessPoolExecutor(max_workers=min(workers, len(keys)),
                             mp_context=multiprocessing.get_context("forkserver")) as pool:
        pending: deque = deque()
        for key in keys:
            pending.append(pool.submit(_decode, key, sample_rate, dtype))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
