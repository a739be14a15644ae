"""What the C audio decoders print straight to file descriptor 2, captured per file.

libmpg123 (inside libsndfile) writes notes and errors on a damaged MP3 with
``fprintf(stderr, ...)``: ``Note: Illegal Audio-MPEG-Header ...``,
``[src/libmpg123/parse.c:...] error: Giving up resync ...``. Python's
``sys.stderr`` never sees them, so they landed in the middle of progress bars
and leaderboards, unattributed and uncounted. :func:`capture` runs one decode
with fd 2 pointed at a private file and returns the lines, so the extract
stage can report them as its own counted lines naming the file.

Thread safety: decoding runs in a thread pool, and a file descriptor is
process-wide, so pointing fd 2 elsewhere from one thread would also catch
(and misattribute) what another thread's decode prints. On Linux each worker
thread first gives itself a private file-descriptor table
(``unshare(CLONE_FILES)``, no privilege needed): its fd 2 is then its own, and
decodes keep running in parallel. Where that is not possible (another OS, a
sandbox that forbids it, the main thread, whose table the rest of the process
shares), captures are serialised by a lock and fd 2 is redirected for the
whole process only while one decode runs. Either way every line belongs to
the file whose decode printed it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

CLONE_FILES = 0x400  # linux/sched.h
_local = threading.local()
_lock = threading.Lock()
#: "[src/libmpg123/parse.c:wetwork():1349] error: ..." -> "error: ..."
_SOURCE = re.compile(r"^\[[^\]]*\.c:[^\]]*\]\s*")


def _private_table() -> bool:
    """True when this thread has (or now got) a file-descriptor table of its own."""
    state = getattr(_local, "private", None)
    if state is None:
        state = False
        if sys.platform.startswith("linux") and threading.current_thread() is not threading.main_thread():
            try:
                import ctypes

                state = ctypes.CDLL(None, use_errno=True).unshare(CLONE_FILES) == 0
            except (OSError, AttributeError):
                state = False
        _local.private = state
    return state


def _sink() -> int:
    """This thread's capture file (a raw descriptor: never closed by the garbage collector in another thread)."""
    fd = getattr(_local, "sink", None)
    if fd is None:
        fd, path = tempfile.mkstemp(prefix="bench-decoder-")
        os.unlink(path)
        _local.sink = fd
    return fd


@contextmanager
def _redirected() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = _sink()
    os.lseek(sink, 0, os.SEEK_SET)
    os.ftruncate(sink, 0)
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(sink, 2)
    try:
        yield lines
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        size = os.lseek(sink, 0, os.SEEK_END)
        if size:
            os.lseek(sink, 0, os.SEEK_SET)
            text = os.read(sink, min(size, 1 << 16)).decode("utf-8", "replace")
            lines.extend(clean(text))


@contextmanager
def capture() -> Iterator[list[str]]:
    """Collect what the C libraries write to fd 2 inside the block (the list is filled when it ends)."""
    if _private_table():
        with _redirected() as lines:
            yield lines
        return
    with _lock, _redirected() as lines:
        yield lines


def clean(text: str) -> list[str]:
    """The non-empty lines of ``text``, without libmpg123's source-location prefix."""
    return [_SOURCE.sub("", line).strip() for line in text.splitlines() if line.strip()]


def summary(lines: list[str], limit: int = 200) -> str:
    """One line for a report: the decoder's lines joined, cut at ``limit`` characters."""
    text = " | ".join(lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def report_kept(task: str, split: str, warned: list[dict]) -> None:
    """Counted lines for the files of a split kept although the decoder printed warnings."""
    if warned:
        print(f"[{task}] {len(warned)} file(s) in {split} decoded with warnings from the decoder (kept):",
              file=sys.stderr, flush=True)
        for w in warned[:5]:
            print(f"  {w['path']}: {summary(w['messages'])}", file=sys.stderr, flush=True)
        if len(warned) > 5:
            print(f"  ... and {len(warned) - 5} more (listed in the records)", file=sys.stderr, flush=True)
