"""``bench list``: the registered encoders and tasks, who provides each, and plugins that failed.

``bench list --json`` prints the same as one JSON document on stdout, with each
task's metadata (kind, splits, classes, metrics, probe, settings, licence and
where to get the data) for scripts and notebooks.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list encoders and tasks and the plugins that provide them",
                       description="List the registered encoders and tasks, with the plugin, distribution "
                       "and version that provides each, and any plugin that failed to load.")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout: encoders, tasks with their metadata (kind, splits, "
                   "classes, metrics, licence, where to get the data), plugin failures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench import plugins

    if args.json:
        import json

        print(json.dumps(inventory(), indent=2, default=str))
        return 0
    enc, tasks = plugins.encoders(), plugins.tasks()
    for title, reg in (("Encoders", enc), ("Tasks", tasks)):
        print(f"{title}:")
        width = max((len(n) for n in reg.names()), default=4)
        for name in reg.names():
            e = reg.entries[name]
            src = f"{e.plugin.distribution} {e.plugin.version}".strip() or "in-process"
            grp = f" (group {e.group}: not in 'all')" if e.group else ""
            print(f"  {name:<{width}}  {e.description}{grp}  [plugin {e.plugin.name}, {src}]")
        if not reg.names():
            print("  (none)")
        for g, members in reg.groups().items():
            print(f"  --{title.lower()} {g}: {', '.join(members)}")
    failed = plugins.failures()
    if failed:
        print("Plugins that failed to load:")
        for f in failed:
            print(f"  {f.plugin.name} ({f.plugin.distribution} {f.plugin.version}): {f.stage}: {f.error}")
    return 0


def inventory() -> dict[str, Any]:
    """Encoders, tasks (with metadata) and plugin failures as plain data. Imports no torch: encoders are
    described from their registration, not instantiated."""
    from bench import plugins
    from bench.download import load_sources

    sources = load_sources()
    enc, tasks = plugins.encoders(), plugins.tasks()
    return {
        "encoders": [{"name": n, **_provider(enc.entries[n])} for n in enc.names()],
        "tasks": [_task(tasks.entries[n], sources.get(n)) for n in tasks.names()],
        "plugin_failures": [{"plugin": f.plugin.name, "distribution": f.plugin.distribution,
                             "version": f.plugin.version, "stage": f.stage, "error": f.error}
                            for f in plugins.failures()],
    }


def _provider(entry: Any) -> dict[str, Any]:
    p = entry.plugin
    return {"description": entry.description, "plugin": p.name, "module": p.module,
            "distribution": p.distribution or None, "version": p.version or None}


def _task(entry: Any, source: dict[str, Any] | None) -> dict[str, Any]:
    from pathlib import Path

    from bench.errors import BenchError
    from bench.task import SPLITS

    out: dict[str, Any] = {"name": entry.name, **_provider(entry), "group": entry.group or None}
    try:
        task = entry.create()
    except BenchError as exc:  # a task that cannot be built is listed with why, the others still are
        return {**out, "error": str(exc)}
    try:  # classes that need the data (MTAT's top tags) are read from it: null here
        classes: list[str] | None = list(task.classes(Path("/nonexistent-data-root")))
    except (BenchError, OSError, NotImplementedError):
        classes = None
    out.update({
        "kind": task.kind, "splits": list(SPLITS), "classes": classes,
        "num_classes": len(classes) if classes is not None else None,
        "primary_metric": task.primary_metric, "metrics": list(task.metrics), "probe": task.probe,
        "max_windows": task.max_windows, "settings": task.settings, "dataset_dirs": list(task.dataset_dirs),
        "data_help": task.download_help or None,
        "licence": source.get("licence") if source else None,
        "homepage": source.get("homepage") if source else None,
        "download": f"bench data download {entry.name} --to DIR" if source else None,
    })
    return out
