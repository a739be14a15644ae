"""`bench plugin check NAME...` and `bench plugin new NAME`: the conformance kit on the command line.

Thin: the checks live in :mod:`bench.testing`, the package skeleton in
:mod:`bench.scaffold`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.commands.common import demo_sizes

CHECK_EPILOG = """examples:
  bench plugin check logmel nsynth_pitch
  bench plugin check ssl_encoders                 # every encoder a plugin registers
  bench plugin check hf -O model=./my-model -O layer=mean
  bench plugin check my_encoder my_task -O my_encoder:seed=1
  bench plugin check mtat --data-root ~/datasets  # the loader on real data instead of a demo

exit status: 0 every check passed, 1 a check failed, 2 an unknown name, or an encoder or task that
could not be built from the options given (a bad option, a missing dependency)
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `plugin` verb (actions `check` and `new`) to the `bench` command line."""
    p = subparsers.add_parser(
        "plugin", help="check plugins against the harness's contracts, or start a new plugin",
        description="Conformance checks for encoder and task plugins, and a skeleton for a new one.")
    sub = p.add_subparsers(dest="plugin_command", metavar="ACTION")

    c = sub.add_parser(
        "check", help="run the conformance checks on installed encoders and tasks",
        description="Run the conformance checks of bench.testing on installed encoders and tasks and print a "
        "short report: output shape and dtype for several batch sizes, finite values, eval determinism, batch "
        "invariance, sample rate and window, config JSON and stable, checkpoint and options round-trips, plugin "
        "import without torch, and the embedding speed (reported, never judged); for tasks: the demo generator "
        "read back by the loader, splits disjoint, labels in the vocabulary, metrics of a perfect and a constant "
        "prediction.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=CHECK_EPILOG)
    c.add_argument("names", nargs="+", metavar="NAME",
                   help="encoder, task or plugin (entry point) names, see `bench list`")
    c.add_argument("--option", "-O", action="append", default=None, metavar="KEY=VALUE",
                   help="encoder option or task setting, repeatable; NAME:KEY=VALUE gives it to one NAME only")
    c.add_argument("--data-root", type=Path, default=None,
                   help="read the tasks' data from here instead of writing and reading a demo")
    c.add_argument("--demo-size", default="tiny", choices=demo_sizes(),
                   help="size of the demo each task writes and reads back (default: tiny)")
    c.add_argument("--device", default="cpu", help="torch device for the encoder checks (default: cpu)")
    c.set_defaults(func=cmd_check)

    n = sub.add_parser(
        "new", help="write a new encoder plugin package (ready to pip install, with its conformance test)",
        description="Write bench-NAME/: pyproject.toml with the `bench` entry point, src/bench_NAME/__init__.py "
        "with a working encoder to replace with yours, and tests/test_conformance.py. `pip install -e "
        "bench-NAME` registers it; `pytest bench-NAME` passes as written.")
    n.add_argument("name", help="encoder name: lowercase letters, digits, _")
    n.add_argument("--out", type=Path, default=None, help="folder to create (default: ./bench-NAME)")
    n.set_defaults(func=cmd_new)

    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
    return p


def cmd_check(args) -> int:
    """Check every named encoder and task; 1 if a check failed, 2 if one could not be built (bad input)."""
    from bench.commands.common import parse_options  # the -O syntax of `bench run`
    from bench.testing import check_encoder, check_task, options_for, resolve_names

    options = parse_options(args.option)
    targets = resolve_names(args.names)
    failed, unbuilt = [], []
    for kind, name in targets:
        opts = options_for(name, options)
        if kind == "encoder":
            report = check_encoder(name, opts, device=args.device)
        else:
            report = check_task(name, opts, data_root=args.data_root, size=args.demo_size)
        print(report.format(), flush=True)
        if not report.ok:
            failed.append(f"{kind} {name} ({', '.join(c.name for c in report.failures)})")
        if report.build_error is not None:
            unbuilt.append(report.build_error)
    print(f"\n{len(targets) - len(failed)} of {len(targets)} passed every check"
          + (f"; failed: {'; '.join(failed)}" if failed else ""))
    return 2 if unbuilt else 1 if failed else 0


def cmd_new(args) -> int:
    """Write a plugin package skeleton."""
    from bench.scaffold import new_plugin

    files = new_plugin(args.name, args.out)
    root = files[0].parent
    print(f"Wrote {root}/:", *(f"  {f.relative_to(root)}" for f in files), sep="\n")
    print(f"Next: pip install -e '{root}[test]' && pytest {root}", file=sys.stderr)
    return 0
