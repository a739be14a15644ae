"""Results stage: one JSON record per (encoder, task, probe seed), with provenance.

A record holds the metrics and everything needed to trust or reproduce them:
package and plugin versions, the encoder config and weights hash, the task
settings, a fingerprint of the data, what was skipped, the probe config and
timings. Records are written atomically; :func:`read_records` loads a folder of
them and refuses records of another schema version.
"""

from __future__ import annotations

import functools
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from bench.errors import BenchError

SCHEMA_VERSION = 1


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**_versions(), **(extra or {})}


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    """Looked up once per process: every record holds them, and each lookup scans the installed packages."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("music-bench", "torch", "numpy", "scikit-learn", "pandas", "soundfile", "soxr", "mir_eval",
                 "accelerate", "datasets"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_record(rec: dict[str, Any], where: str) -> None:
    """Raise BenchError naming ``where`` when a record lacks what the leaderboard and the gate read.

    A metric may be a number (NaN included: the score was undefined) or null;
    anything else (a string, a list) means the file was edited or damaged.
    """
    fix = "Re-run the benchmark to rewrite it, or move the file out of the results folder."
    for name in ("encoder", "task", "primary_metric"):
        if not isinstance(rec.get(name), str) or not rec[name]:
            what = "lacks" if name not in rec else f"has {rec[name]!r} as"
            raise BenchError(f"{where}: the record {what} '{name}' (a non-empty string is needed). {fix}")
    if not isinstance(rec.get("seed"), int) or isinstance(rec.get("seed"), bool):
        raise BenchError(f"{where}: the record's 'seed' is {rec.get('seed')!r}, not a whole number. {fix}")
    metrics = rec.get("metrics")
    if not isinstance(metrics, dict) or rec["primary_metric"] not in metrics:
        raise BenchError(f"{where}: the record has no metrics object holding its primary metric "
                         f"{rec['primary_metric']!r}. {fix}")
    for name, value in metrics.items():
        if value is not None and not _is_number(value):
            raise BenchError(f"{where}: metric {name!r} is {value!r}, not a number. {fix}")


def record_name(rec: dict[str, Any]) -> str:
    """``<variant>__<task>[__<condition>][__pt<P>]__seed<N>.json``: variants, conditions and pretraining seeds
    (``pretraining.seed``, P) never overwrite each other."""
    import re

    def safe(text: Any) -> str:
        return re.sub(r"[^A-Za-z0-9_.=+,@\[\]-]+", "-", str(text))[:120]

    variant = rec.get("variant") or rec["encoder"]
    condition = rec.get("condition") or "clean"
    middle = "" if condition == "clean" else f"__{safe(condition)}"
    pt = (rec.get("pretraining") or {}).get("seed")
    middle += "" if pt is None else f"__pt{safe(pt)}"
    return f"{safe(variant)}__{safe(rec['task'])}{middle}__seed{rec['seed']}.json"


def write_record(rec: dict[str, Any], folder: Path) -> Path:
    """Write ``rec`` atomically into ``folder``; on a full or read-only disk a BenchError naming the file, and
    no temporary file left behind (store.atomic_write removes it)."""
    from bench.store import atomic_write

    path = folder / record_name(rec)
    try:
        atomic_write(path, json.dumps(rec, indent=2, sort_keys=True, default=_json_default))
    except OSError as exc:
        raise BenchError(f"cannot write the record {path}: {exc.strerror or exc} (is the disk of --out full?)"
                         ) from None
    return path


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def new_record(**fields: Any) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        **fields,
    }


def read_records(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Load every record under the given files or folders (recursively)."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(p.rglob("*.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise BenchError(f"results path {p} does not exist")
    records = []
    for f in files:
        try:
            rec = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BenchError(f"{f}: not a readable JSON record ({exc})") from exc
        if not isinstance(rec, dict) or "schema_version" not in rec or "encoder" not in rec:
            continue  # leaderboard.json and other files that are not records
        if rec["schema_version"] != SCHEMA_VERSION:
            raise BenchError(
                f"{f}: record schema version {rec['schema_version']}, this bench reads version {SCHEMA_VERSION}. "
                "Re-run the benchmark with this version, or read it with the bench version that wrote it."
            )
        check_record(rec, str(f))
        rec["_file"] = str(f)
        records.append(rec)
    return records
