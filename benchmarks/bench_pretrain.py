"""Time demo-preset pretraining of semisupcon, simclr and supervised (target: <= 3 min each on 2 cores).

    python benchmarks/bench_pretrain.py                   # all three, demo preset, demo data
    python benchmarks/bench_pretrain.py --encoders simclr --steps 20

Each encoder runs in its own subprocess (so peak RSS is its own) with a fresh
cache folder, and reports:

- wall: total seconds of the pretraining call (pool indexing, decoding the
  pool into the audio cache, training, checkpoints);
- decode: seconds spent building the audio cache;
- data clips/s: batches assembled from the decoded pool (crop + labels),
  no network;
- step clips/s: full training steps (data + augmentation + forward +
  backward + Adam), from the metrics log;
- peak RSS of the process.

Data: the demo data of the built-in tasks (mtat, gtzan, giantsteps_key,
nsynth_pitch) that are registered. When ``mtat`` is not registered (a checkout
without the task plugins), a synthetic multilabel task ("synthetic_tags":
harmonic tones with noise, 10 s clips, 240 train clips) stands in as labeled
pool and unlabeled pool, and the output says so.
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

ENCODERS = ("semisupcon", "simclr", "supervised")


def synthetic_task_module(root: Path):
    """Register an in-process multilabel task with generated WAVs under ``root``."""
    import numpy as np
    import soundfile as sf

    from bench import hookimpl, plugins
    from bench.task import Item, Split, Task

    class SyntheticTags(Task):
        name = "synthetic_tags"
        kind = "multilabel"
        dataset_dirs = ("synthetic_tags",)

        def classes(self, data_root):
            return [f"tag{i}" for i in range(10)]

        def items(self, split, data_root):
            out = Split(split)
            for line in (Path(data_root) / "synthetic_tags" / f"{split}.tsv").read_text().splitlines():
                tid, tags = line.split("\t")
                out.items.append(Item(tid, str(Path(data_root) / "synthetic_tags" / f"{tid}.wav"),
                                      tuple(int(t) for t in tags.split(","))))
            return out

    folder = root / "synthetic_tags"
    if not (folder / "test.tsv").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        sr, seconds = 16000, 10
        t = np.arange(sr * seconds) / sr
        for split, n in (("train", 240), ("valid", 30), ("test", 30)):
            rows = []
            for i in range(n):
                tags = sorted(set(rng.choice(10, size=rng.integers(1, 4), replace=False).tolist()))
                x = sum(np.sin(2 * np.pi * 110 * (k + 1) * t * (1 + 0.01 * k)) for k in tags) / len(tags)
                x = 0.3 * x + 0.05 * rng.standard_normal(len(t))
                sf.write(str(folder / f"{split}{i:04d}.wav"), x.astype(np.float32), sr)
                rows.append(f"{split}{i:04d}\t{','.join(map(str, tags))}")
            (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n")

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register("synthetic_tags", SyntheticTags)

    plugins.load_plugins()
    plugins.pm.register(Plugin(), name="bench-synthetic")
    plugins.invalidate()


def run_one(name: str, steps: int | None, data_batches: int) -> dict:
    """Pretrain one encoder in this process and measure it (called in a subprocess)."""
    from bench import plugins
    from bench.config import DataRoots, cache_dir
    from bench.pretrain import AudioStore, BatchSampler, build_pools, plan_pools, pretrain
    from bench.run import split_options

    data_roots = DataRoots()
    registered = set(plugins.tasks().names())
    options: dict = {}
    note = "demo data of: " + ", ".join(t for t in ("mtat", "gtzan", "giantsteps_key", "nsynth_pitch") if t in registered)
    if "mtat" not in registered:
        root = cache_dir() / "synthetic-data"
        synthetic_task_module(root)
        data_roots = DataRoots(per_task={"synthetic_tags": str(root)})
        options = {"label_task": "synthetic_tags", "unlabeled_tasks": ("synthetic_tags",)}
        if name == "simclr":
            options.pop("label_task")
        if name == "supervised":
            options.pop("unlabeled_tasks")
        note = "SYNTHETIC stand-in (mtat not registered in this checkout): synthetic_tags, 240 x 10 s train clips"
    options, recipe_options = split_options(options)
    encoder = plugins.get_encoder(name, **options)
    recipe = encoder.recipe().replace(**recipe_options, **({"steps": steps} if steps else {}))

    t0 = time.perf_counter()
    result = pretrain(encoder, data_roots=data_roots, run_dir=cache_dir() / f"run-{name}", quiet=True,
                      recipe=recipe, cache_dir=cache_dir())
    wall = time.perf_counter() - t0
    starts = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [e for e in starts if e["event"] == "train"]
    step_rate = sum(e["clips_per_s"] for e in train[1:]) / max(1, len(train[1:])) if len(train) > 1 else (
        train[0]["clips_per_s"] if train else float("nan"))

    # decode time: rebuild the audio cache in a fresh folder; data-only rate from the sampler
    spec = encoder.label_spec()
    pools = build_pools(plan_pools(spec, recipe, data_roots), data_roots, seed=recipe.seed)
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        store = AudioStore(pools.labeled + pools.unlabeled, encoder.sample_rate, Path(tmp))
        decode = time.perf_counter() - t1
        sampler = BatchSampler(pools, store, batch_size=recipe.batch_size, labeled_share=spec.share,
                               views=recipe.views, window=encoder.window, seed=1)
        t2 = time.perf_counter()
        for s in range(data_batches):
            sampler.batch(s)
        data_rate = data_batches * recipe.batch_size / (time.perf_counter() - t2)
    return {
        "encoder": name, "steps": result.steps, "batch": recipe.batch_size, "views": recipe.views,
        "wall_s": round(wall, 1), "decode_s": round(decode, 1), "data_clips_per_s": round(data_rate, 1),
        "step_clips_per_s": round(step_rate, 2), "final_loss": round(result.final_loss, 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pool": f"{result.record['pools']['labeled']} labeled / {result.record['pools']['unlabeled']} unlabeled",
        "augment": recipe.augment, "data": note,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", default=",".join(ENCODERS))
    ap.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    ap.add_argument("--data-batches", type=int, default=50)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args.steps, args.data_batches)))
        return 0
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus")
    rows = []
    for name in args.encoders.split(","):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "BENCH_CACHE_DIR": cache}
            cmd = [sys.executable, __file__, "--one", name, "--data-batches", str(args.data_batches)]
            if args.steps:
                cmd += ["--steps", str(args.steps)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
            if out.returncode or not line:
                print(f"{name}: failed\n{out.stderr[-3000:]}")
                continue
            rows.append(json.loads(line[0][7:]))
            print(json.dumps(rows[-1]), flush=True)
    if rows:
        from tabulate import tabulate

        keys = ["encoder", "steps", "batch", "views", "wall_s", "decode_s", "data_clips_per_s", "step_clips_per_s",
                "peak_rss_mib", "final_loss", "pool", "augment"]
        print(tabulate([[r[k] for k in keys] for r in rows], headers=keys, tablefmt="github"))
        print("data:", rows[0]["data"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
