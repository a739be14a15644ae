"""Finished (encoder, task) pairs kept by request, so a warm ``bench run`` neither imports torch nor builds an encoder.

Why a second reuse path beside the key chain (:mod:`bench.keys`): the chain's embeddings key holds the encoder's
config and weights hash, which need the encoder built (for SampleCNN, torch imported: 3.7 s of the 4.4 s a warm
main job took through the chain, against 0.75-1.0 s here; ``benchmarks/bench_warm.py``). Here the records of a
pair are one :mod:`bench.store` entry (kind ``results``) keyed by everything the request states (options, plugin
identities and code, protocol, grid, seeds, library versions, bench's code); served only while the data key
and the weights are unchanged, checked without torch: the weights key (:func:`bench.keys.weights_key`) of the
checkpoint and of any option naming a file, and for a trainable encoder without ``--checkpoint`` the pools its
checkpoint key hashes, planned again from the stored label spec and recipe. Only encoders that declare their
weights self-contained (:attr:`bench.encoder.Encoder.self_contained`) are kept; not with ``--no-cache``, nor
across several processes, nor in a cache folder that is not this user's writable one. Clearing embeddings or
probes clears these entries too.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import keys
from bench.store import EntryError, Store, kind_root, persist_digests, plain, remove, writable

if TYPE_CHECKING:  # pragma: no cover
    from bench.config import DataRoots
    from bench.encoder import LabelSpec, Recipe
    from bench.settings import EvalSettings, IndexedTask, PreparedEncoder, RunConfig
    from bench.task import Task

#: version of the entry format (a change makes every old entry a miss)
FORMAT = 2
KIND, RECORDS = "results", "records.json"


def root() -> Path:
    return kind_root(KIND)


def request_key(prep_name: str, task: Task, config: RunConfig, user: dict[str, Any]) -> keys.Key:
    """The key of everything the request states for one pair (``user``: the encoder's ``-O`` options)."""
    from bench import results

    roots = config.settings.data_roots
    fields = {
        "format": FORMAT,
        "schema": results.SCHEMA_VERSION,
        "encoder": [prep_name, keys.plugin_identity("encoder", prep_name)],
        "options": user,
        "variant": config.variants.get(prep_name),
        "pretrain_seed": config.pretrain_seed,
        "checkpoint": str(Path(config.checkpoint).resolve()) if config.checkpoint else None,
        "task": [task.name, keys.plugin_identity("task", task.name)],
        "task_settings": task.settings,
        "protocol": config.settings.protocol,
        "probe_grid": config.settings.probe_grid,
        "seeds": list(config.settings.seeds),
        "device": config.settings.device,
        "batch_size": config.settings.batch_size,
        "data_roots": [roots.general, dict(sorted(roots.per_task.items())), roots.demo_size, roots.demo_seed],
        "versions": {k: v for k, v in results.versions().items() if k != "platform"},
        "code": keys.code_digest("bench", recursive=True),  # the plugins' code is in their identities
        **({"limit": config.settings.limit} if config.settings.limit is not None else {}),
        **({"official_batchnorm": True} if config.settings.official_batchnorm else {}),
    }
    return keys.make(fields, prep_name, task.name)


def enabled(settings: EvalSettings) -> bool:
    """Whether finished pairs are kept and reused: with the cache, in one process, in this user's writable
    cache folder (another user's folder could hold planted records)."""
    from bench import procs

    return settings.cache and not procs.launched() and trusted()


def trusted() -> bool:
    return _writable_once(str(root()))


@functools.lru_cache(maxsize=8)
def _writable_once(folder: str) -> bool:
    """The write test of ``folder`` (it writes a file), once per run (:func:`new_run`) rather than per pair."""
    return not writable(Path(folder))


def applies(name: str) -> bool:
    """Whether encoder ``name`` declares its weights self-contained (:attr:`bench.encoder.Encoder.self_contained`)."""
    from bench import plugins
    from bench.encoder import Encoder

    factory = plugins.encoders().get(name).load()
    return isinstance(factory, type) and issubclass(factory, Encoder) and factory.self_contained


def _option_files(options: dict[str, Any]) -> dict[str, str]:
    """The weights key of every option that names a file (``-O checkpoint=...``): its bytes are weights too."""
    return {k: keys.weights_key(v) for k, v in sorted(options.items()) if isinstance(v, str) and os.path.isfile(v)}


def pools_of(spec: LabelSpec, recipe: Recipe, sources: dict[str, Any]) -> dict[str, Any]:
    """The pools witness of a trainable encoder: its label spec and recipe, and the pools' data sources its
    checkpoint key hashes (``sources``: the plan's ``data_sources()``), taken *before* the checkpoint is chosen
    (data that changes during the run must not vouch for a checkpoint trained on the old data)."""
    spec_d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(spec).items()}
    return {"spec": spec_d, "recipe": recipe.to_dict(), "sources": json.loads(json.dumps(sources, sort_keys=True,
                                                                                          default=str))}


def _pool_sources(spec: dict[str, Any], recipe: dict[str, Any], roots: DataRoots) -> dict[str, Any]:
    """What the checkpoint key of a trainable encoder hashes about its data, planned from the stored spec and
    recipe (once per run: every task of a run checks the same pools)."""
    return json.loads(_planned(json.dumps([spec, recipe], sort_keys=True), json.dumps(dataclasses.astuple(roots), sort_keys=True)))


@functools.lru_cache(maxsize=32)
def _planned(spec_recipe: str, roots: str) -> str:
    from bench.config import DataRoots
    from bench.encoder import LabelSpec, Recipe
    from bench.pretrain.pools import plan_pools

    spec, recipe = json.loads(spec_recipe)
    plan = plan_pools(LabelSpec(**spec), Recipe(**recipe), DataRoots(*json.loads(roots)))
    return json.dumps(plan.data_sources(), sort_keys=True, default=str)


def new_run() -> None:
    """Forget what the last run in this process computed (data may have changed since); keep the file digest
    memo in the cache folder when it is trusted, before any pair is indexed."""
    _planned.cache_clear()
    _writable_once.cache_clear()
    if trusted():
        persist_digests(root().parent)


def lookup(name: str, task: Task, config: RunConfig, data: IndexedTask,
           user: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The records of encoder ``name`` (``-O`` options ``user``) on ``task`` if this request was run before and
    nothing it depends on changed (``data``: the task indexed now); else None."""
    key = request_key(name, task, config, user)
    roots = config.settings.data_roots

    def current(folder: Path, _manifest: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The entry's records while the data, weights and pools they were made from are unchanged."""
        try:
            entry = json.loads((folder / RECORDS).read_text())
        except (OSError, ValueError) as exc:
            raise EntryError(f"{RECORDS} unreadable: {exc}") from None
        pools = entry.get("pools")
        if (entry.get("fingerprint") != data.fingerprint or entry.get("classes") != list(data.classes)
                or (entry.get("checkpoint") and keys.weights_key(entry["checkpoint"]) != entry["weights"])
                or _option_files(user) != entry.get("option_files")
                or (pools is not None and _pool_sources(pools["spec"], pools["recipe"], roots) != pools["sources"])):
            return None
        return list(entry["records"])

    store_ = Store(KIND, root() if trusted() else None)
    records, _ = store_.get(key.name, key.fields, key.digest, current)
    if not records:
        return None
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for rec in records:
        rec["reused"] = {"from": str(store_.path(key.name)), "created": rec.get("created")}
        rec["created"], rec["command"] = now, " ".join(sys.argv)
    return records


def store(prep: PreparedEncoder, task: Task, config: RunConfig, data: IndexedTask,
               records: list[dict[str, Any]]) -> bool:
    """Keep the records of one finished pair for the next run of the same request; False when not kept."""
    from bench.encoder import TrainableEncoder

    if not records:
        return False
    key = request_key(prep.entry.name, task, config, prep.options)
    pools = None
    if isinstance(prep.encoder, TrainableEncoder) and not config.checkpoint:
        if prep.pools is None:
            return False  # the pools the checkpoint was chosen by are unknown: not kept
        pools = prep.pools
    checkpoint = prep.weights.get("checkpoint")
    entry = {
        "fingerprint": data.fingerprint,
        "classes": list(data.classes),
        "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
        "weights": keys.weights_key(checkpoint),
        "option_files": _option_files(prep.options),
        "pools": pools,
        "records": [{k: v for k, v in r.items() if k not in ("_file", "reused")} for r in records],
    }
    target = Store(KIND, root() if trusted() else None)
    if target.enabled:  # an entry of the same request made from other data or weights is replaced
        remove(target.path(key.name))
    return target.put(key.name, key.fields, key.digest,
                      lambda folder: (folder / RECORDS).write_text(json.dumps(entry, default=plain)),
                      label={"encoder": prep.entry.name, "task": task.name})

