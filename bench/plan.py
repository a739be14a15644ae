"""The plan ``bench run`` prints before it starts: per encoder, what it will pretrain, extract and probe, with
time estimates, and what the cache already holds.

Every time printed is an estimate, and each says where it comes from:

- **pretraining** (a trainable encoder without ``--checkpoint``): whether its pretrained weights are in the
  cache (the checkpoint key of :func:`bench.pretrain.default_checkpoint`), else the steps left (a run folder
  holding a training state resumes from its last saved step, read from its ``metrics.jsonl``) x the batch
  size, at the median clips/s that earlier pretrainings logged in the cache's run folders (runs on the same
  kind of device with the same window, views a clip and augmentation on or off, as their log's start event
  says: those of the same encoder, else of any encoder; a log that does not say its views and augmentation is
  not used), else at a stated rough default: :data:`CPU_VIEWS_PER_S` on a CPU, scaled by the window and views;
  none for another device.
- **extraction**: the pair's own extraction time measured here before, else the tracks of the task (seen by
  an earlier run on the same data) at the encoder's measured tracks/s. A fresh pretraining means no cached
  embeddings; otherwise cached embeddings make it faster than said.
- **probing**: the pair's probe seconds per seed measured here before (else the median of the other encoders
  on that task) x the seeds asked for.
- **cached**: pairs whose records the results memo holds for this very request (:mod:`bench.run_memo`; reused
  when the data and weights are unchanged, nothing computed).

Measurements are kept after each run by :func:`observe` in ``<cache>/timings.json``, per (encoder, task,
--limit, data root). The checks are cheap: files read, no data indexed, and torch is imported only to build a
trainable encoder that the run is about to build anyway (not when every pair of it is in the results memo).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.settings import RunConfig

FILE = "timings.json"
#: the rough default pretraining rate on a CPU, views (a clip's crops) per second for a window of
#: :data:`DEFAULT_WINDOW` samples, without and with augmentation; scaled by the window and the recipe's views.
#: Without: demo-preset pretrainings (batch 32 x 2 views, 2 torch threads, idle 2-core machine) logged medians
#: of 86 and 96 clips/s, and the supervised baseline (1 view) 208. With: 60 clips/s (session 2, idle)
CPU_VIEWS_PER_S, DEFAULT_WINDOW = {False: 180.0, True: 120.0}, 19683


def _cache() -> Path:
    from bench.store import cache_dir

    return cache_dir()


def _roots_id(config: RunConfig, task: str) -> str:
    roots = config.settings.data_roots
    given = roots.per_task.get(task) or roots.general
    return str(Path(given).expanduser()) if given else f"demo-{roots.demo_size}-seed{roots.demo_seed}"


def _key(encoder: str, task: str, limit: int | None, roots: str) -> str:
    return f"{encoder}|{task}|{limit if limit is not None else 'all'}|{roots}"


def _load() -> dict[str, Any]:
    try:
        doc = json.loads((_cache() / FILE).read_text())
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def rough(seconds: float) -> str:
    """A duration with no more precision than an estimate has."""
    if seconds < 60:
        return "under a minute"
    minutes = seconds / 60
    if minutes < 10:
        return f"about {math.ceil(minutes)} min"
    if minutes < 120:
        return f"about {round(minutes / 5) * 5} min"
    return f"about {round(minutes / 60, 1):g} h"


def describe(config: RunConfig) -> Iterator[str]:
    """The plan's lines, each yielded as soon as it is known (a first pretraining check may build demo data)."""
    s = config.settings
    yield (f"Plan: {len(config.encoders)} encoder(s) x {len(config.tasks)} task(s), probe seeds {list(s.seeds)}"
           + (f", at most {s.limit} tracks per split (--limit)" if s.limit else "")
           + f", device {s.device}. Times are estimates (how: bench/plan.py).")
    known = _load()
    total, unknown, all_cached = 0.0, [], True
    for enc in config.encoders:
        lines, seconds, missing = _encoder_plan(enc, config, known)
        all_cached = all_cached and len(lines) == 1 and lines[0].startswith("cached:")
        yield f"  {enc}:"
        for line in lines:
            yield f"    {line}"
        total += seconds
        unknown += [f"{enc} {m}" for m in missing]
    if all_cached:
        yield "  in all: nothing to compute"
    elif total or not unknown:
        yield f"  in all {rough(total)}" + (f", plus what is not estimated ({'; '.join(unknown)})" if unknown else "")
    else:
        yield f"  no estimate of the whole (not estimated: {'; '.join(unknown)})"


def _encoder_plan(enc: str, config: RunConfig, known: dict[str, Any]) -> tuple[list[str], float, list[str]]:
    """(lines, estimated seconds, what is not estimated) of one encoder."""
    s = config.settings
    cached = [t for t in config.tasks if _memoized(enc, t, config)]
    todo = [t for t in config.tasks if t not in cached]
    lines: list[str] = []
    if cached:
        lines.append(f"cached: the results of {', '.join(cached)} for this request (reused when the data and "
                     "weights are unchanged; nothing computed)")
    if not todo:
        return lines, 0.0, []
    total, missing = 0.0, []
    fresh = False  # new weights: no cached embeddings
    pre = _pretraining(enc, config)
    if pre is not None:
        text, seconds, fresh = pre
        lines.append(f"pretraining: {text}")
        if seconds is None and fresh:
            missing.append("pretraining")
        total += seconds or 0.0
    ext: list[tuple[str, float | None, str]] = []
    probe: list[tuple[str, float | None, str]] = []
    for task in todo:
        t = known.get(_key(enc, task, s.limit, _roots_id(config, task))) or {}
        ext.append((task, *_extraction(enc, task, t, fresh, config, known)))
        probe.append((task, *_probing(task, t, config, known)))
    for what, parts, note in (("extraction", ext, "" if fresh else "; less where embeddings are cached"),
                              (f"probing ({len(s.seeds)} seed(s))", probe, "")):
        line, seconds, n_missing = _group(parts)
        lines.append(f"{what}: {line}{note if seconds else ''}")
        total += seconds
        if n_missing:
            missing.append(f"{what.split(' ')[0]} of {n_missing} task(s)")
    return lines, total, missing


def _group(parts: list[tuple[str, float | None, str]]) -> tuple[str, float, int]:
    """One line for the tasks' estimates ``(task, seconds or None, detail or why not)``: the sum and each
    task's, then the tasks not estimated grouped by why; (line, seconds, tasks not estimated)."""
    done = [(t, sec, d) for t, sec, d in parts if sec is not None]
    seconds = sum(sec for _, sec, _ in done)
    out = []
    if done:
        out.append(f"{rough(seconds)} (" + ", ".join(f"{t} {rough(sec)}" + (f" [{d}]" if d else "") for t, sec, d in done) + ")")
    why: dict[str, list[str]] = {}
    for t, sec, d in parts:
        if sec is None:
            why.setdefault(d, []).append(t)
    out += [f"not estimated for {', '.join(ts)} ({d})" for d, ts in why.items()]
    return "; ".join(out), seconds, sum(len(ts) for ts in why.values())


def _memoized(enc: str, task: str, config: RunConfig) -> bool:
    """Whether the results memo holds this very request for the pair (its manifest's digest; not verified)."""
    from bench import run_memo
    from bench.pair import memo_applies
    from bench.run import encoder_options_for, make_task

    if config.settings.log_predictions or not memo_applies(enc, config.settings):
        return False
    try:
        key = run_memo.request_key(enc, make_task(task, config.settings.protocol), config,
                                   encoder_options_for(enc, config.encoder_options))
        man = json.loads((run_memo.root() / key.name / "manifest.json").read_text())
    except Exception:  # no entry, or a task that does not build: the run says why
        return False
    return isinstance(man, dict) and man.get("digest") == key.digest


def _pretraining(enc: str, config: RunConfig) -> tuple[str, float | None, bool] | None:
    """(what, estimated seconds, whether it trains) for a trainable encoder; None for another."""
    from bench import plugins
    from bench.encoder import TrainableEncoder

    try:
        factory = plugins.encoders().get(enc).load()
    except Exception:  # an unknown or broken plugin: the run reports it, once
        return None
    if not (isinstance(factory, type) and issubclass(factory, TrainableEncoder)):
        return None
    if config.checkpoint:
        return f"none, weights from --checkpoint {config.checkpoint}", 0.0, False
    from bench.errors import BenchError
    from bench.pretrain import default_checkpoint
    from bench.run import encoder_options_for, split_options

    options, recipe_options = split_options(encoder_options_for(enc, config.encoder_options))
    try:
        encoder = plugins.encoders().get(enc).create(**options)
        recipe = encoder.recipe().replace(**recipe_options)
        path, _ = default_checkpoint(encoder, recipe, config.settings.data_roots, _cache())
    except BenchError:  # a bad option or missing data: the run says why when the job starts
        return "not checked (the job will say why it cannot start)", None, False
    except Exception:
        return "not checked (the encoder could not be built; the job will say why)", None, False
    if path.is_file():
        return f"none, pretrained weights cached ({path.name})", 0.0, False
    start = _saved_step(path.with_suffix(".run"))
    steps = recipe.steps - (start or 0)
    clips = steps * recipe.batch_size
    what = (f"resumes at step {start} of {recipe.steps}: {steps} steps" if start else f"{steps} steps") + \
        f" x {recipe.batch_size} clips = {clips} clips"
    rate, source = _pretrain_rate(enc, encoder.window, config.settings.device, recipe.views, recipe.augment)
    if rate is None:
        return f"{what}; time not estimated ({source})", None, True
    seconds = clips / rate
    return f"{what} at ~{rate:.3g} clips/s ({source}): {rough(seconds)}", seconds, True


def _saved_step(run_dir: Path) -> int | None:
    """The step a rerun resumes from: the last saved one in the run folder's log, when a state was saved."""
    if not (run_dir / "train-state.pt").is_file():
        return None
    step = 0
    for e in _events(run_dir / "metrics.jsonl"):
        if e.get("event") in ("checkpoint", "interrupted") and isinstance(e.get("step"), int):
            step = max(step, e["step"])
    return step or None


def _events(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict):
            yield e


def _pretrain_rate(enc: str, window: int, device: str, views: int = 2,
                   augment: bool = True) -> tuple[float | None, str]:
    """(clips per second, where it comes from) for pretraining ``enc`` (its window in samples; ``views`` crops
    of each clip, ``augment``: the recipe augments them) on ``device``. Measured rates come only from runs of
    the same views and augmentation (:func:`_same_views`)."""
    kind = device.split(":")[0]
    same: list[float] = []
    other: list[float] = []
    runs = [0, 0]
    logs = sorted((_cache() / "checkpoints").glob("*.run/metrics.jsonl"), key=_mtime, reverse=True)[:100]
    for path in logs:
        meta: dict[str, Any] | None = None
        first = mine = False
        rates: list[float] = []
        for e in _events(path):
            if e.get("event") in ("start", "resume"):
                meta, first = e, True
            elif e.get("event") == "train" and meta is not None and isinstance(e.get("clips_per_s"), (int, float)):
                if first:  # the first line of a start holds the warm-up
                    first = False
                    continue
                ok = (str(meta.get("device", "")).split(":")[0] == kind
                      and (meta.get("config") or {}).get("window") == window
                      and _same_views(meta, views, augment))
                if ok:
                    rates.append(float(e["clips_per_s"]))
                    mine = mine or meta.get("encoder") == enc
        if rates:
            (same if mine else other).extend(rates)
            runs[0 if mine else 1] += 1
    if same:
        return statistics.median(same), f"measured in {runs[0]} earlier run(s) of {enc} in the cache"
    if other:
        return statistics.median(other), (f"measured in {runs[1]} earlier run(s) of encoders with this window, "
                                          "views and augmentation")
    if kind == "cpu":
        per_view = CPU_VIEWS_PER_S[bool(augment)]
        rate = per_view / max(1, views) * DEFAULT_WINDOW / window
        return rate, (f"a rough default for a CPU: {per_view:g} views/s at a {DEFAULT_WINDOW}-sample window "
                      f"{'with' if augment else 'without'} augmentation, measured on an idle 2-core machine")
    return None, (f"no earlier pretraining on {kind} with this window, views and augmentation in the cache to "
                  "measure from")


def _same_views(start: dict[str, Any], views: int, augment: bool) -> bool:
    """Whether the run a ``start``/``resume`` event opens cropped ``views`` views of each clip with augmentation
    on or off as ``augment`` says: its clips/s hold for that recipe only (a clip costs about its views, and the
    augmentation more). A log whose event does not say both is not used."""
    recipe = start.get("recipe")
    if not isinstance(recipe, dict):
        return False
    logged_views, logged_augment = recipe.get("views"), recipe.get("augment")
    return (isinstance(logged_views, int) and not isinstance(logged_views, bool) and logged_views == views
            and isinstance(logged_augment, bool) and logged_augment == bool(augment))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _extraction(enc: str, task: str, t: dict[str, Any], fresh: bool, config: RunConfig,
                known: dict[str, Any]) -> tuple[float | None, str]:
    """(seconds, how) of extracting ``task``'s embeddings with ``enc``; (None, why not)."""
    if t and t.get("extracted", True) and not fresh:
        return float(t["extract_s"]), ""
    tracks = _tracks(task, config, known)
    rate = _extract_rate(enc, config.settings.device, known)
    if tracks is None:
        return None, "not run here before: the tracks are counted when it is indexed"
    if rate is None:
        return None, f"no extraction by {enc} on {config.settings.device} measured here"
    return tracks / rate, f"{tracks} tracks at ~{rate:.3g} tracks/s"


def _probing(task: str, t: dict[str, Any], config: RunConfig, known: dict[str, Any]) -> tuple[float | None, str]:
    """(seconds, how) of probing ``task`` with every seed; (None, why not)."""
    seeds = len(config.settings.seeds)
    if t:
        return float(t["probe_s_per_seed"]) * seeds, ""
    tail = f"|{task}|{_limit(config)}|{_roots_id(config, task)}"
    others = [float(v["probe_s_per_seed"]) for k, v in known.items() if k.endswith(tail)]
    if not others:
        return None, "not probed here before"
    return statistics.median(others) * seeds, "as other encoders' probes of it"


def _limit(config: RunConfig) -> str:
    return str(config.settings.limit) if config.settings.limit is not None else "all"


def _tracks(task: str, config: RunConfig, known: dict[str, Any]) -> int | None:
    tail = f"|{task}|{_limit(config)}|{_roots_id(config, task)}"
    counts = [int(v["tracks"]) for k, v in known.items() if k.endswith(tail) and v.get("tracks")]
    return counts[-1] if counts else None


def _extract_rate(enc: str, device: str, known: dict[str, Any]) -> float | None:
    """Tracks per second of ``enc``'s measured extractions (those not served from the cache) on ``device``."""
    done = [v for k, v in known.items() if k.startswith(f"{enc}|") and v.get("extracted") and v.get("tracks")
            and v.get("device") == device and float(v.get("extract_s") or 0) > 0]
    if not done:
        return None
    return sum(int(v["tracks"]) for v in done) / sum(float(v["extract_s"]) for v in done)


def observe(records: list[dict[str, Any]], config: RunConfig) -> None:
    """Keep the measured times of the pairs these records come from (reused records measured nothing)."""
    pairs: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("reused") or r.get("condition", "clean") != "clean" or "(own head)" in str(r.get("variant")):
            continue
        pairs.setdefault(_key(r["encoder"], r["task"], r.get("limit"), _roots_id(config, r["task"])), []).append(r)
    if not pairs:
        return
    doc = _load()
    for key, rs in pairs.items():
        timings = [r.get("timings") or {} for r in rs]
        probe = [float(t.get("probe_s") or 0.0) for t in timings]
        data = rs[-1].get("data") or {}
        cache = rs[-1].get("cache") or {}
        doc[key] = {"extract_s": max(float(t.get("extract_s") or 0.0) for t in timings),
                    "probe_s_per_seed": sum(probe) / len(probe), "seeds": len(rs),
                    "tracks": sum(int(n) for n in (data.get("tracks") or {}).values()) or None,
                    # embeddings computed (not all served from the cache): extract_s is a real extraction time
                    "extracted": any(v != "hit" for v in cache.values()) if isinstance(cache, dict) else True,
                    "device": rs[-1].get("device"), "created": rs[-1].get("created")}
    try:
        from bench.store import atomic_write

        path = _cache() / FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    except OSError:
        pass  # an estimate for next time is never worth failing a run
