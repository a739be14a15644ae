"""The training state of a pretraining run, built once by :func:`setup` before the step loop.

:func:`setup` checks the launch (processes, device options), takes the pools
(planned once: the plan of :func:`bench.pretrain.checkpoints.ensure_pretrained`
is passed down, not planned again), opens the audio store, builds the sampler,
early stopping, the model, Adam, the accelerator and the augmentation, and
reads the train state to resume from. The order of these steps is part of the
reproducibility contract (a head built by ``setup_pretraining`` draws from the
global RNG): a run and its resumption compute the same bits.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import DataRoots
from bench.encoder import LabelSpec, Recipe, TrainableEncoder
from bench.errors import BenchError
from bench.pretrain.early_stopping import EarlyStopping
from bench.pretrain.pools import PoolPlan, Pools, build_pools, plan_pools
from bench.pretrain.runfolder import (METRICS_FILE, STATE_FILE, MetricsLog, load_train_state, rng_state,
                                      set_rng_state)
from bench.pretrain.sampling import AudioStore, BatchSampler


def label_variant_transforms(plan: PoolPlan, pools: Pools) -> list[tuple[str, ...]]:
    """Per label group, the transforms its task's labels are not invariant to (checked against the chain's)."""
    from bench.augment import TRANSFORMS

    out = []
    for data, _group in zip(plan.labeled, pools.space.groups):
        names = tuple(data.task.label_variant_transforms)
        bad = [n for n in names if n not in TRANSFORMS]
        if bad:
            raise BenchError(f"task {data.task.name!r} declares label_variant_transforms {bad} that the augmentation "
                             f"chain does not have; known: {', '.join(TRANSFORMS)}")
        out.append(names)
    return out


@dataclass
class TrainingState:
    """Everything the step loop needs, built once by :func:`setup`."""

    encoder: TrainableEncoder
    recipe: Recipe
    plan: PoolPlan
    pools: Pools
    store: AudioStore
    sampler: BatchSampler
    stopper: EarlyStopping | None
    accelerator: Any
    model: Any
    optimizer: Any
    augmenter: Any
    skip_by_group: list[tuple[str, ...]]
    run_dir: Path
    log: MetricsLog
    record: dict[str, Any]
    start_step: int = 0
    resumed_from: int | None = None
    quiet: bool = False
    progress: bool = True
    #: the train state a rerun would resume from (None: none written yet)
    last_good: Path | None = None
    world: int = 1
    rank: int = 0
    main: bool = True
    #: the learning-curve probe (``Recipe.probe_every`` > 0; :mod:`bench.pretrain.probing`), else None
    prober: Any = None

    @property
    def state_path(self) -> Path:
        return self.run_dir / STATE_FILE


def _accelerator(device: str, mixed_precision: str) -> Any:
    """An Accelerator on ``device`` ("cpu", "cuda", "cuda:N"); a single process honours the index."""
    import torch
    from accelerate import Accelerator

    if device.startswith("cuda") and ":" in device and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        torch.cuda.set_device(torch.device(device))  # Accelerate otherwise takes the current device (0)
    return Accelerator(cpu=(device == "cpu"), mixed_precision=mixed_precision)


def _data(encoder: TrainableEncoder, spec: LabelSpec, recipe: Recipe, plan: PoolPlan | None, data_roots: DataRoots,
          cache_dir: Path, quiet: bool, progress: bool) -> tuple[PoolPlan, Pools, AudioStore, BatchSampler,
                                                                 EarlyStopping | None]:
    """The pools (of ``plan``, planned here only when none is given), the audio store, the sampler, early stopping."""
    patience = recipe.early_stopping_patience
    plan = plan if plan is not None else plan_pools(spec, recipe, data_roots)
    if patience and not plan.labeled:
        raise BenchError(f"early stopping (early_stopping_patience={patience}) needs a labeled task, whose valid "
                         f"split is the validation pool; encoder {encoder.name!r} has none. Name one "
                         "(-O label_task=TASK) or set -O early_stopping_patience=0")
    if not quiet:
        print(f"Pretraining pools of {encoder.name}:\n  " + plan.describe().replace("\n", "\n  "), file=sys.stderr)
    pools = build_pools(plan, data_roots, seed=recipe.seed, validation=patience > 0,
                        ps_twice=recipe.official_ps_twice)
    store = AudioStore(pools.labeled + pools.unlabeled + pools.valid, encoder.sample_rate, cache_dir,
                       quiet=quiet or not progress, dtype=recipe.store_dtype)
    sampler = BatchSampler(pools, store, batch_size=recipe.batch_size, labeled_share=spec.share, views=recipe.views,
                           window=encoder.window, seed=recipe.seed, labeled_mix=recipe.labeled_mix,
                           labeled_sampler=recipe.labeled_sampler, per_class=recipe.per_class)
    stopper = None
    if patience:
        # validate_every 0: once per epoch of the labeled pool, as the official code validates
        # (check_val_every_n_epoch: 1); its epoch drops the last partial batch (mixed_dataloader.py:113-123)
        every = recipe.validate_every or max(1, len(sampler.labeled) // max(1, sampler.n_labeled))
        stopper = EarlyStopping(patience, every, pools.valid, store, batch_size=recipe.batch_size,
                                views=recipe.views, window=encoder.window, space=pools.space)
        if not stopper.decoded:
            raise BenchError(f"early stopping: none of the {len(pools.valid)} valid tracks of "
                             f"{', '.join(d.task.name for d in plan.labeled)} could be decoded")
    return plan, pools, store, sampler, stopper


def _prober(encoder: TrainableEncoder, recipe: Recipe, plan: PoolPlan, data_roots: DataRoots, cache: Path,
            quiet: bool) -> tuple[Any, str | None]:
    """The learning-curve probe's tasks and audio, or (None, why there is none); the global RNG states are left as they were (the head a
    ``setup_pretraining`` builds next draws from them, and demo data built here must not move them)."""
    from bench.pretrain.probing import Prober, build_probe_tasks, probe_task_names

    saved = rng_state()
    try:
        tasks, skipped = build_probe_tasks(probe_task_names(plan, recipe.unlabeled_tasks), data_roots)
        if not tasks:
            return None, ("no classification task with data to probe on ("
                          + ("; ".join(f"{k}: {v}" for k, v in skipped.items()) or "the pools name none") + ")")
        return Prober(tasks, skipped, encoder, cache, quiet), None
    finally:
        set_rng_state(saved)


def _model(encoder: TrainableEncoder, recipe: Recipe, accelerator: Any, sync_batchnorm: bool) -> tuple[Any, Any]:
    """The training module on the device (a SyncBatchNorm copy with several processes) and its Adam."""
    import torch

    from bench import dist

    model = encoder.training_module()
    model.to(accelerator.device)
    if accelerator.num_processes > 1 and sync_batchnorm:
        # train a converted copy: the encoder keeps plain BatchNorm (same state-dict keys) for embed()
        import copy

        model = copy.deepcopy(model)
        if accelerator.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            model = dist.convert_sync_batchnorm(model)
    model.train()
    return model, torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


def setup(encoder: TrainableEncoder, *, data_roots: DataRoots, run_dir: str | Path,
          cache_dir: str | Path | None = None, device: str = "cpu", quiet: bool = False, resume: bool = True,
          recipe: Recipe | None = None, plan: PoolPlan | None = None, mixed_precision: str = "no",
          compile: bool = False, sync_batchnorm: bool = True, progress: bool = True) -> TrainingState:
    """Everything a run needs, in the order that makes a run reproducible from its seed; see :func:`pretrain`."""
    import torch

    from bench import config as bench_config

    if not isinstance(encoder, TrainableEncoder):
        raise BenchError(f"encoder {encoder.name!r} cannot be pretrained (it is not a TrainableEncoder)")
    recipe = recipe or encoder.recipe()
    run_dir = Path(run_dir)
    if device == "cpu" and (mixed_precision != "no" or compile):
        raise BenchError("bf16 autocast and torch.compile are GPU options; leave them off on CPU")
    accelerator = _accelerator(device, mixed_precision)
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    quiet = quiet or not main
    if recipe.batch_size % world:
        raise BenchError(f"batch_size {recipe.batch_size} is not divisible by the {world} processes")
    patience = recipe.early_stopping_patience
    if patience and world > 1:
        # the validation pass, the best-weights copy and the stop decision are not synchronised across processes
        raise BenchError(f"early stopping (early_stopping_patience={patience}) runs on one process only, and this "
                         f"launch has {world}: run `bench pretrain` without accelerate launch, or set "
                         "-O early_stopping_patience=0")
    probe_off = None
    if recipe.probe_every and world > 1:
        # the demo preset sets probe_every: a multi-process run of it trains, without its curve, and says so
        probe_off = f"{world} processes (the probe runs on one process only)"
    cache = Path(cache_dir) if cache_dir is not None else bench_config.cache_dir()
    with accelerator.main_process_first():
        plan, pools, store, sampler, stopper = _data(encoder, encoder.label_spec(), recipe, plan, data_roots, cache,
                                                     quiet, progress)
    prober = None
    if recipe.probe_every and probe_off is None:
        prober, probe_off = _prober(encoder, recipe, plan, data_roots, cache, quiet or not progress)
    if probe_off and not quiet:
        print(f"Learning curve (probe_every={recipe.probe_every}) off for this run: {probe_off}", file=sys.stderr)
    encoder.setup_pretraining(pools.space)
    model, optimizer = _model(encoder, recipe, accelerator, sync_batchnorm)

    ts = TrainingState(encoder, recipe, plan, pools, store, sampler, stopper, accelerator, model, optimizer, None, [],
                       run_dir, MetricsLog(run_dir / METRICS_FILE, main), {}, quiet=quiet, progress=progress,
                       world=world, rank=rank, main=main, prober=prober)
    if resume and ts.state_path.is_file():
        state = load_train_state(ts.state_path, encoder, recipe)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        ts.start_step = ts.resumed_from = int(state["step"])
        ts.last_good = ts.state_path
        if stopper is not None:  # the identity check guarantees the state was written by an early-stopping run
            stopper.load(state["early_stopping"])
    elif not resume and main:
        for f in (ts.state_path, ts.log.path):
            f.unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    if not quiet:
        what = (f"resuming from step {ts.start_step} of {recipe.steps}" if ts.resumed_from is not None
                else f"{recipe.steps} steps from step 0")
        print(f"Pretraining {encoder.name}: {what} (run folder {run_dir}; Ctrl-C saves and stops)", file=sys.stderr)

    ts.model, ts.optimizer = accelerator.prepare(model, optimizer)
    if compile:
        ts.model = torch.compile(ts.model)
    spec = encoder.label_spec()
    if recipe.augment:
        from bench.augment import Augmenter

        ts.augmenter = Augmenter(encoder.sample_rate, severity=recipe.severity, p_apply=recipe.p_apply,
                                 variant=recipe.augment_variant)
        if spec.label_aware_augment:
            ts.skip_by_group = label_variant_transforms(plan, pools)
    ts.record = _record(ts, mixed_precision, sync_batchnorm, spec.label_aware_augment)
    if probe_off:
        ts.record["probe"] = {"off": probe_off}
    ts.log({"event": "resume" if ts.resumed_from is not None else "start", "step": ts.start_step, **ts.record})
    return ts


def _record(ts: TrainingState, mixed_precision: str, sync_batchnorm: bool, label_aware: bool) -> dict[str, Any]:
    import torch

    sampler, pools = ts.sampler, ts.pools
    record = {
        "encoder": ts.encoder.name,
        "config": ts.encoder.config(),
        "recipe": ts.recipe.to_dict(),
        "world_size": ts.world,
        "device": str(ts.accelerator.device),
        # CPU weights depend on it (sums in another order): recorded so runs can be compared
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mixed_precision": mixed_precision,
        "sync_batchnorm": bool(ts.world > 1 and sync_batchnorm),
        "pools": {"labeled": len(sampler.labeled), "unlabeled": len(sampler.unlabeled),
                  "labeled_per_batch": sampler.n_labeled, "classes": pools.space.num_classes,
                  "label_kind": pools.space.kind, "sources": pools.sources},
        "held_out_check": pools.held_out,
        "label_aware_augment": {g.task: list(t) for g, t in zip(pools.space.groups, ts.skip_by_group)}
        if label_aware else None,
        "undecodable": ts.store.failed,
        "audio_cache": str(ts.store.folder),
        "resumed_from": ts.resumed_from,
    }
    if ts.stopper is not None:
        record["early_stopping"] = ts.stopper.record()
    if ts.prober is not None:
        record["probe"] = ts.prober.describe()
    return record


