"""benchmarks/gpu_check.py --smoke: the GPU check's code runs on the CPU at a tiny size, so it cannot rot
before a GPU is lent (issue #25)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: (section, measurement) rows the smoke run must produce, and a positive finite figure of each
EXPECTED = {
    ("step", "fp32"): "clips_per_s",
    ("step", "bf16"): "clips_per_s",
    ("step", "compile"): "clips_per_s",
    ("step", "compile+bf16"): "clips_per_s",
    ("reference", "per-clip DataLoader + fp32 step"): "clips_per_s",
    ("augment", "official"): "ratio",
    ("augment", "bench"): "ratio",
    ("pretrain", "bench pretrain --preset demo"): "clips_per_s",
    ("extract", "model"): "windows_per_s",
    ("extract", "tracks, decode workers=2"): "tracks_per_s",
}


@pytest.mark.slow
def test_smoke_run_measures_every_section(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--smoke", "--out", str(out),
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    env_row = rows[0]
    assert env_row["section"] == "env" and env_row["status"] == "ok" and env_row["missing"] == []
    got = {(r["section"], r["name"]): r for r in rows[1:]}
    assert set(got) == set(EXPECTED), sorted(got)
    for key, fig in EXPECTED.items():
        r = got[key]
        assert r["status"] == "ok", (key, r.get("error"), r.get("traceback"))
        assert math.isfinite(r[fig]) and r[fig] > 0, (key, r)
    pre = got[("pretrain", "bench pretrain --preset demo")]
    assert pre["steps_done"] == pre["steps_asked"] == 2 and len(pre["loss_curve"]) == 2
    assert all(math.isfinite(loss) for _, loss in pre["loss_curve"])
    assert (out / "pretrain-metrics.jsonl").is_file()
    # the table is in the output and in table.md, one line per row
    table = (out / "table.md").read_text()
    assert table.count("\n| ") == len(rows) + 1  # the header row plus one per result
    assert table.splitlines()[0] in proc.stdout


def test_budget_skips_are_recorded(tmp_path):
    """With no budget left every section is skipped with its reason, and the run still ends cleanly."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu",
                           "--budget-s", "0", "--out", str(out), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    skipped = [r for r in rows[1:] if r["status"] == "skipped"]
    assert len(skipped) == len(rows) - 1 >= 9
    assert all(r["reason"].startswith("budget:") for r in skipped)
    assert "not measured:" in proc.stdout


def test_without_cuda_the_full_size_refuses(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--smoke" in proc.stderr
