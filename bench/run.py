"""The steps of one (encoder, task) pair, which the pair driver (:mod:`bench.pair`) chains for every command.


- :func:`prepare_encoder`: build an encoder, load its checkpoint or pretrain it;
- :func:`index_task`: index a task's splits once (items, classes, problems,
  data fingerprint);
- :func:`embed`: embeddings of some splits through the cache, optionally after
  an :class:`bench.extract.AudioTransform` (a corrupted test set);
- :func:`evaluate`: probes fitted per seed, each scoring the test split and
  any further test sets (conditions);
- :func:`make_records`: one JSON record per seed and condition, with its
  ``condition`` ("clean" by default) and ``variant`` (a readable label such as
  ``semisupcon[label_fraction=0.05]``), so variants never overwrite each other.

- :func:`make_task`: the one task factory: a task with its protocol's settings;
- :func:`guarded`: one part of a job run so that its failure is reported and
  the other parts go on.

The steps read the evaluation settings (:class:`bench.settings.EvalSettings`);
only :func:`prepare_encoder` reads what a command evaluates
(:class:`bench.settings.RunConfig`: the ``-O`` options, checkpoint, labels).
"""

from __future__ import annotations

import hashlib
import sys
import traceback
from functools import partial
from pathlib import Path
from typing import Any, Callable, ParamSpec, TypeVar

from bench import plugins
from bench.config import DataRoots
from bench.encoder import Encoder, Recipe, TrainableEncoder
from bench.errors import BenchError, shorten, write_error_log
from bench.extract import AudioTransform, Embeddings
from bench.settings import EvalSettings, Evaluation, IndexedTask, PreparedEncoder, RunConfig
from bench.task import SPLITS, Task

P = ParamSpec("P")
R = TypeVar("R")

#: option keys that tune the training recipe of a trainable encoder rather than build the encoder
#: (``seed`` stays an encoder option: it defines the initial weights, and the recipe follows it)
RECIPE_OPTIONS = tuple(k for k in Recipe.keys() if k != "seed")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def encoder_options_for(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of encoder ``name``: unscoped keys, and ``name:key`` keys (which win)."""
    out = {k: v for k, v in options.items() if ":" not in k}
    out.update({k.split(":", 1)[1]: v for k, v in options.items() if k.split(":", 1)[0] == name and ":" in k})
    return out


def check_option_scopes(options: dict[str, Any], encoders: list[str]) -> None:
    """Refuse ``-O NAME:key=...`` whose NAME is not an encoder of the run (a typo would be ignored)."""
    for key in options:
        scope = key.split(":", 1)[0] if ":" in key else None
        if scope is not None and scope not in encoders:
            import difflib

            close = difflib.get_close_matches(scope, encoders, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise BenchError(f"-O {key}=...: {scope!r} is not an encoder of this run ({', '.join(encoders)}).{hint}")


def variant_label(name: str, options: dict[str, Any]) -> str:
    """``name`` plus the options the user set, e.g. ``semisupcon[label_fraction=0.05]``."""
    if not options:
        return name
    return f"{name}[{','.join(f'{k}={_text(v)}' for k, v in sorted(options.items()))}]"


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(map(str, value))
    return str(value)


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(encoder constructor options, recipe options) of one encoder's ``-O`` options."""
    recipe = {k: v for k, v in options.items() if k in RECIPE_OPTIONS}
    return {k: v for k, v in options.items() if k not in RECIPE_OPTIONS}, recipe


def prepare_encoder(name: str, config: RunConfig, *, cache_dir: Path | None = None) -> PreparedEncoder:
    """Instantiate an encoder; load its checkpoint, or pretrain it if it is trainable and has none."""
    from bench import run_memo
    from bench.config import cache_dir as default_cache_dir
    from bench.weights import checkpoint_config, load_checkpoint, weights_hash

    settings = config.settings
    entry = plugins.encoders().get(name)
    user = encoder_options_for(name, config.encoder_options)
    options, recipe_options = split_options(user)
    if config.checkpoint:
        # the checkpoint says which options it was trained with; explicit options win
        saved_name, saved = checkpoint_config(config.checkpoint)
        factory = entry.load()
        if saved_name == name and saved and isinstance(factory, type) and issubclass(factory, Encoder):
            options = {**factory.options_from_config(saved), **options}
    encoder = entry.create(**options)
    if recipe_options and not isinstance(encoder, TrainableEncoder):
        raise BenchError(f"encoder {name!r} is not trainable: the recipe option(s) {sorted(recipe_options)} do not "
                         f"apply to it (scope them to a trainable encoder, e.g. -O semisupcon:{next(iter(recipe_options))}=...)")
    weights: dict[str, Any] = {}
    recipe: Recipe | None = None
    pools: dict[str, Any] | None = None
    if config.checkpoint:
        weights = {"checkpoint": str(config.checkpoint), **load_checkpoint(encoder, config.checkpoint)}
        log(f"[{name}] loaded checkpoint {config.checkpoint}")
    elif isinstance(encoder, TrainableEncoder):
        from bench.pretrain import ensure_pretrained
        from bench.pretrain.pools import plan_pools

        recipe = encoder.recipe().replace(**recipe_options)
        # planned once: the run memo's witness, the checkpoint key and the trainer all use this plan
        plan = plan_pools(encoder.label_spec(), recipe, settings.data_roots)
        if run_memo.enabled(settings):
            pools = run_memo.pools_of(encoder.label_spec(), recipe, plan.data_sources())
        path, extra = ensure_pretrained(encoder, data_roots=settings.data_roots,
                                        cache_dir=cache_dir or default_cache_dir(), device=settings.device,
                                        recipe=recipe, progress=settings.progress, plan=plan)
        weights = {"checkpoint": str(path), **extra}
        log(f"[{name}] using pretrained weights {path}")
    if config.pretrain_seed is not None:  # --pretrain-seeds: the records say which seed, rows pool them
        weights["seed"] = config.pretrain_seed
    encoder.to(settings.device).eval()
    variant = config.variants.get(name) or variant_label(name, user)
    return PreparedEncoder(entry, encoder, weights_hash(encoder), variant, user, weights, recipe, pools)


def limit_items(items: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` of ``items``: those whose track id hashes lowest (the same tracks whatever the order
    or the machine; spread over the split rather than its first files), kept in their order."""
    if len(items) <= limit:
        return items
    rank = sorted(range(len(items)), key=lambda i: (hashlib.sha256(str(items[i].track_id).encode()).hexdigest(), i))
    keep = set(rank[:limit])
    return [it for i, it in enumerate(items) if i in keep]


def index_task(task: Task, data_roots: DataRoots, limit: int | None = None) -> IndexedTask:
    """Index every split of ``task`` under its data root; an empty split is an error naming the task.

    ``limit``: keep at most that many tracks per split (:func:`limit_items`; ``bench run --limit``)."""
    from bench import snapshot

    root = data_roots.root(task)
    splits = {s: snapshot.items(task, s, root) for s in SPLITS}
    if limit is not None:
        for s in SPLITS:
            splits[s].items = limit_items(splits[s].items, limit)
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
    fingerprint = snapshot.fingerprint({s: splits[s].items for s in SPLITS}, root)
    return IndexedTask(task, root, data_roots.demo_data(task, root), splits, list(task.classes(root)), problems,
                    fingerprint)


def embed(prep: PreparedEncoder, data: IndexedTask, settings: EvalSettings, splits: tuple[str, ...] = SPLITS,
          transform: AudioTransform | None = None) -> tuple[dict[str, Embeddings], dict[str, dict[str, Any]]]:
    """Embeddings of ``splits`` through the cache (after ``transform``, when given) and each split's cache status."""
    from bench import embedding_cache as embcache
    from bench import decoder_messages, procs, protocols, shard

    store = embcache.EmbeddingCache.open(enabled=settings.cache)
    per_window = protocols.get(settings.protocol).window_splits(data.task)
    group = procs.current()
    # several processes (accelerate launch) share each split; only the main one gets the rows back
    if group.several and set(splits) & set(per_window):
        raise BenchError(f"protocol {settings.protocol!r} keeps every window's embedding, which extraction across "
                         "several processes does not do yet: run it in one process (without accelerate launch)")
    embed_split = partial(shard.embed_split_shared, group) if group.several else partial(shard.embed_split)
    embs, status = {}, {}
    with _weights_for(prep, data, settings) as weights:
        for s in splits:
            embs[s], status[s] = embed_split(
                store, prep.entry.name, prep.encoder, weights, data.task, s, data.splits[s].items, data.root,
                device=settings.device, batch_size=settings.batch_size, progress=settings.progress,
                transform=transform, **({"windows": True} if s in per_window else {}))
            if not group.is_main:
                continue
            embs[s].window_seconds = prep.encoder.window / prep.encoder.sample_rate
            if embs[s].skipped:
                log(f"[{data.task.name}] skipped {len(embs[s].skipped)} unreadable file(s) in {s}"
                    + (f" ({transform.id})" if transform else "") + ":")
                for sk in embs[s].skipped[:5]:
                    log(f"  {sk['path']}: {sk['reason']}")
            decoder_messages.report_kept(data.task.name, s, embs[s].warnings)
            if len(embs[s].items) == 0:
                raise BenchError(f"task {data.task.name}: no readable audio in the {s} split under {data.root}")
    return embs, status


def _weights_for(prep: PreparedEncoder, data: IndexedTask, settings: EvalSettings) -> Any:
    """The weights hash the embeddings are keyed by, within the encoder state they are made with: the
    pretrained one, or with ``--official-batchnorm`` the BatchNorm statistics of the task's train windows
    (:mod:`bench.batchnorm`)."""
    import contextlib

    if not settings.official_batchnorm:
        return contextlib.nullcontext(prep.weights_hash)
    from bench import batchnorm

    return batchnorm.adapted(prep, data, device=settings.device, batch_size=settings.batch_size,
                             progress=settings.progress)


def evaluate(data: IndexedTask, embs: dict[str, Embeddings], settings: EvalSettings, seed: int,
             conditions: dict[str, Embeddings] | None = None) -> Evaluation:
    """Fit the probe of one seed on train/valid and score the test split and every condition's test set.

    Through the probe cache (:mod:`bench.probe_cache`): the same embeddings,
    probe settings, protocol and seed give the stored result without
    training. Embeddings with no cache key (made outside :func:`embed`) are
    never cached.
    """
    from bench import probe_cache, protocols

    conditions = conditions or {}
    pconf, grid = protocols.get(settings.protocol).probe_plan(data.task, settings.device, settings.probe_grid,
                                                            embs["train"].window_seconds)
    (sel, metrics, ci), status = probe_cache.cached(
        lambda: _probe_and_score(data, embs, seed, conditions, pconf, grid), task=data.task, classes=data.classes,
        embeddings=embs, conditions=conditions, probe=pconf.to_dict(), grid=grid, seed=seed,
        protocol=settings.protocol, enabled=settings.cache)
    return Evaluation(seed, sel, metrics, ci, status)


def _probe_and_score(data: IndexedTask, embs: dict[str, Embeddings], seed: int, conditions: dict[str, Embeddings],
                     pconf: Any, grid: list[tuple[float, float]]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The probe of one seed chosen on validation, and the metrics and intervals of every test set."""
    from bench import confidence
    from bench.probe import select_probe, targets
    from bench.probe_data import probe_input

    task, n = data.task, len(data.classes)
    y = {s: targets([it.label for it in embs[s].items], n, task.kind) for s in SPLITS}
    sel = select_probe(probe_input(embs["train"]), y["train"], probe_input(embs["valid"]), y["valid"],
                       probe_input(embs["test"]), kind=task.kind, n_classes=n, config=pconf,
                       grid=grid, seed=seed, score_fn=task.score,
                       metric=task.primary_metric, extra_tests={c: probe_input(e) for c, e in conditions.items()})
    scores = {"clean": (y["test"], sel.result.test_scores)}
    for cond, e in conditions.items():
        scores[cond] = (targets([it.label for it in e.items], n, task.kind), sel.result.extra_scores[cond])
    metrics = {c: task.score(yt, sc) for c, (yt, sc) in scores.items()}
    ci = {c: confidence.bootstrap(task.score, yt, sc, task.primary_metric) for c, (yt, sc) in scores.items()}
    sel.valid_figures = _valid_figures(data, embs["valid"], sel.result.valid_scores)
    return sel, metrics, ci


def make_records(prep: PreparedEncoder, data: IndexedTask, embs: dict[str, Embeddings],
                 status: dict[str, dict[str, Any]], ev: Evaluation, settings: EvalSettings,
                 conditions: dict[str, Embeddings] | None = None, seconds: float = 0.0) -> list[dict[str, Any]]:
    """One record per condition of one evaluation (the clean test split first)."""
    from bench import protocols, results
    from bench.metrics import chance_scores

    conditions = conditions or {}
    task, res, sel = data.task, ev.selected.result, ev.selected
    proto = protocols.get(settings.protocol)
    probe_conf, _ = proto.probe_plan(task, settings.device, settings.probe_grid, embs["train"].window_seconds)
    # stored with the probe; an entry of the probe cache written before they were: computed here
    valid_metrics, valid_ci = sel.valid_figures or _valid_figures(data, embs["valid"], res.valid_scores) or (None, None)
    out = []
    for cond, metrics in ev.metrics.items():
        test = embs["test"] if cond == "clean" else conditions[cond]
        rec = results.new_record(
            encoder=prep.entry.name,
            variant=prep.variant,
            condition=cond,
            protocol=proto.name,
            **({"official_batchnorm": True} if settings.official_batchnorm else {}),
            task=task.name,
            seed=ev.seed,
            primary_metric=task.primary_metric,
            metrics=metrics,
            confidence=ev.confidence[cond],
            # the selected probe on the validation split (the same for every condition): what a sweep ranks
            # recipes by without looking at test (bench sweep --rank-on valid)
            valid_metrics=valid_metrics,
            valid_confidence=valid_ci,
            demo_data=data.demo,
            encoder_config=prep.encoder.config(),
            encoder_options=prep.options,
            weights_hash=prep.weights_hash,
            checkpoint=prep.weights.get("checkpoint"),
            pretraining={k: v for k, v in prep.weights.items() if k != "checkpoint"} or None,
            task_settings=task.settings,
            task_kind=task.kind,
            n_classes=len(data.classes),
            chance=chance_scores(task, [it.label for it in test.items], len(data.classes)),
            data={
                "root": str(data.root),
                "fingerprint": data.fingerprint,
                "tracks": {**{s: len(embs[s].items) for s in SPLITS}, "test": len(test.items)},
                "windows": {**{s: embs[s].windows for s in SPLITS}, "test": test.windows},
                "skipped": {**{s: embs[s].skipped for s in SPLITS}, "test": test.skipped},
                "skipped_count": sum(len(embs[s].skipped) for s in ("train", "valid")) + len(test.skipped),
                "decoder_warnings": {**{s: embs[s].warnings for s in SPLITS}, "test": test.warnings},
                "index_problems": data.problems,
                "index_problem_count": sum(len(v) for v in data.problems.values()),
                "split_fingerprints": {s: status[s].get("fingerprint") for s in SPLITS},
            },
            cache={s: status[s]["status"] for s in SPLITS},
            probe={**probe_conf.to_dict(), "lr": sel.lr, "weight_decay": sel.weight_decay,
                   "best_epoch": res.best_epoch, "epochs": res.epochs, "valid_loss": res.valid_loss,
                   "grid_spec": proto.grid_description(settings.probe_grid),
                   "selection_metric": sel.selection_metric, "grid": sel.grid, "cache": ev.cache},
            device=settings.device,
            **({"limit": settings.limit} if settings.limit is not None else {}),
            plugins={
                "encoder": {"name": prep.entry.name, "plugin": prep.entry.plugin.name,
                            "distribution": prep.entry.plugin.distribution, "version": prep.entry.plugin.version},
                "task": _task_provenance(task.name),
            },
            versions=results.versions(),
            timings={"extract_s": round(sum(e.seconds for e in embs.values()), 3), "probe_s": round(res.seconds, 3),
                     "total_s": round(seconds, 3)},
        )
        out.append(rec)
    return out


def _valid_figures(data: IndexedTask, valid: Embeddings,
                   scores: Any) -> tuple[dict[str, float], dict[str, Any]] | None:
    """Metrics and bootstrap interval of the selected probe's validation scores (None when the probe result
    has none, or they do not match the validation tracks)."""
    from bench import confidence
    from bench.metrics import NonFiniteScores
    from bench.probe import targets

    task = data.task
    if scores is None or len(scores) != len(valid.items):
        return None
    y = targets([it.label for it in valid.items], len(data.classes), task.kind)
    try:
        return task.score(y, scores), confidence.bootstrap(task.score, y, scores, task.primary_metric)
    except NonFiniteScores:  # a diverged probe's validation scores: nothing to rank by (its test is refused too)
        return None


def make_task(name: str, protocol: str = "bench") -> Task:
    """Task ``name`` with the settings the protocol gives it (bench.protocols)."""
    from bench import protocols

    entry = plugins.tasks().get(name)
    task = entry.create()
    settings = protocols.get(protocol).task_settings(task)
    return entry.create(**settings) if settings else task


def guarded(what: str, failures: list[str], out: Path, fn: Callable[P, R], *args: P.args,
            **kwargs: P.kwargs) -> R | None:
    """Run one part of a job; on failure record it (message, and the traceback of a non-bench error) and go on."""
    try:
        return fn(*args, **kwargs)
    except BenchError as exc:
        failures.append(f"{what}: {exc}")
        log(f"error: {what}: {exc}")
    except Exception as exc:  # a plugin's own bug: named, logged with its traceback, the other parts go on
        where = write_error_log(out, what, traceback.format_exc())  # never raises (a full disk)
        failures.append(f"{what}: {type(exc).__name__}: {shorten(exc)} ({where})")
        log(f"error: {what}: {type(exc).__name__}: {shorten(exc)} ({where})")
    return None


def _task_provenance(name: str) -> dict[str, str]:
    e = plugins.tasks().get(name)
    return {"name": name, "plugin": e.plugin.name, "distribution": e.plugin.distribution, "version": e.plugin.version}
