"""The encoder contract: everything a third party writes to benchmark an encoder.

A minimal frozen encoder::

    import torch
    from bench.encoder import Encoder

    class MyEncoder(Encoder):
        name = "mine"
        sample_rate = 16000      # Hz of the waveforms embed() receives
        window = 16000           # samples per window
        dim = 128                # embedding size

        def __init__(self, **options):
            super().__init__(**options)
            self.module = torch.nn.Sequential(...)   # any nn.Module; moved by .to()

        def embed(self, waveforms):                  # [B, window] float32 -> [B, dim]
            return self.module(waveforms)

The harness decodes, resamples to ``sample_rate`` and cuts tracks into
non-overlapping windows of ``window`` samples; it calls :meth:`Encoder.embed`
under ``torch.no_grad()`` after :meth:`Encoder.eval` and :meth:`Encoder.to`,
with the batch already on the chosen device, and mean-pools the window
embeddings of a track. ``embed`` must return a finite float tensor of shape
``[B, dim]``; the harness checks that and names the plugin when it is not so.

Weights: :meth:`state_dict` / :meth:`load_state_dict` (by default those of
``self.module``) are saved as safetensors plus a JSON config by
:func:`bench.weights.save_checkpoint`; loading never unpickles code.

Pretraining (optional): an encoder that ``bench pretrain`` (and ``bench run``,
when it has no weights yet) can train subclasses :class:`TrainableEncoder`
and implements its four methods, which the trainer calls directly:
:meth:`~TrainableEncoder.recipe` (a :class:`Recipe`: steps, batch, lr,
augmentation, pools), :meth:`~TrainableEncoder.label_spec` (a
:class:`LabelSpec`: which tasks' train splits are the labeled pool, p_s, b_s),
:meth:`~TrainableEncoder.setup_pretraining` (called with the
:class:`LabelSpace` the trainer built, before the optimizer) and
:meth:`~TrainableEncoder.pretrain_loss` (and, optionally,
:meth:`~TrainableEncoder.loss_terms`: the parts of that loss, logged). A frozen encoder subclasses
:class:`Encoder` and leaves all of that out. ``examples/bench-trainable-plugin``
is a complete third-party trainable encoder.

This module does not import torch at import time, so plugin modules can import
it cheaply. Long because it is the whole contract a plugin author reads, in one
place: the frozen encoder, the trainable one, and the typed, validated recipe
and label types they exchange with the trainer.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from bench.errors import BenchError, EncoderContractError, PluginError
from bench.options import parse_bool

if TYPE_CHECKING:  # pragma: no cover
    import torch


class Encoder:
    """Base class and contract of an encoder plugin.

    Class attributes every encoder sets: ``name``, ``sample_rate`` (Hz),
    ``window`` (samples per window) and ``dim`` (embedding size). Instances may
    override them from options (e.g. a preset).
    """

    name: str = ""
    sample_rate: int = 0
    window: int = 0
    dim: int = 0
    #: 1: ``embed`` returns one embedding per window, ``[B, dim]``. L > 1: a stack of L embeddings of ``dim``
    #: each, ``[B, L, dim]`` (e.g. every hidden state of a transformer): the harness extracts the stack once,
    #: probes each layer and keeps the one chosen on validation, with the per-layer curve (bench.layers)
    layers: int = 1
    #: the ``torch.nn.Module`` holding the weights, if any (used by the defaults below)
    module: Any = None
    #: True when the weights follow from the encoder's code and options alone, or from a checkpoint file
    #: bench is told of (``--checkpoint``, an option naming a file, a pretrained checkpoint in the cache):
    #: nothing downloaded or read from elsewhere. Then a rerun of the same command reuses its records
    #: without building the encoder (bench.run_memo). Leave False when weights come from a hub or a
    #: folder that can change under the same options. Subclasses inherit it: a subclass that loads
    #: weights from elsewhere must set it back to False.
    self_contained: ClassVar[bool] = False
    #: True when the option ``seed`` (a whole number) sets the initial weights and, for a trainable
    #: encoder, its training seed: ``--pretrain-seeds 0,1,2`` then evaluates one model per seed and pools
    #: them in one row. False (a frozen or hub encoder): the weights have no seed; it is evaluated once.
    seeded: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)
        self.device = "cpu"

    def output_shape(self, batch: int) -> tuple[int, ...]:
        """The shape ``embed`` returns for ``batch`` windows: ``(batch, dim)``, or ``(batch, layers, dim)``."""
        return (batch, self.dim) if self.layers == 1 else (batch, self.layers, self.dim)

    @property
    def row_size(self) -> int:
        """Floats kept per window and per track: ``layers * dim`` (a stack is stored flattened, layer by layer)."""
        return self.layers * self.dim

    # -- what every encoder implements ------------------------------------
    def embed(self, waveforms: "torch.Tensor") -> "torch.Tensor":
        """Embed a batch of windows: ``[B, window]`` float32 -> ``[B, dim]``."""
        raise NotImplementedError(f"encoder {self.name!r} does not implement embed()")

    def config(self) -> dict[str, Any]:
        """The settings that change the embeddings (JSON-serialisable).

        Part of the cache key and of every result record, so two encoders with
        the same config and weights give the same embeddings.
        """
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "window": self.window,
            "dim": self.dim,
            **self.options,
        }

    # -- defaults that use self.module -------------------------------------
    def to(self, device: Any) -> "Encoder":
        self.device = str(device)
        if self.module is not None:
            self.module.to(device)
        return self

    def eval(self) -> "Encoder":
        if self.module is not None:
            self.module.eval()
        return self

    def train(self, mode: bool = True) -> "Encoder":
        if self.module is not None:
            self.module.train(mode)
        return self

    def state_dict(self) -> dict[str, "torch.Tensor"]:
        return dict(self.module.state_dict()) if self.module is not None else {}

    def load_state_dict(self, state: dict[str, "torch.Tensor"]) -> None:
        if self.module is None:
            if state:
                raise PluginError(f"encoder {self.name!r} has no weights but a checkpoint with weights was given")
            return
        self.module.load_state_dict(state)

    # -- rebuilding from a saved config --------------------------------------
    @classmethod
    def options_from_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Constructor options that rebuild the encoder whose :meth:`config` is ``config``.

        ``bench run --checkpoint PATH`` calls it with the config saved in the
        checkpoint, so weights trained with non-default options load without
        the user repeating them. The default reverses the default
        :meth:`config` (the options plus name, sample rate, window and dim);
        an encoder whose ``config()`` has another shape overrides both.
        """
        return {k: v for k, v in config.items() if k not in DESCRIPTIVE_KEYS}


#: keys of the default config() that describe the encoder rather than being constructor options
DESCRIPTIVE_KEYS = ("name", "sample_rate", "window", "dim")


# --------------------------------------------------------------------------- the trainable contract


def parse_names(value: Any, what: str = "value") -> tuple[str, ...]:
    """A list of names from text (``"a,b"``), a list or a tuple; blanks dropped, duplicates refused.

    Options arrive as text from ``-O KEY=VALUE`` and config files: a list
    given as text must never be iterated character by character.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        raise BenchError(f"{what}: expected names separated by commas, got {value!r}")
    names = tuple(n.strip() for n in items if n.strip())
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BenchError(f"{what} names {', '.join(dupes)} twice")
    return names


def _coerce(field_name: str, kind: str, value: Any) -> Any:
    """A recipe value of the declared kind, from a value or its text; BenchError naming the key."""
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
            return out
        if kind == "bool":
            return parse_bool(value, field_name, "recipe")
        if kind == "names":
            return parse_names(value, field_name)
        if kind == "names?":
            if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "auto")):
                return None
            return parse_names(value, field_name)
        if kind == "str":
            return str(value)
    except (TypeError, ValueError):
        pass
    raise BenchError(f"recipe option {field_name}={value!r}: expected {KIND_WORDS[kind]}")


KIND_WORDS = {"int": "a whole number", "float": "a finite number", "bool": "true or false",
              "names": "names separated by commas", "names?": "names separated by commas, or none",
              "str": "text"}


@dataclass(frozen=True)
class Recipe:
    """How a trainable encoder is trained: part of the checkpoint key, never of ``config()``.

    ``unlabeled_tasks=None`` (the default) means the train splits of every
    registered task whose data is present (the demo data when no data root is
    configured); ``()`` means none. Values given as text (``-O steps=300``,
    ``-O unlabeled_tasks=nsynth_pitch,gtzan``) are parsed by :meth:`replace`.
    """

    steps: int
    batch_size: int
    lr: float
    views: int = 2
    seed: int = 123
    weight_decay: float = 0.0
    augment: bool = True
    #: the shapes of the augmentation chain: "bench" or "official" (the official code's; docs/augmentation.md)
    augment_variant: str = "bench"
    severity: float = 1.0
    p_apply: float = 0.8
    checkpoint_every: int = 100
    log_every: int = 10
    #: several labeled tasks: the labeled clips of a step come from one task ("step") or one per clip ("row")
    labeled_mix: str = "step"
    unlabeled_tasks: tuple[str, ...] | None = None
    unlabeled_dirs: tuple[str, ...] = ()
    #: early stopping on the labeled tasks' valid splits: stop after this many validations without a
    #: lower validation loss and keep the best validation's weights; 0 = off (docs/pretraining.md)
    early_stopping_patience: int = 0
    #: steps between validations; 0 = one epoch of the labeled pool (labeled tracks // labeled clips per batch)
    validate_every: int = 0
    #: how the labeled clips of a batch are drawn: "uniform" (from the labeled pool) or "balanced"
    #: (``per_class`` clips of each of as many classes as that allows: label positives in every batch)
    labeled_sampler: str = "uniform"
    per_class: int = 4
    #: emulate the official SemiSupCon code, which cuts the labeled pool by p_s twice (about p_s squared of the
    #: train split kept; docs/protocols.md, "Label fraction"); off: p_s once, as the paper's text says
    official_ps_twice: bool = False
    #: the sample type of the pretraining audio store: "float32" (the demo's) or "int16" (half the disk and
    #: page cache; the paper preset's): the stored audio differs by up to 0.5/32767, so it is a cause of the
    #: checkpoint (bench.pretrain.audio_store)
    store_dtype: str = "float32"
    #: learning curve: probe the encoder on the tasks' valid splits every this many steps (and at the first
    #: and last step); 0 = off (bench.pretrain.probing, docs/pretraining.md "Learning curves")
    probe_every: int = 0

    KINDS: ClassVar[dict[str, str]] = {
        "steps": "int", "batch_size": "int", "lr": "float", "views": "int", "seed": "int",
        "weight_decay": "float", "augment": "bool", "augment_variant": "str", "severity": "float",
        "p_apply": "float",
        "checkpoint_every": "int", "log_every": "int", "labeled_mix": "str", "unlabeled_tasks": "names?",
        "unlabeled_dirs": "names", "early_stopping_patience": "int", "validate_every": "int",
        "labeled_sampler": "str", "per_class": "int", "official_ps_twice": "bool",
        "store_dtype": "str", "probe_every": "int",
    }
    #: the keys whose change makes a training checkpoint another run (refused on resume)
    IDENTITY: ClassVar[tuple[str, ...]] = ("batch_size", "lr", "views", "seed", "augment", "augment_variant",
                                           "severity", "p_apply")
    #: keys added after checkpoints existed: left out of :meth:`key_dict` and :meth:`identity` at these
    #: (default) values, so every run that does not use them keeps its checkpoint key and its resumable state
    OPTIONAL: ClassVar[dict[str, Any]] = {"early_stopping_patience": 0, "validate_every": 0,
                                          "labeled_sampler": "uniform", "per_class": 4,
                                          "official_ps_twice": False, "store_dtype": "float32",
                                          "probe_every": 0}
    #: the augmentation variants of bench.augment.Augmenter (checked equal by a test)
    AUGMENT_VARIANTS: ClassVar[tuple[str, ...]] = ("bench", "official")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def __post_init__(self) -> None:
        for name, kind in self.KINDS.items():
            object.__setattr__(self, name, _coerce(name, kind, getattr(self, name)))
        checks = (("steps", self.steps >= 1, "at least 1"), ("batch_size", self.batch_size >= 1, "at least 1"),
                  ("lr", self.lr > 0, "positive"), ("views", self.views >= 1, "at least 1"),
                  ("weight_decay", self.weight_decay >= 0, "0 or more"),
                  ("severity", self.severity >= 0, "0 or more"), ("p_apply", 0 <= self.p_apply <= 1, "in [0, 1]"),
                  ("checkpoint_every", self.checkpoint_every >= 1, "at least 1"),
                  ("log_every", self.log_every >= 1, "at least 1"),
                  ("early_stopping_patience", self.early_stopping_patience >= 0, "0 (off) or more"),
                  ("validate_every", self.validate_every >= 0, "0 (once per epoch of the labeled pool) or more"),
                  ("probe_every", self.probe_every >= 0, "0 (off) or more"),
                  ("labeled_mix", self.labeled_mix in ("step", "row"), "'step' or 'row'"),
                  ("labeled_sampler", self.labeled_sampler in ("uniform", "balanced"), "'uniform' or 'balanced'"),
                  ("per_class", self.per_class >= 1 and (self.labeled_sampler == "balanced" or self.per_class == 4),
                   "at least 1, and is used with labeled_sampler=balanced only"),
                  ("store_dtype", self.store_dtype in ("float32", "int16"), "'float32' or 'int16'"),
                  ("augment_variant", self.augment_variant in self.AUGMENT_VARIANTS,
                   " or ".join(map(repr, self.AUGMENT_VARIANTS))))
        for name, ok, rule in checks:
            if not ok:
                raise BenchError(f"recipe option {name}={getattr(self, name)!r} must be {rule}")

    def replace(self, **changes: Any) -> "Recipe":
        """A copy with ``changes`` (text values parsed); an unknown key is an error with did-you-mean."""
        unknown = [k for k in changes if k not in self.keys()]
        if unknown:
            hints = [difflib.get_close_matches(k, self.keys(), n=1) for k in unknown]
            hint = "".join(f" Did you mean {h[0]!r} for {k!r}?" for k, h in zip(unknown, hints) if h)
            raise BenchError(f"unknown recipe option(s) {', '.join(map(repr, unknown))}.{hint} "
                             f"Recipe options: {', '.join(self.keys())}.")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    def key_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the :attr:`OPTIONAL` keys at their default: what checkpoint keys hash."""
        return {k: v for k, v in self.to_dict().items() if k not in self.OPTIONAL or v != self.OPTIONAL[k]}

    def identity(self) -> dict[str, Any]:
        """The keys whose change makes a training checkpoint another run (:attr:`IDENTITY`, and the early
        stopping keys when set: a resumed run must stop by the rule it started with)."""
        out = {k: getattr(self, k) for k in self.IDENTITY}
        out.update({k: getattr(self, k) for k in self.OPTIONAL if getattr(self, k) != self.OPTIONAL[k]})
        return out


@dataclass(frozen=True)
class LabelSpec:
    """The labeled pool a trainable encoder asks for.

    ``tasks``: the tasks whose train splits are labeled (several share one
    label space); ``fraction`` (p_s): the share of each labeled train split
    kept (a seeded subset); ``share`` (b_s): the share of each batch that is
    labeled. ``required=False`` marks a default (a preset's): tasks whose data
    is absent are left out, and the trainer says and records so; with
    ``required=True`` (the user named the tasks) an absent task is an error.
    ``label_aware_augment``: see :attr:`bench.task.Task.label_variant_transforms`.
    """

    tasks: tuple[str, ...] = ()
    fraction: float = 1.0
    share: float = 0.0
    required: bool = True
    #: the labeled clips of a task skip the augmentations its labels are not invariant to
    #: (bench.task.Task.label_variant_transforms), during pretraining
    label_aware_augment: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", parse_names(self.tasks, "label_task"))
        if not 0 < self.fraction <= 1:
            raise BenchError(f"label_fraction (p_s) must be in (0, 1], got {self.fraction}")
        if not 0 <= self.share <= 1:
            raise BenchError(f"labeled_share (b_s) must be in [0, 1], got {self.share}")
        if self.share > 0 and not self.tasks:
            raise BenchError(f"labeled_share (b_s) is {self.share} but no labeled task is given (label_task)")


@dataclass(frozen=True)
class LabelGroup:
    """One labeled task's block of the label space: columns ``offset .. offset+size``."""

    task: str
    kind: str
    offset: int
    size: int
    tracks: int


@dataclass(frozen=True)
class LabelSpace:
    """The label space the trainer built from the labeled pool, given to ``setup_pretraining``.

    ``kind``: ``"multilabel"`` or ``"multiclass"`` (one task), ``"multitask"``
    (several: a row is -1 on the other tasks' classes, unknown rather than
    absent), or ``None`` (no labeled pool). ``classes`` are prefixed
    ``task:`` when there are several tasks.
    """

    classes: tuple[str, ...] = ()
    kind: str | None = None
    groups: tuple[LabelGroup, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)


class TrainableEncoder(Encoder):
    """Base and contract of an encoder that ``bench pretrain`` can train.

    The trainer (``bench.pretrain``) calls, in order: :meth:`recipe` and
    :meth:`label_spec` (to build the pools and the batches),
    :meth:`setup_pretraining` once with the :class:`LabelSpace`, then
    :meth:`pretrain_loss` every step on :meth:`training_module` (wrapped for
    several processes). The weights it saves are :meth:`state_dict`'s.

    It takes the option ``seed`` (its initial weights and, through
    :meth:`recipe`, its training seed), so ``--pretrain-seeds`` can train one
    model per seed.
    """

    seeded: ClassVar[bool] = True
    #: the label space of the current training, set by :meth:`setup_pretraining` (None before)
    label_space: LabelSpace | None = None

    def recipe(self) -> Recipe:
        """The training recipe (steps, batch, lr, augmentation, unlabeled pool)."""
        raise NotImplementedError(f"encoder {self.name!r} does not implement recipe()")

    def label_spec(self) -> LabelSpec:
        """The labeled pool it wants; the default is none (self-supervised)."""
        return LabelSpec()

    def setup_pretraining(self, labels: LabelSpace) -> None:
        """Called once before the optimizer is built, when the label space is known.

        The default keeps it as ``self.label_space``; an encoder with a
        classification head builds the head here (its parameters are then
        part of :meth:`training_module` and trained).
        """
        self.label_space = labels

    def training_module(self) -> "torch.nn.Module":
        """The module whose parameters are trained and whose forward the loss runs (default ``self.module``)."""
        if self.module is None:
            raise PluginError(f"encoder {self.name!r} is trainable but has no module")
        return self.module

    def head_logits(self, embeddings: "torch.Tensor") -> "torch.Tensor | None":
        """Logits ``[B, C]`` of a head trained with the encoder (columns: the pretraining :class:`LabelSpace`)
        on ``embeddings [B, dim]``; such an encoder is also scored with it ("own head"). None: no head."""
        return None

    def pretrain_loss(self, views: "torch.Tensor", labels: "torch.Tensor | None", labeled: "torch.Tensor",
                      model: "torch.nn.Module") -> "torch.Tensor":
        """The loss of one batch: a scalar tensor.

        ``views [B, N, window]``: N augmented views of B clips; ``labels
        [B, C]`` (or None without a labeled pool): multi-hot rows in the
        :class:`LabelSpace` (-1 marks another task's classes); ``labeled [B]``
        (bool): which rows are real labels (the others are unlabeled clips,
        all zeros); ``model``: :meth:`training_module` as the trainer wraps
        it (run the forward through it: with several processes gradients are
        synchronised only through the wrapper).
        """
        raise NotImplementedError(f"encoder {self.name!r} does not implement pretrain_loss()")

    def loss_terms(self) -> dict[str, float]:
        """The named parts of the loss of the last :meth:`pretrain_loss` call (optional; default none).

        The trainer calls it right after each training step's ``pretrain_loss``
        and logs the mean of each term over the steps since its last log line
        (``metrics.jsonl``: ``"terms": {name: value}``). Plain floats,
        computed from detached tensors (no gradient, no random draws: logging
        them never changes the training). An encoder whose loss is a sum of
        parts returns the parts, e.g. the view-positive and label-positive
        terms of a contrastive loss, or one cross-entropy per labeled task.
        """
        return {}


def check_embeddings(encoder: Encoder, out: Any, batch: int) -> None:
    """Raise a clear error naming the encoder when ``embed`` broke the contract."""
    import torch

    if not isinstance(out, torch.Tensor):
        raise EncoderContractError(
            f"encoder {encoder.name!r}: embed() returned {type(out).__name__}, expected a torch.Tensor of shape [B, dim]"
        )
    want = encoder.output_shape(batch)
    if tuple(out.shape) != want:
        contract = "[B, dim]" if len(want) == 2 else "[B, layers, dim]"
        raise EncoderContractError(
            f"encoder {encoder.name!r}: embed() returned shape {tuple(out.shape)} for a batch of {batch} windows; "
            f"the contract is {contract} = {list(want)}. Fix embed() or the encoder's `dim` (and `layers`)."
        )
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out.reshape(batch, -1))).any(dim=1).sum())
        raise EncoderContractError(
            f"encoder {encoder.name!r}: embed() returned NaN or infinite values for {bad} of {batch} windows. "
            "Check the weights (a diverged checkpoint?) and the input scaling."
        )
