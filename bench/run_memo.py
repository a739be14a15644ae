"""Finished (encoder, task) pairs kept by request, so a warm ``bench run`` neither imports torch nor builds an encoder.

Why: with embeddings and probe results cached, a rerun of the same command
still built every encoder, loaded its checkpoint and hashed its weights only
to find the cache keys; importing torch alone was 2.6 s of a 4.0 s warm main
job (``benchmarks/bench_warm.py``). Here the records a pair produced are kept
under a key of everything the request states, and reused only when what it
does not state is unchanged, all checked without torch:

- **the code and libraries**: size and mtime of every source file of bench and
  of the encoder's and the task's plugin packages, and the versions every
  record lists (torch, numpy, ...): new code or a new torch is a miss;
- **the task's data**: its splits indexed again and fingerprinted (every
  file's bytes, memoised by stat: :mod:`bench.fingerprint`);
- **the weights**: the checkpoint file the records were made from (resolved path,
  size, mtime, ctime, inode), and any option naming a file; for a trainable
  encoder without ``--checkpoint`` also its pools
  (:func:`bench.pretrain.pools.plan_pools` from the stored label spec and
  recipe, with the train splits' fingerprints: what the checkpoint key hashes,
  taken before the checkpoint was chosen),
  so new or changed pretraining data means another checkpoint, as in the
  full path. A ``random``-style encoder's seeded weights follow from its code,
  options and torch version, all in the key.

Only encoders that declare their weights self-contained
(:attr:`bench.encoder.Encoder.self_contained`: the built-in SampleCNN family
and logmel; not the Hugging Face encoder, whose hub weights can change under
the same name) are kept. Anything else goes the full way and stores the pair
for the next run.
``--no-cache`` neither reads nor writes here; a run of several processes
(``accelerate launch``) never uses it, nor does a run whose cache folder is not
this user's writable one (the embedding cache then falls back elsewhere). Entries are small JSON files under
``<cache>/results/``; ``bench cache list`` shows them (kind ``results``), and
clearing embeddings or probes clears them too, so a cleared cache is a cold run.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from bench.config import DataRoots
    from bench.encoder import LabelSpec, Recipe
    from bench.plugins import Entry
    from bench.settings import EvalSettings, IndexedTask, PreparedEncoder, RunConfig
    from bench.task import Task

#: version of the entry format (a change makes every old entry a miss)
FORMAT = 1


def root() -> Path:
    from bench.config import cache_dir

    return cache_dir() / "results"


def _module_of(entry: Entry) -> str:
    target = entry.target
    return target.partition(":")[0] if isinstance(target, str) else getattr(target, "__module__", "")


def _package_files(module: str) -> list[Path]:
    """The source files of ``module``'s package folder (a plugin's module imports its siblings)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return []
    return sorted(Path(spec.origin).parent.glob("*.py"))


def code_digest(*modules: str) -> str:
    """SHA-256 over (path, size, mtime) of bench's source files and of the given modules' package folders."""
    files = sorted(Path(__file__).parent.rglob("*.py"))
    for m in modules:
        files.extend(_package_files(m))
    h = hashlib.sha256()
    for f in dict.fromkeys(files):
        try:
            st = f.stat()
        except OSError:
            continue
        h.update(f"{f}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def request_key(prep_name: str, task: Task, config: RunConfig, user: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(digest, payload) of everything the request states for one pair (``user``: the encoder's ``-O`` options)."""
    from bench import plugins, results

    enc, tsk = plugins.encoders().get(prep_name), plugins.tasks().get(task.name)
    roots = config.settings.data_roots
    payload = {
        "format": FORMAT,
        "schema": results.SCHEMA_VERSION,
        "encoder": [enc.name, enc.plugin.name, enc.plugin.distribution, enc.plugin.version],
        "options": user,
        "variant": config.variants.get(prep_name),
        "checkpoint": str(Path(config.checkpoint).resolve()) if config.checkpoint else None,
        "task": [tsk.name, tsk.plugin.name, tsk.plugin.distribution, tsk.plugin.version],
        "task_settings": task.settings,
        "protocol": config.settings.protocol,
        "probe_grid": config.settings.probe_grid,
        "seeds": list(config.settings.seeds),
        "device": config.settings.device,
        "batch_size": config.settings.batch_size,
        "data_roots": [roots.general, dict(sorted(roots.per_task.items())), roots.demo_size, roots.demo_seed],
        "versions": {k: v for k, v in results.versions().items() if k != "platform"},
        "code": code_digest(_module_of(enc), _module_of(tsk)),
        **({"limit": config.settings.limit} if config.settings.limit is not None else {}),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32], payload


def _stat(path: str | None) -> dict[str, Any] | None:
    """Identity of a weights file: resolved path, size, mtime, ctime and inode (a file replaced with its old
    mtime kept, as ``rsync -t`` does, still has another ctime or inode)."""
    if not path:
        return None
    path = str(Path(path).resolve())
    try:
        st = os.stat(path)
    except OSError:
        return {"path": path, "missing": True}
    return {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "inode": st.st_ino}


def enabled(settings: EvalSettings) -> bool:
    """Whether finished pairs are kept and reused: with the cache, in one process, in this user's writable
    cache folder."""
    from bench import procs

    return settings.cache and not procs.launched() and trusted()


def trusted() -> bool:
    """Whether the cache folder is this user's writable one (not a fallback): entries are read and written only
    there, as the embedding cache and the file-digest memo do (bench.cache.EmbeddingCache.open)."""
    from bench.cache import default_root

    return _writable_once(str(default_root()))


@functools.lru_cache(maxsize=8)
def _writable_once(folder: str) -> bool:
    """The write test of ``folder``, once per run (:func:`new_run`) rather than once per pair: it writes a file."""
    from bench.cache import _writable

    return not _writable(Path(folder))


def applies(name: str) -> bool:
    """Whether encoder ``name`` declares its weights self-contained (:attr:`bench.encoder.Encoder.self_contained`)."""
    from bench import plugins
    from bench.encoder import Encoder

    factory = plugins.encoders().get(name).load()
    return isinstance(factory, type) and issubclass(factory, Encoder) and factory.self_contained


def _option_files(options: dict[str, Any]) -> dict[str, Any]:
    """Size and mtime of every option that names a file (``-O checkpoint=...``): its bytes are weights too."""
    return {k: _stat(v) for k, v in sorted(options.items()) if isinstance(v, str) and os.path.isfile(v)}


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
    """Forget what the last run in this process computed (data may have changed since)."""
    _pool_sources_text.cache_clear()
    _writable_once.cache_clear()


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
    key, _ = request_key(name, task, config, user)
    path = root() / f"{_safe(name)}__{_safe(task.name)}__{key}.json"
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        if (entry.get("format") != FORMAT or entry.get("fingerprint") != data.fingerprint
                or entry.get("classes") != list(data.classes)):
            return None
        ckpt = entry.get("checkpoint")
        if ckpt is not None and _stat(ckpt.get("path")) != ckpt:
            return None
        if _option_files(entry["request"]["options"]) != entry.get("option_files"):
            return None
        pools = entry.get("pools")
        roots = config.settings.data_roots
        if pools is not None and _pool_sources(pools["spec"], pools["recipe"], roots) != pools["sources"]:
            return None
        records = entry["records"]
    except Exception:  # a damaged or foreign entry is a miss, never an error
        return None
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for rec in records:
        rec["reused"] = {"from": str(path), "created": rec.get("created")}
        rec["created"], rec["command"] = now, " ".join(sys.argv)
    try:
        os.utime(path)  # recently used
    except OSError:
        pass
    return records


def store(prep: PreparedEncoder, task: Task, config: RunConfig, data: IndexedTask,
          records: list[dict[str, Any]]) -> Path | None:
    """Keep the records of one finished pair for the next run of the same request; None when not kept."""
    from bench.encoder import TrainableEncoder

    if not records:
        return None
    key, payload = request_key(prep.entry.name, task, config, prep.options)
    pools = None
    if isinstance(prep.encoder, TrainableEncoder) and not config.checkpoint:
        if prep.pools is None:
            return None  # the pools the checkpoint was chosen by are unknown: not kept
        pools = prep.pools
    entry = {
        "format": FORMAT,
        "encoder": prep.entry.name,
        "task": task.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "request": payload,
        "fingerprint": data.fingerprint,
        "classes": list(data.classes),
        "checkpoint": _stat(prep.weights.get("checkpoint")),
        "option_files": _option_files(payload["options"]),
        "pools": pools,
        "records": [{k: v for k, v in r.items() if k not in ("_file", "reused")} for r in records],
    }
    path = root() / f"{_safe(prep.entry.name)}__{_safe(task.name)}__{key}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(entry, default=_plain))
        os.replace(tmp, path)
    except OSError:
        return None  # an unwritable cache means recomputing next time, never an error
    return path


def _plain(obj: Any) -> Any:
    if type(obj).__module__ == "numpy":
        return obj.tolist()
    return str(obj)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def entries() -> list[dict[str, Any]]:
    """One dict per stored pair, in the shape of :func:`bench.cache_inventory.entries`."""
    folder = root()
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        parts = path.stem.split("__")
        st = path.stat()
        out.append({"kind": "results", "encoder": parts[0], "task": parts[1] if len(parts) > 2 else "-",
                    "split": "-", "rows": None, "skipped": 0,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(st.st_mtime)),
                    "status": "complete", "path": str(path), "paths": [str(path)], "size": st.st_size})
    return out
