"""FMA (the Free Music Archive dataset) as an unlabeled pool source: a pool, not a task.

Layout (github.com/mdeff/fma): a root holding ``fma_metadata/tracks.csv`` and one or more audio folders,
``fma_large`` (30 s clips), ``fma_full`` (untrimmed tracks), ``fma_medium``, ``fma_small``; a track's
file is ``<folder>/<id // 1000, 3 digits>/<id, 6 digits>.mp3``. ``tracks.csv`` has two header rows (the
top-level column, e.g. ``set``, then the sub-column, e.g. ``split``), then a row naming the index
(``track_id``), then one row per track. Column ``set, split`` holds training/validation/test and
``set, subset`` small/medium/large.

The pool is the tracks of the **training** split whose file exists, from one audio folder: the one given
(``-O unlabeled_dirs=fma:ROOT/fma_full``) or, given the root, ``fma_large`` if present, else ``fma_full``,
``fma_medium``, ``fma_small``. A folder of ``-O unlabeled_dirs`` with this layout is read as FMA without
the ``fma:`` prefix. Rows that cannot be read and training tracks without a file are counted and a few
named (:attr:`FmaPool.problems`), never fatal; a pool with no track at all is an error.

:func:`fingerprint` is the pool's part of the checkpoint key: the metadata file's content and every pool
file's content, so an edited tracks.csv or a replaced clip is another checkpoint.
:func:`make_demo` writes a tiny stand-in with this layout (short generated MP3 clips), for tests and demos.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import DataError

AUDIO_FOLDERS = ("fma_large", "fma_full", "fma_medium", "fma_small")
PREFIX = "fma:"
#: at most this many problems are named (all are counted)
NAMED = 20


@dataclass
class FmaPool:
    """The training tracks of an FMA folder whose file exists."""

    root: Path
    audio_dir: Path
    metadata: Path
    files: list[Path] = field(default_factory=list)
    rows: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    bad_rows: int = 0
    problems: list[str] = field(default_factory=list)

    def record(self) -> dict:
        """What the run record says about the pool."""
        return {"fma": str(self.audio_dir), "metadata": str(self.metadata), "rows": self.rows,
                "splits": dict(self.splits), "tracks": len(self.files), "missing_files": self.missing,
                "bad_rows": self.bad_rows, "problems": self.problems[:NAMED]}


def _locate(path: Path) -> tuple[Path, Path] | None:
    """(root, audio folder) of an FMA layout at ``path`` (the root or one of its audio folders), else None."""
    if (path / "fma_metadata" / "tracks.csv").is_file():
        for name in AUDIO_FOLDERS:
            if (path / name).is_dir():
                return path, path / name
        return None
    if path.name in AUDIO_FOLDERS and (path.parent / "fma_metadata" / "tracks.csv").is_file():
        return path.parent, path
    return None


def is_fma(path: str | Path) -> bool:
    """Whether ``path`` is an FMA root (with metadata and an audio folder) or one of its audio folders."""
    return _locate(Path(path)) is not None


def audio_path(audio_dir: Path, track_id: int) -> Path:
    return audio_dir / f"{track_id // 1000:03d}" / f"{track_id:06d}.mp3"


def read(path: str | Path) -> FmaPool:
    """The training-split pool of the FMA folder ``path``; DataError (what to do) if it is not one."""
    path = Path(path).expanduser().resolve()
    found = _locate(path)
    if found is None:
        raise DataError(
            f"{path} is not an FMA folder: expected fma_metadata/tracks.csv beside an audio folder "
            f"({', '.join(AUDIO_FOLDERS)}), given as the root or as the audio folder itself "
            "(-O unlabeled_dirs=fma:ROOT). Get both from github.com/mdeff/fma."
        )
    root, audio_dir = found
    pool = FmaPool(root, audio_dir, root / "fma_metadata" / "tracks.csv")
    try:
        with open(pool.metadata, newline="", encoding="utf-8", errors="replace") as fh:
            rows = csv.reader(fh)
            top, sub = next(rows, []), next(rows, [])
            columns: dict[tuple[str, str], int] = {}
            current = ""
            for i, (a, b) in enumerate(zip(top, sub)):
                current = a or current  # a spreadsheet's merged cells: an empty top name repeats the last
                columns.setdefault((current, b), i)
            split_col = columns.get(("set", "split"))
            if split_col is None:
                raise DataError(f"{pool.metadata}: no 'set, split' column in its two header rows (is it FMA's "
                                "tracks.csv?)")
            for line, row in enumerate(rows, start=3):
                if not row or row[0] == "track_id":  # the index's name row
                    continue
                pool.rows += 1
                try:
                    tid, split = int(row[0]), row[split_col].strip()
                    if tid < 0:
                        raise ValueError("negative track id")
                except (ValueError, IndexError) as exc:
                    pool.bad_rows += 1
                    if len(pool.problems) < NAMED:
                        pool.problems.append(f"{pool.metadata.name} row {line}: unreadable ({exc})")
                    continue
                pool.splits[split] = pool.splits.get(split, 0) + 1
                if split != "training":
                    continue
                file = audio_path(audio_dir, tid)
                if file.is_file():
                    pool.files.append(file)
                else:
                    pool.missing += 1
                    if len(pool.problems) < NAMED:
                        pool.problems.append(f"track {tid}: no file {file.relative_to(root)}")
    except (OSError, csv.Error, UnicodeError) as exc:
        raise DataError(f"cannot read FMA metadata {pool.metadata}: {exc}") from None
    if not pool.files:
        raise DataError(
            f"FMA folder {audio_dir}: no training-split track of {pool.metadata} has its file there "
            f"({pool.rows} rows, splits {pool.splits or 'none'}, {pool.missing} training files missing)"
        )
    return pool


def fingerprint(pool: FmaPool) -> str:
    """Content fingerprint of the pool: the metadata file and every pool file (memoised by stat)."""
    from bench.store import file_digests

    h = hashlib.sha256(f"fma\t{pool.audio_dir.name}\t{file_digests().digest(pool.metadata)}\n".encode())
    for path, digest in zip(pool.files, file_digests().digests(pool.files)):
        h.update(f"{path.relative_to(pool.audio_dir).as_posix()}\t{digest}\n".encode())
    return h.hexdigest()


def make_demo(root: str | Path, *, sample_rate: int = 16000, seconds: float = 2.0, seed: int = 0) -> Path:
    """A tiny FMA-shaped folder at ``root``: 8 tracks (5 training, 2 validation, 1 test) as short generated
    MP3 clips in ``fma_large`` (an MP3 sample rate: 8000, 16000, 22050, ...), one training track without its file, one unreadable row; returns ``root``."""
    import numpy as np
    import soundfile as sf

    root = Path(root)
    (root / "fma_metadata").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = [(2, "training", "small"), (5, "training", "small"), (140, "training", "medium"),
            (1482, "training", "large"), (20_011, "training", "large"), (10, "validation", "small"),
            (1066, "validation", "medium"), (3, "test", "small"), (777, "training", "large")]
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    for tid, _, _ in rows[:-1]:  # 777: listed for training, no file (a partial download)
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(len(t))
        path = audio_path(root / "fma_large", tid)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), x.astype(np.float32), sample_rate, format="MP3")
    with open(root / "fma_metadata" / "tracks.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", "album", "artist", "set", "set", "track"])
        w.writerow(["", "title", "name", "split", "subset", "title"])
        w.writerow(["track_id", "", "", "", "", ""])
        for tid, split, subset in rows:
            w.writerow([tid, "An album, with a comma", "Someone", split, subset, f"Song {tid}\nsecond line"])
        w.writerow(["not-a-number", "", "", "training", "large", ""])
    return root
