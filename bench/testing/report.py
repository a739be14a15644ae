"""The conformance kit's checks and reports: names, statuses, messages with the fix."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from bench.errors import BenchError

PASS, FAIL, SKIP, INFO = "pass", "fail", "skip", "info"

#: the encoder checks, in the order they run
ENCODER_CHECKS = (
    "create", "attributes", "to_eval", "embed_shape", "finite", "deterministic", "batch_invariance",
    "config_json", "config_stable", "checkpoint_roundtrip", "options_from_config", "import_without_torch",
    "speed",
)
#: the task checks, in the order they run
TASK_CHECKS = ("create", "import_without_torch", "demo", "loader", "splits_disjoint", "labels", "metrics")

#: modules a plugin module must not import when ``bench list`` loads it (seconds of start-up each)
HEAVY_MODULES = ("torch", "numpy", "transformers", "tensorflow", "jax")

#: batch sizes ``embed`` is called with (1 and odd sizes catch squeeze() and fixed-batch reshapes)
BATCH_SIZES = (1, 2, 5)


@dataclass
class Check:
    """The outcome of one named check: pass, fail, skip or info (measured, not judged)."""

    name: str
    status: str
    message: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def format(self) -> str:
        text = f"{self.status.upper():<4}  {self.name:<21} {self.message}"
        if self.status == FAIL and self.fix:
            text += "\n" + " " * 28 + "fix: " + self.fix
        return text

    def assert_ok(self) -> None:
        """Raise :class:`ConformanceError` when this check failed."""
        if self.status == FAIL:
            raise ConformanceError(self.format())


class ConformanceError(AssertionError):
    """A plugin failed a conformance check (an AssertionError, so pytest shows it as a failure)."""


@dataclass
class Report:
    """Every check of one encoder or task."""

    kind: str
    subject: str
    checks: list[Check] = field(default_factory=list)
    source: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def build_error(self) -> BenchError | None:
        """The error that kept the encoder or task from being built (a bad option, a missing dependency)."""
        for c in self.checks:
            if c.name == "create" and isinstance(c.data.get("error"), BenchError):
                return c.data["error"]
        return None

    def get(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r} in the report of {self.kind} {self.subject!r}")

    def format(self) -> str:
        head = f"{self.kind} {self.subject!r}" + (f" ({self.source})" if self.source else "")
        lines = [head] + ["  " + c.format().replace("\n", "\n  ") for c in self.checks]
        counts = {s: sum(c.status == s for c in self.checks) for s in (PASS, FAIL, SKIP, INFO)}
        summary = ", ".join(f"{n} {word}" for word, n in
                            (("passed", counts[PASS]), ("failed", counts[FAIL]), ("skipped", counts[SKIP]))
                            if n or word != "skipped")
        lines.append(f"  -> {self.kind} {self.subject!r}: {summary} ({self.seconds:.1f}s)")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise :class:`ConformanceError` listing every failed check, with its fix."""
        if not self.ok:
            failed = "\n".join("  " + c.format().replace("\n", "\n  ") for c in self.failures)
            raise ConformanceError(f"{self.kind} {self.subject!r} failed {len(self.failures)} conformance "
                                   f"check(s):\n{failed}")


class _Skip(Exception):
    """Raised inside a check to mark it skipped with a reason."""


class _Run:
    """Runs named checks in order; an exception inside a check is that check's failure."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def __call__(self, name: str, fn: Callable[[], Check | str], needs: tuple[str, ...] = ()) -> Check:
        blocked = [n for n in needs if not self._passed(n)]
        if blocked:
            check = Check(name, SKIP, f"not run: check {blocked[0]!r} did not pass")
        else:
            try:
                out = fn()
                check = out if isinstance(out, Check) else Check(name, PASS, out if isinstance(out, str) else "")
            except _Skip as exc:
                check = Check(name, SKIP, str(exc))
            except _Fail as exc:
                check = Check(name, FAIL, exc.message, exc.fix)
            except BenchError as exc:  # bad options, a missing dependency: the message says what to do
                check = Check(name, FAIL, str(exc), "see the message: an option or an installation to fix",
                              data={"error": exc})
            except Exception as exc:  # a check that raised: the plugin's code did, say where
                check = Check(name, FAIL, f"raised {type(exc).__name__}: {exc} ({_where(exc)})",
                              "fix the code at that line: the harness calls it the same way, mid-run")
        check.name = name
        self.report.checks.append(check)
        return check

    def _passed(self, name: str) -> bool:
        return any(c.name == name and c.status in (PASS, INFO) for c in self.report.checks)


class _Fail(Exception):
    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message, self.fix = message, fix


def _where(exc: BaseException) -> str:
    """The innermost frame of the traceback outside torch and this module: usually the plugin's line."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "no traceback"
    own = [f for f in frames if f.filename != __file__ and f"{os.sep}torch{os.sep}" not in f.filename]
    f = (own or frames)[-1]
    return f"{f.filename}:{f.lineno} in {f.name}"


# -- what is being checked --------------------------------------------------------------------------


@dataclass
class _Subject:
    label: str
    factory: Callable[..., Any]
    options: dict[str, Any]
    module: str | None
    source: str
    instance: Any = None


def _subject(kind: str, target: Any, options: dict[str, Any], module: str | None) -> _Subject:
    """Resolve a registered name, a class/factory or an instance into something the checks can build."""
    from bench import plugins

    if isinstance(target, str):
        registry = plugins.encoders() if kind == "encoder" else plugins.tasks()
        entry = registry.get(target)  # UnknownNameError (exit 2 in the CLI) names the close matches
        mod = module or (entry.plugin.module.partition(":")[0] if entry.plugin.distribution else None)
        return _Subject(target, entry.create, options, mod, entry.plugin.describe())
    if isinstance(target, type) or callable(target) and not _is_instance(kind, target):
        label = getattr(target, "name", "") or getattr(target, "__name__", repr(target))
        return _Subject(str(label), target, options, module, f"{getattr(target, '__module__', '?')}."
                        f"{getattr(target, '__qualname__', label)}")
    return _Subject(str(target.name or type(target).__name__), type(target), options, module,
                    f"instance of {type(target).__module__}.{type(target).__qualname__}", instance=target)


def _is_instance(kind: str, obj: Any) -> bool:
    if kind == "encoder":
        from bench.encoder import Encoder

        return isinstance(obj, Encoder)
    from bench.task import Task

    return isinstance(obj, Task)


# -- encoders ----------------------------------------------------------------------------------------


def _import_without_torch(module: str | None) -> str:
    if not module:
        raise _Skip("no plugin module to import (a class or instance was given; pass module= to check it)")
    returncode, stderr, heavy = _import_probe(module, os.pathsep.join(p for p in sys.path if p))
    if returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise _Fail(f"importing plugin module {module!r} failed: {tail[0]}",
                    "the module named by the entry point must import with only bench installed")
    if heavy:
        raise _Fail(f"importing plugin module {module!r} and running its hooks imports {', '.join(heavy)}",
                    "import heavy libraries inside the encoder/task (its __init__ or methods), or register a lazy "
                    "'module:Class' string: `bench list` and `bench --help` import every plugin module")
    return f"{module} imports and registers without {', '.join(HEAVY_MODULES[:2])}"


@functools.lru_cache(maxsize=None)
def _import_probe(module: str, pythonpath: str) -> tuple[int, str, list[str]]:
    """Import ``module`` in a fresh interpreter and run its hooks; (exit code, stderr, heavy modules loaded).

    Cached per module: the plugins of one module (every encoder of a package) share one subprocess.
    """
    code = (
        "import json, sys, importlib, pluggy\n"
        "from bench import hookspecs\n"
        f"mod = importlib.import_module({module!r})\n"
        "pm = pluggy.PluginManager('bench'); pm.add_hookspecs(hookspecs); pm.register(mod)\n"
        "pm.hook.register_encoders(register=lambda *a, **k: None)\n"
        "pm.hook.register_tasks(register=lambda *a, **k: None)\n"
        f"print(json.dumps([m for m in {list(HEAVY_MODULES)!r} if m in sys.modules]))\n"
    )
    env = {**os.environ, "PYTHONPATH": pythonpath}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    heavy = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else []
    return res.returncode, res.stderr, heavy
