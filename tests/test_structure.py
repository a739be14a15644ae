"""The shape of the code: no import cycles, a core that never imports its plugins, a light --help, short modules."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"bench": REPO / "bench", "bench_plugins": REPO / "plugins", "bench_tasks": REPO / "tasks"}
#: a module of bench/, plugins/ or tasks/ longer than this says why at its top (a line starting with
#: "Long because")
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for pkg, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([pkg, *parts])] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ours that ``name`` imports anywhere in its body (function-level imports included)."""
    out = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def test_no_import_cycles_even_through_function_level_imports():
    mods = _modules()
    graph = {m: _imports(m, p, set(mods)) for m, p in mods.items()}
    # a package __init__ importing its own submodules is how packages re-export, not a cycle
    for m in graph:
        graph[m] = {t for t in graph[m] if not (mods[m].name == "__init__.py" and t.startswith(m + "."))}
    cycles = []
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t] if t in stack else [m, t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_core_never_imports_a_plugin():
    mods = _modules()
    bad = {m: sorted(t for t in _imports(m, p, set(mods)) if not t.startswith("bench."))
           for m, p in mods.items() if m.split(".")[0] == "bench"}
    bad = {m: ts for m, ts in bad.items() if any(t.startswith(("bench_plugins", "bench_tasks")) for t in ts)}
    assert not bad, f"core modules importing plugins: {bad}"


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["run", "--help"], ["pretrain", "--help"], ["robustness", "--help"],
                                  ["sweep", "--help"], ["reproduce", "--help"]])
def test_help_and_list_import_neither_torch_nor_numpy(argv):
    code = (
        "import sys\nfrom bench.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'numpy') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "HEAVY=\n" in out, f"bench {' '.join(argv)} imported {out.split('HEAVY=')[-1].strip()}"


def test_long_modules_say_why():
    """Every package of the project: the core, the built-in plugins and the built-in tasks."""
    long = []
    for path in sorted(p for folder in PACKAGES.values() for p in folder.rglob("*.py")):
        n = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if n > MAX_LINES and "Long because" not in doc:
            long.append(f"{path.relative_to(REPO)} ({n} lines)")
    assert not long, f"modules over {MAX_LINES} lines without a 'Long because' note at the top: {long}"


def test_the_wheel_lists_every_package():
    """``pip install .`` installs exactly the packages pyproject.toml names: a subpackage left out of the
    list (bench.commands was) makes ``bench --help`` end in ModuleNotFoundError outside an editable install."""
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(cfg["tool"]["setuptools"]["packages"])
    on_disk = {name for name, path in _modules().items() if path.name == "__init__.py"}
    assert listed == on_disk, f"missing from pyproject: {sorted(on_disk - listed)}; not a package: " \
                              f"{sorted(listed - on_disk)}"
    assert cfg["project"]["requires-python"] == ">=3.11"  # tomllib and hashlib.file_digest


def test_every_test_marked_slow_still_exists():
    """conftest.SLOW_TESTS names tests by file and function: a renamed test must not drop out silently."""
    from conftest import SLOW_TESTS

    missing = []
    for file, names in SLOW_TESTS.items():
        tree = ast.parse((REPO / "tests" / file).read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        missing += [f"{file}::{n}" for n in names if n not in defined]
    assert not missing, f"conftest.SLOW_TESTS names tests that do not exist: {missing}"


_ANY_ALIAS = re.compile(r"^\s*(?:\w+\s*(?::\s*\w+\s*)?=\s*)+(?:typing\.)?Any\s*(?:#.*)?$", __import__("re").M)


def test_no_module_aliases_a_type_to_any():
    # `RunConfig = Any` (or `X = Y = Any`) hides a core type from the type checker (issue #21):
    # import the real type under TYPE_CHECKING instead.
    root = Path(__file__).resolve().parents[1] / "bench"
    found = [f"{p.relative_to(root.parent)}: {m.group(0).strip()}"
             for p in sorted(root.rglob("*.py"))
             for m in _ANY_ALIAS.finditer(p.read_text(encoding="utf-8"))]
    assert not found, "aliases of Any (import the real type under TYPE_CHECKING):\n" + "\n".join(found)
    assert _ANY_ALIAS.search("RunConfig = Any\n") and _ANY_ALIAS.search("A = B = Any  # x\n")
    assert not _ANY_ALIAS.search("x: dict[str, Any] = {}\n")
