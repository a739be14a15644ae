"""Learning curves: a cheap linear probe of the encoder during pretraining (``Recipe.probe_every``).

Every ``probe_every`` steps, at the first step (before any update) and at the
last, the encoder is probed on the VALIDATION split of each task in the
pretraining's pools (its labeled and unlabeled tasks; with no unlabeled pool,
as for ``supervised``, the unlabeled tasks the recipe names, else the tasks of
``--tasks all``, as the unlabeled pool's default; not every registered task:
in demo mode that built the demo data of eight more tasks, 10 minutes of a
supervised pretraining in `bench reproduce`): a ridge-regression linear probe
(closed form, features standardised on train) fitted on the track-mean
embeddings of a fixed subset of the task's train split (at most
:data:`TRAIN_TRACKS` tracks) and scored with the task's primary metric on a
fixed subset of its valid split (at most :data:`VALID_TRACKS`). Each track
gives :data:`CROPS` evenly spaced windows (the centre one). The subsets are seeded permutations
(``numpy.random.default_rng``, never the global RNG) and the crops fixed, so
a curve depends on the weights only.

The encoder embeds in eval mode under ``torch.no_grad()`` and goes back to
train mode: BatchNorm's running statistics are not updated, no random number
is drawn, and the training's RNG streams and batches are those of a run
without probes (tests/test_pretrain_curves.py compares the weights bit for
bit). One process only (the probe is not synchronised across processes).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import plugins
from bench.config import DataRoots
from bench.encoder import TrainableEncoder
from bench.pretrain.audio_store import AudioStore
from bench.pretrain.pools import PoolPlan, Track

#: tracks of each task's train split the probe is fitted on, and of its valid split it is scored on
TRAIN_TRACKS = 64
VALID_TRACKS = 64
#: evenly spaced windows a track, mean-pooled (one: the centre window)
CROPS = 1
#: seed of the subsets
SEED = 0
#: ridge penalty of the probe, per feature (standardised features)
RIDGE = 1.0


@dataclass
class ProbeTask:
    name: str
    kind: str
    metric: str
    task: Any
    n_classes: int
    train: list[Track]
    valid: list[Track]


def _labels(item_label: Any) -> tuple[int, ...]:
    return (int(item_label),) if isinstance(item_label, (int, np.integer)) else tuple(int(i) for i in item_label)


def probe_task_names(plan: PoolPlan, unlabeled_tasks: tuple[str, ...] | None) -> list[str]:
    """The tasks a curve covers: those of the pools, else the recipe's unlabeled tasks, else those of
    ``--tasks all``."""
    names = [d.task.name for d in plan.labeled + plan.unlabeled]
    if not plan.unlabeled and not plan.dirs:
        names += list(unlabeled_tasks) if unlabeled_tasks is not None else plugins.tasks().resolve("all")
    return list(dict.fromkeys(names))


def build_probe_tasks(names: list[str], data_roots: DataRoots) -> tuple[list[ProbeTask], dict[str, str]]:
    """The fixed train/valid subsets of each task; (tasks, task -> why it is left out)."""
    out, skipped = [], {}
    for i, name in enumerate(names):
        try:
            task = plugins.get_task(name)
            if task.kind not in ("multiclass", "multilabel"):
                skipped[name] = f"{task.kind} task (the probe is a classifier)"
                continue
            root = data_roots.root(task)
            n_classes = len(task.classes(root))
            splits = {}
            for split, n in (("train", TRAIN_TRACKS), ("valid", VALID_TRACKS)):
                items = list(task.items(split, root).items)
                order = np.random.default_rng([SEED, i, len(split)]).permutation(len(items))[:n]
                splits[split] = [Track(items[k].path, str(items[k].track_id), f"probe:{name}",
                                       _labels(items[k].label), items[k].start, items[k].end) for k in sorted(order)]
            if not splits["train"] or not splits["valid"]:
                skipped[name] = "no train or no valid tracks"
                continue
        except Exception as exc:  # a task without data or a broken plugin: recorded, the others still probed
            skipped[name] = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            continue
        out.append(ProbeTask(name, task.kind, task.primary_metric, task, n_classes, splits["train"],
                             splits["valid"]))
    return out, skipped


class Prober:
    """The probe tasks of a run, their audio decoded once, and the probe of the current weights."""

    def __init__(self, tasks: list[ProbeTask], skipped: dict[str, str], encoder: TrainableEncoder,
                 cache_dir: Path, quiet: bool) -> None:
        self.tasks, self.skipped = tasks, skipped
        tracks = [t for pt in tasks for t in pt.train + pt.valid]
        self.store = AudioStore(tracks, encoder.sample_rate, cache_dir, quiet=quiet) if tracks else None
        self.window = encoder.window

    def describe(self) -> dict[str, Any]:
        return {"tasks": {pt.name: {"metric": pt.metric, "train_tracks": len(pt.train), "valid_tracks": len(pt.valid)}
                          for pt in self.tasks},
                "skipped": self.skipped, "crops": CROPS, "probe": f"ridge regression (alpha {RIDGE} per feature) on track means",
                "seed": SEED}

    def _windows(self, track: Track) -> np.ndarray:
        assert self.store is not None, "a track to embed implies a store"
        audio = np.asarray(self.store.get(track), dtype=np.float32)
        w = self.window
        out = np.zeros((CROPS, w), dtype=np.float32)
        for k in range(CROPS):
            start = int((k + 0.5) / CROPS * max(0, len(audio) - w))
            piece = audio[start : start + w]
            out[k, : len(piece)] = piece
        return out

    def _embed(self, encoder: TrainableEncoder, tracks: list[Track], device: Any) -> tuple[np.ndarray, list[int]]:
        import torch

        usable = [i for i, t in enumerate(tracks) if self.store is not None and self.store.has(t)]
        if not usable:
            return np.zeros((0, encoder.dim)), []
        x = torch.from_numpy(np.stack([self._windows(tracks[i]) for i in usable])).to(device)
        feats = []
        for chunk in x.reshape(-1, self.window).split(256):
            feats.append(encoder.embed(chunk).float().cpu())
        emb = torch.cat(feats).reshape(len(usable), CROPS, -1).mean(1)
        return emb.double().numpy(), usable

    def probe(self, encoder: TrainableEncoder, model: Any, device: Any) -> list[dict[str, Any]]:
        """``[{task, metric, value}]`` of the current weights; the model back in train mode after."""
        import torch

        model.eval()
        try:
            with torch.no_grad():
                embedded = [(pt, self._embed(encoder, pt.train, device), self._embed(encoder, pt.valid, device))
                            for pt in self.tasks]
        finally:
            model.train()
        out = []
        for pt, (xtr, itr), (xva, iva) in embedded:
            value = _fit_score(pt, xtr, [pt.train[i] for i in itr], xva, [pt.valid[i] for i in iva])
            out.append({"task": pt.name, "metric": pt.metric, "value": value})
        return out


def _targets(pt: ProbeTask, tracks: list[Track]) -> np.ndarray:
    y = np.zeros((len(tracks), pt.n_classes))
    for k, t in enumerate(tracks):
        assert t.label is not None, "probe tasks hold labelled tracks only"
        y[k, list(t.label)] = 1.0
    return y


def _fit_score(pt: ProbeTask, xtr: np.ndarray, train: list[Track], xva: np.ndarray,
               valid: list[Track]) -> float | None:
    """The task's primary metric of a ridge probe fitted on train, scored on valid (None: not defined).

    Ridge regression on the one-hot (multiclass) or multi-hot (multilabel)
    targets, features standardised on train, with a bias; solved in closed
    form in its dual (a few tracks, hundreds of dimensions): milliseconds, no
    iterations and no seed (a logistic regression took seconds a task).
    """
    if not len(train) or not len(valid):
        return None
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-8
    xtr, xva = (xtr - mu) / sd, (xva - mu) / sd
    ytr, yva = _targets(pt, train), _targets(pt, valid)
    ymean = ytr.mean(0)
    gram = xtr @ xtr.T
    alpha = np.linalg.solve(gram + RIDGE * xtr.shape[1] * np.eye(len(xtr)), ytr - ymean)
    scores = xva @ (xtr.T @ alpha) + ymean
    if pt.kind == "multiclass":
        absent = ytr.sum(0) == 0
        scores[:, absent] = scores.min() - 1.0  # classes absent from the probe's train subset: never predicted
    truth: Any = yva.argmax(1) if pt.kind == "multiclass" else yva
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = pt.task.score(truth, scores).get(pt.metric)
    except Exception as exc:  # a metric undefined on this subset: the point is left out, and said
        print(f"warning: learning-curve probe of {pt.name}: {exc}", file=sys.stderr)
        return None
    return float(value) if value is not None and np.isfinite(value) else None
