"""An exclusive lock on a file, so that two processes sharing a cache build one thing once."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(lock_path: Path, waiting: str = "") -> Iterator[None]:
    """Hold an exclusive POSIX ``flock`` on ``lock_path`` for the ``with`` block.

    ``waiting``: printed to stderr when another process holds the lock. No lock
    where ``fcntl`` is missing (Windows), nor inside a multi-process launch
    (``WORLD_SIZE`` > 1), whose ranks must all enter the work together and are
    ordered by the launch itself.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, file=sys.stderr)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
