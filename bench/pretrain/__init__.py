"""Pretraining stage: train a :class:`bench.encoder.TrainableEncoder` with Accelerate.

One module per job:

- :mod:`bench.pretrain.pools`: which tasks and folders feed the labeled and
  unlabeled pools (the data present), and the tracks, with every task's
  valid/test tracks removed;
- :mod:`bench.pretrain.sampling`: the pool audio decoded once, and the batch
  of a step as a pure function of (seed, step);
- :mod:`bench.pretrain.loop`: ``setup()`` (the typed training state) and the
  step loop (single process or DDP), resumable to the bit, Ctrl-C safe;
- :mod:`bench.pretrain.runfolder`: what a run folder holds (train state,
  metrics log, run record) and how it is read back;
- :mod:`bench.pretrain.early_stopping`: validation on the labeled tasks'
  valid splits, the best weights and the stop decision (optional);
- :mod:`bench.pretrain.probing`: the learning-curve probe on the tasks' valid
  splits (``-O probe_every=N``; optional);
- :mod:`bench.pretrain.curves`: a run's curves read back from its log, and
  several runs' curves drawn side by side;
- :mod:`bench.pretrain.checkpoints`: the cache of trained checkpoints that
  ``bench run`` uses.

The command is ``bench pretrain`` (:mod:`bench.commands.pretrain`);
docs/pretraining.md has the long form.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it; imported on first use (PEP 562), so that planning the pools
#: (bench.run_memo checks them on a warm rerun) does not import the training loop, and with it torch
_WHERE = {
    "checkpoint_key": "checkpoints", "default_checkpoint": "checkpoints", "ensure_pretrained": "checkpoints",
    "save_final": "checkpoints", "PretrainResult": "loop", "load_train_state": "runfolder", "pretrain": "loop",
    "PretrainingInterrupted": "loop", "TrainingState": "state", "setup": "state",
    "PoolPlan": "pools", "Pools": "pools", "Track": "pools", "build_pools": "pools", "held_out_tracks": "pools",
    "plan_pools": "pools", "load_curves": "curves", "plot_curves": "curves", "AudioStore": "audio_store", "BatchSampler": "sampling", "crop_views": "sampling",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'bench.pretrain' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bench.pretrain.{_WHERE[name]}"), name)
