"""The main job: encoders x tasks -> embeddings -> probes -> records -> leaderboard.

Each (encoder, task) pair runs on its own: a task whose data is missing or an
encoder that breaks its contract is reported with its name and what to do, and
the other pairs go on. Records are written as soon as each pair finishes, so
nothing computed is lost if a later pair fails.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import plugins
from bench.config import DataRoots
from bench.errors import BenchError
from bench.task import SPLITS


@dataclass
class RunConfig:
    encoders: list[str]
    tasks: list[str]
    out: Path
    data_roots: DataRoots
    device: str = "cpu"
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 32
    checkpoint: str | None = None
    progress: bool = True
    encoder_options: dict[str, Any] = field(default_factory=dict)
    #: lr x weight-decay grid chosen on validation: "fast", "default" or "lr=..;wd=.." (bench.probe.parse_grid)
    probe_grid: str = "default"
    #: read and write the embedding cache (bench.cache); False recomputes everything
    cache: bool = True


@dataclass
class RunOutcome:
    records: list[dict[str, Any]]
    failures: list[str]
    out: Path
    files: dict[str, Path] = field(default_factory=dict)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resolve_device(device: str | None) -> str:
    if device and device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def prepare_encoder(name: str, config: RunConfig):
    """Instantiate an encoder; load its checkpoint or pretrain it if it needs weights."""
    from bench.encoder import load_checkpoint

    entry = plugins.encoders().get(name)
    options = encoder_options_for(name, config.encoder_options)
    if config.checkpoint:
        # the checkpoint says which options it was trained with; explicit options win
        from bench.encoder import checkpoint_config

        from_ckpt = getattr(entry.load(), "options_from_config", None)
        saved_name, saved = checkpoint_config(config.checkpoint)
        if callable(from_ckpt) and saved_name == name and saved:
            options = {**from_ckpt(saved), **options}
    encoder = entry.create(**options)
    if config.checkpoint:
        load_checkpoint(encoder, config.checkpoint)
        log(f"[{name}] loaded checkpoint {config.checkpoint}")
    elif encoder.trainable:
        from bench import pretrain

        path = pretrain.ensure_pretrained(encoder, data_roots=config.data_roots, cache_dir=_cache(),
                                          device=config.device, progress=config.progress)
        log(f"[{name}] using pretrained weights {path}")
    return entry, encoder


def encoder_options_for(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of encoder ``name``: unscoped keys, and ``name:key`` keys (which win)."""
    out = {k: v for k, v in options.items() if ":" not in k}
    out.update({k.split(":", 1)[1]: v for k, v in options.items() if k.split(":", 1)[0] == name and ":" in k})
    return out


def _cache() -> Path:
    from bench.config import cache_dir

    return cache_dir()


def run(config: RunConfig) -> RunOutcome:
    from bench import leaderboard

    config.out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    task_objs = {}
    for tname in config.tasks:
        try:
            task_objs[tname] = plugins.tasks().get(tname).create()
        except BenchError as exc:
            failures.append(f"task {tname}: {exc}")
            log(f"error: task {tname}: {exc}")
    for ename in config.encoders:
        try:
            entry, encoder = prepare_encoder(ename, config)
            encoder.to(config.device).eval()
        except BenchError as exc:
            failures.append(f"encoder {ename}: {exc}")
            log(f"error: encoder {ename}: {exc}")
            continue
        for tname, task in task_objs.items():
            try:
                recs = run_pair(entry, encoder, task, config)
                records.extend(recs)
            except BenchError as exc:
                failures.append(f"{ename} x {tname}: {exc}")
                log(f"error: {ename} x {tname}: {exc}")
    outcome = RunOutcome(records, failures, config.out)
    if records:
        outcome.files = leaderboard.write(records, config.out)
        print(leaderboard.render(records))
    log(f"Records written to {config.out / 'records'}")
    if outcome.files:
        log(f"Leaderboard: {outcome.files['markdown']} (also .csv, .json, .html, .png)")
    return outcome


def run_pair(entry, encoder, task, config: RunConfig) -> list[dict[str, Any]]:
    """Extract, probe and score one encoder on one task; write its records."""
    from bench import cache as embcache
    from bench import confidence, results
    from bench.encoder import weights_hash
    from bench.probe import ProbeConfig, parse_grid, select_probe, targets

    t_start = time.perf_counter()
    root = config.data_roots.root(task)
    demo = config.data_roots.is_demo(task.name)
    splits = {s: task.items(s, root) for s in SPLITS}
    classes = task.classes(root)
    problems = {s: [str(p) for p in splits[s].problems] for s in SPLITS}
    n_problems = sum(len(v) for v in problems.values())
    if n_problems:
        log(f"[{task.name}] {n_problems} problem(s) while indexing the data (details in the records):")
        for s in SPLITS:
            for p in problems[s][:5]:
                log(f"  {p}")
            if len(problems[s]) > 5:
                log(f"  ... and {len(problems[s]) - 5} more in {s}")
    for s in SPLITS:
        if len(splits[s]) == 0:
            raise BenchError(f"task {task.name}: the {s} split is empty under {root}. {task.data_help()}")

    whash = weights_hash(encoder)
    grid = parse_grid(config.probe_grid)
    store = embcache.EmbeddingCache.open(enabled=config.cache)
    embs, cache_status = {}, {}
    for s in SPLITS:
        embs[s], cache_status[s] = embcache.embed_split(
            store, entry.name, encoder, whash, task, s, splits[s].items, root, device=config.device,
            batch_size=config.batch_size, progress=config.progress)
        if embs[s].skipped:
            log(f"[{task.name}] skipped {len(embs[s].skipped)} unreadable file(s) in {s}:")
            for sk in embs[s].skipped[:5]:
                log(f"  {sk['path']}: {sk['reason']}")
        if len(embs[s].items) == 0:
            raise BenchError(f"task {task.name}: no readable audio in the {s} split under {root}")

    n_classes = len(classes)
    y = {s: targets([it.label for it in embs[s].items], n_classes, task.kind) for s in SPLITS}
    probe_conf = ProbeConfig(head=task.probe, device=config.device)
    fingerprint = results.data_fingerprint({s: splits[s].items for s in SPLITS}, root)
    extract_s = sum(e.seconds for e in embs.values())
    out = []
    for seed in config.seeds:
        sel = select_probe(embs["train"].X, y["train"], embs["valid"].X, y["valid"], embs["test"].X,
                           kind=task.kind, n_classes=n_classes, config=probe_conf, grid=grid, seed=seed,
                           score_fn=task.score, metric=task.primary_metric)
        res = sel.result
        metrics = task.score(y["test"], res.test_scores)
        ci = confidence.bootstrap(task.score, y["test"], res.test_scores, task.primary_metric)
        rec = results.new_record(
            encoder=encoder.name if encoder.name == entry.name else entry.name,
            task=task.name,
            seed=seed,
            primary_metric=task.primary_metric,
            metrics=metrics,
            confidence=ci,
            demo_data=demo,
            encoder_config=encoder.config(),
            weights_hash=whash,
            checkpoint=config.checkpoint,
            task_settings=task.settings,
            task_kind=task.kind,
            n_classes=n_classes,
            data={
                "root": str(root),
                "fingerprint": fingerprint,
                "tracks": {s: len(embs[s].items) for s in SPLITS},
                "windows": {s: embs[s].windows for s in SPLITS},
                "skipped": {s: embs[s].skipped for s in SPLITS},
                "skipped_count": sum(len(embs[s].skipped) for s in SPLITS),
                "index_problems": problems,
                "index_problem_count": n_problems,
                "split_fingerprints": {s: cache_status[s].get("fingerprint") for s in SPLITS},
            },
            cache={s: cache_status[s]["status"] for s in SPLITS},
            probe={**probe_conf.to_dict(), "lr": sel.lr, "weight_decay": sel.weight_decay,
                   "best_epoch": res.best_epoch, "epochs": res.epochs, "valid_loss": res.valid_loss,
                   "grid_spec": config.probe_grid, "selection_metric": sel.selection_metric, "grid": sel.grid},
            device=config.device,
            plugins={
                "encoder": {"name": entry.name, "plugin": entry.plugin.name,
                            "distribution": entry.plugin.distribution, "version": entry.plugin.version},
                "task": _task_provenance(task.name),
            },
            versions=results.versions(),
            timings={"extract_s": round(extract_s, 3), "probe_s": round(res.seconds, 3),
                     "total_s": round(time.perf_counter() - t_start, 3)},
        )
        results.write_record(rec, config.out / "records")
        out.append(rec)
        log(f"[{entry.name} x {task.name} seed {seed}] " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            + f" ({task.primary_metric} 95% CI [{ci['lo']}, {ci['hi']}]; lr {sel.lr:g}, wd {sel.weight_decay:g})")
    return out


def _task_provenance(name: str) -> dict[str, str]:
    e = plugins.tasks().get(name)
    return {"name": name, "plugin": e.plugin.name, "distribution": e.plugin.distribution, "version": e.plugin.version}
