"""Demo data built once per task by processes sharing a cache, and side by side across tasks."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import plugins
from bench.config import DataRoots, demo_root, ensure_demo
from bench.experiments.reproduce import _build_demo_data


class SlowTask:
    """A task whose demo build takes a moment and counts how often it ran."""

    name = "slowdemo"

    def __init__(self) -> None:
        self.builds = 0

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        self.builds += 1
        time.sleep(0.3)
        (data_root / "slowdemo").mkdir()
        (data_root / "slowdemo" / "data.txt").write_text("built\n")


def test_two_builders_of_one_task_build_it_once():
    task = SlowTask()
    roots = []
    threads = [threading.Thread(target=lambda: roots.append(ensure_demo(task, size="tiny", quiet=True)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert task.builds == 1
    assert roots[0] == roots[1] == demo_root("tiny")
    assert (roots[0] / "slowdemo" / "data.txt").read_text() == "built\n"
    assert not list(roots[0].glob(".building-*"))


@pytest.mark.slow
def test_tasks_that_share_a_dataset_folder_build_side_by_side_in_workers():
    names = ("nsynth_pitch", "nsynth_instrument", "gtzan")
    config = SimpleNamespace(settings=SimpleNamespace(data_roots=DataRoots(demo_size="tiny")))
    _build_demo_data(config, names, workers=2)  # type: ignore[arg-type]
    root = demo_root("tiny")
    for name in names:
        assert (root / f".{name}.done").exists(), name
    assert not list(root.glob(".building-*"))
    # the shared nsynth folder is whole: both tasks read their splits from it
    for name in ("nsynth_pitch", "nsynth_instrument"):
        task = plugins.get_task(name)
        assert task.classes(root), name
        assert all(len(task.items(s, root)) > 0 for s in ("train", "valid", "test")), name
