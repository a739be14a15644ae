"""The one device rule of bench: what ``--device`` accepts and what "auto" means.

``auto`` is CUDA when there is a GPU, else Apple's MPS, else the CPU; on a
Linux machine with no GPU device node at all it is the CPU without importing
torch (a warm rerun of a cached run then never imports it).
``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are taken as given once checked: a
GPU asked for where there is none, an index past the last GPU, or any other
word is a :class:`bench.errors.BenchError` (exit 2), never a silent fallback.
"""

from __future__ import annotations

import glob
import os
import re
import sys

from bench.errors import BenchError

SPELLINGS = "auto, cpu, cuda, cuda:N (N = GPU index) or mps"


def gpu_possible() -> bool:
    """False when torch could not see a GPU here, decided without importing torch (2-3 s): on Linux, no
    NVIDIA (``/dev/nvidia0``..., or a loaded driver: ``/proc/driver/nvidia``), ROCm (``/dev/kfd``) or WSL
    (``/dev/dxg``) device node. Elsewhere True."""
    if not sys.platform.startswith("linux"):
        return True
    return (bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/kfd")
            or os.path.exists("/dev/dxg"))


def resolve_device(spec: str | None) -> str:
    """A checked torch device string for ``spec`` (``None`` and ``"auto"`` pick one)."""
    spec = (spec or "auto").strip().lower()
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", spec):
        raise BenchError(f"--device {spec!r} is not a device; use {SPELLINGS}")
    if spec == "cpu" or (spec == "auto" and not gpu_possible()):
        return "cpu"
    import torch

    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else ("mps" if has_mps else "cpu")
    if spec == "mps":
        if not has_mps:
            raise BenchError("--device mps: this torch has no usable MPS backend; use --device cpu or auto")
        return spec
    if not torch.cuda.is_available():
        raise BenchError(f"--device {spec}: torch sees no CUDA GPU (torch {torch.__version__}, "
                         f"CUDA build: {torch.version.cuda or 'no'}); use --device cpu or auto")
    if ":" in spec and int(spec.split(":")[1]) >= torch.cuda.device_count():
        raise BenchError(f"--device {spec}: there are {torch.cuda.device_count()} CUDA GPU(s), indices 0.."
                         f"{torch.cuda.device_count() - 1}")
    return spec
