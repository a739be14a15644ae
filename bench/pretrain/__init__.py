"""Pretraining stage: train a :class:`bench.encoder.TrainableEncoder` with Accelerate.

One module per job:

- :mod:`bench.pretrain.pools`: which tasks and folders feed the labeled and
  unlabeled pools (the data present), and the tracks, with every task's
  valid/test tracks removed;
- :mod:`bench.pretrain.sampling`: the pool audio decoded once, and the batch
  of a step as a pure function of (seed, step);
- :mod:`bench.pretrain.loop`: the training loop (single process or DDP),
  resumable to the bit;
- :mod:`bench.pretrain.early_stopping`: validation on the labeled tasks'
  valid splits, the best weights and the stop decision (optional);
- :mod:`bench.pretrain.checkpoints`: the cache of trained checkpoints that
  ``bench run`` uses.

The command is ``bench pretrain`` (:mod:`bench.commands.pretrain`);
docs/pretraining.md has the long form.
"""

from bench.pretrain.checkpoints import checkpoint_key, default_checkpoint, ensure_pretrained, save_final
from bench.pretrain.loop import PretrainResult, load_train_state, pretrain
from bench.pretrain.pools import PoolPlan, Pools, Track, build_pools, held_out_tracks, plan_pools
from bench.pretrain.sampling import AudioStore, BatchSampler, crop_views

__all__ = [
    "AudioStore", "BatchSampler", "PoolPlan", "Pools", "PretrainResult", "Track", "build_pools", "checkpoint_key",
    "crop_views", "default_checkpoint", "ensure_pretrained", "held_out_tracks", "load_train_state", "plan_pools",
    "pretrain", "save_final",
]
