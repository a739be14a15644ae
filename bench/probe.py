"""Probe stage: a small classifier trained on frozen track embeddings.

Protocol (method.md): features standardised with the train split's mean and
std; a linear head or an MLP (one hidden layer of 512, ReLU); Adam, batch 64;
cross-entropy for multiclass, BCE for multilabel; early stopping on the
validation loss, and the best-on-validation weights are the ones tested.

On top of the paper's single point (lr 3e-4, weight decay 1e-6) a small grid
of learning rate x weight decay is tried and the point with the best
validation score of the task's primary metric is tested (:func:`select_probe`):
one fixed hyper-parameter point favours some encoders over others, and the
choice must be made on validation, never on test. ``fast`` is the one-point
grid of the paper protocol (for CI and smoke runs).

Determinism: for a given seed, config and machine the result is bit-identical
(the seed drives initialisation and batch order through private generators;
the global torch RNG is left as it was). Speed: all tensors live on the chosen
device, batches are index slices of device tensors (no per-batch numpy), Adam
is the fused kernel when the build has it, and on CPU training runs on one
thread by default: for batch-64 matrices the thread hand-off costs more than it
saves, and on a shared machine OpenMP spinning makes it 10-20x slower.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

#: named lr x weight-decay grids; "fast" is the paper's single point
GRIDS: dict[str, list[tuple[float, float]]] = {
    "fast": [(3e-4, 1e-6)],
    "default": [(1e-3, 1e-6), (1e-3, 1e-4), (3e-4, 1e-6), (3e-4, 1e-4)],
}


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
    #: torch threads while training on CPU (None: leave torch's setting)
    cpu_threads: int | None = 1

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
    #: scores of the same fitted probe on further test sets (e.g. corrupted audio), by name
    extra_scores: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class SelectedProbe:
    """The grid point chosen on validation, its result, and every grid point's validation figures."""

    result: ProbeResult
    lr: float
    weight_decay: float
    grid: list[dict[str, Any]] = field(default_factory=list)
    selection_metric: str = ""


def parse_grid(spec: str | None) -> list[tuple[float, float]]:
    """``fast``, ``default``, or ``lr=1e-3,3e-4;wd=1e-6,1e-4`` (every lr with every wd)."""
    spec = (spec or "default").strip()
    if spec in GRIDS:
        return list(GRIDS[spec])
    lrs: list[float] = []
    wds: list[float] = []
    try:
        for part in spec.replace(" ", "").split(";"):
            if not part:
                continue
            name, _, values = part.partition("=")
            nums = [float(v) for v in values.split(",") if v]
            if name in ("lr",):
                lrs = nums
            elif name in ("wd", "weight_decay"):
                wds = nums
            else:
                raise ValueError(name)
    except ValueError:
        lrs = []
    if not lrs or any(v <= 0 or not math.isfinite(v) for v in lrs) or any(v < 0 for v in wds):
        from bench.errors import BenchError

        raise BenchError(
            f"--probe-grid {spec!r} is not a grid. Use 'fast' (one point: lr 3e-4, wd 1e-6), 'default' "
            "(lr 1e-3,3e-4 x wd 1e-6,1e-4) or 'lr=1e-3,3e-4;wd=1e-6,1e-4' (positive learning rates)."
        )
    return [(lr, wd) for lr in lrs for wd in (wds or [1e-6])]


def targets(labels: list, n_classes: int, kind: str) -> np.ndarray:
    """Class indices ``[N]`` (multiclass) or multi-hot ``[N, C]`` (multilabel)."""
    if kind == "multiclass":
        return np.asarray(labels, dtype=np.int64)
    y = np.zeros((len(labels), n_classes), dtype=np.float32)
    for i, lab in enumerate(labels):
        y[i, list(lab)] = 1.0
    return y


class _Data:
    """Standardised splits as tensors on the device, prepared once for every grid point."""

    def __init__(self, X_train, y_train, X_valid, y_valid, X_test, device: str,
                 extra_tests: dict[str, np.ndarray] | None = None) -> None:
        import torch

        if len(X_train) == 0 or len(X_valid) == 0:
            raise ValueError("the probe needs at least one train and one validation track")
        X_train = np.asarray(X_train, dtype=np.float64)
        mean = X_train.mean(axis=0, keepdims=True)
        std = X_train.std(axis=0, keepdims=True)
        std[std < 1e-8] = 1.0
        self.dev = torch.device(device)

        def prep(X: np.ndarray) -> "torch.Tensor":
            return torch.from_numpy(((np.asarray(X, dtype=np.float64) - mean) / std).astype(np.float32)).to(self.dev)

        self.xtr, self.xva, self.xte = prep(X_train), prep(X_valid), prep(X_test)
        # further test sets are standardised with the train statistics, like the test split
        self.extra = {name: prep(X) for name, X in (extra_tests or {}).items()}
        self.ytr = torch.from_numpy(np.asarray(y_train)).to(self.dev)
        self.yva = torch.from_numpy(np.asarray(y_valid)).to(self.dev)
        self.dim = X_train.shape[1]


def _threads(config: ProbeConfig):
    """Context manager: one torch thread on CPU while training (see module doc)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def ctx():
        if config.cpu_threads is None or torch.device(config.device).type != "cpu":
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(config.cpu_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    return ctx()


def _fit(data: _Data, *, kind: str, n_classes: int, config: ProbeConfig, seed: int) -> ProbeResult:
    import torch
    from torch import nn

    t0 = time.perf_counter()
    dev = data.dev
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        if config.head == "linear":
            model = nn.Linear(data.dim, n_classes)
        elif config.head == "mlp":
            model = nn.Sequential(nn.Linear(data.dim, config.hidden), nn.ReLU(), nn.Linear(config.hidden, n_classes))
        else:
            raise ValueError(f"unknown probe head {config.head!r}; use 'linear' or 'mlp'")
    model.to(dev)
    loss_fn = nn.CrossEntropyLoss() if kind == "multiclass" else nn.BCEWithLogitsLoss()
    try:
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError):  # no fused kernel for this device/build
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # Batch order from a private CPU generator: the same on every device for a seed.
    gen = torch.Generator().manual_seed(seed)
    n = len(data.xtr)
    best_loss, best_epoch, best_state = float("inf"), 0, None
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen).to(dev)
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(data.xtr[idx]), data.ytr[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            vloss = float(loss_fn(model(data.xva), data.yva))
        if not math.isfinite(vloss):
            break  # diverged (lr too high for this encoder): keep the best epoch so far
        if vloss < best_loss - 1e-6:
            best_loss, best_epoch = vloss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        out, vout = model(data.xte), model(data.xva)
        extra = {name: model(x) for name, x in data.extra.items()}
        if kind == "multilabel":
            out, vout = torch.sigmoid(out), torch.sigmoid(vout)
            extra = {name: torch.sigmoid(v) for name, v in extra.items()}
    return ProbeResult(
        test_scores=out.cpu().numpy(),
        valid_loss=best_loss,
        best_epoch=best_epoch,
        epochs=epoch,
        seconds=time.perf_counter() - t0,
        valid_scores=vout.cpu().numpy(),
        extra_scores={name: v.cpu().numpy() for name, v in extra.items()},
    )


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
    """Train one probe at ``config``'s lr and weight decay; test the best-on-validation weights."""
    with _threads(config):
        data = _Data(X_train, y_train, X_valid, y_valid, X_test, config.device)
        return _fit(data, kind=kind, n_classes=n_classes, config=config, seed=seed)


def select_probe(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    X_test: np.ndarray,
    *,
    kind: str,
    n_classes: int,
    config: ProbeConfig,
    grid: list[tuple[float, float]] | None = None,
    seed: int = 0,
    score_fn: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None,
    metric: str = "",
    extra_tests: dict[str, np.ndarray] | None = None,
) -> SelectedProbe:
    """Train one probe per (lr, weight decay) of ``grid`` and keep the best on validation.

    The choice is the highest validation ``metric`` (from ``score_fn``, the
    task's scorer, on the validation split); points whose validation metric is
    undefined (NaN, e.g. a label absent from a tiny validation split) rank below
    the others, and ties go to the lower validation loss. Only the chosen
    point's test scores are used; every point's validation figures are returned
    for the record. ``extra_tests``: further test sets (name -> embeddings)
    scored by the same chosen probe (``result.extra_scores``).
    """
    import dataclasses

    grid = list(grid or GRIDS["default"])
    rows: list[dict[str, Any]] = []
    best: tuple[tuple[float, float], float, float, ProbeResult] | None = None  # (rank, lr, wd, result)
    with _threads(config):
        data = _Data(X_train, y_train, X_valid, y_valid, X_test, config.device, extra_tests)
        for lr, wd in grid:
            conf = dataclasses.replace(config, lr=lr, weight_decay=wd)
            res = _fit(data, kind=kind, n_classes=n_classes, config=conf, seed=seed)
            vscore = float("nan")
            if score_fn is not None and metric:
                vscore = float(score_fn(y_valid, res.valid_scores).get(metric, float("nan")))
            rows.append({"lr": lr, "weight_decay": wd, "valid_loss": _r(res.valid_loss), "valid_score": _r(vscore),
                         "best_epoch": res.best_epoch, "epochs": res.epochs, "seconds": round(res.seconds, 3)})
            rank = (vscore if math.isfinite(vscore) else -math.inf, -res.valid_loss)
            if best is None or rank > best[0]:
                best = (rank, lr, wd, res)
    assert best is not None, "empty probe grid"
    _, lr, wd, res = best
    return SelectedProbe(res, lr, wd, rows, metric or "valid_loss")


def _r(x: float) -> float | None:
    return round(float(x), 6) if math.isfinite(x) else None
