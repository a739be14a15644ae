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
:func:`save_checkpoint`; loading never unpickles code.

Pretraining (optional): an encoder that can be trained by ``bench pretrain``
implements :meth:`pretrain_loss`. A frozen third-party encoder leaves it out.

This module does not import torch at import time, so plugin modules can import
it cheaply.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import EncoderContractError, PluginError

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
    #: the ``torch.nn.Module`` holding the weights, if any (used by the defaults below)
    module: Any = None

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)
        self.device = "cpu"

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

    # -- optional: pretraining ---------------------------------------------
    def pretrain_loss(
        self, views: "torch.Tensor", labels: "torch.Tensor | None", labeled: "torch.Tensor | None" = None, *,
        model: Any = None,
    ) -> "torch.Tensor":
        """Loss over a batch of augmented views ``[B, N, window]`` and multi-hot labels ``[B, C]``.

        ``labeled [B]`` (bool) says which rows of ``labels`` are real (the
        others are unlabeled clips); ``model`` is the module to run, which the
        training loop passes as the DDP-wrapped ``self.module`` (gradients are
        only synchronised through the wrapper's forward). Trainable encoders
        also provide ``recipe()`` and ``setup_pretraining(num_classes, kind)``
        (see bench_plugins.ssl_encoders); with several labeled tasks, kind is
        ``"multitask"``, labels are -1 on the other tasks' classes and
        ``setup_pretraining`` also gets ``groups=`` (each task's block).
        Implemented by trainable encoders only; a frozen encoder keeps this
        default.
        """
        raise NotImplementedError(f"encoder {self.name!r} cannot be pretrained (frozen encoder)")

    @property
    def trainable(self) -> bool:
        return type(self).pretrain_loss is not Encoder.pretrain_loss


def weights_hash(encoder: Encoder) -> str:
    """SHA-256 over the encoder's tensors (names, dtypes, shapes and bytes), sorted by name."""
    import torch

    h = hashlib.sha256()
    for key, tensor in sorted(encoder.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def check_embeddings(encoder: Encoder, out: Any, batch: int) -> None:
    """Raise a clear error naming the encoder when ``embed`` broke the contract."""
    import torch

    if not isinstance(out, torch.Tensor):
        raise EncoderContractError(
            f"encoder {encoder.name!r}: embed() returned {type(out).__name__}, expected a torch.Tensor of shape [B, dim]"
        )
    if tuple(out.shape) != (batch, encoder.dim):
        raise EncoderContractError(
            f"encoder {encoder.name!r}: embed() returned shape {tuple(out.shape)} for a batch of {batch} windows; "
            f"the contract is [B, dim] = [{batch}, {encoder.dim}]. Fix embed() or the encoder's `dim`."
        )
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).any(dim=1).sum())
        raise EncoderContractError(
            f"encoder {encoder.name!r}: embed() returned NaN or infinite values for {bad} of {batch} windows. "
            "Check the weights (a diverged checkpoint?) and the input scaling."
        )


def save_checkpoint(encoder: Encoder, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the encoder's weights (safetensors) and config atomically to ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"encoder": encoder.name, "config": json.dumps(encoder.config(), sort_keys=True)}
    if extra:
        meta["extra"] = json.dumps(extra, sort_keys=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().to("cpu").contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def _read_checkpoint(path: str | Path, weights: bool) -> tuple[dict[str, str], dict[str, Any] | None]:
    """A checkpoint's metadata and (with ``weights``) its tensors; clear errors for a bad file."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise PluginError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return meta, (load_file(str(path)) if weights else None)
    except Exception as exc:
        raise PluginError(f"checkpoint {path} is not a readable safetensors file: {exc}") from exc


def checkpoint_config(path: str | Path) -> tuple[str | None, dict[str, Any]]:
    """The encoder name and config saved in a checkpoint's metadata (without loading the weights)."""
    meta, _ = _read_checkpoint(path, weights=False)
    return meta.get("encoder"), json.loads(meta.get("config", "{}"))


def load_checkpoint(encoder: Encoder, path: str | Path) -> dict[str, Any]:
    """Load weights saved by :func:`save_checkpoint`, refusing another encoder's or preset's."""
    meta, state = _read_checkpoint(path, weights=True)
    saved = json.loads(meta.get("config", "{}"))
    mine = encoder.config()
    if meta.get("encoder") != encoder.name or saved != mine:
        raise PluginError(
            f"checkpoint {path} was saved by encoder {meta.get('encoder')!r} with config\n  {saved}\n"
            f"but it is being loaded into encoder {encoder.name!r} with config\n  {mine}\n"
            "Use the encoder and preset it was trained with."
        )
    encoder.load_state_dict(state)
    return json.loads(meta.get("extra", "{}"))
