"""Scoring an encoder with the classification head it was trained with ("own head").

The official supervised baseline is evaluated with its own head: the linear
head trained end to end with the encoder, applied to the mean embedding of the
test track (SemiSupCon ``finetuning.py:166``). :func:`evaluate` does that for
any encoder whose :meth:`bench.encoder.TrainableEncoder.head_logits` gives
logits, on every task that was part of its labeled pool; ``bench.run`` writes
its record beside the re-fitted probe's, labelled ``<variant> (own head)``.

The head's columns follow the pretraining label space: the labeled tasks in
the order of the checkpoint's pool sources, each block with the classes the
task had then (its default settings). They are matched to the evaluated task's
classes by name, so a protocol that changes the class set (NSynth over 112
pitches) still scores the classes the head knows; a class the head never saw
gets no score (logit -inf, probability 0).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from bench.encoder import Encoder
    from bench.extract import Embeddings
    from bench.probe import SelectedProbe
    from bench.task import Task


def head_columns(weights: dict[str, Any], task_name: str) -> tuple[int, list[str]] | None:
    """(offset, class names) of ``task_name``'s block in the head, from the checkpoint's pool sources."""
    from bench import plugins

    labeled = ((weights or {}).get("pools") or {}).get("labeled") or []
    offset = 0
    for src in labeled:
        classes = list(plugins.get_task(src["task"]).classes(Path(src["root"])))
        if src["task"] == task_name:
            return offset, classes
        offset += len(classes)
    return None


def scores(encoder: Encoder, weights: dict[str, Any], task: Task, classes: list[str], X: np.ndarray,
           device: str = "cpu") -> np.ndarray | None:
    """The own head's scores ``[N, C]`` of ``task`` (logits, or probabilities when multilabel); None without one."""
    import torch

    from bench.encoder import TrainableEncoder

    if not isinstance(encoder, TrainableEncoder):
        return None
    cols = head_columns(weights, task.name)
    if cols is None:
        return None
    with torch.no_grad():
        logits = encoder.head_logits(torch.from_numpy(np.asarray(X, dtype=np.float32)).to(device))
    if logits is None:
        return None
    offset, head_classes = cols
    block = logits[:, offset : offset + len(head_classes)].float().cpu().numpy()
    where = {c: i for i, c in enumerate(head_classes)}
    out = np.full((len(X), len(classes)), -np.inf, dtype=np.float32)
    for j, c in enumerate(classes):
        if c in where:
            out[:, j] = block[:, where[c]]
    if task.kind == "multilabel":
        out = 1.0 / (1.0 + np.exp(-out))
    return out


#: the ``probe`` field of an own-head record
PROBE = {"kind": "own_head", "head": "the encoder's pretraining head on the track mean embedding",
         "note": "no probe fitted; one record (seed 0): the head is deterministic"}


def evaluate(encoder: Encoder, weights: dict[str, Any], task: Task, classes: list[str], test: Embeddings,
             device: str = "cpu") -> tuple[SelectedProbe, dict[str, Any], dict[str, Any]] | None:
    """(a SelectedProbe holding the own head's test scores, metrics, confidence) of ``task``, or None."""
    from bench import confidence
    from bench.probe import ProbeResult, SelectedProbe, targets

    sc = scores(encoder, weights, task, classes, test.X, device)
    if sc is None:
        return None
    y = targets([it.label for it in test.items], len(classes), task.kind)
    res = ProbeResult(test_scores=sc, valid_loss=math.nan, best_epoch=0, epochs=0, seconds=0.0)
    sel = SelectedProbe(res, math.nan, math.nan, [], "own head (none chosen)")
    return sel, {"clean": task.score(y, sc)}, {"clean": confidence.bootstrap(task.score, y, sc, task.primary_metric)}
