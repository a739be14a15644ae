"""Tiny randomly initialised transformers audio models, written to a folder (nothing downloads).

Each family is built from its config class with a few thousand weights (CLAP: both towers),
saved with ``save_pretrained`` together with the feature extractor its real
checkpoints ship, and loaded back by path by the ``hf`` encoder. ``remote``
is a MERT-like model whose code lives in the folder (``auto_map``), for the
``trust_remote_code`` path.
"""

from __future__ import annotations

from pathlib import Path

#: families the hf encoder is tested with
FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "ast", "clap")

_TRANSFORMER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
# 160x downsampling in two convolutions (the real models: 320x in seven): 100 frames per second
_CONV = dict(conv_dim=(8, 16), conv_stride=(16, 10), conv_kernel=(16, 10), num_conv_pos_embeddings=16,
             num_conv_pos_embedding_groups=2)

# CLAP (HTSAT audio tower, a tiny text tower): 16 mel bins folded into a 64 x 64 image (4 time folds of 256
# frames at 100 per second: clips up to 2.5 s; the extractor's clip is 2 s), two Swin stages of 16 and 32 channels
_CLAP_AUDIO = dict(window_size=4, num_mel_bins=16, spec_size=64, patch_size=4, patch_stride=[4, 4], depths=[1, 1],
                   num_attention_heads=[2, 2], hidden_size=32, patch_embeds_hidden_size=16, enable_fusion=False)
_CLAP_TEXT = dict(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                  max_position_embeddings=40)
CLAP_SECONDS = 2

REMOTE_CONFIG = '''\
from transformers import HubertConfig


class TinyMertConfig(HubertConfig):
    model_type = "tinymert"
'''

REMOTE_MODEL = '''\
from transformers import HubertModel

from .configuration_tinymert import TinyMertConfig


class TinyMertModel(HubertModel):
    config_class = TinyMertConfig
'''


def make_model(family: str, folder: Path, seed: int = 0) -> Path:
    """Write a tiny ``family`` model and its feature extractor to ``folder``; returns ``folder``."""
    import torch
    import transformers as T

    folder = Path(folder)
    classes = {
        "wav2vec2": (T.Wav2Vec2Config, T.Wav2Vec2Model, _CONV),
        "hubert": (T.HubertConfig, T.HubertModel, _CONV),
        "wavlm": (T.WavLMConfig, T.WavLMModel, _CONV),
        "data2vec-audio": (T.Data2VecAudioConfig, T.Data2VecAudioModel, {**_CONV, "num_conv_pos_embeddings": 4}),
        "ast": (T.ASTConfig, T.ASTModel, dict(max_length=128, num_mel_bins=32, frequency_stride=10, time_stride=10)),
        "remote": (T.HubertConfig, T.HubertModel, _CONV),
    }
    torch.manual_seed(seed)
    if family == "clap":
        model = T.ClapModel(T.ClapConfig(text_config=_CLAP_TEXT, audio_config=_CLAP_AUDIO, projection_dim=8)).eval()
        model.save_pretrained(folder)
        T.ClapFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160, fft_window_size=400,
                               frequency_min=100, frequency_max=8000,
                               max_length_s=CLAP_SECONDS, truncation="rand_trunc", padding="repeatpad",
                               ).save_pretrained(folder)
        return folder
    config_cls, model_cls, extra = classes[family]
    model = model_cls(config_cls(**_TRANSFORMER, **extra)).eval()
    model.save_pretrained(folder)
    if family == "ast":
        fe = T.ASTFeatureExtractor(num_mel_bins=32, max_length=128, sampling_rate=16000)
    else:
        fe = T.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=False)
    fe.save_pretrained(folder)
    if family == "remote":
        import json

        (folder / "configuration_tinymert.py").write_text(REMOTE_CONFIG)
        (folder / "modeling_tinymert.py").write_text(REMOTE_MODEL)
        cfg = json.loads((folder / "config.json").read_text())
        cfg["model_type"] = "tinymert"
        cfg["architectures"] = ["TinyMertModel"]
        cfg["auto_map"] = {"AutoConfig": "configuration_tinymert.TinyMertConfig",
                           "AutoModel": "modeling_tinymert.TinyMertModel"}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    return folder


def put_in_hub_cache(folder: Path, cache: Path, repo_id: str, commit: str, ref: str = "main") -> Path:
    """Lay ``folder`` out as the hub cache does (``models--org--name/snapshots/COMMIT``, ``refs/REF``)."""
    import shutil

    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return snapshot
