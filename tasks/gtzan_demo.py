"""Demo GTZAN: genre clips rendered from recorded instrument samples, in the real layout.

Writes ``gtzan/genres/<genre>/<genre>.000NN.wav`` (22050 Hz mono 16-bit,
like the real files, only shorter) from the genre recipes of
:mod:`bench_tasks.synth_music` (arrangements on General MIDI programs and the
GM drum kit, rendered with a SoundFont), and ``gtzan/{train,valid,test}_filtered.txt``
in the syntax of the shipped fault-filtered lists (the loader prefers a
dataset folder's own lists: the documented custom-split feature), so every
genre is in every split. File numbers are drawn from 00000-00099 with gaps,
as in the real lists, and ``jazz/jazz.00054.wav`` is a corrupt file listed in
train, as in the well-known mirror: the extract stage must skip it.
"""

from __future__ import annotations

from pathlib import Path

from bench_tasks._common import run_jobs, write_audio, write_corrupt, write_lines

SAMPLE_RATE = 22050
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")

#: clips per genre in each split, seconds per clip; tune here (at most 99 clips per genre:
#: file numbers 00000-00099 without jazz.00054)
SIZES = {
    "tiny": {"train": 3, "valid": 2, "test": 2, "seconds": 3.0},
    "small": {"train": 8, "valid": 4, "test": 6, "seconds": 5.0},
    "medium": {"train": 36, "valid": 10, "test": 53, "seconds": 8.0},
}
CORRUPT = "jazz/jazz.00054.wav"


def plan(size: str, seed: int) -> tuple[dict, list]:
    import numpy as np

    spec = SIZES[size]
    rng = np.random.default_rng([seed, 301])
    lists: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    jobs = []
    for genre in GENRES:
        n = spec["train"] + spec["valid"] + spec["test"]
        pool = [i for i in range(100) if not (genre == "jazz" and i == 54)]
        nums = [int(x) for x in rng.choice(pool, size=n, replace=False)]
        order = {"train": nums[: spec["train"]], "valid": nums[spec["train"] : spec["train"] + spec["valid"]],
                 "test": nums[spec["train"] + spec["valid"] :]}
        for split, ns in order.items():
            for i in ns:
                rel = f"{genre}/{genre}.{i:05d}.wav"
                lists[split].append(rel)
                jobs.append((rel, genre, int(rng.integers(2**31))))
    lists["train"].append(CORRUPT)
    for split in lists:
        lists[split].sort()
    return lists, jobs


def _render(job: tuple) -> None:
    import numpy as np

    from bench_tasks import synth_clips as sm

    root, (rel, genre, seed), seconds = job
    x = sm.genre_clip(np.random.default_rng(seed), genre, seconds, SAMPLE_RATE)
    write_audio(Path(root) / rel, x, SAMPLE_RATE)


def make_demo(data_root: Path, size: str = "small", seed: int = 0) -> None:
    """Write ``data_root/gtzan`` (audio in genres/ and the three split lists)."""
    from bench_tasks import render

    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; known: {sorted(SIZES)}")
    root = Path(data_root) / "gtzan"
    audio = root / "genres"
    for g in GENRES:
        (audio / g).mkdir(parents=True, exist_ok=True)
    lists, jobs = plan(size, seed)
    run_jobs(_render, [(str(audio), j, SIZES[size]["seconds"]) for j in jobs])
    write_corrupt(audio / CORRUPT, seed)
    for split, lines in lists.items():
        # like the shipped lists: no newline after the last line
        write_lines(root / f"{split}_filtered.txt", lines, trailing_newline=False)
    render.write_metadata(root, render.metadata("gtzan", size, seed, SAMPLE_RATE,
                                                {"seconds_per_clip": SIZES[size]["seconds"]}))
