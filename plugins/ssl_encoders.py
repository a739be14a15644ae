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
``seed`` (initial weights). :meth:`config` holds what defines the encoder:
preset and objective settings, not the checkpoint path. The training recipe
(steps, batch, learning rate, augmentation) lives in
:func:`SampleCNNEncoder.recipe` and in the checkpoint's metadata.

This module does not import torch at import time (``bench list`` stays fast).
"""

from __future__ import annotations

from typing import Any

from bench import hookimpl
from bench.encoder import Encoder, load_checkpoint
from bench.errors import PluginError

#: labeled pool of the ``demo`` preset: the NSynth pitch and GTZAN train splits in one label
#: space (claim 4 of the paper: the labeled data shapes the representation). A demo batch holds
#: 16 labeled clips, so only tasks with few classes per clip give label positives that carry
#: information: MTAT's demo tags (5 per clip) made half of all pairs positive and left pitch
#: below the untrained network, as did the MTAT-only pool of the paper; the 24 keys of 96 demo
#: tracks almost never pair up. docs/pretraining.md "Demo recipe" has the measurements.
DEMO_LABEL_TASKS = "nsynth_pitch,gtzan"

#: training-recipe options: they change how the weights are trained, not what the encoder is
RECIPE_KEYS = ("steps", "batch_size", "lr", "views", "augment", "severity", "p_apply",
               "checkpoint_every", "log_every", "unlabeled_tasks", "unlabeled_dirs", "labeled_mix")


class SampleCNNEncoder(Encoder):
    """Shared base: a seeded SampleCNN (+ head) with presets and checkpoint loading."""

    name = "samplecnn"
    #: objective settings and their defaults (part of config())
    objective_defaults: dict[str, Any] = {}
    #: recipe defaults that differ from the preset's
    recipe_defaults: dict[str, Any] = {"augment": True}
    #: per preset: objective defaults of this encoder (over objective_defaults; options win)
    preset_objective: dict[str, dict[str, Any]] = {}
    #: per preset: recipe defaults of this encoder (over the preset's recipe and recipe_defaults)
    preset_recipe: dict[str, dict[str, Any]] = {}
    head_kind: str | None = "projection"

    def __init__(self, preset: str = "demo", checkpoint: str | None = None, seed: int = 123, **options: Any) -> None:
        known = set(self.objective_defaults) | set(RECIPE_KEYS)
        unknown = set(options) - known
        if unknown:
            raise PluginError(
                f"encoder {self.name!r}: unknown option(s) {sorted(unknown)}; known options: "
                f"preset, checkpoint, seed, {', '.join(sorted(known))}"
            )
        from bench_plugins import samplecnn

        p = samplecnn.preset(preset)
        self.preset = preset
        self.seed = int(seed)
        self.objective = {**self.objective_defaults, **self.preset_objective.get(preset, {}),
                          **{k: v for k, v in options.items() if k in self.objective_defaults}}
        if self.objective.get("label_task"):  # one spelling per set of tasks: "mtat, gtzan" -> "mtat,gtzan"
            from bench.errors import BenchError
            from bench.pretrain import split_tasks

            try:
                self.objective["label_task"] = ",".join(split_tasks(self.objective["label_task"]))
            except BenchError as exc:
                raise PluginError(f"encoder {self.name!r}: {exc}") from exc
        self._recipe_options = {k: v for k, v in options.items() if k in RECIPE_KEYS}
        super().__init__(preset=preset, seed=self.seed, **self.objective)
        self.sample_rate = p["sample_rate"]
        self.window = p["window"]
        self.dim = p["dim"]
        self.module = samplecnn.build(preset, self.seed, head=self.head_kind)
        self.checkpoint = checkpoint
        self.label_kind: str | None = None
        self.label_groups: list[dict[str, Any]] | None = None
        if checkpoint:
            load_checkpoint(self, checkpoint)

    @classmethod
    def options_from_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Constructor options that rebuild the encoder a checkpoint's ``config()`` describes.

        ``bench run --checkpoint PATH`` uses it, so a checkpoint trained with
        non-default options (another preset, ``label_fraction=0.05``, ...)
        loads without repeating them.
        """
        out = {k: config[k] for k in ("preset", "seed") if k in config}
        out.update({k: v for k, v in (config.get("objective") or {}).items() if k in cls.objective_defaults})
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

    # -- pretraining -----------------------------------------------------------
    def recipe(self) -> dict[str, Any]:
        """The training recipe: the preset's, then this encoder's defaults, then options."""
        from bench_plugins import samplecnn

        base = {"augment": True, "severity": 1.0, "p_apply": 0.8, "unlabeled_tasks": None, "unlabeled_dirs": (),
                "labeled_mix": "step"}
        return {**base, **samplecnn.preset(self.preset)["recipe"], **self.recipe_defaults,
                **self.preset_recipe.get(self.preset, {}), **self._recipe_options}

    def setup_pretraining(self, num_classes: int | None, label_kind: str | None,
                          groups: list[dict[str, Any]] | None = None) -> None:
        """Called by the training loop before the optimizer is built (labels known now).

        ``groups`` (several labeled tasks, ``label_kind="multitask"``): each
        task's kind and block of the label space.
        """
        self.label_kind = label_kind
        self.label_groups = groups


class _ContrastiveEncoder(SampleCNNEncoder):
    def pretrain_loss(self, views, labels=None, labeled=None, *, model=None):
        """Contrastive loss of a batch of views ``[B, N, T]``.

        ``labels [B, C]`` multi-hot (or None), ``labeled [B]`` bool: which rows
        of ``labels`` are real (unlabeled rows count as all-zero labels).
        ``model``: the (DDP-wrapped) module to run; default ``self.module``.
        """
        import torch

        from bench.losses import contrastive_loss

        model = model if model is not None else self.module
        b, n, t = views.shape
        z = model(views.reshape(b * n, t))
        clip = torch.arange(b, device=views.device).repeat_interleave(n)
        y = None
        if labels is not None:
            y = labels.float().clamp_min(0.0)  # -1 marks another labeled task's classes: not shared
            if labeled is not None:
                y = y * labeled.to(y.device, y.dtype)[:, None]
            y = y.repeat_interleave(n, dim=0)
        o = self.objective
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


class SimCLREncoder(_ContrastiveEncoder):
    """SimCLR (CLMR): the contrastive loss with no labels."""

    name = "simclr"
    objective_defaults = {"tau": 0.1, "label_task": None, "gather": True}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.objective.get("label_task"):
            raise PluginError("encoder 'simclr' uses no labels; use 'semisupcon' for a labeled pool")


class SupervisedEncoder(SampleCNNEncoder):
    """Supervised baseline: backbone + linear head, BCE or cross-entropy on the labeled pool."""

    name = "supervised"
    objective_defaults = {"label_task": "mtat", "label_fraction": 1.0, "labeled_share": 1.0}
    recipe_defaults = {"augment": False, "views": 1}
    preset_objective = {"demo": {"label_task": DEMO_LABEL_TASKS}}
    # one view, no augmentation: a step costs a quarter of a contrastive one, so 800 steps fit
    # the 3-minute budget; lr 1e-3 (the contrastive demo runs use 3e-4)
    preset_recipe = {"demo": {"steps": 800, "lr": 1e-3}}
    head_kind = None

    def setup_pretraining(self, num_classes: int | None, label_kind: str | None,
                          groups: list[dict[str, Any]] | None = None) -> None:
        import torch

        if label_kind == "multitask" and not groups:
            raise PluginError("encoder 'supervised': several labeled tasks but no task blocks (groups) given")
        if not num_classes or label_kind not in ("multilabel", "multiclass", "multitask"):
            raise PluginError(
                f"encoder 'supervised' needs a labeled task (multilabel or multiclass); got "
                f"{num_classes} classes of kind {label_kind!r}"
            )
        super().setup_pretraining(num_classes, label_kind, groups)
        head = self.module.head
        if head is None or head.out_features != num_classes:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 1)
                self.module.head = torch.nn.Linear(self.dim, num_classes)
            self.module.head.to(next(self.module.encoder.parameters()).device)

    def load_state_dict(self, state):
        import torch

        w = state.get("head.weight")
        if w is not None and (self.module.head is None or tuple(self.module.head.weight.shape) != tuple(w.shape)):
            self.module.head = torch.nn.Linear(w.shape[1], w.shape[0])
        super().load_state_dict(state)

    def pretrain_loss(self, views, labels=None, labeled=None, *, model=None):
        """BCE / cross-entropy of the linear head on the labeled clips' views."""
        from bench.losses import supervised_loss

        if labels is None:
            raise PluginError("encoder 'supervised' needs labels; the batch has none")
        if self.label_kind is None:
            raise PluginError("encoder 'supervised': setup_pretraining(num_classes, kind) was not called")
        model = model if model is not None else self.module
        b, n, t = views.shape
        if labeled is not None and not bool(labeled.all()):
            raise PluginError("encoder 'supervised' trains on labeled clips only (labeled_share must be 1.0)")
        logits = model(views.reshape(b * n, t))
        return supervised_loss(logits, labels.repeat_interleave(n, dim=0), self.label_kind, self.label_groups)


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
