"""``bench list``: the registered encoders and tasks, who provides each, and plugins that failed."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list encoders and tasks and the plugins that provide them",
                       description="List the registered encoders and tasks, with the plugin, distribution "
                       "and version that provides each, and any plugin that failed to load.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench import plugins

    enc, tasks = plugins.encoders(), plugins.tasks()
    for title, reg in (("Encoders", enc), ("Tasks", tasks)):
        print(f"{title}:")
        width = max((len(n) for n in reg.names()), default=4)
        for name in reg.names():
            e = reg.entries[name]
            src = f"{e.plugin.distribution} {e.plugin.version}".strip() or "in-process"
            print(f"  {name:<{width}}  {e.description}  [plugin {e.plugin.name}, {src}]")
        if not reg.names():
            print("  (none)")
    failed = plugins.failures()
    if failed:
        print("Plugins that failed to load:")
        for f in failed:
            print(f"  {f.plugin.name} ({f.plugin.distribution} {f.plugin.version}): {f.stage}: {f.error}")
    return 0
