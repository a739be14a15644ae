"""``bench run``: the main job (encoders x tasks -> records and a leaderboard)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.common import (add_data_root, add_device, add_encoder_options, add_evaluation, add_pretrain_seeds,
                                   add_progress, add_threads, check_out, pretrain_seeds, progress_enabled,
                                   report_failures, run_config)
from bench.errors import BenchError

EPILOG = """examples:
  bench run --encoder logmel --tasks all
  bench run --encoder logmel,semisupcon --tasks nsynth_pitch,gtzan --data-root ~/datasets
  bench run --encoder semisupcon -O label_fraction=0.05 -O steps=600 --tasks mtat
  bench run --encoder semisupcon --checkpoint my.safetensors --tasks all
  bench run --encoder simclr,semisupcon --tasks all --protocol semisupcon
  bench run --encoder semisupcon,random,logmel --tasks nsynth_pitch --pretrain-seeds 0,1,2
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="evaluate encoders on tasks and print a leaderboard",
                       description="Evaluate one or more encoders on one or more tasks: extract embeddings, "
                       "train a probe per task, write one JSON record per encoder x task x seed and a leaderboard. "
                       "A trainable encoder with no weights yet is pretrained first (cached) on the data present. "
                       "With no data root configured, generated demo data is used (and every table says so).",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--encoder", "-e", default=None,
                   help="encoder name(s), comma-separated (see `bench list`); required unless --config")
    p.add_argument("--tasks", "-t", default=None, help="'all' or task names, comma-separated (default: all)")
    add_data_root(p)
    add_device(p)
    add_evaluation(p, "folder for records and leaderboard (default: ./bench-results/run-<time>)")
    p.add_argument("--checkpoint", default=None,
                   help="encoder weights to evaluate (skips pretraining); the encoder takes the options it was "
                        "trained with from the checkpoint")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="at most N tracks per split of every task (a fixed choice by track id): a quick look that "
                        "runs in seconds; its records say `limit: N` and `bench compare` refuses them")
    p.add_argument("--log-predictions", action="store_true",
                   help="write each test track's target and the probe's scores beside its record "
                        "(records/<name>.predictions.jsonl; see docs/api.md)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="rerun the run_config.json a run wrote in its --out: its encoders, tasks and settings "
                        "(--out, --encoder and --tasks given here override it)")
    add_pretrain_seeds(p)
    add_threads(p)
    add_encoder_options(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bench import plugins, run_file
    from bench.device import resolve_device
    from bench.experiments.main import run as run_job

    if args.limit is not None and args.limit < 1:
        raise BenchError(f"--limit must be at least 1 (tracks per split), got {args.limit}")
    if args.config is not None:
        config = run_file.load(args.config, out=check_out(args.out) if args.out else None,
                               progress=progress_enabled(args))
        encoders = plugins.encoders().resolve(args.encoder or ",".join(config.encoders))
        tasks = plugins.tasks().resolve(args.tasks or ",".join(config.tasks))
        settings = replace(config.settings, out=check_out(config.settings.out),
                           device=resolve_device(config.settings.device),
                           limit=args.limit if args.limit is not None else config.settings.limit,
                           log_predictions=args.log_predictions or config.settings.log_predictions)
        config = replace(config, encoders=encoders, tasks=tasks, settings=settings,
                         pretrain_seeds=pretrain_seeds(args) or config.pretrain_seeds)
    else:
        if not args.encoder:
            raise BenchError("bench run needs --encoder NAME[,NAME] (see `bench list`), or --config run_config.json")
        encoders = plugins.encoders().resolve(args.encoder)
        tasks = plugins.tasks().resolve(args.tasks or "all")
        config = run_config(args, encoders, tasks, "run-%Y%m%d-%H%M%S", checkpoint=args.checkpoint)
        config = replace(config, settings=replace(config.settings, limit=args.limit,
                                                  log_predictions=args.log_predictions))
    run_file.save(config)
    outcome = run_job(config)
    return report_failures(outcome.failures, bool(outcome.records))
