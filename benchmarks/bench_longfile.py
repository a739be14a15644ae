"""Peak memory and time to window a two-hour file: whole decode (before) vs only the windows used.

    python benchmarks/bench_longfile.py [--hours 2] [--rate 22050]

Writes a mono 16-bit WAV of ``--hours`` at ``--rate`` Hz (2 h at 22,050 Hz is
317 MB, the file of issue 10), then in a fresh process each, with logmel's
extraction settings (16 kHz, 3 s windows, at most 64):
  before: ``windows(load(path, 16000), 48000, 64)`` (what the extract stage did)
  after:  ``load_windows(path, 16000, 48000, 64)`` (what it does now)
and prints peak RSS (``ru_maxrss``) and wall time of each, and the largest
difference between the two sets of windows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
import numpy as np
from bench.audio import load, load_windows, windows
path, how, out = sys.argv[1], sys.argv[2], sys.argv[3]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
w = windows(load(path, 16000), 48000, 64) if how == "before" else load_windows(path, 16000, 48000, 64)
dt = time.perf_counter() - t0
np.save(out, w)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"how": how, "seconds": dt, "peak_mb": peak / 1024, "start_mb": base / 1024, "shape": w.shape}))
"""


def main() -> None:
    import soundfile as sf

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--rate", type=int, default=22050)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
        path = Path(tmp) / "long.wav"
        rng = np.random.default_rng(0)
        block = args.rate * 60
        with sf.SoundFile(str(path), "w", args.rate, 1, subtype="PCM_16") as f:
            for minute in range(int(args.hours * 60)):
                t = (np.arange(block) + minute * block) / args.rate
                f.write((0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(block)).astype(np.float32))
        print(f"wrote {path.stat().st_size / 1e6:.0f} MB ({args.hours} h at {args.rate} Hz, mono 16-bit)")
        res = {}
        for how in ("before", "after"):
            out = Path(tmp) / f"{how}.npy"
            r = subprocess.run([sys.executable, "-c", CHILD, str(path), how, str(out)], capture_output=True,
                               text=True, check=True)
            res[how] = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"{how:6s}: peak RSS {res[how]['peak_mb']:.0f} MB (after imports {res[how]['start_mb']:.0f} MB), "
                  f"{res[how]['seconds']:.2f} s, windows {tuple(res[how]['shape'])}")
        diff = np.abs(np.load(Path(tmp) / "before.npy") - np.load(Path(tmp) / "after.npy")).max()
        print(f"largest difference between the windows: {diff:.2e}")


if __name__ == "__main__":
    main()
