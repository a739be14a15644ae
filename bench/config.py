"""Where things live: cache folder, data roots, the optional config file.

Precedence for the data root of a task: a per-task path given on the command
line (``--data-root TASK=DIR``), a general ``--data-root DIR``, then the
environment (``BENCH_DATA_ROOT``), then ``data_root`` in the config file
(``$BENCH_CONFIG`` or ``<user config dir>/bench/config.toml``), and with none
of those the built-in demo data, generated once into the cache folder.

The cache folder is ``BENCH_CACHE_DIR`` or the user's cache directory
(``~/.cache/bench`` on Linux): :func:`bench.store.cache_dir`, also named here.

The demo audio is rendered with a SoundFont: the General MIDI TimGM6mb that
the ``pretty_midi`` wheel ships, or the ``.sf2`` file named by
``BENCH_DEMO_SOUNDFONT`` or ``demo_soundfont`` in the config file (another
SoundFont gives other audio, so it gets its own demo folder).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.store import cache_dir, file_digests  # noqa: F401 - cache_dir: bench.config's public name for it

#: bump when the demo generators change what they write (old demo folders are then not reused)
DEMO_VERSION = "3"
#: the demo sizes, smallest first: tiny (tests), small (the main job), medium (``bench reproduce --scale demo``)
DEMO_SIZES = ("tiny", "small", "medium")


def config_file() -> Path:
    env = os.environ.get("BENCH_CONFIG")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("bench", appauthor=False)) / "config.toml"


def read_config() -> dict[str, Any]:
    path = config_file()
    if not path.is_file():
        return {}
    import tomllib

    try:
        return tomllib.loads(path.read_text())
    except Exception as exc:
        raise BenchError(f"config file {path} is not valid TOML: {exc}") from exc


@dataclass
class DataRoots:
    """Resolves the data root of each task (real data, or the generated demo)."""

    general: str | None = None
    per_task: dict[str, str] = field(default_factory=dict)
    demo_size: str = "small"
    demo_seed: int = 0

    @classmethod
    def from_args(cls, values: list[str] | None, demo_size: str = "small") -> "DataRoots":
        """Parse ``--data-root`` values: ``DIR`` or ``TASK=DIR`` (repeatable)."""
        roots = cls(demo_size=demo_size)
        for value in values or []:
            name, sep, path = value.partition("=")
            if sep and name and os.path.sep not in name:
                roots.per_task[name] = path
            else:
                roots.general = value
        if roots.general is None:
            roots.general = os.environ.get("BENCH_DATA_ROOT") or None
        if roots.general is None:
            cfg = read_config()
            roots.general = cfg.get("data_root")
            for name, path in (cfg.get("tasks") or {}).items():
                if isinstance(path, dict) and "data_root" in path:
                    roots.per_task.setdefault(name, path["data_root"])
        return roots

    def check_tasks(self, known: list[str]) -> None:
        """Refuse a per-task root (``--data-root TASK=DIR``) whose TASK is no registered task."""
        import difflib

        for name in self.per_task:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise BenchError(f"--data-root {name}=...: {name!r} is not a task.{hint} Tasks: {', '.join(known)}. "
                                 "(A folder path containing '=' must start with ./ or /.)")

    def is_demo(self, task_name: str) -> bool:
        """True when no data root is configured for the task: its demo data is generated into the cache."""
        return task_name not in self.per_task and not self.general

    def demo_data(self, task: Any, root: Path) -> bool:
        """True when ``task``'s data under ``root`` is demo data: generated into the cache, or a folder
        given with ``--data-root`` that holds the demo's ``demo_metadata.json`` (as `bench data demo`
        suggests pointing at). Records, banners, `bench compare` and reference rows follow from it."""
        return self.is_demo(task.name) or has_demo_metadata(task, root)

    def root(self, task: Any) -> Path:
        """The data root of ``task`` (a Task instance); builds the demo data if needed."""
        if task.name in self.per_task:
            return Path(self.per_task[task.name]).expanduser()
        if self.general:
            return Path(self.general).expanduser()
        return ensure_demo(task, size=self.demo_size, seed=self.demo_seed)


#: the file every generated demo dataset folder holds (tasks/render.py writes it)
DEMO_METADATA = "demo_metadata.json"


def has_demo_metadata(task: Any, root: Path) -> bool:
    """Whether a dataset folder of ``task`` under ``root`` (or ``root`` itself) holds :data:`DEMO_METADATA`."""
    root = Path(root)
    folders = [root, *(root / d for d in task.dataset_dirs)]
    return any((f / DEMO_METADATA).is_file() for f in folders)


def demo_soundfont() -> Path | None:
    """The SoundFont the demo is rendered with, if the user chose one; None means the built-in TimGM6mb.

    ``BENCH_DEMO_SOUNDFONT`` first, then ``demo_soundfont`` in the config file.
    """
    value = os.environ.get("BENCH_DEMO_SOUNDFONT")
    where = "BENCH_DEMO_SOUNDFONT"
    if not value:
        value = read_config().get("demo_soundfont")
        where = f"demo_soundfont in {config_file()}"
    if not value:
        return None
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise BenchError(f"demo SoundFont {path} (from {where}) not found: point it at an .sf2 file, "
                         "or unset it to render the demo with the built-in TimGM6mb")
    return path


def soundfont_digest(path: Path) -> str:
    """SHA-256 of a SoundFont file (through the one file-identity memo: demo_root is called often)."""
    return file_digests().digest(path)


def check_demo_size(size: str) -> str:
    """``size`` if it is one of :data:`DEMO_SIZES`, else a BenchError that lists them."""
    if size not in DEMO_SIZES:
        raise BenchError(f"unknown demo size {size!r}: choose one of {', '.join(DEMO_SIZES)}")
    return size


def demo_root(size: str = "small", seed: int = 0) -> Path:
    """The cache folder of the demo data of one size and seed (and SoundFont, when not the built-in one)."""
    name = f"v{DEMO_VERSION}-{size}-seed{seed}"
    soundfont = demo_soundfont()
    if soundfont is not None:
        name += f"-sf{soundfont_digest(soundfont)[:12]}"
    return cache_dir() / "demo" / name


def ensure_demo(task: Any, size: str = "small", seed: int = 0, quiet: bool = False) -> Path:
    """Build the demo dataset of ``task`` once (atomically) and return its data root.

    Processes that share the cache build each task once (a lock per task: a second one waits, then finds it
    built) and may build different tasks side by side (tasks that write the same dataset folder, such as the
    two NSynth tasks, move it in one at a time, with the same bytes).
    """
    from bench.filelock import exclusive

    root = demo_root(check_demo_size(size), seed)
    marker = root / f".{task.name}.done"
    if marker.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / f".{task.name}.lock",
                   waiting=f"waiting for another process building the demo data of {task.name} in {root} ..."):
        if marker.exists():
            return root
        # Build in a private folder, then move the dataset folders in: an
        # interrupted build leaves nothing that looks complete.
        tmp = root / f".building-{task.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if not quiet:
            print(f"Building demo data for {task.name} ({size}) in {root} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            task.make_demo(tmp, size=size, seed=seed)
            with exclusive(root / ".move.lock"):
                for child in tmp.iterdir():
                    dest = root / child.name
                    if dest.exists():
                        shutil.rmtree(dest)
                    child.replace(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        marker.write_text(f"built in {time.perf_counter() - t0:.1f}s\n")
    if not quiet:
        print(f"  {task.name} done in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    return root
