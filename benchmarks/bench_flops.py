"""CPU efficiency of a pretraining step: achieved GFLOP/s against the machine's own matmul GFLOP/s.

    python benchmarks/bench_flops.py [--presets demo,paper] [--batch demo=32,paper=8] [--profile] [--json out.json]
    python benchmarks/bench_flops.py --device cuda --batch demo=256,paper=96 --mm 8192   # a GPU (not run yet)

For each SampleCNN preset, one training step as ``bench pretrain`` does it
(the batched augmentation, forward through backbone and projection head, the
SemiSupCon loss, backward, Adam; ``benchmarks/bench_step.py``'s step) on
synthetic views already in memory:

- its FLOPs, counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions
  and matrix products, forward and backward; elementwise ops, the FFTs of the
  augmentation and the optimizer are not counted, so the achieved figure is a
  lower bound of the work done);
- its wall time (median of ``--steps`` after warm-up), hence achieved GFLOP/s;
- the phases of the step timed apart (augmentation, forward + loss, backward,
  optimizer);

and, interleaved with those steps in the same run so a shared machine's load
hits both alike, the machine's measured peak: float32 ``torch.mm`` of
``--mm`` x ``--mm`` matrices with the same thread count, and a float32
``conv1d`` shaped like the network's widest layer (the kind of op that
dominates the count). ``--profile`` adds a ``torch.profiler`` table of the
operators where the step's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import build, make_step  # noqa: E402  (a sibling script, not a package)

from bench.augment import Augmenter  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clocked(fn, device: torch.device) -> tuple[float, float]:
    """(wall, process CPU) seconds of ``fn()``; CPU time counts every thread and is what a shared machine's
    load disturbs least."""
    sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - w0, time.process_time() - c0


def matmul_gflops(n: int, device: torch.device, reps: int = 5) -> tuple[float, float]:
    """(GFLOP per wall second, GFLOP per CPU second) of float32 n x n matrix products."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    wall, cpu = clocked(lambda: [torch.mm(a, b) for _ in range(reps)], device)
    return 2 * n**3 * reps / wall / 1e9, 2 * n**3 * reps / cpu / 1e9


def conv_gflops(batch: int, channels: int, length: int, device: torch.device, reps: int = 3) -> tuple[float, float]:
    x = torch.randn(batch, channels, length, device=device)
    w = torch.randn(channels, channels, 3, device=device)
    torch.nn.functional.conv1d(x, w, padding=1)
    wall, cpu = clocked(lambda: [torch.nn.functional.conv1d(x, w, padding=1) for _ in range(reps)], device)
    flops = 2 * batch * channels * channels * 3 * length * reps
    return flops / wall / 1e9, flops / cpu / 1e9


def count_flops(step, args) -> tuple[int, dict[str, int]]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step(*args)
    by_op = {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()}
    return fc.get_total_flops(), by_op


def phases(enc, model, opt, aug, views, labels, labeled, gen, device) -> dict[str, float]:
    """Seconds of each phase of one step, timed apart (CPU seconds on CPU, wall seconds on a GPU)."""
    def now() -> float:
        sync(device)
        return time.process_time() if device.type == "cpu" else time.perf_counter()

    t = [now()]
    x = aug(views, generator=gen)
    t.append(now())
    loss = enc.pretrain_loss(x, labels, labeled, model)
    t.append(now())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    t.append(now())
    opt.step()
    t.append(now())
    return dict(zip(("augment", "forward+loss", "backward", "adam"), (b - a for a, b in zip(t, t[1:]))))


def run_preset(name: str, batch: int, steps: int, mm: int, profile: bool, device: torch.device) -> dict:
    from bench_plugins import samplecnn

    p = samplecnn.preset(name)
    g = torch.Generator().manual_seed(0)
    views = (0.1 * torch.randn(batch, 2, p["window"], generator=g)).to(device)
    labels = (torch.rand(batch, 50, generator=g) < 0.1).float().to(device)
    labeled = (torch.arange(batch) < batch // 2).to(device)
    aug = Augmenter(p["sample_rate"])
    gen = torch.Generator(device=device).manual_seed(0)
    enc, model, opt = build(name, device, "fp32")
    step = make_step(enc, model, opt, aug, "fp32", device)
    args = (views, labels, labeled, gen)
    step(*args)  # warm-up (allocator, oneDNN primitives)
    flops, by_op = count_flops(step, args)
    widest = max(p["channels"])
    step_t, mm_g, conv_g, ph = [], [], [], []
    for _ in range(steps):  # interleaved: the machine's load hits the peak and the step alike
        mm_g.append(matmul_gflops(mm, device))
        conv_g.append(conv_gflops(2 * batch, widest, 243, device))
        step_t.append(clocked(lambda: step(*args), device))
        ph.append(phases(enc, model, opt, aug, *args, device=device))
    med = statistics.median
    wall, cpu = med(t[0] for t in step_t), med(t[1] for t in step_t)
    out = {
        "preset": name, "batch": batch, "views": 2, "threads": torch.get_num_threads(),
        "gflop_per_step": round(flops / 1e9, 2), "flops_by_op": by_op,
        "step_s": round(wall, 3), "step_cpu_s": round(cpu, 3),
        "achieved_gflops": round(flops / wall / 1e9, 2), "achieved_gflop_per_cpu_s": round(flops / cpu / 1e9, 2),
        "matmul_gflops": round(med(g[0] for g in mm_g), 1), "matmul_gflop_per_cpu_s": round(med(g[1] for g in mm_g), 1),
        "conv1d_gflops": round(med(g[0] for g in conv_g), 1),
        "conv1d_gflop_per_cpu_s": round(med(g[1] for g in conv_g), 1),
        "phases_cpu_s": {k: round(med(p_[k] for p_ in ph), 3) for k in ph[0]},
    }
    out["fraction_of_matmul"] = round(out["achieved_gflops"] / out["matmul_gflops"], 3)
    out["fraction_of_matmul_cpu"] = round(out["achieved_gflop_per_cpu_s"] / out["matmul_gflop_per_cpu_s"], 3)
    out["fraction_of_conv1d_cpu"] = round(out["achieved_gflop_per_cpu_s"] / out["conv1d_gflop_per_cpu_s"], 3)
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with prof(activities=acts) as pr:
            step(*args)
            sync(device)
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        out["profile"] = pr.key_averages().table(sort_by=key, row_limit=25)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="demo,paper")
    ap.add_argument("--batch", default="demo=32,paper=8", help="clips per step per preset (2 views each)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    ap.add_argument("--mm", type=int, default=1024, help="matrix size of the matmul peak (default 1024)")
    ap.add_argument("--profile", action="store_true", help="print a torch.profiler table per preset")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    from bench import allocator

    tuned = allocator.tune()  # as the CLI's compute verbs do (BENCH_MALLOC=default: glibc's own rule)
    device = torch.device(a.device)
    batches = dict(kv.split("=") for kv in a.batch.split(","))
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "load": os.getloadavg()[0], "allocator_tuned": tuned, "presets": {}}
    for name in a.presets.split(","):
        r = run_preset(name, int(batches.get(name, 8)), a.steps, a.mm, a.profile, device)
        report["presets"][name] = r
        print(f"{name}: batch {r['batch']}x2, {r['gflop_per_step']} GFLOP/step, {r['step_s']} s/step "
              f"({r['step_cpu_s']} CPU s) -> {r['achieved_gflops']} GFLOP/s; matmul {r['matmul_gflops']} GFLOP/s "
              f"({100 * r['fraction_of_matmul']:.0f}%). Per CPU second: step {r['achieved_gflop_per_cpu_s']}, matmul "
              f"{r['matmul_gflop_per_cpu_s']} ({100 * r['fraction_of_matmul_cpu']:.0f}%), conv1d "
              f"{r['conv1d_gflop_per_cpu_s']} ({100 * r['fraction_of_conv1d_cpu']:.0f}%); phases (CPU s) "
              f"{r['phases_cpu_s']}", flush=True)
        if a.profile:
            print(r.pop("profile"))
    report["load_after"] = os.getloadavg()[0]
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
