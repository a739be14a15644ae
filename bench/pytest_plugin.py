"""pytest plugin of bench (``pytest11`` entry point): the conformance checks as tests of a plugin's suite.

A plugin author adds, in three lines::

    import pytest

    @pytest.mark.bench_encoder("my_encoder")          # or bench_task("my_task"); options as keywords
    def test_bench_conformance(bench_check):
        bench_check.assert_ok()

The test is parametrised over every check of :mod:`bench.testing`, so a
failure reads ``test_bench_conformance[my_encoder:batch_invariance]`` with
what is wrong and how to fix it. The marker takes a registered name, an
Encoder/Task class or a factory, and the options (``seed=0``) or task
settings as keywords; several markers on one test check several things.
Each encoder or task is checked once per session and the embedding speed
is printed in the terminal summary.

Fixtures: ``bench_check`` (one check, parametrised by the markers),
``bench_conformance`` (``.encoder(target, **options)`` and ``.task(target,
**settings)`` return the cached :class:`bench.testing.Report`).

Loaded in every pytest session where bench is installed, so it stays cheap:
nothing here imports torch, and it does nothing for a test that does not ask
for its fixtures.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

MARKERS = {
    "bench_encoder": "bench_encoder(name_or_class, **options): run bench's encoder conformance checks "
                     "(fixture bench_check)",
    "bench_task": "bench_task(name_or_class, **settings): run bench's task conformance checks (fixture bench_check)",
}


def pytest_configure(config: pytest.Config) -> None:
    for text in MARKERS.values():
        config.addinivalue_line("markers", text)
    config.stash[_SPEEDS] = []


_SPEEDS = pytest.StashKey[list]()


class _Target:
    """One thing to check: kind, target (name, class, factory) and its options; hashable for the cache."""

    def __init__(self, kind: str, target: Any, options: dict[str, Any]) -> None:
        self.kind, self.target, self.options = kind, target, dict(options)
        name = target if isinstance(target, str) else getattr(target, "name", "") or getattr(target, "__name__", "")
        self.label = str(name) or repr(target)
        self.key = (kind, target if isinstance(target, str) else id(target),
                    json.dumps(self.options, sort_keys=True, default=repr))

    def __repr__(self) -> str:
        return f"{self.kind} {self.label}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bench_check" not in metafunc.fixturenames:
        return
    from bench.testing import ENCODER_CHECKS, TASK_CHECKS

    params, ids = [], []
    for marker, kind, checks in (("bench_encoder", "encoder", ENCODER_CHECKS), ("bench_task", "task", TASK_CHECKS)):
        for mark in metafunc.definition.iter_markers(marker):
            if len(mark.args) != 1:
                raise pytest.UsageError(f"@pytest.mark.{marker} takes one encoder/task (a name or a class) and "
                                        f"its options as keywords, got {mark.args!r}")
            target = _Target(kind, mark.args[0], mark.kwargs)
            for check in checks:
                params.append((target, check))
                ids.append(f"{target.label}:{check}")
    if not params:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: the bench_check fixture needs a "
                                "@pytest.mark.bench_encoder(NAME) or @pytest.mark.bench_task(NAME) marker")
    metafunc.parametrize("bench_check", params, ids=ids, indirect=True)


class Conformance:
    """Session cache of conformance reports (each encoder or task is checked once)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory, config: pytest.Config) -> None:
        self._reports: dict[tuple, Any] = {}
        self._tmp = tmp_path_factory
        self._config = config

    def report(self, target: _Target) -> Any:
        if target.key not in self._reports:
            from bench.testing import check_encoder, check_task

            if target.kind == "encoder":
                report = check_encoder(target.target, target.options)
            else:
                report = check_task(target.target, target.options, workdir=self._tmp.mktemp("bench-task"))
            self._reports[target.key] = report
            for c in report.checks:
                if c.name == "speed" and c.status == "info":
                    self._config.stash[_SPEEDS].append(f"{report.kind} {report.subject!r}: {c.message}")
        return self._reports[target.key]

    def encoder(self, target: Any, **options: Any) -> Any:
        """The :class:`bench.testing.Report` of an encoder (a name or a class) built with ``options``."""
        return self.report(_Target("encoder", target, options))

    def task(self, target: Any, **settings: Any) -> Any:
        """The :class:`bench.testing.Report` of a task (a name or a class) built with ``settings``."""
        return self.report(_Target("task", target, settings))


@pytest.fixture(scope="session")
def bench_conformance(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Conformance:
    """Conformance reports of encoders and tasks, computed once per session."""
    return Conformance(tmp_path_factory, pytestconfig)


@pytest.fixture
def bench_check(request: pytest.FixtureRequest, bench_conformance: Conformance) -> Any:
    """One conformance check (a :class:`bench.testing.Check`); skipped checks skip the test."""
    target, name = request.param
    check = bench_conformance.report(target).get(name)
    if check.status == "skip":
        pytest.skip(f"{target}: {check.message}")
    return check


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    speeds = config.stash.get(_SPEEDS, [])
    if speeds:
        terminalreporter.write_sep("-", "bench embedding speed (measured, not asserted)")
        for line in speeds:
            terminalreporter.write_line(line)
