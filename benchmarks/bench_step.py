"""Training-step throughput of a SampleCNN preset: fp32 vs bf16 autocast vs torch.compile.

One step is what ``bench pretrain`` does per batch once the views are on the
device: the batched augmentation chain, the forward pass through backbone and
projection head, the SemiSupCon loss (half the batch labeled), backward and an
Adam update. Views are synthetic waveforms already on the device, so decoding
and cropping are left out (``bench_pretrain.py`` reports those as "data
clips/s"). Every mode runs in this one process, one after the other, with
warm-up steps first (``torch.compile`` compiles during its warm-up), and the
figure is the median over timed repeats; modes are interleaved round-robin so
a slow phase of a shared machine hits each of them.

    python benchmarks/bench_step.py --device cuda                  # paper preset, 96 x 2, all modes
    python benchmarks/bench_step.py --device cuda --modes fp32,bf16
    python benchmarks/bench_step.py --device cpu --preset demo --batch 8 --steps 2   # smoke run

Modes: ``fp32`` (the paper recipe), ``bf16`` (``torch.autocast`` bf16, as
``bench pretrain --bf16``), ``compile`` (``torch.compile`` of the network,
fp32), ``compile+bf16``. bf16 and compile are GPU options; on CPU only fp32 is
run unless ``--modes`` names others explicitly. Results go to stdout as a
table and, with ``--json PATH``, as JSON (GPU name, torch version, figures).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch

from bench.augment import Augmenter

MODES = ("fp32", "bf16", "compile", "compile+bf16")


def build(preset: str, device: torch.device, mode: str):
    from bench_plugins.ssl_encoders import SemiSupConEncoder

    enc = SemiSupConEncoder(preset=preset)
    enc.module.to(device).train()
    model = torch.compile(enc.module) if mode.startswith("compile") else enc.module
    opt = torch.optim.Adam(enc.module.parameters(), lr=1e-4)
    return enc, model, opt


def make_step(enc, model, opt, aug: Augmenter, mode: str, device: torch.device):
    bf16 = mode.endswith("bf16")

    def step(views: torch.Tensor, labels: torch.Tensor, labeled: torch.Tensor, gen: torch.Generator) -> float:
        x = aug(views, generator=gen)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = enc.pretrain_loss(x, labels, labeled, model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--preset", default="paper", help="SampleCNN preset (default: paper)")
    ap.add_argument("--batch", type=int, default=96, help="clips per step, 2 views each (default: 96)")
    ap.add_argument("--modes", default=None, help=f"comma-separated, from {', '.join(MODES)} "
                                                  "(default: all on GPU, fp32 on CPU)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per repeat (default: 10)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per mode (default: 3)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    from bench import allocator

    allocator.tune()  # as the CLI's compute verbs do (BENCH_MALLOC=default: glibc's own rule)

    device = torch.device(args.device)
    modes = args.modes.split(",") if args.modes else (list(MODES) if device.type == "cuda" else ["fp32"])
    bad = [m for m in modes if m not in MODES]
    if bad:
        ap.error(f"unknown mode(s) {bad}; known: {', '.join(MODES)}")
    from bench_plugins import samplecnn

    p = samplecnn.preset(args.preset)
    sr, window = p["sample_rate"], p["window"]
    g = torch.Generator().manual_seed(0)
    views = (0.1 * torch.randn(args.batch, 2, window, generator=g)).to(device)
    n_classes = 50
    labels = (torch.rand(args.batch, n_classes, generator=g) < 0.1).float().to(device)
    labeled = (torch.arange(args.batch) < args.batch // 2).to(device)
    aug = Augmenter(sr)
    gen = torch.Generator(device=device).manual_seed(0)

    steps = {}
    for mode in modes:
        enc, model, opt = build(args.preset, device, mode)
        steps[mode] = make_step(enc, model, opt, aug, mode, device)
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            loss = steps[mode](views, labels, labeled, gen)
        sync(device)
        if not torch.isfinite(loss):
            print(f"{mode}: non-finite loss after warm-up", file=sys.stderr)
            return 1
        print(f"{mode}: warm-up {args.warmup} steps {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for mode in modes:
            sync(device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                steps[mode](views, labels, labeled, gen)
            sync(device)
            times[mode].append(time.perf_counter() - t0)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {name}; torch {torch.__version__}; preset {args.preset} ({sr} Hz, {window} samples); "
          f"batch {args.batch} clips x 2 views; {args.steps} steps x {args.repeats} repeats per mode")
    print(f"{'mode':<14}{'s/step':>10}{'clips/s':>10}{'vs fp32':>9}")
    out = {"device": name, "torch": torch.__version__, "preset": args.preset, "batch": args.batch, "modes": {}}
    base = None
    for mode in modes:
        per_step = statistics.median(times[mode]) / args.steps
        cps = args.batch / per_step
        base = base or (cps if mode == "fp32" else None)
        ratio = f"{cps / base:.2f}x" if base else "-"
        print(f"{mode:<14}{per_step:>10.4f}{cps:>10.1f}{ratio:>9}")
        out["modes"][mode] = {"s_per_step": per_step, "clips_per_s": cps}
    if device.type == "cuda":
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
        print(f"peak GPU memory: {out['peak_memory_gb']:.2f} GiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
