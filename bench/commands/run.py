"""``bench run``: the main job (encoders x tasks -> records and a leaderboard)."""

from __future__ import annotations

import argparse

from bench.commands.common import (add_data_root, add_device, add_encoder_options, add_evaluation, add_progress,
                                   add_threads, report_failures, run_config)

EPILOG = """examples:
  bench run --encoder logmel --tasks all
  bench run --encoder logmel,semisupcon --tasks nsynth_pitch,gtzan --data-root ~/datasets
  bench run --encoder semisupcon -O label_fraction=0.05 -O steps=600 --tasks mtat
  bench run --encoder semisupcon --checkpoint my.safetensors --tasks all
  bench run --encoder simclr,semisupcon --tasks all --protocol semisupcon
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="evaluate encoders on tasks and print a leaderboard",
                       description="Evaluate one or more encoders on one or more tasks: extract embeddings, "
                       "train a probe per task, write one JSON record per encoder x task x seed and a leaderboard. "
                       "A trainable encoder with no weights yet is pretrained first (cached) on the data present. "
                       "With no data root configured, generated demo data is used (and every table says so).",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--encoder", "-e", required=True, help="encoder name(s), comma-separated (see `bench list`)")
    p.add_argument("--tasks", "-t", default="all", help="'all' or task names, comma-separated (default: all)")
    add_data_root(p)
    add_device(p)
    add_evaluation(p, "folder for records and leaderboard (default: ./bench-results/run-<time>)")
    p.add_argument("--checkpoint", default=None,
                   help="encoder weights to evaluate (skips pretraining); the encoder takes the options it was "
                        "trained with from the checkpoint")
    add_threads(p)
    add_encoder_options(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench import plugins
    from bench.experiments.main import run as run_job

    encoders = plugins.encoders().resolve(args.encoder)
    tasks = plugins.tasks().resolve(args.tasks)
    config = run_config(args, encoders, tasks, "run-%Y%m%d-%H%M%S", checkpoint=args.checkpoint)
    outcome = run_job(config)
    return report_failures(outcome.failures, bool(outcome.records))
