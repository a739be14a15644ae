"""Probing protocols: how a frozen encoder's embeddings become a score, as one named, typed object.

A score is comparable with a published one only when the protocol around the
probe matches: which embeddings train the head, whether features are
standardised, the head's shape, optimiser, stopping rule and the task's own
settings (split, class set, metric rule). Three protocols, chosen with
``--protocol NAME`` (docs/protocols.md has every difference with file:line
sources):

- ``bench`` (the default): this harness's protocol. Track-mean embeddings for
  every split, standardised with the train statistics, heads with bias, the
  lr x weight-decay grid of ``--probe-grid`` chosen on validation, patience 10.
  Its numbers are the ones every earlier run produced.
- ``semisupcon``: the official SemiSupCon code's probing. One random window per
  track per epoch (tracks drawn with replacement), validation on one random
  window per track, test on the mean embedding of the track's windows; no
  standardisation; heads without bias; Adam 3e-4, wd 1e-6, batch 64; patience
  15 (MTAT), 50 (GiantSteps, GTZAN), 2 (NSynth) on the validation loss; the
  best-validation weights tested. Task settings: GiantSteps with mir_eval's
  default fifths rule and a random 85/15 train/valid split by track; NSynth
  pitch over all 112 pitches (MIDI 9..120).
- ``marble``: MARBLE v1's probing. Track-level embeddings (GiantSteps: 30 s
  segments, ensembled per track by the best of vote / max / mean logit / mean
  probability on validation), no standardisation, an MLP (512 hidden, dropout
  0.2, bias) for every task, Adam without weight decay, its scripts' six
  learning rates tried and the best on validation tested, ReduceLROnPlateau
  (x0.5), early stopping and checkpoint on a validation metric. Task
  settings: NSynth pitch over 128 classes, MTAT keeping untagged clips,
  GiantSteps with the fifths rule of mir_eval's default and MARBLE's artist
  split rule.

A protocol sets the probe config (:meth:`Protocol.probe_config`) and the task
settings (:meth:`Protocol.task_settings`); it is part of every record
(``protocol``) and, through those settings and the per-window flag, of the
embedding cache keys it changes. Pretraining does not depend on it: the same
checkpoints serve every protocol.

This module imports neither torch nor numpy (``bench --help`` lists the names).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError

if TYPE_CHECKING:  # pragma: no cover
    from bench.probe import ProbeConfig
    from bench.task import Task


@dataclass(frozen=True)
class TaskRule:
    """A protocol's values for one task; ``None`` keeps the protocol's default."""

    head: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    patience: int | None = None
    max_epochs: int | None = None
    plateau_patience: int | None = None
    #: validation metric monitored for stopping/checkpoint ("" = the validation loss)
    monitor: str | None = None
    #: train on means of segments of this many seconds, logits averaged per track (None: whole tracks)
    segment_seconds: float | None = None
    #: how segment logits become a track's scores (bench.probe.ProbeConfig.ensemble; None: mean logits)
    ensemble: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Protocol:
    """One probing protocol: the probe's shape and training, and per-task rules."""

    name: str
    summary: str
    #: "track" (track-mean embeddings), "crop" (one random window per track per epoch)
    train_on: str = "track"
    standardise: bool = True
    bias: bool = True
    dropout: float = 0.0
    #: the lr x weight-decay grid comes from --probe-grid (False: the protocol's own points)
    uses_grid: bool = True
    #: without --probe-grid: these learning rates (at the task's weight decay) are tried and the best on
    #: validation is tested; empty: the protocol's single point
    lr_sweep: tuple[float, ...] = ()
    #: each epoch draws N tracks with replacement and drops the last partial batch (official loaders)
    replacement: bool = False
    drop_last: bool = False
    lr: float = 3e-4
    weight_decay: float = 1e-6
    batch_size: int = 64
    patience: int = 10
    max_epochs: int = 200
    plateau_factor: float = 0.5
    tasks: dict[str, TaskRule] = field(default_factory=dict)

    def rule(self, task_name: str) -> TaskRule:
        return self.tasks.get(task_name, TaskRule())

    def task_settings(self, task: "Task") -> dict[str, Any]:
        """The settings this protocol gives ``task`` (only the ones the task knows: a third-party task of
        the same name keeps its own)."""
        wanted = self.rule(task.name).settings
        known = task.default_settings() if wanted else {}
        return {k: v for k, v in wanted.items() if k in known}

    def probe_config(self, task: "Task", device: str = "cpu", *, window_seconds: float | None = None) -> "ProbeConfig":
        """The probe config of ``task`` under this protocol (lr and wd: the single point, or the grid's start).

        ``window_seconds``: the encoder's window length, for rules that train on
        segments of a given duration.
        """
        from bench.probe import ProbeConfig

        r = self.rule(task.name)
        segment = None
        if r.segment_seconds is not None:
            if not window_seconds or window_seconds <= 0:
                raise BenchError(f"protocol {self.name}: task {task.name} trains on {r.segment_seconds:g} s segments "
                                 "and needs the encoder's window length")
            segment = max(1, int(r.segment_seconds // window_seconds))
        return ProbeConfig(
            head=r.head or task.probe,
            lr=r.lr if r.lr is not None else self.lr,
            weight_decay=r.weight_decay if r.weight_decay is not None else self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=r.max_epochs if r.max_epochs is not None else self.max_epochs,
            patience=r.patience if r.patience is not None else self.patience,
            device=device,
            standardise=self.standardise,
            bias=self.bias,
            dropout=self.dropout,
            train_on="segments" if segment else self.train_on,
            segment=segment,
            replacement=self.replacement,
            drop_last=self.drop_last,
            monitor=r.monitor or "",
            plateau_patience=r.plateau_patience,
            plateau_factor=self.plateau_factor,
            ensemble=r.ensemble or "gmean",
        )

    def probe_plan(self, task: "Task", device: str, grid_spec: str | None,
                   window_seconds: float | None = None) -> tuple["ProbeConfig", list[tuple[float, float]]]:
        """The probe config of ``task`` and the lr x wd points to try (the grid of ``grid_spec``, or the
        protocol's single point)."""
        from bench.probe import parse_grid

        conf = self.probe_config(task, device, window_seconds=window_seconds)
        if self.uses_grid:
            return conf, parse_grid(grid_spec)
        if self.lr_sweep:
            return conf, [(lr, conf.weight_decay) for lr in self.lr_sweep]
        return conf, [(conf.lr, conf.weight_decay)]

    def grid_description(self, grid_spec: str | None) -> str:
        """What the probe's lr x wd points are, for the record (``--probe-grid`` or the protocol's own)."""
        if self.uses_grid:
            return str(grid_spec)
        if self.lr_sweep:
            return f"protocol {self.name}: lr sweep {', '.join(f'{v:g}' for v in self.lr_sweep)}"
        return f"protocol {self.name}: one point"

    def window_splits(self, task: "Task") -> tuple[str, ...]:
        """The splits whose per-window embeddings the probe reads."""
        if self.rule(task.name).segment_seconds is not None:
            return ("train", "valid", "test")  # every split is scored per segment
        if self.train_on == "crop":
            return ("train", "valid")  # the test split is the mean embedding, as in the track cache
        return ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROTOCOLS: dict[str, Protocol] = {
    "bench": Protocol(
        name="bench",
        summary="this harness: track-mean embeddings, standardised, heads with bias, lr x wd grid on validation, "
                "patience 10 on the validation loss",
    ),
    "semisupcon": Protocol(
        name="semisupcon",
        summary="official SemiSupCon code: one random window per track per epoch, validation on windows, test on "
                "the mean embedding; no standardisation; heads without bias; Adam 3e-4 wd 1e-6 batch 64; "
                "best-validation-loss weights",
        train_on="crop",
        standardise=False,
        bias=False,
        uses_grid=False,
        replacement=True,
        drop_last=True,
        lr=3e-4,
        weight_decay=1e-6,
        batch_size=64,
        tasks={
            "mtat": TaskRule(patience=15, max_epochs=100),
            "giantsteps_key": TaskRule(patience=50, max_epochs=200,
                                       settings={"fifths": "ascending", "valid_split": "track",
                                                 "valid_fraction": 0.15}),
            "gtzan": TaskRule(patience=50, max_epochs=200),
            "nsynth_pitch": TaskRule(patience=2, max_epochs=20, settings={"pitch_min": 9, "pitch_max": 120}),
        },
    ),
    "marble": Protocol(
        name="marble",
        summary="MARBLE v1: track-level embeddings (GiantSteps: 30 s segments, the best of four per-track "
                "ensembles on validation), no standardisation, MLP 512 with dropout 0.2 for every task, Adam "
                "without weight decay, its scripts' 6 learning rates chosen on validation, ReduceLROnPlateau "
                "x0.5, early stopping and checkpoint on a validation metric",
        standardise=False,
        bias=True,
        dropout=0.2,
        uses_grid=False,
        # the rates of MARBLE's probe scripts (exp_scripts/probe/probe_*.sh: lr_list), in their order
        lr_sweep=(1e-3, 5e-3, 5e-4, 1e-2, 1e-4, 5e-5),
        lr=1e-3,
        weight_decay=0.0,
        batch_size=64,
        max_epochs=100,
        tasks={
            "mtat": TaskRule(head="mlp", patience=10, plateau_patience=3, monitor="roc_auc",
                             settings={"drop_untagged": False}),
            "giantsteps_key": TaskRule(head="mlp", patience=20, plateau_patience=5, monitor="weighted_score",
                                       segment_seconds=30.0, ensemble="select",
                                       settings={"fifths": "ascending", "valid_split": "marble"}),
            "gtzan": TaskRule(head="mlp", lr=5e-3, patience=20, plateau_patience=6, monitor="accuracy"),
            "nsynth_pitch": TaskRule(head="mlp", patience=10, plateau_patience=3, max_epochs=50, monitor="accuracy",
                                     settings={"pitch_min": 0, "pitch_max": 127}),
            # MARBLE's technique split: validation drawn by file index, not singer-disjoint (bench_tasks.vocalset)
            "vocalset_technique": TaskRule(monitor="accuracy", settings={"split": "marble"}),
        },
    ),
}

NAMES: tuple[str, ...] = tuple(PROTOCOLS)
DEFAULT = "bench"


def get(name: str | None) -> Protocol:
    """The protocol called ``name`` (None: the default); a clear error listing the known ones."""
    name = (name or DEFAULT).strip().lower()
    if name not in PROTOCOLS:
        import difflib

        close = difflib.get_close_matches(name, NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BenchError(f"unknown protocol {name!r}.{hint} Protocols: {', '.join(NAMES)} (docs/protocols.md).")
    return PROTOCOLS[name]


def of_record(rec: dict[str, Any]) -> str:
    """The protocol a record was scored under (records from before protocols existed: ``bench``)."""
    return str(rec.get("protocol") or DEFAULT)
