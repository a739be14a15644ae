"""Probe stage: a small classifier trained on frozen track embeddings.

Protocol (method.md): features standardised with the train split's mean and
std; a linear head or an MLP (one hidden layer of 512, ReLU); Adam (lr 3e-4,
weight decay 1e-6), batch 64; cross-entropy for multiclass, BCE for
multilabel; early stopping on the validation loss, and the best-on-validation
weights are the ones tested. Training is deterministic for a given seed on a
given machine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class ProbeConfig:
    head: str = "mlp"  # "mlp" or "linear"
    hidden: int = 512
    lr: float = 3e-4
    weight_decay: float = 1e-6
    batch_size: int = 64
    max_epochs: int = 200
    patience: int = 10
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProbeResult:
    test_scores: np.ndarray  # logits (multiclass) or probabilities (multilabel), [N_test, C]
    valid_loss: float
    best_epoch: int
    epochs: int
    seconds: float
    valid_scores: np.ndarray | None = None


def targets(labels: list, n_classes: int, kind: str) -> np.ndarray:
    """Class indices ``[N]`` (multiclass) or multi-hot ``[N, C]`` (multilabel)."""
    if kind == "multiclass":
        return np.asarray(labels, dtype=np.int64)
    y = np.zeros((len(labels), n_classes), dtype=np.float32)
    for i, lab in enumerate(labels):
        y[i, list(lab)] = 1.0
    return y


def train_probe(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    X_test: np.ndarray,
    *,
    kind: str,
    n_classes: int,
    config: ProbeConfig,
    seed: int = 0,
) -> ProbeResult:
    import torch
    from torch import nn

    t0 = time.perf_counter()
    if len(X_train) == 0 or len(X_valid) == 0:
        raise ValueError("the probe needs at least one train and one validation track")
    mean = X_train.mean(axis=0, keepdims=True)
    std = X_train.std(axis=0, keepdims=True)
    std[std < 1e-8] = 1.0

    dev = torch.device(config.device)

    def prep(X: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((X - mean) / std).astype(np.float32)).to(dev)

    xtr, xva, xte = prep(X_train), prep(X_valid), prep(X_test)
    ytr = torch.from_numpy(y_train).to(dev)
    yva = torch.from_numpy(y_valid).to(dev)

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    d = X_train.shape[1]
    if config.head == "linear":
        model = nn.Linear(d, n_classes)
    elif config.head == "mlp":
        model = nn.Sequential(nn.Linear(d, config.hidden), nn.ReLU(), nn.Linear(config.hidden, n_classes))
    else:
        raise ValueError(f"unknown probe head {config.head!r}; use 'linear' or 'mlp'")
    model.to(dev)
    loss_fn = nn.CrossEntropyLoss() if kind == "multiclass" else nn.BCEWithLogitsLoss()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    best = (float("inf"), 0, None)
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = torch.randperm(len(xtr), generator=gen).to(dev)
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            vloss = float(loss_fn(model(xva), yva))
        if vloss < best[0] - 1e-6:
            best = (vloss, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
        elif epoch - best[1] >= config.patience:
            break
    model.load_state_dict(best[2])
    model.eval()
    with torch.no_grad():
        out = model(xte)
        vout = model(xva)
        if kind == "multilabel":
            out, vout = torch.sigmoid(out), torch.sigmoid(vout)
    return ProbeResult(
        test_scores=out.cpu().numpy(),
        valid_loss=best[0],
        best_epoch=best[1],
        epochs=epoch,
        seconds=time.perf_counter() - t0,
        valid_scores=vout.cpu().numpy(),
    )
