"""The pretraining audio store: every pool track decoded once at the encoder's sample rate into one
memory-mapped float32 file, a :mod:`bench.store` entry (kind ``pretrain-audio``) shared by runs and by the
processes of a DDP run. Keyed by each track's content SHA-256 and span and the sample rate (audio changed in
place, size and mtime kept, is decoded again); a flipped or truncated store fails its check and is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from bench.errors import DataError
from bench.filelock import exclusive
from bench.pretrain.pools import Track
from bench.store import EntryError, Store, file_digests


class AudioStore:
    """Every pool track decoded once, as one memory-mapped float32 array; undecodable files listed in ``failed``."""

    def __init__(self, tracks: list[Track], sample_rate: int, cache_dir: Path, quiet: bool = True) -> None:
        from bench import keys

        spans = sorted({(t.path, t.start, t.end) for t in tracks}, key=lambda k: (k[0], k[1] or 0.0, k[2] or 0.0))
        h = hashlib.sha256(f"sr={sample_rate}".encode())
        for (path, start, end), digest in zip(spans, file_digests().digests([k[0] for k in spans])):
            h.update(f"{path}|{digest}|{start}|{end}\n".encode())
        key = keys.make({"sample_rate": sample_rate, "tracks": len(spans), "content": h.hexdigest()}, "pool")
        store = Store.open("pretrain-audio", Path(cache_dir) / "pretrain-audio")
        if not store.enabled:
            raise DataError(f"no writable folder for the pretraining audio under {cache_dir}: set BENCH_CACHE_DIR")
        found, _ = store.get(key.name, key.fields, key.digest, self._open)
        if found is None:
            # two processes that need the same pool (the jobs of `bench reproduce --jobs 2`, two `bench run`
            # on one cache) decode it once: the second waits for the first and reads what it wrote
            with exclusive(store.root / f".{key.name}.lock"):
                found, _ = store.get(key.name, key.fields, key.digest, self._open)
                if found is None:
                    store.put(key.name, key.fields, key.digest,
                              lambda folder: self._build(spans, sample_rate, folder, quiet),
                              {"split": f"{len(spans)} tracks", "task": f"{sample_rate} Hz"})
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
        if any(o < 0 or o + n > len(self.data) for o, n in self.spans.values()):
            raise EntryError("its index points past the end of its audio")
        return True

    @staticmethod
    def _build(keys: list[tuple], sample_rate: int, folder: Path, quiet: bool) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        from bench.audio import AudioError, load
        from bench.decoder_messages import capture, summary

        def decode(key):
            # what libmpg123 prints on fd 2 is kept with its file, not sprayed over the progress bar
            with capture() as notes:
                try:
                    audio, err = load(key[0], sample_rate, key[1], key[2]), None
                except AudioError as exc:
                    audio, err = None, str(exc)
            if notes:
                note = f"[decoder: {summary(notes)}]"
                err = f"{err} {note}" if err else None
                if audio is not None:
                    warned.append(f"{key[0]}: {note}")
            return audio, err

        spans, failed, offset, chunks, warned = [], [], 0, [], []
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            results = pool.map(decode, keys)
            for key, (audio, err) in tqdm(zip(keys, results), total=len(keys), desc="decoding pool",
                                           unit="track", disable=quiet):
                if audio is None:
                    failed.append(err)
                    continue
                spans.append([key[0], key[1], key[2], offset, len(audio)])
                chunks.append(audio)
                offset += len(audio)
        np.save(folder / "audio.npy", np.concatenate(chunks) if chunks else np.zeros(0, np.float32),
                allow_pickle=False)
        (folder / "index.json").write_text(json.dumps({"sample_rate": sample_rate, "spans": spans, "failed": failed,
                                                       "decoder_warnings": warned}))

    def has(self, t: Track) -> bool:
        return (t.path, t.start, t.end) in self.spans

    def get(self, t: Track) -> np.ndarray:
        o, n = self.spans[(t.path, t.start, t.end)]
        return self.data[o : o + n]
