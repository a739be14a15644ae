"""`bench plugin new`: write a ready-to-install encoder plugin package that passes its own conformance test.

The package (``bench-NAME``) has three parts a plugin needs and nothing else:
``pyproject.toml`` with the ``bench`` entry point, one module with an encoder
(a seeded random projection of a log spectrum: cheap, deterministic, and
honest as a starting point to replace), and ``tests/test_conformance.py``,
the three-line test of :mod:`bench.pytest_plugin`. ``pip install -e
./bench-NAME`` then ``pytest bench-NAME`` passes as written.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.errors import BenchError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "bench-{dist}"
version = "0.1.0"
description = "{name}: an encoder plugin for bench (music representation benchmark)"
requires-python = ">=3.10"
dependencies = ["music-bench>={bench_version}"]

[project.optional-dependencies]
test = ["pytest>=7.4"]

# The whole integration: bench finds the plugin through this entry point.
[project.entry-points.bench]
{name} = "{package}"

[tool.setuptools]
package-dir = {{"" = "src"}}
packages = ["{package}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

MODULE = '''\
"""{name}: an encoder plugin for bench.

Replace the model in ``__init__`` and ``embed`` with yours; keep torch (and
any heavy library) imported inside the class, not at module level, so that
``bench list`` stays fast. ``pytest`` runs bench's conformance checks on it
(tests/test_conformance.py); ``bench plugin check {name}`` prints the same.
"""

from bench import hookimpl
from bench.encoder import Encoder


class {cls}(Encoder):
    name = "{name}"
    sample_rate = 16000  # Hz of the waveforms embed() receives
    window = 16000       # samples per window (1 s)
    dim = 64             # embedding size

    def __init__(self, seed: int = 0, **options):
        super().__init__(seed=seed, **options)  # options go into config(): the cache key and the records
        import torch

        generator = torch.Generator().manual_seed(seed)  # the same options give the same weights
        self.module = torch.nn.Linear(257, self.dim, bias=False)
        with torch.no_grad():
            self.module.weight.copy_(torch.randn(self.dim, 257, generator=generator) / 257**0.5)

    def embed(self, waveforms):
        """``[B, window]`` float32 -> ``[B, dim]``: log spectrum, projected, averaged over time."""
        import torch

        spec = torch.stft(waveforms, n_fft=512, hop_length=256, return_complex=True,
                          window=torch.hann_window(512, device=waveforms.device)).abs()
        frames = torch.log1p(spec).transpose(1, 2)  # [B, time, 257]
        return self.module(frames).mean(dim=1)


@hookimpl
def register_encoders(register):
    register("{name}", {cls}, description="{name} (a new bench encoder plugin)")
'''

TEST = '''\
import pytest


@pytest.mark.bench_encoder("{name}")
def test_bench_conformance(bench_check):
    bench_check.assert_ok()
'''

README = '''\
# bench-{dist}

An encoder plugin for `bench`, made by `bench plugin new {name}`.

```bash
pip install -e '.[test]'          # registers the encoder through the `bench` entry point
bench list                        # shows {name}
pytest                            # bench's conformance checks, one test per check
bench plugin check {name}         # the same checks as a short report
bench run --encoder {name} --tasks all
```

Edit `src/{package}/__init__.py`: the model goes in `__init__` (kept in
`self.module`, so `to()`, `eval()` and checkpoints work), the forward pass in
`embed`. Options given with `bench run -O KEY=VALUE` arrive as keyword
arguments of `__init__`.
'''


def new_plugin(name: str, out: Path | None = None) -> list[Path]:
    """Write the package of encoder plugin ``name`` into ``out`` (default ``./bench-NAME``); the files written.

    ``name`` is the encoder name (lowercase letters, digits, ``_``; a ``-`` is
    read as ``_``). An existing non-empty ``out`` is refused, never overwritten.
    """
    from bench import __version__

    name = name.strip().replace("-", "_")
    if not NAME_RE.match(name):
        raise BenchError(f"plugin name {name!r}: use lowercase letters, digits and _ , starting with a letter "
                         "(e.g. my_encoder)")
    dist = name.replace("_", "-")
    out = Path(out) if out is not None else Path(f"bench-{dist}")
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file; --out names the folder to create for the plugin "
                         f"(e.g. --out ./bench-{name})")
    if out.exists() and any(out.iterdir()):
        raise BenchError(f"{out} exists and is not empty; choose another --out folder")
    package = f"bench_{name}"
    cls = "".join(part.capitalize() for part in name.split("_")) + "Encoder"
    values = {"name": name, "dist": dist, "package": package, "cls": cls, "bench_version": __version__}
    files = {
        out / "pyproject.toml": PYPROJECT,
        out / "README.md": README,
        out / "src" / package / "__init__.py": MODULE,
        out / "tests" / "test_conformance.py": TEST,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    return list(files)
