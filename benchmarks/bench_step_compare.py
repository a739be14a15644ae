"""CPU time of a demo training step, old against new, measured alternately in one run.

    python benchmarks/bench_step_compare.py                   # both comparisons below
    python benchmarks/bench_step_compare.py --mode code --repeats 9
    python benchmarks/bench_step_compare.py --mode env --repeats 4 --steps 4

The step is ``benchmarks/bench_step.py``'s (batched augmentation, SampleCNN
forward + projection head, SemiSupCon loss with half the batch labeled,
backward, Adam) on synthetic views already in memory, ``--preset demo``,
``--batch`` clips x 2 views, the allocator tuned as the CLI does. The shared
machine is noisy, so every figure is a median over alternating repeats and
CPU time (``time.process_time``, every thread of the process) is reported
beside wall time.

``--mode code``: the augmentation transforms of ``--baseline`` (a git
revision; default: the commit this work started from) against the checkout's,
in this one process: each repeat times one step with the old functions swapped
into ``bench.augment`` and one with the current ones, same weights, same
generator seed, and checks that both give the same loss.

``--mode env``: the same step in child processes started alternately with
the default environment and with ``OMP_WAIT_POLICY=PASSIVE`` (torch's
libgomp threads sleep instead of spinning while they wait; it must be set
before torch is imported, hence the child processes). The children report
their median step times and their loss, which must be bit-identical.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import types

BASELINE = "1907f43"  # main when this comparison was written (before the delay rewrite)
SWAPPED = ("gain", "polarity", "white_noise", "coloured_noise", "fft_filter", "pitch_shift", "delay")
ENVS = {"default": {}, "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup(preset: str, batch: int):
    """(step, args, reset): a fresh demo step on synthetic views; ``reset()`` restores weights, optimizer
    and generator so two variants run the very same step."""
    import copy

    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_step import build, make_step  # a sibling script, not a package

    from bench import allocator
    from bench.augment import Augmenter
    from bench_plugins import samplecnn

    allocator.tune()
    p = samplecnn.preset(preset)
    g = torch.Generator().manual_seed(0)
    views = 0.1 * torch.randn(batch, 2, p["window"], generator=g)
    labels = (torch.rand(batch, 50, generator=g) < 0.1).float()
    labeled = torch.arange(batch) < batch // 2
    enc, model, opt = build(preset, torch.device("cpu"), "fp32")
    gen = torch.Generator().manual_seed(0)
    step = make_step(enc, model, opt, Augmenter(p["sample_rate"]), "fp32", torch.device("cpu"))
    state = copy.deepcopy(enc.module.state_dict())
    opt_state = copy.deepcopy(opt.state_dict())

    def reset() -> None:
        enc.module.load_state_dict(state)
        opt.load_state_dict(opt_state)
        gen.manual_seed(0)

    return step, (views, labels, labeled, gen), reset


def timed(fn) -> tuple[float, float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    loss = fn()
    return time.process_time() - c0, time.perf_counter() - w0, float(loss.detach())


def baseline_transforms(rev: str) -> types.ModuleType:
    src = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:bench/augment/transforms.py"], check=True,
                         capture_output=True, text=True).stdout
    mod = types.ModuleType(f"baseline_transforms_{rev}")
    exec(compile(src, f"{rev}:bench/augment/transforms.py", "exec"), mod.__dict__)
    return mod


@contextlib.contextmanager
def swapped(mod: types.ModuleType):
    import bench.augment as aug

    saved = {n: getattr(aug, n) for n in SWAPPED}
    try:
        for n in SWAPPED:
            setattr(aug, n, getattr(mod, n))
        yield
    finally:
        for n, f in saved.items():
            setattr(aug, n, f)


def summary(name: str, cpu: list[float], wall: list[float], base: tuple[float, float] | None) -> str:
    c, w = statistics.median(cpu), statistics.median(wall)
    rel = f"  ({c / base[0]:.3f}x CPU, {w / base[1]:.3f}x wall of the first)" if base else ""
    return f"  {name:<26} CPU {c:7.3f} s  wall {w:7.3f} s  (n={len(cpu)}){rel}"


def mode_code(a) -> dict:
    step, args, reset = setup(a.preset, a.batch)
    old = baseline_transforms(a.baseline)
    variants = {f"baseline {a.baseline}": lambda: swapped(old), "current": contextlib.nullcontext}
    res = {k: {"cpu": [], "wall": [], "loss": []} for k in variants}
    for k, ctx in variants.items():  # warm-up (oneDNN primitives, allocator)
        reset()
        with ctx():
            step(*args)
    for _ in range(a.repeats):
        for k, ctx in variants.items():
            reset()
            with ctx():
                c, w, loss = timed(lambda: step(*args))
            res[k]["cpu"].append(c)
            res[k]["wall"].append(w)
            res[k]["loss"].append(loss)
    print(f"code: one {a.preset} step, batch {a.batch} x 2 views, {a.repeats} alternating repeats, load "
          f"{os.getloadavg()[0]:.1f}")
    base = None
    for k, r in res.items():
        print(summary(k, r["cpu"], r["wall"], base))
        base = base or (statistics.median(r["cpu"]), statistics.median(r["wall"]))
    losses = [r["loss"][0] for r in res.values()]
    print(f"  losses {losses} (max abs diff {max(losses) - min(losses):.3g})")
    return res


def child(a) -> None:
    step, args, reset = setup(a.preset, a.batch)
    reset()
    step(*args)
    out = {"cpu": [], "wall": []}
    for _ in range(a.steps):
        reset()
        c, w, loss = timed(lambda: step(*args))
        out["cpu"].append(c)
        out["wall"].append(w)
    out["loss"] = loss.hex()
    print(json.dumps(out))


def mode_env(a) -> dict:
    res = {k: {"cpu": [], "wall": [], "loss": set()} for k in ENVS}
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--preset", a.preset, "--batch", str(a.batch),
           "--steps", str(a.steps)]
    for _ in range(a.repeats):
        for k, extra in ENVS.items():
            env = {kk: v for kk, v in os.environ.items() if kk not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
            out = subprocess.run(cmd, env={**env, **extra}, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            res[k]["cpu"].append(statistics.median(r["cpu"]))
            res[k]["wall"].append(statistics.median(r["wall"]))
            res[k]["loss"].add(r["loss"])
    print(f"env: one {a.preset} step, batch {a.batch} x 2 views; {a.repeats} alternating child processes "
          f"per setting, median of {a.steps} steps each; load {os.getloadavg()[0]:.1f}")
    base = None
    for k, r in res.items():
        print(summary(k, r["cpu"], r["wall"], base))
        base = base or (statistics.median(r["cpu"]), statistics.median(r["wall"]))
    losses = set().union(*(r["loss"] for r in res.values()))
    print(f"  losses bit-identical across all children: {len(losses) == 1} ({sorted(losses)})")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("code", "env", "both"), default="both")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--batch", type=int, default=32, help="clips per step, 2 views each (default 32)")
    ap.add_argument("--repeats", type=int, default=7, help="alternating repeats per variant (default 7)")
    ap.add_argument("--steps", type=int, default=3, help="--mode env: timed steps per child (default 3)")
    ap.add_argument("--baseline", default=BASELINE, help=f"git revision of the old code (default {BASELINE})")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a)
        return
    if a.mode in ("code", "both"):
        mode_code(a)
    if a.mode in ("env", "both"):
        mode_env(a)


if __name__ == "__main__":
    main()
