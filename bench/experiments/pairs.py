"""One encoder on one task, clean and under corruptions: the step every experiment command repeats.

:func:`evaluate_pair` composes the run steps (:func:`bench.run.index_task`,
:func:`bench.run.embed`, :func:`bench.run.evaluate`,
:func:`bench.run.make_records`): the clean splits are embedded once, each
condition's test audio is corrupted and embedded under its own cache key
(:func:`corruption_transform`), the probe of each seed is fitted on clean
embeddings once and scores every test set, and each corrupted record carries
the paired drop computed at scoring time (:func:`bench.robustness.paired_drop`).

Records already in the output folder are reused when they were made from the
same weights, data, encoder config, probe grid and corruption (the condition's
cache token): a rerun, or a resumed sweep, re-probes nothing
(:func:`reusable_records`). ``RunConfig.cache=False`` (``--no-cache``)
recomputes everything.
"""

from __future__ import annotations

import json
import time
from typing import Any, Sequence

from bench.corruptions import CLEAN, Condition, track_seed
from bench.errors import BenchError
from bench.extract import AudioTransform, Embeddings
from bench.run import PreparedEncoder, RunConfig, TaskData, embed, evaluate, index_task, log, make_records
from bench.task import Task


def corruption_transform(cond: Condition, seed: int) -> AudioTransform:
    """The extraction transform of a condition: each track corrupted with its own seed.

    Its id is :meth:`Condition.cache_token` (condition, algorithm version,
    library versions, the seed where the corruption draws random numbers), so
    corrupted embeddings are cached under their own key and never confused
    with another seed's or another pedalboard's.
    """

    def fn(x: Any, sample_rate: int, track_id: str) -> Any:
        return cond.apply(x, sample_rate, seed=track_seed(seed, track_id))

    return AudioTransform(cond.cache_token(seed), fn)


def _json(value: Any) -> Any:
    """``value`` as it reads back from a record (tuples as lists, odd types as text)."""
    return json.loads(json.dumps(value, default=str))


#: probe fields a record holds that are chosen or measured by the fit, not asked for (lr and wd are the
#: grid's choice when the protocol searches a grid; the grid itself is ``grid_spec``)
_FITTED = ("lr", "weight_decay", "best_epoch", "epochs", "valid_loss", "grid", "grid_spec", "selection_metric",
           "cache")


def _matches(rec: dict[str, Any], prep: PreparedEncoder, data: TaskData, config: RunConfig, token: str | None) -> bool:
    """Would evaluating now give this record? Same protocol, weights, encoder config, data, task settings,
    probe configuration (the protocol's, less what the grid chose) and grid, and corruption (its cache token);
    the record's own schema."""
    from bench import protocols
    from bench.results import SCHEMA_VERSION

    proto = protocols.get(config.protocol)
    conf, _ = proto.probe_plan(data.task, config.device, config.probe_grid,
                               prep.encoder.window / prep.encoder.sample_rate)
    wanted = {k: v for k, v in _json(conf.to_dict()).items() if not (proto.uses_grid and k in _FITTED)}
    probe = rec.get("probe") or {}
    grid_spec = config.probe_grid if proto.uses_grid else f"protocol {proto.name}: one point"
    return (rec.get("schema_version") == SCHEMA_VERSION
            and rec.get("protocol", "bench") == proto.name
            and rec.get("weights_hash") == prep.weights_hash
            and rec.get("encoder_config") == _json(prep.encoder.config())
            and (rec.get("data") or {}).get("fingerprint") == data.fingerprint
            and rec.get("task_settings") == _json(data.task.settings)
            and all(probe.get(k) == v for k, v in wanted.items())
            and probe.get("grid_spec") == grid_spec
            and (rec.get("corruption") or {}).get("token") == token)


def reusable_records(prep: PreparedEncoder, data: TaskData, config: RunConfig,
                     tokens: dict[str, str | None], extra: dict[str, Any] | None = None) -> list[dict[str, Any]] | None:
    """The records of every seed x condition already in ``config.out``, if all match this evaluation; else None.

    ``tokens``: condition id -> its cache token (None for clean). ``extra``:
    fields the records must hold with these values (e.g. ``sweep``).
    """
    from bench.results import record_name

    if not config.cache:
        return None
    out = []
    for seed in config.seeds:
        for cid, token in tokens.items():
            stub = {"variant": prep.variant, "encoder": prep.entry.name, "task": data.task.name, "condition": cid,
                    "seed": seed}
            path = config.out / "records" / record_name(stub)
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            if not _matches(rec, prep, data, config, token):
                return None
            if any(rec.get(k) != _json(v) for k, v in (extra or {}).items()):
                return None
            rec["_file"] = str(path)
            out.append(rec)
    return out


def _drop(task: Task, clean: Embeddings, corrupted: Embeddings, clean_scores: Any, corrupted_scores: Any,
          n_classes: int) -> dict[str, Any]:
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
                  tags: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Records of one encoder on one task: clean, and one per condition (per probe seed); written to ``config.out``.

    A condition whose corruption fails on every test file is reported in
    ``failures`` and left out; one that fails on some files is scored on the
    rest (the records count the skipped files). ``tags``: extra fields added
    to every record (e.g. the swept options).
    """
    from bench import results

    failures = failures if failures is not None else []
    t_start = time.perf_counter()
    data = index_task(task, config.data_roots)
    tokens: dict[str, str | None] = {CLEAN: None, **{c.id: c.cache_token(corruption_seed) for c in conditions}}
    reused = reusable_records(prep, data, config, tokens, tags)
    if reused is not None:
        log(f"[{prep.variant} x {task.name}] reusing {len(reused)} record(s) in {config.out / 'records'} "
            "(same weights, data, probe grid and corruptions)")
        return reused
    embs, status = embed(prep, data, config)
    corrupted: dict[str, Embeddings] = {}
    cache_status: dict[str, str] = {}
    for cond in conditions:
        if cond.is_identity:  # the audio is unchanged: the clean test embeddings are that test set
            corrupted[cond.id], cache_status[cond.id] = embs["test"], "identity (clean embeddings)"
            continue
        try:
            e, st = embed(prep, data, config, splits=("test",), transform=corruption_transform(cond, corruption_seed))
        except BenchError as exc:  # the corruption failed on every file: this condition only is lost
            failures.append(f"{prep.variant} x {task.name} under {cond.id}: {exc}")
            log(f"error: {prep.variant} x {task.name} under {cond.id}: {exc}")
            continue
        corrupted[cond.id], cache_status[cond.id] = e["test"], st["test"]["status"]
    out = []
    for seed in config.seeds:
        ev = evaluate(data, embs, config, seed, conditions=corrupted)
        res = ev.selected.result
        recs = make_records(prep, data, embs, status, ev, config, conditions=corrupted,
                            seconds=time.perf_counter() - t_start)
        # clean first, then the conditions in their order: the order reusable_records gives back, so a fresh
        # run and its warm rerun hand the leaderboard the same rows in the same order (the same render key)
        rank = {cid: i for i, cid in enumerate(tokens)}
        recs.sort(key=lambda r: rank.get(r["condition"], len(rank)))
        for rec in recs:
            cid = rec["condition"]
            if cid != CLEAN:
                cond = next(c for c in conditions if c.id == cid)
                rec["drop"] = _drop(task, embs["test"], corrupted[cid], res.test_scores, res.extra_scores[cid],
                                    len(data.classes))
                rec["corruption"] = {"id": cid, "name": cond.name, "strength": cond.strength,
                                     "token": tokens[cid], "seed": corruption_seed, "cache": cache_status[cid]}
            rec.update(tags or {})
            rec["_file"] = str(results.write_record(rec, config.out / "records"))
            out.append(rec)
        _log_seed(prep, task, ev, out[-len(recs):])
    return out


def _log_seed(prep: PreparedEncoder, task: Task, ev: Any, recs: list[dict[str, Any]]) -> None:
    m, ci = ev.metrics[CLEAN], ev.confidence[CLEAN]
    text = (f"[{prep.variant} x {task.name} seed {ev.seed}] {task.primary_metric}={m[task.primary_metric]:.4f} "
            f"(95% CI [{ci['lo']}, {ci['hi']}])")
    drops = [r for r in recs if r.get("drop") and r["drop"].get("drop") is not None]
    if drops:
        text += "; drop " + ", ".join(f"{r['condition']} {r['drop']['drop']:+.3f}" for r in drops)
    log(text)

