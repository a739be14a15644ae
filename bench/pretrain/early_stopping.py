"""Early stopping of pretraining on the labeled tasks' valid split (``Recipe.early_stopping_patience``).

The rule is Lightning's ``EarlyStopping`` (mode min, min_delta 0) as the
official supervised baseline uses it: a validation loss strictly below the
best so far resets the counter and keeps a copy of the weights; otherwise the
counter grows, and training stops when it reaches the patience. The run ends
with the best validation's weights. The validation loss is the encoder's own
``pretrain_loss`` on one centre crop per valid track
(:func:`bench.pretrain.sampling.validation_batches`), the training module in
eval mode under ``torch.no_grad()``: the valid tracks choose when to stop and
which weights to keep, and never take a gradient step. The status and the
best copy go into the train state, so a resumed run stops where an
uninterrupted one does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.encoder import LabelSpace, TrainableEncoder
from bench.pretrain.pools import Track
from bench.pretrain.sampling import AudioStore, validation_batches


class EarlyStopping:
    """Validation schedule, best weights and stop decision of one (single-process) run."""

    def __init__(self, patience: int, validate_every: int, tracks: list[Track], store: AudioStore, *,
                 batch_size: int, views: int, window: int, space: LabelSpace) -> None:
        self.patience, self.validate_every = patience, validate_every
        self.tracks, self.store = tracks, store
        self.batch_size, self.views, self.window = batch_size, views, window
        self.n_classes = space.num_classes
        self.groups = list(space.groups) if len(space.groups) > 1 else []
        self.decoded = sum(store.has(t) for t in tracks)
        #: the best validation so far, validations since it, where the run stopped (None: not stopped)
        self.status: dict[str, Any] = {"best_loss": None, "best_step": None, "bad": 0, "stopped_at": None,
                                       "validations": 0}
        self.best_model: dict[str, Any] | None = None

    @property
    def stopped(self) -> bool:
        return self.status["stopped_at"] is not None

    def due(self, step: int, steps: int) -> bool:
        """Validate after ``step`` (every ``validate_every`` steps and at the last one)?"""
        return step % self.validate_every == 0 or step == steps

    def loss(self, encoder: TrainableEncoder, model: Any, device: Any, autocast: Callable[[], Any]) -> float:
        """Mean ``pretrain_loss`` over the valid tracks (batch losses weighted by size), ``model`` in eval mode."""
        import torch

        model.eval()
        total, count = 0.0, 0
        try:
            with torch.no_grad():
                for v, y, lab in validation_batches(self.tracks, self.store, batch_size=self.batch_size,
                                                    views=self.views, window=self.window, n_classes=self.n_classes,
                                                    groups=self.groups):
                    with autocast():
                        out = encoder.pretrain_loss(torch.from_numpy(v).to(device), torch.from_numpy(y).to(device),
                                                    torch.from_numpy(lab).to(device), model)
                    total += float(out.detach().float()) * len(v)
                    count += len(v)
        finally:
            model.train()
        return total / count

    def update(self, step: int, value: float, weights: Callable[[], dict[str, Any]]) -> bool:
        """Record the validation loss ``value`` of ``step``; copy ``weights()`` when best; True: stop now."""
        s = self.status
        s["validations"] += 1
        if np.isfinite(value) and (s["best_loss"] is None or value < s["best_loss"]):
            s.update(best_loss=float(value), best_step=step, bad=0)
            self.best_model = {k: v.detach().cpu().clone() for k, v in weights().items()}
        else:
            s["bad"] += 1
        if s["bad"] >= self.patience:
            s["stopped_at"] = step
        return self.stopped

    def state(self) -> dict[str, Any]:
        """What the train state keeps (tensors and plain values: read back with ``weights_only``)."""
        return {"status": dict(self.status), "best_model": self.best_model}

    def load(self, state: dict[str, Any]) -> None:
        self.status, self.best_model = dict(state["status"]), state["best_model"]

    def record(self) -> dict[str, Any]:
        """The run record's ``early_stopping`` block (the checkpoint's metadata holds it too)."""
        return {
            "patience": self.patience, "validate_every": self.validate_every, "valid_tracks": len(self.tracks),
            "valid_tracks_decoded": self.decoded, "crop": "one centre span per track",
            "monitor": "the encoder's pretrain_loss on the valid tracks, eval mode, no gradient (lower is better)",
            **{k: self.status[k] for k in ("best_step", "best_loss", "stopped_at", "validations")},
        }
