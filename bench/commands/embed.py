"""``bench embed``: export track embeddings (per split: track ids, labels, matrix) for one's own probes."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.common import (add_data_root, add_device, add_encoder_options, add_progress, add_protocol,
                                   add_threads)

EPILOG = """examples:
  bench embed --encoder logmel --tasks gtzan --to embeddings/
  bench embed --encoder semisupcon --tasks all --to embeddings/ --format parquet --data-root ~/datasets
  bench embed --encoder logmel --tasks nsynth_pitch --protocol marble --to emb/   # as MARBLE sets the task (all 128 pitches)
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="export embeddings of tasks' splits (NumPy or Parquet) for your own probes",
                       description="Extract every split of the tasks with the encoders (through the embedding "
                       "cache, as `bench run` does: a trainable encoder without weights is pretrained first) and "
                       "write, per encoder x task, the track ids, labels and embedding matrix of each split plus "
                       "meta.json under DIR/<encoder>/<task>/. bench.export.read_split loads them back.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--encoder", "-e", required=True, help="encoder name(s), comma-separated (see `bench list`)")
    p.add_argument("--tasks", "-t", default="all", help="'all' or task names, comma-separated (default: all)")
    p.add_argument("--to", type=Path, required=True, metavar="DIR", help="folder to write the embeddings to")
    p.add_argument("--format", choices=("npy", "parquet"), default="npy",
                   help="npy: <split>.embeddings.npy, <split>.labels.npy, <split>.track_ids.json; "
                   "parquet: <split>.parquet with track_id, label, embedding (default: npy)")
    add_data_root(p)
    add_protocol(p)
    add_device(p)
    p.add_argument("--checkpoint", default=None, help="encoder weights to use (skips pretraining)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per encoder batch (default: 32)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    add_threads(p)
    add_encoder_options(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench import plugins
    from bench.commands.common import check_out, data_roots, parse_options, progress_enabled
    from bench.device import resolve_device
    from bench.errors import BenchError
    from bench.export import write_task
    from bench.run import check_option_scopes, embed, index_task, make_task, prepare_encoder
    from bench.settings import EvalSettings, RunConfig

    encoders = plugins.encoders().resolve(args.encoder)
    tasks = plugins.tasks().resolve(args.tasks)
    if args.batch_size < 1:
        raise BenchError(f"--batch-size must be at least 1, got {args.batch_size}")
    options = parse_options(args.option)
    check_option_scopes(options, encoders)
    roots = data_roots(args)
    roots.check_tasks(plugins.tasks().names())
    settings = EvalSettings(out=check_out(args.to), data_roots=roots, device=resolve_device(args.device),
                            batch_size=args.batch_size, progress=progress_enabled(args), cache=not args.no_cache,
                            protocol=args.protocol)
    config = RunConfig(encoders=encoders, tasks=tasks, settings=settings, checkpoint=args.checkpoint,
                       encoder_options=options)
    for name in encoders:
        prep = prepare_encoder(name, config)
        for task_name in tasks:
            data = index_task(make_task(task_name, args.protocol), settings.data_roots)
            embs, _ = embed(prep, data, settings)
            where = write_task(args.to, args.format, encoder=name, variant=prep.variant,
                               weights_hash=prep.weights_hash, data=data, embs=embs, protocol=args.protocol)
            sizes = ", ".join(f"{s} {len(e.items)}" for s, e in embs.items())
            print(f"{prep.variant} x {task_name}: {sizes} tracks -> {where}"
                  + (" (DEMO DATA)" if data.demo else ""))
    return 0
