"""Demo GiantSteps key data: tracks in one of 24 keys, in both repositories' layouts.

Each track is a chord progression, bass line and melody in its key with
EDM-like drums, on General MIDI programs rendered from a SoundFont's
recorded samples (:mod:`bench_tasks.synth_music`, :mod:`bench_tasks.render`).

``giantsteps-mtg-key-dataset/annotations/annotations.txt`` gets the real
quirks: sharps (``D# minor``), confidence 0/1 rows and ambiguous keys
(``A minor / C major``) that the protocol drops, and tracks of artists with
several tracks and multi-artist credits, so the artist-disjoint split has
work to do. ``beatport_metadata.txt`` holds the artists. The test repository
writes one ``.key`` file per track (flats only), some without a trailing
newline. Audio is written for the rows the protocol keeps (the dropped rows
would never be read) as 16 kHz mono MP3 (the real previews are 44.1 kHz; the harness resamples); one kept track is a corrupt file
that the extract stage must skip. Keys are dealt evenly so every split holds
many keys.
"""

from __future__ import annotations

from pathlib import Path

from bench_tasks._common import run_jobs, write_audio, write_corrupt, write_lines

SAMPLE_RATE = 16000

#: MTG rows (train+valid before filtering), test tracks, track length range in seconds; tune here
SIZES = {
    "tiny": {"mtg": 40, "test": 24, "seconds": (4.0, 6.0)},
    "small": {"mtg": 280, "test": 60, "seconds": (3.5, 5.5)},
    "medium": {"mtg": 900, "test": 480, "seconds": (6.0, 9.0)},
}

PITCH_CLASSES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
SHARP = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
GENRES = ["Techno", "Tech House", "Deep House", "Drum & Bass", "Dubstep", "Trance", "Progressive House",
          "Electro House", "Minimal", "Breaks", "Hip-Hop", "Glitch Hop"]


def key_name(index: int, sharps: bool = False) -> str:
    pc, mode = PITCH_CLASSES[index % 12], ("major" if index < 12 else "minor")
    return f"{SHARP.get(pc, pc) if sharps else pc} {mode}"


def _name(rng, words: int) -> str:
    syll = ["dj", "ko", "la", "mi", "zen", "tor", "va", "rex", "ny", "sol", "bi", "ta", "ro", "an", "el", "qu"]
    return " ".join("".join(rng.choice(syll, size=int(rng.integers(2, 4)))).capitalize() for _ in range(words))


def plan(size: str, seed: int) -> dict:
    """Every row and track of the demo (no audio): annotation lines and render jobs."""
    import numpy as np

    spec = SIZES[size]
    rng = np.random.default_rng([seed, 201])
    lo, hi = spec["seconds"]

    def deal(n):  # keys dealt evenly, order shuffled
        keys = np.concatenate([rng.permutation(24) for _ in range(-(-n // 24))])[:n]
        return [int(k) for k in keys]

    ids = rng.choice(np.arange(1_000_000, 9_000_000), size=spec["mtg"] + spec["test"], replace=False)
    mtg_ids, test_ids = [str(i) for i in ids[: spec["mtg"]]], [str(i) for i in ids[spec["mtg"] :]]
    n_artists = max(8, spec["mtg"] * 2 // 3)
    pool = sorted({_name(rng, int(rng.integers(1, 3))) for _ in range(n_artists)})
    ann = ["ID\tMANUAL KEY\tC"]
    meta = ["ID\tARTIST\tSONG TITLE\tMIX\tLABEL\tBP GENRE\tBP BPM\tBP KEY"]
    jobs = []
    keys = deal(spec["mtg"])
    for j, (tid, k) in enumerate(zip(mtg_ids, keys)):
        u = rng.random()
        conf = 2 if u < 0.8 else (1 if u < 0.92 else 0)
        text = key_name(k, sharps=rng.random() < 0.6)
        if rng.random() < 0.05:  # ambiguous annotation: dropped by the protocol
            text = f"{key_name(k)} / {key_name((k + 3) % 12 if k >= 12 else 12 + (k + 9) % 12)}"
        ann.append(f"{tid}\t{text}\t{conf}")
        artist = str(rng.choice(pool))
        if rng.random() < 0.06:  # multi-artist credits link artists across tracks
            artist = f"{artist}, {rng.choice(pool)}"
        bpm = int(rng.integers(90, 175))
        meta.append("\t".join([tid, artist, _name(rng, 2), "Original Mix", _name(rng, 1) + " Records",
                               str(rng.choice(GENRES)), str(bpm), key_name(k, sharps=True).replace("major", "maj")
                               .replace("minor", "min").replace(" ", "")]))
        if conf == 2 and "/" not in text:
            jobs.append(("mtg", tid, k, float(rng.uniform(lo, hi)), int(rng.integers(2**31))))
    test = []
    for tid, k in zip(test_ids, deal(spec["test"])):
        test.append((tid, key_name(k), rng.random() < 0.4))  # 40% without trailing newline
        jobs.append(("test", tid, k, float(rng.uniform(lo, hi)), int(rng.integers(2**31))))
    mtg_jobs = [j for j in jobs if j[0] == "mtg"]
    corrupt = mtg_jobs[int(rng.integers(len(mtg_jobs)))][1]
    return {"ann": ann, "meta": meta, "test": test, "jobs": jobs, "corrupt": corrupt}


def _render(job: tuple) -> None:
    import numpy as np

    from bench_tasks import synth_clips as sm

    root, (where, tid, key, seconds, seed), corrupt = job
    folder = Path(root) / ("giantsteps-mtg-key-dataset" if where == "mtg" else "giantsteps-key-dataset") / "audio"
    path = folder / f"{tid}.LOFI.mp3"
    if tid == corrupt:
        write_corrupt(path, seed)
        return
    x = sm.key_clip(np.random.default_rng(seed), key, seconds, SAMPLE_RATE)
    write_audio(path, x, SAMPLE_RATE)


def make_demo(data_root: Path, size: str = "small", seed: int = 0) -> None:
    """Write ``giantsteps-key-dataset/`` and ``giantsteps-mtg-key-dataset/`` under ``data_root``."""
    from bench_tasks import render

    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; known: {sorted(SIZES)}")
    data_root = Path(data_root)
    p = plan(size, seed)
    mtg = data_root / "giantsteps-mtg-key-dataset"
    gs = data_root / "giantsteps-key-dataset"
    for d in (mtg / "audio", gs / "audio", gs / "annotations" / "key", mtg / "annotations"):
        d.mkdir(parents=True, exist_ok=True)
    # the longest tracks first so the two workers finish together
    jobs = sorted(p["jobs"], key=lambda j: -j[3])
    run_jobs(_render, [(str(data_root), j, p["corrupt"]) for j in jobs])
    write_lines(mtg / "annotations" / "annotations.txt", p["ann"])
    write_lines(mtg / "annotations" / "beatport_metadata.txt", p["meta"])
    for tid, key, no_newline in p["test"]:
        write_lines(gs / "annotations" / "key" / f"{tid}.LOFI.key", [key], trailing_newline=not no_newline)
    for folder in (mtg, gs):
        render.write_metadata(folder, render.metadata(folder.name, size, seed, SAMPLE_RATE,
                                                      {"seconds_per_track": list(SIZES[size]["seconds"])}))
