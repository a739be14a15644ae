"""``bench sweep``: a grid of encoder / recipe options, each variant pretrained once, one comparative leaderboard."""

from __future__ import annotations

import argparse

from bench.commands.common import (add_data_root, add_device, add_evaluation, add_pretrain_seeds, add_progress,
                                   add_threads, report_failures, run_config)

EPILOG = """how to write the grid (-O, repeatable):
  -O KEY=V1,V2,...         sweep KEY over the values; several swept keys: every combination
  -O KEY=V                 one value: a fixed option of every variant (e.g. -O steps=600)
  -O ENCODER:KEY=...       only that encoder's variants
  list values (label_task, unlabeled_tasks): join the names of one value with '+', or separate the
  sweep values with '|' and keep commas inside one value; these two are the same sweep of two
  labeled pools, MTAT + GTZAN together, and NSynth pitch alone:
    -O label_task=mtat+gtzan,nsynth_pitch
    -O 'label_task=mtat,gtzan|nsynth_pitch'

Encoder options (label_fraction, labeled_share, threshold, weighted, tau, label_task, preset, seed)
and recipe options (steps, lr, batch_size, ...) are told apart by name. Rows are named by the swept
options (semisupcon[label_fraction=0.05]); a variant equal to the fixed options alone keeps the
plain name. Each trainable variant is pretrained unless the cache has its checkpoint: rerunning an
interrupted sweep resumes it (finished variants are not retrained; records already in --out are
reused).

examples:
  bench sweep --encoder semisupcon -O label_fraction=0.01,0.05,0.2,1.0 --tasks mtat
  bench sweep --encoder semisupcon -O label_fraction=0.05,1.0 -O tau=0.1,0.2 --tasks all
  bench sweep --encoder semisupcon -O label_task=mtat+gtzan,nsynth_pitch --tasks all
  bench sweep --encoder semisupcon -O labeled_share=0.25,0.5,0.75 -O threshold=1,2 -O weighted=false,true
  bench sweep --encoder semisupcon -O label_fraction=0.05,0.25 --launcher slurm --slurm-partition gpu

outputs (in --out): records/ (each with the swept values in 'sweep' and the selected probe's
validation scores in 'valid_metrics'), sweep.md (variants x tasks with intervals, ranked on the
validation splits, then a final table of test scores; --rank-on test ranks on test),
sweep.png (the ranked split's metric against the first swept option, a line per combination
of the others), leaderboard.* (test scores, one row per variant).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="evaluate a grid of encoder / recipe options as variants",
                       description="Pretrain (once, cached) and evaluate every combination of the swept options, "
                       "then write one comparative leaderboard and a plot of the primary metric against the "
                       "swept value.", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--encoder", "-e", required=True, help="encoder name(s), comma-separated (see `bench list`)")
    p.add_argument("--tasks", "-t", default="all", help="'all' or task names, comma-separated (default: all)")
    p.add_argument("--option", "-O", action="append", default=None, metavar="KEY=V1,V2,...",
                   help="a swept option (several values) or a fixed one (one value); see below")
    add_data_root(p)
    add_device(p)
    add_evaluation(p, "folder for records, leaderboard and plot (default: ./bench-results/sweep-<time>)")
    p.add_argument("--rank-on", choices=("valid", "test"), default="valid",
                   help="rank and plot the variants on the validation splits (default; the test scores then "
                   "appear only in sweep.md's final table) or on the test splits")
    add_pretrain_seeds(p)
    add_threads(p)
    add_progress(p)
    from bench.launcher import add_launcher

    add_launcher(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench import plugins
    from bench.errors import BenchError
    from bench.experiments.sweep import check_variants, parse_grid, plan_variants, run_sweep
    from bench.launcher import launcher_from_args
    from bench.run import check_option_scopes

    encoders = plugins.encoders().resolve(args.encoder)
    tasks = plugins.tasks().resolve(args.tasks)
    fixed, axes = parse_grid(args.option)
    check_option_scopes({**fixed, **{a.key: None for a in axes}}, encoders)
    if not axes:
        raise BenchError("bench sweep needs at least one swept option, e.g. -O label_fraction=0.05,1.0 "
                         "(one value per -O is a fixed option; use `bench run` for a single variant)")
    launcher = launcher_from_args(args)
    if launcher is not None:  # each job resolves --device on its own node; this one may have no GPU
        from dataclasses import replace

        config = run_config(argparse.Namespace(**{**vars(args), "device": "cpu"}), encoders, tasks,
                            "sweep-%Y%m%d-%H%M%S", encoder_options=fixed)
        config = replace(config, settings=replace(config.settings, device=launcher.settings.device))
    else:
        config = run_config(args, encoders, tasks, "sweep-%Y%m%d-%H%M%S", encoder_options=fixed)
    variants = plan_variants(encoders, fixed, axes)
    check_variants(variants, fixed, config)  # every value parsed and every variant built before any training
    outcome = run_sweep(config, variants, axes, launcher=launcher, rank_on=args.rank_on)
    return report_failures(outcome.failures, bool(outcome.records), "sweep")
