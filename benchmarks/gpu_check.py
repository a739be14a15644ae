"""One prepared GPU check of the paper preset that fits a 15-minute device lease (issue #25).

    bash benchmarks/gpu_check.sh                       # on the GPU machine: offline install, then this script
    python benchmarks/gpu_check.py --out DIR           # this script alone (project already installed)
    python benchmarks/gpu_check.py --smoke --out DIR   # the same code on the CPU at a tiny size (< 1 min)

Sections, each in its own try/except (a failure is recorded with its message and
the next one runs):

1. ``step``: the paper-preset training step as ``bench pretrain`` does it once the
   views are on the device (the recipe's batched augmentation, forward, SemiSupCon
   loss, backward, Adam) in fp32, bf16 autocast, ``torch.compile`` and both:
   clips/s, the first step's seconds (compilation) and peak GPU memory; and
   ``reference``: the reference per-clip pipeline (each clip augmented in a
   DataLoader worker on the CPU cores, then the same step without augmentation).
2. ``augment``: the batched augmentation chain on the device against the per-clip
   one in DataLoader workers (augmentation only; target >= 5x on a GPU).
3. ``pretrain``: a short real ``bench pretrain --encoder semisupcon --preset paper``
   (subprocess) on demo data built on the machine (``bench data demo``), as many
   steps as fit its time slot (from the measured fp32 step): clips/s end to end
   (the data path included), the loss curve, no non-finite value, and the wall
   time of the preset's full recipe projected from that rate.
4. ``extract``: the paper preset's embedding throughput, model only (windows/s)
   and through the extraction stage on the demo data (tracks/s).

Every result is appended to ``--out``/results.jsonl (one JSON line, flushed) as
soon as it is measured, and the markdown table in ``--out``/table.md is rewritten
after each row, so a run cut short still returns what it measured. The table is
printed at the end. ``--budget-s`` (default 360) stops starting sections whose
estimated cost no longer fits, and records them as skipped. The compile modes run
last (their compilation is the least predictable cost); the table keeps the
logical order.

``--smoke`` runs the same code on the CPU with the demo preset, batch 2, one or
two steps per section, one DataLoader worker, NSynth-only tiny demo data and
``torch.compile(backend="aot_eager")`` (graph capture and AOT autograd without
Inductor's C++ code generation, which took 150 s for this model on the 2-core
development machine); tests/test_gpu_check.py runs it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
REPO = Path(__file__).resolve().parents[1]
MODES = ("fp32", "bf16", "compile", "compile+bf16")
#: order of the table (runs go in RUN_ORDER)
SECTIONS = ("env", "step", "reference", "augment", "pretrain", "extract")
#: import names of the project's dependencies, checked in the env row
MODULES = ("torch", "numpy", "pluggy", "sklearn", "pandas", "tabulate", "tqdm", "safetensors", "accelerate",
           "soundfile", "soxr", "julius", "mir_eval", "pedalboard", "platformdirs", "pretty_midi", "midirenderer",
           "mido", "datasets", "matplotlib")


@dataclass
class Size:
    preset: str = "paper"
    batch: int = 96
    warmup: int = 3
    steps: int = 10
    workers: int = 0  # 0: the CPU cores less two
    rounds: int = 2  # timed rounds of every worker in the per-clip pipelines
    aug_steps: int = 3
    aug_variants: tuple[str, ...] = ("official", "bench")
    demo_size: str = "tiny"
    demo_tasks: str = "all"
    pretrain_s: float = 60.0  # training seconds aimed at (steps derived from the fp32 step)
    pretrain_steps: int = 0  # fixed step count instead (smoke)
    pretrain_batch: int = 0  # 0: the recipe's
    extract_batch: int = 256
    extract_splits: tuple[str, ...] = ("train", "valid", "test")
    extract_workers: tuple[int, ...] = ()  # decode workers per extraction row; (): 2 (bench run's) and the cores
    threads: int = 0  # torch threads of this process; 0: torch's default
    compile_backend: str = "inductor"
    #: estimated seconds per section: a section starts only when this much budget is left
    cost: dict = field(default_factory=lambda: {"step:fp32": 30, "step:bf16": 25, "step:compile": 90,
                                                "step:compile+bf16": 90, "reference": 30, "augment": 30,
                                                "pretrain": 120, "extract": 40})


SMOKE = Size(preset="demo", batch=2, warmup=1, steps=1, workers=1, rounds=2, aug_steps=1, demo_tasks="nsynth_pitch",
             pretrain_steps=2, pretrain_batch=4, extract_batch=16, extract_splits=("test",), extract_workers=(2,),
             compile_backend="aot_eager", threads=1, cost={})


class Recorder:
    """Rows appended to results.jsonl as they come; table.md rewritten after each."""

    def __init__(self, out: Path, header: str) -> None:
        self.out, self.header, self.rows, self.t0 = out, header, [], time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.jsonl").write_text("")

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def add(self, row: dict) -> dict:
        row = {"t": round(self.elapsed(), 1), **row}
        self.rows.append(row)
        with open(self.out / "results.jsonl", "a") as f:
            f.write(json.dumps(row, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        (self.out / "table.md").write_text(self.table())
        print(f"[gpu_check {row['t']:6.1f} s] {row['section']} {row.get('name', '')}: {row['status']}: "
              f"{figure(row)}", file=sys.stderr, flush=True)
        return row

    def table(self) -> str:
        rank = {s: i for i, s in enumerate(SECTIONS)}
        rows = sorted(self.rows, key=lambda r: rank.get(r["section"], len(rank)))
        lines = [self.header, "", "| section | measurement | status | figure |", "|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['section']} | {r.get('name', '')} | {r['status']} | {figure(r)} |")
        return "\n".join(lines) + "\n"


def figure(r: dict) -> str:
    """The table's figure cell of a row (never raises: a row it cannot phrase is shown as its JSON)."""
    try:
        text = _figure(r)
    except (KeyError, TypeError, ValueError) as e:
        text = f"(unformatted, {type(e).__name__} {e}) " + json.dumps(
            {k: v for k, v in r.items() if k not in ("traceback", "loss_curve", "logged_clips_per_s")}, default=str)
    return text.replace("|", "/").replace("\n", " ")


def _figure(r: dict) -> str:
    if r["status"] == "skipped":
        return f"skipped: {r['reason']}"
    if r["status"] == "failed":
        return f"FAILED: {r['error']}"
    s = r["section"]
    if s == "env":
        return (f"{r['device']}; torch {r['torch']} (CUDA {r['cuda']}); Python {r['python']}; {r['cpus']} CPUs; "
                f"missing modules: {', '.join(r['missing']) or 'none'}")
    if s == "step":
        mem = f", peak GPU memory {r['peak_gib']:.2f} GiB" if r.get("peak_gib") is not None else ""
        vs = f", {r['vs_fp32']:.2f}x fp32" if r.get("vs_fp32") else ""
        return (f"{r['clips_per_s']:.1f} clips/s ({1e3 * r['s_per_step']:.1f} ms/step, batch {r['batch']} x 2 "
                f"views){vs}; first step {r['first_step_s']:.1f} s{mem}; {r.get('note', '')}").rstrip("; ")
    if s == "reference":
        vs = f"; batched fp32 step / reference {r['batched_vs_reference']:.2f}x" if r.get("batched_vs_reference") else ""
        return f"{r['clips_per_s']:.1f} clips/s, per-clip augmentation in {r['workers']} DataLoader workers{vs}"
    if s == "augment":
        return (f"batched on {r['device']} {r['batched_clips_per_s']:.1f} clips/s vs per-clip in {r['workers']} "
                f"workers {r['per_clip_clips_per_s']:.1f} clips/s: {r['ratio']:.2f}x (target >= 5x on a GPU)")
    if s == "pretrain":
        return (f"{r['steps_done']}/{r['steps_asked']} steps x {r['batch']} clips; end to end "
                f"{r['clips_per_s']:.1f} clips/s ({2 * r['clips_per_s']:.0f} views/s); loss "
                f"{r['loss_first']:.4f} -> {r['loss_last']:.4f}, all finite; process {r['wall_s']:.0f} s "
                f"(first step after {r['setup_s']:.0f} s){'; CUT at its time limit' if r['timed_out'] else ''}; "
                f"{r['recipe_steps']} recipe steps projected "
                f"{r['projected_h']:.2f} h (1 h needs {r['clips_per_s_for_1h']:.0f} clips/s)")
    if s == "extract" and r["name"] == "model":
        return f"{r['windows_per_s']:.1f} windows/s ({r['seconds_audio_per_s']:.0f} s of audio/s), batch {r['batch']}"
    if s == "extract":
        return (f"{r['tracks_per_s']:.2f} tracks/s, {r['windows_per_s']:.1f} windows/s ({r['tracks']} tracks, "
                f"{r['windows']} windows, {r['decode_workers']} decode workers, batch {r['batch']})")
    return json.dumps({k: v for k, v in r.items() if k not in ("section", "name", "status", "t")})


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ------------------------------------------------------------------ section 1: the training step
class StepBench:
    """The training step of a SemiSupCon SampleCNN preset on synthetic music-like views already in memory."""

    def __init__(self, size: Size, device) -> None:
        import torch

        from bench import plugins
        from bench_augment import synthetic_clips

        self.size, self.device = size, device
        probe = plugins.get_encoder("semisupcon", preset=size.preset)
        self.recipe, self.sr, self.window = probe.recipe(), probe.sample_rate, probe.window
        self.share = probe.label_spec().share
        b = size.batch
        g = torch.Generator().manual_seed(0)
        self.clips = synthetic_clips(b, self.recipe.views, self.window, self.sr, seed=0)
        self.views = self.clips.to(device)
        self.labels = (torch.rand(b, 50, generator=g) < 0.1).float().to(device)
        self.labeled = (torch.arange(b) < round(b * self.share)).to(device)

    def augmenter(self, variant: str | None = None):
        from bench.augment import Augmenter

        r = self.recipe
        return Augmenter(self.sr, severity=r.severity, p_apply=r.p_apply, variant=variant or r.augment_variant)

    def build(self, mode: str, augment: bool = True):
        """A fresh encoder, optimizer and step function for ``mode``."""
        import torch

        from bench import plugins

        enc = plugins.get_encoder("semisupcon", preset=self.size.preset).to(self.device)
        module = enc.training_module().train()
        model = torch.compile(module, backend=self.size.compile_backend) if mode.startswith("compile") else module
        opt = torch.optim.Adam(module.parameters(), lr=self.recipe.lr, weight_decay=self.recipe.weight_decay)
        aug = self.augmenter() if augment and self.recipe.augment else None
        bf16 = mode.endswith("bf16")
        gen = torch.Generator(device=self.device).manual_seed(0)

        def step(views):
            if aug is not None:
                with torch.no_grad():
                    views = aug(views, generator=gen)
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = enc.pretrain_loss(views, self.labels, self.labeled, model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.detach()

        return step

    def run_mode(self, mode: str) -> dict:
        import torch

        dev, n = self.device, self.size.steps
        free(dev)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        step = self.build(mode)
        losses = []
        t0 = time.perf_counter()
        losses.append(step(self.views))
        sync(dev)
        first = time.perf_counter() - t0
        for _ in range(self.size.warmup - 1):
            losses.append(step(self.views))
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(n):
            losses.append(step(self.views))
        sync(dev)
        dt = time.perf_counter() - t0
        values = torch.stack(losses).float().cpu()
        if not bool(torch.isfinite(values).all()):
            raise FloatingPointError(f"non-finite loss in mode {mode}: {values.tolist()}")
        row = {"s_per_step": dt / n, "clips_per_s": self.size.batch * n / dt, "first_step_s": first,
               "batch": self.size.batch, "steps": n, "warmup": self.size.warmup, "loss_last": float(values[-1]),
               "augment_variant": self.recipe.augment_variant if self.recipe.augment else None,
               "peak_gib": torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None}
        if mode.startswith("compile"):
            row["compile_backend"] = self.size.compile_backend
            row["note"] = f"torch.compile backend {self.size.compile_backend}"
        del step
        if mode.startswith("compile"):
            torch._dynamo.reset()  # drop the compiled graphs before the next mode
        return row


def per_clip_pipeline(clips, augmenter, workers: int, rounds: int, consume, device) -> tuple[float, int]:
    """(clips/s, clips timed) of per-clip augmentation in DataLoader workers, each batch handed to ``consume``.

    The reference approach: ``bench_augment.PerClipDataset`` augments one clip's views in
    ``__getitem__``. The clock starts once every worker delivered its first batch (start-up and
    the pipeline's fill left out) and runs for ``rounds`` more batches per worker."""
    from torch.utils.data import DataLoader

    from bench_augment import PerClipDataset

    b, w = clips.shape[0], max(1, workers)
    ds = PerClipDataset(clips, augmenter, length=b * w * (1 + rounds), seed=1)
    loader = DataLoader(ds, batch_size=b, shuffle=False, num_workers=workers, pin_memory=device.type == "cuda",
                        timeout=300 if workers else 0)
    t_start, timed = None, 0
    for i, batch in enumerate(loader):
        consume(batch.to(device, non_blocking=True))
        if i + 1 == w:
            sync(device)
            t_start = time.perf_counter()
        elif i + 1 > w:
            timed += b
    sync(device)
    return timed / (time.perf_counter() - t_start), timed


def section_reference(sb: StepBench, size: Size, fp32_row: dict | None) -> dict:
    step = sb.build("fp32", augment=False)  # the workers did the augmentation
    workers = size.workers
    cps, timed = per_clip_pipeline(sb.clips, sb.augmenter(), workers, size.rounds, step, sb.device)
    row = {"clips_per_s": cps, "clips_timed": timed, "workers": workers, "batch": size.batch,
           "augment_variant": sb.recipe.augment_variant}
    if fp32_row and fp32_row["status"] == "ok":
        row["batched_vs_reference"] = fp32_row["clips_per_s"] / cps
    return row


# ------------------------------------------------------------------ section 2: augmentation alone
def section_augment(sb: StepBench, size: Size, variant: str) -> dict:
    import torch

    aug, dev = sb.augmenter(variant), sb.device
    g = torch.Generator(device=dev).manual_seed(2)
    aug(sb.views, generator=g)  # warm-up (FFT plans, kernels, allocator)
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(size.aug_steps):
        out = aug(sb.clips.to(dev), generator=g)  # the host-to-device copy included, as in the trainer
    sync(dev)
    batched = size.batch * size.aug_steps / (time.perf_counter() - t0)
    if not bool(torch.isfinite(out).all()):
        raise FloatingPointError(f"non-finite output of the batched {variant} chain")
    per_clip, timed = per_clip_pipeline(sb.clips, aug, size.workers, size.rounds, lambda x: None, dev)
    return {"batched_clips_per_s": batched, "per_clip_clips_per_s": per_clip, "ratio": batched / per_clip,
            "workers": size.workers, "device": dev.type, "batch": size.batch, "per_clip_timed": timed}


# ------------------------------------------------------------------ sections 3 and 4: pretraining, extraction
def bench_env(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_DATA_ROOT", "BENCH_STRICT_PLUGINS")}
    env.update(BENCH_CACHE_DIR=str(work / "cache"), BENCH_CONFIG=str(work / "no-config.toml"), HF_HUB_OFFLINE="1",
               PYTHONUNBUFFERED="1")
    return env


def bench_cli(args: list[str], work: Path, log: Path, timeout: float) -> tuple[int | None, float]:
    """Run ``python -m bench.cli ARGS``; (exit code or None on timeout, seconds). Output appended to ``log``."""
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ bench {' '.join(args)}\n")
        f.flush()
        proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *args], stdout=f, stderr=subprocess.STDOUT,
                                env=bench_env(work), cwd=work)
        try:
            rc = proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
    return rc, time.perf_counter() - t0


def tail(path: Path, n: int = 1500) -> str:
    return path.read_text(errors="replace")[-n:] if path.is_file() else ""


class Demo:
    """Demo data built once per run under the work folder (``bench data demo --out``)."""

    def __init__(self, size: Size, work: Path) -> None:
        self.size, self.work, self.root, self.seconds = size, work, work / "demo", None

    def get(self, deadline: float) -> Path:
        """The demo data root, built on the first call (``deadline``: ``time.perf_counter()`` seconds)."""
        if self.seconds is None:
            timeout = max(30.0, (deadline - time.perf_counter()) / 2)
            args = ["data", "demo", "--size", self.size.demo_size, "--tasks", self.size.demo_tasks,
                    "--out", str(self.root)]
            rc, self.seconds = bench_cli(args, self.work, self.work / "demo.log", timeout)
            if rc != 0:
                self.seconds = None
                raise RuntimeError(f"bench data demo exited {rc}: {tail(self.work / 'demo.log', 600)}")
        return self.root


def section_pretrain(size: Size, device, demo: Demo, work: Path, out: Path, deadline: float,
                     fp32_row: dict | None) -> dict:
    from bench import plugins

    root = demo.get(deadline)
    recipe = plugins.get_encoder("semisupcon", preset=size.preset).recipe()
    batch = size.pretrain_batch or recipe.batch_size
    if size.pretrain_steps:
        steps, how = size.pretrain_steps, "fixed (smoke)"
    elif fp32_row and fp32_row["status"] == "ok":
        # the data path and the per-step loss check cost more than the bare step: aim at 1.5x its time
        steps = int(size.pretrain_s / (1.5 * fp32_row["s_per_step"] * batch / fp32_row["batch"]))
        steps, how = max(20, min(steps, 20_000)), f"{size.pretrain_s:.0f} s / (1.5 x measured fp32 step)"
    else:
        steps, how = 100, "default (no fp32 step measured)"
    run_dir = work / "pretrain-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    args = ["pretrain", "--encoder", "semisupcon", "--preset", size.preset, "--data-root", str(root),
            "--steps", str(steps), "--log-every", str(max(1, steps // 30)), "--checkpoint-every", str(steps),
            "--out", str(work / "pretrain.safetensors"), "--run-dir", str(run_dir), "--no-resume",
            "--no-progress", "--device", str(device)]
    if size.pretrain_batch:
        args += ["--batch-size", str(batch)]
    if size.threads:
        args += ["--threads", str(size.threads)]
    log = work / "pretrain.log"
    launched = time.time()
    # a slower data path than guessed is cut at twice the aimed time (what was logged is still read)
    timeout = min(deadline - time.perf_counter() - 10, 2 * size.pretrain_s + 60)
    rc, wall = bench_cli(args, work, log, timeout=timeout)
    shutil.copy(log, out / "pretrain.log")
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        raise RuntimeError(f"no metrics log (exit {rc}): {tail(log)}")
    shutil.copy(metrics, out / "pretrain-metrics.jsonl")
    events = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    train = [e for e in events if e.get("event") == "train"]
    bad = [e for e in events if e.get("event") == "nan"] + [e for e in train if not math.isfinite(e["loss"])]
    if bad:
        raise FloatingPointError(f"non-finite loss: {bad[0]}")
    if rc not in (0, None) or len(train) < 2:
        raise RuntimeError(f"bench pretrain exited {rc} after {len(train)} logged steps: {tail(log)}")
    start = next((e for e in events if e.get("event") == "start"), {})
    # end to end over the logged interval after the first line (which holds the first step's set-up)
    a, b = train[0], train[-1]
    cps = batch * (b["step"] - a["step"]) / (b["time"] - a["time"])
    stride = max(1, len(train) // 40)
    return {"steps_asked": steps, "steps_done": b["step"], "steps_rule": how, "batch": batch,
            "clips_per_s": cps, "loss_first": a["loss"], "loss_last": b["loss"],
            "loss_curve": [[e["step"], round(e["loss"], 5)] for e in train[::stride]],
            "logged_clips_per_s": [round(e["clips_per_s"], 1) for e in train],
            "wall_s": wall, "setup_s": a["time"] - launched, "start_event_s": start["time"] - launched,
            "timed_out": rc is None, "demo_build_s": demo.seconds, "demo": f"{size.demo_size}: {size.demo_tasks}",
            "recipe_steps": recipe.steps, "projected_h": recipe.steps * recipe.batch_size / cps / 3600,
            "clips_per_s_for_1h": recipe.steps * recipe.batch_size / 3600, "device": start.get("device"),
            "torch_threads": start.get("torch_threads")}


def section_extract_model(size: Size, device) -> dict:
    import torch

    from bench import plugins

    enc = plugins.get_encoder("random", preset=size.preset).to(device).eval()
    x = 0.1 * torch.randn(size.extract_batch, enc.window, generator=torch.Generator().manual_seed(3))
    x = x.to(device)
    reps = max(2, size.steps)
    with torch.no_grad():
        enc.embed(x)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            out = enc.embed(x)
        sync(device)
    dt = time.perf_counter() - t0
    if not bool(torch.isfinite(out).all()):
        raise FloatingPointError("non-finite embeddings")
    wps = size.extract_batch * reps / dt
    return {"windows_per_s": wps, "seconds_audio_per_s": wps * enc.window / enc.sample_rate,
            "batch": size.extract_batch}


def section_extract_tracks(size: Size, device, demo: Demo, deadline: float, workers: int) -> dict:
    from bench import plugins
    from bench.extract import extract

    root = demo.get(deadline)
    items, tasks = [], []
    for name in plugins.tasks().names():
        if size.demo_tasks != "all" and name not in size.demo_tasks.split(","):
            continue
        task = plugins.get_task(name)
        for split in size.extract_splits:
            items += task.items(split, root).items
        tasks.append(name)
    enc = plugins.get_encoder("random", preset=size.preset).to(str(device)).eval()
    embs = extract(enc, items, device=str(device), batch_size=size.extract_batch, workers=workers, progress=False)
    return {"tracks_per_s": len(embs.items) / embs.seconds, "windows_per_s": embs.windows / embs.seconds,
            "tracks": len(embs.items), "windows": embs.windows, "skipped": len(embs.skipped),
            "seconds": embs.seconds, "decode_workers": workers, "batch": size.extract_batch, "tasks": tasks,
            "splits": list(size.extract_splits)}


# ------------------------------------------------------------------ driver
def env_row(device) -> dict:
    import importlib.util

    import torch

    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or 'cpu'})"
    return {"section": "env", "name": "machine", "status": "ok", "device": name, "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
            "python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(), "missing": missing,
            "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
            "cudnn_benchmark": torch.backends.cudnn.benchmark, "argv": sys.argv[1:],
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for results.jsonl, table.md and the pretraining logs")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (the test suite's run)")
    ap.add_argument("--budget-s", type=float, default=360.0, help="wall seconds for the whole run (default 360)")
    ap.add_argument("--device", default=None, help="default: cuda when there is one (cpu with --smoke)")
    ap.add_argument("--sections", default=",".join(SECTIONS[1:]), help=f"subset of {', '.join(SECTIONS[1:])}")
    ap.add_argument("--modes", default=",".join(MODES), help=f"training-step modes, from {', '.join(MODES)}")
    ap.add_argument("--batch", type=int, default=None, help="clips per step (default: 96; 2 with --smoke)")
    ap.add_argument("--steps", type=int, default=None, help="timed training steps per mode (default: 10; 1 with --smoke)")
    ap.add_argument("--workers", type=int, default=None,
                    help="DataLoader workers of the per-clip pipelines (default: CPU cores less two; 1 with --smoke)")
    ap.add_argument("--demo-size", choices=("tiny", "small"), default=None, help="demo data (default tiny)")
    ap.add_argument("--pretrain-s", type=float, default=None, help="training seconds aimed at (default 60)")
    ap.add_argument("--compile-backend", default=None, help="default inductor (aot_eager with --smoke)")
    ap.add_argument("--work", default=None, help="scratch folder (demo data, caches); default: a temporary one")
    args = ap.parse_args(argv)

    from bench import allocator

    allocator.tune()  # as the CLI's compute verbs do, before torch allocates
    import torch

    size = SMOKE if args.smoke else Size()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not args.smoke else "cpu"))
    if device.type == "cpu" and not args.smoke and args.device is None:
        print("gpu_check: no CUDA device here. Run with --smoke for the CPU check at a tiny size, or "
              "--device cpu to force the full size on the CPU.", file=sys.stderr)
        return 2
    cores = len(os.sched_getaffinity(0))
    if size.threads:  # smoke: one thread, so a shared machine's load does not stall a thread team
        torch.set_num_threads(size.threads)
    size = replace(size, workers=args.workers if args.workers is not None else (size.workers or max(1, cores - 2)),
                   batch=args.batch or size.batch, steps=args.steps or size.steps, demo_size=args.demo_size or size.demo_size,
                   pretrain_s=args.pretrain_s or size.pretrain_s,
                   compile_backend=args.compile_backend or size.compile_backend)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [s for s in sections if s not in SECTIONS[1:]] + [m for m in modes if m not in MODES]
    if unknown:
        ap.error(f"unknown section(s) or mode(s): {unknown}")
    out = Path(args.out)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    env = env_row(device)
    header = (f"gpu_check {'--smoke ' if args.smoke else ''}on {env['device']}, torch {env['torch']}, {env['date']}; "
              f"preset {size.preset}, batch {size.batch} clips x 2 views, budget {args.budget_s:.0f} s")
    rec = Recorder(out, header)
    deadline = rec.t0 + args.budget_s
    rec.add(env)
    sb_box: dict = {}
    demo = Demo(size, work)

    def sb() -> StepBench:
        if "sb" not in sb_box:
            sb_box["sb"] = StepBench(size, device)
        return sb_box["sb"]

    def found(section: str, name: str) -> dict | None:
        return next((r for r in rec.rows if r["section"] == section and r.get("name") == name), None)

    plan = []  # (section, name, cost key, fn)
    if "step" in sections:
        plan += [("step", m, f"step:{m}", lambda m=m: sb().run_mode(m)) for m in modes if not m.startswith("compile")]
    if "reference" in sections:
        plan.append(("reference", "per-clip DataLoader + fp32 step", "reference",
                     lambda: section_reference(sb(), size, found("step", "fp32"))))
    if "augment" in sections:
        plan += [("augment", v, "augment", lambda v=v: section_augment(sb(), size, v)) for v in size.aug_variants]
    if "pretrain" in sections:
        plan.append(("pretrain", f"bench pretrain --preset {size.preset}", "pretrain",
                     lambda: section_pretrain(size, device, demo, work, out, deadline, found("step", "fp32"))))
    if "extract" in sections:
        plan.append(("extract", "model", "extract", lambda: section_extract_model(size, device)))
        for w in size.extract_workers or dict.fromkeys((2, max(1, cores - 2))):  # bench run's default, the cores
            plan.append(("extract", f"tracks, decode workers={w}", "extract",
                         lambda w=w: section_extract_tracks(size, device, demo, deadline, w)))
    if "step" in sections:  # compilation last: the least predictable cost
        plan += [("step", m, f"step:{m}", lambda m=m: sb().run_mode(m)) for m in modes if m.startswith("compile")]

    for section, name, key, fn in plan:
        left, need = args.budget_s - rec.elapsed(), size.cost.get(key, 0)
        if left < need:
            rec.add({"section": section, "name": name, "status": "skipped",
                     "reason": f"budget: {left:.0f} s of {args.budget_s:.0f} s left, this needs about {need} s"})
            continue
        t0 = time.perf_counter()
        try:
            row = {"section": section, "name": name, "status": "ok", **fn()}
        except Exception as e:  # a section's failure is recorded and the next one runs
            row = {"section": section, "name": name, "status": "failed",
                   "error": f"{type(e).__name__}: {str(e)[:800]}".replace("\n", " "),
                   "traceback": traceback.format_exc()[-3000:]}
        row["seconds"] = round(time.perf_counter() - t0, 2)
        if section == "step" and row["status"] == "ok" and name != "fp32" and found("step", "fp32"):
            base = found("step", "fp32")
            if base["status"] == "ok":
                row["vs_fp32"] = row["clips_per_s"] / base["clips_per_s"]
        rec.add(row)
        free(device)

    table = rec.table()
    print(table)
    failed = [f"{r['section']} {r.get('name', '')}" for r in rec.rows if r["status"] != "ok"]
    print(f"not measured: {', '.join(failed)}" if failed else "every section measured", flush=True)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
