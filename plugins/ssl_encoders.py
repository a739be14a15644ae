"""SampleCNN encoders: ``semisupcon``, ``simclr``, ``supervised`` and the untrained ``random`` floor.

All four share the SampleCNN backbone (:mod:`bench_plugins.samplecnn`) and
differ only in the pretraining objective:

- ``semisupcon``: contrastive loss where clips sharing a label are positives
  too (labeled pool: the MTAT train split with the ``paper`` preset, the
  NSynth pitch and GTZAN train splits with the ``demo`` preset;
  ``label_fraction`` p_s, ``labeled_share`` b_s, ``threshold`` T,
  ``weighted`` Dice variant).
- ``simclr``: the same loss without labels (NT-Xent, CLMR).
- ``supervised``: the backbone plus a linear head trained with BCE
  (multilabel) or cross-entropy (multiclass) on the labeled pool only (the
  same pool as ``semisupcon`` of the same preset).
- ``random``: the backbone with its seeded initial weights; never trained.
  It is the floor of the leaderboard (what the architecture alone gives).

Options of every encoder: ``preset`` ("demo" or "paper"), ``checkpoint``
(a safetensors file written by ``bench pretrain``; loaded at construction and
refused when it was trained with another encoder, preset or objective),
``seed`` (initial weights, and the training seed of the trainable ones).
:meth:`config` holds what defines the encoder: preset and objective
settings, not the checkpoint path. The training recipe (steps, batch,
learning rate, augmentation, pools) is a :class:`bench.encoder.Recipe` from
:meth:`TrainableSampleCNN.recipe`; the trainer's overrides
(``bench pretrain --steps``, ``-O steps=...``) change it, never the config.

This module does not import torch at import time (``bench list`` stays fast).
"""

from __future__ import annotations

from typing import Any

from bench import hookimpl
from bench.encoder import Encoder, LabelSpace, LabelSpec, Recipe, TrainableEncoder, parse_names
from bench.errors import BenchError, PluginError
from bench.options import parse_bool
from bench.weights import load_checkpoint

#: labeled pool of the ``demo`` preset: the NSynth pitch and GTZAN train splits in one label
#: space (claim 4 of the paper: the labeled data shapes the representation). A demo batch holds
#: 16 labeled clips, so only tasks with few classes per clip give label positives that carry
#: information: MTAT's demo tags (5 per clip) made half of all pairs positive and left pitch
#: below the untrained network, as did the MTAT-only pool of the paper; the 24 keys of 96 demo
#: tracks almost never pair up. docs/pretraining.md "Demo recipe" has the measurements.
DEMO_LABEL_TASKS = "nsynth_pitch,gtzan"

class SampleCNNEncoder(Encoder):
    """Shared base: a seeded SampleCNN (+ head) with presets and checkpoint loading."""

    name = "samplecnn"
    self_contained = True  # seeded weights, or a checkpoint file bench is told of
    seeded = True  # -O seed sets the initial weights (the random baseline's whole identity)
    #: objective settings and their defaults (part of config())
    objective_defaults: dict[str, Any] = {}
    #: per preset: objective defaults of this encoder (over objective_defaults; options win)
    preset_objective: dict[str, dict[str, Any]] = {}
    head_kind: str | None = "projection"
    #: encoder options kept in the objective (and so in config()) only when set to a non-default
    #: value, so that adding them left every earlier checkpoint key as it was
    optional_objective: dict[str, Any] = {}

    def __init__(self, preset: str = "demo", checkpoint: str | None = None, seed: int = 123, **options: Any) -> None:
        extra = {k: options.pop(k) for k in list(options) if k in self.optional_objective}
        unknown = sorted(set(options) - set(self.objective_defaults))
        if unknown:
            import difflib

            known = ["preset", "checkpoint", "seed", *sorted(self.objective_defaults), *sorted(self.optional_objective)]
            candidates = known + [k for k in Recipe.keys() if k not in known]  # a misspelled recipe key too
            hints = "".join(f" Did you mean {c[0]!r} for {u!r}?" for u in unknown
                            for c in [difflib.get_close_matches(u, candidates, n=1)] if c)
            raise PluginError(f"encoder {self.name!r}: unknown option(s) {unknown}.{hints} Its options: "
                              f"{', '.join(known)}; recipe options (steps, lr, batch_size, ...) go to "
                              "`bench pretrain` or `bench run -O` and are told apart by name.")
        from bench_plugins import samplecnn

        p = samplecnn.preset(preset)
        self.preset = preset
        try:
            self.seed = int(seed)
        except (TypeError, ValueError):
            raise PluginError(f"encoder {self.name!r}: seed={seed!r} is not a whole number") from None
        self.objective = {**self.objective_defaults, **self.preset_objective.get(preset, {}),
                          **{k: v for k, v in options.items() if k in self.objective_defaults}}
        for key, value in extra.items():
            value = _optional_value(self.name, key, value, self.optional_objective[key])
            if not isinstance(value, bool) and isinstance(value, str):
                value = value.strip().lower()
            if value != self.optional_objective[key]:
                self.objective[key] = value
        #: the labeled tasks were named by the user (an absent one is an error), not a preset default
        self.label_task_given = "label_task" in options
        if self.objective.get("label_task"):  # one spelling per set of tasks: "mtat, gtzan" -> "mtat,gtzan"
            try:
                self.objective["label_task"] = ",".join(parse_names(self.objective["label_task"], "label_task"))
            except BenchError as exc:
                raise PluginError(f"encoder {self.name!r}: {exc}") from exc
        self._check_objective()
        super().__init__(preset=preset, seed=self.seed, **self.objective)
        self.sample_rate = p["sample_rate"]
        self.window = p["window"]
        self.dim = p["dim"]
        self.module = samplecnn.build(preset, self.seed, head=self.head_kind)
        self.checkpoint = checkpoint
        if checkpoint:
            load_checkpoint(self, checkpoint)

    def _check_objective(self) -> None:
        """Refuse objective values of the wrong type or range here, not mid-training."""
        o = self.objective
        for key in ("tau", "threshold", "label_fraction", "labeled_share"):
            if key in o:
                try:
                    o[key] = float(o[key])
                except (TypeError, ValueError):
                    raise PluginError(f"encoder {self.name!r}: {key}={o[key]!r} is not a number") from None
        if "tau" in o and not o["tau"] > 0:
            raise PluginError(f"encoder {self.name!r}: tau must be positive, got {o['tau']}")
        for key in ("weighted", "gather"):
            if key in o:
                o[key] = parse_bool(o[key], key, f"encoder {self.name!r}")

    @classmethod
    def options_from_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Constructor options that rebuild the encoder a checkpoint's ``config()`` describes.

        The config nests the objective (``{"preset", "seed", "objective":
        {...}}``), so the base's default is overridden.
        """
        out = {k: config[k] for k in ("preset", "seed") if k in config}
        out.update({k: v for k, v in (config.get("objective") or {}).items()
                    if k in cls.objective_defaults or k in cls.optional_objective})
        return out

    # -- contract ------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "window": self.window,
            "dim": self.dim,
            "preset": self.preset,
            "seed": self.seed,
            "objective": dict(sorted(self.objective.items())),
        }

    def embed(self, waveforms):
        """The backbone's embedding (never the head): ``[B, window] -> [B, dim]``."""
        return self.module.encoder(waveforms)


class TrainableSampleCNN(SampleCNNEncoder, TrainableEncoder):
    """A SampleCNN encoder that ``bench pretrain`` trains: recipe and label spec from its preset and options."""

    #: recipe values of this encoder that differ from its preset's recipe
    recipe_defaults: dict[str, Any] = {}

    def recipe(self) -> Recipe:
        """The preset's recipe, then this encoder's defaults; the seed is the encoder's."""
        from bench_plugins import samplecnn

        values = {**samplecnn.preset(self.preset)["recipe"], **self.recipe_defaults, "seed": self.seed}
        return Recipe(**values)

    def label_spec(self) -> LabelSpec:
        o = self.objective
        return LabelSpec(tasks=parse_names(o.get("label_task"), "label_task"),
                         fraction=float(o.get("label_fraction", 1.0)), share=float(o.get("labeled_share", 0.0)),
                         required=self.label_task_given,
                         label_aware_augment=parse_bool(o.get("label_aware_augment", False), "label_aware_augment",
                                                             f"encoder {self.name!r}"))


class _ContrastiveEncoder(TrainableSampleCNN):
    #: the parts of the last pretrain_loss (bench.losses.contrastive_terms), for the trainer's log
    _terms: dict[str, float] = {}

    def loss_terms(self) -> dict[str, float]:
        """The last batch's loss by kind of positive: ``view`` (same clip) and ``label`` (shared labels)."""
        return dict(self._terms)

    def pretrain_loss(self, views, labels, labeled, model):
        """Contrastive loss of a batch of views ``[B, N, T]``.

        ``labels [B, C]`` multi-hot (or None), ``labeled [B]`` bool: which rows
        of ``labels`` are real (unlabeled rows count as all-zero labels).
        ``model``: the (DDP-wrapped) module to run.
        """
        import torch

        from bench.losses import contrastive_loss

        b, n, t = views.shape
        z = model(views.reshape(b * n, t))
        clip = torch.arange(b, device=views.device).repeat_interleave(n)
        y = None
        if labels is not None:
            y = labels.float().clamp_min(0.0)  # -1 marks another labeled task's classes: not shared
            if labeled is not None:
                y = y * labeled.to(y.device, y.dtype)[:, None]
            y = y.repeat_interleave(n, dim=0)
        from bench.losses import contrastive_terms

        o = self.objective
        self._terms = contrastive_terms(z, clip, y, tau=o["tau"], threshold=o.get("threshold", 1.0),
                                        weighted=o.get("weighted", False))
        return contrastive_loss(
            z, clip, y, tau=o["tau"], threshold=o.get("threshold", 1.0), weighted=o.get("weighted", False),
            gather=o.get("gather", True),
        )


class SemiSupConEncoder(_ContrastiveEncoder):
    """SemiSupCon: contrastive learning where clips sharing labels are positives too."""

    name = "semisupcon"
    objective_defaults = {
        "tau": 0.1,
        "threshold": 1.0,
        "weighted": False,
        "label_task": "mtat",
        "label_fraction": 1.0,
        "labeled_share": 0.5,
        "gather": True,
    }
    # the same labeled pool as the supervised baseline of the same preset (a fair comparison)
    preset_objective = {"demo": {"label_task": DEMO_LABEL_TASKS}}
    #: label_aware_augment: the labeled clips of a task skip the transforms its labels are not
    #: invariant to (Task.label_variant_transforms: pitch shift for pitch and key); docs/protocols.md
    optional_objective = {"label_aware_augment": False}


class SimCLREncoder(_ContrastiveEncoder):
    """SimCLR (CLMR): the contrastive loss with no labels."""

    name = "simclr"
    objective_defaults = {"tau": 0.1, "label_task": None, "gather": True}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.objective.get("label_task"):
            raise PluginError("encoder 'simclr' uses no labels; use 'semisupcon' for a labeled pool")


class SupervisedEncoder(TrainableSampleCNN):
    """Supervised baseline: backbone + linear head, BCE or cross-entropy on the labeled pool."""

    name = "supervised"
    objective_defaults = {"label_task": "mtat", "label_fraction": 1.0, "labeled_share": 1.0}
    # one view, no augmentation, at every preset (the demo preset's recipe otherwise: the contrastive
    # encoders' lr and steps); a step costs a quarter of a contrastive one
    recipe_defaults = {"augment": False, "views": 1}
    preset_objective = {"demo": {"label_task": DEMO_LABEL_TASKS}}
    head_kind = None
    #: recipe_preset=official: the official code's supervised baseline recipe (config/finetuning/from_scratch/
    #: train_MTAT.yaml: Adam 3e-4, weight decay 1e-6, batch 64, one crop, no augmentation, early stopping
    #: with patience 15 on the validation loss, checked once per epoch); the preset's step count is the cap
    #: (the official one is 200k). docs/protocols.md. label_aware_augment matters only with -O augment=true.
    optional_objective = {"recipe_preset": "bench", "label_aware_augment": False}
    RECIPE_PRESETS: dict[str, dict[str, Any]] = {
        "bench": {},
        "official": {"lr": 3e-4, "weight_decay": 1e-6, "batch_size": 64, "views": 1, "augment": False,
                     "early_stopping_patience": 15, "validate_every": 0},
    }

    def _check_objective(self) -> None:
        super()._check_objective()
        name = self.objective.get("recipe_preset", "bench")
        if name not in self.RECIPE_PRESETS:
            raise PluginError(f"encoder 'supervised': recipe_preset={name!r}; use one of "
                              f"{', '.join(self.RECIPE_PRESETS)}")

    def recipe(self) -> Recipe:
        """The preset's recipe, with the official baseline's values when ``recipe_preset=official``."""
        base = super().recipe()
        return base.replace(**self.RECIPE_PRESETS[self.objective.get("recipe_preset", "bench")])

    def setup_pretraining(self, labels: LabelSpace) -> None:
        """Build the linear head for the label space (its parameters train with the backbone)."""
        import torch

        num_classes = labels.num_classes
        if labels.kind == "multitask" and not labels.groups:
            raise PluginError("encoder 'supervised': several labeled tasks but no task blocks (groups) given")
        if not num_classes or labels.kind not in ("multilabel", "multiclass", "multitask"):
            raise PluginError(
                f"encoder 'supervised' needs a labeled task (multilabel or multiclass); got "
                f"{num_classes} classes of kind {labels.kind!r}"
            )
        super().setup_pretraining(labels)
        head = self.module.head
        if head is None or head.out_features != num_classes:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 1)
                self.module.head = torch.nn.Linear(self.dim, num_classes)
            self.module.head.to(next(self.module.encoder.parameters()).device)

    def head_logits(self, embeddings):
        """The trained linear head on embeddings (the official baseline's test: its head on the mean embedding)."""
        head = self.module.head
        return head(embeddings) if head is not None else None

    def load_state_dict(self, state):
        import torch

        w = state.get("head.weight")
        if w is not None and (self.module.head is None or tuple(self.module.head.weight.shape) != tuple(w.shape)):
            self.module.head = torch.nn.Linear(w.shape[1], w.shape[0])
        super().load_state_dict(state)

    def pretrain_loss(self, views, labels, labeled, model):
        """BCE / cross-entropy of the linear head on the labeled clips' views."""
        from bench.losses import supervised_loss

        if labels is None:
            raise PluginError("encoder 'supervised' needs labels; the batch has none")
        space = self.label_space
        if space is None:
            raise PluginError("encoder 'supervised': setup_pretraining(labels) was not called")
        b, n, t = views.shape
        if labeled is not None and not bool(labeled.all()):
            raise PluginError("encoder 'supervised' trains on labeled clips only (labeled_share must be 1.0)")
        logits = model(views.reshape(b * n, t))
        y = labels.repeat_interleave(n, dim=0)
        loss = supervised_loss(logits, y, space.kind, space.groups or None)
        self._terms = self._task_terms(logits.detach(), y, space)
        return loss

    _terms: dict[str, float] = {}

    def loss_terms(self) -> dict[str, float]:
        """The last batch's loss per labeled task (``ce:TASK`` or ``bce:TASK``; the loss is their mean)."""
        return dict(self._terms)

    @staticmethod
    def _task_terms(logits, y, space: LabelSpace) -> dict[str, float]:
        import torch

        from bench.losses import supervised_loss

        name = {"multiclass": "ce", "multilabel": "bce"}
        with torch.no_grad():
            if space.kind != "multitask":
                task = space.groups[0].task if space.groups else "labels"
                return {f"{name[space.kind]}:{task}": float(supervised_loss(logits, y, space.kind))}
            out = {}
            for g in space.groups:
                rows = y[:, g.offset] >= 0
                if bool(rows.any()):
                    lo, hi = g.offset, g.offset + g.size
                    out[f"{name[g.kind]}:{g.task}"] = float(supervised_loss(logits[rows, lo:hi], y[rows, lo:hi],
                                                                            g.kind))
            return out


def _optional_value(encoder: str, key: str, value: Any, default: Any) -> Any:
    """An optional objective value of the default's type (booleans from text too); PluginError naming it."""
    if isinstance(default, bool):
        return parse_bool(value, key, f"encoder {encoder!r}")
    return value


class RandomEncoder(SampleCNNEncoder):
    """The untrained SampleCNN with seeded weights: the floor row of the leaderboard."""

    name = "random"
    head_kind = None


@hookimpl
def register_encoders(register):
    register("semisupcon", "bench_plugins.ssl_encoders:SemiSupConEncoder",
             description="SampleCNN, semi-supervised contrastive (SemiSupCon; labeled pool MTAT by default)")
    register("simclr", "bench_plugins.ssl_encoders:SimCLREncoder",
             description="SampleCNN, self-supervised contrastive (SimCLR / CLMR)")
    register("supervised", "bench_plugins.ssl_encoders:SupervisedEncoder",
             description="SampleCNN trained end to end on the labeled pool (BCE / cross-entropy)")
    register("random", "bench_plugins.ssl_encoders:RandomEncoder",
             description="SampleCNN with seeded random weights, untrained (floor baseline)")
