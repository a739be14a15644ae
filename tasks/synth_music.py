"""Symbolic music whose labels are true by construction, rendered with recorded instrument samples.

The demo datasets of the key, genre and tagging tasks are written here as a
symbolic plan: a key and a chord progression, parts (chords, arpeggios, bass
lines, melodies, vocal-like lines, drones) each played by a General MIDI
program, and drum grooves on the GM drum kit (16-step patterns with swing).
:func:`render` turns a plan into MIDI and renders it with a SoundFont of
sampled instruments (:mod:`bench_tasks.render`: TimGM6mb by default), then
adds a noise floor and sets the loudness.

What a label says is what the plan put in: a key clip uses only its key's
scale (plus the leading tone in minor, as real music does) and leans on the
tonic; a genre clip follows its genre's recipe (tempo range, groove,
instrumentation, harmony, note density, swing); a tag clip is tagged with
what it contains. To keep the tasks learnable but not trivial every clip
draws its programs, tempo, register, loudness, noise level and texture at
random, and the genre recipes overlap (tempo ranges, shared instruments, a
part borrowed from another recipe now and then).

Every function takes a ``numpy.random.Generator``: the same seed gives the same
MIDI, and the synthesiser is deterministic, so the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PITCH_CLASSES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
KEY_NAMES = tuple(f"{p} major" for p in PITCH_CLASSES) + tuple(f"{p} minor" for p in PITCH_CLASSES)
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)  # natural minor; the dominant chord may raise its third
BLUES = (0, 3, 5, 6, 7, 10)

# Krumhansl-Kessler key profiles (probe-tone ratings), used by the tests to check
# that a rendered key clip's chroma points at its key.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


# --------------------------------------------------------------------------
# Instruments: General MIDI programs (0-based) per instrument name

PROGRAMS = {
    "piano": (0, 1, 2, 3, 4, 5),  # grand, bright, electric grand, honky-tonk, electric pianos
    "guitar": (24, 25, 26, 27),  # nylon, steel, jazz, clean
    "dist_guitar": (29, 30),  # overdriven, distortion
    "twang": (25, 105),  # steel-string guitar, banjo
    "strings": (48, 49, 40, 41, 42, 44),  # ensembles, violin, viola, cello, tremolo
    "fiddle": (110, 40),
    "synth": (80, 81, 84, 87, 62, 63),  # square, saw, charang, bass+lead, synth brass
    "pad": (88, 89, 90, 91, 92, 94, 95, 50),
    "organ": (16, 17, 18, 19),
    "flute": (73, 72, 74, 75),
    "sax": (64, 65, 66),
    "brass": (56, 57, 61),
    "harpsichord": (6,),
    "harp": (46,),
    "sitar": (104,),
    "vibes": (11, 12),
    "bass": (32, 33, 34, 35),
    "synth_bass": (38, 39),
    "female": (52, 53, 54),  # vocal-like programs (choir aahs, voice oohs, synth voice), high register
    "male": (52, 53, 54),  # the same programs, low register
}

# GM drum kit notes (channel 10) for the pattern letters; each clip draws one of the alternatives
DRUM_NOTES = {"K": (36, 35), "S": (38, 40, 39), "H": (42, 44), "R": (51, 59), "O": (46,)}
TABLA_NOTES = {"K": (64, 61), "S": (63, 60), "H": (62,), "R": (62,), "O": (63,)}  # congas and bongos
DRUM_PATTERNS = {  # 16 steps per bar; K kick, S snare, H closed hat, R ride, O open hat
    "straight": {"K": "x.......x.x.....", "S": "....x.......x...", "H": "x.x.x.x.x.x.x.x."},
    "four": {"K": "x...x...x...x...", "S": "....x.......x...", "H": "x.x.x.x.x.x.x.x.", "O": "..x...x...x...x."},
    "techno": {"K": "x...x...x...x...", "S": "........", "H": "xxxxxxxxxxxxxxxx"},
    "boombap": {"K": "x......x..x.....", "S": "....x.......x...", "H": "x.x.x.x.x.x.x.x."},
    "onedrop": {"K": "........x.......", "S": "........x.......", "H": "x.x.x.x.x.x.x.x."},
    "shuffle": {"K": "x.......x.......", "S": "....x.......x...", "H": "x.x.x.x.x.x.x.x."},
    "jazz": {"K": "x...............", "S": "..........x.....", "R": "x...x.x.x...x.x."},
    "metal": {"K": "xxxxxxxxxxxxxxxx", "S": "....x.......x...", "H": "x.x.x.x.x.x.x.x."},
    "train": {"K": "x.......x.......", "S": "..x...x...x...x.", "H": "xxxxxxxxxxxxxxxx"},
    "half": {"K": "x.........x.....", "S": "........x.......", "H": "x.x.x.x.x.x.x.x."},
    "tabla": {"K": "x..x..x...x.x...", "S": "......x.......x.", "H": "..x...x...x...x."},
}
DRUM_VELOCITY = {"K": 110, "S": 100, "H": 70, "R": 75, "O": 75}


def pick_program(rng: np.random.Generator, name: str) -> int:
    """A GM program for an instrument name (one of its alternatives, drawn per clip)."""
    progs = PROGRAMS[name]
    return int(progs[int(rng.integers(len(progs)))])


class Part:
    """Collects the notes of one part into a ``pretty_midi.Instrument`` (velocity 0..1 in, MIDI out)."""

    def __init__(self, program: int, gain: float = 1.0) -> None:
        import pretty_midi

        self.inst = pretty_midi.Instrument(program=int(program))
        self.gain = gain
        self._note = pretty_midi.Note

    def note(self, midi: float, start: float, dur: float, vel: float = 0.8) -> None:
        m = int(round(midi))
        if not 0 <= m <= 127 or dur <= 0:
            return
        v = int(np.clip(round(127 * vel * min(self.gain, 1.25) / 1.25), 1, 127))
        self.inst.notes.append(self._note(velocity=v, pitch=m, start=float(start), end=float(start + dur)))

# --------------------------------------------------------------------------
# Harmony


def scale_of(mode: str) -> tuple:
    return MAJOR if mode == "major" else MINOR


def diatonic_chord(scale: tuple, degree: int, seventh: bool = False, raise_third: bool = False) -> list[int]:
    """Pitch classes (relative to the tonic) of the chord on a scale degree, root first."""
    idx = [degree, degree + 2, degree + 4] + ([degree + 6] if seventh else [])
    pcs = [scale[i % 7] for i in idx]
    if raise_third:  # harmonic-minor dominant: the leading tone
        pcs[1] = (pcs[0] + 4) % 12
    return pcs


PROGRESSIONS = {
    "major": [[0, 3, 4, 0], [0, 5, 3, 4], [0, 4, 5, 3], [1, 4, 0, 0], [0, 3, 0, 4], [0, 2, 3, 4], [0, 0, 3, 4]],
    "minor": [[0, 3, 4, 0], [0, 5, 2, 6], [0, 3, 6, 2], [0, 5, 3, 4], [0, 6, 5, 4], [0, 3, 0, 4], [0, 0, 5, 6]],
}


def progression(rng: np.random.Generator, mode: str, bars: int, sevenths: bool = False) -> list[list[int]]:
    scale = scale_of(mode)
    pat = PROGRESSIONS[mode][rng.integers(len(PROGRESSIONS[mode]))]
    out = []
    for b in range(bars):
        d = pat[b % len(pat)]
        raise3 = mode == "minor" and d == 4 and rng.random() < 0.6
        out.append(diatonic_chord(scale, d, sevenths, raise3))
    return out


def blues_progression(bars: int, start: int = 0) -> list[list[int]]:
    twelve = [0, 5, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7]
    return [[r, (r + 4) % 12, (r + 7) % 12, (r + 10) % 12] for r in (twelve[(start + b) % 12] for b in range(bars))]


def voice(pcs, tonic: int, lo: int, hi: int) -> list[int]:
    """Place pitch classes (relative to ``tonic``) as MIDI notes inside [lo, hi]."""
    out = []
    for pc in pcs:
        m = lo + ((tonic + pc - lo) % 12)
        out.append(m if m <= hi else m - 12)
    return sorted(out)


# --------------------------------------------------------------------------
# Arrangement


@dataclass
class Plan:
    """What one clip contains: everything a label can be derived from."""

    tonic: int
    mode: str
    tempo: float
    chords: list  # per bar, pitch classes relative to the tonic, root first
    melody_scale: tuple
    parts: list  # dicts: role, inst (instrument name), program (GM), gain, style...
    drums: str | None = None
    swing: float = 0.0
    tabla: bool = False
    distortion: float = 0.0  # drive of a soft clipper on the mix (0: none)
    noise_db: float = -30.0  # noise level relative to the mix RMS
    loudness_db: float = -18.0  # target RMS (dBFS)
    reverb: float = 0.0  # the synthesiser's reverb send (0..1)
    drum_gain: float = 1.0
    start_tonic: bool = True


def _step_time(step: int, tempo: float, swing: float) -> float:
    beat = 60.0 / tempo
    b, pos = divmod(step, 4)
    frac = (0.0, 0.25, 0.5, 0.75)[pos]
    if swing and pos == 2:
        frac = 0.5 + swing * (2.0 / 3.0 - 0.5)
    elif swing and pos in (1, 3):
        frac += swing * 0.08
    return (b + frac) * beat


def _melody(rng, plan: Plan, part: dict, bars: int, out: Part) -> None:
    default = {"female": (60, 79), "male": (45, 64)}.get(part["inst"], (62, 81))
    lo, hi = part.get("register", default)
    cands = [m for m in range(lo, hi + 1) if (m - plan.tonic) % 12 in plan.melody_scale]
    tonic_idx = [i for i, m in enumerate(cands) if (m - plan.tonic) % 12 == 0]
    i = int(rng.choice(tonic_idx)) if plan.start_tonic else int(rng.integers(len(cands)))
    density = part.get("density", 0.6)
    step = 0
    total = bars * 16
    beat = 60.0 / plan.tempo
    while step < total:
        dur_steps = int(rng.choice([1, 2, 2, 4, 4, 6, 8]) if density < 0.8 else rng.choice([1, 1, 2, 2, 4]))
        if rng.random() < density:
            chord = plan.chords[min(step // 16, len(plan.chords) - 1)]
            if step % 4 == 0 and rng.random() < 0.6:  # strong beats lean on chord tones
                near = [j for j, m in enumerate(cands) if (m - plan.tonic) % 12 in chord]
                i = min(near, key=lambda j: abs(j - i) + rng.random())
            m = cands[i]
            if rng.random() < part.get("chromatic", 0.05):  # passing note outside the scale
                m += int(rng.choice([-1, 1]))
            out.note(m, _step_time(step, plan.tempo, plan.swing), dur_steps * beat / 4 * rng.uniform(0.7, 1.0),
                     vel=rng.uniform(0.6, 1.0))
        step += dur_steps
        i = int(np.clip(i + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 0, len(cands) - 1))
        if step % 64 == 0 and tonic_idx and rng.random() < 0.5:  # phrase ends home
            i = min(tonic_idx, key=lambda j: abs(j - i))


def _chord_part(rng, plan: Plan, part: dict, bars: int, out: Part) -> None:
    style = part["style"]
    lo, hi = part.get("register", (52, 72))
    beat = 60.0 / plan.tempo
    st = lambda s: _step_time(s, plan.tempo, plan.swing)  # noqa: E731
    for b, pcs in enumerate(plan.chords[:bars]):
        notes = voice(pcs, plan.tonic, lo, hi)
        s0 = b * 16
        if style == "pad":
            for m in notes:
                out.note(m, st(s0), 4 * beat * 0.98, vel=0.55)
        elif style == "half":
            for h in (0, 8):
                for m in notes:
                    out.note(m, st(s0 + h), 2 * beat * 0.95, vel=0.6)
        elif style in ("arp8", "arp16"):
            k = 2 if style == "arp8" else 1
            seq = notes + notes[-2:0:-1] if rng.random() < 0.5 else notes + [n + 12 for n in notes]
            for j, s in enumerate(range(0, 16, k)):
                out.note(seq[j % len(seq)], st(s0 + s), k * beat / 4 * 1.5, vel=rng.uniform(0.5, 0.7))
        elif style == "strum":
            for s in (0, 4, 8, 12):
                for j, m in enumerate(notes):
                    out.note(m, st(s0 + s) + 0.012 * j, beat * 0.9, vel=rng.uniform(0.5, 0.7))
        elif style == "skank":  # reggae: short chords on the off-beats
            for s in (2, 6, 10, 14):
                for m in notes:
                    out.note(m, st(s0 + s), beat * 0.22, vel=0.7)
        elif style == "power":  # root, fifth, octave in eighths
            root = voice([pcs[0]], plan.tonic, lo - 12, hi - 12)[0]
            for s in range(0, 16, 2):
                for m in (root, root + 7, root + 12):
                    out.note(m, st(s0 + s), beat * 0.45, vel=0.7)
        elif style == "choir":
            for m in notes:
                out.note(m + 12 * (m < 55), st(s0), 4 * beat * 0.95, vel=0.5)
        else:
            raise ValueError(style)


def _bass(rng, plan: Plan, part: dict, bars: int, out: Part) -> None:
    style = part["style"]
    beat = 60.0 / plan.tempo
    st = lambda s: _step_time(s, plan.tempo, plan.swing)  # noqa: E731
    scale = scale_of(plan.mode)
    for b, pcs in enumerate(plan.chords[:bars]):
        root = voice([pcs[0]], plan.tonic, 33, 45)[0]
        fifth = root + 7
        s0 = b * 16
        if style == "whole":
            out.note(root, st(s0), 4 * beat * 0.95)
        elif style == "quarters":
            for s in (0, 4, 8, 12):
                out.note(root, st(s0 + s), beat * 0.8)
        elif style == "eighths":
            for s in range(0, 16, 2):
                out.note(root, st(s0 + s), beat * 0.4, vel=0.8)
        elif style == "octaves":
            for j, s in enumerate(range(0, 16, 2)):
                out.note(root + 12 * (j % 2), st(s0 + s), beat * 0.4, vel=0.8)
        elif style == "rootfifth":
            for j, s in enumerate((0, 4, 8, 12)):
                out.note(root if j % 2 == 0 else fifth - 12 * (fifth > 45), st(s0 + s), beat * 0.7)
        elif style == "walking":
            nxt = plan.chords[(b + 1) % len(plan.chords)][0]
            m = root
            for j, s in enumerate((0, 4, 8, 12)):
                out.note(m, st(s0 + s), beat * 0.9, vel=0.9)
                if j == 2:  # chromatic approach to the next root
                    target = voice([nxt], plan.tonic, 33, 45)[0]
                    m = target + int(rng.choice([-1, 1]))
                else:
                    deg = [p for p in range(33, 48) if (p - plan.tonic) % 12 in scale]
                    m = min(deg, key=lambda p: abs(p - (m + int(rng.choice([-3, -2, 2, 3])))))
        elif style == "sparse":
            out.note(root, st(s0), beat * 1.5)
            out.note(root, st(s0 + 10), beat * 1.0, vel=0.8)
        elif style == "riff":
            third = voice([pcs[1]], plan.tonic, 33, 47)[0]
            for s, m in zip((0, 3, 6, 8, 11, 14), (root, root, third, fifth, third, root)):
                out.note(m, st(s0 + s), beat * 0.6)
        else:
            raise ValueError(style)


def _drone(rng, plan: Plan, part: dict, bars: int, out: Part) -> None:
    beat = 60.0 / plan.tempo
    root = 48 + (plan.tonic % 12)
    for m in (root, root + 7):
        out.note(m, 0.0, bars * 4 * beat, vel=0.45)


def _rap(rng, plan: Plan, part: dict, bars: int, out: Part) -> None:
    """Rhythmic, speech-like syllables on a vocal program: a narrow pitch range around the tonic."""
    base = 48 + (plan.tonic % 12) if part["inst"] == "male" else 57 + (plan.tonic % 12)
    for s in range(bars * 16):
        if rng.random() < 0.55:
            out.note(base + int(rng.integers(-2, 3)), _step_time(s, plan.tempo, plan.swing),
                     60.0 / plan.tempo * 0.2, vel=rng.uniform(0.6, 0.95))


ROLES = {"melody": _melody, "chords": _chord_part, "bass": _bass, "drone": _drone, "rap": _rap}


def _onepole(x: np.ndarray, a: float) -> np.ndarray:
    """A cheap low-pass (y[n] = (1-a) x[n] + a y[n-1]) as a convolution with a truncated kernel."""
    k = (1 - a) * a ** np.arange(int(np.log(1e-3) / np.log(a)) + 1)
    return np.convolve(x, k.astype(np.float32))[: len(x)]


def to_midi(plan: Plan, rng: np.random.Generator, bars: int):
    """The plan as a ``pretty_midi.PrettyMIDI``: one GM program per part, the drums on the GM kit."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(plan.tempo))
    reverb = int(np.clip(round(127 * plan.reverb), 0, 127))
    for part in plan.parts:
        out = Part(part["program"], part.get("gain", 1.0))
        ROLES[part["role"]](rng, plan, part, bars, out)
        cc = pretty_midi.ControlChange
        # channel volume from the part's gain; reverb send; a pan position per part
        out.inst.control_changes += [cc(7, int(np.clip(round(95 * part.get("gain", 1.0)), 20, 127)), 0.0),
                                     cc(91, reverb, 0.0), cc(10, int(rng.integers(34, 95)), 0.0)]
        pm.instruments.append(out.inst)
    if plan.drums:
        table = TABLA_NOTES if plan.tabla else DRUM_NOTES
        notes = {k: int(v[int(rng.integers(len(v)))]) for k, v in table.items()}
        kit = pretty_midi.Instrument(program=0, is_drum=True)
        for b in range(bars):
            for name, steps in DRUM_PATTERNS[plan.drums].items():
                for s, c in enumerate(steps):
                    if c == "x":
                        t = _step_time(b * 16 + s, plan.tempo, plan.swing)
                        v = int(np.clip(DRUM_VELOCITY[name] * rng.uniform(0.75, 1.0), 1, 127))
                        kit.notes.append(pretty_midi.Note(velocity=v, pitch=notes[name], start=t, end=t + 0.1))
        kit.control_changes.append(pretty_midi.ControlChange(7, int(np.clip(round(90 * plan.drum_gain), 10, 127)), 0.0))
        pm.instruments.append(kit)
    return pm


def render(plan: Plan, rng: np.random.Generator, dur: float, sr: int) -> np.ndarray:
    """Render a plan to ``dur`` seconds of mono float32 audio at ``sr`` Hz (SoundFont, noise, loudness)."""
    from bench_tasks.render import render_midi

    bar = 4 * 60.0 / plan.tempo
    bars = int(np.ceil(dur / bar)) + 1
    while len(plan.chords) < bars:
        plan.chords = plan.chords + plan.chords
    # the clip starts at a random point of the first bar, as a cut from a longer track
    offset = rng.uniform(0, bar) if rng.random() < 0.5 else 0.0
    n = int(round(dur * sr))
    x = render_midi(to_midi(plan, rng, bars), sr, dur + offset)
    mix = x[int(offset * sr) : int(offset * sr) + n]
    if len(mix) < n:
        mix = np.pad(mix, (0, n - len(mix)))
    if plan.distortion > 0:  # a soft clipper on the mix: harsher and denser, as a loud master
        drive = 1.0 + 8.0 * plan.distortion
        mix = np.tanh(drive * mix / (np.abs(mix).max() + 1e-9)).astype(np.float32)
    rms = np.sqrt(np.mean(mix**2)) + 1e-9
    noise = rng.standard_normal(len(mix)).astype(np.float32)
    if rng.random() < 0.5:  # pinkish noise half the time
        noise = _onepole(noise, 0.95)
        noise /= np.sqrt(np.mean(noise**2)) + 1e-9
    mix = mix + rms * 10 ** (plan.noise_db / 20) * noise
    mix *= 10 ** (plan.loudness_db / 20) / (np.sqrt(np.mean(mix**2)) + 1e-9)
    peak = np.abs(mix).max()
    if peak > 0.98:  # soft limiter rather than hard clipping
        mix = 0.98 * np.tanh(mix / 0.98)
    return mix.astype(np.float32)


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
