import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Each test gets its own cache folder and no inherited data root or config."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))
    monkeypatch.setenv("BENCH_CONFIG", str(cache / "no-config.toml"))
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    monkeypatch.delenv("BENCH_STRICT_PLUGINS", raising=False)
    yield


@pytest.fixture(scope="session")
def nsynth_tiny(tmp_path_factory):
    """A tiny demo NSynth under a data root, built once per session."""
    from bench_tasks.nsynth import NSynthPitch

    root = tmp_path_factory.mktemp("nsynth-root")
    NSynthPitch().make_demo(root, size="tiny", seed=0)
    return root


@pytest.fixture
def fresh_plugins():
    """Reset the plugin manager before and after a test that registers plugins in-process."""
    from bench import plugins

    plugins.reset()
    yield plugins
    plugins.reset()


def write_wav(path: Path, seconds: float = 1.0, sr: int = 16000, freq: float = 440.0) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
    return path


def bench_cmd(*args, env=None, cwd=None):
    """Run the bench CLI in a subprocess and return the CompletedProcess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=600)
