"""``hf``: audio models of the Hugging Face ``transformers`` library as bench encoders.

The encoders music papers compare against (MERT, HuBERT, wav2vec 2.0,
WavLM, data2vec, AST, ...) without a plugin each::

    pip install 'music-bench[hf]'
    bench run --encoder hf -O model=mert-v1-95m -O trust_remote_code=true --tasks all
    bench run --encoder hf -O model=./my-finetuned-wav2vec2 -O layer=6

Options (``-O KEY=VALUE``):

- ``model``: a Hugging Face model id (``facebook/hubert-base-ls960``), a
  local folder written by ``save_pretrained``, or an alias of :data:`ALIASES`.
- ``revision``: branch, tag or commit of a hub model (default ``main``).
- ``layer``: which hidden state, ``0`` (the input embedding) to the number of
  layers, negative counting from the last, ``mean`` (default: the mean
  over all of them), or ``all``: every hidden state, extracted once as a
  stack (``Encoder.layers``), each probed on its own and the layer chosen
  on validation, with the per-layer curve in the records, ``layers.md`` and
  ``layers.png`` (:mod:`bench.layers`). Each is averaged over time within a
  window. CLAP: ``projection`` (default: the audio embedding of the joint
  audio-text space, ``get_audio_features``) or ``pooled`` (the audio
  tower's pooled output before the projection).
- ``seconds``: window length in seconds (default 5, MERT's training clip;
  CLAP: its extractor's clip length, ``max_length_s``).
- ``trust_remote_code``: run the model's own Python code from its repository
  (MERT needs it). Off unless passed: that code runs on your machine.
- ``download``: fetch a hub model that is not in the local cache (default
  false: weights come from the hub cache, ``HF_HUB_CACHE``; fetch once with
  ``hf download ID``).

The model's own feature extractor (``preprocessor_config.json``) gives the
sample rate and the input (waveform normalisation for wav2vec-style models,
filterbanks for AST); a wav2vec-family model without one gets the standard
16 kHz normalising extractor, and the config says so.

``config()`` (the cache key and every record) holds the model id and the
resolved commit of a hub model, or, for a local folder, its path and a
SHA-256 of its files, plus layer, window, model type and the transformers
version: a new commit, other weights or another transformers give other
cache entries. Supported: models whose ``AutoModel`` returns hidden states
``[batch, time, hidden]`` (encoder-only audio transformers), and CLAP
(``model_type`` ``clap``, e.g. ``laion/clap-htsat-unfused``,
``laion/larger_clap_music``: its audio tower through
``ClapModel.get_audio_features``; its Swin stages differ in size, so no
layer numbers). Encoder-decoder models (Whisper) are not. A CLAP window is
at most the extractor's clip length (a longer one would be cropped at
random) and ``is_longer`` is false for every window (the extractor flags one
clip of a batch at random when none is longer: the embeddings would depend
on the batch).

This module imports neither torch nor transformers at import time.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from bench import hookimpl
from bench.encoder import Encoder
from bench.errors import EncoderContractError, PluginError
from bench.options import parse_bool

INSTALL = "pip install 'music-bench[hf]'"

#: short names for the models music papers compare against: alias -> (hub id, needs trust_remote_code)
ALIASES: dict[str, tuple[str, bool]] = {
    "mert-v1-95m": ("m-a-p/MERT-v1-95M", True),
    "mert-v1-330m": ("m-a-p/MERT-v1-330M", True),
    "music2vec-v1": ("m-a-p/music2vec-v1", False),
    "hubert-base": ("facebook/hubert-base-ls960", False),
    "hubert-large": ("facebook/hubert-large-ll60k", False),
    "wav2vec2-base": ("facebook/wav2vec2-base", False),
    "wav2vec2-large": ("facebook/wav2vec2-large-lv60", False),
    "wavlm-base-plus": ("microsoft/wavlm-base-plus", False),
    "data2vec-audio-base": ("facebook/data2vec-audio-base", False),
    "ast-audioset": ("MIT/ast-finetuned-audioset-10-10-0.4593", False),
    "clap-htsat-unfused": ("laion/clap-htsat-unfused", False),
    "clap-music": ("laion/larger_clap_music", False),
}

#: model types that take normalised 16 kHz waveforms (their feature extractor is Wav2Vec2FeatureExtractor)
WAV2VEC_FAMILY = ("wav2vec2", "wav2vec2-conformer", "hubert", "wavlm", "data2vec-audio", "sew", "sew-d",
                  "unispeech", "unispeech-sat")

#: files that define a model folder's embeddings (hashed for a local folder)
MODEL_FILES = (".safetensors", ".bin", ".pt", ".pth", ".json", ".py")

_hash_cache: dict[tuple, str] = {}


def folder_hash(folder: Path) -> str:
    """SHA-256 over the names and bytes of the model files in ``folder`` (weights, configs, code).

    Cached in-process by (name, size, mtime) of every file, so building the
    encoder several times in one run hashes a large model once.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in MODEL_FILES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise PluginError(f"encoder 'hf': {folder} holds no model files ({', '.join(MODEL_FILES)}); "
                          "write it with model.save_pretrained(folder) and feature_extractor.save_pretrained(folder)")
    key = tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if key not in _hash_cache:
        h = hashlib.sha256()
        for p in files:
            h.update(str(p.relative_to(folder)).encode() + b"\0")
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        _hash_cache[key] = h.hexdigest()
    return _hash_cache[key]


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or os.path.isabs(model) or Path(model).expanduser().is_dir()


class HFEncoder(Encoder):
    """A transformers audio model: hidden states of one layer (or their mean), averaged over each window."""

    name = "hf"
    OPTIONS = ("model", "revision", "layer", "seconds", "trust_remote_code", "download")

    def __init__(self, model: str | None = None, revision: str | None = None, layer: Any = None,
                 seconds: float | None = None, trust_remote_code: bool = False, download: bool = False,
                 **unknown: Any) -> None:
        if unknown:
            raise PluginError(f"encoder 'hf': unknown option(s) {sorted(unknown)}; known options: "
                              f"{', '.join(self.OPTIONS)}")
        self.trust_remote_code = parse_bool(trust_remote_code, "trust_remote_code", "encoder 'hf'")
        download = parse_bool(download, "download", "encoder 'hf'")
        if not model:
            raise PluginError("encoder 'hf' needs a model: -O model=ID_OR_FOLDER (a Hugging Face model id, a "
                              f"folder written by save_pretrained, or an alias: {', '.join(ALIASES)})")
        try:
            import transformers
        except ImportError:
            raise PluginError(f"encoder 'hf' needs the transformers library, which is not installed: {INSTALL}"
                              ) from None
        super().__init__()
        folder = self._resolve(str(model), None if revision is None else str(revision), download)
        self.folder = folder
        self.hf_config = self._load(transformers.AutoConfig, folder, "config")
        self.model_type = str(self.hf_config.model_type)
        self.clap = self.model_type == "clap"
        if self.clap:  # its extractor's clip length (max_length_s), read below
            seconds = seconds if seconds is not None else "clip"
        self.seconds = 5.0 if seconds is None else seconds
        if self.hf_config.is_encoder_decoder:
            raise PluginError(f"encoder 'hf': {self.model_id} is an encoder-decoder model ({self.model_type}); "
                              "the hf encoder supports encoder-only audio models (wav2vec2, HuBERT, WavLM, "
                              "data2vec, MERT, AST, ...)")
        self.features, self.features_source = self._feature_extractor(transformers, folder)
        self.module = self._model(transformers, folder)
        self.transformers_version = transformers.__version__
        self.sample_rate = int(self.features.sampling_rate)
        if self.seconds == "clip":
            self.seconds = float(self.features.nb_max_samples) / self.sample_rate
        try:
            self.seconds = float(self.seconds)
        except (TypeError, ValueError):
            raise PluginError(f"encoder 'hf': seconds={seconds!r} is not a number") from None
        if not 0.05 <= self.seconds <= 120:
            raise PluginError(f"encoder 'hf': seconds={seconds} is outside 0.05..120")
        if self.clap:
            longest = self.features.nb_max_samples / self.sample_rate
            if self.seconds > longest:
                raise PluginError(f"encoder 'hf': {self.model_id} (CLAP) embeds clips of at most {longest:g} s "
                                  f"(its feature extractor crops a longer one at random); use -O seconds={longest:g} "
                                  "or less")
        if isinstance(self.features, transformers.ASTFeatureExtractor):
            # AST's extractor cuts (or pads) every input to max_length frames of 10 ms: a longer
            # window would be embedded from its beginning only, silently
            longest = self.features.max_length / 100
            if self.seconds > longest:
                raise PluginError(f"encoder 'hf': {self.model_id} (AST) embeds at most {longest:g} s "
                                  f"({self.features.max_length} frames of 10 ms); use -O seconds={longest:g} or less")
        self.window = int(round(self.seconds * self.sample_rate))
        if self.clap:
            self.layer = self._clap_layer(layer)
            self.n_hidden = 0
            self.dim = int(self.hf_config.projection_dim if self.layer == "projection"
                           else self.hf_config.audio_config.hidden_size)
            return
        self.dim = int(self.hf_config.hidden_size)
        self.n_hidden = int(self.hf_config.num_hidden_layers) + 1  # the embedding output, then each layer
        self.layer = self._layer("mean" if layer is None else layer)
        if self.layer == "all":  # every hidden state, a stack [B, n_hidden, hidden] (bench.layers)
            self.layers = self.n_hidden

    # -- where the weights come from --------------------------------------------------------------
    def _resolve(self, model: str, revision: str | None, download: bool) -> Path:
        """The local folder of ``model``; sets model_id, revision (hub) or files_sha256 (folder)."""
        self.alias_remote_code = False
        if model in ALIASES:
            model, self.alias_remote_code = ALIASES[model]
        if _looks_like_path(model):
            folder = Path(model).expanduser().resolve()
            if not folder.is_dir():
                raise PluginError(f"encoder 'hf': model folder {folder} does not exist")
            if revision is not None:
                raise PluginError(f"encoder 'hf': revision={revision} applies to hub models, not to the folder "
                                  f"{folder}")
            self.model_id, self.revision, self.files_sha256 = str(folder), None, folder_hash(folder)
            return folder
        from huggingface_hub import snapshot_download

        try:
            path = snapshot_download(model, revision=revision, local_files_only=not download,
                                     allow_patterns=[f"*{s}" for s in MODEL_FILES] + ["*.txt", "*.model"])
        except Exception as exc:  # LocalEntryNotFoundError, RepositoryNotFoundError, offline mode, ...
            where = f"{model}" + (f" (revision {revision})" if revision else "")
            hint = (f"Fetch it once with `hf download {model}" + (f" --revision {revision}" if revision else "")
                    + "` (or pass -O download=true), or give a local folder with -O model=PATH."
                    if not download else "Check the model id and revision, and the network.")
            raise PluginError(f"encoder 'hf': model {where} is not in the Hugging Face cache "
                              f"({_hub_cache()}): {type(exc).__name__}: {exc}. {hint}") from None
        folder = Path(path)
        self.model_id, self.revision, self.files_sha256 = model, folder.name, None
        return folder

    def _load(self, auto: Any, folder: Path, what: str) -> Any:
        try:
            return auto.from_pretrained(str(folder), trust_remote_code=self.trust_remote_code)
        except Exception as exc:
            raise self._load_error(exc, folder, what) from None

    def _load_error(self, exc: Exception, folder: Path, what: str) -> PluginError:
        if "trust_remote_code" in str(exc) or (self.alias_remote_code and not self.trust_remote_code):
            return PluginError(
                f"encoder 'hf': {self.model_id} ships its own model code (auto_map in its config.json), "
                "which runs only with -O trust_remote_code=true. Read the code in its repository first: "
                "it runs on your machine.")
        return PluginError(f"encoder 'hf': cannot load the {what} of {self.model_id} from {folder}: "
                           f"{type(exc).__name__}: {exc}")

    def _feature_extractor(self, transformers: Any, folder: Path) -> tuple[Any, str]:
        if (folder / "preprocessor_config.json").is_file():
            return self._load(transformers.AutoFeatureExtractor, folder, "feature extractor"), "model"
        if self.model_type in WAV2VEC_FAMILY:
            # the extractor these models were trained with: 16 kHz, zero mean / unit variance per window
            fe = transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                                       do_normalize=True, return_attention_mask=False)
            return fe, "wav2vec2-default"
        raise PluginError(f"encoder 'hf': {self.model_id} has no preprocessor_config.json (its feature extractor) "
                          f"and its model type {self.model_type!r} has no standard one; save the extractor next to "
                          "the model (feature_extractor.save_pretrained(folder))")

    def _model(self, transformers: Any, folder: Path) -> Any:
        import torch
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            # weights missing from a checkpoint are initialised at random: seeded, so the same
            # model gives the same encoder (and weights hash, and cache key) in every run
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model, info = transformers.AutoModel.from_pretrained(
                    str(folder), trust_remote_code=self.trust_remote_code, dtype=torch.float32,
                    output_loading_info=True)
        except Exception as exc:
            raise self._load_error(exc, folder, "model") from None
        finally:
            hf_logging.set_verbosity(verbosity)
            hf_logging.enable_progress_bar()
        missing = list(info.get("missing_keys") or [])
        if missing:
            print(f"warning: encoder 'hf': {len(missing)} weight(s) of {self.model_id} are not in its checkpoint "
                  f"and were initialised at random (seeded), e.g. {missing[:3]}", file=sys.stderr)
        return model.eval()

    def _layer(self, layer: Any) -> int | str:
        if isinstance(layer, str) and layer.strip().lower() in ("mean", "avg", "average"):
            return "mean"
        if isinstance(layer, str) and layer.strip().lower() == "all":
            return "all"
        try:
            n = int(layer)
        except (TypeError, ValueError):
            raise PluginError(f"encoder 'hf': layer={layer!r}: give a layer number (0..{self.n_hidden - 1}, "
                              "negative from the last), 'mean' or 'all' (every layer, chosen on validation)"
                              ) from None
        idx = n + self.n_hidden if n < 0 else n
        if not 0 <= idx < self.n_hidden:
            raise PluginError(f"encoder 'hf': layer={layer} is outside the {self.n_hidden} hidden states of "
                              f"{self.model_id} (0 = input embedding .. {self.n_hidden - 1} = last layer, or "
                              "negative from the last, or 'mean', or 'all')")
        return idx

    def _clap_layer(self, layer: Any) -> str:
        value = "projection" if layer is None else str(layer).strip().lower()
        if value not in ("projection", "pooled"):
            raise PluginError(f"encoder 'hf': layer={layer!r} does not apply to {self.model_id} (CLAP): its audio "
                              "tower's stages differ in size, so there is no stack of layers; give "
                              "layer=projection (the default: the joint audio-text embedding) or layer=pooled "
                              "(the audio tower's pooled output)")
        return value

    # -- the contract ---------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "window": self.window,
            "dim": self.dim,
            "model": self.model_id,
            "revision": self.revision,
            "files_sha256": self.files_sha256,
            "layer": self.layer,
            **({"layers": self.layers} if self.layers > 1 else {}),
            "seconds": self.seconds,
            "model_type": self.model_type,
            "features": self.features_source,
            "trust_remote_code": self.trust_remote_code,
            "transformers": self.transformers_version,
        }

    @classmethod
    def options_from_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The options that rebuild the encoder of ``config()`` (a hub model at its resolved commit)."""
        return {k: config[k] for k in ("model", "revision", "layer", "seconds", "trust_remote_code") if k in config}

    def embed(self, waveforms):
        """``[B, window]`` -> ``[B, hidden]``: the feature extractor, the model, one layer (or the mean), time mean;
        ``[B, layers, hidden]`` with ``layer=all``; CLAP: ``[B, projection_dim]`` (or the pooled ``[B, hidden]``)."""
        import torch

        batch = [row for row in waveforms.detach().float().cpu().numpy()]
        if self.clap:
            return self._embed_clap(batch)
        inputs = self.features(batch, sampling_rate=self.sample_rate, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        out = self.module(**inputs, output_hidden_states=True)
        states = out.hidden_states
        if states is None or len(states) != self.n_hidden or states[0].dim() != 3:
            shape = None if states is None else [tuple(s.shape) for s in states[:2]]
            raise EncoderContractError(
                f"encoder 'hf': {self.model_id} ({self.model_type}) returned hidden states {shape} (expected "
                f"{self.n_hidden} of [batch, time, hidden]); this model type is not supported")
        if self.layer == "all":
            return torch.stack([h.mean(dim=1) for h in states], dim=1).float()
        h = torch.stack(states).mean(dim=0) if self.layer == "mean" else states[self.layer]
        return h.mean(dim=1).float()

    def _embed_clap(self, batch: list[Any]):
        """CLAP's audio tower on windows no longer than its clip: ``get_audio_features`` (L2-normalised, as CLAP
        compares audio with text) or the tower's pooled output."""
        import numpy as np
        import torch

        state = np.random.get_state()  # the extractor draws one is_longer flag at random (overridden below)
        try:
            inputs = self.features(batch, sampling_rate=self.sample_rate, return_tensors="pt")
        finally:
            np.random.set_state(state)
        features = inputs["input_features"].to(self.device)
        # no window is longer than the clip (checked in __init__): no fusion of crops, whatever the batch
        is_longer = torch.zeros(len(batch), 1, dtype=torch.bool, device=self.device)
        if self.layer == "pooled":
            return self.module.audio_model(input_features=features, is_longer=is_longer).pooler_output.float()
        # the projection, L2-normalised (transformers >= 5 returns it as pooler_output)
        return self.module.get_audio_features(input_features=features, is_longer=is_longer).pooler_output.float()


def _hub_cache() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover
        return "HF_HUB_CACHE"


@hookimpl
def register_encoders(register):
    register("hf", HFEncoder, description="Hugging Face transformers audio model, CLAP's audio tower too "
             f"(-O model=ID|FOLDER|alias, -O layer=N|mean|all; needs {INSTALL})")
