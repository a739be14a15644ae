"""Shared fixtures: a tiny SampleCNN preset and a tiny multilabel task with WAVs in tmp_path."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from bench import hookimpl
from bench.task import Item, Split, Task

TINY = {
    "sample_rate": 4000,
    "window": 243,  # 3^5: stem -> 81, 4 pooled blocks -> 1
    "stem_channels": 4,
    "channels": (4, 8, 8, 8),
    "dim": 8,
    "proj_hidden": 8,
    "proj_dim": 4,
    "recipe": {"lr": 1e-3, "batch_size": 4, "views": 2, "steps": 4, "seed": 123,
               "checkpoint_every": 2, "log_every": 1},
}


@pytest.fixture(autouse=True)
def tiny_presets(monkeypatch, tmp_path):
    from bench_plugins import samplecnn

    monkeypatch.setitem(samplecnn.PRESETS, "tiny", TINY)
    monkeypatch.setitem(samplecnn.PRESETS, "tiny2", {**TINY, "channels": (4, 8, 8, 16)})
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))


def write_wav(path: Path, x: np.ndarray, sr: int = 4000) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.astype(np.float32), sr, subtype="FLOAT")


class TinyTask(Task):
    """3-tag multilabel task: tiny/<split>/<id>.wav plus tiny/<split>.csv (id,tags)."""

    name = "tiny"
    kind = "multilabel"
    dataset_dirs = ("tiny",)
    primary_metric = "roc_auc"
    metrics = ("roc_auc",)

    def classes(self, data_root):
        return ["a", "b", "c"]

    def items(self, split, data_root):
        root = self.require_dir(data_root, "tiny")
        out = Split(split)
        with open(root / f"{split}.csv") as f:
            for tid, tags in csv.reader(f):
                out.items.append(Item(tid, str(root / split / f"{tid}.wav"),
                                      tuple(int(t) for t in tags.split()) if tags else ()))
        return out

    def make_demo(self, data_root, size="small", seed=0):
        make_tiny(Path(data_root), seed=seed)


def make_tiny(root: Path, n_train: int = 6, seed: int = 0, seconds: float = 0.5) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("valid", 2), ("test", 2)):
        rows = []
        for i in range(n):
            tid = f"{split}{i:03d}"
            t = np.arange(int(seconds * 4000)) / 4000
            x = 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.05 * rng.standard_normal(len(t))
            write_wav(root / "tiny" / split / f"{tid}.wav", x)
            rows.append([tid, " ".join(str(c) for c in sorted({i % 3, (i + 1) % 3} if i % 2 else {i % 3}))])
        with open(root / "tiny" / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)
    return root


class _TinyPlugin:
    @hookimpl
    def register_tasks(self, register):
        register("tiny", TinyTask, description="tiny test task")


@pytest.fixture
def tiny_task(tmp_path):
    """Registers the tiny task in-process; yields its DataRoots (data in tmp_path/data)."""
    from bench import plugins
    from bench.config import DataRoots

    root = make_tiny(tmp_path / "data")
    plugin = _TinyPlugin()
    plugins.load_plugins()
    plugins.pm.register(plugin, name="tiny-test-plugin")
    plugins.invalidate()
    try:
        yield DataRoots(per_task={"tiny": str(root)})
    finally:
        plugins.pm.unregister(name="tiny-test-plugin")
        plugins.invalidate()
