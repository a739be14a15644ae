"""NSynth instrument family: 11-class classification of single notes, from the same data as ``nsynth_pitch``.

Real layout: as :mod:`bench_tasks.nsynth` (``nsynth/nsynth-{train,valid,test}/examples.json``
and ``audio/<note_str>.wav``, the official json/wav download) and the same
official splits (instruments are disjoint across them). The label is the
``instrument_family`` field, 0..10 in NSynth's order (bass, brass, flute,
guitar, keyboard, mallet, organ, reed, string, synth_lead, vocal; MARBLE's
order too). Every note is used, whatever its pitch. Metric: accuracy, as
MARBLE's NSynthI. In the official release ``synth_lead`` occurs only in the
training split, so valid and test score 10 of the 11 classes; accuracy needs
no special case for the empty class. An entry whose ``instrument_family``
does not match its ``instrument_family_str`` is a problem and is skipped.

The demo is NSynth's demo (:mod:`bench_tasks.nsynth_demo`): each demo
instrument is one General MIDI program filed under the NSynth family it
belongs to, so the family label is true of the audio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import hookimpl

from bench_tasks.nsynth import NSynthPitch
from bench_tasks.nsynth_format import FAMILIES


class NSynthInstrument(NSynthPitch):
    name = "nsynth_instrument"
    kind = "multiclass"
    primary_metric = "accuracy"
    metrics = ("accuracy",)
    probe = "mlp"
    #: the family of a note survives a pitch shift within the demo's few semitones
    label_variant_transforms = ()
    description = "NSynth instrument family (11 classes), official splits, accuracy"

    def default_settings(self) -> dict[str, Any]:
        return {}

    def classes(self, data_root: Path) -> list[str]:
        return list(FAMILIES)

    def label_of(self, ex: dict) -> int | None:
        fam = ex["instrument_family"]
        if not 0 <= fam < len(FAMILIES) or FAMILIES[fam] != ex["instrument_family_str"]:
            raise _BadEntry(f"instrument_family {fam} / instrument_family_str {ex['instrument_family_str']!r} "
                            f"is not one of NSynth's 11 families ({', '.join(FAMILIES)}) or they disagree")
        return fam

    def score(self, y_true, scores) -> dict[str, float]:
        from bench import metrics

        return metrics.score(self.kind, y_true, scores, self.metrics)

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        from bench_tasks.nsynth_demo import make_demo

        # the pitch task's default range: the same demo folder, byte for byte, as nsynth_pitch writes
        make_demo(Path(data_root), size=size, seed=seed)


class _BadEntry(ValueError):
    """An examples.json entry whose label fields are unusable (recorded as a problem by the loader)."""


@hookimpl
def register_tasks(register):
    register("nsynth_instrument", "bench_tasks.nsynth_instrument:NSynthInstrument",
             description=NSynthInstrument.description, group="extended")
