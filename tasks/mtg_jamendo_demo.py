"""Demo MTG-Jamendo: genre-recipe clips tagged with their genre and the instruments they play.

Writes, in the real layout and TSV format (CRLF lines, one tag per trailing
column), ``mtg-jamendo/data/splits/split-0/autotagging_{genre,instrument,
top50tags}-{train,validation,test}.tsv`` and ``mtg-jamendo/audio-low/NN/
<id>.low.mp3`` (44.1 kHz mono MP3, a few seconds instead of 30 s). Each track
is a genre clip of :mod:`bench_tasks.synth_clips` (the GTZAN demo's recipes:
tempo, groove, instrumentation, harmony); its tags are what the plan put in:
``genre---<recipe>`` (blues, classical, country, disco, hiphop, jazz, metal,
pop, reggae, rock: all MTG-Jamendo genre tags) and ``instrument---<name>`` for
each part's General MIDI program (table :data:`INSTRUMENT_OF_PROGRAM`) and
``instrument---drums`` when a drum kit plays. A program with no fitting tag
(banjo, sitar, mallets) gets none, so a clip's tags are true but, as with
real tags, not always complete. The top-50 files carry both kinds. There are
no mood/theme files: a mood is not something a recipe can truthfully render
(task ``mtg_jamendo_moodtheme`` has no demo). Artists are disjoint across
splits; a track's id gives its folder, the last two digits, as in the real
data.
"""

from __future__ import annotations

from pathlib import Path

from bench_tasks._common import run_jobs, write_audio

SAMPLE_RATE = 44100
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
#: tracks per genre in each split, seconds per clip
SIZES = {
    "tiny": {"train": 3, "valid": 2, "test": 2, "seconds": 3.0},
    "small": {"train": 8, "valid": 4, "test": 5, "seconds": 5.0},
    "medium": {"train": 30, "valid": 10, "test": 20, "seconds": 8.0},
}
#: GM program (0-based) -> MTG-Jamendo instrument tag
INSTRUMENT_OF_PROGRAM = {
    **{p: "piano" for p in (0, 1, 3)}, **{p: "electricpiano" for p in (2, 4, 5)}, 6: "keyboard",
    **{p: "organ" for p in (16, 17, 18)}, 19: "pipeorgan",
    24: "classicalguitar", 25: "acousticguitar", **{p: "electricguitar" for p in (26, 27, 29, 30)},
    **{p: "bass" for p in (32, 33, 34, 35, 38, 39)},
    40: "violin", 110: "violin", 41: "viola", 42: "cello", **{p: "strings" for p in (44, 48, 49)}, 46: "harp",
    **{p: "pad" for p in (50, 88, 89, 90, 91, 92, 94, 95)},
    **{p: "synthesizer" for p in (62, 63, 80, 81, 84, 87)},
    **{p: "voice" for p in (52, 53, 54)},
    56: "trumpet", 57: "trombone", 61: "brass",
    **{p: "saxophone" for p in (64, 65, 66)}, **{p: "flute" for p in (72, 73, 74, 75)},
}
SUBSETS = ("genre", "instrument", "top50tags")
SPLIT_FILES = {"train": "train", "valid": "validation", "test": "test"}


def tags_of(genre: str, plan) -> list[str]:
    """The tags a genre plan earns: its genre and the instruments its parts and drums play."""
    inst = {INSTRUMENT_OF_PROGRAM[p["program"]] for p in plan.parts if p["program"] in INSTRUMENT_OF_PROGRAM}
    if plan.drums:
        inst.add("drums")
    return [f"genre---{genre}"] + [f"instrument---{t}" for t in sorted(inst)]


def plan(size: str, seed: int) -> list[dict]:
    """Every track: id, artist, split, genre, the seed its clip is rendered from, and its tags."""
    import numpy as np

    from bench_tasks import synth_clips as sc

    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; known: {sorted(SIZES)}")
    conf = SIZES[size]
    rng = np.random.default_rng([seed, 801])
    tracks, artist = [], 0
    tid = int(rng.integers(900, 1100))
    for split in ("train", "valid", "test"):
        for genre in GENRES:
            for i in range(conf[split]):
                if i % 2 == 0:
                    artist += 1  # two tracks per artist; artists never cross splits
                s = int(rng.integers(2**31))
                tags = tags_of(genre, sc.genre_plan(np.random.default_rng(s), genre))
                tracks.append({"id": tid, "artist": artist, "split": split, "genre": genre, "seed": s,
                               "tags": tags})
                tid += int(rng.integers(1, 40))
    return tracks


def _render(job: tuple) -> None:
    import numpy as np

    from bench_tasks import synth_clips as sc
    from bench_tasks.synth_music import render

    path, genre, seed, seconds = job
    rng = np.random.default_rng(seed)
    p = sc.genre_plan(rng, genre)  # the same draws as in plan(): the tags are this plan's
    write_audio(Path(path), render(p, rng, seconds, SAMPLE_RATE), SAMPLE_RATE)


def _row(t: dict, tags: list[str], seconds: float) -> str:
    rel = f"{t['id'] % 100:02d}/{t['id']}.mp3"
    return "\t".join([f"track_{t['id']:07d}", f"artist_{t['artist']:06d}", f"album_{t['artist']:06d}", rel,
                      f"{seconds:.1f}", *tags])


def make_demo(data_root: Path, size: str = "small", seed: int = 0) -> None:
    """Write ``data_root/mtg-jamendo`` (split-0 files of three subsets, audio-low/)."""
    from bench_tasks import render

    tracks = plan(size, seed)
    root = Path(data_root) / "mtg-jamendo"
    seconds = SIZES[size]["seconds"]
    run_jobs(_render, [(str(root / "audio-low" / f"{t['id'] % 100:02d}" / f"{t['id']}.low.mp3"), t["genre"],
                        t["seed"], seconds) for t in tracks])
    folder = root / "data" / "splits" / "split-0"
    folder.mkdir(parents=True, exist_ok=True)
    header = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
    for subset in SUBSETS:
        for split, word in SPLIT_FILES.items():
            rows = [header]
            for t in tracks:
                tags = [g for g in t["tags"] if subset == "top50tags" or g.startswith(subset + "---")]
                if t["split"] == split and tags:
                    rows.append(_row(t, tags, seconds))
            (folder / f"autotagging_{subset}-{word}.tsv").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    render.write_metadata(root, render.metadata("mtg-jamendo", size, seed, SAMPLE_RATE,
                                                {"seconds_per_clip": seconds,
                                                 "note": "genre recipes; instrument tags from GM programs; "
                                                         "no mood/theme files"}))
