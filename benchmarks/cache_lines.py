"""The size of the cache and store code (issue 21's target: at most 1,100 lines in all), two ways.

    python benchmarks/cache_lines.py [MODULE.py ...]

Per module and in all: physical lines (``wc -l``) and code lines (neither blank, nor a comment, nor a
docstring of a module, class or function). The default modules are the ones counted since session 9: the
store, the key chain, the three entry kinds, the run memo, the in-process data snapshot and the render cache.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("bench/store.py", "bench/keys.py", "bench/embedding_cache.py", "bench/probe_cache.py",
           "bench/pretrain/audio_store.py", "bench/run_memo.py", "bench/snapshot.py", "bench/render_cache.py")
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
        tokenize.ENDMARKER}


def count(path: Path) -> tuple[int, int]:
    """(physical lines, code lines) of one Python file."""
    src = path.read_text()
    docs: set[int] = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                docs.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    code = {line for tok in tokenize.generate_tokens(io.StringIO(src).readline) if tok.type not in SKIP
            for line in range(tok.start[0], tok.end[0] + 1)}
    return len(src.splitlines()), len(code - docs)


def main(argv: list[str]) -> int:
    total = [0, 0]
    print(f"{'lines':>6} {'code':>6}  module")
    for name in argv or MODULES:
        lines, code = count(ROOT / name)
        total[0], total[1] = total[0] + lines, total[1] + code
        print(f"{lines:6d} {code:6d}  {name}")
    print(f"{total[0]:6d} {total[1]:6d}  in all (target: 1,100)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
