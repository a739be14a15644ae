"""What a probe trains and is scored on: track means, random windows (crops) or segments, as device tensors.

Three ways to turn a split's embeddings into probe examples (``ProbeConfig.train_on``):

- ``track``: one example per track, its mean embedding (the ``bench`` protocol;
  MARBLE for tracks up to 30 s).
- ``crop``: training draws one window per track each epoch (the official
  SemiSupCon code trains on one random 2.7 s crop per track per epoch);
  validation draws one window per validation track each epoch; the test
  split is scored on the mean embedding.
- ``segments``: each track's windows are grouped into consecutive segments of
  ``segment`` windows whose means are the training examples; validation and
  test logits are averaged over a track's segments (MARBLE cuts GiantSteps
  into 30 s clips and averages the clips' logits).

Crops and segments need the per-window embeddings (:class:`WindowSet`); a
plain ``[N, D]`` array is a split with one window per track (its mean).
Standardisation, when on, uses the mean and std of the train split's track
means for every tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class WindowSet:
    """A split's embeddings with its windows: ``means [N, D]``, ``windows [M, D]`` in track order, ``counts [N]``."""

    means: np.ndarray
    windows: np.ndarray
    counts: np.ndarray

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if len(self.counts) != len(self.means) or int(self.counts.sum()) != len(self.windows):
            raise ValueError(f"window counts ({len(self.counts)} tracks, {int(self.counts.sum())} windows) do not "
                             f"match {len(self.means)} track means and {len(self.windows)} windows")
        if (self.counts < 1).any():
            raise ValueError("every track needs at least one window")

    def __len__(self) -> int:
        return len(self.means)


def probe_input(e: Any) -> Any:
    """What the probe reads of a split's :class:`bench.extract.Embeddings`: its track means, or a
    :class:`WindowSet` when the windows were kept."""
    if e.window_X is None:
        return e.X
    return WindowSet(e.X, e.window_X, e.window_counts)


def means_of(x: Any) -> np.ndarray:
    """The ``[N, D]`` track means of a split given as an array or a :class:`WindowSet`."""
    return x.means if isinstance(x, WindowSet) else np.asarray(x)


def _windows_of(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """(windows, counts) of a split; a plain array is one window (the mean) per track."""
    if isinstance(x, WindowSet):
        return np.asarray(x.windows), x.counts
    x = np.asarray(x)
    return x, np.ones(len(x), dtype=np.int64)


def segments(windows: np.ndarray, counts: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment means and their track index: consecutive runs of ``size`` windows, the remainder dropped.

    A track shorter than one segment gives one segment of all its windows
    (MARBLE leaves such a track out altogether; a track with no example cannot
    be scored, so it is kept whole).
    """
    size = max(1, int(size))
    out, owner = [], []
    start = 0
    for t, c in enumerate(counts.tolist()):
        w = windows[start : start + c]
        start += c
        n = c // size
        if n == 0:
            out.append(w.mean(axis=0, keepdims=True))
            owner.append(t)
            continue
        out.append(w[: n * size].reshape(n, size, -1).mean(axis=1))
        owner.extend([t] * n)
    dim = windows.shape[1] if windows.ndim == 2 else 0
    X = np.concatenate(out).astype(np.float32) if out else np.zeros((0, dim), np.float32)
    return X, np.asarray(owner, dtype=np.int64)


#: how segment logits become a track's scores, in MARBLE's order (its ``predict_result_ensemble``): the argmax
#: of each is the strategy's prediction. ``vote``: share of segments predicting each class (ties: the lowest
#: class, as scipy's mode); ``max``: per-class maximum logit; ``gmean``: mean logit; ``mean``: log of the mean
#: softmax probability.
ENSEMBLES: tuple[str, ...] = ("vote", "max", "gmean", "mean")


def ensemble_tracks(out: Any, owner: Any, n: int, how: str) -> Any:
    """Track scores ``[n, C]`` from segment logits ``out [S, C]`` of tracks ``owner [S]`` by strategy ``how``."""
    import torch

    if how not in ENSEMBLES:
        raise ValueError(f"unknown segment ensemble {how!r}; use one of {', '.join(ENSEMBLES)}")
    dev, dt = out.device, out.dtype
    counts = torch.zeros(n, device=dev, dtype=dt).index_add_(0, owner, torch.ones_like(owner, dtype=dt))
    counts = counts.clamp_min(1)[:, None]
    zeros = torch.zeros(n, out.shape[1], device=dev, dtype=dt)
    if how == "gmean":
        return zeros.index_add_(0, owner, out) / counts
    if how == "mean":
        return torch.log((zeros.index_add_(0, owner, torch.softmax(out, dim=1)) / counts).clamp_min(1e-30))
    if how == "vote":
        hot = torch.nn.functional.one_hot(out.argmax(dim=1), out.shape[1]).to(dt)
        return zeros.index_add_(0, owner, hot) / counts
    idx = owner[:, None].expand_as(out)
    return zeros.fill_(-torch.inf).scatter_reduce_(0, idx, out, reduce="amax", include_self=True)


class ProbeData:
    """The splits of one probe as tensors on the device, prepared once for every grid point."""

    def __init__(self, train: Any, y_train: Any, valid: Any, y_valid: Any, test: Any, config: Any,
                 extra_tests: dict[str, Any] | None = None) -> None:
        import torch

        if len(train) == 0 or len(valid) == 0:
            raise ValueError("the probe needs at least one train and one validation track")
        self.mode = config.train_on
        if self.mode not in ("track", "crop", "segments"):
            raise ValueError(f"unknown probe training mode {self.mode!r}; use 'track', 'crop' or 'segments'")
        self.dev = torch.device(config.device)
        means_tr = np.asarray(means_of(train), dtype=np.float64)
        if config.standardise:
            mean = means_tr.mean(axis=0, keepdims=True)
            std = means_tr.std(axis=0, keepdims=True)
            std[std < 1e-8] = 1.0
        else:
            mean, std = 0.0, 1.0

        def prep(X: np.ndarray) -> "torch.Tensor":
            X = np.asarray(X, dtype=np.float64)
            return torch.from_numpy(((X - mean) / std).astype(np.float32)).to(self.dev)

        def long(a: np.ndarray) -> "torch.Tensor":
            return torch.from_numpy(np.asarray(a, dtype=np.int64)).to(self.dev)

        self.dim = means_tr.shape[1]
        self.ytr = torch.from_numpy(np.asarray(y_train)).to(self.dev)
        self.yva = torch.from_numpy(np.asarray(y_valid)).to(self.dev)
        self.xtr, self.xva = prep(means_tr), prep(means_of(valid))
        self.n_valid = len(self.xva)
        if self.mode == "segments":
            # every split is scored per segment: examples, and the track each belongs to
            self.seg = {}
            for name, split in (("train", train), ("valid", valid), ("test", test),
                                *((f"extra:{k}", v) for k, v in (extra_tests or {}).items())):
                X, owner = segments(*_windows_of(split), config.segment or 1)
                self.seg[name] = (prep(X), long(owner), len(means_of(split)))
            self.xte = prep(means_of(test))
        else:
            self.xte = prep(means_of(test))
        # further test sets use the train statistics, like the test split
        self.extra = {name: prep(means_of(X)) for name, X in (extra_tests or {}).items()}
        if self.mode == "crop":
            for split, attr in ((train, "tr"), (valid, "va")):
                w, c = _windows_of(split)
                setattr(self, f"w{attr}", prep(w))
                setattr(self, f"c{attr}", torch.from_numpy(c))
                setattr(self, f"o{attr}", torch.from_numpy(np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64)))

    # -- examples -------------------------------------------------------------------------------
    def n_train(self) -> int:
        """Examples drawn per epoch: tracks (track, crop) or segments."""
        return len(self.seg["train"][0]) if self.mode == "segments" else len(self.xtr)

    def train_batch(self, idx: "Any", crop_u: "Any | None" = None) -> tuple["Any", "Any"]:
        """Inputs and targets of the training examples ``idx`` (device tensor); crops pick a window each."""
        if self.mode == "segments":
            X, owner, _ = self.seg["train"]
            return X[idx], self.ytr[owner[idx]]
        if self.mode == "crop":
            i = idx.cpu()
            pick = self.otr[i] + (crop_u * self.ctr[i]).long().clamp_max(self.ctr[i] - 1)
            return self.wtr[pick.to(self.dev)], self.ytr[idx]
        return self.xtr[idx], self.ytr[idx]

    def valid_inputs(self, vgen: "Any | None" = None) -> "Any":
        """The validation inputs of one epoch (crops: one fresh random window per track)."""
        import torch

        if self.mode == "crop":
            u = torch.rand(self.n_valid, generator=vgen, dtype=torch.float64)
            pick = self.ova + (u * self.cva).long().clamp_max(self.cva - 1)
            return self.wva[pick.to(self.dev)]
        return self.xva

    def track_logits(self, model: Any, split: str, ensemble: str = "gmean") -> "Any":
        """Track-level scores of ``valid``, ``test`` or ``extra:NAME``: means, or segment logits ensembled per
        track by ``ensemble`` (:data:`ENSEMBLES`; only with segments)."""

        if self.mode == "segments" and split in self.seg:
            X, owner, n = self.seg[split]
            out = model(X)
            return ensemble_tracks(out, owner, n, ensemble)
        if split == "valid":
            return model(self.xva)
        if split == "test":
            return model(self.xte)
        return model(self.extra[split.split(":", 1)[1]])
