"""VocalSet (Wilkins et al. 2018): singer identification (20 singers) and singing technique (10 techniques).

Real layout under the data root (``VocalSet11.zip``, Zenodo record 1203819,
the version MARBLE and mir_ref use, unzipped into ``vocalset/``)::

    vocalset/FULL/<singer>/<context>/<technique>/<file>.wav      singer: f1..f9, m1..m11

Only files at exactly that depth are read (the zip also holds other
folders). The labels come from the folders: the singer folder and the
technique folder (a few files of the release lack the singer prefix in their
name or are duplicates with another name; the folders are right either way).
Each file is one example (the harness windows it and averages the windows;
MARBLE instead cuts voiced audio into 3 s chunks).

``vocalset_technique``: the 10 techniques MARBLE uses (belt, breathy,
inhaled, lip_trill, spoken, straight, trill, trillo, vibrato, vocal_fry);
files of the other seven technique folders are left out by design. Test
singers f2, f8, m3, m5, m10 (MARBLE's and mir_ref's). Setting ``split``:
``singers`` (default, protocol ``bench``): valid singers f9, m9, m11 (mir_ref's),
train the other twelve, so no singer is in two splits; ``marble`` (set by
``--protocol marble``): MARBLE's construction, valid = 40% of the file-index
groups of the other fifteen singers (a group: the files with the same index
in their technique folder, over every singer), so valid shares singers with
train. MARBLE draws the groups with an unseeded shuffle; here the draw is a
fixed hash of the index, so the split is built the same way, not with the
same files.

``vocalset_singer``: 20 classes, every technique folder. The split keeps the
vowels of one sung exercise together: a group is (singer, context, technique)
and a fixed hash of it sends 20% of the groups to test, 32% to valid, the rest
to train (MARBLE's 12:8:5 ratio of train, valid and test). Metric: accuracy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench import hookimpl
from bench.errors import DataError
from bench.task import Item, Split, Task

from bench_tasks._common import link_problem, outside, stable_unit

SINGERS = tuple(f"f{i}" for i in range(1, 10)) + tuple(f"m{i}" for i in range(1, 12))
TECHNIQUES_10 = ("belt", "breathy", "inhaled", "lip_trill", "spoken", "straight", "trill", "trillo", "vibrato",
                 "vocal_fry")
TECHNIQUES_17 = TECHNIQUES_10 + ("fast_forte", "fast_piano", "forte", "messa", "pp", "slow_forte", "slow_piano")
TEST_SINGERS = ("f2", "f8", "m3", "m5", "m10")
VALID_SINGERS = ("f9", "m9", "m11")


class _VocalSet(Task):
    kind = "multiclass"
    dataset_dirs = ("vocalset",)
    primary_metric = "accuracy"
    metrics = ("accuracy",)
    probe = "mlp"
    download_help = ("Download VocalSet11.zip from https://zenodo.org/record/1203819 and unzip it into "
                     "DATA_ROOT/vocalset/ (so that DATA_ROOT/vocalset/FULL/f1/... exist).")

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        raise NotImplementedError(f"task {self.name!r} has no demo data: a SoundFont cannot truthfully render a "
                                  "given singer's voice or a singing technique (docs/demo-data.md). Run it on the "
                                  "real VocalSet.")

    def files(self, data_root: Path) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str]]]:
        """(singer, context, technique, path) of every wav at the dataset's depth, and (path, why) of links out."""
        root = self.require_dir(data_root, "vocalset")
        full = root / "FULL"
        if not full.is_dir():
            raise DataError(f"{full} not found: {root} does not hold VocalSet 1.1's FULL/ folder."
                            f"{self.data_hint(data_root)} {self.data_help()}")
        out, leaving = [], []
        for singer in sorted(os.listdir(full)):
            if singer not in SINGERS or not (full / singer).is_dir():
                continue
            for context in sorted(os.listdir(full / singer)):
                cdir = full / singer / context
                if not cdir.is_dir():
                    continue
                for tech in sorted(os.listdir(cdir)):
                    tdir = cdir / tech
                    if tech not in TECHNIQUES_17 or not tdir.is_dir():
                        continue
                    for name in sorted(os.listdir(tdir)):
                        p = tdir / name
                        if not name.lower().endswith(".wav") or name.startswith("."):
                            continue
                        target = outside(p, root)
                        if target is not None:
                            leaving.append((str(p), target))
                        elif p.is_file():
                            out.append((singer, context, tech, str(p)))
        if not out:
            raise DataError(f"{full}: no <singer>/<context>/<technique>/*.wav files found. {self.data_help()}")
        return out, leaving

    def _split(self, split: str, data_root: Path, label_of, split_of) -> Split:
        if split not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {split!r}")
        files, leaving = self.files(data_root)
        root = Path(data_root) / "vocalset"
        out = Split(split)
        for path, target in leaving:
            out.problem(path, None, link_problem(path, root, target), "outside_root")
        for rec in files:
            label = label_of(rec)
            if label is None or split_of(rec) != split:
                continue
            rel = os.path.relpath(rec[3], root / "FULL")
            out.items.append(Item(track_id=rel.replace(os.sep, "/")[: -len(".wav")], path=rec[3], label=label))
        return out


class VocalSetTechnique(_VocalSet):
    name = "vocalset_technique"
    description = ("VocalSet singing technique (10 classes, MARBLE's), test singers f2 f8 m3 m5 m10; valid "
                   "singers f9 m9 m11 (setting split=marble: MARBLE's non-singer-disjoint valid); accuracy")

    def default_settings(self) -> dict[str, Any]:
        return {"split": "singers"}

    def classes(self, data_root: Path) -> list[str]:
        return list(TECHNIQUES_10)

    def items(self, split: str, data_root: Path) -> Split:
        mode = self.settings["split"]
        if mode not in ("singers", "marble"):
            raise DataError(f"task {self.name}: setting split={mode!r}; use 'singers' or 'marble'")
        files, _ = self.files(data_root)
        index: dict[str, int] = {}
        if mode == "marble":  # a file's index inside its technique folder, over the non-test singers
            by_tech: dict[str, list[str]] = {}
            for s, _c, t, p in files:
                if s not in TEST_SINGERS:
                    by_tech.setdefault(t, []).append(p)
            index = {p: i for paths in by_tech.values() for i, p in enumerate(sorted(paths))}

        def split_of(rec):
            singer, path = rec[0], rec[3]
            if singer in TEST_SINGERS:
                return "test"
            if mode == "singers":
                return "valid" if singer in VALID_SINGERS else "train"
            return "valid" if stable_unit(f"vocalset file index {index[path]}") < 0.4 else "train"

        return self._split(split, data_root,
                           lambda rec: TECHNIQUES_10.index(rec[2]) if rec[2] in TECHNIQUES_10 else None, split_of)


class VocalSetSinger(_VocalSet):
    name = "vocalset_singer"
    description = ("VocalSet singer identification (20 classes), every technique; exercises (singer, context, "
                   "technique) split 48/32/20% train/valid/test by a fixed hash; accuracy")

    def classes(self, data_root: Path) -> list[str]:
        return list(SINGERS)

    def items(self, split: str, data_root: Path) -> Split:
        def split_of(rec):
            u = stable_unit("vocalset exercise " + "/".join(rec[:3]))
            return "test" if u < 0.2 else "valid" if u < 0.52 else "train"

        return self._split(split, data_root, lambda rec: SINGERS.index(rec[0]), split_of)


@hookimpl
def register_tasks(register):
    for cls in (VocalSetSinger, VocalSetTechnique):
        register(cls.name, f"bench_tasks.vocalset:{cls.__name__}", description=cls.description + "; no demo data",
                 group="extended-real")
