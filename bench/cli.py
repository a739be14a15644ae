"""The ``bench`` command line: builds the parser from :mod:`bench.commands` and runs a verb.

Each verb lives in its own module under ``bench/commands/`` and imports what it
computes with only when it runs, so ``bench --help`` and ``bench list`` import
neither torch nor numpy. Errors a user can cause (:class:`bench.errors.BenchError`)
print their message and exit 2; nothing else is caught here (a plugin's own
exception inside a run is caught per encoder x task by :func:`bench.run.guarded`).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from typing import NoReturn

from bench.commands import VERBS
from bench.errors import BenchError

#: an OSError of these is the disk (full, over quota, read-only), not a bug: a message, not a traceback
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)

EPILOG = """examples:
  bench list
  bench run --encoder logmel --tasks all
  bench run --encoder logmel,semisupcon --tasks nsynth_pitch,gtzan --data-root ~/datasets
  bench pretrain --encoder semisupcon --data-root ~/datasets
  bench robustness --encoder semisupcon,simclr --tasks all --conditions quick
  bench sweep --encoder semisupcon -O label_fraction=0.05,0.2,1.0 --tasks mtat
  bench reproduce --scale demo
  bench leaderboard bench-results/run-20261121-120000
  bench compare bench-results/run-20261121-120000 baseline.json --tolerance 0.01
  bench cache list
  bench data check --task nsynth_pitch --data-root ~/datasets
  bench data download gtzan --to ~/datasets
  bench embed --encoder logmel --tasks gtzan --to embeddings/
  bench list --json

environment:
  BENCH_DATA_ROOT       data root (folder holding nsynth/, magnatagatune/, ...)
  BENCH_CACHE_DIR       cache folder (demo data, checkpoints, embeddings)
  BENCH_STRICT_PLUGINS  1 = a plugin that fails to load is fatal
  BENCH_THREADS         torch CPU threads (as --threads)
  BENCH_CONFIG          config file (TOML; default <user config dir>/bench/config.toml)
"""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors suggest the option meant (``--probe-grd`` -> ``--probe-grid``).

    Every verb's parser is one of these (argparse gives sub-parsers their parent's class), so a
    misspelled option gets the verb's usage and a did-you-mean, whichever error argparse meets first.
    """

    argv: list[str] = []

    def error(self, message: str) -> NoReturn:
        import difflib
        import re

        hint = suggest_options(self, Parser.argv)
        bad_choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if bad_choice and not hint:  # a misspelled verb or choice value
            close = difflib.get_close_matches(bad_choice.group(1), re.findall(r"'([^']*)'", bad_choice.group(2)), n=1)
            hint = f"did you mean {close[0]!r}?" if close else ""
        super().error(message + (f"; {hint}" if hint else ""))


def suggest_options(parser: argparse.ArgumentParser, tokens: list[str]) -> str:
    """'did you mean --x?' for each option-like token that ``parser`` does not know."""
    import difflib

    known = [o for o in parser._option_string_actions if o.startswith("--")]
    out = []
    for tok in tokens:
        name = tok.split("=", 1)[0]
        if not name.startswith("--") or name == "--" or name in parser._option_string_actions:
            continue
        if any(o.startswith(name) for o in known):  # an abbreviation argparse accepts
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        if close:
            out.append(f"did you mean {close[0]} (not {name})?")
    return "; ".join(out)


def _verb_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The deepest sub-parser ``args`` went through (``bench data check`` -> the ``check`` parser)."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, subs[0].dest, None) if subs else None
        if not chosen or chosen not in subs[0].choices:
            return parser
        parser = subs[0].choices[chosen]


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; unknown arguments are reported by the verb they were given to, with a did-you-mean."""
    argv = list(sys.argv[1:] if argv is None else argv)
    Parser.argv = argv
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            verb = _verb_parser(parser, args)
            verb.error(f"unrecognized arguments: {' '.join(extra)}")  # Parser.error adds the did-you-mean
    finally:
        Parser.argv = []
    return args


def build_parser() -> argparse.ArgumentParser:
    from bench import __version__

    parser = Parser(
        prog="bench",
        description="Benchmark learned music representations: pretrain or load an encoder, "
        "embed the standard music tasks, train probes, compare on a leaderboard.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--strict-plugins", action="store_true",
                        help="fail when a plugin cannot be loaded (default: warn and skip it)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in VERBS.values():
        importlib.import_module(f"bench.commands.{module}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    if args.strict_plugins:
        os.environ["BENCH_STRICT_PLUGINS"] = "1"
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        if "threads" in vars(args):  # the verbs that compute with torch
            from bench import allocator, limits
            from bench.commands.common import apply_threads

            limits.check_launcher()
            allocator.tune()  # before torch allocates anything (bench/allocator.py says why)
            allocator.passive_omp_wait()  # before torch is imported (why: bench/allocator.py)
            apply_threads(args.threads)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader gone before the last buffered lines is handled below
        return code
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (`bench run ... | head`): what was computed is on disk already; no
        # traceback, and no second one when Python flushes stdout at exit (the recipe of Python's signal docs)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        print(f"error: cannot write {exc.filename or 'a file'}: {exc.strerror}; free some space (or write "
              "elsewhere with --out) and run again: what was finished is kept", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
