"""NSynth pitch: 88-class (by default) pitch estimation of single instrument notes.

Real layout (https://magenta.tensorflow.org/datasets/nsynth, the json/wav
download), under the data root::

    nsynth/nsynth-train/examples.json   nsynth/nsynth-train/audio/<note_str>.wav
    nsynth/nsynth-valid/...             nsynth/nsynth-test/...

``examples.json`` is an object keyed by ``note_str``; the label is the
``pitch`` field (MIDI 0-127), restricted to ``pitch_min..pitch_max`` (default
21..108, the 88 piano keys: notes outside are left out). The official splits
are used as they are. Metrics: accuracy (primary) and pitch-class (chroma)
accuracy, where an octave error counts as right. Encodings (a UTF-8 BOM is
fine) and symbolic links: see ``bench_tasks._common``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import hookimpl
from bench.errors import DataError
from bench.task import Split, Task

from bench_tasks._common import link_problem, list_files, read_text
from bench_tasks.nsynth_format import FAMILIES, QUALITIES, SOURCES, SPLIT_DIRS  # noqa: F401 (the loader's vocabulary)

REQUIRED = {"note": int, "note_str": str, "instrument": int, "instrument_str": str, "pitch": int,
            "velocity": int, "sample_rate": int, "instrument_source": int, "instrument_source_str": str,
            "instrument_family": int, "instrument_family_str": str, "qualities": list, "qualities_str": list}
NOTE_NAMES = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]


class NSynthPitch(Task):
    name = "nsynth_pitch"
    kind = "multiclass"
    dataset_dirs = ("nsynth",)
    primary_metric = "accuracy"
    metrics = ("accuracy", "pitch_class_accuracy")
    probe = "mlp"
    #: a pitch shift changes the label (label-aware augmentation skips it on labeled clips)
    label_variant_transforms = ("pitch_shift",)
    description = "NSynth note pitch (MIDI 21..108 by default), accuracy and pitch-class accuracy"
    download_help = (
        "Download the json/wav version of NSynth (nsynth-train.jsonwav.tar.gz, nsynth-valid..., "
        "nsynth-test...) from https://magenta.tensorflow.org/datasets/nsynth and unpack the three "
        "archives into DATA_ROOT/nsynth/."
    )

    def default_settings(self) -> dict[str, Any]:
        return {"pitch_min": 21, "pitch_max": 108}

    def classes(self, data_root: Path) -> list[str]:
        lo, hi = self.settings["pitch_min"], self.settings["pitch_max"]
        return [f"{NOTE_NAMES[p % 12]}{p // 12 - 1} ({p})" for p in range(lo, hi + 1)]

    def items(self, split: str, data_root: Path) -> Split:
        from bench.task import Item

        base = self.require_dir(data_root, "nsynth")
        folder = base / SPLIT_DIRS[split]
        index = folder / "examples.json"
        if not index.is_file():
            raise DataError(f"{index} not found: the {split} split of NSynth is missing."
                            f"{self.data_hint(data_root)} {self.data_help()}")
        text = read_text(index, base)
        try:
            examples = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{index}:{exc.lineno}: not valid JSON ({exc.msg}). Re-download the {split} split.") from exc
        if not isinstance(examples, dict):
            raise DataError(f"{index}: expected an object keyed by note_str, found {type(examples).__name__}")
        out = Split(split)
        present, leaving = list_files(folder / "audio", base)
        seen_notes: set[int] = set()
        for key, ex in examples.items():
            reason = _invalid(key, ex)
            if reason:
                out.problem(index, _line_of(text, key), f"entry {key!r}: {reason}; skipped")
                continue
            if ex["note"] in seen_notes:
                out.problem(index, _line_of(text, key), f"entry {key!r}: duplicate note id {ex['note']}; skipped",
                            "duplicate")
                continue
            seen_notes.add(ex["note"])
            try:
                label = self.label_of(ex)
            except ValueError as exc:  # the label fields of this entry are unusable for this task
                out.problem(index, _line_of(text, key), f"entry {key!r}: {exc}; skipped", "unknown_label")
                continue
            if label is None:
                continue  # outside the task's label set by design (pitch range), not a problem
            fname = f"{key}.wav"
            if fname in leaving:
                out.problem(folder / "audio" / fname, None, link_problem(folder / "audio" / fname, base,
                                                                         leaving[fname]), "outside_root")
                continue
            if fname not in present:
                out.problem(folder / "audio" / fname, None, "audio file listed in examples.json is missing",
                           "missing_audio")
                continue
            out.items.append(Item(key, str(folder / "audio" / fname), label))
        return out

    def label_of(self, ex: dict) -> int | None:
        """The class index of a valid ``examples.json`` entry, None to leave the note out by design, or
        ValueError (the entry is recorded as a problem)."""
        lo, hi = self.settings["pitch_min"], self.settings["pitch_max"]
        return ex["pitch"] - lo if lo <= ex["pitch"] <= hi else None

    def score(self, y_true, scores) -> dict[str, float]:
        import numpy as np

        pred = np.asarray(scores).argmax(axis=1)
        y = np.asarray(y_true)
        lo = self.settings["pitch_min"]
        return {
            "accuracy": float((pred == y).mean()),
            "pitch_class_accuracy": float((((pred + lo) % 12) == ((y + lo) % 12)).mean()),
        }

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        from bench_tasks.nsynth_demo import make_demo

        make_demo(Path(data_root), size=size, seed=seed, pitch_min=self.settings["pitch_min"],
                  pitch_max=self.settings["pitch_max"])


def _invalid(key: str, ex: Any) -> str:
    if not isinstance(ex, dict):
        return f"expected an object, found {type(ex).__name__}"
    for field, typ in REQUIRED.items():
        if field not in ex:
            return f"missing field {field!r}"
        if not isinstance(ex[field], typ) or (typ is int and isinstance(ex[field], bool)):
            return f"field {field!r} should be {typ.__name__}, found {ex[field]!r}"
    if ex["note_str"] != key:
        return f"note_str {ex['note_str']!r} does not match its key"
    if not 0 <= ex["pitch"] <= 127:
        return f"pitch {ex['pitch']} is outside MIDI 0..127"
    return ""


def _line_of(text: str, key: str) -> int | None:
    pos = text.find(json.dumps(key) + ":")
    if pos < 0:
        pos = text.find(json.dumps(key))
    return text.count("\n", 0, pos) + 1 if pos >= 0 else None


@hookimpl
def register_tasks(register):
    register("nsynth_pitch", NSynthPitch, description=NSynthPitch.description)
