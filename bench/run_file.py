"""``run_config.json``: the resolved settings of a ``bench run``, written in its --out and read back by ``--config``.

What is saved is what the run resolved, not what was typed: the encoder and
task names (``all`` expanded), the data roots (the configured or environment
root included), the device picked, seeds, probe grid, protocol, limit and the
``-O`` options, plus the command line for people. Rerunning it on another
machine uses the same settings; the data under the roots may still differ
(the records' data fingerprints say so).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.config import DataRoots
from bench.errors import BenchError
from bench.settings import EvalSettings, RunConfig

NAME = "run_config.json"
FORMAT = 1
_SETTINGS = ("device", "seeds", "batch_size", "probe_grid", "cache", "protocol", "limit", "log_predictions")


def to_dict(config: RunConfig) -> dict[str, Any]:
    s = config.settings
    return {
        "format": FORMAT,
        "command": " ".join(sys.argv),
        "encoders": list(config.encoders),
        "tasks": list(config.tasks),
        "checkpoint": config.checkpoint,
        "encoder_options": config.encoder_options,
        "variants": config.variants,
        "pretrain_seeds": list(config.pretrain_seeds),
        "out": str(s.out),
        "data_roots": asdict(s.data_roots),
        **{k: list(v) if k == "seeds" else v for k in _SETTINGS for v in [getattr(s, k)]},
        "official_batchnorm": s.official_batchnorm,
    }


def save(config: RunConfig) -> Path:
    """Write ``run_config.json`` in the run's output folder (atomically); its path."""
    from bench.store import atomic_write

    path = config.settings.out / NAME
    atomic_write(path, json.dumps(to_dict(config), indent=2, default=str) + "\n")
    return path


def load(path: Path, *, out: Path | None = None, progress: bool = False) -> RunConfig:
    """The :class:`RunConfig` saved in ``path`` (``out``: another output folder); a bad file is a BenchError."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"--config {path}: not a readable JSON file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BenchError(f"--config {path}: not a run_config.json of this bench (format {FORMAT}); give the "
                         f"{NAME} a `bench run` wrote in its --out folder")
    try:
        roots = DataRoots(**doc["data_roots"])
        fields: dict[str, Any] = {k: tuple(doc[k]) if k == "seeds" else doc[k] for k in _SETTINGS}
        fields["official_batchnorm"] = bool(doc.get("official_batchnorm", False))  # absent before it existed
        settings = EvalSettings(out=Path(out or doc["out"]), data_roots=roots, progress=progress, **fields)
        return RunConfig(encoders=list(doc["encoders"]), tasks=list(doc["tasks"]), settings=settings,
                         checkpoint=doc["checkpoint"], encoder_options=dict(doc["encoder_options"]),
                         variants=dict(doc["variants"]),
                         pretrain_seeds=tuple(int(x) for x in doc.get("pretrain_seeds") or ()))
    except (KeyError, TypeError) as exc:
        raise BenchError(f"--config {path}: missing or malformed field {exc}; write it again with `bench run`") from None
