"""Conformance checks for encoder and task plugins: the plugin author's test kit.

The harness relies on more than the contract's signatures: an embedding whose
shape depends on the batch, dropout left on in eval mode, torch imported when
``bench list`` loads the plugin, a config that is not JSON or changes between
two calls, weights that do not come back from a checkpoint: each of these is
found only mid-run, or never (a silently wrong cache key). This module checks
them up front, on any installed encoder or task or on a class the author is
writing::

    from bench.testing import check_encoder, check_task

    report = check_encoder("my_encoder", options={"seed": 0})
    print(report.format())
    report.assert_ok()          # AssertionError naming every failed check and how to fix it

``bench plugin check NAME...`` prints the same reports; the pytest plugin
(:mod:`bench.pytest_plugin`) turns each check into a test of the plugin's own
suite. Every check has a stable name (:data:`ENCODER_CHECKS`,
:data:`TASK_CHECKS`); a failure says what is wrong and how to fix it. The
embedding speed is measured and reported, never asserted.

Importing this module is cheap (no torch); the checks import it when they run.
"""

from __future__ import annotations

from typing import Any

from bench.testing.encoders import check_encoder, waveforms
from bench.testing.report import (ENCODER_CHECKS, FAIL, INFO, PASS, SKIP, TASK_CHECKS, Check, ConformanceError,
                                  Report)
from bench.testing.tasks import check_task

__all__ = ["ENCODER_CHECKS", "FAIL", "INFO", "PASS", "SKIP", "TASK_CHECKS", "Check", "ConformanceError", "Report",
           "assert_encoder_ok", "assert_task_ok", "check_encoder", "check_task", "options_for", "resolve_names",
           "waveforms"]


# -- the command line's view: names to targets ------------------------------------------------------


def resolve_names(names: list[str]) -> list[tuple[str, str]]:
    """``(kind, name)`` for each encoder, task or plugin (entry-point) name; unknown names raise.

    A plugin name stands for everything it registers (``ssl_encoders`` -> its
    four encoders); a name that is both an encoder and a task is both.
    """
    from bench import plugins
    from bench.errors import UnknownNameError

    encoders, tasks = plugins.encoders(), plugins.tasks()
    out: list[tuple[str, str]] = []
    for name in names:
        found = [("encoder", name)] if name in encoders.entries else []
        found += [("task", name)] if name in tasks.entries else []
        if not found:
            found = [(kind, n) for kind, reg in (("encoder", encoders), ("task", tasks))
                     for n in reg.names() if reg.entries[n].plugin.name == name]
        if not found:
            import difflib

            known = encoders.names() + tasks.names()
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(f"{name!r} is no encoder, task or plugin.{hint} Encoders: "
                                   f"{', '.join(encoders.names())}; tasks: {', '.join(tasks.names())} (`bench list`).")
        out.extend(f for f in found if f not in out)
    return out


def options_for(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of ``name``: unscoped ``KEY`` entries, then ``NAME:KEY`` entries (which win)."""
    out = {k: v for k, v in options.items() if ":" not in k}
    out.update({k.split(":", 1)[1]: v for k, v in options.items() if ":" in k and k.split(":", 1)[0] == name})
    return out


# -- helpers for pytest ------------------------------------------------------------------------------


def assert_encoder_ok(encoder: Any, options: dict[str, Any] | None = None, **kwargs: Any) -> Report:
    """:func:`check_encoder`, then raise :class:`ConformanceError` on any failure; returns the report."""
    report = check_encoder(encoder, options, **kwargs)
    report.assert_ok()
    return report


def assert_task_ok(task: Any, settings: dict[str, Any] | None = None, **kwargs: Any) -> Report:
    """:func:`check_task`, then raise :class:`ConformanceError` on any failure; returns the report."""
    report = check_task(task, settings, **kwargs)
    report.assert_ok()
    return report
