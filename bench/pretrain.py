"""Pretraining stage: train a trainable encoder (SemiSupCon, SimCLR, supervised) with Accelerate.

Single process::

    bench pretrain --encoder semisupcon --preset demo

Several processes (DDP; the same command, launched by Accelerate)::

    accelerate launch --num_processes 4 -m bench.cli pretrain --encoder semisupcon --preset paper
    accelerate launch --num_processes 2 --cpu $(which bench) pretrain --encoder simclr   # CPU, gloo

``python -m bench.pretrain ...`` takes the same arguments (handy where the
``bench`` script is not on the PATH).

What it does (docs/pretraining.md has the long form):

- Pools. Labeled: the train split of a registered task (``label_task``),
  labels as multi-hot rows, a deterministic fraction ``label_fraction``
  (p_s) of it. Several tasks (``label_task="mtat,gtzan"``) share one
  concatenated label space (``task:class``); a clip's row is -1 on the other
  tasks' classes (unknown, not absent), each step draws one labeled task
  for all its labeled clips (``labeled_mix="step"``; ``"row"``: a task per
  clip), and the supervised baseline averages one loss per task over the
  rows of that task. Unlabeled: audio folders (recursive) and/or train splits of
  tasks. The validation and test tracks of every registered task whose data
  is present are collected first, and any pool track with the same resolved
  path or the same track id is dropped; the check (tasks checked, tasks that
  could not be, every exclusion) is written to the run record and the
  metrics log.
- Audio. Every pool track is decoded once at the encoder's sample rate into
  a memory-mapped float32 cache under ``<cache>/pretrain-audio`` (shared by
  runs and processes); views are cropped from it.
- Batches. Step ``s`` draws its global batch from ``numpy.random.default_rng
  ((seed, s))``: ``round(batch * labeled_share)`` labeled clips first, then
  unlabeled ones, each part with replacement from its pool; per clip one
  span of ``views * window`` samples cut into adjacent views (a shorter clip
  gives independent random windows, zero-padded when shorter than a window).
  Process ``r`` of ``W`` takes rows ``r, r+W, ...``. Because the batch is a
  function of (seed, step) alone, resuming needs no sampler state beyond the
  step, and the global batch does not depend on the number of processes.
- Augmentation runs batched on the device (:class:`bench.augment.Augmenter`)
  with a generator seeded by (seed, step, rank), for the same reason.
- Optimisation. Adam at the preset's learning rate, fp32 (bf16 autocast and
  ``torch.compile`` are options for GPUs and are refused on CPU). With
  several processes BatchNorm is synchronised (global batch statistics) and
  the contrastive loss gathers every process's views as negatives, so a
  multi-process run computes the same thing as one process on the global
  batch.
- Checkpoints. ``train-state.pt`` (weights, optimizer, step, RNG states,
  sampler position, encoder config and recipe) is written atomically every
  ``checkpoint_every`` steps and at the end; a run restarted with the same
  run folder resumes from it and ends with the same weights as a run that
  was never interrupted. It is read with ``torch.load(weights_only=True)``
  and refused when it belongs to another encoder, preset or recipe.
- A non-finite loss stops the run (before the update) with the step and the
  last good checkpoint in the message.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import BenchError, DataError

BUILTIN_TASKS = ("mtat", "gtzan", "giantsteps_key", "nsynth_pitch")
STATE_FILE = "train-state.pt"
METRICS_FILE = "metrics.jsonl"
RECORD_FILE = "run.json"
#: recipe keys whose change makes a training checkpoint another run (refused on resume)
IDENTITY_KEYS = ("batch_size", "lr", "views", "seed", "augment", "severity", "p_apply")


# --------------------------------------------------------------------------- pools


@dataclass(frozen=True)
class Track:
    """One pool track: an audio file (optionally a span) and, for labeled clips, its multi-hot label."""

    path: str
    track_id: str
    source: str
    label: tuple[int, ...] | None = None
    start: float | None = None
    end: float | None = None
    group: int = 0  # which labeled task (index into Pools.groups) the label belongs to


@dataclass
class Pools:
    labeled: list[Track] = field(default_factory=list)
    unlabeled: list[Track] = field(default_factory=list)
    classes: list[str] | None = None
    label_kind: str | None = None
    label_task: str | None = None
    #: one entry per labeled task: task, kind, offset and size of its block of ``classes``, tracks kept
    groups: list[dict[str, Any]] = field(default_factory=list)
    held_out: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)


def _resolve(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def held_out_tracks(data_roots: Any, *, quiet: bool = True) -> tuple[set[str], dict[str, set[str]], dict[str, Any]]:
    """Validation and test tracks of every registered task whose data is present.

    Returns (resolved paths, track ids per task, a record of what was checked).
    A task in demo mode whose demo data was never built has no files anywhere
    a pool could read, so nothing of it can leak; it is recorded as such. A
    task whose data root is configured but unreadable is recorded as
    unchecked with the reason (its files could still be in a pool folder).
    """
    from bench import plugins
    from bench.config import demo_root

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
            record["unchecked"][name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"

    return paths, ids, record


def split_tasks(label_task: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Task names of a ``label_task`` setting: ``"mtat"``, ``"mtat,gtzan"`` or a list; duplicates refused."""
    if not label_task:
        return []
    names = [t.strip() for t in (label_task.split(",") if isinstance(label_task, str) else label_task) if t.strip()]
    dupes = sorted({t for t in names if names.count(t) > 1})
    if dupes:
        raise BenchError(f"label_task names a task twice: {', '.join(dupes)}")
    return names


def _task_train_tracks(task: Any, root: Path, source: str) -> tuple[list[Any], list[str]]:
    split = task.items("train", root)
    return list(split.items), [str(p) for p in split.problems]


def _multi_hot(label: Any, n: int, task_name: str) -> tuple[int, ...]:
    idx = (label,) if isinstance(label, (int, np.integer)) else tuple(label)
    for i in idx:
        if not 0 <= int(i) < n:
            raise DataError(f"task {task_name!r}: label index {i} outside its {n} classes")
    return tuple(sorted({int(i) for i in idx}))


def build_pools(
    *,
    data_roots: Any,
    label_task: str | None,
    label_fraction: float = 1.0,
    unlabeled_tasks: list[str] | tuple[str, ...] | None = (),
    unlabeled_dirs: list[str] | tuple[str, ...] = (),
    need_unlabeled: bool = True,
    seed: int = 123,
) -> Pools:
    """The labeled and unlabeled pools, with validation and test tracks of every task removed.

    ``unlabeled_tasks=None`` means the built-in tasks (``BUILTIN_TASKS``) that
    are registered. ``label_fraction`` keeps a deterministic subset (seeded
    permutation) of the labeled train split.
    """
    from bench import plugins
    from bench.audio import AUDIO_EXTENSIONS, find_audio

    if not 0 < label_fraction <= 1:
        raise BenchError(f"label_fraction (p_s) must be in (0, 1], got {label_fraction}")
    pools = Pools()
    bad_paths, bad_ids, record = held_out_tracks(data_roots)
    all_bad_ids = set().union(*bad_ids.values()) if bad_ids else set()
    excluded: list[dict[str, str]] = []
    task_dirs: dict[str, tuple[str, ...]] = {}

    def same_dataset_ids(task: Any) -> set[str]:
        out: set[str] = set()
        for other, tids in bad_ids.items():
            dirs = task_dirs.get(other)
            if dirs is None:
                try:
                    dirs = tuple(plugins.get_task(other).dataset_dirs)
                except Exception:
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

    # labeled pool: one task, or several (comma-separated) in one concatenated label space
    names = split_tasks(label_task)
    sources: list[dict[str, Any]] = []
    for name in names:
        task = plugins.get_task(name)
        if task.kind not in ("multilabel", "multiclass"):
            raise BenchError(f"labeled task {name!r} is {task.kind}; pretraining needs multilabel or multiclass labels")
        root = data_roots.root(task)
        classes = list(task.classes(root))
        items, problems = _task_train_tracks(task, root, name)
        ids = same_dataset_ids(task)
        group, offset = len(pools.groups), len(pools.classes or [])
        tracks = [
            Track(it.path, str(it.track_id), f"task:{name}",
                  tuple(offset + i for i in _multi_hot(it.label, len(classes), name)), it.start, it.end, group)
            for it in items
            if keep(it.path, str(it.track_id), ids, f"task:{name}")
        ]
        if not tracks:
            raise DataError(
                f"labeled task {name!r} has no usable train tracks under {root}"
                + (f" ({len(problems)} problems, first: {problems[0]})" if problems else "")
                + f". {task.data_help()}"
            )
        n_keep = max(1, int(round(label_fraction * len(tracks))))
        order = np.random.default_rng([seed, 1] if len(names) == 1 else [seed, 1, group]).permutation(len(tracks))
        pools.labeled += [tracks[i] for i in sorted(order[:n_keep])]
        prefix = f"{name}:" if len(names) > 1 else ""
        pools.classes = (pools.classes or []) + [f"{prefix}{c}" for c in classes]
        pools.groups.append({"task": name, "kind": task.kind, "offset": offset, "size": len(classes),
                             "tracks": n_keep})
        sources.append({"task": name, "root": _resolve(root), "demo": data_roots.is_demo(name),
                        "train_tracks": len(tracks), "kept": n_keep, "label_fraction": label_fraction,
                        "problems": len(problems)})
    if names:
        pools.label_kind = pools.groups[0]["kind"] if len(names) == 1 else "multitask"
        pools.label_task = ",".join(names)
        pools.sources["labeled"] = sources[0] if len(names) == 1 else sources

    # unlabeled pool
    if need_unlabeled:
        if unlabeled_tasks is None:
            registered = set(plugins.tasks().names())
            unlabeled_tasks = [t for t in BUILTIN_TASKS if t in registered]
            pools.sources["unlabeled_tasks_skipped"] = [t for t in BUILTIN_TASKS if t not in registered]
        pools.sources["unlabeled"] = []
        for name in unlabeled_tasks:
            task = plugins.get_task(name)
            root = data_roots.root(task)
            items, problems = _task_train_tracks(task, root, name)
            ids = same_dataset_ids(task)
            kept = [Track(it.path, str(it.track_id), f"task:{name}", None, it.start, it.end)
                    for it in items if keep(it.path, str(it.track_id), ids, f"task:{name}")]
            pools.unlabeled += kept
            pools.sources["unlabeled"].append({"task": name, "root": _resolve(root), "demo": data_roots.is_demo(name),
                                               "tracks": len(kept), "problems": len(problems)})
        for folder in unlabeled_dirs:
            folder = Path(folder).expanduser()
            if not folder.is_dir():
                raise DataError(f"unlabeled audio folder {folder} does not exist or is not a folder")
            files = find_audio(folder)
            if not files:
                raise DataError(
                    f"unlabeled audio folder {folder} holds no audio files (looked recursively for "
                    f"{', '.join(AUDIO_EXTENSIONS)}). Point --unlabeled-dir at a folder of music."
                )
            stems = {Path(p).stem for p in bad_paths}
            kept = []
            for f in files:
                if keep(str(f), f.stem, all_bad_ids | stems, f"dir:{folder}"):
                    kept.append(Track(str(f), f.stem, f"dir:{folder}"))
            pools.unlabeled += kept
            pools.sources["unlabeled"].append({"dir": _resolve(folder), "files": len(files), "tracks": len(kept)})
        if not pools.unlabeled:
            raise DataError(
                "the unlabeled pool is empty: give --unlabeled-dir DIR (a folder of audio) or --unlabeled-task "
                f"NAME (a task's train split); tasks tried: {list(unlabeled_tasks) or 'none'}"
            )
    pools.held_out = {**record, "excluded_count": len(excluded), "excluded": excluded[:200],
                      "check": "resolved absolute path and track id against valid+test of every task checked"}
    return pools


# --------------------------------------------------------------------------- audio


class AudioStore:
    """Every pool track decoded once at one sample rate, as one memory-mapped float32 array.

    The cache is keyed by the tracks (path, size, mtime, span) and the sample
    rate, so later runs and the other processes of a DDP run reuse it. Files
    that cannot be decoded are skipped and listed in ``failed``.
    """

    def __init__(self, tracks: list[Track], sample_rate: int, cache_dir: Path, quiet: bool = True) -> None:
        keys = sorted({(t.path, t.start, t.end) for t in tracks}, key=lambda k: (k[0], k[1] or 0.0, k[2] or 0.0))
        h = hashlib.sha256(f"sr={sample_rate}".encode())
        for path, start, end in keys:
            try:
                st = os.stat(path)
                h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}|{start}|{end}\n".encode())
            except OSError:
                h.update(f"{path}|missing|{start}|{end}\n".encode())
        folder = Path(cache_dir) / "pretrain-audio" / h.hexdigest()[:20]
        index_file = folder / "index.json"
        if not index_file.is_file():
            self._build(keys, sample_rate, folder, quiet)
        index = json.loads(index_file.read_text())
        self.folder = folder
        self.failed: list[str] = index["failed"]
        self.data = np.load(folder / "audio.npy", mmap_mode="r")
        self.spans = {(p, s, e): (o, n) for p, s, e, o, n in index["spans"]}

    @staticmethod
    def _build(keys: list[tuple], sample_rate: int, folder: Path, quiet: bool) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        from bench.audio import AudioError, load

        def decode(key):
            try:
                return load(key[0], sample_rate, key[1], key[2]), None
            except AudioError as exc:
                return None, str(exc)

        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"audio.npy.tmp-{os.getpid()}"
        spans, failed, offset, chunks = [], [], 0, []
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            results = pool.map(decode, keys)
            for key, (audio, err) in tqdm(zip(keys, results), total=len(keys), desc="decoding pool",
                                           unit="track", disable=quiet):
                if audio is None:
                    failed.append(err)
                    continue
                spans.append([key[0], key[1], key[2], offset, len(audio)])
                chunks.append(audio)
                offset += len(audio)
        np.save(tmp, np.concatenate(chunks) if chunks else np.zeros(0, np.float32), allow_pickle=False)
        # np.save appends .npy when the name lacks it
        written = tmp if tmp.exists() else Path(str(tmp) + ".npy")
        os.replace(written, folder / "audio.npy")
        itmp = folder / f"index.json.tmp-{os.getpid()}"
        itmp.write_text(json.dumps({"sample_rate": sample_rate, "spans": spans, "failed": failed}))
        os.replace(itmp, folder / "index.json")

    def has(self, t: Track) -> bool:
        return (t.path, t.start, t.end) in self.spans

    def get(self, t: Track) -> np.ndarray:
        o, n = self.spans[(t.path, t.start, t.end)]
        return self.data[o : o + n]


def crop_views(audio: np.ndarray, n_views: int, window: int, u: np.ndarray) -> np.ndarray:
    """``[n_views, window]`` views of one clip from uniform draws ``u`` (``[n_views]`` in [0, 1)).

    A clip of at least ``n_views * window`` samples gives one span cut into
    adjacent views (start from ``u[0]``); a shorter one gives independent
    random windows (start ``u[k]`` each), zero-padded if shorter than a window.
    """
    out = np.zeros((n_views, window), dtype=np.float32)
    span = n_views * window
    if len(audio) >= span:
        start = int(u[0] * (len(audio) - span + 1))
        out[:] = np.asarray(audio[start : start + span]).reshape(n_views, window)
        return out
    for k in range(n_views):
        start = int(u[k] * max(1, len(audio) - window + 1))
        piece = np.asarray(audio[start : start + window])
        out[k, : len(piece)] = piece
    return out


class BatchSampler:
    """The batch of step ``s`` as a pure function of (seed, s): labeled first, then unlabeled.

    ``rows(step)`` gives the global batch as (pool, index) pairs and the crop
    draws; ``batch(step, rank, world)`` the views and labels of one process's
    share (rows ``rank::world``).
    """

    def __init__(self, pools: Pools, store: AudioStore, *, batch_size: int, labeled_share: float, views: int,
                 window: int, seed: int, labeled_mix: str = "step") -> None:
        self.labeled = [t for t in pools.labeled if store.has(t)]
        self.unlabeled = [t for t in pools.unlabeled if store.has(t)]
        self.store = store
        self.batch_size, self.views, self.window, self.seed = batch_size, views, window, seed
        self.n_classes = len(pools.classes) if pools.classes else 0
        #: several labeled tasks: the labeled part of a step comes from one task drawn per step
        #: ("step"), or each labeled row draws its own task ("row"); then a track of that task
        self.groups = pools.groups if len(pools.groups) > 1 else []
        if labeled_mix not in ("step", "row"):
            raise BenchError(f"labeled_mix must be 'step' or 'row', got {labeled_mix!r}")
        self.labeled_mix = labeled_mix
        self._by_group = [np.array([i for i, t in enumerate(self.labeled) if t.group == g], dtype=int)
                          for g in range(len(self.groups))]
        empty = [self.groups[g]["task"] for g, idx in enumerate(self._by_group) if not len(idx)]
        if empty:
            raise DataError(f"labeled task(s) {', '.join(empty)}: no train track could be decoded")
        if not 0 <= labeled_share <= 1:
            raise BenchError(f"labeled_share (b_s) must be in [0, 1], got {labeled_share}")
        self.n_labeled = int(round(batch_size * labeled_share)) if self.labeled or labeled_share > 0 else 0
        if self.n_labeled and not self.labeled:
            raise DataError("labeled_share > 0 but the labeled pool is empty (no labeled task, or no decodable file)")
        if self.n_labeled < batch_size and not self.unlabeled:
            raise DataError(
                f"{batch_size - self.n_labeled} unlabeled clips per batch but the unlabeled pool is empty "
                "(no track could be decoded)" if pools.unlabeled else "the unlabeled pool is empty"
            )

    def rows(self, step: int) -> tuple[list[tuple[bool, int]], np.ndarray]:
        rng = np.random.default_rng([self.seed, step])
        if self.groups and self.n_labeled:
            if self.labeled_mix == "step":
                g = np.full(self.n_labeled, rng.integers(0, len(self.groups)))
            else:
                g = rng.integers(0, len(self.groups), size=self.n_labeled)
            pick = rng.random(self.n_labeled)
            lab = np.array([self._by_group[k][int(p * len(self._by_group[k]))] for k, p in zip(g, pick)], dtype=int)
        else:
            lab = rng.integers(0, len(self.labeled), size=self.n_labeled) if self.n_labeled else np.zeros(0, int)
        n_u = self.batch_size - self.n_labeled
        unl = rng.integers(0, len(self.unlabeled), size=n_u) if n_u else np.zeros(0, int)
        u = rng.random((self.batch_size, self.views))
        return [(True, int(i)) for i in lab] + [(False, int(i)) for i in unl], u

    def batch(self, step: int, rank: int = 0, world: int = 1) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        rows, u = self.rows(step)
        mine = list(range(rank, self.batch_size, world))
        views = np.stack([crop_views(self.store.get(self._track(rows[i])), self.views, self.window, u[i]) for i in mine])
        labeled = np.array([rows[i][0] for i in mine], dtype=bool)
        labels = None
        if self.n_classes:
            labels = np.zeros((len(mine), self.n_classes), dtype=np.float32)
            for k, i in enumerate(mine):
                if rows[i][0]:
                    t = self.labeled[rows[i][1]]
                    if self.groups:  # -1: classes of the other tasks, unknown for this clip
                        g = self.groups[t.group]
                        labels[k, :] = -1.0
                        labels[k, g["offset"] : g["offset"] + g["size"]] = 0.0
                    labels[k, list(t.label)] = 1.0
        return views, labels, labeled

    def _track(self, row: tuple[bool, int]) -> Track:
        return self.labeled[row[1]] if row[0] else self.unlabeled[row[1]]


# --------------------------------------------------------------------------- training


def _seed_int(*parts: int) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") & ((1 << 63) - 1)


def _rng_state() -> dict[str, Any]:
    import torch

    np_state = np.random.get_state()
    st = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "python": [st[0], list(st[1]), st[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_atomic(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _identity(encoder: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    return {"encoder": encoder.name, "config": encoder.config(),
            "recipe": {k: recipe.get(k) for k in IDENTITY_KEYS}}


def load_train_state(path: Path, encoder: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    """Read a training checkpoint (weights_only) and refuse one of another encoder, preset or recipe."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BenchError(f"training checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                         "delete it to start over") from exc
    saved = json.loads(state.get("identity", "{}"))
    mine = _identity(encoder, recipe)
    if saved != json.loads(json.dumps(mine)):
        raise BenchError(
            f"training checkpoint {path} belongs to another run:\n  saved:   {json.dumps(saved, sort_keys=True)}\n"
            f"  current: {json.dumps(mine, sort_keys=True)}\n"
            "Use the same encoder, preset and recipe to resume, or another run folder (or --no-resume) to start over."
        )
    return state


@dataclass
class PretrainResult:
    steps: int
    final_loss: float | None
    run_dir: Path
    record: dict[str, Any]
    stopped_early: bool = False


def pretrain(
    encoder: Any,
    *,
    data_roots: Any,
    run_dir: str | Path,
    cache_dir: str | Path | None = None,
    device: str | None = "cpu",
    quiet: bool = False,
    resume: bool = True,
    overrides: dict[str, Any] | None = None,
    mixed_precision: str = "no",
    compile: bool = False,
    sync_batchnorm: bool = True,
    stop_after: int | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Train ``encoder`` in place with its recipe (plus ``overrides``); return a summary.

    ``run_dir`` holds ``train-state.pt``, ``metrics.jsonl`` and ``run.json``;
    with ``resume`` a run continues from the state found there.
    ``stop_after``: stop (as if killed, no checkpoint written) once this
    step is reached; for tests of resuming. ``quiet`` hides messages and
    progress bars; ``progress=False`` hides only the bars.
    """
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from bench import config as bench_config
    from bench import dist

    if not getattr(encoder, "trainable", False):
        raise BenchError(f"encoder {encoder.name!r} cannot be pretrained (it has no pretraining objective)")
    if not callable(getattr(encoder, "recipe", None)) or not callable(getattr(encoder, "setup_pretraining", None)):
        raise BenchError(
            f"encoder {encoder.name!r} has a pretrain_loss but no recipe()/setup_pretraining(); "
            "bench pretrain needs both (see bench_plugins.ssl_encoders.SampleCNNEncoder for an example)"
        )
    recipe = {**encoder.recipe(), **(overrides or {})}
    obj = getattr(encoder, "objective", {})
    run_dir = Path(run_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else bench_config.cache_dir()
    if device == "cpu" and (mixed_precision != "no" or compile):
        raise BenchError("bf16 autocast and torch.compile are GPU options; leave them off on CPU")
    accelerator = Accelerator(cpu=(device == "cpu"), mixed_precision=mixed_precision)
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    quiet = quiet or not main
    batch_size, n_views, steps = int(recipe["batch_size"]), int(recipe["views"]), int(recipe["steps"])
    if batch_size % world:
        raise BenchError(f"batch_size {batch_size} is not divisible by the {world} processes")

    with accelerator.main_process_first():
        pools = build_pools(
            data_roots=data_roots,
            label_task=obj.get("label_task"),
            label_fraction=float(obj.get("label_fraction", 1.0)),
            unlabeled_tasks=recipe.get("unlabeled_tasks"),
            unlabeled_dirs=tuple(recipe.get("unlabeled_dirs") or ()),
            need_unlabeled=float(obj.get("labeled_share", 0.0)) < 1.0,
            seed=int(recipe["seed"]),
        )
        store = AudioStore(pools.labeled + pools.unlabeled, encoder.sample_rate, cache_dir,
                           quiet=quiet or not progress)
    sampler = BatchSampler(pools, store, batch_size=batch_size, labeled_share=float(obj.get("labeled_share", 0.0)),
                           views=n_views, window=encoder.window, seed=int(recipe["seed"]),
                           labeled_mix=str(recipe.get("labeled_mix", "step")))
    if len(pools.groups) > 1:
        encoder.setup_pretraining(len(pools.classes), pools.label_kind, groups=pools.groups)
    else:
        encoder.setup_pretraining(len(pools.classes) if pools.classes else None, pools.label_kind)

    model = encoder.module
    model.to(accelerator.device)
    if world > 1 and sync_batchnorm:
        # train a converted copy: the encoder keeps plain BatchNorm (same state-dict keys) for embed()
        import copy

        model = copy.deepcopy(model)
        if accelerator.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            model = dist.convert_sync_batchnorm(model)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=float(recipe["lr"]), weight_decay=0.0)

    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / STATE_FILE
    metrics_path = run_dir / METRICS_FILE
    start_step, resumed_from = 0, None
    if resume and state_path.is_file():
        state = load_train_state(state_path, encoder, recipe)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        start_step = resumed_from = int(state["step"])
    elif not resume and main:
        for f in (state_path, metrics_path):
            f.unlink(missing_ok=True)
    accelerator.wait_for_everyone()

    model, optimizer = accelerator.prepare(model, optimizer)
    if compile:
        model = torch.compile(model)
    augmenter = None
    if recipe.get("augment"):
        try:
            from bench.augment import Augmenter
        except ImportError as exc:
            raise BenchError(f"augmentation is on but bench.augment cannot be imported ({exc}); "
                             "install the full package or pass augment=False / --no-augment") from exc
        augmenter = Augmenter(encoder.sample_rate, severity=float(recipe["severity"]), p_apply=float(recipe["p_apply"]))

    record = {
        "encoder": encoder.name,
        "config": encoder.config(),
        "recipe": {k: (list(v) if isinstance(v, tuple) else v) for k, v in recipe.items()},
        "world_size": world,
        "device": str(accelerator.device),
        # CPU weights depend on it (sums in another order): recorded so runs can be compared
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mixed_precision": mixed_precision,
        "sync_batchnorm": bool(world > 1 and sync_batchnorm),
        "pools": {"labeled": len(sampler.labeled), "unlabeled": len(sampler.unlabeled),
                  "labeled_per_batch": sampler.n_labeled, "classes": len(pools.classes or []),
                  "label_kind": pools.label_kind, "sources": pools.sources},
        "held_out_check": pools.held_out,
        "undecodable": store.failed,
        "audio_cache": str(store.folder),
        "resumed_from": resumed_from,
    }

    def log(entry: dict[str, Any]) -> None:
        if main:
            with metrics_path.open("a") as f:
                f.write(json.dumps({"time": time.time(), **entry}) + "\n")

    log({"event": "resume" if resumed_from is not None else "start", "step": start_step, **record})

    def save(step: int) -> None:
        unwrapped = accelerator.unwrap_model(model)
        if main:
            _write_atomic({
                "identity": json.dumps(_identity(encoder, recipe)),
                "step": step,
                "model": {k: v.detach().cpu() for k, v in unwrapped.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "rng": _rng_state(),
                "sampler": {"kind": "stateless: batch(step) = f(seed, step)", "next_step": step},
            }, state_path)
            log({"event": "checkpoint", "step": step, "path": str(state_path)})
        accelerator.wait_for_everyone()

    last_good = state_path if state_path.is_file() else None
    loss_value: float | None = None
    bar = tqdm(total=steps, initial=start_step, desc=f"pretrain {encoder.name}", unit="step",
               disable=quiet or not progress)
    t_last, clips_since = time.perf_counter(), 0
    step = start_step
    every, log_every = int(recipe["checkpoint_every"]), int(recipe["log_every"])
    try:
        while step < steps:
            views_np, labels_np, labeled_np = sampler.batch(step, rank, world)
            views = torch.from_numpy(views_np).to(accelerator.device)
            labels = torch.from_numpy(labels_np).to(accelerator.device) if labels_np is not None else None
            labeled = torch.from_numpy(labeled_np).to(accelerator.device)
            if augmenter is not None:
                gen = torch.Generator(device=accelerator.device)
                gen.manual_seed(_seed_int(int(recipe["seed"]), step, rank))
                with torch.no_grad():
                    views = augmenter(views, generator=gen)
            optimizer.zero_grad(set_to_none=True)
            with accelerator.autocast():
                loss = encoder.pretrain_loss(views, labels, labeled, model=model)
            losses = accelerator.gather(loss.detach().float().reshape(1))
            if not bool(torch.isfinite(losses).all()):
                log({"event": "nan", "step": step, "loss": [float(x) for x in losses]})
                raise BenchError(
                    f"pretraining {encoder.name!r} stopped: the loss became {float(losses[0])} at step {step} "
                    f"(before its update). Last good checkpoint: "
                    f"{last_good if last_good else 'none (no checkpoint written yet)'} in run folder {run_dir}. "
                    "Lower the learning rate (--lr) or check the audio for silence/NaN, then resume."
                )
            accelerator.backward(loss)
            optimizer.step()
            step += 1
            loss_value = float(losses.mean())
            clips_since += batch_size
            bar.update(1)
            if step % log_every == 0 or step == steps or step == start_step + 1:
                now = time.perf_counter()
                rate = clips_since / max(now - t_last, 1e-9)
                bar.set_postfix(loss=f"{loss_value:.4f}", clips_s=f"{rate:.1f}")
                log({"event": "train", "step": step, "loss": loss_value, "clips_per_s": rate,
                     "lr": float(recipe["lr"])})
                t_last, clips_since = now, 0
            if stop_after is not None and step >= stop_after and step < steps:
                return PretrainResult(step, loss_value, run_dir, record, stopped_early=True)
            if step % every == 0 or step == steps:
                save(step)
                last_good = state_path
    finally:
        bar.close()

    unwrapped = accelerator.unwrap_model(model)
    final_state = {k: v.detach().cpu() for k, v in unwrapped.state_dict().items()}
    # DDP keeps processes in sync by construction; check it, since a silent drift would void the run
    sums = torch.stack([v.double().sum() for v in final_state.values() if v.is_floating_point()])
    per_rank = accelerator.gather(sums.to(accelerator.device).reshape(1, -1)).cpu()
    drift = float((per_rank - per_rank[0]).abs().max())
    record["ranks_in_sync"] = {"processes": world, "max_param_sum_difference": drift, "in_sync": drift == 0.0}
    encoder.module.load_state_dict(final_state)
    encoder.module.to("cpu")
    encoder.module.eval()
    record.update({"steps": step, "final_loss": loss_value})
    if main:
        _write_atomic_text(json.dumps(record, indent=2, default=str), run_dir / RECORD_FILE)
        log({"event": "end", "step": step, "final_loss": loss_value})
    return PretrainResult(step, loss_value, run_dir, record)


def _write_atomic_text(text: str, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- checkpoints for the run pipeline


def checkpoint_key(encoder: Any, data_roots: Any, overrides: dict[str, Any] | None = None) -> str:
    """``<name>-<sha256[:16]>`` of the encoder config, training recipe and data sources.

    The recipe and the data sources are in the key as well as the config: the
    same encoder trained on demo data and on real data (or for 150 and for
    50k steps) must not share a cached checkpoint.
    """
    recipe = {**encoder.recipe(), **(overrides or {})}
    obj = getattr(encoder, "objective", {})
    data: dict[str, Any] = {}
    for name in split_tasks(obj.get("label_task")) + list(recipe.get("unlabeled_tasks") or []):
        if name:
            data[name] = "demo" if data_roots.is_demo(name) else str(data_roots.per_task.get(name) or data_roots.general)
    if recipe.get("unlabeled_tasks") is None:
        data["unlabeled_tasks"] = "builtin"
        for name in BUILTIN_TASKS:
            data[name] = "demo" if data_roots.is_demo(name) else str(data_roots.per_task.get(name) or data_roots.general)
    payload = {"config": encoder.config(), "recipe": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(recipe.items())},
               "data": data}
    if data_roots.general is None and not data_roots.per_task:
        payload["demo"] = [data_roots.demo_size, data_roots.demo_seed]
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{encoder.name}-{digest}"


def ensure_pretrained(encoder: Any, *, data_roots: Any, cache_dir: str | Path, device: str = "cpu",
                      quiet: bool = False, overrides: dict[str, Any] | None = None,
                      progress: bool = True) -> Path:
    """The checkpoint of ``encoder`` for its default recipe: reused if cached, else trained now.

    Kept at ``cache_dir/checkpoints/<key>.safetensors`` (see
    :func:`checkpoint_key`), with the run folder (training state, metrics
    log, run record) beside it as ``<key>.run/``; an interrupted run resumes.
    The weights are loaded into ``encoder``. The ``random`` encoder is not
    trained: its seeded initial weights are written once so the pipeline can
    hash and load them like any other checkpoint.
    """
    from bench.encoder import load_checkpoint, save_checkpoint

    folder = Path(cache_dir) / "checkpoints"
    if not getattr(encoder, "trainable", False):
        path = folder / f"{encoder.name}-{hashlib.sha256(json.dumps(encoder.config(), sort_keys=True).encode()).hexdigest()[:16]}.safetensors"
        if not path.is_file():
            save_checkpoint(encoder, path, extra={"trained": False, "note": "seeded initial weights, never trained"})
        load_checkpoint(encoder, path)
        return path
    key = checkpoint_key(encoder, data_roots, overrides)
    path = folder / f"{key}.safetensors"
    if path.is_file():
        load_checkpoint(encoder, path)
        if not quiet:
            print(f"Using cached pretrained checkpoint {path}", file=sys.stderr)
        return path
    run_dir = folder / f"{key}.run"
    with _exclusive(folder / f"{key}.lock", encoder.name, quiet):
        if path.is_file():  # another process finished it while this one waited
            load_checkpoint(encoder, path)
            if not quiet:
                print(f"Using the checkpoint another process just trained: {path}", file=sys.stderr)
            return path
        if not quiet:
            print(f"Pretraining {encoder.name} (preset {encoder.preset}); run folder {run_dir}", file=sys.stderr)
        result = pretrain(encoder, data_roots=data_roots, run_dir=run_dir, cache_dir=cache_dir, device=device,
                          quiet=quiet, overrides=overrides, progress=progress)
        _save_final(encoder, path, result)
    load_checkpoint(encoder, path)
    return path


@contextmanager
def _exclusive(lock_path: Path, what: str, quiet: bool) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (two ``bench run`` sharing a cache train once).

    POSIX ``flock``; where it is missing (Windows), and inside a multi-process
    launch (whose ranks must all enter the training loop together), no lock.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not quiet:
                print(f"Waiting for another process that is pretraining {what} (lock file {lock_path})",
                      file=sys.stderr)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _save_final(encoder: Any, path: Path, result: PretrainResult) -> None:
    from accelerate import PartialState

    from bench.encoder import save_checkpoint

    state = PartialState()
    if state.is_main_process:
        save_checkpoint(encoder, path, extra={
            "trained": True, "steps": result.steps, "final_loss": result.final_loss,
            "recipe": result.record.get("recipe"), "run_dir": str(result.run_dir),
            "held_out_excluded": result.record.get("held_out_check", {}).get("excluded_count"),
        })
    state.wait_for_everyone()


def load_or_random(encoder: Any) -> Path | None:
    """For encoders that are never trained (``random``): the seeded initial weights are the weights.

    Loads ``encoder.checkpoint`` when one was given (already done at
    construction) and otherwise leaves the deterministic initialisation in
    place. Returns the checkpoint path or None.
    """
    ckpt = getattr(encoder, "checkpoint", None)
    return Path(ckpt) if ckpt else None


# --------------------------------------------------------------------------- command line


def add_cli(subparsers: Any) -> Any:
    """Add the ``pretrain`` sub-command to an argparse subparsers object; it runs :func:`cli_main`."""

    p = subparsers.add_parser(
        "pretrain",
        help="pretrain an encoder (semisupcon, simclr, supervised) on an unlabeled + labeled pool",
        description=(
            "Pretrain a trainable encoder with Accelerate. With no --out the checkpoint goes to the cache "
            "(<cache>/checkpoints/<encoder>-<hash>.safetensors), where `bench run` finds it. Several processes: "
            "`accelerate launch --num_processes N -m bench.cli pretrain ...` (add --cpu for CPU/gloo). "
            "A run folder keeps train-state.pt, metrics.jsonl and run.json; rerunning the same command resumes."
        ),
    )
    p.add_argument("--encoder", required=True, help="semisupcon, simclr or supervised (see `bench list`)")
    p.add_argument("--preset", default="demo", help="demo (CPU, minutes; the default) or paper (method.md)")
    p.add_argument("--seed", type=int, default=None, help="seed of the initial weights and of the batches (default: 123)")
    g = p.add_argument_group("objective (part of the encoder config; `bench run --checkpoint` reads it from the checkpoint)")
    g.add_argument("--label-task", default=None,
                   help="task whose train split is the labeled pool (default: the encoder's for the preset: mtat "
                        "for paper, nsynth_pitch,gtzan for demo); several, comma-separated, share one label space")
    g.add_argument("--label-fraction", type=float, default=None, help="p_s: fraction of the labeled pool kept")
    g.add_argument("--labeled-share", type=float, default=None, help="b_s: share of each batch that is labeled")
    g.add_argument("--threshold", type=float, default=None, help="T: shared labels that make two clips positives")
    g.add_argument("--weighted", action="store_true", default=None, help="Dice-weighted label positives")
    g.add_argument("--tau", type=float, default=None, help="temperature of the contrastive loss")
    r = p.add_argument_group("recipe")
    r.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    r.add_argument("--batch-size", type=int, default=None, help="clips per global batch (default: the preset's)")
    r.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the preset's)")
    r.add_argument("--views", type=int, default=None, help="views per clip")
    r.add_argument("--unlabeled-dir", action="append", default=None, metavar="DIR",
                   help="folder of audio (recursive) for the unlabeled pool; repeatable")
    r.add_argument("--unlabeled-task", action="append", default=None, metavar="TASK",
                   help="task whose train split joins the unlabeled pool; repeatable (default: built-in tasks, "
                        "or none when --unlabeled-dir is given)")
    r.add_argument("--labeled-mix", choices=("step", "row"), default=None,
                   help="several labeled tasks: the labeled clips of a step come from one task drawn per step "
                        "(step, the default: label positives exist only within a task) or each clip draws "
                        "its task (row)")
    r.add_argument("--no-augment", action="store_true", help="train without the augmentation chain")
    r.add_argument("--severity", type=float, default=None, help="augmentation severity")
    r.add_argument("--checkpoint-every", type=int, default=None, help="steps between training checkpoints")
    r.add_argument("--log-every", type=int, default=None, help="steps between metrics-log lines")
    o = p.add_argument_group("where and how")
    o.add_argument("--data-root", action="append", default=None, metavar="[TASK=]DIR",
                   help="data root (all tasks) or TASK=DIR; repeatable; default: demo data")
    o.add_argument("--out", default=None, help="final checkpoint path (.safetensors); default: in the cache")
    o.add_argument("--run-dir", default=None, help="run folder (training state, metrics log); default: beside --out")
    o.add_argument("--no-resume", action="store_true", help="start over even if the run folder has a checkpoint")
    o.add_argument("--device", default="auto", help="auto (GPU when there is one; the default), cpu or cuda")
    o.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU only)")
    o.add_argument("--compile", action="store_true", help="torch.compile the network (GPU only)")
    o.add_argument("--no-sync-bn", action="store_true", help="per-process BatchNorm statistics in DDP")
    o.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default: $BENCH_THREADS, else one per core); on a machine shared "
                        "with other jobs, 1 can be faster")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cli_main)
    return p


def cli_main(args: Any) -> int:
    """Run ``bench pretrain`` from parsed arguments; prints where the checkpoint went."""
    from bench import plugins
    from bench.config import DataRoots, cache_dir

    options: dict[str, Any] = {"preset": args.preset}
    if args.seed is not None:
        options["seed"] = args.seed
    for opt, val in (("label_task", args.label_task), ("label_fraction", args.label_fraction),
                     ("labeled_share", args.labeled_share), ("threshold", args.threshold),
                     ("weighted", args.weighted), ("tau", args.tau)):
        if val is not None:
            options[opt] = val
    overrides: dict[str, Any] = {}
    for opt, val in (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr), ("views", args.views),
                     ("severity", args.severity), ("checkpoint_every", args.checkpoint_every),
                     ("labeled_mix", args.labeled_mix),
                     ("log_every", args.log_every)):
        if val is not None:
            overrides[opt] = val
    if args.no_augment:
        overrides["augment"] = False
    if args.unlabeled_dir:
        overrides["unlabeled_dirs"] = tuple(str(Path(d).expanduser().resolve()) for d in args.unlabeled_dir)
        overrides["unlabeled_tasks"] = tuple(args.unlabeled_task or ())
    elif args.unlabeled_task:
        overrides["unlabeled_tasks"] = tuple(args.unlabeled_task)
    encoder = plugins.get_encoder(args.encoder, **options)
    if not encoder.trainable:
        raise BenchError(f"encoder {args.encoder!r} cannot be pretrained; trainable encoders: semisupcon, simclr, supervised")
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    data_roots = DataRoots.from_args(args.data_root)
    cdir = cache_dir()
    if args.out:
        out = Path(args.out)
    else:
        out = cdir / "checkpoints" / f"{checkpoint_key(encoder, data_roots, overrides)}.safetensors"
    run_dir = Path(args.run_dir) if args.run_dir else out.with_suffix(".run")
    result = pretrain(encoder, data_roots=data_roots, run_dir=run_dir, cache_dir=cdir, device=device,
                      quiet=args.quiet, resume=not args.no_resume, overrides=overrides,
                      mixed_precision="bf16" if args.bf16 else "no", compile=args.compile,
                      sync_batchnorm=not args.no_sync_bn)
    _save_final(encoder, out, result)
    from accelerate import PartialState

    if PartialState().is_main_process:
        held = result.record["held_out_check"]
        print(f"pretrained {encoder.name} for {result.steps} steps, final loss {result.final_loss:.4f}")
        print(f"valid/test tracks excluded from the pools: {held['excluded_count']} "
              f"(tasks checked: {', '.join(held['checked']) or 'none'})")
        print(f"checkpoint: {out}\nrun folder: {run_dir} (metrics.jsonl, run.json)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.pretrain [pretrain] ARGS``: the sub-command without the full CLI."""
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "pretrain":
        argv = ["pretrain"] + argv
    parser = argparse.ArgumentParser(prog="python -m bench.pretrain")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        from bench.cli import apply_threads

        apply_threads(args.threads)
        return args.func(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
