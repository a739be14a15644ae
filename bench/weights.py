"""Encoder weights on disk: safetensors plus the encoder's JSON config, never pickled code.

:func:`save_checkpoint` writes a checkpoint atomically; :func:`load_checkpoint`
refuses one saved by another encoder or with another config (preset,
objective); :func:`checkpoint_config` reads the saved config without the
weights (``bench run --checkpoint`` rebuilds the encoder from it with
:meth:`bench.encoder.Encoder.options_from_config`); :func:`weights_hash` is the
digest the embedding cache and the records use. A saved checkpoint is sealed with its SHA-256
(:func:`bench.store.seal`); loading a sealed file that no longer matches is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import store
from bench.errors import PluginError

if TYPE_CHECKING:  # pragma: no cover
    from bench.encoder import Encoder


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
    store.seal(path, store.hash_file(tmp))  # sealed before it appears: a reader never sees it unsealed
    tmp.replace(path)
    return path


def _read_checkpoint(path: str | Path, weights: bool) -> tuple[dict[str, str], dict[str, Any] | None]:
    """A checkpoint's metadata and (with ``weights``) its tensors; clear errors for a bad file."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        files = sorted(p.name for p in path.glob("*.safetensors"))[:5]
        raise PluginError(f"checkpoint {path} is a directory; give the .safetensors file itself"
                          + (f" (it holds {', '.join(files)})" if files else ""))
    if not path.is_file():
        raise PluginError(f"checkpoint {path} does not exist")
    if store.verify(path) is False:
        raise PluginError(f"checkpoint {path} does not match the checksum recorded when it was saved "
                          f"({path}.sha256): it was changed or damaged since. Re-create it with `bench pretrain`.")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return meta, (load_file(str(path)) if weights else None)
    except Exception as exc:
        raise PluginError(f"checkpoint {path} is not a readable safetensors file: {exc}") from exc


def _meta_json(meta: dict[str, str], key: str, path: str | Path) -> dict[str, Any]:
    """A JSON object stored under ``key`` in a checkpoint's metadata; PluginError naming the file if not."""
    try:
        value = json.loads(meta.get(key, "{}"))
    except json.JSONDecodeError as exc:
        raise PluginError(f"checkpoint {path}: its metadata {key!r} is not JSON ({exc}); the file was not written "
                          "by bench (or was edited). Re-create it with `bench pretrain`.") from exc
    if not isinstance(value, dict):
        raise PluginError(f"checkpoint {path}: its metadata {key!r} is {type(value).__name__}, expected a JSON object; "
                          "re-create the checkpoint with `bench pretrain`.")
    return value


def checkpoint_config(path: str | Path) -> tuple[str | None, dict[str, Any]]:
    """The encoder name and config saved in a checkpoint's metadata (without loading the weights)."""
    meta, _ = _read_checkpoint(path, weights=False)
    return meta.get("encoder"), _meta_json(meta, "config", path)


def load_checkpoint(encoder: Encoder, path: str | Path) -> dict[str, Any]:
    """Load weights saved by :func:`save_checkpoint`, refusing another encoder's or preset's."""
    meta, state = _read_checkpoint(path, weights=True)
    saved = _meta_json(meta, "config", path)
    mine = encoder.config()
    if meta.get("encoder") != encoder.name or saved != mine:
        raise PluginError(
            f"checkpoint {path} was saved by encoder {meta.get('encoder')!r} with config\n  {saved}\n"
            f"but it is being loaded into encoder {encoder.name!r} with config\n  {mine}\n"
            "Use the encoder and preset it was trained with."
        )
    try:
        encoder.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise PluginError(f"checkpoint {path}: its tensors do not fit encoder {encoder.name!r} with the config it "
                          f"names ({str(exc).splitlines()[0][:300]}). The file is damaged or was edited; "
                          "re-create it with `bench pretrain`.") from exc
    return _meta_json(meta, "extra", path)

