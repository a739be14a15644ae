"""The pretraining loop: one trainable encoder, its pools, Accelerate, resumable to the bit.

- Optimisation: Adam at the recipe's learning rate and weight decay, fp32
  (bf16 autocast and ``torch.compile`` are GPU options and refused on CPU).
  With several processes BatchNorm is synchronised (global batch statistics)
  and the contrastive loss gathers every process's views as negatives, so a
  multi-process run computes what one process computes on the global batch.
- Augmentation runs batched on the device (:class:`bench.augment.Augmenter`)
  with a generator seeded by (seed, step, rank).
- ``train-state.pt`` (weights, optimizer, step, RNG states, the encoder's
  config and the recipe's identity) is written atomically every
  ``checkpoint_every`` steps and at the end; a run restarted with the same run
  folder resumes from it and ends with the same weights as a run that was never
  interrupted. It is read with ``torch.load(weights_only=True)`` and refused
  when it belongs to another encoder, preset or recipe.
- A non-finite loss stops the run (before the update) with the step and the
  last good checkpoint in the message.
- Early stopping (``Recipe.early_stopping_patience`` > 0, one process only,
  :mod:`bench.pretrain.early_stopping`): validated every ``validate_every``
  steps and at the last one; the run ends with the best validation's weights,
  and its status is part of the train state.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.config import DataRoots
from bench.encoder import Recipe, TrainableEncoder
from bench.errors import BenchError
from bench.pretrain.early_stopping import EarlyStopping
from bench.pretrain.pools import Pools, build_pools, plan_pools
from bench.pretrain.sampling import AudioStore, BatchSampler

STATE_FILE = "train-state.pt"
METRICS_FILE = "metrics.jsonl"
RECORD_FILE = "run.json"


def _seed_int(*parts: int) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") & ((1 << 63) - 1)


def _rng_state() -> dict[str, Any]:
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


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_atomic(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_atomic_text(text: str, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _identity(encoder: TrainableEncoder, recipe: Recipe) -> dict[str, Any]:
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
    mine = _identity(encoder, recipe)
    if saved != json.loads(json.dumps(mine)):
        raise BenchError(
            f"training checkpoint {path} belongs to another run:\n  saved:   {json.dumps(saved, sort_keys=True)}\n"
            f"  current: {json.dumps(mine, sort_keys=True)}\n"
            "Use the same encoder, preset and recipe to resume, or another run folder (or --no-resume) to start over."
        )
    return state


def label_variant_transforms(plan: Any, pools: Pools) -> list[tuple[str, ...]]:
    """Per label group, the transforms its task's labels are not invariant to (checked against the chain's)."""
    from bench.augment import TRANSFORMS

    out = []
    for data, group in zip(plan.labeled, pools.space.groups):
        names = tuple(data.task.label_variant_transforms)
        bad = [n for n in names if n not in TRANSFORMS]
        if bad:
            raise BenchError(f"task {data.task.name!r} declares label_variant_transforms {bad} that the augmentation "
                             f"chain does not have; known: {', '.join(TRANSFORMS)}")
        out.append(names)
    return out


def skips(skip_by_group: list[tuple[str, ...]], groups: np.ndarray) -> dict[str, Any]:
    """Per transform, the bool ``[B]`` mask of rows whose labeled task declares it (label-aware augmentation)."""
    import torch

    out: dict[str, Any] = {}
    for g, names in enumerate(skip_by_group):
        for name in names:
            out[name] = out.get(name, np.zeros(len(groups), dtype=bool)) | (groups == g)
    return {k: torch.from_numpy(v) for k, v in out.items()}


@dataclass
class PretrainResult:
    steps: int
    final_loss: float | None
    run_dir: Path
    record: dict[str, Any]
    #: stopped by ``stop_after`` (a simulated kill, for tests), not by early stopping
    stopped_early: bool = False


def _accelerator(device: str, mixed_precision: str) -> Any:
    """An Accelerator on ``device`` ("cpu", "cuda", "cuda:N"); a single process honours the index."""
    import torch
    from accelerate import Accelerator

    if device.startswith("cuda") and ":" in device and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        torch.cuda.set_device(torch.device(device))  # Accelerate otherwise takes the current device (0)
    return Accelerator(cpu=(device == "cpu"), mixed_precision=mixed_precision)


def pretrain(
    encoder: TrainableEncoder,
    *,
    data_roots: DataRoots,
    run_dir: str | Path,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    quiet: bool = False,
    resume: bool = True,
    recipe: Recipe | None = None,
    mixed_precision: str = "no",
    compile: bool = False,
    sync_batchnorm: bool = True,
    stop_after: int | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Train ``encoder`` in place with ``recipe`` (default: its own); return a summary.

    ``run_dir`` holds ``train-state.pt``, ``metrics.jsonl`` and ``run.json``;
    with ``resume`` a run continues from the state found there. ``device`` is
    a resolved torch device ("cpu", "cuda", "cuda:1"). ``stop_after``: stop
    (as if killed, no checkpoint written) once this step is reached; for
    tests of resuming. ``quiet`` hides messages and progress bars;
    ``progress=False`` hides only the bars.
    """
    import torch
    from tqdm.auto import tqdm

    from bench import config as bench_config
    from bench import dist

    if not isinstance(encoder, TrainableEncoder):
        raise BenchError(f"encoder {encoder.name!r} cannot be pretrained (it is not a TrainableEncoder)")
    recipe = recipe or encoder.recipe()
    spec = encoder.label_spec()
    run_dir = Path(run_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else bench_config.cache_dir()
    if device == "cpu" and (mixed_precision != "no" or compile):
        raise BenchError("bf16 autocast and torch.compile are GPU options; leave them off on CPU")
    accelerator = _accelerator(device, mixed_precision)
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    quiet = quiet or not main
    batch_size, n_views, steps = recipe.batch_size, recipe.views, recipe.steps
    if batch_size % world:
        raise BenchError(f"batch_size {batch_size} is not divisible by the {world} processes")
    patience = recipe.early_stopping_patience
    if patience and world > 1:
        # the validation pass, the best-weights copy and the stop decision are not synchronised across processes
        raise BenchError(f"early stopping (early_stopping_patience={patience}) runs on one process only, and this "
                         f"launch has {world}: run `bench pretrain` without accelerate launch, or set "
                         "-O early_stopping_patience=0")

    with accelerator.main_process_first():
        plan = plan_pools(spec, recipe, data_roots)
        if patience and not plan.labeled:
            raise BenchError(f"early stopping (early_stopping_patience={patience}) needs a labeled task, whose valid "
                             f"split is the validation pool; encoder {encoder.name!r} has none. Name one "
                             "(-O label_task=TASK) or set -O early_stopping_patience=0")
        if not quiet:
            print(f"Pretraining pools of {encoder.name}:\n  " + plan.describe().replace("\n", "\n  "),
                  file=sys.stderr)
        pools: Pools = build_pools(plan, data_roots, seed=recipe.seed, validation=patience > 0)
        store = AudioStore(pools.labeled + pools.unlabeled + pools.valid, encoder.sample_rate, cache_dir,
                           quiet=quiet or not progress)
    sampler = BatchSampler(pools, store, batch_size=batch_size, labeled_share=spec.share,
                           views=n_views, window=encoder.window, seed=recipe.seed, labeled_mix=recipe.labeled_mix)
    stopper = None
    if patience:
        # validate_every 0: once per epoch of the labeled pool, as the official code validates
        # (check_val_every_n_epoch: 1); its epoch drops the last partial batch (mixed_dataloader.py:113-123)
        every = recipe.validate_every or max(1, len(sampler.labeled) // max(1, sampler.n_labeled))
        stopper = EarlyStopping(patience, every, pools.valid, store, batch_size=batch_size, views=n_views,
                                window=encoder.window, space=pools.space)
        if not stopper.decoded:
            raise BenchError(f"early stopping: none of the {len(pools.valid)} valid tracks of "
                             f"{', '.join(d.task.name for d in plan.labeled)} could be decoded")
    encoder.setup_pretraining(pools.space)

    model = encoder.training_module()
    model.to(accelerator.device)
    if world > 1 and sync_batchnorm:
        # train a converted copy: the encoder keeps plain BatchNorm (same state-dict keys) for embed()
        import copy

        model = copy.deepcopy(model)
        if accelerator.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            model = dist.convert_sync_batchnorm(model)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)

    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / STATE_FILE
    metrics_path = run_dir / METRICS_FILE
    start_step, resumed_from = 0, None
    if resume and state_path.is_file():
        state = load_train_state(state_path, encoder, recipe)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        start_step = resumed_from = int(state["step"])
        if stopper is not None:  # the identity check guarantees the state was written by an early-stopping run
            stopper.load(state["early_stopping"])
    elif not resume and main:
        for f in (state_path, metrics_path):
            f.unlink(missing_ok=True)
    accelerator.wait_for_everyone()

    model, optimizer = accelerator.prepare(model, optimizer)
    if compile:
        model = torch.compile(model)
    augmenter = None
    skip_by_group: list[tuple[str, ...]] = []
    if recipe.augment:
        from bench.augment import Augmenter

        augmenter = Augmenter(encoder.sample_rate, severity=recipe.severity, p_apply=recipe.p_apply,
                              variant=recipe.augment_variant)
        if spec.label_aware_augment:
            skip_by_group = label_variant_transforms(plan, pools)

    record = {
        "encoder": encoder.name,
        "config": encoder.config(),
        "recipe": recipe.to_dict(),
        "world_size": world,
        "device": str(accelerator.device),
        # CPU weights depend on it (sums in another order): recorded so runs can be compared
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mixed_precision": mixed_precision,
        "sync_batchnorm": bool(world > 1 and sync_batchnorm),
        "pools": {"labeled": len(sampler.labeled), "unlabeled": len(sampler.unlabeled),
                  "labeled_per_batch": sampler.n_labeled, "classes": pools.space.num_classes,
                  "label_kind": pools.space.kind, "sources": pools.sources},
        "held_out_check": pools.held_out,
        "label_aware_augment": {g.task: list(t) for g, t in zip(pools.space.groups, skip_by_group)}
        if spec.label_aware_augment else None,
        "undecodable": store.failed,
        "audio_cache": str(store.folder),
        "resumed_from": resumed_from,
    }
    if stopper is not None:
        record["early_stopping"] = stopper.record()

    def log(entry: dict[str, Any]) -> None:
        if main:
            with metrics_path.open("a") as f:
                f.write(json.dumps({"time": time.time(), **entry}, default=str) + "\n")

    log({"event": "resume" if resumed_from is not None else "start", "step": start_step, **record})

    def save(step: int) -> None:
        unwrapped = accelerator.unwrap_model(model)
        if main:
            _write_atomic({
                "identity": json.dumps(_identity(encoder, recipe)),
                "step": step,
                "model": {k: v.detach().cpu() for k, v in unwrapped.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "rng": _rng_state(),
                "sampler": {"kind": "stateless: batch(step) = f(seed, step)", "next_step": step},
                **({"early_stopping": stopper.state()} if stopper is not None else {}),
            }, state_path)
            log({"event": "checkpoint", "step": step, "path": str(state_path)})
        accelerator.wait_for_everyone()

    def early_stop_check(step: int) -> bool:
        """Validate at ``step`` and log it; True when the patience has run out."""
        value = stopper.loss(encoder, model, accelerator.device, accelerator.autocast)
        stop = stopper.update(step, value, lambda: accelerator.unwrap_model(model).state_dict())
        st = stopper.status
        log({"event": "valid", "step": step, "loss": value, "best_loss": st["best_loss"],
             "best_step": st["best_step"], "without_improvement": st["bad"]})
        if stop:
            log({"event": "early_stop", "step": step, "best_step": st["best_step"], "best_loss": st["best_loss"],
                 "patience": patience})
        return stop

    last_good = state_path if state_path.is_file() else None
    loss_value: float | None = None
    bar = tqdm(total=steps, initial=start_step, desc=f"pretrain {encoder.name}", unit="step",
               disable=quiet or not progress)
    t_last, clips_since = time.perf_counter(), 0
    step = start_step
    try:
        while step < steps and not (stopper is not None and stopper.stopped):
            views_np, labels_np, labeled_np = sampler.batch(step, rank, world)
            views = torch.from_numpy(views_np).to(accelerator.device)
            labels = torch.from_numpy(labels_np).to(accelerator.device) if labels_np is not None else None
            labeled = torch.from_numpy(labeled_np).to(accelerator.device)
            if augmenter is not None:
                gen = torch.Generator(device=accelerator.device)
                gen.manual_seed(_seed_int(recipe.seed, step, rank))
                skip = skips(skip_by_group, sampler.row_groups(step, rank, world)) if skip_by_group else None
                with torch.no_grad():  # skip only when asked: wrappers of the Augmenter keep working
                    views = augmenter(views, generator=gen, skip=skip) if skip else augmenter(views, generator=gen)
            optimizer.zero_grad(set_to_none=True)
            with accelerator.autocast():
                loss = encoder.pretrain_loss(views, labels, labeled, model)
            losses = accelerator.gather(loss.detach().float().reshape(1))
            if not bool(torch.isfinite(losses).all()):
                log({"event": "nan", "step": step, "loss": [float(x) for x in losses]})
                raise BenchError(
                    f"pretraining {encoder.name!r} stopped: the loss became {float(losses[0])} at step {step} "
                    f"(before its update). Last good checkpoint: "
                    f"{last_good if last_good else 'none (no checkpoint written yet)'} in run folder {run_dir}. "
                    "Lower the learning rate (--lr) or check the audio for silence/NaN, then resume."
                )
            accelerator.backward(loss)
            optimizer.step()
            step += 1
            loss_value = float(losses.mean())
            clips_since += batch_size
            bar.update(1)
            if step % recipe.log_every == 0 or step == steps or step == start_step + 1:
                now = time.perf_counter()
                rate = clips_since / max(now - t_last, 1e-9)
                bar.set_postfix(loss=f"{loss_value:.4f}", clips_s=f"{rate:.1f}")
                log({"event": "train", "step": step, "loss": loss_value, "clips_per_s": rate, "lr": recipe.lr})
                t_last, clips_since = now, 0
            if stop_after is not None and step >= stop_after and step < steps:
                return PretrainResult(step, loss_value, run_dir, record, stopped_early=True)
            if stopper is not None and stopper.due(step, steps) and early_stop_check(step):
                save(step)  # the stop is part of the state: a rerun of the folder does not train on
                last_good = state_path
                break
            if step % recipe.checkpoint_every == 0 or step == steps:
                save(step)
                last_good = state_path
    finally:
        bar.close()

    unwrapped = accelerator.unwrap_model(model)
    final_state = {k: v.detach().cpu() for k, v in unwrapped.state_dict().items()}
    if stopper is not None:
        if stopper.best_model is not None:  # early stopping ends with the best validation's weights
            final_state = stopper.best_model
        # best_step None: no validation gave a finite loss, and the run ends with its last weights
        record["early_stopping"] = stopper.record()
    # DDP keeps processes in sync by construction; check it, since a silent drift would void the run
    sums = torch.stack([v.double().sum() for v in final_state.values() if v.is_floating_point()])
    per_rank = accelerator.gather(sums.to(accelerator.device).reshape(1, -1)).cpu()
    drift = float((per_rank - per_rank[0]).abs().max())
    record["ranks_in_sync"] = {"processes": world, "max_param_sum_difference": drift, "in_sync": drift == 0.0}
    trained = encoder.training_module()
    trained.load_state_dict(final_state)
    trained.to("cpu")
    trained.eval()
    record.update({"steps": step, "final_loss": loss_value})
    if main:
        _write_atomic_text(json.dumps(record, indent=2, default=str), run_dir / RECORD_FILE)
        log({"event": "end", "step": step, "final_loss": loss_value})
    return PretrainResult(step, loss_value, run_dir, record)
