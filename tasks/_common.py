"""Small helpers shared by the built-in task loaders and demo generators.

Cheap to import (standard library only); numpy and soundfile are imported
inside the functions that write audio.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Iterable


def stable_unit(text: str) -> float:
    """A number in [0, 1) from ``text`` that is the same on every machine and run (not ``hash()``)."""
    digest = hashlib.sha1(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def file_names(folder: Path) -> set[str]:
    """Names of the plain files in ``folder`` (one ``os.scandir``; empty when the folder is missing).

    Checking existence against this set costs one directory read per folder
    instead of one ``stat`` per listed file.
    """
    try:
        with os.scandir(folder) as it:
            return {e.name for e in it if e.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def read_text_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file (BOM and trailing newline tolerated, CRLF handled)."""
    with open(path, encoding="utf-8-sig", newline=None) as f:
        return f.read().splitlines()


def workers(n_jobs: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, n_jobs, 8))


def run_jobs(fn: Callable[[Any], Any], jobs: list, chunks_per_worker: int = 3) -> list:
    """Run ``fn`` over ``jobs`` in worker processes (in order, results returned in order).

    Jobs are grouped into a few chunks per worker so process overhead stays
    small; with one CPU or few jobs everything runs in this process. ``fn``
    must be a module-level function (it is pickled).
    """
    n = workers(len(jobs))
    from concurrent.futures import ProcessPoolExecutor

    if n <= 1 or len(jobs) < 4:
        return [fn(j) for j in jobs]
    size = max(1, -(-len(jobs) // (n * chunks_per_worker)))
    groups = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    with ProcessPoolExecutor(max_workers=n) as pool:
        out: list = []
        for part in pool.map(_run_group, [(fn, g) for g in groups]):
            out.extend(part)
    return out


def _run_group(arg: tuple) -> list:
    fn, group = arg
    return [fn(j) for j in group]


def write_audio(path: Path, x, sr: int) -> None:
    """Write mono float audio as MP3 (by the suffix) or 16-bit WAV, creating folders."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".mp3":
        sf.write(str(path), x, sr, format="MP3")
    else:
        sf.write(str(path), x, sr, subtype="PCM_16")


def write_corrupt(path: Path, seed: int, size: int = 3000) -> None:
    """A file named like a real clip whose content is not decodable audio (truncated garbage)."""
    import random

    path.parent.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    # an ID3-looking start followed by garbage: sniffers accept it, decoders fail
    path.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(rnd.getrandbits(8) for _ in range(size)))


def write_lines(path: Path, lines: Iterable[str], trailing_newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines)
    if trailing_newline:
        text += "\n"
    path.write_bytes(text.encode("utf-8"))
