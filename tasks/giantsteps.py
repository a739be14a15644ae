"""GiantSteps key estimation: 24 classes, MIREX weighted score.

Real layouts under the data root::

    giantsteps-key-dataset/audio/<ID>.LOFI.mp3                  test (604 two-minute previews)
    giantsteps-key-dataset/annotations/key/<ID>.LOFI.key        e.g. "C minor", maybe no newline
    giantsteps-mtg-key-dataset/audio/<ID>.LOFI.mp3              train + valid
    giantsteps-mtg-key-dataset/annotations/annotations.txt      ID<TAB>MANUAL KEY<TAB>C (header)
    giantsteps-mtg-key-dataset/annotations/beatport_metadata.txt ID, ARTIST, SONG TITLE, ... (header)

Protocol: MTG rows with confidence C = 2 only; ambiguous keys (with ``/``) are
left out; sharps are mapped to their enharmonic flats. Train and valid are
split by artist: tracks that share an artist (also through a multi-artist
credit such as ``A, B``) form one group, and a group goes to valid when a
stable hash (SHA-1) of its normalised artist name falls below
``valid_fraction`` (0.2), so no artist is on both sides and the split is the
same on every machine. Setting ``valid_split="track"`` splits by track
instead (a stable hash of the track ID below ``valid_fraction``): the
official SemiSupCon code draws a random 85/15 split per track
(``--protocol semisupcon``, docs/protocols.md). ``valid_split="marble"`` is
MARBLE v1's rule (``--protocol marble``; :func:`marble_artist_splits`), which
ignores ``valid_fraction``.

Long tracks: the harness embeds up to ``max_windows`` (64) non-overlapping
windows spread over the track and the track embedding is the mean of the
window embeddings (a two-minute preview at the paper's 2.7 s window has about
44, so the whole preview is used).

Metric: MIREX weighted key score with ``mir_eval.key.weighted_score`` (same
key 1.0, fifth 0.5, relative 0.3, parallel 0.2) and plain accuracy. Setting
``fifths``: ``"both"`` (default; MIREX since 2017) gives 0.5 to an estimate a
perfect fifth above or below the reference; ``"ascending"`` is mir_eval's
default rule, a fifth above only. mir_eval 0.8.2 has no switch for this (its
``weighted_score`` takes only the two keys), so with ``"both"`` this task adds
the descending fifth on top of mir_eval's score; with a mir_eval that has
``allow_descending_fifths`` the switch is passed through instead.

Encodings and symbolic links: see ``bench_tasks._common`` (an unreadable
``.key`` file is a problem and its track is skipped; an unreadable
``annotations.txt`` or ``beatport_metadata.txt`` is a DataError naming it).
"""

from __future__ import annotations

from functools import lru_cache

import re
import unicodedata
from pathlib import Path
from typing import Any

from bench import hookimpl
from bench.errors import DataError
from bench.task import Item, Split, Task

from bench_tasks._common import AnnotationError, link_problem, list_files, read_text_lines, stable_unit

PITCH_CLASSES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
KEY_NAMES = tuple(f"{p} major" for p in PITCH_CLASSES) + tuple(f"{p} minor" for p in PITCH_CLASSES)
_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_RE = re.compile(r"^([A-Ga-g])\s*([#b\u266f\u266d]?)\s*(major|minor|maj|min)$", re.IGNORECASE)
FIFTHS = {
    "both": "both: a perfect fifth above or below the reference scores 0.5 (MIREX since 2017)",
    "ascending": "ascending: only a perfect fifth above the reference scores 0.5 (mir_eval default)",
}

TEST_DIR = "giantsteps-key-dataset"
MTG_DIR = "giantsteps-mtg-key-dataset"


def parse_key(text: str) -> int:
    """Class index of a key string such as ``C minor``, ``D# minor``, ``Bb major``; ValueError if unknown.

    Sharps map to the enharmonic flat (``D# minor`` -> ``Eb minor``); ``maj``/``min`` are accepted.
    """
    m = _KEY_RE.match(text.strip())
    if not m:
        raise ValueError(f"unknown key {text.strip()!r} (expected e.g. 'C minor', 'Eb major', 'F# minor')")
    letter, acc, mode = m.groups()
    pc = _LETTER[letter.upper()] + {"#": 1, "\u266f": 1, "b": -1, "\u266d": -1, "": 0}[acc]
    return pc % 12 + (0 if mode.lower().startswith("maj") else 12)


def normalise_artist(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").casefold()
    text = re.sub(r"[^0-9a-z]+", " ", text)
    return " ".join(text.split())


_ARTIST_SPLIT = re.compile(r"\s*(?:,|&|\bfeat\b\.?|\bft\b\.?|\bvs\b\.?|\bpres\b\.?)\s*", re.IGNORECASE)


def artists_of(credit: str) -> list[str]:
    """Normalised artist names of a credit like ``A, B & C feat. D`` (one name if it cannot be split)."""
    names = [normalise_artist(a) for a in _ARTIST_SPLIT.split(credit)]
    names = [n for n in names if n]
    return names or [normalise_artist(credit) or "(unknown)"]


def artist_groups(track_artists: dict[str, list[str]]) -> dict[str, str]:
    """Track id -> group name, where tracks sharing any artist are one group (union-find)."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for names in track_artists.values():
        for other in names[1:]:
            ra, rb = find(names[0]), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)  # the smallest name is the group's name
    return {tid: find(names[0]) for tid, names in track_artists.items()}


#: MARBLE v1's artist buckets: SHA-1 of the artist modulo 116, buckets 0-99 train and 100-115 valid
MARBLE_BUCKETS = (100, 16)


def marble_artist_splits(credits: list[str]) -> dict[str, str]:
    """Artist -> ``"train"``/``"valid"`` by MARBLE v1's GiantSteps rule, from every metadata row's ARTIST credit.

    The rule (MARBLE-Benchmark ``benchmark/tasks/GS/preprocess.py``, ``_iter_giantsteps``): a credit is
    split on ``,`` and each name stripped; an artist's bucket is the SHA-1 hex digest of its lower-cased
    UTF-8 name read as an integer, modulo 116; buckets 0-99 are train, 100-115 valid. Then every
    artist credited together with a valid artist becomes valid. MARBLE runs that pass twice over the
    rows (in file order) and asserts that every track's artists agree; repeating it until nothing
    changes gives the same assignment wherever MARBLE's assertion holds, and one that always satisfies it.
    """
    import hashlib

    total = sum(MARBLE_BUCKETS)
    rows = [[a.strip() for a in c.strip().split(",")] for c in credits]
    side: dict[str, str] = {}
    for names in rows:
        for a in names:
            bucket = int(hashlib.sha1(a.lower().encode("utf-8")).hexdigest(), 16) % total
            side[a] = "train" if bucket < MARBLE_BUCKETS[0] else "valid"
    changed = True
    while changed:
        changed = False
        for names in rows:
            if any(side[a] == "valid" for a in names) and any(side[a] != "valid" for a in names):
                for a in names:
                    side[a] = "valid"
                changed = True
    return side


def marble_track_split(credit: str, side: dict[str, str]) -> str:
    """The split of a track credited to ``credit`` under :func:`marble_artist_splits`' assignment ``side``."""
    names = [a.strip() for a in credit.strip().split(",")]
    return "valid" if any(side.get(a) == "valid" for a in names) else "train"


def key_weighted_score(ref: str, est: str, fifths: str = "both") -> float:
    """MIREX weighted key score of one estimate, via mir_eval, with the chosen fifths rule."""
    import inspect

    import mir_eval

    fn = mir_eval.key.weighted_score
    if "allow_descending_fifths" in inspect.signature(fn).parameters:
        return float(fn(ref, est, allow_descending_fifths=(fifths == "both")))
    score = float(fn(ref, est))
    if fifths == "both" and score == 0.0:
        r, e = KEY_NAMES.index(ref), KEY_NAMES.index(est)
        if r // 12 == e // 12 and (e - r) % 12 == 5:  # a fifth below = a fourth above, same mode
            score = 0.5
    return score


@lru_cache(maxsize=4)
def credit_table(fifths: str = "both"):
    """The weighted score of every (reference, estimate) pair of the 24 keys, from :func:`key_weighted_score`.

    Scoring looks credits up here: the bootstrap scores every test track once per resample set, and
    mir_eval per track (with its signature check) cost seconds per task on a warm rerun.
    """
    import numpy as np

    table = np.array([[key_weighted_score(r, e, fifths) for e in KEY_NAMES] for r in KEY_NAMES])
    table.setflags(write=False)
    return table


class GiantStepsKey(Task):
    """24-class key estimation on GiantSteps (see the module docstring for the protocol)."""

    name = "giantsteps_key"
    kind = "multiclass"
    dataset_dirs = (TEST_DIR, MTG_DIR)
    primary_metric = "weighted_score"
    metrics = ("weighted_score", "accuracy")
    probe = "linear"
    #: a pitch shift changes the label (label-aware augmentation skips it on labeled clips)
    label_variant_transforms = ("pitch_shift",)
    max_windows = 64
    description = (
        "GiantSteps key (24 classes): test giantsteps-key-dataset, train/valid giantsteps-mtg-key-dataset "
        "(confidence 2, artist-disjoint); MIREX weighted score (fifths rule: setting 'fifths') and accuracy; "
        "track = mean of window embeddings"
    )
    download_help = (
        "Clone https://github.com/GiantSteps/giantsteps-key-dataset and "
        "https://github.com/GiantSteps/giantsteps-mtg-key-dataset into DATA_ROOT and run each "
        "repository's audio download script (audio_dl.sh) so that their audio/ folders hold <ID>.LOFI.mp3."
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if self.settings["fifths"] not in FIFTHS:
            raise TypeError(f"setting fifths={self.settings['fifths']!r}: use 'both' or 'ascending'")
        vf = self.settings["valid_fraction"]
        if not (isinstance(vf, (int, float)) and 0.0 < vf < 1.0):
            raise TypeError(f"setting valid_fraction={vf!r}: use a number between 0 and 1")
        if self.settings["valid_split"] not in ("artist", "track", "marble"):
            raise TypeError(f"setting valid_split={self.settings['valid_split']!r}: use 'artist', 'track' or "
                            "'marble'")

    def default_settings(self) -> dict[str, Any]:
        return {"fifths": "both", "valid_fraction": 0.2, "valid_split": "artist"}

    def describe_settings(self) -> str:
        if self.settings["valid_split"] == "marble":
            return (f"fifths={FIFTHS[self.settings['fifths']]}; valid split by MARBLE v1's artist rule "
                    f"(SHA-1 of the artist mod 116, 16 of 116 buckets valid, collaborators of valid artists valid)")
        return (f"fifths={FIFTHS[self.settings['fifths']]}; valid_fraction={self.settings['valid_fraction']} "
                f"(by {self.settings['valid_split']})")

    def classes(self, data_root: Path) -> list[str]:
        return list(KEY_NAMES)

    # -- indexing ---------------------------------------------------------------
    def items(self, split: str, data_root: Path) -> Split:
        if split == "test":
            return self._test(data_root)
        if split in ("train", "valid"):
            return self._mtg(split, data_root)
        raise ValueError(f"unknown split {split!r}")

    def _test(self, data_root: Path) -> Split:
        root = self.require_dir(data_root, TEST_DIR)
        key_dir = root / "annotations" / "key"
        if not key_dir.is_dir():
            raise DataError(f"{key_dir} not found: {root} is not the GiantSteps key dataset."
                            f"{self.data_hint(data_root)} {self.data_help()}")
        out = Split("test")
        audio, audio_out = list_files(root / "audio", root)
        keys, keys_out = list_files(key_dir, root)
        for name in sorted(keys_out):
            if name.endswith(".key"):
                out.problem(key_dir / name, None, f"{link_problem(key_dir / name, root, keys_out[name])}; track "
                            "skipped", kind="outside_root")
        for name in sorted(keys):
            if not name.endswith(".key"):
                continue
            path = key_dir / name
            track = name[: -len(".key")]
            track = track[: -len(".LOFI")] if track.endswith(".LOFI") else track
            try:
                lines = read_text_lines(path, root)
            except AnnotationError as exc:
                out.problem(path, None, f"{exc.reason}; track skipped")
                continue
            numbered = [(i, ln.strip()) for i, ln in enumerate(lines, 1) if ln.strip()]
            if not numbered:
                out.problem(path, 1, "empty key file; track skipped")
                continue
            line, text = numbered[0]
            if "/" in text:
                out.problem(path, line, f"ambiguous key {text!r}; track skipped", kind="ambiguous")
                continue
            try:
                label = parse_key(text)
            except ValueError as exc:
                out.problem(path, line, f"{exc}; track skipped", kind="unknown_label")
                continue
            mp3 = f"{track}.LOFI.mp3"
            if mp3 in audio_out:
                out.problem(path, line, f"audio file audio/{mp3} {link_problem(root / 'audio' / mp3, root, audio_out[mp3])}",
                            kind="outside_root")
                continue
            if mp3 not in audio:
                out.problem(path, line, f"audio file audio/{mp3} not found", kind="missing_audio")
                continue
            out.items.append(Item(track_id=track, path=str(root / "audio" / mp3), label=label))
        if not out.items and not out.problems:
            raise DataError(f"{key_dir} holds no <ID>.LOFI.key files. {self.data_help()}")
        return out

    def _mtg(self, split: str, data_root: Path) -> Split:
        root = self.require_dir(data_root, MTG_DIR)
        ann = root / "annotations" / "annotations.txt"
        meta = root / "annotations" / "beatport_metadata.txt"
        for f in (ann, meta):
            if not f.is_file():
                raise DataError(f"{f} not found: {root} is not the GiantSteps MTG key dataset."
                                f"{self.data_hint(data_root)} {self.data_help()}")
        out = Split(split)
        lines = read_text_lines(ann, root)
        if not lines or [h.strip().upper() for h in lines[0].split("\t")[:3]] != ["ID", "MANUAL KEY", "C"]:
            raise DataError(
                f"{ann}: expected the header 'ID<TAB>MANUAL KEY<TAB>C', found {lines[0][:60] if lines else ''!r}. "
                f"{self.data_help()}"
            )
        kept: dict[str, tuple[int, int]] = {}  # id -> (line, label)
        seen: dict[str, int] = {}
        for n, raw in enumerate(lines[1:], 2):
            if not raw.strip():
                continue
            fields = [f.strip() for f in raw.split("\t")]
            if len(fields) < 3 or not fields[0]:
                out.problem(ann, n, f"expected ID<TAB>KEY<TAB>C, found {raw[:60]!r}; row skipped")
                continue
            tid, key, conf = fields[0], fields[1], fields[2]
            if tid in seen:
                out.problem(ann, n, f"duplicate ID {tid} (first on line {seen[tid]}); row skipped", kind="duplicate")
                continue
            seen[tid] = n
            if conf not in ("0", "1", "2"):
                out.problem(ann, n, f"track {tid}: confidence {conf!r} is not 0, 1 or 2; row skipped")
                continue
            if conf != "2" or "/" in key:
                continue  # protocol: confident, unambiguous keys only
            try:
                kept[tid] = (n, parse_key(key))
            except ValueError as exc:
                out.problem(ann, n, f"track {tid}: {exc}; row skipped", kind="unknown_label")
        artists = self._artists(meta, root, out)
        track_artists = {}
        for tid, (n, _label) in kept.items():
            credit = artists.get(tid)
            if credit is None:
                out.problem(ann, n, f"track {tid} has no row in {meta.name}; split by its ID", kind="missing_metadata")
                track_artists[tid] = [f"(id {tid})"]
            else:
                track_artists[tid] = artists_of(credit)
        groups = artist_groups(track_artists)
        frac = self.settings["valid_fraction"]
        rule = self.settings["valid_split"]
        marble = marble_artist_splits(list(artists.values())) if rule == "marble" else {}
        audio, audio_out = list_files(root / "audio", root)
        for tid, (n, label) in kept.items():
            if rule == "marble":
                # a track without a metadata row: its ID stands for the artist (MARBLE would fail on it)
                credit = artists.get(tid)
                side = (marble_track_split(credit, marble) if credit is not None
                        else marble_track_split(f"(id {tid})", marble_artist_splits([f"(id {tid})"])))
            else:
                unit = ("giantsteps-mtg track:" + tid) if rule == "track" else ("giantsteps-mtg artist:" + groups[tid])
                side = "valid" if stable_unit(unit) < frac else "train"
            if side != split:
                continue
            mp3 = f"{tid}.LOFI.mp3"
            if mp3 in audio_out:
                out.problem(ann, n, f"track {tid}: audio file audio/{mp3} "
                            f"{link_problem(root / 'audio' / mp3, root, audio_out[mp3])}", kind="outside_root")
                continue
            if mp3 not in audio:
                out.problem(ann, n, f"track {tid}: audio file audio/{mp3} not found", kind="missing_audio")
                continue
            out.items.append(Item(track_id=tid, path=str(root / "audio" / mp3), label=label))
        return out

    @staticmethod
    def _artists(meta: Path, root: Path, out: Split) -> dict[str, str]:
        lines = read_text_lines(meta, root)
        artists: dict[str, str] = {}
        start = 2 if lines and lines[0].split("\t")[0].strip().upper() == "ID" else 1
        for n, raw in enumerate(lines[start - 1 :], start):
            if not raw.strip():
                continue
            fields = raw.split("\t")
            if len(fields) < 2 or not fields[0].strip():
                out.problem(meta, n, f"expected ID<TAB>ARTIST<TAB>..., found {raw[:60]!r}; row skipped")
                continue
            artists.setdefault(fields[0].strip(), fields[1].strip())
        return artists

    # -- metrics ------------------------------------------------------------------
    def score(self, y_true: Any, scores: Any) -> dict[str, float]:
        import numpy as np

        y = np.asarray(y_true).astype(int)
        est = np.asarray(scores).argmax(axis=1)
        fifths = self.settings["fifths"]
        weighted = credit_table(fifths)[y, est]
        return {"weighted_score": float(np.mean(weighted)), "accuracy": float(np.mean(y == est))}

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        from bench_tasks.giantsteps_demo import make_demo

        make_demo(Path(data_root), size=size, seed=seed)


@hookimpl
def register_tasks(register):
    register("giantsteps_key", "bench_tasks.giantsteps:GiantStepsKey", description=GiantStepsKey.description)
