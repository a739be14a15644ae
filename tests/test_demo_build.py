"""Demo data built once per task by processes sharing a cache."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bench.config import demo_root, ensure_demo


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
