"""Symbolic music whose labels are true by construction, rendered with recorded instrument samples.

The demo datasets of the key, genre and tagging tasks are written as a
symbolic plan (each task's recipe: :mod:`bench_tasks.synth_clips`): a key and a chord progression, parts (chords, arpeggios, bass
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
