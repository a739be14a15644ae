"""Multi-process (gloo, CPU) training computes what one process computes on the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 5)).double()


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 6, generator=g, dtype=torch.float64)  # 4 clips x 2 views
    clip = torch.arange(4).repeat_interleave(2)
    y = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=torch.float64).repeat_interleave(2, dim=0)
    return x, clip, y


def _worker(rank, world, rdv, out):
    import torch.distributed as d

    from bench.dist import convert_sync_batchnorm
    from bench.losses import contrastive_loss

    d.init_process_group("gloo", init_method=f"file://{rdv}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    model = torch.nn.parallel.DistributedDataParallel(convert_sync_batchnorm(_model()))
    x, clip, y = _data()
    mine = torch.cat([torch.arange(c * 2, c * 2 + 2) for c in range(rank, 4, world)])  # clips r::W, both views
    loss = contrastive_loss(model(x[mine]), clip[mine], y[mine])
    loss.backward()
    m = model.module
    torch.save({"grads": [p.grad for p in m.parameters()], "running_mean": m[1].running_mean.clone(),
                "loss": loss.detach()}, f"{out}/rank{rank}.pt")
    d.destroy_process_group()


def test_gather_and_sync_batchnorm_match_one_process(tmp_path):
    from bench.losses import contrastive_loss

    torch.multiprocessing.spawn(_worker, args=(2, str(tmp_path / "rdv"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    model = _model()
    x, clip, y = _data()
    loss = contrastive_loss(model(x), clip, y)
    loss.backward()
    # the global loss is the mean of the per-process losses (equal shares of anchors)
    assert ((ranks[0]["loss"] + ranks[1]["loss"]) / 2).item() == pytest.approx(loss.item(), abs=1e-10)
    for r in ranks:
        for g_ddp, p in zip(r["grads"], model.parameters()):
            torch.testing.assert_close(g_ddp, p.grad, atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(r["running_mean"], model[1].running_mean, atol=1e-12, rtol=0)


def _pretrain_cmd(launcher, out, data):
    return launcher + [
        "-m", "bench.pretrain", "--encoder", "simclr", "--preset", "demo", "--steps", "2", "--batch-size", "4",
        "--lr", "1e-4", "--no-augment", "--unlabeled-dir", str(data), "--out", str(out), "--device", "cpu",
        "--quiet", "--no-resume",
    ]


def _train_losses(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {e["step"]: e["loss"] for e in lines if e["event"] == "train"}


def test_accelerate_launch_two_cpu_processes_match_single_process(tmp_path):
    """`accelerate launch` with 2 CPU processes (gloo) vs one process, same global batch, no augmentation."""
    from conftest import make_tiny
    from safetensors.torch import load_file

    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate launcher not installed beside this python")
    data = make_tiny(tmp_path / "data") / "tiny" / "train"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENCH_CACHE_DIR": str(tmp_path / "cache")}
    single = subprocess.run(_pretrain_cmd([sys.executable], tmp_path / "one.safetensors", data),
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    launch = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517"]
    multi = subprocess.run(_pretrain_cmd(launch, tmp_path / "two.safetensors", data),
                           env=env, capture_output=True, text=True, timeout=300)
    assert multi.returncode == 0, multi.stderr[-3000:]
    rec1 = json.loads((tmp_path / "one.run" / "run.json").read_text())
    rec2 = json.loads((tmp_path / "two.run" / "run.json").read_text())
    assert rec1["world_size"] == 1 and rec2["world_size"] == 2 and rec2["sync_batchnorm"]
    assert rec2["ranks_in_sync"]["in_sync"], rec2["ranks_in_sync"]
    l1, l2 = _train_losses(tmp_path / "one.run"), _train_losses(tmp_path / "two.run")
    assert l1[1] == pytest.approx(l2[1], abs=1e-5)  # same weights, same global batch: same loss
    assert l1[2] == pytest.approx(l2[2], abs=1e-3)  # after one Adam step
    a, b = load_file(str(tmp_path / "one.safetensors")), load_file(str(tmp_path / "two.safetensors"))
    # Adam moves every weight by ~lr per step whatever the gradient's size, so float noise on a
    # near-zero gradient can flip a step: bound by 2 steps x 2 x lr, and most weights much closer.
    diffs = torch.cat([(a[k].double() - b[k].double()).abs().flatten() for k in a if a[k].is_floating_point()])
    assert diffs.max() <= 4 * 1e-4 + 1e-6
    assert (diffs < 1e-5).double().mean() > 0.9
