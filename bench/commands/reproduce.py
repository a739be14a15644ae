"""``bench reproduce``: run what the paper's four claims need and write one report with a verdict per claim."""

from __future__ import annotations

import argparse

from bench.commands.common import (add_device, add_encoder_options, add_official_batchnorm, add_pretrain_seeds,
                                   add_progress, add_protocol, add_threads, report_failures)

EPILOG = """scales:
  demo   the generated demo data (no data root needed), demo preset, CPU, 3 pretraining seeds;
         about 85 minutes on 2 cores from a fresh cache (800-step pretrainings; 83 min measured;
         --pretrain-seeds 0 runs a one-seed plan); see docs/experiments.md
  paper  the paper's recipe for real data and GPUs: preset paper (SampleCNN at 22.05 kHz, 50k-step
         pretraining), the official p_s grid 0.05/0.1/0.25/0.5/0.75, the full robustness suite, 3 probe
         seeds; needs --data-root with the four datasets (see docs/experiments.md); --plan shows the jobs,
         their pools and the protocol

the official setting: --protocol semisupcon (the official probe) and --unlabeled-dir FMA_ROOT (the paper's
unlabeled pool, FMA's training split); -O official_ps_twice=true and --official-batchnorm emulate the
official code's two quirks (docs/protocols.md). -O KEY=VALUE reaches every job (recipe keys the pretrained
ones; ENCODER:KEY one encoder): -O steps=2 -O batch_size=4 is a dry run of the whole plan in minutes.

what runs: semisupcon, simclr, supervised and random on every task; semisupcon at 5% of its labels
(and 1% / 20% at paper scale); semisupcon labeled by a second dataset; semisupcon and simclr on
corrupted test audio. Pretraining, embeddings and records are cached: a second run only rewrites the
report.

verdicts: per claim, 'holds' when every counted comparison favours it with a 95% interval of the
difference that excludes 0, 'does not hold' when one goes against it with such an interval,
otherwise 'inconclusive'. Never the point estimates alone. Each row pools its pretraining seeds
(--pretrain-seeds; 0,1,2 at --scale demo): the intervals are a multi-bootstrap over pretraining seeds
and test tracks, so a verdict is about the method, not one checkpoint.

side by side: the jobs are independent (each an encoder: pretraining, extraction, probes), so on
CPU they run in worker processes (--jobs), each with its share of the cores; each job's output goes
to <out>/logs/ and is printed when the job ends. The checkpoints depend on the torch thread count
(the order of floating-point sums), so a run at --jobs 1 --threads 2 and one at --jobs 2 --threads 1
pretrain slightly different weights; both are cached under the same key, and the first one made is
the one every later run uses.

examples:
  bench reproduce                                  # --scale demo
  bench reproduce --tasks mtat,nsynth_pitch        # the claims those tasks can decide
  bench reproduce --scale paper --data-root ~/datasets --device cuda
  bench reproduce --scale paper --plan
  bench reproduce --pretrain-seeds 0                # one checkpoint per encoder: faster, weaker verdicts
  bench reproduce --scale paper --protocol semisupcon --unlabeled-dir ~/datasets/fma --data-root ~/datasets \
      --device cuda --launcher slurm --slurm-partition gpu --slurm-time 24:00:00   # docs/scale.md
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from pathlib import Path

    p = sub.add_parser("reproduce", help="run the paper's experiments and write a report with a verdict per claim",
                       description="Run what the four claims of SemiSupCon need (four encoders, a label-fraction "
                       "sweep, two supervision sources, robustness to corruptions), then write report.md and "
                       "report.html: per claim the claim, the evidence table and a verdict decided by intervals.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--scale", choices=("demo", "paper"), default="demo", help="demo (default) or paper")
    p.add_argument("--tasks", "-t", default="all",
                   help="'all' (the four tasks of the paper) or a comma-separated subset; claims whose tasks are "
                        "left out are inconclusive")
    p.add_argument("--out", "-o", type=Path, default=None,
                   help="folder for records and the report (default: ./bench-results/reproduce-<scale>; rerunning "
                        "into the same folder reuses its records)")
    p.add_argument("--data-root", action="append", metavar="DIR|TASK=DIR",
                   help="data root of the real datasets (--scale paper; repeatable, TASK=DIR per task)")
    p.add_argument("--plan", action="store_true",
                   help="print the protocol, p_s grid, pools, jobs and the claims' comparisons; run nothing")
    add_pretrain_seeds(p, "0,1,2 at --scale demo; the preset's own seed at --scale paper")
    add_protocol(p)
    add_official_batchnorm(p)
    p.add_argument("--unlabeled-dir", action="append", default=None, metavar="DIR",
                   help="the contrastive encoders' unlabeled pool (repeatable): a folder of audio, or an FMA root "
                        "(its training split; the paper's pool); default: the task train splits present")
    p.add_argument("--fractions", default=None, metavar="official|none|F,F,...",
                   help="label fractions p_s of the sweep (default: the scale's; paper: official = "
                        "0.05,0.1,0.25,0.5,0.75, the official code's grid)")
    p.add_argument("--conditions", default=None, metavar="SPEC",
                   help="corruption conditions of the robustness claim (default: the scale's; syntax of "
                        "`bench robustness --conditions`, e.g. 'reversal;mp3@32')")
    add_encoder_options(p)
    p.add_argument("--jobs", "-j", default="auto", metavar="N|auto",
                   help="jobs run side by side in worker processes (default auto: on CPU one per core up to 2 "
                        "cores, one per 2 cores above; 1 on a GPU). Each worker gets --threads torch threads "
                        "(default: the cores shared out). 1 runs every job in this process, one after another")
    add_device(p)
    add_threads(p)
    add_progress(p)
    from bench.launcher import add_launcher

    add_launcher(p)
    p.set_defaults(func=run)


def parse_jobs(value: str) -> int | None:
    """``--jobs``: ``auto`` (None) or a whole number of at least 1."""
    from bench.errors import BenchError

    text = str(value).strip().lower()
    if text == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise BenchError(f"--jobs {value!r}: give 'auto' or a whole number of worker processes (at least 1)")
    return n


def _unlabeled_dir(text: str) -> str:
    """An ``--unlabeled-dir`` folder, absolute (``fma:`` kept); one that is not a folder is refused here."""
    from pathlib import Path

    from bench.errors import BenchError
    from bench.pretrain import fma

    prefix = fma.PREFIX if text.startswith(fma.PREFIX) else ""
    path = Path(text[len(prefix):]).expanduser()
    if not path.is_dir():
        raise BenchError(f"--unlabeled-dir {text}: no such folder; give a folder of audio or an FMA root "
                         "(with fma_metadata/ and fma_large/ or fma_full/)")
    return prefix + str(path.resolve())


def run(args: argparse.Namespace) -> int:
    import sys
    import time
    from pathlib import Path

    from bench import plugins
    from bench.commands.common import check_out, progress_enabled
    from bench.config import DataRoots
    from bench.errors import BenchError
    from bench.experiments import reproduce

    t0 = time.perf_counter()
    tasks = plugins.tasks().resolve(args.tasks)
    if args.tasks.strip().lower() == "all":
        tasks = [t for t in reproduce.TASKS if t in tasks]
    unknown = [t for t in tasks if t not in reproduce.TASKS]
    if unknown:
        raise BenchError(f"--tasks: {', '.join(unknown)} is not a task of the paper's claims "
                         f"({', '.join(reproduce.TASKS)}); use `bench run` or `bench sweep` for other tasks")
    from bench.commands.common import parse_options, pretrain_seeds
    from bench.run import check_option_scopes

    options = parse_options(args.option)
    check_option_scopes(options, ["semisupcon", "simclr", "supervised", "random"])
    dirs = tuple(_unlabeled_dir(d) for d in args.unlabeled_dir or ())
    p = reproduce.plan(args.scale, tuple(tasks), pretrain_seeds(args) or None, protocol=args.protocol,
                       unlabeled_dirs=dirs, options=options,
                       fractions=reproduce.parse_fractions(args.fractions, reproduce.SCALES[args.scale].fractions),
                       conditions=args.conditions, official_batchnorm=args.official_batchnorm)
    from bench.launcher import launcher_from_args

    launcher = launcher_from_args(args)  # a bad --slurm-* value, or no submitit, is said before anything runs
    if args.plan:
        print(reproduce.describe(p))
        if launcher is not None:
            print("\n" + launcher.describe())
        return 0
    if args.scale == "demo":
        if args.data_root:
            raise BenchError("--scale demo runs on the generated demo data; drop --data-root, or use --scale paper")
        # the demo data whatever BENCH_DATA_ROOT or the config file say: demo numbers are never mixed with real ones
        roots = DataRoots(demo_size=p.demo_size or "small")
    else:
        roots = DataRoots.from_args(args.data_root)
        roots.check_tasks(plugins.tasks().names())
        missing = [t for t in tasks if roots.is_demo(t)]
        if missing:
            raise BenchError(f"--scale paper runs on the real datasets; no data root for {', '.join(missing)}. Give "
                             "--data-root DIR (or BENCH_DATA_ROOT, or data_root in the config file); see "
                             "docs/experiments.md. --scale demo runs on the generated demo data.")
    from bench.commands.common import apply_threads

    outcome = reproduce.run(p, roots, out=check_out(args.out or Path("bench-results") / f"reproduce-{args.scale}"),
                            device=args.device, progress=progress_enabled(args), started=t0,
                            jobs=parse_jobs(args.jobs), threads=args.threads or (apply_threads(None) if launcher is None else None),
                            launcher=launcher)
    print("\n".join(outcome.lines))
    print(f"Report: {outcome.files.get('report')} and {outcome.files.get('report_html')}", file=sys.stderr)
    return report_failures(outcome.failures, bool(outcome.records), "reproduction")
