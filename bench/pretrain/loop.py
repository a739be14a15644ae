"""The pretraining loop: one trainable encoder, its pools, Accelerate, resumable to the bit.

Shaped like nanoGPT's ``train.py``: :func:`setup` builds a typed
:class:`TrainingState` (the pools planned once and passed down, the audio
store, the sampler, the model, the optimizer, the accelerator, the resume
point), :func:`train` is the step loop, :func:`finish` the end of a run;
:func:`pretrain` is the three in a row. What the run folder holds is
:mod:`bench.pretrain.runfolder`.

- Optimisation: Adam at the recipe's learning rate and weight decay, fp32
  (bf16 autocast and ``torch.compile`` are GPU options and refused on CPU).
  With several processes BatchNorm is synchronised (global batch statistics)
  and the contrastive loss gathers every process's views as negatives, so a
  multi-process run computes what one process computes on the global batch.
- Augmentation runs batched on the device (:class:`bench.augment.Augmenter`)
  with a generator seeded by (seed, step, rank).
- ``train-state.pt`` is written atomically every ``checkpoint_every`` steps,
  at the end, and when Ctrl-C (SIGINT) stops the run: the step under way
  finishes, the state is saved, and the message says where and that the same
  command resumes from that step. A run restarted with the same run folder
  resumes and ends with the same weights as a run that was never interrupted.
- A non-finite loss stops the run (before the update) with the step and the
  last good checkpoint in the message.
- Every step counts the pairs of its global batch that share a label (the
  label positives, :meth:`BatchSampler.label_positive_pairs`): logged per step
  in ``metrics.jsonl``, their mean per step in the run record.
- Each step's loss terms (:meth:`TrainableEncoder.loss_terms`) are averaged
  over the steps of a ``train`` line of the log (``terms``).
- Learning curves (``Recipe.probe_every`` > 0, one process only,
  :mod:`bench.pretrain.probing`): probed at step 0, every ``probe_every``
  steps and at the last; ``probe`` events, the record's ``probe_curve`` and
  ``curves.png`` (:mod:`bench.pretrain.curves`).
- Early stopping (``Recipe.early_stopping_patience`` > 0, one process only,
  :mod:`bench.pretrain.early_stopping`): validated every ``validate_every``
  steps and at the last one; the run ends with the best validation's weights,
  and its status is part of the train state.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.config import DataRoots
from bench.encoder import Recipe, TrainableEncoder
from bench.errors import BenchError
from bench.pretrain.pools import PoolPlan
from bench.pretrain.runfolder import (METRICS_FILE, RECORD_FILE, STATE_FILE, identity, load_train_state,
                                      rng_state, state_dict_cpu, write_atomic)
from bench.pretrain.state import TrainingState, setup
from bench.store import atomic_write

__all__ = ["PretrainResult", "PretrainingInterrupted", "TrainingState", "finish", "load_train_state", "pretrain",
           "setup", "train", "STATE_FILE", "METRICS_FILE", "RECORD_FILE"]


def _seed_int(*parts: int) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") & ((1 << 63) - 1)


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


class PretrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a pretraining after saving its state; the message says where and how it resumes."""


def pretrain(encoder: TrainableEncoder, *, data_roots: DataRoots, run_dir: str | Path,
             cache_dir: str | Path | None = None, device: str = "cpu", quiet: bool = False, resume: bool = True,
             recipe: Recipe | None = None, plan: PoolPlan | None = None, mixed_precision: str = "no",
             compile: bool = False, sync_batchnorm: bool = True, stop_after: int | None = None,
             progress: bool = True) -> PretrainResult:
    """Train ``encoder`` in place with ``recipe`` (default: its own); return a summary.

    ``run_dir`` holds ``train-state.pt``, ``metrics.jsonl`` and ``run.json``;
    with ``resume`` a run continues from the state found there. ``plan``: the
    pools already planned (:func:`bench.pretrain.pools.plan_pools` of the
    encoder's label spec and ``recipe``), so they are not planned again.
    ``device`` is a resolved torch device ("cpu", "cuda", "cuda:1").
    ``stop_after``: stop (as if killed, no checkpoint written) once this step
    is reached; for tests of resuming. ``quiet`` hides messages and progress
    bars; ``progress=False`` hides only the bars.
    """
    ts = setup(encoder, data_roots=data_roots, run_dir=run_dir, cache_dir=cache_dir, device=device, quiet=quiet,
               resume=resume, recipe=recipe, plan=plan, mixed_precision=mixed_precision, compile=compile,
               sync_batchnorm=sync_batchnorm, progress=progress)
    return train(ts, stop_after=stop_after)


def train(ts: TrainingState, stop_after: int | None = None) -> PretrainResult:
    """The step loop, from ``ts.start_step`` to the recipe's last step (or an early stop, or Ctrl-C)."""
    from tqdm.auto import tqdm

    recipe, steps, step, loss = ts.recipe, ts.recipe.steps, ts.start_step, None
    meter = _Meter()
    bar = tqdm(total=steps, initial=step, desc=f"pretrain {ts.encoder.name}", unit="step",
               disable=ts.quiet or not ts.progress)
    with bar, _sigint_flag() as interrupted:
        if ts.prober is not None and step == 0:
            probe(ts, 0)
        while step < steps and not (ts.stopper is not None and ts.stopper.stopped):
            loss, stop_now = train_step(ts, step, interrupted)
            meter.add(ts.sampler.label_positive_pairs(step), recipe.batch_size, ts.encoder.loss_terms())
            step += 1
            bar.update(1)
            if step % recipe.log_every == 0 or step == steps or step == ts.start_step + 1 or stop_now:
                ts.log({"event": "train", "step": step, "loss": loss, "lr": recipe.lr, **meter.flush()})
                bar.set_postfix(loss=f"{loss:.4f}")
            if ts.prober is not None and (step % recipe.probe_every == 0 or step == steps):
                probe(ts, step)  # before the checkpoint of this step: a resumed run has it already
            if stop_after is not None and step >= stop_after and step < steps:
                return PretrainResult(step, loss, ts.run_dir, ts.record, stopped_early=True)
            if stop_now and step < steps:  # on the last step the run simply ends
                save(ts, step)
                raise PretrainingInterrupted(_interrupted(ts, step))
            if ts.stopper is not None and ts.stopper.due(step, steps) and early_stop_check(ts, step):
                save(ts, step)  # the stop is part of the state: a rerun of the folder does not train on
                break
            if step % recipe.checkpoint_every == 0 or step == steps:
                save(ts, step)
    return finish(ts, step, loss)


def train_step(ts: TrainingState, step: int, interrupted: threading.Event) -> tuple[float, bool]:
    """One optimisation step on the batch of ``step``; (mean loss over processes, Ctrl-C seen by any process
    up to this step's exchange)."""
    import torch

    device = ts.accelerator.device
    views_np, labels_np, labeled_np = ts.sampler.batch(step, ts.rank, ts.world)
    views = torch.from_numpy(views_np).to(device)
    labels = torch.from_numpy(labels_np).to(device) if labels_np is not None else None
    labeled = torch.from_numpy(labeled_np).to(device)
    if ts.augmenter is not None:
        gen = torch.Generator(device=device)
        gen.manual_seed(_seed_int(ts.recipe.seed, step, ts.rank))
        skip = skips(ts.skip_by_group, ts.sampler.row_groups(step, ts.rank, ts.world)) if ts.skip_by_group else None
        with torch.no_grad():  # skip only when asked: wrappers of the Augmenter keep working
            views = ts.augmenter(views, generator=gen, skip=skip) if skip else ts.augmenter(views, generator=gen)
    ts.optimizer.zero_grad(set_to_none=True)
    with ts.accelerator.autocast():
        loss = ts.encoder.pretrain_loss(views, labels, labeled, ts.model)
    # one exchange a step: every process's loss and whether it saw Ctrl-C, so all stop after the same step
    flag = torch.tensor([float(interrupted.is_set())], device=device)
    gathered = ts.accelerator.gather(torch.cat([loss.detach().float().reshape(1), flag]).reshape(1, 2))
    losses = gathered[:, 0]
    if not bool(torch.isfinite(losses).all()):
        ts.log({"event": "nan", "step": step, "loss": [float(x) for x in losses]})
        raise BenchError(
            f"pretraining {ts.encoder.name!r} stopped: the loss became {float(losses[0])} at step {step} "
            f"(before its update). Last good checkpoint: "
            f"{ts.last_good if ts.last_good else 'none (no checkpoint written yet)'} in run folder {ts.run_dir}. "
            "Lower the learning rate (--lr) or check the audio for silence/NaN, then resume."
        )
    ts.accelerator.backward(loss)
    ts.optimizer.step()
    return float(losses.mean()), bool(gathered[:, 1].max() > 0)


class _Meter:
    """Since the last ``train`` line of the log: the label positives of each step, clips per second, and the
    mean of each loss term (:meth:`TrainableEncoder.loss_terms`) over the steps."""

    def __init__(self) -> None:
        self.positives: list[int] = []
        self.t, self.clips = time.perf_counter(), 0
        self.terms: dict[str, list[float]] = {}

    def add(self, positives: int, clips: int, terms: dict[str, float]) -> None:
        self.positives.append(positives)
        self.clips += clips
        for name, value in terms.items():
            self.terms.setdefault(str(name), []).append(float(value))

    def flush(self) -> dict[str, Any]:
        now = time.perf_counter()
        out = {"clips_per_s": self.clips / max(now - self.t, 1e-9), "label_positive_pairs": self.positives}
        if self.terms:
            out["terms"] = {k: float(np.mean(v)) for k, v in self.terms.items()}
        self.positives, self.t, self.clips, self.terms = [], now, 0, {}
        return out


def probe(ts: TrainingState, step: int) -> list[dict[str, Any]]:
    """The learning-curve probe of the weights at ``step`` (:mod:`bench.pretrain.probing`), logged."""
    t0 = time.perf_counter()
    points = ts.prober.probe(ts.encoder, ts.model, ts.accelerator.device)
    seconds = time.perf_counter() - t0
    for p in points:
        ts.log({"event": "probe", "step": step, **p, "seconds": seconds})
    return points


@contextmanager
def _sigint_flag() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C (the loop then saves after the step under way); a second one stops at
    once. Only in the main thread, where Python delivers signals; elsewhere the event is never set."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum: int, frame: Any) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        print("\nCtrl-C: saving the training state after this step (Ctrl-C again to stop without saving)",
              file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(ts: TrainingState, step: int) -> str:
    ts.log({"event": "interrupted", "step": step, "path": str(ts.state_path)})
    text = (f"pretraining of {ts.encoder.name} interrupted at step {step} of {ts.recipe.steps}; its training state "
            f"is saved in {ts.state_path}. Run the same command again to resume from step {step} (or delete "
            f"{ts.run_dir} to start over).")
    if ts.main:
        print(text, file=sys.stderr)
    return text


def save(ts: TrainingState, step: int) -> None:
    """Write the train state of ``step`` (main process; the others wait) and log it."""
    unwrapped = ts.accelerator.unwrap_model(ts.model)
    if ts.main:
        write_atomic({
            "identity": json.dumps(identity(ts.encoder, ts.recipe)),
            "step": step,
            "model": state_dict_cpu(unwrapped),
            "optimizer": ts.optimizer.state_dict(),
            "rng": rng_state(),
            "sampler": {"kind": "stateless: batch(step) = f(seed, step)", "next_step": step},
            **({"early_stopping": ts.stopper.state()} if ts.stopper is not None else {}),
        }, ts.state_path)
        ts.log({"event": "checkpoint", "step": step, "path": str(ts.state_path)})
    ts.accelerator.wait_for_everyone()
    ts.last_good = ts.state_path


def early_stop_check(ts: TrainingState, step: int) -> bool:
    """Validate at ``step`` and log it; True when the patience has run out."""
    stopper, acc = ts.stopper, ts.accelerator
    assert stopper is not None
    value = stopper.loss(ts.encoder, ts.model, acc.device, acc.autocast)
    stop = stopper.update(step, value, lambda: acc.unwrap_model(ts.model).state_dict())
    st = stopper.status
    ts.log({"event": "valid", "step": step, "loss": value, "best_loss": st["best_loss"],
            "best_step": st["best_step"], "without_improvement": st["bad"]})
    if stop:
        ts.log({"event": "early_stop", "step": step, "best_step": st["best_step"], "best_loss": st["best_loss"],
                "patience": stopper.patience})
    return stop


def _finish_curve(ts: TrainingState, step: int) -> None:
    """The last probe when the loop ended off its schedule (early stopping), the curve into the record, the plot."""
    from bench.pretrain.curves import PLOT_FILE, load_curves, plot_curves

    curves = load_curves(ts.run_dir)
    if not any(s == step for points in curves.probe.values() for s, _ in points):
        probe(ts, step)
        curves = load_curves(ts.run_dir)
    ts.record["probe"] = {**ts.prober.describe(), "every": ts.recipe.probe_every,
                          "seconds": _probe_seconds(ts.run_dir)}
    ts.record["probe_curve"] = curves.probe_curve()
    try:
        plot_curves({ts.encoder.name: curves}, ts.run_dir / PLOT_FILE,
                    title=f"pretraining {ts.encoder.name}: probe on valid splits, loss terms")
    except Exception as exc:  # the curve is in the log and the record; a failed drawing loses nothing
        print(f"warning: the learning-curve plot could not be drawn ({type(exc).__name__}: {exc})", file=sys.stderr)


def _probe_seconds(run_dir: Path) -> float:
    """Seconds spent probing in this run folder (each probe pass counted once)."""
    passes: dict[int, float] = {}
    path = run_dir / METRICS_FILE
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if e.get("event") == "probe":
            passes[e["step"]] = float(e.get("seconds", 0.0))
    return float(sum(passes.values()))


def finish(ts: TrainingState, step: int, loss: float | None) -> PretrainResult:
    """Load the final weights into the encoder (the best validation's with early stopping), check the processes
    agree, and write the run record."""
    import torch

    record = ts.record
    final_state = state_dict_cpu(ts.accelerator.unwrap_model(ts.model))
    if ts.stopper is not None:
        if ts.stopper.best_model is not None:  # early stopping ends with the best validation's weights
            final_state = ts.stopper.best_model
        # best_step None: no validation gave a finite loss, and the run ends with its last weights
        record["early_stopping"] = ts.stopper.record()
    # DDP keeps processes in sync by construction; check it, since a silent drift would void the run
    sums = torch.stack([v.double().sum() for v in final_state.values() if v.is_floating_point()])
    per_rank = ts.accelerator.gather(sums.to(ts.accelerator.device).reshape(1, -1)).cpu()
    drift = float((per_rank - per_rank[0]).abs().max())
    record["ranks_in_sync"] = {"processes": ts.world, "max_param_sum_difference": drift, "in_sync": drift == 0.0}
    if ts.prober is not None and ts.main:  # the last weights (before the best ones of early stopping load)
        _finish_curve(ts, step)
    trained = ts.encoder.training_module()
    trained.load_state_dict(final_state)
    trained.to("cpu")
    trained.eval()
    # a pure function of (seed, step): the mean over every step run, resumed or not
    positives = [ts.sampler.label_positive_pairs(s) for s in range(step)]
    record.update({"steps": step, "final_loss": loss,
                   "label_positive_pairs": float(np.mean(positives)) if positives else 0.0})
    if ts.main:
        atomic_write(ts.run_dir / RECORD_FILE, json.dumps(record, indent=2, default=str))
        ts.log({"event": "end", "step": step, "final_loss": loss,
                "label_positive_pairs": record["label_positive_pairs"]})
    return PretrainResult(step, loss, ts.run_dir, record)
