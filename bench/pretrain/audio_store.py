"""The pretraining audio store: every pool track decoded once at the encoder's sample rate into one
memory-mapped file (:mod:`bench.pretrain.decode` builds it, one worker a CPU core by default), a
:mod:`bench.store` entry (kind ``pretrain-audio``) shared by runs and by the processes of a DDP run. Keyed by
each track's content SHA-256 and span, the sample rate and the sample type (audio changed in place, size and
mtime kept, is decoded again); a flipped or truncated store fails its check and is rebuilt. A float32 store
keeps the key and the bytes it had before int16 existed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from bench.errors import BenchError, DataError
from bench.filelock import exclusive
from bench.pretrain import decode
from bench.pretrain.pools import Track
from bench.store import EntryError, Store, file_digests


class AudioStore:
    """Every pool track decoded once, as one memory-mapped array; undecodable files listed in ``failed``."""

    def __init__(self, tracks: list[Track], sample_rate: int, cache_dir: Path, quiet: bool = True,
                 dtype: str = "float32", workers: int | None = None) -> None:
        from bench import keys

        if dtype not in decode.DTYPES:
            raise BenchError(f"store_dtype={dtype!r}: the pretraining audio store holds {' or '.join(decode.DTYPES)}")
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
                              lambda folder: decode.write_pool(spans, sample_rate, folder, quiet, dtype, n_workers),
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

    def has(self, t: Track) -> bool:
        return (t.path, t.start, t.end) in self.spans

    def get(self, t: Track) -> np.ndarray:
        """The stored samples of ``t`` (a memory-mapped view: float32, or int16 steps of ``decode.INT16_SCALE``)."""
        o, n = self.spans[(t.path, t.start, t.end)]
        return self.data[o : o + n]
