"""Finished (encoder, task) pairs kept by request, so a warm ``bench run`` neither imports torch nor builds an encoder.

Why: with embeddings and probe results cached, a rerun of the same command
still built every encoder, loaded its checkpoint and hashed its weights only
to find the cache keys; importing torch alone was 2.6 s of a 4.0 s warm main
job (``benchmarks/bench_warm.py``). Here the records a pair produced are kept
in the one store (:mod:`bench.store`: a checksummed manifest, verified on every
read; a damaged entry is said once, removed and computed again) under a key
(:func:`bench.keys.make`) of everything the request states, and reused only
when what it does not state is unchanged, all checked without torch:

- **the code and libraries**: the content digest of every source file of bench
  and of the encoder's and the task's plugin packages (:func:`bench.keys.code_digest`),
  and the versions every record lists (torch, numpy, ...);
- **the task's data**: its splits indexed again and fingerprinted (the data key);
- **the weights**: the weights key (:func:`bench.keys.weights_key`, the content
  digest of the checkpoint file the records were made from) and of any option
  naming a file; for a trainable encoder without ``--checkpoint`` also its pools
  (:func:`bench.pretrain.pools.plan_pools` from the stored label spec and
  recipe, with the train splits' fingerprints: what the checkpoint key hashes,
  taken before the checkpoint was chosen). A ``random``-style encoder's seeded
  weights follow from its code, options and torch version, all in the key.

File contents go through the store's one file-identity memo, so a warm check
costs a stat per file. Only encoders that declare their weights self-contained
(:attr:`bench.encoder.Encoder.self_contained`: the built-in SampleCNN family
and logmel; not the Hugging Face encoder, whose hub weights can change under
the same name) are kept. ``--no-cache`` neither reads nor writes here; a run of
several processes (``accelerate launch``) never uses it, nor does a run whose
cache folder is not this user's writable one. ``bench cache list`` shows the
entries (kind ``results``); clearing embeddings or probes clears them too.
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
from bench.store import EntryError, Store, kind_root, persist_digests, remove, writable

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
    cache folder."""
    from bench import procs

    return settings.cache and not procs.launched() and trusted()


def trusted() -> bool:
    """Whether the cache folder is this user's writable one (not a fallback): entries are read and written only
    there (another user's folder could hold planted records)."""
    return _writable_once(str(root()))


@functools.lru_cache(maxsize=8)
def _writable_once(folder: str) -> bool:
    """The write test of ``folder``, once per run (:func:`new_run`) rather than once per pair: it writes a file."""
    return not writable(Path(folder))


def _store() -> Store:
    return Store(KIND, root() if trusted() else None)


def applies(name: str) -> bool:
    """Whether encoder ``name`` declares its weights self-contained (:attr:`bench.encoder.Encoder.self_contained`)."""
    from bench import plugins
    from bench.encoder import Encoder

    factory = plugins.encoders().get(name).load()
    return isinstance(factory, type) and issubclass(factory, Encoder) and factory.self_contained


def _option_files(options: dict[str, Any]) -> dict[str, str]:
    """The weights key of every option that names a file (``-O checkpoint=...``): its bytes are weights too."""
    return {k: keys.weights_key(v) for k, v in sorted(options.items()) if isinstance(v, str) and os.path.isfile(v)}


def pools_of(spec: LabelSpec, recipe: Recipe, roots: DataRoots,
             sources: dict[str, Any] | None = None) -> dict[str, Any]:
    """The pools witness of a trainable encoder about to be pretrained or found by key: its label spec and
    recipe (as JSON) and the data sources its checkpoint key hashes, taken *before* the checkpoint is chosen
    (data that changes during the run must not vouch for a checkpoint trained on the old data). ``sources``:
    the plan's ``data_sources()`` when the caller has planned the pools already (not planned again)."""
    spec_d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(spec).items()}
    recipe_d = recipe.to_dict()
    if sources is not None:
        sources = json.loads(json.dumps(sources, sort_keys=True, default=str))  # as _pool_sources stores it
    return {"spec": spec_d, "recipe": recipe_d,
            "sources": sources if sources is not None else _pool_sources(spec_d, recipe_d, roots)}


def _pool_sources(spec: dict[str, Any], recipe: dict[str, Any], roots: DataRoots) -> dict[str, Any]:
    """What the checkpoint key of a trainable encoder hashes about its data, from the stored spec and recipe."""
    return json.loads(_pool_sources_text(json.dumps([spec, recipe], sort_keys=True), roots.general,
                                         json.dumps(roots.per_task, sort_keys=True), roots.demo_size,
                                         roots.demo_seed))


def new_run() -> None:
    """Forget what the last run in this process computed (data may have changed since); keep the file digest
    memo in the cache folder when it is trusted, before any pair is indexed."""
    _pool_sources_text.cache_clear()
    _writable_once.cache_clear()
    if trusted():
        persist_digests(root().parent)


@functools.lru_cache(maxsize=32)
def _pool_sources_text(spec_recipe: str, general: str | None, per_task: str, demo_size: str, demo_seed: int) -> str:
    """:func:`_pool_sources` as JSON text, once per run (:func:`new_run` forgets it): every task of a run checks
    the same pools."""
    from bench.config import DataRoots
    from bench.encoder import LabelSpec, Recipe
    from bench.pretrain.pools import plan_pools

    spec, recipe = json.loads(spec_recipe)
    roots = DataRoots(general, json.loads(per_task), demo_size, demo_seed)
    plan = plan_pools(LabelSpec(**spec), Recipe(**recipe), roots)
    return json.dumps(plan.data_sources(), sort_keys=True, default=str)


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

    records, _ = _store().get(key.name, key.fields, key.digest, current)
    if not records:
        return None
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for rec in records:
        rec["reused"] = {"from": str(_store().path(key.name)), "created": rec.get("created")}
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
    target = _store()
    if target.enabled:  # an entry of the same request made from other data or weights is replaced
        remove(target.path(key.name))
    return target.put(key.name, key.fields, key.digest,
                      lambda folder: (folder / RECORDS).write_text(json.dumps(entry, default=_plain)),
                      label={"encoder": prep.entry.name, "task": task.name})


def _plain(obj: Any) -> Any:
    if type(obj).__module__ == "numpy":
        return obj.tolist()
    return str(obj)
