"""MTG-Jamendo auto-tagging: the genre, instrument, mood/theme and top-50 subsets, multilabel.

Real layout under the data root: the dataset's git repository
(https://github.com/MTG/mtg-jamendo-dataset, which holds the metadata) with
the audio downloaded into it by its own script
(``python3 scripts/download/download.py --dataset raw_30s --type audio-low
audio-low --unpack --remove``)::

    mtg-jamendo/data/splits/split-<N>/autotagging_<subset>-{train,validation,test}.tsv
    mtg-jamendo/audio/NN/<id>.mp3            (--type audio)
    mtg-jamendo/audio-low/NN/<id>.low.mp3    (--type audio-low, what MARBLE uses)

``<subset>`` is ``genre``, ``instrument``, ``moodtheme`` or ``top50tags``. The
split files are tab-separated with a header ``TRACK_ID ARTIST_ID ALBUM_ID PATH
DURATION TAGS``; every tag is its own trailing column, ``<category>---<tag>``;
lines may end CRLF. The split is the dataset's own split ``N`` (setting
``split``, default 0, as MARBLE and SemiSupCon use). Classes: the tags found in
the three files of the split, sorted (the official split files keep only tags
present in all three splits: 87 genre, 40 instrument, 56 mood/theme and 50
top-50 tags for split 0). Audio: setting ``audio`` = ``auto`` (``audio/`` when
present, else ``audio-low/``), ``audio`` or ``audio-low``; in ``audio-low`` the
file is ``PATH`` with ``.mp3`` replaced by ``.low.mp3``. Metrics: macro ROC-AUC
(primary) and macro PR-AUC, as the dataset's own evaluation script and MARBLE.
Encodings and symbolic links: see ``bench_tasks._common``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench import hookimpl
from bench.errors import DataError
from bench.task import Item, Split, Task

from bench_tasks._common import link_problem, list_files, read_text_lines

HEADER = ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION"]
SPLIT_FILES = {"train": "train", "valid": "validation", "test": "test"}
AUDIO_DIRS = ("audio", "audio-low")
_PATH_RE = re.compile(r"^(\d\d)/(\d+)\.mp3$")


def split_file(root: Path, subset: str, split: str, n: int) -> Path:
    return root / "data" / "splits" / f"split-{n}" / f"autotagging_{subset}-{SPLIT_FILES[split]}.tsv"


def parse_split(path: Path, base: Path, out: Split) -> list[tuple[int, str, str, list[str]]]:
    """(line, track id, PATH, tags) of one split file; bad rows go to ``out``'s problems."""
    lines = read_text_lines(path, base)
    head = lines[0].split("\t") if lines else []
    if [h.strip() for h in head[:5]] != HEADER:
        raise DataError(f"{path}: not an MTG-Jamendo split file (expected a tab-separated header "
                        f"{' '.join(HEADER)} TAGS, found {lines[:1]!r:.80}). Clone "
                        "https://github.com/MTG/mtg-jamendo-dataset into the data root as mtg-jamendo/.")
    rows, seen = [], {}
    for n, text in enumerate(lines[1:], 2):
        if not text.strip():
            continue
        f = [x.strip() for x in text.split("\t")]
        if len(f) < 6:
            out.problem(path, n, f"expected at least 6 tab-separated fields, found {len(f)}; row skipped")
            continue
        tid, rel, tags = f[0], f[3], [t for t in f[5:] if t]
        if not _PATH_RE.match(rel):
            out.problem(path, n, f"track {tid}: PATH {rel!r} is not 'NN/<id>.mp3'; row skipped")
            continue
        bad = [t for t in tags if "---" not in t]
        if not tags or bad:
            out.problem(path, n, f"track {tid}: tags {bad or tags!r} are not '<category>---<tag>'; row skipped")
            continue
        if tid in seen:
            out.problem(path, n, f"duplicate track {tid} (first on line {seen[tid]}); row skipped", "duplicate")
            continue
        seen[tid] = n
        rows.append((n, tid, rel, tags))
    return rows


class MTGJamendo(Task):
    """One subset of MTG-Jamendo auto-tagging (subclasses fix ``subset``)."""

    name = "mtg_jamendo"
    subset = ""
    kind = "multilabel"
    dataset_dirs = ("mtg-jamendo",)
    primary_metric = "roc_auc"
    metrics = ("roc_auc", "average_precision")
    probe = "mlp"
    download_help = (
        "Clone https://github.com/MTG/mtg-jamendo-dataset into DATA_ROOT/mtg-jamendo/ (the split files are in "
        "it) and download the raw_30s audio into it with its script: python3 scripts/download/download.py "
        "--dataset raw_30s --type audio-low DATA_ROOT/mtg-jamendo/audio-low --unpack --remove (156 GB; "
        "--type audio: 508 GB, into audio/)."
    )

    def default_settings(self) -> dict[str, Any]:
        return {"split": 0, "audio": "auto"}

    def _root(self, data_root: Path) -> Path:
        root = self.require_dir(data_root, "mtg-jamendo")
        if self.settings["split"] not in range(5):
            raise DataError(f"task {self.name}: setting split={self.settings['split']!r}; MTG-Jamendo has splits 0..4")
        return root

    def _files(self, data_root: Path) -> dict[str, Path]:
        root = self._root(data_root)
        files = {s: split_file(root, self.subset, s, self.settings["split"]) for s in SPLIT_FILES}
        missing = [str(p.relative_to(root)) for p in files.values() if not p.is_file()]
        if missing:
            raise DataError(f"{root} lacks the split file(s) {', '.join(missing)}.{self.data_hint(data_root)} "
                            f"{self.data_help()}")
        return files

    def audio_dir(self, data_root: Path) -> tuple[Path, bool]:
        """The audio folder and whether it holds the ``.low.mp3`` files."""
        root = self._root(data_root)
        want = self.settings["audio"]
        if want not in ("auto", *AUDIO_DIRS):
            raise DataError(f"task {self.name}: setting audio={want!r}; use auto, audio or audio-low")
        for name in (AUDIO_DIRS if want == "auto" else (want,)):
            if (root / name).is_dir():
                return root / name, name == "audio-low"
        raise DataError(f"{root} has no {' or '.join(d + '/' for d in AUDIO_DIRS)} folder of audio."
                        f"{self.data_hint(data_root)} {self.data_help()}")

    def classes(self, data_root: Path) -> list[str]:
        tags: set[str] = set()
        for s, path in self._files(data_root).items():
            tags.update(t for *_, ts in parse_split(path, path.parents[3], Split(s)) for t in ts)
        return sorted(tags)

    def items(self, split: str, data_root: Path) -> Split:
        if split not in SPLIT_FILES:
            raise ValueError(f"unknown split {split!r}")
        path = self._files(data_root)[split]
        root = self._root(data_root)
        audio, low = self.audio_dir(data_root)
        cls = {t: i for i, t in enumerate(self.classes(data_root))}
        out = Split(split)
        present: dict[str, tuple[set[str], dict[str, str]]] = {}
        for n, tid, rel, tags in parse_split(path, root, out):
            folder, fname = rel.split("/")
            if low:
                fname = fname[: -len(".mp3")] + ".low.mp3"
            if folder not in present:
                present[folder] = list_files(audio / folder, root)
            names, leaving = present[folder]
            if fname in leaving:
                out.problem(path, n, f"track {tid}: {link_problem(audio / folder / fname, root, leaving[fname])}",
                            "outside_root")
                continue
            if fname not in names:
                out.problem(path, n, f"track {tid}: audio file {audio.name}/{folder}/{fname} not found",
                            "missing_audio")
                continue
            out.items.append(Item(track_id=tid, path=str(audio / folder / fname),
                                  label=tuple(sorted({cls[t] for t in tags}))))
        return out

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        from bench_tasks.mtg_jamendo_demo import make_demo

        make_demo(Path(data_root), size=size, seed=seed)


class Genre(MTGJamendo):
    name, subset = "mtg_jamendo_genre", "genre"
    description = "MTG-Jamendo genre tags (87 in split 0), the dataset's split 0; macro ROC-AUC, PR-AUC"


class Instrument(MTGJamendo):
    name, subset = "mtg_jamendo_instrument", "instrument"
    description = "MTG-Jamendo instrument tags (40 in split 0), the dataset's split 0; macro ROC-AUC, PR-AUC"


class MoodTheme(MTGJamendo):
    name, subset = "mtg_jamendo_moodtheme", "moodtheme"
    description = ("MTG-Jamendo mood/theme tags (56 in split 0), the dataset's split 0; macro ROC-AUC, PR-AUC; "
                   "no demo data (a mood cannot be rendered truthfully)")

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        raise NotImplementedError(f"task {self.name!r} has no demo data: a generated clip cannot truthfully carry "
                                  "a mood or theme tag (docs/demo-data.md). Run it on the real dataset.")


class Top50(MTGJamendo):
    name, subset = "mtg_jamendo_top50", "top50tags"
    description = "MTG-Jamendo top-50 tags (genre, instrument, mood), the dataset's split 0; macro ROC-AUC, PR-AUC"


@hookimpl
def register_tasks(register):
    for cls in (Genre, Instrument, MoodTheme, Top50):
        # a task with no demo data is in its own group: `--tasks extended` runs on the demo data as well
        register(cls.name, f"bench_tasks.mtg_jamendo:{cls.__name__}", description=cls.description,
                 group="extended-real" if cls is MoodTheme else "extended")
