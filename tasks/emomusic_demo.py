"""Demo EmoMusic: clips whose arousal and valence ratings follow from their tempo, loudness and mode.

Writes ``emomusic/clips_45seconds/<song_id>.mp3`` (44.1 kHz mono MP3, shorter
than the real 45 s), ``songs_info.csv`` and ``static_annotations.csv`` in the
real columns. Each song is a key clip of :mod:`bench_tasks.synth_clips`
(chords, bass, often a melody and drums, rendered from the SoundFont) whose
tempo (60..180 BPM), loudness (-32..-12 dBFS RMS) and mode (major or minor)
are drawn and then set. The ratings are not a listener's: they are a stated
rule on those three drawn values, on the real 1..9 scale,

    arousal = 1 + 8 (0.6 t + 0.4 l)          t, l: tempo and loudness mapped to 0..1
    valence = 3 + 3 [major] + 2 t + (a draw of -0.5..0.5, for what the rule leaves out)

so arousal is what tempo and loudness say and valence is mostly the mode (the
common finding of music-emotion studies, used here as a recipe, not measured).
``std_arousal`` and ``std_valence`` are 0 (there are no raters). Artists are
named so that MARBLE's artist-hash split puts about a fifth of the
development songs in valid; the evaluation songs are the test split.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from bench_tasks._common import run_jobs, write_audio

SAMPLE_RATE = 44100
#: development songs, evaluation songs, songs per artist, seconds per clip
SIZES = {
    "tiny": {"dev": 20, "eval": 8, "per_artist": 2, "seconds": 3.0},
    "small": {"dev": 64, "eval": 24, "per_artist": 2, "seconds": 5.0},
    "medium": {"dev": 240, "eval": 80, "per_artist": 3, "seconds": 8.0},
}
TEMPO = (60.0, 180.0)
LOUDNESS = (-32.0, -12.0)
INFO_HEADER = ["song_id", "file_name", "Artist", "Song title", "start of the segment (min.sec)",
               "end of the segment (min.sec)", "Genre", "Mediaeval 2013 set"]
STATIC_HEADER = ["song_id", "mean_arousal", "std_arousal", "mean_valence", "std_valence"]


def ratings(tempo: float, loudness: float, major: bool, jitter: float) -> tuple[float, float]:
    """(arousal, valence) on the 1..9 scale from the drawn tempo, loudness (dBFS) and mode."""
    t = (tempo - TEMPO[0]) / (TEMPO[1] - TEMPO[0])
    loud = (loudness - LOUDNESS[0]) / (LOUDNESS[1] - LOUDNESS[0])
    return 1 + 8 * (0.6 * t + 0.4 * loud), 3 + 3 * float(major) + 2 * t + jitter


def letters(k: int) -> str:
    """A name part made of letters only (MARBLE's artist normalisation drops digits): 0 -> 'a', 27 -> 'bb'."""
    out = ""
    while True:
        k, r = divmod(k, 26)
        out = chr(97 + r) + out
        if k == 0:
            return out.capitalize()


def _artists(n_dev: int, per: int) -> list[tuple[str, str]]:
    """(artist, split) for the development songs: artists drawn in order until train and valid both fill."""
    from bench_tasks.emomusic_format import artist_split

    want = {"valid": max(1, round(n_dev * 0.2 / per)), "train": 0}
    want["train"] = -(-n_dev // per) - want["valid"]
    out, k = [], 0
    while want["train"] > 0 or want["valid"] > 0:
        name = f"Demo Artist {letters(k)}"
        split = artist_split(name)
        if want[split] > 0:
            want[split] -= 1
            out.append((name, split))
        k += 1
    return out


def plan(size: str, seed: int) -> tuple[list[dict], list[tuple]]:
    import numpy as np

    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; known: {sorted(SIZES)}")
    conf = SIZES[size]
    rng = np.random.default_rng([seed, 701])
    dev_artists = _artists(conf["dev"], conf["per_artist"])
    songs, jobs = [], []
    sid = 2  # the real ids start at 2
    owners = [(a, "development") for a, _ in dev_artists for _ in range(conf["per_artist"])][: conf["dev"]]
    owners += [(f"Demo Evaluation Artist {letters(i // conf['per_artist'])}", "evaluation") for i in range(conf["eval"])]
    for artist, mset in owners:
        tempo = float(rng.uniform(*TEMPO))
        loud = float(rng.uniform(*LOUDNESS))
        major = bool(rng.random() < 0.5)
        arousal, valence = ratings(tempo, loud, major, float(rng.uniform(-0.5, 0.5)))
        key = int(rng.integers(12)) + (0 if major else 12)
        songs.append({"song_id": sid, "artist": artist, "set": mset, "arousal": round(arousal, 4),
                      "valence": round(valence, 4), "tempo": round(tempo, 2), "loudness_db": round(loud, 2),
                      "mode": "major" if major else "minor"})
        jobs.append((sid, key, tempo, loud, int(rng.integers(2**31))))
        sid += int(rng.integers(1, 4))  # ids with gaps, as the 744 of 1000
    return songs, jobs


def _render(job: tuple) -> None:
    import numpy as np

    from bench_tasks import synth_clips as sc
    from bench_tasks.synth_music import render

    folder, (sid, key, tempo, loud, seed), seconds = job
    rng = np.random.default_rng(seed)
    p = sc.key_plan(rng, key)
    p.tempo, p.loudness_db = tempo, loud
    write_audio(Path(folder) / f"{sid}.mp3", render(p, rng, seconds, SAMPLE_RATE), SAMPLE_RATE)


def _csv(rows: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def make_demo(data_root: Path, size: str = "small", seed: int = 0) -> None:
    """Write ``data_root/emomusic`` (clips_45seconds/, songs_info.csv, static_annotations.csv)."""
    from bench_tasks import render

    songs, jobs = plan(size, seed)
    root = Path(data_root) / "emomusic"
    (root / "clips_45seconds").mkdir(parents=True, exist_ok=True)
    seconds = SIZES[size]["seconds"]
    run_jobs(_render, [(str(root / "clips_45seconds"), j, seconds) for j in jobs])
    info = [INFO_HEADER] + [[s["song_id"], f"{s['song_id']}.mp3", s["artist"], f"Demo song {s['song_id']}",
                             "0.00", f"0.{int(seconds):02d}", "Demo", s["set"]] for s in songs]
    static = [STATIC_HEADER] + [[s["song_id"], s["arousal"], 0, s["valence"], 0] for s in songs]
    (root / "songs_info.csv").write_bytes(_csv(info))
    (root / "static_annotations.csv").write_bytes(_csv(static))
    render.write_metadata(root, render.metadata(
        "emomusic", size, seed, SAMPLE_RATE,
        {"seconds_per_clip": seconds,
         "rule": "arousal = 1 + 8 (0.6 t + 0.4 l); valence = 3 + 3 [major] + 2 t + U(-0.5, 0.5); t, l: tempo "
                 f"{TEMPO} BPM and loudness {LOUDNESS} dBFS mapped to 0..1",
         "songs": {str(s["song_id"]): {k: s[k] for k in ("tempo", "loudness_db", "mode")} for s in songs}}))
