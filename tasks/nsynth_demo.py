"""Demo NSynth: single notes of General MIDI instruments, written in the real NSynth json/wav layout.

A demo "instrument" is one GM program of the SoundFont (TimGM6mb by
default: recorded samples), filed under the NSynth family it belongs to and
played over its natural range at the five NSynth velocities. As in NSynth a
note is held for 3 s and rendered for 4 s (16 kHz mono 16-bit), and the
instruments of the train, valid and test splits are disjoint, so the pitch
probe has to generalise to unseen timbres.

Every field of ``examples.json`` is true of the audio: ``pitch`` and
``velocity`` are the MIDI note rendered; ``instrument_source`` is the kind of
instrument the program imitates; the ``qualities`` are measured on the
rendered note (``bright``, ``dark``, ``fast_decay``, ``long_release``), or
known from the program and the rendering (``distortion``, ``percussive``,
``reverb``: the reverb send of the note); ``multiphonic``, ``nonlinear_env``
and ``tempo-synced`` are never rendered and stay 0. Programs whose sounding
fundamental is not the MIDI note (drawbar organs sound an octave below,
guitar harmonics two octaves above, FX and percussion programs) are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench_tasks._common import run_jobs
from bench_tasks.nsynth_format import FAMILIES, QUALITIES, SOURCES, SPLIT_DIRS

SAMPLE_RATE = 16000
DURATION = 4.0
HOLD = 3.0  # NSynth: note-on for 3 s, then the release
VELOCITIES = [25, 50, 75, 100, 127]
GAIN = 6.0  # one gain for all notes (TimGM6mb peaks near 0.1): velocity keeps its meaning

# family -> (GM program, source index into SOURCES, lowest, highest MIDI pitch played); the ranges
# are the instruments' usual ones, cut where the SoundFont's sample no longer sounds the written pitch
PROGRAMS = {
    "keyboard": [(0, 0, 21, 108), (1, 0, 21, 108), (2, 1, 24, 103), (3, 0, 28, 100), (4, 1, 28, 103),
                 (5, 1, 28, 103), (6, 0, 29, 89), (7, 1, 48, 96)],
    "mallet": [(8, 0, 60, 108), (9, 0, 79, 108), (10, 1, 60, 100), (11, 0, 53, 89), (12, 0, 45, 96),
               (13, 0, 65, 108), (15, 0, 48, 96), (108, 0, 48, 84)],
    "organ": [(20, 0, 48, 96), (21, 0, 41, 89), (22, 0, 48, 84), (23, 0, 41, 83)],
    "guitar": [(24, 0, 40, 84), (25, 0, 40, 84), (26, 1, 40, 86), (27, 1, 40, 86), (28, 1, 40, 76),
               (29, 1, 48, 86), (30, 1, 40, 86), (105, 0, 48, 84)],
    "bass": [(32, 0, 28, 60), (33, 1, 28, 67), (34, 1, 28, 67), (35, 1, 28, 67), (36, 1, 28, 67),
             (37, 1, 28, 67), (38, 2, 24, 72), (39, 2, 24, 72)],
    "string": [(40, 0, 55, 100), (41, 0, 48, 88), (42, 0, 36, 76), (43, 0, 28, 60), (44, 0, 36, 96),
               (45, 0, 36, 96), (46, 0, 24, 103), (48, 0, 36, 96), (49, 0, 36, 96), (104, 0, 48, 84),
               (106, 0, 48, 84), (107, 0, 60, 88), (110, 0, 55, 96)],
    "vocal": [(52, 0, 48, 79), (53, 0, 48, 79), (54, 2, 48, 84), (85, 2, 48, 84)],
    "brass": [(56, 0, 52, 84), (57, 0, 40, 72), (58, 0, 28, 58), (59, 0, 52, 84), (60, 0, 40, 77),
              (61, 0, 40, 84), (62, 2, 36, 96), (63, 2, 36, 96)],
    "reed": [(64, 0, 56, 87), (65, 0, 49, 80), (66, 0, 44, 76), (67, 0, 36, 69), (68, 0, 58, 91),
             (69, 0, 52, 81), (70, 0, 34, 72), (71, 0, 50, 91), (109, 0, 60, 84), (111, 0, 60, 88)],
    "flute": [(72, 0, 74, 108), (73, 0, 60, 96), (74, 0, 60, 96), (75, 0, 55, 91), (76, 0, 55, 91),
              (77, 0, 60, 91), (79, 0, 60, 96)],
    "synth_lead": [(80, 2, 36, 96), (81, 2, 36, 96), (82, 2, 48, 96), (83, 2, 36, 96), (84, 2, 36, 96),
                   (87, 2, 28, 84), (88, 2, 36, 96), (89, 2, 36, 96), (90, 2, 36, 96), (91, 2, 36, 96),
                   (92, 2, 36, 96), (93, 2, 36, 96), (94, 2, 36, 96), (95, 2, 36, 96), (50, 2, 36, 96),
                   (51, 2, 36, 96)],
}
PERCUSSIVE = {45, 46, 104, 105, 106, 107, 108} | {p for p, *_ in PROGRAMS["mallet"]}
DISTORTED = {29, 30, 84}

# instruments per split, notes per instrument (at most; an instrument plays every `pitch_step`-th
# pitch of its range from a random offset); tiny puts every instrument on one grid so every
# test pitch is also a train pitch
SIZES = {
    "tiny": {"instruments": {"train": 4, "valid": 2, "test": 2}, "pitch_step": 6, "max_notes": 12},
    "small": {"instruments": {"train": 18, "valid": 5, "test": 8}, "pitch_step": 2, "max_notes": 18},
    "medium": {"instruments": {"train": 52, "valid": 12, "test": 22}, "pitch_step": 1, "max_notes": 28},
}


def split_programs(rng, counts: dict[str, int]) -> dict[str, list[tuple[str, tuple]]]:
    """Deal the programs to the splits (disjoint), spreading every split over the families."""
    deck = []
    for family in FAMILIES:
        progs = list(PROGRAMS[family])
        order = rng.permutation(len(progs))
        deck.append([(family, progs[int(i)]) for i in order])
    out: dict[str, list] = {s: [] for s in ("test", "valid", "train")}
    # round-robin over families (in a seeded order), test first: each split gets many families
    while any(len(out[s]) < counts[s] for s in out) and any(deck):
        for fi in rng.permutation(len(deck)):
            for split in ("test", "valid", "train"):
                if len(out[split]) < counts[split] and deck[fi]:
                    out[split].append(deck[fi].pop())
                    break
    return out


def _measure(x, pitch: int) -> dict[str, bool]:
    """Qualities read off the rendered note (NSynth's definitions, with fixed thresholds)."""
    import numpy as np

    sr = SAMPLE_RATE

    def rms(a, b):
        seg = x[int(a * sr) : int(b * sr)]
        return float(np.sqrt(np.mean(seg**2)) + 1e-9)

    peak = max(rms(t, t + 0.1) for t in np.arange(0.0, 1.0, 0.1))
    body = x[: int(HOLD * sr)]
    spec = np.abs(np.fft.rfft(body * np.hanning(len(body))))
    f = np.fft.rfftfreq(len(body), 1 / sr)
    centroid = float((spec * f).sum() / (spec.sum() + 1e-12))
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    return {
        # strong upper harmonics / a muted sound: centroid far above / close to the fundamental
        "bright": centroid > max(2000.0, 8 * f0),
        "dark": centroid < min(600.0, 2.5 * f0) or centroid < 1.3 * f0,
        # decays before the note-off at 3 s / still sounding at the end of the 4 s
        "fast_decay": rms(2.5, 3.0) < peak * 10 ** (-40 / 20),
        "long_release": rms(3.7, 4.0) > peak * 10 ** (-30 / 20),
    }


def _write_note(job: tuple) -> dict[str, bool]:
    """Render, measure and write one note; returns its measured qualities."""
    import numpy as np
    import pretty_midi
    import soundfile as sf

    from bench_tasks.render import render_midi

    path, program, pitch, velocity, reverb = job
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=program)
    inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=0.0, end=HOLD))
    inst.control_changes += [pretty_midi.ControlChange(91, reverb, 0.0), pretty_midi.ControlChange(93, 0, 0.0)]
    pm.instruments.append(inst)
    x = render_midi(pm, SAMPLE_RATE, DURATION) * GAIN
    x = np.clip(x, -1.0, 1.0)
    sf.write(path, x, SAMPLE_RATE, subtype="PCM_16")
    return _measure(x, pitch)


def plan(size: str, seed: int, pitch_min: int = 21, pitch_max: int = 108) -> tuple[dict, list]:
    """The notes of every split (examples.json without the measured qualities) and the render jobs."""
    import numpy as np

    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; choose from {sorted(SIZES)}")
    conf = SIZES[size]
    rng = np.random.default_rng([seed, 401])
    dealt = split_programs(rng, conf["instruments"])
    note_id = 0
    inst_id = 0
    examples: dict[str, dict] = {}
    jobs = []
    for split in ("train", "valid", "test"):
        examples[split] = {}
        for family, (program, source_idx, lo, hi) in dealt[split]:
            lo, hi = max(lo, pitch_min), min(hi, pitch_max)
            instrument_str = f"{family}_{SOURCES[source_idx]}_{inst_id:03d}"
            step = conf["pitch_step"]
            offset = 0 if size == "tiny" else int(rng.integers(step))
            pitches = list(range(lo + (-lo) % step if size == "tiny" else lo + offset, hi + 1, step))
            if len(pitches) > conf["max_notes"]:
                pitches = sorted(int(p) for p in rng.choice(pitches, conf["max_notes"], replace=False))
            # a fifth of the instruments are recorded with reverb (a quality NSynth labels)
            reverb = int(rng.integers(70, 110)) if rng.random() < 0.2 else 0
            for pitch in pitches:
                velocity = int(rng.choice(VELOCITIES))
                note_str = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
                examples[split][note_str] = {
                    "note": note_id, "note_str": note_str, "instrument": inst_id,
                    "instrument_str": instrument_str, "pitch": pitch, "velocity": velocity,
                    "sample_rate": SAMPLE_RATE, "instrument_source": source_idx,
                    "instrument_source_str": SOURCES[source_idx],
                    "instrument_family": FAMILIES.index(family), "instrument_family_str": family,
                    "qualities": [], "qualities_str": [],
                    "_known": {"distortion": program in DISTORTED, "percussive": program in PERCUSSIVE,
                               "reverb": reverb > 0},
                }
                jobs.append((split, note_str, program, pitch, velocity, reverb))
                note_id += 1
            inst_id += 1
    return examples, jobs


def make_demo(data_root: Path, size: str = "small", seed: int = 0, pitch_min: int = 21, pitch_max: int = 108) -> None:
    """Write ``data_root/nsynth/nsynth-{train,valid,test}`` with examples.json and audio/."""
    import pretty_midi

    from bench_tasks import render

    examples, jobs = plan(size, seed, pitch_min, pitch_max)
    base = Path(data_root) / "nsynth"
    for split in SPLIT_DIRS.values():
        (base / split / "audio").mkdir(parents=True, exist_ok=True)
    measured = run_jobs(_write_note, [(str(base / SPLIT_DIRS[s] / "audio" / f"{key}.wav"), *rest)
                                      for s, key, *rest in jobs])
    for (split, key, *_), meas in zip(jobs, measured):
        ex = examples[split][key]
        flags = {**meas, **ex.pop("_known")}
        ex["qualities"] = [int(flags.get(q, False)) for q in QUALITIES]
        ex["qualities_str"] = [q for q in QUALITIES if flags.get(q, False)]
    for split, folder in SPLIT_DIRS.items():
        (base / folder / "examples.json").write_text(json.dumps(examples[split], indent=4))
    render.write_metadata(base, render.metadata(
        "nsynth", size, seed, SAMPLE_RATE,
        {"instruments": {s: {examples[s][k]["instrument_str"]: f"GM program {prog} ({pretty_midi.program_to_instrument_name(prog)})"
                             for s2, k, prog, *_ in jobs if s2 == s} for s in examples},
         "note": "one GM program per instrument (0-based program numbers); instruments disjoint across splits"}))
