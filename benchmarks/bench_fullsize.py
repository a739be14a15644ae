"""Full-size MagnaTagATune with logmel: cold and warm `bench run`, 1 and 2 processes, against pure decoding.

    python benchmarks/bench_fullsize.py --work /tmp/fullsize [--clips 25863] [--procs 1,2] [--json out.json]

The data root is MTAT-shaped: ``magnatagatune/annotations_final.csv`` (clip_id,
188 tag columns, mp3_path; tab-separated and quoted like the release) and
``--clips`` MP3s of 29.1 s, 16 kHz mono, 32 kbit/s CBR spread over the folders
0..f (train 0-b, valid c, test d-f, as the real split). Cheaply: 16 distinct
clips (tone mixtures with noise) are encoded once and **hard-linked** under
every clip name, so writing 25,863 clips takes seconds and no disk. Caveat:
every decode then reads from the page cache; real clips on a cold disk add
the read time (3 GB), which a run and a pure decode pay alike. The
fingerprint still hashes every path (its memo is per path). Every clip has at
least one of the 50 most frequent tags, so all of them are used.

Measured, in one invocation (compare ratios; the machine is shared):

1. decode-only: every file decoded and windowed as the extraction does
   (:func:`bench.extract._decode`, 2 threads), with no model, in 1 process and
   in 2 processes (half the files each): the floor of a cold run;
2. for each process count: a cold `bench run --encoder logmel --tasks mtat
   --seeds 0 --probe-grid fast` (empty cache), then the same command warm;
   ``accelerate launch --num_processes 2 --cpu`` for 2 processes. Wall time,
   tracks/s, peak RSS (sum over the process tree, and the largest single
   process, sampled every 0.2 s), cache size on disk;
3. the load average before and after each step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MTAT_CLIPS = 25_863
SR, SECONDS, DISTINCT, N_TAGS = 16000, 29.1, 16, 188
FOLDERS = "0123456789abcdef"


def write_root(root: Path, n: int) -> list[Path]:
    """The MTAT-shaped data root (kept between invocations when it already has ``n`` clips)."""
    import numpy as np
    import soundfile as sf

    base = root / "magnatagatune"
    csv = base / "annotations_final.csv"
    if csv.is_file() and sum(1 for _ in csv.open()) == n + 1:
        return sorted(base.glob("*/*.mp3"))
    shutil.rmtree(base, ignore_errors=True)
    src = root / "distinct"
    src.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(SECONDS * SR)) / SR
    clips = []
    for k in range(DISTINCT):
        x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in rng.uniform(80, 4000, 4)) + 0.05 * rng.standard_normal(len(t))
        p = src / f"clip{k}.mp3"
        # compression level 0.84 with a constant bit rate is 32 kbit/s at 16 kHz mono (libsndfile/LAME)
        sf.write(str(p), x.astype(np.float32), SR, format="MP3", compression_level=0.84, bitrate_mode="CONSTANT")
        clips.append(p)
    tags = [f"tag{i:03d}" for i in range(N_TAGS)]
    lines = ["\t".join(f'"{c}"' for c in ["clip_id", *tags, "mp3_path"])]
    files = []
    for i in range(n):
        rel = f"{FOLDERS[i % 16]}/artist_{i // 40:04d}-album-{i % 40:02d}-title_{i}-30-59.mp3"
        dest = base / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(clips[i % DISTINCT], dest)
        files.append(dest)
        row = (rng.random(N_TAGS) < np.linspace(0.12, 0.002, N_TAGS)).astype(int)
        row[rng.integers(0, 50)] = 1  # at least one of the top-50 tags
        lines.append("\t".join([f'"{i}"', *(f'"{v}"' for v in row), f'"{rel}"']))
    csv.write_text("\n".join(lines) + "\n")
    return files


def _decode_files(paths: list[str]) -> int:
    """Decode and window ``paths`` as logmel's extraction does, 2 threads, no model; the number decoded."""
    from bench.extract import _decode
    from bench.task import Item

    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda p: _decode(Item(p, p, 0), SR, 48000, 64)[1] is not None, paths))
    return sum(got)


def decode_only(files: list[Path], procs: int) -> tuple[float, float]:
    """(wall, CPU) seconds to decode every file in ``procs`` processes (each 2 threads)."""
    paths = [str(p) for p in files]
    import resource

    t0 = time.perf_counter()
    if procs == 1:
        c0 = resource.getrusage(resource.RUSAGE_SELF)
        _decode_files(paths)
        c1 = resource.getrusage(resource.RUSAGE_SELF)
    else:
        from multiprocessing import get_context

        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        with get_context("spawn").Pool(procs) as pool:
            pool.map(_decode_files, [paths[r::procs] for r in range(procs)])
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - t0, (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)


class RssSampler:
    """Peak RSS of a process tree: the sum over its processes and the largest one."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak_sum = self.peak_one = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                rss = []
                for p in procs:
                    try:
                        rss.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                self.peak_sum = max(self.peak_sum, sum(rss))
                self.peak_one = max(self.peak_one, max(rss, default=0))
            except psutil.Error:
                pass
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def bench_run(root: Path, cache: Path, out: Path, procs: int, log: Path, device: str = "cpu") -> dict:
    args = ["-m", "bench.cli", "run", "--encoder", "logmel", "--tasks", "mtat", "--data-root", str(root),
            "--seeds", "0", "--probe-grid", "fast", "--no-progress", "--device", device, "--out", str(out)]
    if procs == 1:
        cmd = [sys.executable, *args]
    else:
        accelerate = str(Path(sys.executable).parent / "accelerate")
        cmd = [accelerate, "launch", "--multi_gpu" if device.startswith("cuda") else "--cpu", "--num_processes",
               str(procs), "--num_machines", "1",
               "--num_cpu_threads_per_process", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", "29561", *args]
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache)}
    import resource

    load0 = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        rss = RssSampler(proc.pid)
        code = proc.wait()
        rss.stop()
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    if code != 0:
        raise SystemExit(f"bench run failed ({code}); see {log}")
    rec = json.loads(next((out / "records").glob("*.json")).read_text())
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_rss_sum_mb": round(rss.peak_sum / 2**20), "peak_rss_max_mb":
            round(rss.peak_one / 2**20), "extract_s": rec["timings"]["extract_s"], "probe_s": rec["timings"]["probe_s"],
            "tracks": sum(rec["data"]["tracks"].values()), "cache": rec["cache"], "probe_cache": rec["probe"]["cache"],
            # a warm rerun of the same command reuses the record (bench.run_memo): its timings are the cold run's
            "reused": "reused" in rec,
            "load": [round(load0, 1), round(os.getloadavg()[0], 1)]}


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="folder for the data root, caches and outputs (kept)")
    ap.add_argument("--clips", type=int, default=MTAT_CLIPS, help=f"clips to write (default {MTAT_CLIPS})")
    ap.add_argument("--procs", default="1,2", help="process counts to run (default 1,2)")
    ap.add_argument("--device", default="cpu", help="device of the runs: cpu (default) or cuda (one GPU per process)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-fullsize-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    files = write_root(work / "root", args.clips)
    print(f"data root {work / 'root'}: {len(files)} clips ({DISTINCT} distinct, hard-linked), "
          f"{sum(p.stat().st_size for p in files[:DISTINCT]) / DISTINCT / 1e3:.0f} KB each, "
          f"written in {time.perf_counter() - t0:.1f} s", flush=True)
    report: dict = {"clips": len(files), "cpus": os.cpu_count(), "runs": {}, "decode_only": {}}
    for n in map(int, args.procs.split(",")):
        load0 = os.getloadavg()[0]
        secs, cpu = decode_only(files, n)
        report["decode_only"][n] = {"wall_s": round(secs, 1), "cpu_s": round(cpu, 1),
                                    "tracks_per_s": round(len(files) / secs, 1),
                                    "load": [round(load0, 1), round(os.getloadavg()[0], 1)]}
        print(f"decode only, {n} process(es): {secs:.1f} s, {len(files) / secs:.1f} tracks/s", flush=True)
        cache = work / f"cache-{n}"
        shutil.rmtree(cache, ignore_errors=True)
        for phase in ("cold", "warm"):
            out = work / f"out-{n}-{phase}"
            shutil.rmtree(out, ignore_errors=True)
            r = bench_run(work / "root", cache, out, n, work / f"log-{n}-{phase}.txt", args.device)
            r["tracks_per_s"] = round(len(files) / r["wall_s"], 1)
            r["vs_decode_only"] = round(r["wall_s"] / secs, 2)
            r["cpu_vs_decode_only"] = round(r["cpu_s"] / cpu, 2)
            r["cache_mb"] = {k: round(du(cache / k) / 2**20, 1) for k in ("embeddings", "probes")}
            report["runs"][f"{n}-{phase}"] = r
            print(f"{phase} run, {n} process(es): {json.dumps(r)}", flush=True)
    runs = report["runs"]
    if "1-cold" in runs and "2-cold" in runs:
        report["speedup_2_vs_1_cold"] = round(runs["1-cold"]["wall_s"] / runs["2-cold"]["wall_s"], 2)
    for n in map(int, args.procs.split(",")):
        report[f"warm_vs_cold_{n}"] = round(runs[f"{n}-cold"]["wall_s"] / runs[f"{n}-warm"]["wall_s"], 1)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
