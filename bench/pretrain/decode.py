"""Decoding a pretraining pool into one ``.npy`` file: the build step of the pretraining audio store
(:mod:`bench.pretrain.audio_store`), as :mod:`bench.extract` is the build step of the embedding cache.

Two sample types (recipe ``store_dtype``): ``float32`` (4 bytes a sample, the decoder's values; the demo's)
and ``int16`` (2 bytes a sample: the audio clipped to [-1, 1] and rounded to multiples of 1/32767, so a stored
sample is within 0.5/32767 of the decoded one; the paper preset's). An int16 pool is converted to float32 per
crop by the sampler (:func:`bench.pretrain.sampling.crop_views`), never as a whole.

Tracks are decoded in a process pool (``workers``) with at most two tracks per worker in flight, and each
decoded track is streamed, in pool order, into the one ``audio.npy`` (its header written last): memory stays a
few tracks whatever the pool's size, and the file is the same for any number of workers (a test checks).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterator

import numpy as np

#: the sample types a pool can be stored as
DTYPES = ("float32", "int16")
#: an int16 sample q stands for q * INT16_SCALE
INT16_SCALE = np.float32(1.0 / 32767.0)

Span = tuple[str, float | None, float | None]  # path, start, end (seconds; None: the whole file)
Decoded = tuple[np.ndarray | None, str | None, str | None]


def quantize(audio: np.ndarray, dtype: str) -> np.ndarray:
    """``audio`` (float32) as stored: unchanged for float32; clipped to [-1, 1] and rounded to int16 steps."""
    if dtype == "float32":
        return np.asarray(audio, dtype=np.float32)
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def write_pool(spans: list[Span], sample_rate: int, folder: Path, quiet: bool, dtype: str = "float32",
               workers: int = 1) -> None:
    """Decode every span into ``folder/audio.npy`` (one 1-D array, spans end to end) and write
    ``folder/index.json``: each decoded span's offset and length, the files that did not decode, and the
    decoder's notes."""
    from tqdm.auto import tqdm

    index, failed, warned, offset = [], [], [], 0
    with open(folder / "audio.npy", "wb") as out:
        out.write(_npy_header(dtype, 0))  # the header's length does not depend on the count (numpy pads it)
        bar = tqdm(total=len(spans), desc="decoding pool", unit="track", disable=quiet)
        for span, (audio, err, warn) in zip(spans, _decoded(spans, sample_rate, dtype, workers)):
            bar.update(1)
            if warn:
                warned.append(warn)
            if audio is None:
                failed.append(err)
                continue
            out.write(np.ascontiguousarray(audio).tobytes())
            index.append([*span, offset, len(audio)])
            offset += len(audio)
        bar.close()
        header = _npy_header(dtype, offset)
        if len(header) != len(_npy_header(dtype, 0)):  # numpy changed its padding: never write a bad file
            raise OSError("numpy's .npy header changed length with the array's size")
        out.seek(0)
        out.write(header)
    (folder / "index.json").write_text(json.dumps({"sample_rate": sample_rate, "dtype": dtype, "spans": index,
                                                   "failed": failed, "decoder_warnings": warned}))


def _decode(span: Span, sample_rate: int, dtype: str) -> Decoded:
    """One span: (its samples as stored, or None; why not; the decoder's notes on a span it did decode)."""
    from bench.audio import AudioError, load
    from bench.decoder_messages import capture, summary

    # what libmpg123 prints on fd 2 is kept with its file, not sprayed over the progress bar
    with capture() as notes:
        try:
            audio, err = quantize(load(span[0], sample_rate, span[1], span[2]), dtype), None
        except AudioError as exc:
            audio, err = None, str(exc)
    warn = None
    if notes:
        note = f"[decoder: {summary(notes)}]"
        err, warn = (f"{err} {note}", None) if err else (None, f"{span[0]}: {note}")
    return audio, err, warn


def _npy_header(dtype: str, n: int) -> bytes:
    out = io.BytesIO()
    header = np.lib.format.header_data_from_array_1_0(np.zeros(0, dtype=dtype))
    np.lib.format.write_array_header_1_0(out, {**header, "shape": (n,)})
    return out.getvalue()


def _decoded(spans: list[Span], sample_rate: int, dtype: str, workers: int) -> Iterator[Decoded]:
    """``_decode`` of every span, in order: in this process with one worker, else in a process pool with at
    most ``2 * workers`` spans in flight (the parent's memory stays a few tracks)."""
    if workers <= 1 or len(spans) <= 1:
        for span in spans:
            yield _decode(span, sample_rate, dtype)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    # forkserver: the workers do not inherit the parent's threads (torch's, OpenMP's) or its memory
    with ProcessPoolExecutor(max_workers=min(workers, len(spans)),
                             mp_context=multiprocessing.get_context("forkserver")) as pool:
        pending: deque[Future[Decoded]] = deque()
        for span in spans:
            pending.append(pool.submit(_decode, span, sample_rate, dtype))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
