"""Index speed of the mtat and giantsteps_key loaders on full-size synthetic annotation files.

    python benchmarks/bench_index.py

Writes a 25,863-row annotations_final.csv (188 tags, half the rows quoted)
with an empty placeholder file per clip in the 16 folders, and 1,486 MTG
annotation rows + Beatport metadata + 604 test .key files with placeholder
audio; no audio is decoded by the loaders, so placeholders are enough. Prints
the time to index every split (cold: the first parse; warm: the parse cache).
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from pathlib import Path

from bench_tasks.giantsteps import KEY_NAMES, GiantStepsKey
from bench_tasks.mtat import MTATTask, _CACHE
from bench_tasks.mtat_demo import ALL_TAGS


def write_mtat(root: Path, rows: int = 25863) -> None:
    rnd = random.Random(0)
    base = root / "magnatagatune"
    for f in "0123456789abcdef":
        (base / f).mkdir(parents=True)
    rates = [0.12 * 0.97**i for i in range(len(ALL_TAGS))]
    with open(base / "annotations_final.csv", "w", newline="") as fh:
        q = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\n")
        p = csv.writer(fh, delimiter="\t", lineterminator="\n")
        q.writerow(["clip_id", *ALL_TAGS, "mp3_path"])
        for i in range(rows):
            rel = f"{'0123456789abcdef'[i % 16]}/artist_{i // 50}-album-{i % 13:02d}-title_{i}-0-29.mp3"
            (q if i % 2 else p).writerow([i * 2, *("1" if rnd.random() < r else "0" for r in rates), rel])
            (base / rel).touch()


def write_giantsteps(root: Path, mtg: int = 1486, test: int = 604) -> None:
    rnd = random.Random(1)
    m = root / "giantsteps-mtg-key-dataset"
    (m / "annotations").mkdir(parents=True)
    (m / "audio").mkdir()
    ann, meta = ["ID\tMANUAL KEY\tC"], ["ID\tARTIST\tSONG TITLE\tMIX\tLABEL\tBP GENRE\tBP BPM\tBP KEY"]
    for i in range(mtg):
        tid = str(100000 + i)
        ann.append(f"{tid}\t{rnd.choice(KEY_NAMES).replace('Db', 'C#')}\t{rnd.choice('0122222')}")
        meta.append(f"{tid}\tArtist {rnd.randrange(600)}\tSong\tOriginal Mix\tLabel\tTechno\t126\tCmin")
        (m / "audio" / f"{tid}.LOFI.mp3").touch()
    (m / "annotations" / "annotations.txt").write_text("\n".join(ann) + "\n")
    (m / "annotations" / "beatport_metadata.txt").write_text("\n".join(meta) + "\n")
    g = root / "giantsteps-key-dataset"
    (g / "annotations" / "key").mkdir(parents=True)
    (g / "audio").mkdir()
    for i in range(test):
        tid = str(900000 + i)
        (g / "annotations" / "key" / f"{tid}.LOFI.key").write_text(rnd.choice(KEY_NAMES))
        (g / "audio" / f"{tid}.LOFI.mp3").touch()


def timed(task, root: Path) -> tuple[float, dict]:
    t = time.perf_counter()
    task.classes(root)
    sizes = {s: len(task.items(s, root)) for s in ("train", "valid", "test")}
    return time.perf_counter() - t, sizes


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        write_mtat(root)
        write_giantsteps(root)
        print(f"wrote the synthetic annotation files in {time.perf_counter() - t:.1f} s")
        _CACHE.clear()
        cold, sizes = timed(MTATTask(), root)
        warm, _ = timed(MTATTask(), root)
        print(f"mtat (25,863 rows x 188 tags): classes + 3 splits {cold:.2f} s cold, {warm:.2f} s warm; {sizes}")
        gs, sizes = timed(GiantStepsKey(), root)
        print(f"giantsteps_key (1,486 MTG rows + 604 key files): classes + 3 splits {gs:.2f} s; {sizes}")


if __name__ == "__main__":
    main()
