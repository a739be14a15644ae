"""The pretraining audio store: every pool track decoded once at the encoder's sample rate into a
memory-mapped float32 file under ``<cache>/pretrain-audio`` (shared by runs and by the processes of a DDP
run); views are cropped from it (:mod:`bench.pretrain.sampling`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from bench.filelock import exclusive
from bench.pretrain.pools import Track


class AudioStore:
    """Every pool track decoded once at one sample rate, as one memory-mapped float32 array.

    The cache is keyed by the tracks (path, size, mtime, span) and the sample
    rate, so later runs and the other processes of a DDP run reuse it. Files
    that cannot be decoded are skipped and listed in ``failed``.
    """

    def __init__(self, tracks: list[Track], sample_rate: int, cache_dir: Path, quiet: bool = True) -> None:
        keys = sorted({(t.path, t.start, t.end) for t in tracks}, key=lambda k: (k[0], k[1] or 0.0, k[2] or 0.0))
        h = hashlib.sha256(f"sr={sample_rate}".encode())
        for path, start, end in keys:
            try:
                st = os.stat(path)
                h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}|{start}|{end}\n".encode())
            except OSError:
                h.update(f"{path}|missing|{start}|{end}\n".encode())
        folder = Path(cache_dir) / "pretrain-audio" / h.hexdigest()[:20]
        index_file = folder / "index.json"
        if not index_file.is_file():
            # two processes that need the same pool (the jobs of `bench reproduce --jobs 2`, two `bench run`
            # on one cache) decode it once: the second waits for the first and reads what it wrote
            with exclusive(folder.parent / f"{folder.name}.lock"):
                if not index_file.is_file():
                    self._build(keys, sample_rate, folder, quiet)
        index = json.loads(index_file.read_text())
        self.folder = folder
        self.failed: list[str] = index["failed"]
        self.data = np.load(folder / "audio.npy", mmap_mode="r")
        self.spans = {(p, s, e): (o, n) for p, s, e, o, n in index["spans"]}

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

        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"audio.npy.tmp-{os.getpid()}"
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
        np.save(tmp, np.concatenate(chunks) if chunks else np.zeros(0, np.float32), allow_pickle=False)
        # np.save appends .npy when the name lacks it
        written = tmp if tmp.exists() else Path(str(tmp) + ".npy")
        os.replace(written, folder / "audio.npy")
        itmp = folder / f"index.json.tmp-{os.getpid()}"
        itmp.write_text(json.dumps({"sample_rate": sample_rate, "spans": spans, "failed": failed,
                                     "decoder_warnings": warned}))
        os.replace(itmp, folder / "index.json")

    def has(self, t: Track) -> bool:
        return (t.path, t.start, t.end) in self.spans

    def get(self, t: Track) -> np.ndarray:
        o, n = self.spans[(t.path, t.start, t.end)]
        return self.data[o : o + n]
