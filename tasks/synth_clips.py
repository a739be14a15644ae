"""The clips of each demo task, written as plans for :mod:`bench_tasks.synth_music` to render.

One recipe per task: key clips (GiantSteps: a key's scale and chords, varied texture), genre clips
(GTZAN: a recipe per genre, overlapping in tempo and instruments) and tagged clips (MagnaTagATune:
archetypes whose tags say what the plan put in). The engine they share (harmony, instruments,
arrangement, MIDI and rendering) is synth_music; every function takes a ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np

from bench_tasks.synth_music import (
    BLUES,
    GENRES,
    Plan,
    blues_progression,
    diatonic_chord,
    pick_program,
    progression,
    render,
    scale_of,
)


# --------------------------------------------------------------------------
# Key clips (GiantSteps)


def key_plan(rng: np.random.Generator, key_index: int) -> Plan:
    """A clip in ``KEY_NAMES[key_index]``: chords, melody and bass in that key, varied texture."""
    tonic, mode = key_index % 12, ("major" if key_index < 12 else "minor")
    tempo = rng.uniform(75, 150)
    chords = progression(rng, mode, 8, sevenths=rng.random() < 0.25)
    parts = [
        {"role": "chords", "inst": rng.choice(["piano", "pad", "organ", "strings", "guitar", "synth", "harp",
                                                "brass"]),
         "style": rng.choice(["pad", "half", "arp8", "arp16", "strum", "skank"]),
         "register": (int(rng.integers(48, 56)), int(rng.integers(66, 74))), "gain": rng.uniform(0.6, 1.0)},
        {"role": "bass", "inst": rng.choice(["bass", "synth_bass"]),
         "style": rng.choice(["whole", "quarters", "eighths", "octaves", "rootfifth", "riff"]),
         "gain": rng.uniform(0.5, 0.9)},
    ]
    if rng.random() < 0.8:
        parts.append({"role": "melody", "inst": rng.choice(["flute", "synth", "piano", "sax", "strings", "guitar",
                                                            "female", "male", "vibes"]),
                      "density": rng.uniform(0.4, 0.9), "chromatic": 0.06,
                      "register": (int(rng.integers(58, 66)), int(rng.integers(76, 84))),
                      "gain": rng.uniform(0.6, 1.1)})
    _assign_programs(rng, parts)
    return Plan(tonic=tonic, mode=mode, tempo=tempo, chords=chords, melody_scale=scale_of(mode), parts=parts,
                drums=rng.choice(["straight", "four", "techno", "boombap", "half"]) if rng.random() < 0.65 else None,
                drum_gain=rng.uniform(0.4, 1.2), noise_db=rng.uniform(-35, -12), loudness_db=rng.uniform(-24, -12),
                reverb=rng.uniform(0.2, 0.6) if rng.random() < 0.4 else 0.1, start_tonic=rng.random() < 0.7)


def key_clip(rng: np.random.Generator, key_index: int, dur: float, sr: int) -> np.ndarray:
    return render(key_plan(rng, key_index), rng, dur, sr)


# --------------------------------------------------------------------------
# Genre clips (GTZAN)

GENRE_RECIPES = {
    # tempo range, modes, drums, chord styles and instruments, bass styles, melody instruments, extras
    "blues": dict(tempo=(65, 115), modes=["major"], drums=["shuffle"], swing=(0.6, 1.0), harmony="blues",
                  chords=[("guitar", "strum"), ("piano", "half"), ("organ", "pad")], bass=["walking", "quarters"],
                  melody=["guitar", "sax", "male"], scale=BLUES),
    "classical": dict(tempo=(55, 130), modes=["major", "minor"], drums=[None], swing=(0, 0), harmony="diatonic",
                      chords=[("strings", "pad"), ("piano", "arp16"), ("harpsichord", "arp8"), ("harp", "arp8")],
                      bass=["whole"], bass_inst=["strings", "bass"], melody=["flute", "strings", "piano"],
                      reverb=(0.3, 0.7), loud=(-28, -18)),
    "country": dict(tempo=(90, 145), modes=["major"], drums=["train", "straight"], swing=(0, 0.2), harmony="diatonic",
                    chords=[("guitar", "strum"), ("twang", "arp8"), ("piano", "strum")], bass=["rootfifth"],
                    melody=["fiddle", "twang", "male", "female"]),
    "disco": dict(tempo=(108, 132), modes=["minor", "major"], drums=["four"], swing=(0, 0), harmony="diatonic7",
                  chords=[("strings", "pad"), ("guitar", "skank"), ("synth", "strum"), ("piano", "strum")],
                  bass=["octaves"], melody=["female", "strings", "synth"]),
    "hiphop": dict(tempo=(78, 102), modes=["minor"], drums=["boombap"], swing=(0, 0.4), harmony="loop",
                   chords=[("piano", "half"), ("pad", "pad"), ("synth", "half")], bass=["sparse"],
                   bass_inst=["synth_bass"], melody=[], rap=True, drum_gain=(1.2, 2.0)),
    "jazz": dict(tempo=(90, 200), modes=["major", "minor"], drums=["jazz"], swing=(0.7, 1.0), harmony="jazz",
                 chords=[("piano", "half"), ("piano", "strum"), ("guitar", "half")], bass=["walking"],
                 bass_inst=["bass"], melody=["sax", "piano", "female", "vibes", "brass"], chromatic=0.15,
                 drum_gain=(0.3, 0.8)),
    "metal": dict(tempo=(120, 200), modes=["minor"], drums=["metal", "straight"], swing=(0, 0), harmony="power",
                  chords=[("dist_guitar", "power")], bass=["eighths"], melody=["dist_guitar", "male"],
                  distortion=(0.5, 0.8), loud=(-14, -9)),
    "pop": dict(tempo=(92, 128), modes=["major", "major", "minor"], drums=["straight", "half", "four"], swing=(0, 0),
                harmony="pop", chords=[("synth", "strum"), ("piano", "strum"), ("pad", "pad"), ("guitar", "strum")],
                bass=["quarters", "eighths"], melody=["female", "male", "synth"]),
    "reggae": dict(tempo=(62, 92), modes=["major", "minor"], drums=["onedrop"], swing=(0, 0.3), harmony="loop",
                   chords=[("organ", "skank"), ("guitar", "skank")], bass=["riff"], melody=["male", "female", "organ"]),
    "rock": dict(tempo=(98, 152), modes=["major", "minor"], drums=["straight"], swing=(0, 0), harmony="rock",
                 chords=[("dist_guitar", "power"), ("dist_guitar", "strum"), ("guitar", "strum")],
                 bass=["eighths", "quarters"], melody=["male", "dist_guitar", "female"], distortion=(0.1, 0.4),
                 loud=(-16, -10)),
}


def _genre_chords(rng, harmony: str, mode: str) -> list:
    if harmony == "blues":
        return blues_progression(12, int(rng.integers(0, 12)))
    if harmony == "diatonic7" or harmony == "jazz":
        if harmony == "jazz" and rng.random() < 0.6:
            scale = scale_of(mode)
            return [diatonic_chord(scale, d, True) for d in (1, 4, 0, 0)]
        return progression(rng, mode, 4, sevenths=True)
    if harmony == "loop":
        scale = scale_of(mode)
        d2 = int(rng.choice([3, 5, 6]))
        return [diatonic_chord(scale, d, rng.random() < 0.3) for d in (0, 0, d2, d2)]
    if harmony == "pop":
        scale = scale_of(mode)
        pat = [[0, 4, 5, 3], [5, 3, 0, 4], [0, 5, 3, 4]][rng.integers(3)]
        return [diatonic_chord(scale, d) for d in pat]
    if harmony in ("power", "rock"):
        roots = [[0, 10, 5, 0], [0, 5, 7, 5], [0, 8, 10, 0], [0, 3, 5, 3]][rng.integers(4)]
        if harmony == "power" and rng.random() < 0.5:
            roots = [0, 1, 0, 3]  # phrygian
        return [[r, (r + 3 + (mode == "major")) % 12, (r + 7) % 12] for r in roots]
    return progression(rng, mode, 4)


def genre_plan(rng: np.random.Generator, genre: str) -> Plan:
    """A clip following ``genre``'s recipe, with one part borrowed from another genre now and then."""
    rec = GENRE_RECIPES[genre]

    def pick(field_name, default=None):
        # overlap between recipes: 15% of the time a field comes from another genre
        src = rec
        if rng.random() < 0.15:
            other = GENRE_RECIPES[GENRES[rng.integers(len(GENRES))]]
            if field_name in other:
                src = other
        v = src.get(field_name, default)
        return v

    mode = str(rng.choice(rec["modes"]))
    tempo = rng.uniform(*pick("tempo")) * rng.uniform(0.93, 1.07)
    chord_opts = pick("chords")
    chords_inst, chords_style = chord_opts[rng.integers(len(chord_opts))]
    parts = [{"role": "chords", "inst": chords_inst, "style": chords_style, "gain": rng.uniform(0.7, 1.0)}]
    bass_styles = pick("bass")
    parts.append({"role": "bass", "inst": str(rng.choice(rec.get("bass_inst", ["bass", "synth_bass"]))),
                  "style": str(rng.choice(bass_styles)), "gain": rng.uniform(0.5, 0.9)})
    mel = pick("melody", [])
    if mel and rng.random() < 0.85:
        parts.append({"role": "melody", "inst": str(rng.choice(mel)), "density": rng.uniform(0.4, 0.9),
                      "chromatic": rec.get("chromatic", 0.05), "gain": rng.uniform(0.6, 1.1)})
    if rec.get("rap"):
        parts.append({"role": "rap", "inst": str(rng.choice(["male", "male", "female"])), "gain": rng.uniform(0.7, 1.2)})
    drums = pick("drums")
    drums = drums[rng.integers(len(drums))]
    scale = rec.get("scale") or scale_of(mode)
    _assign_programs(rng, parts)
    return Plan(
        tonic=int(rng.integers(12)), mode=mode, tempo=float(tempo), chords=_genre_chords(rng, rec["harmony"], mode),
        melody_scale=scale, parts=parts, drums=drums, swing=rng.uniform(*rec["swing"]),
        distortion=rng.uniform(*rec.get("distortion", (0.0, 0.0))), noise_db=rng.uniform(-35, -14),
        loudness_db=rng.uniform(*rec.get("loud", (-22, -12))),
        reverb=rng.uniform(*rec.get("reverb", (0.0, 0.3))) if rng.random() < 0.6 else 0.1,
        drum_gain=rng.uniform(*rec.get("drum_gain", (0.6, 1.3))),
    )


def genre_clip(rng: np.random.Generator, genre: str, dur: float, sr: int) -> np.ndarray:
    return render(genre_plan(rng, genre), rng, dur, sr)


# --------------------------------------------------------------------------
# Tagged clips (MagnaTagATune)

#: archetypes: chord/texture instrument choices, melody instruments, drums, tempo, vocal probability
TAG_STYLES = {
    "classical": dict(chords=[("strings", "pad"), ("piano", "arp16"), ("harpsichord", "arp8"), ("harp", "arp8")],
                      melody=["strings", "flute", "piano", "harpsichord"], drums=0.0, tempo=(55, 140), vocal=0.1,
                      loud=(-30, -18)),
    "rock": dict(chords=[("dist_guitar", "power"), ("guitar", "strum")], melody=["dist_guitar", "guitar"],
                 drums=1.0, tempo=(95, 170), vocal=0.6, loud=(-15, -9)),
    "electronic": dict(chords=[("synth", "arp16"), ("pad", "pad"), ("synth", "skank")], melody=["synth"],
                       drums=0.95, tempo=(115, 145), vocal=0.2, patterns=["four", "techno"], loud=(-16, -10)),
    "ambient": dict(chords=[("pad", "pad"), ("synth", "pad")], melody=["synth", "flute", "piano"], drums=0.1,
                    tempo=(55, 85), vocal=0.05, loud=(-32, -20)),
    "pop": dict(chords=[("piano", "strum"), ("synth", "strum"), ("guitar", "strum")], melody=["synth", "piano"],
                drums=0.9, tempo=(90, 130), vocal=0.85, loud=(-18, -11)),
    "indian": dict(chords=[("sitar", "arp8")], melody=["sitar", "flute"], drums=0.6, tempo=(70, 130), vocal=0.3,
                   patterns=["tabla"], drone=True, loud=(-24, -14)),
    "opera": dict(chords=[("strings", "pad"), ("piano", "half")], melody=[], drums=0.0, tempo=(60, 110),
                  vocal=1.0, loud=(-24, -14)),
    "choir": dict(chords=[("strings", "pad")], melody=[], drums=0.0, tempo=(55, 95), vocal=0.0, choir=True,
                  loud=(-28, -16)),
    "country": dict(chords=[("guitar", "strum"), ("twang", "arp8")], melody=["strings", "twang"], drums=0.7,
                    tempo=(90, 140), vocal=0.6, patterns=["train"], loud=(-20, -12)),
    "metal": dict(chords=[("dist_guitar", "power")], melody=["dist_guitar"], drums=1.0, tempo=(140, 200), vocal=0.5,
                  patterns=["metal"], loud=(-13, -8)),
    "solo": dict(chords=[("piano", "arp8"), ("guitar", "arp8"), ("harp", "arp8"), ("harpsichord", "arp16")],
                 melody=[], drums=0.0, tempo=(60, 130), vocal=0.0, loud=(-28, -16)),
    "newage": dict(chords=[("pad", "pad"), ("harp", "arp8"), ("piano", "arp8")], melody=["flute"], drums=0.1,
                   tempo=(60, 95), vocal=0.1, loud=(-28, -18)),
}
TAG_STYLE_WEIGHTS = {"classical": 3, "rock": 2, "electronic": 2, "ambient": 1.2, "pop": 1.5, "indian": 0.7,
                     "opera": 0.8, "choir": 0.6, "country": 0.8, "metal": 0.7, "solo": 1.2, "newage": 0.8}


def _assign_programs(rng: np.random.Generator, parts: list) -> None:
    """Give every part a GM program for its instrument name (drawn per clip)."""
    for part in parts:
        part["program"] = pick_program(rng, part["inst"])


def tag_plan(rng: np.random.Generator, style: str) -> tuple[Plan, dict]:
    """A clip of a tag archetype plus the facts (``content``) its tags are derived from."""
    rec = TAG_STYLES[style]
    mode = "major" if rng.random() < 0.55 else "minor"
    tempo = rng.uniform(*rec["tempo"])
    c_inst, c_style = rec["chords"][rng.integers(len(rec["chords"]))]
    parts = [{"role": "chords", "inst": c_inst, "style": c_style, "gain": rng.uniform(0.7, 1.0)}]
    content = {"style": style, "instruments": {c_inst}, "mode": mode, "tempo": tempo}
    if rng.random() < (0.3 if style in ("classical", "ambient", "solo", "opera", "choir", "newage") else 0.9):
        b = "bass" if rng.random() < 0.6 else "synth_bass"
        parts.append({"role": "bass", "inst": b, "style": str(rng.choice(["whole", "quarters", "eighths", "riff"])),
                      "gain": rng.uniform(0.4, 0.8)})
        content["instruments"].add("bass")
    vocal = None
    if rng.random() < rec["vocal"]:
        vocal = "female" if rng.random() < 0.5 else "male"
        parts.append({"role": "melody", "inst": vocal, "density": rng.uniform(0.5, 0.9),
                      "register": (57, 74) if vocal == "female" else (45, 62), "gain": rng.uniform(0.8, 1.3)})
    elif rec["melody"] and rng.random() < 0.8:
        m = str(rng.choice(rec["melody"]))
        parts.append({"role": "melody", "inst": m, "density": rng.uniform(0.4, 0.9), "gain": rng.uniform(0.6, 1.1)})
        content["instruments"].add(m)
    if rec.get("choir"):
        parts.append({"role": "chords", "inst": "female", "style": "choir", "gain": 1.0})
        parts.append({"role": "chords", "inst": "male", "style": "choir", "gain": 0.8})
        content["choir"] = True
    if rec.get("drone"):
        parts.append({"role": "drone", "inst": "sitar", "gain": 0.5})
    _assign_programs(rng, parts)
    content["vocal"] = vocal
    drums = None
    if rng.random() < rec["drums"]:
        drums = str(rng.choice(rec.get("patterns", ["straight", "half", "four", "boombap"])))
    content["drums"] = drums
    loud = rng.uniform(*rec["loud"])
    content["loudness_db"] = loud
    plan = Plan(tonic=int(rng.integers(12)), mode=mode, tempo=float(tempo), chords=progression(rng, mode, 4),
                melody_scale=scale_of(mode), parts=parts, drums=drums, tabla=style == "indian",
                distortion={"metal": 0.6, "rock": 0.3}.get(style, 0.0), noise_db=rng.uniform(-35, -15),
                loudness_db=loud,
                reverb=rng.uniform(0.2, 0.6) if style in ("classical", "ambient", "opera", "choir", "newage") else 0.0,
                drum_gain=rng.uniform(0.6, 1.3))
    return plan, content
