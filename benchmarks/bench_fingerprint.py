"""Cost of the content fingerprint (SHA-256 of every file) against a cold logmel extraction, MTAT-shaped.

    python benchmarks/bench_fingerprint.py [--files 400] [--keep DIR]

Writes an MTAT-shaped folder, scaled down: ``--files`` MP3 clips of 29.1 s at
16 kHz mono (the real clips' format; about 111 KB each, the real average is
3 GB / 25,863 = 116 KB) spread over the 16 folders 0..f. Eight distinct clips
are encoded and copied (each copy is its own file, so hashing and decoding
cost the same as for distinct content; encoding 400 MP3s would take minutes).

Then, in one process and one run (ratios, not absolute times, are the figure):
  1. cold fingerprint: every file hashed (no memo), as on a first run;
  2. warm fingerprint: a new process-level memo read from its SQLite file, so
     only a stat per file, as on every later run;
  3. cold logmel extraction of the same files (decode, resample, 3 s windows,
     log-mel, mean-pool: :func:`bench.extract.extract`), the main cost of a
     cold `bench run --encoder logmel --tasks mtat` (probe training comes on
     top, so fingerprint / extraction over-states the fraction of a whole run).

The ratio carries to the full MTAT (25,863 files, about 3 GB) because both
costs grow with the number of files of the same size; the script prints the
extrapolated seconds. Caveat: the files were just written, so the hash reads
them from the page cache; on a cold disk the first read costs disk time, but
the extraction must read the same bytes from the same disk anyway.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

MTAT_FILES = 25863
MTAT_BYTES = 3.0e9


def write_folder(root: Path, n: int) -> list[Path]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(int(29.1 * sr)) / sr
    clips = []
    for k in range(8):
        x = 0.2 * np.sin(2 * np.pi * (110 * (k + 2)) * t) + 0.08 * rng.standard_normal(len(t))
        p = root / f"clip{k}.mp3"
        sf.write(str(p), x.astype(np.float32), sr, format="MP3")
        clips.append(p)
    files = []
    for i in range(n):
        dest = root / "magnatagatune" / "0123456789abcdef"[i % 16] / f"artist_{i // 50}-album-title_{i}-0-29.mp3"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clips[i % 8], dest)
        files.append(dest)
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=400, help="MP3 clips to write (default 400)")
    ap.add_argument("--keep", type=Path, default=None, help="write the folder here and keep it")
    args = ap.parse_args()

    from bench import keys
    from bench import store as F
    from bench import plugins
    from bench.extract import extract
    from bench.task import Item

    tmp = Path(tempfile.mkdtemp(prefix="bench-fp-")) if args.keep is None else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        files = write_folder(tmp, args.files)
        size = sum(p.stat().st_size for p in files)
        print(f"wrote {len(files)} MP3s, {size / 1e6:.1f} MB ({size / len(files) / 1e3:.0f} KB each) "
              f"in {time.perf_counter() - t0:.1f} s")
        items = [Item(p.stem, str(p), 0) for p in files]
        memo_file = tmp / "memo.sqlite"

        F.RACY_NS = 0  # the files were just written; let the memo keep them (see bench.store.FileDigests)
        cold = F.FileDigests(memo_file)
        t0 = time.perf_counter()
        fp_cold = keys.data_fingerprint({"train": items}, tmp / "magnatagatune", cold)
        t_cold = time.perf_counter() - t0
        cold.close()

        warm = F.FileDigests(memo_file)
        t0 = time.perf_counter()
        fp_warm = keys.data_fingerprint({"train": items}, tmp / "magnatagatune", warm)
        t_warm = time.perf_counter() - t0
        assert fp_warm == fp_cold and warm.hashed == 0 and cold.hashed == len(files)

        enc = plugins.get_encoder("logmel").eval()
        t0 = time.perf_counter()
        emb = extract(enc, items, max_windows=64, progress=False)
        t_ext = time.perf_counter() - t0
        assert not emb.skipped

        scale = MTAT_FILES / len(files)
        print(f"cold fingerprint (hash every file): {t_cold:.2f} s = {size / t_cold / 1e6:.0f} MB/s, "
              f"{1e3 * t_cold / len(files):.2f} ms/file")
        print(f"warm fingerprint (memo, stat only): {t_warm:.3f} s, {1e3 * t_warm / len(files):.3f} ms/file")
        print(f"cold logmel extraction:             {t_ext:.1f} s, {1e3 * t_ext / len(files):.0f} ms/file "
              f"({emb.windows} windows)")
        print(f"cold fingerprint / cold extraction: {100 * t_cold / t_ext:.2f} %  (target < 10 %)")
        print(f"warm fingerprint / cold extraction: {100 * t_warm / t_ext:.3f} %")
        print(f"extrapolated to full MTAT ({MTAT_FILES} files, {MTAT_BYTES / 1e9:.0f} GB; x{scale:.0f} by files): "
              f"cold fingerprint {t_cold * scale:.0f} s ({MTAT_BYTES / (size / t_cold) :.0f} s by bytes), "
              f"warm {t_warm * scale:.1f} s, cold extraction {t_ext * scale / 60:.0f} min")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
