"""Probe stage: a small classifier trained on frozen embeddings.

Protocol ``bench`` (the defaults of :class:`ProbeConfig`; method.md): track-mean
features standardised with the train split's mean and std; a linear head or an
MLP (one hidden layer of 512, ReLU); Adam, batch 64; cross-entropy for
multiclass, BCE for multilabel, mean squared error for regression (the head's
outputs are the predicted targets; a task's ``probe = "linear"`` makes it the
ridge-like linear regression, weight decay from the grid); early stopping on the validation loss, and the
best-on-validation weights are the ones tested. The other protocols
(:mod:`bench.protocols`) change the fields: no standardisation, heads without
bias, dropout, crop or segment training (:mod:`bench.probe_data`), tracks drawn
with replacement, a validation metric instead of the loss as the stopping and
checkpoint criterion, and a plateau learning-rate schedule.

On top of the paper's single point (lr 3e-4, weight decay 1e-6) a small grid
of learning rate x weight decay is tried and the point with the best
validation score of the task's primary metric is tested (:func:`select_probe`):
one fixed hyper-parameter point favours some encoders over others, and the
choice must be made on validation, never on test. ``fast`` is the one-point
grid of the paper protocol (for CI and smoke runs).

Determinism: for a given seed, config and machine the result is bit-identical
(the seed drives initialisation, batch order, crops and dropout through private
generators or a forked RNG; the global torch RNG is left as it was). Speed: all
tensors live on the chosen device, batches are index slices of device tensors
(no per-batch numpy), Adam is the fused kernel when the build has it, and on
CPU training runs on one thread by default: for batch-64 matrices the thread
hand-off costs more than it saves, and on a shared machine OpenMP spinning
makes it 10-20x slower.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from bench.metrics import NonFiniteScores, check_finite
from bench.probe_data import ProbeData

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
    #: standardise features with the train split's mean and std
    standardise: bool = True
    #: biases in the head's linear layers
    bias: bool = True
    #: dropout after the hidden layer's ReLU (MLP only)
    dropout: float = 0.0
    #: "track" (track means), "crop" (one random window per track per epoch), "segments" (bench.probe_data)
    train_on: str = "track"
    #: windows per segment (train_on="segments")
    segment: int | None = None
    #: each epoch draws N examples with replacement (else a permutation)
    replacement: bool = False
    #: drop the last partial batch of an epoch (kept when the epoch has no full batch)
    drop_last: bool = False
    #: stop and checkpoint on this validation metric (higher is better); "" = the validation loss
    monitor: str = ""
    #: ReduceLROnPlateau patience on the monitored value (None: constant learning rate)
    plateau_patience: int | None = None
    plateau_factor: float = 0.5
    #: segments: how a track's segment logits are combined (bench.probe_data.ENSEMBLES), or "select": MARBLE's
    #: choice, each epoch, of the strategy with the best validation ``monitor`` (tested with the best epoch's)
    ensemble: str = "gmean"

    #: fields added after probe keys existed: left out of :meth:`to_dict` at these (default) values, so the
    #: records and probe-cache keys of every probe that does not use them stay as they were
    OPTIONAL = {"ensemble": "gmean"}

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in self.OPTIONAL or v != self.OPTIONAL[k]}


@dataclass
class ProbeResult:
    test_scores: np.ndarray  # logits (multiclass), probabilities (multilabel) or predictions (regression), [N_test, C]
    valid_loss: float
    best_epoch: int
    epochs: int
    seconds: float
    valid_scores: np.ndarray | None = None
    #: scores of the same fitted probe on further test sets (e.g. corrupted audio), by name
    extra_scores: dict[str, np.ndarray] = field(default_factory=dict)
    #: the segment ensemble chosen on validation (``ensemble="select"``), else None
    ensemble: str | None = None


@dataclass
class SelectedProbe:
    """The grid point chosen on validation, its result, and every grid point's validation figures."""

    result: ProbeResult
    lr: float
    weight_decay: float
    grid: list[dict[str, Any]] = field(default_factory=list)
    selection_metric: str = ""
    #: the metrics and bootstrap interval of the chosen probe on the validation split (computed once, with
    #: the probe, and kept in the probe cache: a warm run computes no bootstrap); None: not available
    valid_figures: tuple[dict[str, float], dict[str, Any]] | None = None


#: the largest probe learning rate a grid may name (Adam steps of ~lr per weight: far above it, the probe diverges)
MAX_PROBE_LR = 1.0


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
    if not lrs or any(v <= 0 or not math.isfinite(v) for v in lrs) or any(v < 0 or not math.isfinite(v) for v in wds):
        from bench.errors import BenchError

        raise BenchError(
            f"--probe-grid {spec!r} is not a grid. Use 'fast' (one point: lr 3e-4, wd 1e-6), 'default' "
            "(lr 1e-3,3e-4 x wd 1e-6,1e-4) or 'lr=1e-3,3e-4;wd=1e-6,1e-4' (positive learning rates)."
        )
    too_big = [v for v in lrs if v > MAX_PROBE_LR]
    if too_big:
        from bench.errors import BenchError

        raise BenchError(f"--probe-grid {spec!r}: learning rate {too_big[0]:g} is above {MAX_PROBE_LR:g}; Adam on a "
                         "linear probe diverges there (the loss becomes NaN). Use values such as 1e-3,3e-4.")
    return [(lr, wd) for lr in lrs for wd in (wds or [1e-6])]


def targets(labels: list, n_classes: int, kind: str) -> np.ndarray:
    """Class indices ``[N]`` (multiclass), multi-hot ``[N, C]`` (multilabel) or target values ``[N, C]``
    (regression: ``n_classes`` is the number of targets)."""
    if kind == "multiclass":
        return np.asarray(labels, dtype=np.int64)
    if kind == "regression":
        return np.asarray([tuple(lab) for lab in labels], dtype=np.float32).reshape(len(labels), n_classes)
    y = np.zeros((len(labels), n_classes), dtype=np.float32)
    for i, lab in enumerate(labels):
        y[i, list(lab)] = 1.0
    return y


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


def _head(config: ProbeConfig, dim: int, n_classes: int):
    from torch import nn

    if config.head == "linear":
        return nn.Linear(dim, n_classes, bias=config.bias)
    if config.head == "mlp":
        layers = [nn.Linear(dim, config.hidden, bias=config.bias), nn.ReLU()]
        if config.dropout > 0:  # after the ReLU, as MARBLE's prober does
            layers.append(nn.Dropout(config.dropout))
        return nn.Sequential(*layers, nn.Linear(config.hidden, n_classes, bias=config.bias))
    raise ValueError(f"unknown probe head {config.head!r}; use 'linear' or 'mlp'")


def _loss(kind: str):
    """The training loss of a task kind: cross-entropy, per-tag BCE, or mean squared error (regression:
    the head's outputs are the predicted targets, never squashed)."""
    from torch import nn

    losses = {"multiclass": nn.CrossEntropyLoss, "multilabel": nn.BCEWithLogitsLoss, "regression": nn.MSELoss}
    if kind not in losses:
        raise ValueError(f"unknown task kind {kind!r}; expected one of {sorted(losses)}")
    return losses[kind]()


def _batches(n: int, config: ProbeConfig, gen) -> list:
    """The index batches of one epoch: a permutation, or n draws with replacement; last partial batch dropped
    when asked (unless the epoch has no full batch: a split smaller than a batch still trains)."""
    import torch

    order = torch.randint(n, (n,), generator=gen) if config.replacement else torch.randperm(n, generator=gen)
    stop = n - n % config.batch_size if config.drop_last and n >= config.batch_size else n
    return [order[i : i + config.batch_size] for i in range(0, stop, config.batch_size)]


def _fit(data: ProbeData, *, kind: str, n_classes: int, config: ProbeConfig, seed: int,
         score_fn: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None,
         y_valid: np.ndarray | None = None) -> ProbeResult:
    import torch

    t0 = time.perf_counter()
    dev = data.dev
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        model = _head(config, data.dim, n_classes)
        model.to(dev)
        loss_fn = _loss(kind)
        try:
            opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
        except (RuntimeError, TypeError):  # no fused kernel for this device/build
            opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        by_metric = bool(config.monitor)
        if by_metric and (score_fn is None or y_valid is None):
            raise ValueError(f"monitor {config.monitor!r} needs the task's scorer and the validation labels")
        strategies = _strategies(config, data, kind)
        sched = None
        if config.plateau_patience is not None:
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max" if by_metric else "min",
                                                               factor=config.plateau_factor,
                                                               patience=config.plateau_patience)
        # batch order and crops from private CPU generators: the same on every device for a seed
        gen = torch.Generator().manual_seed(seed)
        vgen = torch.Generator().manual_seed(seed + 0x5EED)
        n = data.n_train()
        best_loss, best_value, best_epoch, best_state = float("inf"), -math.inf, 0, None
        chosen = "gmean" if "gmean" in strategies else strategies[0]  # kept if no epoch improves
        epoch = 0
        for epoch in range(1, config.max_epochs + 1):
            model.train()
            for idx in _batches(n, config, gen):
                crop_u = torch.rand(len(idx), generator=gen, dtype=torch.float64) if data.mode == "crop" else None
                x, y = data.train_batch(idx.to(dev), crop_u)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                if data.mode == "crop":
                    vlogits = model(data.valid_inputs(vgen))
                else:
                    vlogits = data.track_logits(model, "valid")
                vloss = float(loss_fn(vlogits, data.yva))
                value, strategy = vloss, strategies[0]
                if by_metric:
                    value = -math.inf
                    for how in strategies:  # MARBLE: the best ensemble of the epoch (first on ties)
                        vs = vlogits if how == "gmean" or data.mode != "segments" else data.track_logits(
                            model, "valid", how)
                        vs = torch.sigmoid(vs) if kind == "multilabel" else vs
                        v = _valid_score(score_fn, y_valid, vs.cpu().numpy(), config.monitor)
                        if math.isfinite(v) and v > value:
                            value, strategy = v, how
                    value = value if math.isfinite(value) else float("nan")
            if not math.isfinite(vloss):
                break  # diverged (lr too high for this encoder): keep the best epoch so far
            if sched is not None and math.isfinite(value):
                sched.step(value)
            improved = (math.isfinite(value) and value > best_value) if by_metric else vloss < best_loss - 1e-6
            if improved:
                best_loss, best_epoch = vloss, epoch
                best_value = value if by_metric else best_value
                chosen = strategy
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif epoch - best_epoch >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:  # no epoch improved (e.g. an undefined validation metric throughout): the last weights
        best_epoch = epoch
    model.eval()
    with torch.no_grad():
        out, vout = data.track_logits(model, "test", chosen), data.track_logits(model, "valid", chosen)
        extra = {name: data.track_logits(model, f"extra:{name}", chosen) for name in data.extra}
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
        ensemble=chosen if config.ensemble == "select" else None,
    )


def _strategies(config: ProbeConfig, data: ProbeData, kind: str) -> tuple[str, ...]:
    """The segment ensembles a probe weighs on validation: the configured one, or all of them (``select``)."""
    from bench.probe_data import ENSEMBLES

    if config.ensemble == "select":
        if not config.monitor:
            raise ValueError("ensemble='select' chooses on a validation metric: set monitor")
        if data.mode != "segments" or kind != "multiclass":
            return ("gmean",)  # one example per track, or multilabel: nothing to ensemble
        return ENSEMBLES
    if config.ensemble not in ENSEMBLES:
        raise ValueError(f"unknown segment ensemble {config.ensemble!r}; use 'select' or one of {', '.join(ENSEMBLES)}")
    return (config.ensemble,)


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
    score_fn: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None,
) -> ProbeResult:
    """Train one probe at ``config``'s lr and weight decay; test the best-on-validation weights.

    Splits are ``[N, D]`` track embeddings, or :class:`bench.probe_data.WindowSet`
    where the config trains on crops or segments. ``score_fn`` (the task's
    scorer) is needed when ``config.monitor`` names a validation metric.
    """
    with _threads(config):
        data = ProbeData(X_train, y_train, X_valid, y_valid, X_test, config)
        return _fit(data, kind=kind, n_classes=n_classes, config=config, seed=seed, score_fn=score_fn,
                    y_valid=y_valid)


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
        data = ProbeData(X_train, y_train, X_valid, y_valid, X_test, config, extra_tests)
        for lr, wd in grid:
            conf = dataclasses.replace(config, lr=lr, weight_decay=wd)
            res = _fit(data, kind=kind, n_classes=n_classes, config=conf, seed=seed, score_fn=score_fn,
                       y_valid=y_valid)
            vscore = float("nan")
            if score_fn is not None and metric:
                vscore = _valid_score(score_fn, y_valid, res.valid_scores, metric)
            rows.append({"lr": lr, "weight_decay": wd, "valid_loss": _r(res.valid_loss), "valid_score": _r(vscore),
                         "best_epoch": res.best_epoch, "epochs": res.epochs, "seconds": round(res.seconds, 3),
                         **({"ensemble": res.ensemble} if res.ensemble else {})})
            rank = (vscore if math.isfinite(vscore) else -math.inf, -res.valid_loss)
            if best is None or rank > best[0]:
                best = (rank, lr, wd, res)
    assert best is not None, "empty probe grid"
    _, lr, wd, res = best
    check_finite(res.test_scores, "test scores")  # never scored, whatever the task's own scorer does with NaN
    for name, extra in (res.extra_scores or {}).items():
        check_finite(extra, f"scores on the test set under {name}")
    return SelectedProbe(res, lr, wd, rows, metric or "valid_loss")


def _valid_score(score_fn: Callable[[np.ndarray, np.ndarray], dict[str, float]], y: np.ndarray,
                 scores: np.ndarray, metric: str) -> float:
    """The validation ``metric``; NaN (ranked last) when the scores are not finite (a diverged grid point)."""
    try:
        return float(score_fn(y, scores).get(metric, float("nan")))
    except NonFiniteScores:
        return float("nan")


def _r(x: float) -> float | None:
    return round(float(x), 6) if math.isfinite(x) else None
