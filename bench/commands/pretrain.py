"""``bench pretrain``: train a trainable encoder on the pools of the data present.

Single process::

    bench pretrain --encoder semisupcon --preset demo

Several processes (DDP; the same command, launched by Accelerate)::

    accelerate launch --num_processes 4 -m bench.cli pretrain --encoder semisupcon --preset paper
    accelerate launch --num_processes 2 --cpu -m bench.cli pretrain --encoder simclr   # CPU, gloo
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.commands.common import (add_data_root, add_device, add_encoder_options, add_threads, data_roots,
                                   parse_options)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pretrain a trainable encoder (semisupcon, simclr, supervised, or a plugin's) on labeled + unlabeled pools",
        description=(
            "Pretrain a trainable encoder with Accelerate. With no explicit pool it uses the train splits of the "
            "tasks whose data is present (the demo data when no data root is set) and says which. With no --out "
            "the checkpoint goes to the cache (<cache>/checkpoints/<encoder>-<hash>.safetensors), where `bench run` "
            "finds it. Several processes: `accelerate launch --num_processes N -m bench.cli pretrain ...` (add "
            "--cpu for CPU/gloo). A run folder keeps train-state.pt, metrics.jsonl and run.json; rerunning the "
            "same command resumes (Ctrl-C saves the training state first), and a finished checkpoint in the cache is "
            "reused, as `bench run` does (the same lock, so the two never train one run folder at once). "
            "SampleCNN objective options: -O tau=0.1, -O threshold=1, -O weighted=true."
        ),
    )
    p.add_argument("--encoder", "-e", required=True, help="a trainable encoder (see `bench list`)")
    p.add_argument("--preset", default=None, help="SampleCNN encoders: demo (CPU, minutes; their default) or "
                   "paper (method.md); same as -O preset=NAME")
    p.add_argument("--seed", type=int, default=None, help="seed of the initial weights and of the batches "
                   "(SampleCNN default: 123); same as -O seed=N")
    add_encoder_options(p)
    g = p.add_argument_group("objective of the SampleCNN encoders (part of the encoder config; shortcuts for -O)")
    g.add_argument("--label-task", default=None,
                   help="tasks whose train splits are the labeled pool, comma-separated (one label space); "
                        "default: the preset's (mtat for paper, nsynth_pitch,gtzan for demo), cut to the tasks "
                        "whose data is present")
    g.add_argument("--label-fraction", type=float, default=None, help="p_s: fraction of the labeled pool kept")
    g.add_argument("--labeled-share", type=float, default=None, help="b_s: share of each batch that is labeled")
    # SampleCNN-only objective flags are -O options now (-O tau=0.2, -O threshold=2, -O weighted=true);
    # the old flags stay hidden, to say so
    for flag in REMOVED_FLAGS:
        g.add_argument(flag, default=None, nargs="?", const="true", help=argparse.SUPPRESS)
    r = p.add_argument_group("recipe (any trainable encoder; also as -O KEY=VALUE)")
    r.add_argument("--steps", type=int, default=None, help="training steps (default: the encoder's)")
    r.add_argument("--batch-size", type=int, default=None, help="clips per global batch")
    r.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    r.add_argument("--views", type=int, default=None, help="views per clip")
    r.add_argument("--unlabeled-dir", action="append", default=None, metavar="DIR",
                   help="folder of audio (recursive) for the unlabeled pool; repeatable (then no task joins the "
                        "unlabeled pool unless named with --unlabeled-task)")
    r.add_argument("--unlabeled-task", action="append", default=None, metavar="TASK",
                   help="task whose train split joins the unlabeled pool; repeatable or comma-separated "
                        "(default: every task whose data is present)")
    r.add_argument("--labeled-mix", choices=("step", "row"), default=None,
                   help="several labeled tasks: the labeled clips of a step come from one task drawn per step "
                        "(step, the default: label positives exist only within a task) or each clip draws "
                        "its task (row)")
    r.add_argument("--labeled-sampler", choices=("uniform", "balanced"), default=None,
                   help="how the labeled clips of a batch are drawn: uniform from the labeled pool (default) or "
                        "balanced: --per-class clips of each of as many classes as that allows (label positives "
                        "in every batch); same as -O labeled_sampler=NAME")
    r.add_argument("--per-class", type=int, default=None, metavar="M",
                   help="clips of each class in a balanced batch (default 4); same as -O per_class=M")
    r.add_argument("--no-augment", action="store_true", help="train without the augmentation chain")
    r.add_argument("--severity", type=float, default=None, help="augmentation severity")
    r.add_argument("--checkpoint-every", type=int, default=None, help="steps between training checkpoints")
    r.add_argument("--log-every", type=int, default=None, help="steps between metrics-log lines")
    o = p.add_argument_group("where and how")
    add_data_root(o)
    o.add_argument("--out", default=None, help="final checkpoint path (.safetensors); default: in the cache")
    o.add_argument("--run-dir", default=None, help="run folder (training state, metrics log); default: beside --out")
    o.add_argument("--no-resume", action="store_true", help="start over even if the run folder has a training state or the cache a "
                   "finished checkpoint")
    add_device(o)
    o.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU only)")
    o.add_argument("--compile", action="store_true", help="torch.compile the network (GPU only)")
    o.add_argument("--no-sync-bn", action="store_true", help="per-process BatchNorm statistics in DDP")
    add_threads(o)
    o.add_argument("--quiet", action="store_true", help="no messages or progress bar")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


#: flags of the SampleCNN encoders' objective that became ``-O`` options (the option each one is now)
REMOVED_FLAGS = {"--tau": "tau", "--threshold": "threshold", "--weighted": "weighted"}


def _given(pairs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return {k: v for k, v in pairs if v is not None}


def run(args: argparse.Namespace) -> int:
    import json

    from accelerate import PartialState

    from bench import plugins
    from bench.config import cache_dir
    from bench.device import resolve_device
    from bench.encoder import TrainableEncoder
    from bench.errors import BenchError
    from bench.pretrain import ensure_pretrained
    from bench.run import split_options

    for flag, key in REMOVED_FLAGS.items():
        value = getattr(args, flag.lstrip("-"))
        if value is not None:
            raise BenchError(f"bench pretrain {flag} is now an encoder option: use -O {key}={value} "
                             f"(e.g. -O tau=0.2, -O threshold=2, -O weighted=true)")
    options, recipe_options = split_options(parse_options(args.option))
    options.update(_given((("preset", args.preset), ("seed", args.seed), ("label_task", args.label_task),
                           ("label_fraction", args.label_fraction), ("labeled_share", args.labeled_share))))
    recipe_options.update(_given((("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr),
                                  ("views", args.views), ("severity", args.severity),
                                  ("checkpoint_every", args.checkpoint_every), ("log_every", args.log_every),
                                  ("labeled_mix", args.labeled_mix), ("labeled_sampler", args.labeled_sampler),
                                  ("per_class", args.per_class))))
    if args.no_augment:
        recipe_options["augment"] = False
    if args.unlabeled_dir:
        recipe_options["unlabeled_dirs"] = tuple(str(Path(d).expanduser().resolve()) for d in args.unlabeled_dir)
        recipe_options.setdefault("unlabeled_tasks", ",".join(args.unlabeled_task or ()))
    elif args.unlabeled_task:
        recipe_options["unlabeled_tasks"] = ",".join(args.unlabeled_task)
    device = resolve_device(args.device)
    encoder = plugins.get_encoder(args.encoder, **options)
    if not isinstance(encoder, TrainableEncoder):
        raise BenchError(f"encoder {args.encoder!r} is frozen (not a bench.encoder.TrainableEncoder) and cannot be "
                         "pretrained; the built-in trainable encoders are semisupcon, simclr and supervised")
    recipe = encoder.recipe().replace(**recipe_options)
    roots = data_roots(args)
    roots.check_tasks(plugins.tasks().names())
    # the same locked path as `bench run`: a cached checkpoint is reused, a run folder is trained by one process
    out, meta = ensure_pretrained(encoder, data_roots=roots, cache_dir=cache_dir(), device=device, quiet=args.quiet,
                                  recipe=recipe, progress=not args.no_progress,
                                  out=Path(args.out) if args.out else None,
                                  run_dir=Path(args.run_dir) if args.run_dir else None, resume=not args.no_resume,
                                  mixed_precision="bf16" if args.bf16 else "no", compile=args.compile,
                                  sync_batchnorm=not args.no_sync_bn)
    if PartialState().is_main_process:
        run_dir = Path(meta.get("run_dir") or out.with_suffix(".run"))
        record = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
        held = record.get("held_out_check") or {"excluded_count": meta.get("held_out_excluded"), "checked": {}}
        loss = meta.get("final_loss")
        print(f"pretrained {encoder.name} for {meta.get('steps')} steps, final loss "
              f"{'-' if loss is None else f'{loss:.4f}'}; label-sharing pairs a batch (mean): "
              f"{meta.get('label_positive_pairs') or 0:.1f}")
        es = meta.get("early_stopping")
        if es:
            stop = f"stopped at step {es['stopped_at']}" if es["stopped_at"] is not None else "reached the step cap"
            kept = (f"weights of step {es['best_step']} (validation loss {es['best_loss']:.4f}"
                    if es["best_step"] is not None else "last weights (no finite validation loss")
            print(f"early stopping: {stop}; {kept}, {es['valid_tracks_decoded']} valid tracks)")
        print(f"valid/test tracks excluded from the pools: {held['excluded_count']} "
              f"(tasks checked: {', '.join(held['checked']) or 'none'})")
        print(f"checkpoint: {out}\nrun folder: {run_dir} (metrics.jsonl, run.json: pools, recipe, held-out check)")
    return 0
