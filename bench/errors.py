"""Errors a user can hit. The CLI prints their message (no traceback) and exits non-zero."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class BenchError(Exception):
    """An error caused by input, configuration or a plugin, with a message that says what to do."""

    exit_code = 2


class PluginError(BenchError):
    """A plugin failed to load, registered something twice, or broke its contract."""


class UnknownNameError(BenchError):
    """An encoder or task name that no plugin registered."""


class DataError(BenchError):
    """A data root or dataset is missing, wrong, or unreadable as a whole."""


class EncoderContractError(PluginError):
    """An encoder returned something the contract does not allow (wrong shape, NaN, ...)."""


#: the most characters of any input (a line of a file, a field, a value) a message or record quotes
QUOTE_LIMIT = 500  # room for a long path, not for a 200 MB line


def shorten(text: object, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out (a 200 MB line stays a line)."""
    s = str(text)
    if len(s) <= limit:
        return s
    return f"{s[:limit]}... [{len(s) - limit:,} more characters]"


def write_error_log(out: Path, what: str, text: str) -> str:
    """Append ``text`` under the header ``what`` to ``out/errors.log``; the words that say where it went.

    Never raises: on a full or read-only disk the error boundary that calls this must still record
    the failure and go on, so the words then say why the traceback was not saved.
    """
    from pathlib import Path

    path = Path(out) / "errors.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(f"--- {what}\n{text}\n")
    except OSError as exc:
        return f"traceback not saved: cannot write {path}: {exc.strerror or exc}"
    return f"traceback in {path}"
