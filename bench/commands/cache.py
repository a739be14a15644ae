"""``bench cache list`` / ``bench cache clear``: the embedding cache on disk."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="list or clear cached embeddings",
                       description="Cached track embeddings live under $BENCH_CACHE_DIR/embeddings "
                       "(default: the user cache folder). A second `bench run` with the same encoder "
                       "weights, config, task, data and extraction settings reads them instead of "
                       "decoding audio.")
    actions = p.add_subparsers(dest="cache_command", metavar="ACTION")
    q = actions.add_parser("list", help="list cache entries (encoder, task, split, rows, size, created)")
    q.set_defaults(func=run_list)
    q = actions.add_parser("clear", help="delete cache entries (all, or those of an encoder and/or task)")
    q.add_argument("--encoder", "-e", default=None, help="only entries of this encoder")
    q.add_argument("--task", "-t", default=None, help="only entries of this task")
    q.set_defaults(func=run_clear)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def run_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench.cache import EmbeddingCache, default_root, human_size

    cache = EmbeddingCache(default_root())
    rows = cache.entries()
    print(f"Embedding cache: {cache.root}")
    if not rows:
        print("  (empty)")
        return 0
    table = [[r["encoder"], r["task"], r["split"], r["rows"], r["skipped"], human_size(r["size"]), r["created"],
              r["status"], Path(r["path"]).name] for r in rows]
    print(tabulate(table, headers=["encoder", "task", "split", "tracks", "skipped", "size", "created", "status",
                                   "entry"], tablefmt="github"))
    print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}, {human_size(sum(r['size'] for r in rows))}")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from bench.cache import EmbeddingCache, default_root, human_size

    cache = EmbeddingCache(default_root())
    removed = cache.clear(encoder=args.encoder, task=args.task)
    what = " and ".join(f"{k} {v}" for k, v in (("encoder", args.encoder), ("task", args.task)) if v) or "all"
    print(f"Removed {len(removed)} cache entr{'y' if len(removed) == 1 else 'ies'} ({what}) from {cache.root}, "
          f"{human_size(sum(r['size'] for r in removed))} freed.")
    return 0
