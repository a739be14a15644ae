"""MagnaTagATune auto-tagging: the 50 most frequent tags, multilabel.

Real layout under the data root (https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset)::

    magnatagatune/annotations_final.csv     tab-separated, header, fields quoted or not
    magnatagatune/0/ ... magnatagatune/f/   the clips, e.g. f/artist-album-01-title-0-29.mp3

The CSV has ``clip_id``, 188 tag columns of 0/1, then ``mp3_path``. Protocol
(the common one, as in Pons et al. and CLMR): the top 50 tags are the 50
columns with the most positives over the whole file (ties broken by column
order, so the choice is deterministic); classes are listed by that rank. The
split is by the first character of ``mp3_path``: ``0``-``b`` train, ``c``
valid, ``d``-``f`` test. Clips with none of the top-50 tags are left out
(setting ``drop_untagged``; MARBLE keeps them as all-negative rows:
``--protocol marble``, docs/protocols.md).
Corrupt MP3s (three in the release) are the extract stage's business: it
skips files it cannot decode and says so. Indexing never decodes audio.

Bad rows: each CSV line is parsed on its own, so a quote left open on one line
spoils only that line (a reader that lets quoted fields span lines would
silently merge it with the next rows). A bad row is reported once, with the
split of its ``mp3_path`` folder, or with ``train`` when that cannot be read.
Encodings and symbolic links: see ``bench_tasks._common``.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import hookimpl
from bench.errors import DataError
from bench.task import Item, Split, Task

from bench_tasks._common import link_problem, list_files, read_text

CSV_NAME = "annotations_final.csv"
#: a row longer than this is not an annotation row (the csv module refuses fields over 131,072 characters)
MAX_ROW_CHARS = 100_000
FOLDERS = tuple("0123456789abcdef")
SPLIT_OF_FOLDER = {**{c: "train" for c in "0123456789ab"}, "c": "valid", **{c: "test" for c in "def"}}
_PATH_RE = re.compile(r"^[0-9a-f]/[^/\\]+\.mp3$")


@dataclass
class _Index:
    """The parsed CSV: usable rows, per-line problems and tag counts."""

    tags: list[str]
    rows: list[tuple[int, str, str, tuple[int, ...]]] = field(default_factory=list)  # line, id, path, tag cols
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # line, message, split it is reported with
    counts: list[int] = field(default_factory=list)

    def top(self, k: int) -> list[int]:
        """Column indices of the ``k`` most frequent tags, by count then column order."""
        order = sorted(range(len(self.tags)), key=lambda i: (-self.counts[i], i))
        return order[:k]


_CACHE: dict[tuple, _Index] = {}


def _fields(line: str) -> list[str] | None:
    """The tab-separated fields of one CSV line, or None when its quoting is broken."""
    try:
        return next(csv.reader([line], delimiter="\t", quotechar='"', strict=True), [])
    except csv.Error:
        return None


def _split_of(row: list[str] | None) -> str:
    """The split a bad row is reported with: its mp3_path folder's, else train."""
    mp3 = row[-1].strip() if row else ""
    return SPLIT_OF_FOLDER[mp3[0]] if _PATH_RE.match(mp3) else "train"


def parse_annotations(path: Path, base: Path | None = None) -> _Index:
    """Parse ``annotations_final.csv`` (cached on path, size, modification time and inode).

    ``base``: the dataset folder; a link leading outside it is not read.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(
            f"{path} not found: the MagnaTagATune annotations are missing. "
            f"Run `bench data check --task mtat` to see what is found."
        ) from None
    key = (str(path), str(base), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key in _CACHE:
        return _CACHE[key]
    lines = read_text(path, base).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    header = _fields(lines[0]) if lines else None
    if not header or header[0].strip() != "clip_id" or header[-1].strip() != "mp3_path" or len(header) < 3:
        raise DataError(
            f"{path}: not the MagnaTagATune annotations_final.csv (expected a tab-separated header "
            f"starting with clip_id and ending with mp3_path, found {str(header or lines[:1])[:80]}). "
            f"Run `bench data check --task mtat` to see what is found."
        )
    tags = [h.strip() for h in header[1:-1]]
    ncol = len(header)
    index = _Index(tags)
    counts = [0] * len(tags)
    seen_ids: dict[str, int] = {}
    seen_paths: dict[str, int] = {}
    ok = {"0", "1"}

    def problem(line: int, row: list[str] | None, msg: str) -> None:
        index.problems.append((line, msg, _split_of(row)))

    for line, text in enumerate(lines[1:], 2):
        if not text.strip():
            continue  # blank line
        if len(text) > MAX_ROW_CHARS:  # else the csv module's field limit reads as "broken quoting"
            problem(line, None, f"a row of {len(text):,} characters (a MagnaTagATune row has a few hundred); "
                                "row skipped")
            continue
        row = _fields(text)
        if row is None:
            problem(line, None, "broken quoting (a quote left open, or text after a closing quote); row skipped")
            continue
        if len(row) != ncol:
            problem(line, row, f"expected {ncol} tab-separated fields, found {len(row)}; row skipped")
            continue
        clip_id, mp3 = row[0].strip(), row[-1].strip()
        vals = row[1:-1]
        if not clip_id:
            problem(line, row, "empty clip_id; row skipped")
            continue
        if not _PATH_RE.match(mp3):
            problem(line, row, f"clip {clip_id}: mp3_path {mp3!r} is not '<0-f>/<name>.mp3'; row skipped")
            continue
        if not ok.issuperset(vals):
            bad = next(v for v in vals if v not in ok)
            problem(line, row, f"clip {clip_id}: tag value {bad!r} is not 0 or 1; row skipped")
            continue
        if clip_id in seen_ids:
            problem(line, row, f"duplicate clip_id {clip_id} (first on line {seen_ids[clip_id]}); row skipped")
            continue
        if mp3 in seen_paths:
            problem(line, row, f"duplicate mp3_path {mp3} (first on line {seen_paths[mp3]}); row skipped")
            continue
        seen_ids[clip_id] = line
        seen_paths[mp3] = line
        cols = tuple(i for i, v in enumerate(vals) if v == "1")
        for i in cols:
            counts[i] += 1
        index.rows.append((line, clip_id, mp3, cols))
    index.counts = counts
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[key] = index
    return index


class MTATTask(Task):
    name = "mtat"
    kind = "multilabel"
    dataset_dirs = ("magnatagatune",)
    primary_metric = "roc_auc"
    metrics = ("roc_auc", "average_precision")
    probe = "mlp"
    max_windows = 64
    description = (
        "MagnaTagATune top-50 auto-tagging (macro ROC-AUC, macro PR-AUC); split by mp3_path folder "
        "0-b train / c valid / d-f test; clips with no top-50 tag dropped"
    )
    download_help = (
        "Get the audio (mp3.zip.001-003: concatenate, then unzip into the 16 folders 0..f) and "
        "annotations_final.csv from https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset "
        "into DATA_ROOT/magnatagatune/."
    )

    def default_settings(self) -> dict[str, Any]:
        return {"top_k": 50, "drop_untagged": True}

    def _csv(self, data_root: Path) -> Path:
        return self.require_dir(data_root, "magnatagatune") / CSV_NAME

    def _index(self, data_root: Path) -> _Index:
        path = self._csv(data_root)
        if not path.is_file():
            raise DataError(f"{path} not found: {data_root} does not hold the mtat dataset."
                            f"{self.data_hint(data_root)} {self.data_help()}")
        index = parse_annotations(path, path.parent)
        if not index.rows:
            raise DataError(f"{path}: no usable rows. {self.data_help()}")
        return index

    def classes(self, data_root: Path) -> list[str]:
        index = self._index(data_root)
        return [index.tags[i] for i in index.top(self.settings["top_k"])]

    def items(self, split: str, data_root: Path) -> Split:
        if split not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {split!r}")
        index = self._index(data_root)
        root = self._csv(data_root).parent
        csv_path = root / CSV_NAME
        out = Split(split)
        for line, msg, where in index.problems:  # each bad row once, with one split
            if where == split:
                out.problem(csv_path, line, msg)
        top = index.top(self.settings["top_k"])
        cls_of = {col: k for k, col in enumerate(top)}
        present: dict[str, tuple[set[str], dict[str, str]]] = {}
        for line, clip_id, mp3, cols in index.rows:
            folder = mp3[0]
            if SPLIT_OF_FOLDER[folder] != split:
                continue
            label = tuple(sorted(cls_of[c] for c in cols if c in cls_of))
            if not label and self.settings["drop_untagged"]:
                continue  # protocol: clips with no top-k tag are dropped
            names = present.get(folder)
            if names is None:
                names, leaving = present[folder] = list_files(root / folder, root)
            else:
                names, leaving = names
            if mp3[2:] in leaving:
                out.problem(csv_path, line, f"clip {clip_id}: audio file {mp3} "
                            f"{link_problem(root / mp3, root, leaving[mp3[2:]])}", kind="outside_root")
                continue
            if mp3[2:] not in names:
                out.problem(csv_path, line, f"clip {clip_id}: audio file {mp3} not found", kind="missing_audio")
                continue
            out.items.append(Item(track_id=clip_id, path=str(root / mp3), label=label))
        return out

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        from bench_tasks.mtat_demo import make_demo

        make_demo(Path(data_root), size=size, seed=seed)


@hookimpl
def register_tasks(register):
    register("mtat", "bench_tasks.mtat:MTATTask", description=MTATTask.description)
