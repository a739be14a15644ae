"""EmoMusic ("1000 songs", Soleymani et al. 2013): regression of a song's arousal and valence, R².

Real layout under the data root (MARBLE's ``data/EMO``: ``clips_45sec.tar.gz``
and ``annotations.tar.gz`` from http://cvml.unige.ch/databases/emoMusic/,
unpacked side by side)::

    emomusic/clips_45seconds/<song_id>.mp3      45 s clips, song ids 2..1000 (744 used)
    emomusic/songs_info.csv                     song_id, Artist, ..., Mediaeval 2013 set
    emomusic/static_annotations.csv             song_id, mean_arousal, std_arousal, mean_valence, ...

Comma-separated CSVs read by column name (fields are stripped: the real files
pad them). Labels and split as MARBLE, SemiSupCon and jukemir make them:
``y = (mean_arousal, mean_valence)`` (the 1..9 static ratings), each z-scored
with the mean and population standard deviation of every development song
that has a rating; ``Mediaeval 2013 set`` = ``evaluation`` is the test split;
a ``development`` song goes to valid when the SHA-1 of its normalised artist
name (lower case, ASCII letters and spaces only, runs of spaces collapsed),
read as an integer, is 8 or 9 modulo 10, else to train (504 / 115 / 125 songs
on the real data), so an artist's songs stay on one side. Metrics: ``r2``
(mean of the two targets' R², primary), ``arousal_r2``, ``valence_r2``.
Encodings and symbolic links: see ``bench_tasks._common``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from bench import hookimpl
from bench.errors import DataError
from bench.task import Item, Split, Task

from bench_tasks._common import link_problem, list_files, read_text
from bench_tasks.emomusic_format import artist_split

TARGETS = ("arousal", "valence")
INFO = "songs_info.csv"
STATIC = "static_annotations.csv"
AUDIO = "clips_45seconds"
SETS = {"development": "dev", "evaluation": "test"}


def _rows(path: Path, base: Path, need: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV with stripped keys and values; a DataError when a needed column is missing."""
    text = read_text(path, base)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in need if c not in header]
    if missing:
        raise DataError(f"{path}: not EmoMusic's {path.name} (no column(s) {missing}; found {header[:8]}). "
                        "Unpack annotations.tar.gz from http://cvml.unige.ch/databases/emoMusic/ there.")
    out = []
    for line, row in enumerate(reader, 2):
        if not any(f.strip() for f in row):
            continue
        out.append((line, {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}))
    return out


class EmoMusic(Task):
    name = "emomusic"
    kind = "regression"
    dataset_dirs = ("emomusic",)
    primary_metric = "r2"
    metrics = ("r2", "arousal_r2", "valence_r2")
    probe = "linear"
    description = ("EmoMusic arousal and valence regression (z-scored static ratings), MARBLE's artist-hash "
                   "split of the development set (504/115/125); R² (mean, arousal, valence)")
    download_help = (
        "Download clips_45sec.tar.gz and annotations.tar.gz from http://cvml.unige.ch/databases/emoMusic/ and "
        "unpack both into DATA_ROOT/emomusic/ (clips_45seconds/<id>.mp3, songs_info.csv, "
        "static_annotations.csv)."
    )

    def classes(self, data_root: Path) -> list[str]:
        return list(TARGETS)

    def _index(self, data_root: Path) -> tuple[dict[str, list], list[tuple[str, str, int | None, str, str]]]:
        """Items per split (before the audio check) and the problems, each with the split it belongs to."""
        root = self.require_dir(data_root, "emomusic")
        for name in (INFO, STATIC):
            if not (root / name).is_file():
                raise DataError(f"{root / name} not found: {root} does not hold the EmoMusic annotations."
                                f"{self.data_hint(data_root)} {self.data_help()}")
        problems: list[tuple[str, str, int | None, str, str]] = []  # split, file, line, message, kind
        songs: dict[str, tuple[int, str, str]] = {}  # id -> line, set, split
        for line, row in _rows(root / INFO, root, ("song_id", "Artist", "Mediaeval 2013 set")):
            sid, where = row["song_id"], SETS.get(row["Mediaeval 2013 set"].lower())
            if not sid.isdigit() or where is None:
                problems.append(("train", INFO, line, f"song_id {sid!r} / Mediaeval 2013 set "
                                 f"{row['Mediaeval 2013 set']!r} is not a number / development|evaluation; "
                                 "row skipped", "malformed"))
                continue
            sid = str(int(sid))
            split = "test" if where == "test" else artist_split(row["Artist"])
            if sid in songs:
                problems.append((split, INFO, line, f"duplicate song_id {sid}; row skipped", "duplicate"))
                continue
            songs[sid] = (line, where, split)
        ratings: dict[str, tuple[float, float]] = {}
        for line, row in _rows(root / STATIC, root, ("song_id", "mean_arousal", "mean_valence")):
            sid = str(int(row["song_id"])) if row["song_id"].isdigit() else row["song_id"]
            split = songs[sid][2] if sid in songs else "train"
            try:
                value = (float(row["mean_arousal"]), float(row["mean_valence"]))
                if not all(v == v and abs(v) != float("inf") for v in value):
                    raise ValueError
            except ValueError:
                problems.append((split, STATIC, line, f"song {sid}: ratings {row['mean_arousal']!r}, "
                                 f"{row['mean_valence']!r} are not numbers; row skipped", "malformed"))
                continue
            if sid not in songs:
                problems.append(("train", STATIC, line, f"song {sid} is not in {INFO}; row skipped",
                                 "unknown_label"))
                continue
            if sid in ratings:
                problems.append((split, STATIC, line, f"duplicate song_id {sid}; row skipped", "duplicate"))
                continue
            ratings[sid] = value
        dev = [ratings[s] for s, (_, where, _) in songs.items() if where == "dev" and s in ratings]
        if len(dev) < 2:
            raise DataError(f"{root / STATIC}: fewer than two development songs with ratings; the targets cannot "
                            f"be standardised. {self.data_help()}")
        stats = []
        for k in range(2):
            vals = [d[k] for d in dev]
            mean = sum(vals) / len(vals)
            std = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5  # population std, as np.std
            stats.append((mean, std or 1.0))
        per: dict[str, list] = {"train": [], "valid": [], "test": []}
        for sid, (line, _, split) in songs.items():
            if sid not in ratings:
                problems.append((split, INFO, line, f"song {sid} has no row in {STATIC}; left out",
                                 "unknown_label"))
                continue
            label = tuple((ratings[sid][k] - stats[k][0]) / stats[k][1] for k in range(2))
            per[split].append((sid, line, label))
        return per, problems

    def items(self, split: str, data_root: Path) -> Split:
        if split not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {split!r}")
        per, problems = self._index(data_root)
        root = Path(data_root) / "emomusic"
        out = Split(split)
        for where, fname, line, msg, kind in problems:
            if where == split:
                out.problem(root / fname, line, msg, kind)
        names, leaving = list_files(root / AUDIO, root)
        for sid, line, label in per[split]:
            fname = f"{sid}.mp3"
            path = root / AUDIO / fname
            if fname in leaving:
                out.problem(path, None, link_problem(path, root, leaving[fname]), "outside_root")
                continue
            if fname not in names:
                out.problem(root / INFO, line, f"song {sid}: audio file {AUDIO}/{fname} not found", "missing_audio")
                continue
            out.items.append(Item(track_id=sid, path=str(path), label=label))
        return out

    def score(self, y_true, scores) -> dict[str, float]:
        import numpy as np

        from bench import metrics

        per = metrics.r2_per_target(y_true, scores)
        return {"r2": float(np.mean(per)), **{f"{t}_r2": float(v) for t, v in zip(TARGETS, per)}}

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        from bench_tasks.emomusic_demo import make_demo

        make_demo(Path(data_root), size=size, seed=seed)


@hookimpl
def register_tasks(register: Any):
    register("emomusic", "bench_tasks.emomusic:EmoMusic", description=EmoMusic.description, group="extended")
