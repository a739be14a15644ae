"""Core targets (issue: harness core), printed as figures, never asserted.

- `bench --help` and `bench list` wall time (target < 0.5 s each) and whether torch was imported;
- the README demo command for the logmel baseline on nsynth_pitch from an empty cache
  (target < 2 min, peak memory < 2 GB), and its score vs chance.

Usage: python benchmarks/bench_core.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - t0, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    bench = [sys.executable, "-m", "bench.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BENCH_CACHE_DIR": str(Path(tmp) / "cache")}
        env.pop("BENCH_DATA_ROOT", None)
        for verb in (["--help"], ["list"]):
            times = sorted(timed(bench + verb, env)[0] for _ in range(args.repeat))
            print(f"bench {' '.join(verb):7s}: median {times[len(times) // 2]:.3f}s (min {times[0]:.3f}s) "
                  f"over {args.repeat} runs [target < 0.5 s]")
        probe = subprocess.run(
            [sys.executable, "-c", "import sys; from bench.cli import main; main(['list']); "
             "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)"],
            capture_output=True, text=True, env=env)
        print(f"bench list: {probe.stderr.strip().splitlines()[-1]}")

        out = Path(tmp) / "out"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        wall, res = timed(bench + ["run", "--encoder", "logmel", "--tasks", "nsynth_pitch", "--out", str(out),
                                   "--device", "cpu"], env)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if res.returncode != 0:
            print(res.stderr)
            raise SystemExit("demo run failed")
        rec = json.loads((out / "records" / "logmel__nsynth_pitch__seed0.json").read_text())
        chance = 1 / rec["n_classes"]
        print(f"demo run (logmel x nsynth_pitch, cold cache incl. demo data build): {wall:.1f}s wall, "
              f"peak RSS {peak_mb:.0f} MB (max over child processes; before {before / 1024:.0f} MB) "
              f"[targets < 120 s, < 2048 MB]")
        print(f"logmel nsynth_pitch accuracy {rec['metrics']['accuracy']:.3f} vs chance {chance:.3f} "
              f"({rec['n_classes']} classes, {rec['data']['tracks']['test']} test notes)")


if __name__ == "__main__":
    main()
