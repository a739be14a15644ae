"""The pair driver: one encoder on one task, for every command (``run``, ``robustness``, ``sweep``, ``reproduce``).

:func:`evaluate_pair` chains the run steps (:mod:`bench.run`): the task's
splits are indexed (:func:`bench.run.index_task`), the clean splits embedded
once (:func:`bench.run.embed`), each corruption condition's test audio
corrupted and embedded under its own cache key (:func:`corruption_transform`),
the probe of each seed fitted on clean embeddings once and scored on every
test set (:func:`bench.run.evaluate`, through the probe cache), and one record
written per seed and condition (:func:`bench.run.make_records`); a corrupted
record carries the paired drop (:func:`bench.robustness.paired_drop`). With
``own_heads``, an encoder trained with a head on this task is also scored with
that head (:mod:`bench.own_head`), a row ``<variant> (own head)``.

Every command builds its tasks with :func:`make_tasks` (:func:`bench.run.make_task`:
the protocol's task settings always apply).

Reuse of a finished pair, both paths here:

- **by request** (:func:`reuse_by_request`, :mod:`bench.run_memo`): ``bench
  run`` looks a pair up before any encoder is built, without torch. The probe
  cache's key needs the weights hash, which needs the encoder's weights in
  memory, so the key chain cannot serve a warm rerun without torch;
- **by record** (:func:`reusable_records`): the experiment commands, whose
  records carry fields the request memo does not key (corruption tokens, sweep
  tags), reuse the records already in ``--out`` that match the prepared
  encoder's weights, the data, the probe settings and the corruption.

``EvalSettings.cache=False`` (``--no-cache``) recomputes everything.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from bench.corruptions import CLEAN, Condition, track_seed
from bench.errors import BenchError
from bench.extract import AudioTransform, Embeddings
from bench.run import embed, encoder_options_for, guarded, index_task, log, make_records, make_task
from bench.run import variant_label
from bench.settings import EvalSettings, Evaluation, IndexedTask, PreparedEncoder, RunConfig
from bench.task import Task

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


def make_tasks(names: Sequence[str], protocol: str, failures: list[str], out: Path) -> dict[str, Task]:
    """The tasks ``names`` with the settings of ``protocol`` (:func:`bench.run.make_task`); one that cannot be
    created is reported in ``failures`` and left out."""
    tasks: dict[str, Task] = {}
    for name in names:
        task = guarded(f"task {name}", failures, out, make_task, name, protocol)
        if task is not None:
            tasks[name] = task
    return tasks


def corruption_transform(cond: Condition, seed: int) -> AudioTransform:
    """The extraction transform of a condition: each track corrupted with its own seed.

    Its id is :meth:`Condition.cache_token` (condition, algorithm version,
    library versions, the seed where the corruption draws random numbers), so
    corrupted embeddings are cached under their own key and never confused
    with another seed's or another pedalboard's.
    """

    def fn(x: np.ndarray, sample_rate: int, track_id: str) -> np.ndarray:
        return cond.apply(x, sample_rate, seed=track_seed(seed, track_id))

    return AudioTransform(cond.cache_token(seed), fn)


def reuse_by_request(name: str, task: Task, config: RunConfig) -> tuple[IndexedTask, list[dict[str, Any]]]:
    """(the task indexed, the records of a finished identical request written again; [] when there is none)."""
    from bench import results, run_memo

    settings = config.settings
    user = encoder_options_for(name, config.encoder_options)
    data = index_task(task, settings.data_roots, settings.limit)
    records = None if settings.log_predictions else run_memo.lookup(name, task, config, data, user)
    if not records:
        return data, []
    for rec in records:
        results.write_record(rec, settings.out / "records")
    variant = config.variants.get(name) or variant_label(name, user)
    log(f"[{variant} x {task.name}] reusing {len(records)} record(s) of the same run (same request, data, "
        "weights and code: bench.run_memo)")
    skipped = (records[0].get("data") or {}).get("skipped_count") or 0
    if skipped:
        log(f"[{task.name}] {skipped} file(s) were skipped as unreadable when these records were made (listed in "
            "the records' data.skipped)")
    return data, records


def memo_applies(name: str, settings: EvalSettings) -> bool:
    """Whether encoder ``name``'s pairs are kept by request (:func:`bench.run_memo.applies`); a plugin that
    does not even import is not, and :func:`bench.run.prepare_encoder` reports it."""
    from bench import run_memo

    if not run_memo.enabled(settings):
        return False
    try:
        return run_memo.applies(name)
    except Exception:
        return False


def _json(value: object) -> Any:
    """``value`` as it reads back from a record (tuples as lists, odd types as text)."""
    return json.loads(json.dumps(value, default=str))


#: probe fields a record holds that are chosen or measured by the fit, not asked for (lr and wd are the
#: grid's choice when the protocol searches a grid; the grid itself is ``grid_spec``)
_FITTED = ("lr", "weight_decay", "best_epoch", "epochs", "valid_loss", "grid", "grid_spec", "selection_metric",
           "cache")


def _matches(rec: dict[str, Any], prep: PreparedEncoder, data: IndexedTask, settings: EvalSettings,
             token: str | None) -> bool:
    """Would evaluating now give this record? Same protocol, weights, encoder config, data, task settings,
    probe configuration (the protocol's, less what the grid chose) and grid, and corruption (its cache token);
    the record's own schema."""
    from bench import protocols
    from bench.results import SCHEMA_VERSION

    proto = protocols.get(settings.protocol)
    conf, _ = proto.probe_plan(data.task, settings.device, settings.probe_grid,
                               prep.encoder.window / prep.encoder.sample_rate)
    fitted = proto.uses_grid or bool(proto.lr_sweep)  # the lr (and wd) were chosen on valid, not set
    wanted = {k: v for k, v in _json(conf.to_dict()).items() if not (fitted and k in _FITTED)}
    probe = rec.get("probe") or {}
    grid_spec = proto.grid_description(settings.probe_grid)
    return (rec.get("schema_version") == SCHEMA_VERSION
            and rec.get("protocol", "bench") == proto.name
            and rec.get("weights_hash") == prep.weights_hash
            and rec.get("encoder_config") == _json(prep.encoder.config())
            and (rec.get("data") or {}).get("fingerprint") == data.fingerprint
            and rec.get("task_settings") == _json(data.task.settings)
            and all(probe.get(k) == v for k, v in wanted.items())
            and probe.get("grid_spec") == grid_spec
            and (rec.get("corruption") or {}).get("token") == token
            and rec.get("limit") == settings.limit
            and (rec.get("pretraining") or {}).get("seed") == prep.weights.get("seed"))


def reusable_records(prep: PreparedEncoder, data: IndexedTask, settings: EvalSettings,
                     tokens: dict[str, str | None], extra: dict[str, Any] | None = None) -> list[dict[str, Any]] | None:
    """The records of every seed x condition already in ``settings.out``, if all match this evaluation; else None.

    ``tokens``: condition id -> its cache token (None for clean). ``extra``:
    fields the records must hold with these values (e.g. ``sweep``).
    """
    from bench.results import record_name

    if not settings.cache or settings.log_predictions:
        return None
    out = []
    for seed in settings.seeds:
        for cid, token in tokens.items():
            stub = {"variant": prep.variant, "encoder": prep.entry.name, "task": data.task.name, "condition": cid,
                    "seed": seed, "pretraining": {"seed": prep.weights.get("seed")}}
            path = settings.out / "records" / record_name(stub)
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            if not _matches(rec, prep, data, settings, token):
                return None
            if any(rec.get(k) != _json(v) for k, v in (extra or {}).items()):
                return None
            rec["_file"] = str(path)
            out.append(rec)
    return out


def _drop(task: Task, clean: Embeddings, corrupted: Embeddings, clean_scores: np.ndarray,
          corrupted_scores: np.ndarray, n_classes: int) -> dict[str, Any]:
    """The paired drop of one probe on the test tracks both test sets kept."""
    from bench.probe import targets
    from bench.robustness import common_tracks, paired_drop

    ci, ki = common_tracks([it.track_id for it in clean.items], [it.track_id for it in corrupted.items])
    if not len(ci):
        return {"metric": task.primary_metric, "drop": None, "n_tracks": 0,
                "method": "no test track survived the corruption"}
    y = targets([clean.items[i].label for i in ci], n_classes, task.kind)
    return paired_drop(task.score, y, clean_scores[ci], corrupted_scores[ki], task.primary_metric,
                       track_ids=[clean.items[i].track_id for i in ci])


def evaluate_pair(prep: PreparedEncoder, task: Task, config: RunConfig, conditions: Sequence[Condition] = (),
                  corruption_seed: int = 0, failures: list[str] | None = None,
                  tags: dict[str, Any] | None = None, data: IndexedTask | None = None,
                  own_heads: bool = False) -> list[dict[str, Any]]:
    """Records of one encoder on one task: clean, and one per condition (per probe seed); written to ``--out``.

    A condition whose corruption fails on every test file is reported in
    ``failures`` and left out; one that fails on some files is scored on the
    rest (the records count the skipped files). ``tags``: extra fields added
    to every record (e.g. the swept options). ``data``: the task already
    indexed (by :func:`reuse_by_request`). ``own_heads`` (``bench run``): also
    the own-head row, and the pair is kept by request (:mod:`bench.run_memo`)
    instead of being matched against the records in ``--out``.
    """
    from bench import layers, procs, results

    settings = config.settings
    failures = failures if failures is not None else []
    t_start = time.perf_counter()
    data = data or index_task(task, settings.data_roots, settings.limit)
    tokens: dict[str, str | None] = {CLEAN: None, **{c.id: c.cache_token(corruption_seed) for c in conditions}}
    reused = None if own_heads else reusable_records(prep, data, settings, tokens, tags)
    if reused is not None:
        log(f"[{prep.variant} x {task.name}] reusing {len(reused)} record(s) in {settings.out / 'records'} "
            "(same weights, data, probe grid and corruptions)")
        return reused
    embs, status = embed(prep, data, settings)
    corrupted: dict[str, Embeddings] = {}
    cache_status: dict[str, str] = {}
    for cond in conditions:
        if cond.is_identity:  # the audio is unchanged: the clean test embeddings are that test set
            corrupted[cond.id], cache_status[cond.id] = embs["test"], "identity (clean embeddings)"
            continue
        try:
            e, st = embed(prep, data, settings, splits=("test",),
                          transform=corruption_transform(cond, corruption_seed))
        except BenchError as exc:  # the corruption failed on every file: this condition only is lost
            failures.append(f"{prep.variant} x {task.name} under {cond.id}: {exc}")
            log(f"error: {prep.variant} x {task.name} under {cond.id}: {exc}")
            continue
        corrupted[cond.id], cache_status[cond.id] = e["test"], st["test"]["status"]
    if not procs.current().is_main:  # the other processes of a launch only extract
        return []
    out = []
    for seed in settings.seeds:
        # a stack of layers: a probe per layer, the one chosen on validation scores the test sets (bench.layers)
        choice = layers.evaluate(data, embs, settings, seed, corrupted, prep.encoder.layers)
        ev, chosen = choice.evaluation, choice.conditions
        res = ev.selected.result
        recs = make_records(prep, data, choice.embeddings, status, ev, settings, conditions=chosen,
                            seconds=time.perf_counter() - t_start)
        # clean first, then the conditions in their order: the order reusable_records gives back, so a fresh
        # run and its warm rerun hand the leaderboard the same rows in the same order (the same render key)
        rank = {cid: i for i, cid in enumerate(tokens)}
        recs.sort(key=lambda r: rank.get(r["condition"], len(rank)))
        for rec in recs:
            cid = rec["condition"]
            if choice.layer is not None:
                rec["layers"] = layers.record_field(choice, task.primary_metric, cid)
            if cid != CLEAN:
                cond = next(c for c in conditions if c.id == cid)
                rec["drop"] = _drop(task, embs["test"], chosen[cid], res.test_scores, res.extra_scores[cid],
                                    len(data.classes))
                rec["corruption"] = {"id": cid, "name": cond.name, "strength": cond.strength,
                                     "token": tokens[cid], "seed": corruption_seed, "cache": cache_status[cid]}
            rec.update(tags or {})
            rec["_file"] = str(results.write_record(rec, settings.out / "records"))
            out.append(rec)
            if settings.log_predictions and cid == CLEAN:
                from bench import predictions

                predictions.write(rec, embs["test"].items, res.test_scores, data.classes, task.kind)
        _log_seed(prep, task, ev, out[-len(recs):])
        if choice.layer is not None:
            log(f"[{prep.variant} x {task.name} seed {seed}] layer {choice.layer} of {prep.encoder.layers} chosen "
                f"on valid {task.primary_metric}; per layer (valid/test): " + ", ".join(
                    f"{p['layer']}: {_fmt(p['valid'])}/{_fmt(p['test'][CLEAN])}" for p in choice.curve))
    if own_heads:
        if prep.encoder.layers == 1:  # an own head reads one embedding, not a stack of layers
            out.extend(_own_head_records(prep, data, embs, status, settings))
        _keep(prep, task, config, data, out)
    return out


def _own_head_records(prep: PreparedEncoder, data: IndexedTask, embs: dict[str, Embeddings],
                      status: dict[str, dict[str, Any]], settings: EvalSettings) -> list[dict[str, Any]]:
    """The record of an encoder trained with a head on this task, scored with that head; [] without one."""
    import dataclasses

    from bench import own_head, results

    own = own_head.evaluate(prep.encoder, prep.weights, data.task, data.classes, embs["test"], settings.device)
    if own is None:
        return []
    mine = dataclasses.replace(prep, variant=f"{prep.variant} (own head)")
    out = []
    for rec in make_records(mine, data, embs, status, Evaluation(0, *own), settings):
        rec["probe"] = dict(own_head.PROBE)
        rec["_file"] = str(results.write_record(rec, settings.out / "records"))
        out.append(rec)
    log(f"[{mine.variant} x {data.task.name}] " + ", ".join(f"{k}={v:.4f}" for k, v in own[1]["clean"].items()))
    return out


def _keep(prep: PreparedEncoder, task: Task, config: RunConfig, data: IndexedTask,
          records: list[dict[str, Any]]) -> None:
    """Keep a finished pair for the next run of the same request (:mod:`bench.run_memo`), where that applies."""
    from bench import run_memo

    if not memo_applies(prep.entry.name, config.settings):
        return
    try:
        run_memo.store(prep, task, config, data, records)
    except Exception as exc:  # keeping the pair for next time must never fail a pair that is done
        log(f"warning: [{prep.variant} x {task.name}] not kept for reuse: {type(exc).__name__}: {exc}")


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _log_seed(prep: PreparedEncoder, task: Task, ev: Evaluation, recs: list[dict[str, Any]]) -> None:
    m, ci = ev.metrics[CLEAN], ev.confidence[CLEAN]
    text = (f"[{prep.variant} x {task.name} seed {ev.seed}] " + ", ".join(f"{k}={v:.4f}" for k, v in m.items())
            + f" ({task.primary_metric} 95% CI [{ci['lo']}, {ci['hi']}]; lr {ev.selected.lr:g}, "
            f"wd {ev.selected.weight_decay:g})")
    drops = [r for r in recs if r.get("drop") and r["drop"].get("drop") is not None]
    if drops:
        text += "; drop " + ", ".join(f"{r['condition']} {r['drop']['drop']:+.3f}" for r in drops)
    log(text)
