"""``bench robustness``: probes trained on clean embeddings, tested on corrupted test audio."""

from __future__ import annotations

import argparse

from bench.commands.common import (add_data_root, add_device, add_encoder_options, add_evaluation, add_progress,
                                   add_threads, report_failures, run_config)

EPILOG = """conditions (--conditions):
  a ';'-separated list of NAME or NAME@S1,S2,... (strengths in each corruption's own unit; a bare NAME
  takes its default levels), or a suite: 'default' (every corruption at its default levels, the
  augmentation chain at severities 0, 0.5, 1, 1.5, 2) or 'quick' (one or two levels each).
  Corruptions: augment (severity), time_stretch (speed factor), splice_out (fraction cut), reverb
  (room size), chorus (depth), distortion (drive dB), compression (ratio), reversal (1), bitcrush
  (bit depth), mp3 (kbit/s). The clean test split is always measured.

examples:
  bench robustness --encoder semisupcon,simclr --tasks all
  bench robustness --encoder simclr --tasks nsynth_pitch --conditions 'augment@0.5,1;mp3@32;reverb'
  bench robustness --encoder semisupcon,simclr --tasks gtzan --conditions quick --seeds 0

outputs (in --out): records/ (corrupted records carry condition, corruption and the paired drop),
robustness.md/.csv/.json (metric and drop with 95% intervals per encoder x task x condition),
robustness_<task>.png (degradation curves), robustness.html (the report), leaderboard.* (clean
rows first, then one row per encoder and condition).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("robustness", help="test probes trained on clean audio on corrupted test audio",
                       description="For each encoder x task, train the probe of each seed on clean embeddings once, "
                       "then score it on the clean test split and on the test audio under each corruption condition. "
                       "Corrupted embeddings are cached under a key that includes the corruption and its seed. "
                       "A corruption that fails on a file skips that file (counted in the records); the rest goes on.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--encoder", "-e", required=True, help="encoder name(s), comma-separated (see `bench list`)")
    p.add_argument("--tasks", "-t", default="all", help="'all' or task names, comma-separated (default: all)")
    p.add_argument("--conditions", "-c", default="default", metavar="SPEC",
                   help="corruption conditions (see below; default: the 'default' suite)")
    p.add_argument("--corruption-seed", type=int, default=0, metavar="N",
                   help="seed of the random corruptions (augment, splice_out), drawn per track (default: 0)")
    add_data_root(p)
    add_device(p)
    add_evaluation(p, "folder for records, tables, curves and report (default: ./bench-results/robustness-<time>)")
    add_threads(p)
    add_encoder_options(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench import plugins
    from bench.corruptions import parse_conditions
    from bench.errors import BenchError
    from bench.experiments.robustness import run_robustness

    parse_conditions(args.conditions)  # unknown names: did-you-mean, exit 2, before any work
    if args.corruption_seed < 0:
        raise BenchError(f"--corruption-seed must be 0 or more, got {args.corruption_seed}")
    encoders = plugins.encoders().resolve(args.encoder)
    tasks = plugins.tasks().resolve(args.tasks)
    config = run_config(args, encoders, tasks, "robustness-%Y%m%d-%H%M%S")
    outcome = run_robustness(config, args.conditions, args.corruption_seed)
    return report_failures(outcome.failures, bool(outcome.records), "robustness run")
