"""Cold vs warm `bench run`: what the embedding cache saves (target: warm >= 20x faster).

Builds the demo data of every registered task first (not timed), then runs the
same `bench run` twice against a fresh cache folder: cold (extracts and
writes every split) and warm (reads them). Prints the wall time of both runs,
their ratio, and the same for the extraction stage alone (the records'
``timings.extract_s``: decode + embed when cold, cache read when warm), since
the rest of a run (interpreter and torch start-up, probe training, bootstrap,
leaderboard) is the same in both runs and the cache cannot make it faster.

    python benchmarks/bench_cache.py [--encoder logmel] [--demo-size small] [--tasks all] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def bench(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.cli", *args], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def extract_seconds(out: Path) -> tuple[float, dict[str, set[str]]]:
    total, status = 0.0, {}
    seen = set()
    for f in sorted((out / "records").glob("*.json")):
        r = json.loads(f.read_text())
        if (r["encoder"], r["task"]) in seen:
            continue  # one extraction per encoder x task, shared by the seeds
        seen.add((r["encoder"], r["task"]))
        total += r["timings"]["extract_s"]
        status[r["task"]] = set(r["cache"].values())
    return total, status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default="logmel")
    ap.add_argument("--tasks", default="all")
    ap.add_argument("--demo-size", default="small")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--probe-grid", default="fast")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cache-bench-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "BENCH_CACHE_DIR": str(tmp / "cache")}
        env.pop("BENCH_DATA_ROOT", None)
        bench(["data", "demo", "--tasks", a.tasks, "--size", a.demo_size], env)
        common = ["run", "--encoder", a.encoder, "--tasks", a.tasks, "--demo-size", a.demo_size, "--seeds", a.seeds,
                  "--probe-grid", a.probe_grid, "--no-progress"]
        cold = bench(common + ["--out", str(tmp / "cold")], env)
        warm = bench(common + ["--out", str(tmp / "warm")], env)
        ex_cold, st_cold = extract_seconds(tmp / "cold")
        ex_warm, st_warm = extract_seconds(tmp / "warm")
    print(f"bench run --encoder {a.encoder} --tasks {a.tasks} --demo-size {a.demo_size} --seeds {a.seeds} "
          f"--probe-grid {a.probe_grid}  (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)")
    print(f"  tasks: {', '.join(sorted(st_cold))}; cache status cold {sorted(set().union(*st_cold.values()))}, "
          f"warm {sorted(set().union(*st_warm.values()))}")
    print(f"  whole run:        cold {cold:7.2f} s   warm {warm:7.2f} s   ratio {cold / warm:6.1f}x")
    ratio = ex_cold / max(ex_warm, 1e-9)
    print(f"  extraction stage: cold {ex_cold:7.2f} s   warm {ex_warm:7.2f} s   ratio {ratio:6.1f}x   (target >= 20x)")


if __name__ == "__main__":
    main()
