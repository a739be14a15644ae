"""What a pretraining run leaves in its run folder, and how it is read back.

- ``train-state.pt``: weights, optimizer, step, RNG states, the early-stopping
  status and the identity of the run (encoder, config, recipe); written
  atomically, read with ``torch.load(weights_only=True)`` and refused when it
  belongs to another encoder, preset or recipe (:func:`load_train_state`).
- ``metrics.jsonl``: one JSON line an event (start/resume, train, valid,
  checkpoint, interrupted, end) (:class:`MetricsLog`).
- ``run.json``: the run record, written at the end.

The folder is created by the first write, never before: a run stopped while
its pools are planned or decoded leaves no empty run folder behind.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.encoder import Recipe, TrainableEncoder
from bench.errors import BenchError

STATE_FILE = "train-state.pt"
METRICS_FILE = "metrics.jsonl"
RECORD_FILE = "run.json"


def rng_state() -> dict[str, Any]:
    """The global RNG states (torch, numpy, python, CUDA) as tensors and plain values (``weights_only`` safe)."""
    import torch

    np_state = np.random.get_state()
    st = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "python": [st[0], list(st[1]), st[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary name, then rename: a kill never leaves half a state (text files:
    :func:`bench.store.atomic_write`)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def identity(encoder: TrainableEncoder, recipe: Recipe) -> dict[str, Any]:
    return {"encoder": encoder.name, "config": encoder.config(), "recipe": recipe.identity()}


def load_train_state(path: Path, encoder: TrainableEncoder, recipe: Recipe) -> dict[str, Any]:
    """Read a training checkpoint (weights_only) and refuse one of another encoder, preset or recipe."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BenchError(f"training checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                         "delete it to start over") from exc
    saved = json.loads(state.get("identity", "{}"))
    mine = identity(encoder, recipe)
    if saved != json.loads(json.dumps(mine)):
        raise BenchError(
            f"training checkpoint {path} belongs to another run:\n  saved:   {json.dumps(saved, sort_keys=True)}\n"
            f"  current: {json.dumps(mine, sort_keys=True)}\n"
            "Use the same encoder, preset and recipe to resume, or another run folder (or --no-resume) to start over."
        )
    return state


class MetricsLog:
    """``metrics.jsonl`` of a run: appended by the main process only (the others' writes are no-ops)."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def __call__(self, entry: dict[str, Any]) -> None:
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps({"time": time.time(), **entry}, default=str) + "\n")


def state_dict_cpu(module: Any) -> dict[str, Any]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}
