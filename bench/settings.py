"""What a run evaluates (:class:`RunConfig`: encoders, tasks, their options) and how (:class:`EvalSettings`).

The evaluation settings are the same for every (encoder, task) pair of a
command: the pair driver (:mod:`bench.pair`) and the run steps
(:mod:`bench.run`) read only them; the lists of encoders and tasks, the
``-O`` options and row labels are what the job loop (:mod:`bench.jobs`)
iterates over. The data types the steps pass along (:class:`PreparedEncoder`,
:class:`IndexedTask`, :class:`Evaluation`) live here too, so that modules the
steps call (:mod:`bench.run_memo`) can name them without importing the steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from bench.config import DataRoots
    from bench.encoder import Encoder, Recipe
    from bench.plugins import Entry
    from bench.probe import SelectedProbe
    from bench.task import Split, Task


@dataclass
class EvalSettings:
    """How every pair of a command is evaluated: output, data, device, probe seeds and grid, protocol, cache."""

    out: Path
    data_roots: DataRoots
    device: str = "cpu"
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 32
    progress: bool = True
    #: lr x weight-decay grid chosen on validation: "fast", "default" or "lr=..;wd=.." (bench.probe.parse_grid)
    probe_grid: str = "default"
    #: read and write the caches; False recomputes everything
    cache: bool = True
    #: probing protocol (bench.protocols): probe config and task settings; part of every record
    protocol: str = "bench"
    #: ``--limit N``: at most N tracks per split (a deterministic choice, :func:`bench.run.limit_items`); part of
    #: every record, and ``bench compare`` refuses such records
    limit: int | None = None
    #: ``--log-predictions``: write each test track's target and scores beside its record (bench.predictions);
    #: nothing is reused from earlier runs then, so that every record gets its file
    log_predictions: bool = False
    #: ``--official-batchnorm``: each task's splits embedded with the encoder's BatchNorm statistics re-estimated
    #: on its train windows, as the official SemiSupCon probe's train-mode encoder ends up (bench.batchnorm)
    official_batchnorm: bool = False


@dataclass
class RunConfig:
    """What a command evaluates: encoders and tasks, their options and row labels, under ``settings``."""

    encoders: list[str]
    tasks: list[str]
    settings: EvalSettings
    #: weights to evaluate instead of pretraining (``--checkpoint``)
    checkpoint: str | None = None
    #: ``-O`` options: ``key`` for every encoder, ``encoder:key`` for one; recipe keys tune pretraining
    encoder_options: dict[str, Any] = field(default_factory=dict)
    #: row label per encoder name, overriding the one made from its options (bench sweep names its variants)
    variants: dict[str, str] = field(default_factory=dict)
    #: ``--pretrain-seeds``: one model per seed of every seeded encoder (empty: each encoder's own seed)
    pretrain_seeds: tuple[int, ...] = ()
    #: the pretraining seed of the one job this config is narrowed to (bench.jobs.Job.config); recorded as
    #: ``pretraining.seed`` so that rows pool their seeds
    pretrain_seed: int | None = None


@dataclass
class PreparedEncoder:
    """An encoder ready to embed: its registry entry, weights hash, row label and weights provenance."""

    entry: Entry
    encoder: Encoder
    weights_hash: str
    variant: str
    options: dict[str, Any]
    #: where the weights came from: checkpoint path and the training it records (pools, steps, loss)
    weights: dict[str, Any] = field(default_factory=dict)
    #: the training recipe of a trainable encoder pretrained (or found) by key; None otherwise
    recipe: Recipe | None = None
    #: what its checkpoint key hashed about the pools, taken before the checkpoint was chosen (bench.run_memo)
    pools: dict[str, Any] | None = None


@dataclass
class IndexedTask:
    """A task's splits indexed once: items, classes, problems and the data fingerprint."""

    task: Task
    root: Path
    demo: bool
    splits: dict[str, Split]
    classes: list[str]
    problems: dict[str, list[str]]
    fingerprint: str


@dataclass
class Evaluation:
    """One probe seed: the chosen probe and the metrics of every test set (condition) it scored."""

    seed: int
    selected: SelectedProbe
    metrics: dict[str, dict[str, float]]
    confidence: dict[str, dict[str, Any]]
    #: probe cache status: hit, miss, rebuilt or off (bench.probe_cache)
    cache: str = "off"


@dataclass
class RunOutcome:
    records: list[dict[str, Any]]
    failures: list[str]
    out: Path
    files: dict[str, Path] = field(default_factory=dict)
