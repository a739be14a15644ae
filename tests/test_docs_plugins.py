"""docs/plugins.md runs as written: its python blocks execute in order (the conformance test block is
run against the guide's own encoder and task), toml blocks parse, `bench` command lines parse."""

import argparse
import re
import shlex
import tomllib
import types


from conftest import REPO

DOC = REPO / "docs" / "plugins.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks(lang: str, tag: str = "") -> list[tuple[int, str]]:
    text = DOC.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(3)) for m in FENCE.finditer(text)
            if m.group(1) == lang and m.group(2).strip() == tag]


def run_python_blocks(fresh_plugins, extra_tag: str = "") -> dict:
    """Exec the plain python blocks (then those tagged ``extra_tag``) in one namespace, register the guide's
    hooks in-process, and run its conformance test function for every check, as pytest would."""
    from bench.testing import ENCODER_CHECKS, TASK_CHECKS, check_encoder, check_task

    ns: dict = {"__name__": "docs_plugins_guide"}
    tests = []
    for line, code in blocks("python") + (blocks("python", extra_tag) if extra_tag else []):
        exec(compile(code, f"{DOC}:{line}", "exec"), ns)
        tests += [(name, fn) for name, fn in list(ns.items()) if name.startswith("test_") and
                  (name, fn) not in tests]
        if "register_tasks" in ns and "register_encoders" in ns and not fresh_plugins.pm.has_plugin("guide"):
            guide = types.ModuleType("docs_plugins_guide")
            guide.register_encoders, guide.register_tasks = ns["register_encoders"], ns["register_tasks"]
            fresh_plugins.load_plugins()
            fresh_plugins.pm.register(guide, name="guide")
            fresh_plugins.invalidate()
    assert tests, "the guide's pytest block was not found"
    for _, fn in tests:
        for mark in fn.pytestmark:
            kind = {"bench_encoder": "encoder", "bench_task": "task"}[mark.name]
            report = (check_encoder if kind == "encoder" else check_task)(mark.args[0], mark.kwargs)
            for name in (ENCODER_CHECKS if kind == "encoder" else TASK_CHECKS):
                check = report.get(name)
                if check.status != "skip":
                    fn(check)
    return ns


def test_python_blocks_run(fresh_plugins):
    ns = run_python_blocks(fresh_plugins)
    assert {"SpectrumEncoder", "ToneHeight", "report"} <= set(ns)
    assert "spectrum" in fresh_plugins.encoders().names() and "tone_height" in fresh_plugins.tasks().names()


def test_trainable_block_runs(fresh_plugins):
    import math

    ns = run_python_blocks(fresh_plugins, extra_tag="trainable")
    result = ns["result"]  # the guide's pretraining ran its two steps to a finite loss
    assert result.steps == 2 and math.isfinite(result.final_loss)
    assert isinstance(ns["encoder"], ns["TrainableEncoder"]) and ns["encoder"].name == "spectrum_ssl"


def test_every_block_is_run_or_checked():
    text = DOC.read_text()
    kinds = {(m.group(1), m.group(2).strip()) for m in FENCE.finditer(text)}
    assert kinds <= {("python", ""), ("python", "trainable"), ("toml", ""), ("bash", "")}, kinds


def test_toml_blocks_parse():
    for line, code in blocks("toml"):
        assert tomllib.loads(code), f"docs/plugins.md:{line}"


def test_bench_command_lines_parse():
    from bench.cli import build_parser

    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "plugin" in verbs.choices
    n = 0
    for line, code in blocks("bash"):
        for cmd in code.splitlines():
            argv = shlex.split(cmd, comments=True)
            if argv[:1] == ["bench"]:
                parser.parse_args(argv[1:])  # SystemExit (a test error) on a bad command line
                n += 1
    assert n >= 8
