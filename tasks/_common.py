"""Small helpers shared by the built-in task loaders and demo generators.

Cheap to import (standard library only); numpy and soundfile are imported
inside the functions that write audio.

Reading annotation files (:func:`read_text`): UTF-8, with or without a BOM;
UTF-16 or undecodable bytes are a :class:`AnnotationError` (a DataError) that
names the file and says what to do, and the file's content is never echoed.

Symbolic links (the policy of every built-in task): a dataset folder such as
``DATA_ROOT/magnatagatune`` may itself be a link (to another disk, say); inside
it, links are followed while they stay inside it. A link that leads outside
(a file, or a sub-folder) is not read: an annotation file behind one is an
error naming the link, an audio file behind one is a problem of kind
``outside_root`` and the track is skipped. A downloaded archive can hold
links, and a link to, say, a private key must not become a training item or
have its first line printed in an error message.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from bench.errors import DataError


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


class AnnotationError(DataError):
    """An annotation file that cannot be read as UTF-8 text (or is not read: a link leaving the dataset)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def outside(path: str | Path, base: str | Path) -> str | None:
    """Where ``path`` really is, when following its links leads outside ``base``; None when it stays inside."""
    real = os.path.realpath(path)
    top = os.path.realpath(base)
    if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
        return None
    return real


def link_problem(path: str | Path, base: str | Path, target: str) -> str:
    return (f"is a symbolic link to {target}, outside the dataset folder {base}; not read (bench reads only "
            "files inside it: copy the file in, or link the whole dataset folder instead)")


def read_text(path: Path, base: Path | None = None) -> str:
    """The text of a UTF-8 annotation file (a UTF-8 BOM is dropped).

    Raises :class:`AnnotationError` naming the file for a link leading outside
    ``base`` (the file is then not opened), an unreadable file, UTF-16 (a BOM
    or NUL bytes) or bytes that are not UTF-8.
    """
    if base is not None:
        target = outside(path, base)
        if target is not None:
            raise AnnotationError(path, link_problem(path, base, target))
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise AnnotationError(path, f"cannot be read ({exc.strerror or exc})") from None
    convert = (f"Convert it to UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8 {Path(path).name}`), "
               "or download it again.")
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise AnnotationError(path, f"is UTF-16 or UTF-32 text (it starts with that byte-order mark); bench reads "
                                    f"UTF-8. {convert}")
    if b"\x00" in raw:
        raise AnnotationError(path, f"holds NUL bytes: it is UTF-16 text without a byte-order mark or a binary "
                                    f"file, not UTF-8 text. {convert}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise AnnotationError(path, f"is not UTF-8 text (line {line}, byte {exc.start}: {exc.reason}). Save it as "
                                    "UTF-8, or download it again.") from None


def read_text_lines(path: Path, base: Path | None = None) -> list[str]:
    """Lines of a UTF-8 text file (BOM and trailing newline tolerated, CRLF handled); see :func:`read_text`."""
    return read_text(path, base).splitlines()


def list_files(folder: Path, base: Path) -> tuple[set[str], dict[str, str]]:
    """Names of the files in ``folder`` that stay inside ``base``, and ``{name: target}`` of those that leave.

    One ``os.scandir``; only entries that are links are resolved, so a folder
    of plain files costs no more than :func:`file_names`. A missing folder
    gives two empty results.
    """
    names: set[str] = set()
    leaving: dict[str, str] = {}
    away = outside(folder, base)  # the folder itself is a link out: all of it is outside
    try:
        with os.scandir(folder) as it:
            for e in it:
                if away is not None:
                    if e.is_file():
                        leaving[e.name] = os.path.join(away, e.name)
                elif e.is_symlink():
                    target = outside(e.path, base)
                    if target is not None:
                        leaving[e.name] = target
                    elif e.is_file():
                        names.add(e.name)
                elif e.is_file():
                    names.add(e.name)
    except (FileNotFoundError, NotADirectoryError):
        pass
    return names, leaving


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
