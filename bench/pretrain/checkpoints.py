"""Pretrained checkpoints for the run pipeline: found in the cache by key, else trained once.

``<cache>/checkpoints/<name>-<key>.safetensors`` holds the weights and, in
its metadata, the encoder config and what the training used (steps, final
loss, recipe, pools); ``<name>-<key>.run/`` beside it holds the training
state, the metrics log and the run record, so an interrupted run resumes. A cached checkpoint is used only
when it matches the checksum sealed with it (:func:`checkpoint_ok`); a bad one is said once, removed and
trained again (resuming from its ``.run/`` state).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench import keys
from bench.config import DataRoots
from bench.encoder import Encoder, Recipe, TrainableEncoder
from bench.filelock import exclusive
from bench.pretrain.loop import PretrainResult, pretrain
from bench.pretrain.pools import PoolPlan, plan_pools
from bench.store import log, remove, verify
from bench.weights import load_checkpoint, save_checkpoint


def checkpoint_key(encoder: TrainableEncoder, recipe: Recipe, plan: PoolPlan, data_roots: DataRoots) -> str:
    """``<name>-<sha256[:16]>`` of the encoder config, the training recipe and the pools' data sources.

    The recipe and the data are in the key as well as the config: the same
    encoder trained on demo data and on real data, for 300 or for 50k steps,
    or with another set of tasks present, must not share a checkpoint.
    """
    # key_dict: a recipe key added later is hashed only when set, so earlier checkpoints keep their key
    payload: dict[str, Any] = {"config": encoder.config(), "recipe": recipe.key_dict(), "pools": plan.data_sources()}
    if data_roots.general is None and not data_roots.per_task:
        payload["demo"] = [data_roots.demo_size, data_roots.demo_seed]
    return f"{encoder.name}-{keys.make(payload).digest[:16]}"


def checkpoint_ok(path: Path) -> bool:
    """Whether the cached checkpoint ``path`` exists and matches its sealed checksum; a bad one is removed."""
    if not path.is_file():
        return False
    ok = verify(path)
    if not ok:
        log(f"warning: cached checkpoint {path} " + ("has no recorded checksum" if ok is None else
            "does not match its recorded checksum (changed or damaged)") + "; removing it and training it again.")
        remove(path)
        remove(Path(f"{path}.sha256"))
    return bool(ok)


def default_checkpoint(encoder: TrainableEncoder, recipe: Recipe, data_roots: DataRoots,
                       cache_dir: Path) -> tuple[Path, PoolPlan]:
    """Where the cache keeps ``encoder`` trained with ``recipe`` on the data present, and the pool plan."""
    plan = plan_pools(encoder.label_spec(), recipe, data_roots)
    key = checkpoint_key(encoder, recipe, plan, data_roots)
    return Path(cache_dir) / "checkpoints" / f"{key}.safetensors", plan


def ensure_pretrained(encoder: Encoder, *, data_roots: DataRoots, cache_dir: str | Path, device: str = "cpu",
                      quiet: bool = False, recipe: Recipe | None = None, progress: bool = True,
                      plan: PoolPlan | None = None, out: Path | None = None, run_dir: Path | None = None,
                      resume: bool = True, **train_options: Any) -> tuple[Path, dict[str, Any]]:
    """The checkpoint of ``encoder``: reused if cached, else trained now; returns (path, its metadata).

    The one path to a trained checkpoint (``bench run`` and ``bench pretrain``):
    training holds the lock of its run folder, so two processes never write
    the same ``.run/`` state; a process that finds the lock taken waits, then
    uses what the other trained. ``plan``: the pools already planned for this
    encoder and recipe (planned here otherwise, once, and passed to the
    trainer). ``out``: write the checkpoint there instead of the cache (then
    it is trained, or resumed, even if the file exists: its name holds no
    key); ``resume=False`` trains from step 0 even when a checkpoint or a
    training state exists. ``train_options``: passed to
    :func:`bench.pretrain.loop.pretrain` (mixed_precision, compile,
    sync_batchnorm).

    The weights are loaded into ``encoder``. A frozen encoder with weights
    (the ``random`` baseline) is not trained: its seeded initial weights are
    written once so the pipeline can hash and load them like any other.
    """
    folder = Path(cache_dir) / "checkpoints"
    if not isinstance(encoder, TrainableEncoder):
        path = folder / f"{encoder.name}-{keys.make(encoder.config()).digest[:16]}.safetensors"
        if not checkpoint_ok(path):
            save_checkpoint(encoder, path, extra={"trained": False, "note": "seeded initial weights, never trained"})
        return path, load_checkpoint(encoder, path)
    recipe = recipe or encoder.recipe()
    if plan is None:
        plan = plan_pools(encoder.label_spec(), recipe, data_roots)
    path = Path(out) if out is not None else folder / f"{checkpoint_key(encoder, recipe, plan, data_roots)}.safetensors"
    reuse = out is None and resume
    if reuse and checkpoint_ok(path):
        if not quiet:
            print(f"Using cached pretrained checkpoint {path}", file=sys.stderr)
        return path, load_checkpoint(encoder, path)
    run_dir = Path(run_dir) if run_dir is not None else path.with_suffix(".run")
    lock = run_dir.with_suffix(".lock")
    waiting = "" if quiet else f"Waiting for another process that is pretraining {encoder.name} (lock file {lock})"
    with exclusive(lock, waiting):
        if reuse and checkpoint_ok(path):  # another process finished it while this one waited
            if not quiet:
                print(f"Using the checkpoint another process just trained: {path}", file=sys.stderr)
            return path, load_checkpoint(encoder, path)
        result = pretrain(encoder, data_roots=data_roots, run_dir=run_dir, cache_dir=cache_dir, device=device,
                          quiet=quiet, recipe=recipe, plan=plan, progress=progress, resume=resume, **train_options)
        save_final(encoder, path, result)
    return path, load_checkpoint(encoder, path)


def save_final(encoder: TrainableEncoder, path: Path, result: PretrainResult) -> None:
    """Write the trained weights with what the training used (main process only; the others wait)."""
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        extra = {
            "trained": True, "steps": result.steps, "final_loss": result.final_loss,
            "recipe": result.record.get("recipe"), "run_dir": str(result.run_dir),
            "pools": result.record.get("pools", {}).get("sources"),
            "held_out_excluded": result.record.get("held_out_check", {}).get("excluded_count"),
            # the mean per step of the batch pairs that share a label; the thread count changes CPU weights
            "label_positive_pairs": result.record.get("label_positive_pairs"),
            "torch_threads": result.record.get("torch_threads"),
        }
        if result.record.get("probe_curve") is not None:  # the learning curve (Recipe.probe_every)
            extra["probe_curve"] = result.record["probe_curve"]
        if result.record.get("early_stopping"):  # the weights are those of best_step, not of the last step
            extra["early_stopping"] = result.record["early_stopping"]
        save_checkpoint(encoder, path, extra=extra)
    state.wait_for_everyone()
