"""Warm vs cold `bench run` per built-in encoder on the demo tasks, and what a warm run still spends.

    python benchmarks/bench_warm.py --cache DIR [--encoders logmel,random,simclr,supervised,semisupcon]
        [--seeds 0,1,2] [--probe-grid default] [-O simclr:steps=20 ...] [--main] [--json out.json]

Targets (issues 15, 21): a warm rerun at least 20x faster than a cold one for every
built-in encoder on the four demo tasks; the warm main job (`bench run
--encoder semisupcon --tasks all`) in at most 1 s (issue 15: 3 s).

Per encoder, against the cache folder ``--cache`` (demo data and pretrained
checkpoints kept there between invocations; a missing checkpoint is trained
by a first, untimed run):

1. its embedding and probe entries are deleted (``bench cache clear --encoder``);
2. cold: the run (extraction of every split, every probe);
3. warm: the same run twice more; the faster counts.

Each run is a fresh process; wall time and CPU time (user + sys of the
process, from ``getrusage``) are reported, since the machine is shared: the
CPU time is what the code costs, the wall time what the load made of it.
``--main`` also times the warm main job (with the ``-O semisupcon:...`` options) and, in the same invocation, a bare
``python -c "import torch"``: the part of a warm run no cache removes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ENCODERS = "logmel,random,simclr,supervised,semisupcon"


def timed(cmd: list[str], env: dict[str, str], log: Path | None = None) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with (log.open("w") if log else open(os.devnull, "w")) as fh:
        code = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}" + (f"; see {log}" if log else ""))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load": round(os.getloadavg()[0], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="cache folder (demo data, checkpoints; kept)")
    ap.add_argument("--encoders", default=ENCODERS)
    ap.add_argument("--tasks", default="all")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--probe-grid", default="default")
    ap.add_argument("-O", "--option", action="append", default=[], help="passed to bench run")
    ap.add_argument("--main", action="store_true", help="also time the warm main job and `import torch`")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    env = {**os.environ, "BENCH_CACHE_DIR": str(a.cache)}
    env.pop("BENCH_DATA_ROOT", None)
    logs = a.cache / "bench-warm-logs"
    logs.mkdir(parents=True, exist_ok=True)
    bench = [sys.executable, "-m", "bench.cli"]
    report: dict = {"encoders": {}, "seeds": a.seeds, "probe_grid": a.probe_grid, "options": a.option}
    for enc in a.encoders.split(","):
        opts = [x for o in a.option if o.split(":", 1)[0] == enc or ":" not in o.split("=", 1)[0] for x in ("-O", o)]
        run = [*bench, "run", "--encoder", enc, "--tasks", a.tasks, "--seeds", a.seeds, "--probe-grid", a.probe_grid,
               "--no-progress", *opts]
        ckpts = set((a.cache / "checkpoints").glob("*.safetensors"))
        timed(run + ["--out", str(logs / f"{enc}-prepare")], env, logs / f"{enc}-prepare.txt")  # checkpoint, demo data
        trained = sorted(p.name for p in set((a.cache / "checkpoints").glob("*.safetensors")) - ckpts)
        timed([*bench, "cache", "clear", "--kind", "embeddings,probes", "--encoder", enc], env)
        cold = timed(run + ["--out", str(logs / f"{enc}-cold")], env, logs / f"{enc}-cold.txt")
        warm = min((timed(run + ["--out", str(logs / f"{enc}-warm{i}")], env, logs / f"{enc}-warm{i}.txt")
                    for i in range(2)), key=lambda r: r["wall_s"])
        row = {"cold": cold, "warm": warm, "wall_ratio": round(cold["wall_s"] / warm["wall_s"], 1),
               "cpu_ratio": round(cold["cpu_s"] / warm["cpu_s"], 1), "pretrained_now": trained}
        report["encoders"][enc] = row
        print(f"{enc:11s} cold {cold['wall_s']:7.1f} s wall {cold['cpu_s']:7.1f} s CPU | warm {warm['wall_s']:5.1f} s "
              f"wall {warm['cpu_s']:5.2f} s CPU | {row['wall_ratio']}x wall, {row['cpu_ratio']}x CPU "
              f"(load {cold['load']}/{warm['load']})", flush=True)
    if a.main:
        # the -O options scoped to semisupcon apply to the main job too (e.g. fewer pretraining steps on a
        # loaded machine: a warm run reuses the checkpoint whatever its steps)
        opts = [x for o in a.option if o.split(":", 1)[0] == "semisupcon" for x in ("-O", o)]
        job = [*bench, "run", "--encoder", "semisupcon", "--tasks", "all", "--no-progress", *opts]
        timed(job + ["--out", str(logs / "main-prepare")], env, logs / "main-prepare.txt")
        runs = [timed(job + ["--out", str(logs / f"main-warm{i}")], env) for i in range(3)]
        torch = [timed([sys.executable, "-c", "import torch"], env) for _ in range(3)]
        best = min(runs, key=lambda r: r["cpu_s"])
        report["main_job_warm"] = {"runs": runs, "import_torch": torch}
        print(f"warm main job: {best['wall_s']} s wall, {best['cpu_s']} s CPU (best of 3); `import torch` alone "
              f"{min(t['cpu_s'] for t in torch)} s CPU", flush=True)
    print(json.dumps(report, indent=1))
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
