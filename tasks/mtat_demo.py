"""Demo MagnaTagATune: clips in the real layout, tagged with what they contain.

The clips are arrangements on General MIDI programs (vocal-like ones for the
voice tags) and the GM drum kit, rendered from a SoundFont's recorded samples
(:mod:`bench_tasks.synth_clips`, :mod:`bench_tasks.synth_music`, :mod:`bench_tasks.render`).

Writes ``magnatagatune/annotations_final.csv`` (tab-separated, 188 tag columns
in a shuffled order, some rows fully double-quoted and some not, as both
occur in copies of the file) and 16 kHz mono MP3 clips in the folders
``0``..``f``. Clips come in albums of one to three clips that share a folder
and an archetype (classical, rock, electronic, ...). A clip's tags are derived
from its plan (instruments, drums, tempo, loudness, voices) with
annotator-like recall (a true tag is often left out, as in the real data);
tags outside the real top 50 are rare, and a few clips carry only rare tags
so the "no top-50 tag" rule has something to drop. Two clips are written as
corrupt MP3s (one empty, one garbage) that the extract stage must skip.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from bench_tasks._common import run_jobs, write_audio, write_corrupt

SAMPLE_RATE = 16000

#: clips, seconds per clip; tune here
SIZES = {
    "tiny": {"clips": 90, "seconds": 3.0},
    "small": {"clips": 320, "seconds": 3.5},
    "medium": {"clips": 1400, "seconds": 5.0},
}

# the real MTAT top 50, most frequent first
TOP50 = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
    "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop",
    "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
    "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
]
RARE = [
    "no beat", "no piano", "no strings", "no guitar", "no drums", "no singing", "no flute", "no violin",
    "electro", "trance", "house", "jazz", "blues", "funk", "funky", "reggae", "rap", "hip hop", "world", "folk",
    "irish", "celtic", "spanish", "eastern", "oriental", "arabic", "middle eastern", "medieval", "baroque",
    "renaissance", "modern", "orchestra", "orchestral", "symphonic", "chamber", "string", "bass", "drum",
    "percussion", "bongos", "tabla", "drone", "organ", "keyboard", "synthesizer", "horns", "trumpet", "sax",
    "clarinet", "oboe", "viola", "acoustic", "acoustic guitar", "electric guitar", "classical guitar", "banjo",
    "lute", "fiddle", "bells", "chimes", "water", "wind", "birds", "noise", "industrial", "hard rock", "heavy",
    "heavy metal", "punk", "grunge", "alternative", "indie", "new wave", "disco", "soul", "gospel", "chant",
    "chanting", "monks", "male singer", "female singer", "female singing", "male singing", "women", "men",
    "low", "high", "deep", "dark", "happy", "sad", "calm", "upbeat", "mellow", "light", "airy", "spacey",
    "space", "echo", "repetitive", "quick", "fast beat", "slow beat", "heavy beat", "soft rock", "loud rock",
    "softer", "foreign", "foreign language", "english", "talking", "spoken", "whispering", "humming", "duet",
    "instrumental", "electric", "electronica", "experimental", "sitar drone", "piano solo", "guitar solo",
    "violins", "cellos", "string quartet", "operatic", "opera singer", "male opera", "female opera",
    "woodwind", "brass", "horn", "guitars", "synth pop", "slow classical", "fast classical", "classical piano",
    "jungle",
]
ALL_TAGS = TOP50 + RARE
assert len(ALL_TAGS) == 188 and len(set(ALL_TAGS)) == 188, len(ALL_TAGS)

# (tag, annotator recall) for what a clip contains
STYLE_TAGS = {
    "classical": [("classical", 0.8), ("classic", 0.35)], "rock": [("rock", 0.8)],
    "electronic": [("techno", 0.7), ("electronic", 0.6), ("dance", 0.4), ("beats", 0.3)],
    "ambient": [("ambient", 0.8), ("new age", 0.2)], "pop": [("pop", 0.75)], "indian": [("indian", 0.85)],
    "opera": [("opera", 0.85), ("classical", 0.4)], "choir": [("choir", 0.8), ("choral", 0.6)],
    "country": [("country", 0.8)], "metal": [("metal", 0.8), ("rock", 0.5), ("heavy", 0.3)],
    "solo": [("solo", 0.7)], "newage": [("new age", 0.7), ("ambient", 0.3)],
}
INSTR_TAGS = {
    "strings": [("strings", 0.7), ("violin", 0.45), ("cello", 0.3)], "piano": [("piano", 0.8)],
    "harpsichord": [("harpsichord", 0.85)], "harp": [("harp", 0.8)], "guitar": [("guitar", 0.8)],
    "dist_guitar": [("guitar", 0.8)], "twang": [("guitar", 0.8)], "synth": [("synth", 0.6)],
    "pad": [("synth", 0.5)], "flute": [("flute", 0.85)], "sitar": [("sitar", 0.85)],
    "bass": [("bass", 0.15)], "organ": [("organ", 0.6)],
}
VOICE_TAGS = {
    "female": [("vocal", 0.45), ("female", 0.6), ("singing", 0.4), ("vocals", 0.35), ("woman", 0.35),
               ("female vocal", 0.3), ("voice", 0.25), ("female voice", 0.25)],
    "male": [("vocal", 0.45), ("male", 0.6), ("singing", 0.4), ("vocals", 0.35), ("man", 0.35),
             ("male vocal", 0.3), ("voice", 0.25), ("male voice", 0.25)],
    "none": [("no vocals", 0.3), ("no vocal", 0.3), ("no voice", 0.25)],
}


def tags_for(content: dict, rng) -> set[str]:
    """Tags of a clip: the facts of its plan, each kept with its annotator recall."""
    cands = list(STYLE_TAGS[content["style"]])
    for inst in sorted(content["instruments"]):
        cands += INSTR_TAGS.get(inst, [])
    if content["drums"]:
        cands += [("drums", 0.6), ("beat", 0.5), ("beats", 0.15)]
    if content["tempo"] >= 125:
        cands += [("fast", 0.7)]
    elif content["tempo"] <= 85:
        cands += [("slow", 0.75)]
    if content["loudness_db"] > -14:
        cands += [("loud", 0.7)]
    elif content["loudness_db"] < -23:
        cands += [("quiet", 0.6), ("soft", 0.5)]
    if content.get("choir"):
        cands += [("vocal", 0.3), ("voice", 0.3), ("singing", 0.3)]
    if content["vocal"]:
        cands += VOICE_TAGS[content["vocal"]]
    elif not content.get("choir"):
        cands += VOICE_TAGS["none"]
    if content["noise_db"] > -18:
        cands += [("weird", 0.5)]
    tags = {t for t, p in cands if rng.random() < p}
    for t in RARE:  # rare tags: sparse annotation noise outside the top 50
        if rng.random() < 0.006:
            tags.add(t)
    return tags


def _slug(rng, n_words: int) -> str:
    syll = ["ka", "lo", "mi", "ra", "ne", "to", "su", "va", "de", "ri", "mo", "ba", "shi", "el", "an", "or"]
    return "_".join("".join(rng.choice(syll, size=int(rng.integers(2, 4)))) for _ in range(n_words))


def plan_clips(size: str, seed: int) -> tuple[list[str], list[dict]]:
    """Column order and one record per clip (id, path, tags, render seed); no audio."""
    import numpy as np

    from bench_tasks import synth_clips as sm

    spec = SIZES[size]
    rng = np.random.default_rng([seed, 101])
    columns = list(ALL_TAGS)
    rng.shuffle(columns)
    styles = list(sm.TAG_STYLES)
    weights = np.array([sm.TAG_STYLE_WEIGHTS[s] for s in styles], dtype=float)
    # folder -> split by the protocol; the demo puts more clips in c and d-f than the real
    # release does (1/16 valid) so that small splits still hold every top tag
    folder_p = np.array([0.6 / 12] * 12 + [0.16] + [0.24 / 3] * 3)
    folders = list("0123456789abcdef")
    clips: list[dict] = []
    clip_id = 2
    album = 0
    while len(clips) < spec["clips"]:
        style = styles[rng.choice(len(styles), p=weights / weights.sum())]
        folder = folders[rng.choice(16, p=folder_p)]
        artist, title = _slug(rng, 2), _slug(rng, 2)
        album += 1
        for k in range(int(rng.integers(1, 4))):
            if len(clips) >= spec["clips"]:
                break
            cseed = int(rng.integers(2**31))
            crng = np.random.default_rng(cseed)
            plan, content = sm.tag_plan(crng, style)
            content["noise_db"] = plan.noise_db
            tags = tags_for(content, np.random.default_rng([cseed, 7]))
            if rng.random() < 0.03:  # only rare tags: the protocol drops such clips
                tags = {t for t in tags if t in RARE} or {str(rng.choice(RARE))}
            start = 30 * k
            path = f"{folder}/{artist}-{title}-{album % 20 + 1:02d}-{_slug(rng, 1)}-{start}-{start + 29}.mp3"
            clips.append({"clip_id": str(clip_id), "path": path, "tags": tags, "seed": cseed, "style": style})
            clip_id += int(rng.integers(1, 6))
    # two corrupt files, as in the real release (clip ids 35644, 55753, 57881)
    for j, c in enumerate(rng.choice(len(clips), size=2, replace=False)):
        clips[int(c)]["corrupt"] = "empty" if j == 0 else "garbage"
    return columns, clips


def csv_text(columns: list[str], clips: list[dict], seed: int) -> str:
    import numpy as np

    rng = np.random.default_rng([seed, 102])
    buf = io.StringIO()
    quoted = csv.writer(buf, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\n")
    plain = csv.writer(buf, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    quoted.writerow(["clip_id", *columns, "mp3_path"])
    for c in clips:
        row = [c["clip_id"], *("1" if t in c["tags"] else "0" for t in columns), c["path"]]
        (quoted if rng.random() < 0.5 else plain).writerow(row)
    return buf.getvalue()


def _render_clip(job: tuple) -> None:
    import numpy as np

    from bench_tasks import synth_clips as sm
    from bench_tasks import synth_music

    root, clip, seconds = job
    path = Path(root) / clip["path"]
    if clip.get("corrupt") == "empty":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return
    if clip.get("corrupt") == "garbage":
        write_corrupt(path, clip["seed"])
        return
    rng = np.random.default_rng(clip["seed"])
    plan, _ = sm.tag_plan(rng, clip["style"])
    x = synth_music.render(plan, rng, seconds, SAMPLE_RATE)
    write_audio(path, x, SAMPLE_RATE)


def make_demo(data_root: Path, size: str = "small", seed: int = 0) -> Path:
    """Write ``data_root/magnatagatune`` (annotations and MP3 clips); returns that folder."""
    from bench_tasks import render

    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; known: {sorted(SIZES)}")
    root = Path(data_root) / "magnatagatune"
    root.mkdir(parents=True, exist_ok=True)
    columns, clips = plan_clips(size, seed)
    for f in "0123456789abcdef":
        (root / f).mkdir(exist_ok=True)
    run_jobs(_render_clip, [(str(root), c, SIZES[size]["seconds"]) for c in clips])
    (root / "annotations_final.csv").write_bytes(csv_text(columns, clips, seed).encode("utf-8"))
    render.write_metadata(root, render.metadata("magnatagatune", size, seed, SAMPLE_RATE,
                                                {"seconds_per_clip": SIZES[size]["seconds"]}))
    return root
