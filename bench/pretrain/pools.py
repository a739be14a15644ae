"""Pretraining pools: the labeled and unlabeled tracks, from the data the user has.

:func:`plan_pools` decides, before anything is decoded, which tasks and
folders feed the pools: with no explicit unlabeled pool, the train splits of
every registered task whose data is present (the demo data when no data root
is configured); the encoder's labeled tasks, cut to those present when they
are a default (:attr:`bench.encoder.LabelSpec.required` false) and an error
when the user named them. The plan says what it used and what it could not
find; it is part of the checkpoint key and of the run record.

:func:`build_pools` turns a plan into tracks. The validation and test tracks
of every registered task whose data is present are collected first, and any
pool track with the same resolved path or the same track id (within one
dataset) is dropped; the check is recorded. With ``validation=True`` (early
stopping: :attr:`bench.encoder.Recipe.early_stopping_patience`) it also lists
the labeled tasks' valid tracks, with their labels in the same label space, as
``Pools.valid``: they decide when training stops and which weights are kept,
and never enter a batch that takes a gradient step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import plugins, snapshot
from bench.config import DataRoots, demo_root
from bench.encoder import LabelGroup, LabelSpace, LabelSpec, Recipe
from bench.errors import BenchError, DataError
from bench.task import Item, Task


@dataclass(frozen=True)
class Track:
    """One pool track: an audio file (optionally a span) and, for labeled clips, its multi-hot label."""

    path: str
    track_id: str
    source: str
    label: tuple[int, ...] | None = None
    start: float | None = None
    end: float | None = None
    group: int = 0  # which labeled task (index into LabelSpace.groups) the label belongs to


@dataclass
class TaskData:
    """A task whose train split was found: the task, its data root and the indexed split."""

    task: Task
    root: Path
    demo: bool
    items: list[Item]
    problems: int


@dataclass
class PoolPlan:
    """Which tasks and folders feed the pools, and which were asked for but not found."""

    labeled: list[TaskData] = field(default_factory=list)
    unlabeled: list[TaskData] = field(default_factory=list)
    dirs: tuple[str, ...] = ()
    #: FMA folders (``-O unlabeled_dirs=fma:DIR``, or a folder with FMA's layout): their training split
    fma: dict[str, Any] = field(default_factory=dict)
    #: task -> why its train split could not be used (no data under the root, a broken plugin, ...)
    absent: dict[str, str] = field(default_factory=dict)
    #: labeled tasks of the encoder's default that were left out because their data is absent
    labeled_dropped: list[str] = field(default_factory=list)
    spec: LabelSpec = field(default_factory=LabelSpec)
    #: the unlabeled tasks were the default (every task present) rather than named
    unlabeled_default: bool = True

    def data_sources(self) -> dict[str, Any]:
        """What each pool is made of: part of the checkpoint key.

        Per task the origin ("demo" or the resolved root) and the content
        fingerprint of its train split, and of each unlabeled folder the content
        of its audio files (every file's bytes, memoised by stat: :mod:`bench.keys`),
        so changed audio under the same path is another checkpoint, never a stale one.
        """
        from bench.keys import folder_fingerprint

        def source(d: TaskData) -> dict[str, str]:
            return {"origin": "demo" if d.demo else str(d.root), "train": snapshot.fingerprint({"train": d.items}, d.root)}

        from bench.pretrain.fma import fingerprint

        return {
            "labeled": {d.task.name: source(d) for d in self.labeled},
            "unlabeled": {d.task.name: source(d) for d in self.unlabeled},
            # no folder: an empty list, as before, so checkpoints without one keep their key
            "dirs": {d: folder_fingerprint(d) for d in self.dirs} if self.dirs else [],
            # no FMA folder: no entry, so every other checkpoint keeps its key
            **({"fma": {d: fingerprint(f) for d, f in self.fma.items()}} if self.fma else {}),
        }

    def describe(self) -> str:
        """One paragraph for the terminal: what feeds each pool and what was not found."""
        lab = ", ".join(f"{d.task.name} ({len(d.items)} train tracks)" for d in self.labeled) or "none"
        unl = [f"{d.task.name} ({len(d.items)})" for d in self.unlabeled] + [f"folder {p}" for p in self.dirs]
        unl += [f"FMA {f.audio_dir} ({len(f.files)} training tracks; {f.missing} without a file, {f.bad_rows} "
                f"unreadable rows)" for f in self.fma.values()]
        lines = [f"labeled pool: {lab}", f"unlabeled pool: {', '.join(unl) or 'none'}"]
        if self.labeled_dropped:
            lines.append(f"left out of the labeled pool (no data): {', '.join(self.labeled_dropped)}")
        if self.absent:
            lines.append("not found: " + "; ".join(f"{k}: {v}" for k, v in sorted(self.absent.items())))
        return "\n".join(lines)


def _resolve(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def _first_line(exc: BaseException) -> str:
    """The first sentence of an error: enough to say why a task is absent, on one line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = text.split(". ")[0][:300]
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, BenchError) else text


def _train_data(name: str, data_roots: DataRoots) -> TaskData:
    """The train split of task ``name``; DataError when its data is not there."""
    task = plugins.get_task(name)
    root = data_roots.root(task)
    split = snapshot.items(task, "train", root)
    if not split.items:
        raise DataError(f"task {name!r} has no train tracks under {root}. {task.data_help()}")
    return TaskData(task, root, data_roots.is_demo(name), list(split.items), len(split.problems))


def plan_pools(spec: LabelSpec, recipe: Recipe, data_roots: DataRoots) -> PoolPlan:
    """Decide the pools' sources from the encoder's label spec, the recipe and the data present."""
    from bench.pretrain import fma

    dirs, fma_dirs = [], {}
    for d in recipe.unlabeled_dirs:
        path = _resolve(d[len(fma.PREFIX):] if d.startswith(fma.PREFIX) else d)
        if d.startswith(fma.PREFIX) or fma.is_fma(path):  # read now: a bad FMA folder fails before decoding
            fma_dirs[path] = fma.read(path)
        else:
            dirs.append(path)
    plan = PoolPlan(spec=spec, dirs=tuple(dirs), fma=fma_dirs)
    found: dict[str, TaskData] = {}

    def find(name: str) -> TaskData | None:
        if name in found:
            return found[name]
        if name in plan.absent:
            return None
        try:
            found[name] = _train_data(name, data_roots)
            return found[name]
        except BenchError as exc:
            plan.absent[name] = _first_line(exc)
        except Exception as exc:  # a broken task plugin: recorded, the other tasks still feed the pools
            plan.absent[name] = f"task plugin failed: {_first_line(exc)}"
        return None

    known = set(plugins.tasks().names())
    for name in spec.tasks:
        if name not in known:
            plugins.tasks().get(name)  # raises UnknownNameError with did-you-mean
        data = find(name)
        if data is None:
            if spec.required:
                raise DataError(f"labeled task {name!r}: {plan.absent[name]}")
            plan.labeled_dropped.append(name)
            continue
        if data.task.kind not in ("multilabel", "multiclass"):
            raise BenchError(f"labeled task {name!r} is {data.task.kind}; pretraining needs multilabel or "
                             "multiclass labels")
        plan.labeled.append(data)
    if spec.tasks and spec.share > 0 and not plan.labeled:
        raise DataError(
            f"none of the default labeled tasks ({', '.join(spec.tasks)}) has data: "
            + "; ".join(f"{k}: {v}" for k, v in plan.absent.items() if k in spec.tasks)
            + ". Name a labeled task you have with -O label_task=TASK (bench pretrain --label-task TASK)."
        )
    if spec.share < 1.0:
        plan.unlabeled_default = recipe.unlabeled_tasks is None
        if recipe.unlabeled_tasks is None:
            # the tasks of `--tasks all` (not the `extended` groups: nsynth_instrument reads nsynth_pitch's files)
            names = [] if plan.dirs or plan.fma else plugins.tasks().resolve("all")
        else:
            names = list(recipe.unlabeled_tasks)
        for name in names:
            if name not in known:
                plugins.tasks().get(name)
            data = find(name)
            if data is None and not plan.unlabeled_default:
                raise DataError(f"unlabeled task {name!r}: {plan.absent[name]}")
            if data is not None:
                plan.unlabeled.append(data)
        if not plan.unlabeled and not plan.dirs and not plan.fma:
            raise DataError(
                "the unlabeled pool is empty: no task has data"
                + (" (" + "; ".join(f"{k}: {v}" for k, v in sorted(plan.absent.items())) + ")" if plan.absent else "")
                + ". Give a data root (--data-root DIR), a folder of audio (-O unlabeled_dirs=DIR, bench pretrain "
                "--unlabeled-dir DIR) or a task (-O unlabeled_tasks=TASK)."
            )
    return plan


@dataclass
class Pools:
    labeled: list[Track] = field(default_factory=list)
    unlabeled: list[Track] = field(default_factory=list)
    space: LabelSpace = field(default_factory=LabelSpace)
    held_out: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    #: the labeled tasks' valid tracks (labels in ``space``), built only for early stopping
    valid: list[Track] = field(default_factory=list)


def held_out_tracks(data_roots: DataRoots) -> tuple[set[str], dict[str, set[str]], dict[str, Any]]:
    """Validation and test tracks of every registered task whose data is present.

    Returns (resolved paths, track ids per task, a record of what was checked).
    A task in demo mode whose demo data was never built has no files anywhere
    a pool could read, so nothing of it can leak; it is recorded as such. A
    task whose data root is configured but unreadable is recorded as
    unchecked with the reason (its files could still be in a pool folder).
    """
    paths: set[str] = set()
    ids: dict[str, set[str]] = {}
    record: dict[str, Any] = {"checked": {}, "not_built": [], "unchecked": {}}
    for name in plugins.tasks().names():
        try:
            task = plugins.get_task(name)
        except Exception as exc:  # a broken task plugin must not stop pretraining, but is recorded
            record["unchecked"][name] = f"cannot create task: {exc}"
            continue
        if data_roots.is_demo(name):
            marker = demo_root(data_roots.demo_size, data_roots.demo_seed) / f".{name}.done"
            if not marker.exists():
                record["not_built"].append(name)
                continue
        try:
            root = data_roots.root(task)
            counts = {}
            for split in ("valid", "test"):
                items = task.items(split, root)
                counts[split] = len(items)
                for item in items:
                    paths.add(_resolve(item.path))
                    ids.setdefault(name, set()).add(str(item.track_id))
            record["checked"][name] = counts
        except Exception as exc:  # recorded, not fatal: a broken task must not block other tasks' runs
            record["unchecked"][name] = _first_line(exc)
    return paths, ids, record


def _multi_hot(label: Any, n: int, task_name: str) -> tuple[int, ...]:
    idx = (label,) if isinstance(label, (int, np.integer)) else tuple(label)
    if any(isinstance(i, (float, np.floating)) for i in idx):
        raise DataError(f"task {task_name!r} is a regression task (float targets): it cannot be a labeled "
                        "pretraining task (-O label_task); name a classification or tagging task")
    for i in idx:
        if not 0 <= int(i) < n:
            raise DataError(f"task {task_name!r}: label index {i} outside its {n} classes")
    return tuple(sorted({int(i) for i in idx}))


def build_pools(plan: PoolPlan, data_roots: DataRoots, *, seed: int = 123, validation: bool = False,
                ps_twice: bool = False) -> Pools:
    """The tracks of a plan, with the validation and test tracks of every task removed.

    ``plan.spec.fraction`` keeps a deterministic subset (seeded permutation)
    of each labeled train split; ``ps_twice`` (recipe ``official_ps_twice``)
    cuts that subset by the fraction again, as the official SemiSupCon code
    does when its first cut takes effect (docs/protocols.md, "Label fraction"). ``validation``: also list every labeled
    task's whole valid split as ``Pools.valid`` (labels in the same space);
    a labeled task without valid tracks is then an error.
    """
    from bench.audio import AUDIO_EXTENSIONS, find_audio

    pools = Pools()
    bad_paths, bad_ids, record = held_out_tracks(data_roots)
    all_bad_ids = set().union(*bad_ids.values()) if bad_ids else set()
    excluded: list[dict[str, str]] = []
    task_dirs: dict[str, tuple[str, ...]] = {}

    def same_dataset_ids(task: Task) -> set[str]:
        out: set[str] = set()
        for other, tids in bad_ids.items():
            dirs = task_dirs.get(other)
            if dirs is None:
                try:
                    dirs = tuple(plugins.get_task(other).dataset_dirs)
                except Exception:  # a broken plugin: its ids still count for its own name
                    dirs = ()
                task_dirs[other] = dirs
            if other == task.name or set(dirs) & set(task.dataset_dirs):
                out |= tids
        return out

    def keep(path: str, track_id: str, ids: set[str], source: str) -> bool:
        rp = _resolve(path)
        if rp in bad_paths:
            excluded.append({"path": rp, "source": source, "reason": "same file as a valid/test track"})
            return False
        if track_id in ids:
            excluded.append({"path": rp, "source": source, "reason": f"track id {track_id!r} is a valid/test track"})
            return False
        return True

    spec = plan.spec
    several = len(plan.labeled) > 1
    classes: list[str] = []
    groups: list[LabelGroup] = []
    labeled_sources: list[dict[str, Any]] = []
    for data in plan.labeled:
        task, name = data.task, data.task.name
        task_classes = list(task.classes(data.root))
        ids = same_dataset_ids(task)
        g, offset = len(groups), len(classes)
        tracks = [
            Track(it.path, str(it.track_id), f"task:{name}",
                  tuple(offset + i for i in _multi_hot(it.label, len(task_classes), name)), it.start, it.end, g)
            for it in data.items
            if keep(it.path, str(it.track_id), ids, f"task:{name}")
        ]
        if not tracks:
            raise DataError(f"labeled task {name!r} has no usable train tracks under {data.root} (all are "
                            f"valid/test tracks of some task). {task.data_help()}")
        n_keep = max(1, int(round(spec.fraction * len(tracks))))
        order = np.random.default_rng([seed, 1] if not several else [seed, 1, g]).permutation(len(tracks))
        if ps_twice:  # the second cut: a seeded subset of the first one's tracks
            n_first, n_keep = n_keep, max(1, int(round(spec.fraction * n_keep)))
            again = np.random.default_rng([seed, 2] if not several else [seed, 2, g]).permutation(n_first)
            order = order[:n_first][again]
        pools.labeled += [tracks[i] for i in sorted(order[:n_keep])]
        classes += [f"{name}:{c}" if several else c for c in task_classes]
        groups.append(LabelGroup(name, task.kind, offset, len(task_classes), n_keep))
        labeled_sources.append({"task": name, "root": _resolve(data.root), "demo": data.demo,
                                "train_tracks": len(tracks), "kept": n_keep, "label_fraction": spec.fraction,
                                **({"label_fraction_applied_twice": True} if ps_twice else {}),
                                "problems": data.problems})
        if validation:
            valid = task.items("valid", data.root)
            if not valid.items:
                raise DataError(f"early stopping needs the valid split of labeled task {name!r}, and it has no "
                                f"tracks under {data.root}; set early_stopping_patience=0 or give its valid split")
            pools.valid += [
                Track(it.path, str(it.track_id), f"valid:{name}",
                      tuple(offset + i for i in _multi_hot(it.label, len(task_classes), name)), it.start, it.end, g)
                for it in valid.items
            ]
            labeled_sources[-1]["valid_tracks"] = len(valid.items)
    if groups:
        kind = groups[0].kind if not several else "multitask"
        pools.space = LabelSpace(tuple(classes), kind, tuple(groups))
    pools.sources = {"labeled": labeled_sources, "labeled_dropped": list(plan.labeled_dropped),
                     "unlabeled": [], "unlabeled_default": plan.unlabeled_default, "absent": dict(plan.absent)}

    for data in plan.unlabeled:
        name = data.task.name
        ids = same_dataset_ids(data.task)
        kept = [Track(it.path, str(it.track_id), f"task:{name}", None, it.start, it.end)
                for it in data.items if keep(it.path, str(it.track_id), ids, f"task:{name}")]
        pools.unlabeled += kept
        pools.sources["unlabeled"].append({"task": name, "root": _resolve(data.root), "demo": data.demo,
                                           "tracks": len(kept), "problems": data.problems})
    for folder_name in plan.dirs:
        folder = Path(folder_name)
        if not folder.is_dir():
            raise DataError(f"unlabeled audio folder {folder} does not exist or is not a folder")
        files = find_audio(folder)
        if not files:
            raise DataError(
                f"unlabeled audio folder {folder} holds no audio files (looked recursively for "
                f"{', '.join(AUDIO_EXTENSIONS)}). Point --unlabeled-dir at a folder of music."
            )
        stems = {Path(p).stem for p in bad_paths}
        kept = [Track(str(f), f.stem, f"dir:{folder}") for f in files
                if keep(str(f), f.stem, all_bad_ids | stems, f"dir:{folder}")]
        pools.unlabeled += kept
        pools.sources["unlabeled"].append({"dir": str(folder), "files": len(files), "tracks": len(kept)})
    for where, pool in plan.fma.items():
        stems = {Path(p).stem for p in bad_paths}
        kept = [Track(str(f), f.stem, f"fma:{where}") for f in pool.files
                if keep(str(f), f.stem, all_bad_ids | stems, f"fma:{where}")]
        pools.unlabeled += kept
        pools.sources["unlabeled"].append({**pool.record(), "kept": len(kept)})
    if spec.share < 1.0 and not pools.unlabeled:
        raise DataError("the unlabeled pool is empty after removing valid/test tracks; give another folder or task")
    pools.held_out = {**record, "excluded_count": len(excluded), "excluded": excluded[:200],
                      "check": "resolved absolute path and track id against valid+test of every task checked"}
    return pools
