"""``bench cache list`` / ``bench cache clear``: every kind the cache folder holds (:mod:`bench.store`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from bench.errors import BenchError
from bench import store

KIND_HELP = f"{', '.join(store.KINDS)} or all (comma-separated)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="list or clear the cache: demo data, pretraining audio, checkpoints, "
                       "embeddings, probes, results, renders",
                       description="The cache folder ($BENCH_CACHE_DIR, default: the user cache folder) holds "
                       "the generated demo data (demo/), decoded pretraining audio (pretrain-audio/), pretrained "
                       "checkpoints (checkpoints/), track embeddings (embeddings/), fitted probes (probes/), the "
                       "records of finished (encoder, task) pairs (results/) and drawn charts (renders/). Every "
                       "entry is checked against its checksum when read. A second "
                       "`bench run` with the same encoder weights, config, task, data, extraction and probe "
                       "settings reads them instead of decoding audio and training probes; the same command "
                       "with nothing changed reuses its records without loading the encoder or torch.")
    actions = p.add_subparsers(dest="cache_command", metavar="ACTION")
    q = actions.add_parser("list", help="list cache entries (kind, encoder, task, split, rows, size, created)")
    q.add_argument("--kind", "-k", default=None, help=f"only entries of these kinds: {KIND_HELP} (default: all)")
    q.set_defaults(func=run_list)
    q = actions.add_parser("clear", help="delete cache entries (all but demo data and checkpoints unless --kind "
                           "says more)",
                           description="Delete cache entries. Without --kind: pretraining audio, embeddings, "
                           "probes, results and renders (derived data, recomputed on the next run; clearing "
                           "embeddings or probes also clears the results made from them); the demo data and "
                           "pretrained checkpoints only with --kind demo, --kind checkpoints or --kind all, since "
                           "making them again takes minutes to hours.")
    q.add_argument("--kind", "-k", default=None, help=f"{KIND_HELP} (default: pretrain-audio,embeddings,probes,"
                   "results,renders)")
    q.add_argument("--encoder", "-e", default=None, help="only entries of this encoder")
    q.add_argument("--task", "-t", default=None, help="only entries of this task")
    q.set_defaults(func=run_clear)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def run_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench.config import cache_dir

    rows = store.entries(parse_kinds(args.kind))
    print(f"Cache: {cache_dir()}")
    if not rows:
        print("  (empty)")
        return 0
    table = [[r["kind"], r["encoder"], r["task"], r["split"], "-" if r["rows"] is None else r["rows"], r["skipped"],
              human_size(r["size"]), r["created"], r["status"], Path(r["path"]).name] for r in rows]
    print(tabulate(table, headers=["kind", "encoder", "task", "split", "tracks", "skipped", "size", "created",
                                   "status", "entry"], tablefmt="github"))
    by_kind = {k: [r for r in rows if r["kind"] == k] for k in store.KINDS}
    parts = [f"{k} {len(v)} ({human_size(sum(r['size'] for r in v))})" for k, v in by_kind.items() if v]
    print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}, {human_size(sum(r['size'] for r in rows))}: "
          + ", ".join(parts))
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from bench.config import cache_dir

    kinds = parse_kinds(args.kind, default=store.CLEAR_DEFAULT)
    removed = store.clear(kinds, encoder=args.encoder, task=args.task)
    what = " and ".join(f"{k} {v}" for k, v in (("encoder", args.encoder), ("task", args.task)) if v) or "all"
    print(f"Removed {len(removed)} cache entr{'y' if len(removed) == 1 else 'ies'} ({', '.join(kinds)}; {what}) "
          f"from {cache_dir()}, {human_size(sum(r['size'] for r in removed))} freed.")
    for kind in ("demo", "checkpoints"):
        kept = [] if kind in kinds else store.entries((kind,))
        if kept:
            print(f"Kept {len(kept)} {kind} entr{'y' if len(kept) == 1 else 'ies'} "
                  f"({human_size(sum(r['size'] for r in kept))}); `bench cache clear --kind {kind}` deletes them.")
    return 0


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def parse_kinds(text: str | None, default: Sequence[str] = store.KINDS) -> tuple[str, ...]:
    """``"embeddings,probes"`` / ``"all"`` / None -> kinds; an unknown kind is a usage error naming the known ones."""
    names = [k.strip().lower() for k in (text or "").split(",") if k.strip()]
    if not text or "all" in names:
        return tuple(default) if not text else store.KINDS
    bad = [k for k in names if k not in store.KINDS]
    if bad or not names:
        raise BenchError(f"--kind {text!r}: unknown kind {bad[0] if bad else ''!r}; use {KIND_HELP}")
    return tuple(k for k in store.KINDS if k in names)
