"""Pretraining data: the pool audio decoded once, and the batch of a step as a function of (seed, step).

- :class:`AudioStore` (:mod:`bench.pretrain.audio_store`): every pool track
  decoded once; views are cropped from it.
- :class:`BatchSampler`: step ``s`` draws its global batch from
  ``numpy.random.default_rng((seed, s))``: ``round(batch * labeled_share)``
  labeled clips first, then unlabeled ones, each part with replacement from
  its pool; per clip one span of ``views * window`` samples cut into adjacent
  views (:func:`crop_views`). Process ``r`` of ``W`` takes rows ``r, r+W, ...``.
  Resuming needs no sampler state beyond the step, and the global batch does
  not depend on the number of processes. ``labeled_sampler="balanced"`` draws
  the labeled part by class instead (``per_class`` clips of each of
  ``ceil(labeled / per_class)`` classes), so a batch has label positives;
  :meth:`BatchSampler.label_positive_pairs` counts them.
- :func:`validation_batches`: the valid tracks of early stopping, one
  deterministic centre span per track, in fixed batches (no randomness).
"""

from __future__ import annotations

import numpy as np

from bench.errors import BenchError, DataError
from bench.pretrain.audio_store import AudioStore
from bench.pretrain.decode import INT16_SCALE
from bench.pretrain.pools import Pools, Track

__all__ = ["AudioStore", "BatchSampler", "crop_views", "label_rows", "validation_batches"]


def crop_views(audio: np.ndarray, n_views: int, window: int, u: np.ndarray) -> np.ndarray:
    """``[n_views, window]`` views of one clip from uniform draws ``u`` (``[n_views]`` in [0, 1)).

    A clip of at least ``n_views * window`` samples gives one span cut into
    adjacent views (start from ``u[0]``); a shorter one gives independent
    random windows (start ``u[k]`` each), zero-padded if shorter than a window.
    int16 audio (an int16 store) is scaled to float32 by :data:`INT16_SCALE`.
    """
    out = np.zeros((n_views, window), dtype=np.float32)
    span = n_views * window
    if len(audio) >= span:
        start = int(u[0] * (len(audio) - span + 1))
        out[:] = np.asarray(audio[start : start + span]).reshape(n_views, window)
    else:
        for k in range(n_views):
            start = int(u[k] * max(1, len(audio) - window + 1))
            piece = np.asarray(audio[start : start + window])
            out[k, : len(piece)] = piece
    if audio.dtype == np.int16:  # an int16 store: only the crop is converted, never the whole track
        out *= INT16_SCALE
    return out


def label_rows(tracks: list[Track | None], n_classes: int, groups: list) -> np.ndarray:
    """``[len(tracks), n_classes]`` multi-hot rows; None (an unlabeled clip) is all zeros.

    With several label groups (tasks) a labeled row is -1 on the other tasks'
    classes: unknown for this clip, not absent.
    """
    labels = np.zeros((len(tracks), n_classes), dtype=np.float32)
    for k, t in enumerate(tracks):
        if t is None:
            continue
        if groups:
            g = groups[t.group]
            labels[k, :] = -1.0
            labels[k, g.offset : g.offset + g.size] = 0.0
        labels[k, list(t.label)] = 1.0
    return labels


def validation_batches(tracks: list[Track], store: AudioStore, *, batch_size: int, views: int, window: int,
                       n_classes: int, groups: list):
    """Yield ``(views [b, views, window], labels [b, C], labeled [b])`` over the valid tracks, in order.

    One centre span per track (:func:`crop_views` with every draw 0.5), so a
    validation loss depends on the weights only; at most ``batch_size`` tracks
    a batch, the batches of near-equal size. Tracks the store could not decode
    are left out (the caller records how many were used).
    """
    usable = [t for t in tracks if store.has(t)]
    centre = np.full(views, 0.5)
    # batches of near-equal size: no last batch of one clip (a contrastive loss needs several)
    n_batches = -(-len(usable) // batch_size)
    for idx in np.array_split(np.arange(len(usable)), n_batches) if usable else []:
        part = [usable[i] for i in idx]
        v = np.stack([crop_views(store.get(t), views, window, centre) for t in part])
        yield v, label_rows(part, n_classes, groups), np.ones(len(part), dtype=bool)


class BatchSampler:
    """The batch of step ``s`` as a pure function of (seed, s): labeled first, then unlabeled.

    ``rows(step)`` gives the global batch as (pool, index) pairs and the crop
    draws; ``batch(step, rank, world)`` the views and labels of one process's
    share (rows ``rank::world``).
    """

    def __init__(self, pools: Pools, store: AudioStore, *, batch_size: int, labeled_share: float, views: int,
                 window: int, seed: int, labeled_mix: str = "step", labeled_sampler: str = "uniform",
                 per_class: int = 4) -> None:
        self.labeled = [t for t in pools.labeled if store.has(t)]
        self.unlabeled = [t for t in pools.unlabeled if store.has(t)]
        self.store = store
        self.batch_size, self.views, self.window, self.seed = batch_size, views, window, seed
        self.n_classes = pools.space.num_classes
        #: several labeled tasks: the labeled part of a step comes from one task drawn per step
        #: ("step"), or each labeled row draws its own task ("row"); then a track of that task
        self.groups = list(pools.space.groups) if len(pools.space.groups) > 1 else []
        if labeled_mix not in ("step", "row"):
            raise BenchError(f"labeled_mix must be 'step' or 'row', got {labeled_mix!r}")
        self.labeled_mix = labeled_mix
        self._by_group = [np.array([i for i, t in enumerate(self.labeled) if t.group == g], dtype=int)
                          for g in range(len(self.groups))]
        if labeled_sampler not in ("uniform", "balanced") or per_class < 1:
            raise BenchError(f"labeled_sampler must be 'uniform' or 'balanced' and per_class at least 1, got "
                             f"{labeled_sampler!r} and {per_class}")
        self.labeled_sampler, self.per_class = labeled_sampler, per_class
        self._classes = self._class_members() if labeled_sampler == "balanced" else {}
        empty = [self.groups[g].task for g, idx in enumerate(self._by_group) if not len(idx)]
        if empty:
            raise DataError(f"labeled task(s) {', '.join(empty)}: no train track could be decoded")
        if not 0 <= labeled_share <= 1:
            raise BenchError(f"labeled_share (b_s) must be in [0, 1], got {labeled_share}")
        self.n_labeled = int(round(batch_size * labeled_share)) if self.labeled or labeled_share > 0 else 0
        if self.n_labeled and not self.labeled:
            raise DataError("labeled_share > 0 but the labeled pool is empty (no labeled task, or no decodable file)")
        if self.n_labeled < batch_size and not self.unlabeled:
            raise DataError(
                f"{batch_size - self.n_labeled} unlabeled clips per batch but the unlabeled pool is empty "
                "(no track could be decoded)" if pools.unlabeled else "the unlabeled pool is empty"
            )

    def _class_members(self) -> dict[int, dict[int, np.ndarray]]:
        """Per label group (0 with one task), per class (a tag of a multi-label task): the labeled tracks that
        have it. Classes with a single track are left out when a group has classes with more (a clip drawn
        ``per_class`` times is a positive of itself only), unless ``per_class`` is 1."""
        out: dict[int, dict[int, np.ndarray]] = {}
        for g in range(max(1, len(self.groups))):
            members: dict[int, list[int]] = {}
            for i, t in enumerate(self.labeled):
                if t.group == g or not self.groups:
                    for c in t.label or ():
                        members.setdefault(c, []).append(i)
            several = {c: m for c, m in members.items() if len(m) > 1}
            keep = several if several and self.per_class > 1 else members
            out[g] = {c: np.array(m, dtype=int) for c, m in sorted(keep.items())}
        return out

    def _balanced(self, rng: np.random.Generator) -> np.ndarray:
        """The labeled rows of a balanced batch: ``ceil(n / per_class)`` distinct classes (with replacement only
        when there are fewer), ``per_class`` tracks of each (the last class takes the remainder)."""
        if self.groups and self.labeled_mix == "step":
            classes = [(g, c) for g in [int(rng.integers(0, len(self.groups)))] for c in self._classes[g]]
        else:
            classes = [(g, c) for g, by_class in self._classes.items() for c in by_class]
        if not classes:
            raise DataError("labeled_sampler=balanced: the labeled pool has no clip with a label to draw by")
        n, m = self.n_labeled, self.per_class
        k = -(-n // m)
        chosen = rng.choice(len(classes), size=k, replace=k > len(classes))
        out: list[np.ndarray] = []
        for j, pick in enumerate(chosen):
            g, c = classes[int(pick)]
            members, want = self._classes[g][c], min(m, n - j * m)
            out.append(members[rng.choice(len(members), size=want, replace=len(members) < want)])
        return np.concatenate(out)

    def rows(self, step: int) -> tuple[list[tuple[bool, int]], np.ndarray]:
        rng = np.random.default_rng([self.seed, step])
        if self.labeled_sampler == "balanced" and self.n_labeled:
            lab = self._balanced(rng)
        elif self.groups and self.n_labeled:
            if self.labeled_mix == "step":
                g = np.full(self.n_labeled, rng.integers(0, len(self.groups)))
            else:
                g = rng.integers(0, len(self.groups), size=self.n_labeled)
            pick = rng.random(self.n_labeled)
            lab = np.array([self._by_group[k][int(p * len(self._by_group[k]))] for k, p in zip(g, pick)], dtype=int)
        else:
            lab = rng.integers(0, len(self.labeled), size=self.n_labeled) if self.n_labeled else np.zeros(0, int)
        n_u = self.batch_size - self.n_labeled
        unl = rng.integers(0, len(self.unlabeled), size=n_u) if n_u else np.zeros(0, int)
        u = rng.random((self.batch_size, self.views))
        return [(True, int(i)) for i in lab] + [(False, int(i)) for i in unl], u

    def batch(self, step: int, rank: int = 0, world: int = 1) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        rows, u = self.rows(step)
        mine = list(range(rank, self.batch_size, world))
        views = np.stack([crop_views(self.store.get(self._track(rows[i])), self.views, self.window, u[i]) for i in mine])
        labeled = np.array([rows[i][0] for i in mine], dtype=bool)
        labels = None
        if self.n_classes:
            labels = label_rows([self.labeled[rows[i][1]] if rows[i][0] else None for i in mine],
                                self.n_classes, self.groups)
        return views, labels, labeled

    def row_groups(self, step: int, rank: int = 0, world: int = 1) -> np.ndarray:
        """The label group (index into ``LabelSpace.groups``) of each of this process's rows of step
        ``step``, -1 for unlabeled rows: which rows label-aware augmentation treats as whose labels."""
        rows, _ = self.rows(step)
        return np.array([self.labeled[rows[i][1]].group if rows[i][0] else -1
                         for i in range(rank, self.batch_size, world)], dtype=np.int64)

    def label_positive_pairs(self, step: int) -> int:
        """How many pairs of the global batch of ``step`` share at least one label (the label positives of
        a contrastive loss; two views of one clip are not counted)."""
        rows, _ = self.rows(step)
        labs = [self.labeled[i].label or () for is_labeled, i in rows if is_labeled]
        if len(labs) < 2 or not self.n_classes:
            return 0
        y = np.zeros((len(labs), self.n_classes), dtype=np.int64)
        for k, lab in enumerate(labs):
            y[k, list(lab)] = 1
        return int(np.triu((y @ y.T) > 0, 1).sum())

    def _track(self, row: tuple[bool, int]) -> Track:
        return self.labeled[row[1]] if row[0] else self.unlabeled[row[1]]
