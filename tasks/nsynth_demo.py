"""Demo NSynth: synthetic notes written in the real NSynth json/wav layout.

Each demo instrument belongs to one of the 11 NSynth families and gets a timbre
recipe (harmonic amplitudes, inharmonicity, attack/decay envelope, vibrato,
noise, formants) with per-instrument random variation; velocity scales
loudness and brightness. Instruments are disjoint across splits, as in the real
dataset, so the pitch probe has to generalise to unseen timbres.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from bench_tasks.nsynth import FAMILIES, QUALITIES, SOURCES, SPLIT_DIRS

SAMPLE_RATE = 16000
DURATION = 4.0
VELOCITIES = [25, 50, 75, 100, 127]
# instruments per split and the share of the pitch range each instrument plays
SIZES = {
    "tiny": {"instruments": {"train": 3, "valid": 1, "test": 2}, "pitch_step": 7},
    "small": {"instruments": {"train": 6, "valid": 2, "test": 3}, "pitch_step": 2},
}


def _envelope(n: int, sr: int, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    t = np.arange(n) / sr
    env = np.minimum(t / max(attack, 1e-3), 1.0)
    env = env * (sustain + (1 - sustain) * np.exp(-t / max(decay, 1e-3)))
    off = 3.0  # NSynth notes are held for 3 s and released over the last second
    env = env * np.where(t < off, 1.0, np.exp(-(t - off) / max(release, 1e-3)))
    return env


def _recipe(family: str, rng: np.random.Generator) -> dict:
    k = np.arange(1, 25)
    r = {"inharm": 0.0, "vibrato": 0.0, "noise": 0.0, "attack": 0.01, "decay": 1.0, "sustain": 0.8,
         "release": 0.3, "formants": None, "detune": 0.0}
    if family == "bass":
        amps = k ** -2.0
        r.update(decay=0.6, sustain=0.3)
    elif family == "brass":
        amps = np.exp(-((k - rng.uniform(2, 5)) ** 2) / rng.uniform(8, 30))
        r.update(attack=0.06, sustain=0.9, vibrato=0.004)
    elif family == "flute":
        amps = k ** -3.0
        r.update(attack=0.08, sustain=0.95, noise=0.05, vibrato=0.006)
    elif family == "guitar":
        amps = np.abs(np.sin(np.pi * k * rng.uniform(0.1, 0.3))) / k
        r.update(decay=0.5, sustain=0.0, inharm=0.0002)
    elif family == "keyboard":
        amps = k ** -1.5
        r.update(decay=0.9, sustain=0.05, inharm=0.0004)
    elif family == "mallet":
        amps = k ** -1.0 * (k <= 6)
        r.update(decay=0.25, sustain=0.0, inharm=rng.uniform(0.02, 0.08))
    elif family == "organ":
        draw = rng.uniform(0, 1, size=24) * (rng.uniform(0, 1, size=24) < 0.4)
        amps = (k ** -0.7) * draw
        amps[0] = 1.0
        r.update(attack=0.02, sustain=1.0, decay=10.0)
    elif family == "reed":
        amps = (k % 2 == 1) * k ** -1.0 + (k % 2 == 0) * 0.1 * k ** -1.5
        r.update(attack=0.04, sustain=0.9)
    elif family == "string":
        amps = k ** -1.0
        r.update(attack=0.15, sustain=0.9, vibrato=0.008)
    elif family == "synth_lead":
        amps = k ** -1.0 if rng.uniform() < 0.5 else (k % 2 == 1) * k ** -1.0
        r.update(attack=0.005, sustain=0.8, detune=rng.uniform(0.002, 0.008))
    else:  # vocal
        amps = k ** -1.2
        r.update(attack=0.1, sustain=0.9, vibrato=0.01, formants=rng.choice([[700, 1200], [300, 2300], [500, 900]]))
    amps = amps * rng.uniform(0.7, 1.3, size=amps.shape)
    r["amps"] = amps / np.abs(amps).max()
    for key in ("decay", "release", "attack"):
        r[key] *= rng.uniform(0.7, 1.4)
    return r


def _note(recipe: dict, pitch: int, velocity: int, rng: np.random.Generator) -> np.ndarray:
    n = int(SAMPLE_RATE * DURATION)
    t = np.arange(n, dtype=np.float32) / SAMPLE_RATE
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    vib = 1 + recipe["vibrato"] * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t)
    phase0 = (2 * np.pi * np.cumsum(f0 * vib) / SAMPLE_RATE).astype(np.float32)
    bright = 0.5 + velocity / 127
    x = np.zeros(n, dtype=np.float32)
    for i, a in enumerate(recipe["amps"], start=1):
        fk = f0 * i * np.sqrt(1 + recipe["inharm"] * i * i)
        if a == 0 or fk >= SAMPLE_RATE / 2 * 0.95:
            continue
        gain = a * (i ** (-(1.2 - bright)))
        if recipe["formants"] is not None:
            gain *= sum(np.exp(-((fk - fc) ** 2) / (2 * 150.0**2)) for fc in recipe["formants"]) + 0.05
        ph = phase0 * np.float32(fk / f0) + np.float32(rng.uniform(0, 2 * np.pi))
        x += np.float32(gain) * np.sin(ph)
        if recipe["detune"]:
            x += np.float32(0.5 * gain) * np.sin(ph * np.float32(1 + recipe["detune"]))
    if recipe["noise"]:
        x += recipe["noise"] * rng.standard_normal(n, dtype=np.float32) * np.abs(x).max()
    x *= _envelope(n, SAMPLE_RATE, recipe["attack"], recipe["decay"], recipe["sustain"], recipe["release"])
    peak = np.abs(x).max() or 1.0
    x = x / peak * (0.1 + 0.8 * velocity / 127)
    x += 1e-3 * rng.standard_normal(n, dtype=np.float32)  # a recording's noise floor
    return np.clip(x, -1, 1).astype(np.float32)


def _write_note(job: tuple) -> None:
    import soundfile as sf

    path, recipe, pitch, velocity, seed = job
    sf.write(path, _note(recipe, pitch, velocity, np.random.default_rng(seed)), SAMPLE_RATE, subtype="PCM_16")


def make_demo(data_root: Path, size: str = "small", seed: int = 0, pitch_min: int = 21, pitch_max: int = 108) -> None:
    """Write ``data_root/nsynth/nsynth-{train,valid,test}`` with examples.json and audio/."""
    from concurrent.futures import ProcessPoolExecutor

    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; choose from {sorted(SIZES)}")
    conf = SIZES[size]
    rng = np.random.default_rng(seed)
    note_id = 0
    inst_id = 0
    jobs = []
    for split in ("train", "valid", "test"):
        folder = Path(data_root) / "nsynth" / SPLIT_DIRS[split]
        (folder / "audio").mkdir(parents=True, exist_ok=True)
        examples = {}
        for _ in range(conf["instruments"][split]):
            family_idx = int(rng.integers(len(FAMILIES)))
            family = FAMILIES[family_idx]
            source_idx = int(rng.integers(len(SOURCES)))
            instrument_str = f"{family}_{SOURCES[source_idx]}_{inst_id:03d}"
            recipe = _recipe(family, rng)
            # small: instruments cover different pitches; tiny: all share one grid so every test pitch is seen
            offset = int(rng.integers(conf["pitch_step"])) if size != "tiny" else 0
            for pitch in range(pitch_min + offset, pitch_max + 1, conf["pitch_step"]):
                velocity = int(rng.choice(VELOCITIES))
                note_str = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
                qualities = [int(q) for q in (rng.uniform(size=len(QUALITIES)) < 0.1)]
                examples[note_str] = {
                    "note": note_id,
                    "note_str": note_str,
                    "instrument": inst_id,
                    "instrument_str": instrument_str,
                    "pitch": pitch,
                    "velocity": velocity,
                    "sample_rate": SAMPLE_RATE,
                    "instrument_source": source_idx,
                    "instrument_source_str": SOURCES[source_idx],
                    "instrument_family": family_idx,
                    "instrument_family_str": family,
                    "qualities": qualities,
                    "qualities_str": [q for q, on in zip(QUALITIES, qualities) if on],
                }
                jobs.append((str(folder / "audio" / f"{note_str}.wav"), recipe, pitch, velocity,
                             int(rng.integers(2**31))))
                note_id += 1
            inst_id += 1
        (folder / "examples.json").write_text(json.dumps(examples, indent=4))
    workers = min(4, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 50:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_note, jobs, chunksize=16))
    else:
        for job in jobs:
            _write_note(job)
