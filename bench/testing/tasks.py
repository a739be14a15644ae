"""The task conformance checks (:func:`check_task`)."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any


from bench.testing.encoders import _jsonable
from bench.testing.report import SKIP, Check, Report, _Fail, _import_without_torch, _Run, _subject


def check_task(
    task: Any,
    settings: dict[str, Any] | None = None,
    *,
    data_root: str | Path | None = None,
    size: str = "tiny",
    seed: int = 0,
    workdir: str | Path | None = None,
    module: str | None = None,
    import_check: bool = True,
    decode: int = 4,
) -> Report:
    """Run every task check (:data:`TASK_CHECKS`) and return the report; never raises for a failure.

    ``task``: a registered name, a :class:`~bench.task.Task` subclass or an
    instance (built with ``settings``). The demo generator writes a ``size``
    demo into ``workdir`` (default a temporary folder, removed after) and the
    loader reads it back; with ``data_root`` the loader reads that folder
    instead (real data) and the demo check is skipped. ``decode``: files per
    split decoded to check the audio is readable.
    """
    settings = dict(settings or {})
    t0 = time.perf_counter()
    subject = _subject("task", task, settings, module)
    report = Report("task", subject.label, source=subject.source)
    run = _Run(report)
    state: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-check-task-") as tmp:
        root = Path(data_root) if data_root is not None else Path(workdir or tmp) / "data"

        def create() -> str:
            from bench.task import Task

            t = subject.instance if subject.instance is not None else subject.factory(**subject.options)
            if not isinstance(t, Task):
                raise _Fail(f"the factory returned {type(t).__name__}, not a bench.task.Task",
                            "subclass bench.task.Task and register the class")
            state["task"] = t
            return _task_attributes(t)

        run("create", create)
        if import_check:
            run("import_without_torch", lambda: _import_without_torch(subject.module))
        else:
            report.checks.append(Check("import_without_torch", SKIP, "not run (import_check=False)"))
        if data_root is None:
            run("demo", lambda: _demo(state["task"], root, size, seed), needs=("create",))
            loader_needs: tuple[str, ...] = ("demo",)
        else:
            report.checks.append(Check("demo", SKIP, f"a data root was given ({root}); the loader reads it"))
            loader_needs = ("create",)
        run("loader", lambda: _loader(state, root, decode, demo=data_root is None), needs=loader_needs)
        run("splits_disjoint", lambda: _splits_disjoint(state["splits"]), needs=("loader",))
        run("labels", lambda: _labels(state["task"], state["splits"], state["classes"]), needs=("loader",))
        run("metrics", lambda: _metrics(state["task"], state["splits"], state["classes"]), needs=("labels",))
    report.seconds = time.perf_counter() - t0
    return report


def _task_attributes(t: Any) -> str:
    from bench.task import KINDS

    problems = []
    if not isinstance(t.name, str) or not t.name.strip():
        problems.append(f"name is {t.name!r}")
    if t.kind not in KINDS:
        problems.append(f"kind is {t.kind!r}, expected one of {list(KINDS)}")
    if not t.metrics or t.primary_metric not in t.metrics:
        problems.append(f"primary_metric {t.primary_metric!r} is not in metrics {tuple(t.metrics)}")
    if t.probe not in ("mlp", "linear"):
        problems.append(f"probe is {t.probe!r}, expected 'mlp' or 'linear'")
    if not isinstance(t.max_windows, int) or t.max_windows < 1:
        problems.append(f"max_windows is {t.max_windows!r}, expected a positive int")
    if not _jsonable(t.settings):
        problems.append(f"settings {t.settings!r} are not JSON-serialisable (they are recorded with every result)")
    if problems:
        raise _Fail("; ".join(problems), "fix the class attributes (see bench.task.Task) and default_settings()")
    return f"{t.kind}, metrics {list(t.metrics)} (primary {t.primary_metric}), probe {t.probe}"


def _demo(t: Any, root: Path, size: str, seed: int) -> str:
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        t.make_demo(root, size=size, seed=seed)
    except NotImplementedError:
        raise _Fail("make_demo() is not implemented",
                    "write a small copy of the dataset in its real on-disk format (generated audio is fine): "
                    "the tests and the demo run read it with the same loader as real data") from None
    files = [p for p in root.rglob("*") if p.is_file()]
    if not files:
        raise _Fail(f"make_demo(size={size!r}) wrote no files under the data root",
                    "write the demo under the data_root argument, in the folders items() reads")
    missing = [d for d in t.dataset_dirs if not (root / d).is_dir()]
    if missing:
        raise _Fail(f"make_demo() did not write the dataset folder(s) {missing} named in dataset_dirs",
                    "dataset_dirs names the folders under the data root that hold the dataset; make_demo must "
                    "write them")
    return f"{len(files)} files in {time.perf_counter() - t0:.1f}s (size {size!r})"


def _loader(state: dict[str, Any], root: Path, decode: int, demo: bool) -> str:
    from bench.audio import AudioError, load
    from bench.task import SPLITS, Item, Split

    t = state["task"]
    classes = t.classes(root)
    if not isinstance(classes, (list, tuple)) or not classes or not all(isinstance(c, str) for c in classes):
        raise _Fail(f"classes() returned {classes!r:.100}, expected a non-empty list of str",
                    "return the label vocabulary as a list of names in class-index order")
    if len(set(classes)) != len(classes):
        dup = sorted({c for c in classes if list(classes).count(c) > 1})
        raise _Fail(f"classes() has duplicate names {dup[:5]}", "class names must be unique")
    splits = {}
    unreadable = 0
    for s in SPLITS:
        sp = t.items(s, root)
        if not isinstance(sp, Split):
            raise _Fail(f"items({s!r}) returned {type(sp).__name__}, expected a bench.task.Split",
                        "return a Split and append Item(track_id, path, label) to its .items")
        if not len(sp):
            where = "the demo data" if demo else str(root)
            raise _Fail(f"items({s!r}) found no tracks in {where}",
                        "make_demo() must write every split in the format items() reads (check folder and file "
                        "names, split lists)" if demo else "point data_root at the dataset")
        bad = [it for it in sp.items if not isinstance(it, Item)]
        if bad:
            raise _Fail(f"items({s!r}) holds {type(bad[0]).__name__} entries, expected bench.task.Item",
                        "append bench.task.Item(track_id, path, label, start=None, end=None)")
        if demo and sp.problems:
            raise _Fail(f"items({s!r}) reported {len(sp.problems)} problem(s) on its own demo data, e.g. "
                        f"{sp.problems[0]}",
                        "the demo generator and the loader disagree about the format: fix one of them")
        missing = [it.path for it in sp.items if not Path(it.path).is_file()]
        if missing:
            raise _Fail(f"items({s!r}) lists {len(missing)} file(s) that do not exist, e.g. {missing[0]}",
                        "check the path of each Item, or record a missing file as "
                        "split.problem(path, None, '...', 'missing_audio') instead of an Item")
        spans = [it for it in sp.items if it.start is not None and it.end is not None and not it.start < it.end]
        if spans:
            raise _Fail(f"items({s!r}) has an empty span: {spans[0]}", "start must be before end (seconds)")
        decoded = 0
        tried = sp.items[:decode]
        for it in tried:
            try:
                load(it.path, 16000, it.start, it.end)
                decoded += 1
            except AudioError:
                unreadable += 1
        if tried and not decoded:
            raise _Fail(f"none of the first {len(tried)} files of the {s} split can be decoded, e.g. {tried[0].path}",
                        "write audio soundfile/libsndfile reads (wav, flac, ogg, mp3)")
        splits[s] = sp
    state["splits"], state["classes"] = splits, list(classes)
    sizes = ", ".join(f"{s} {len(sp)}" for s, sp in splits.items())
    note = f"; {unreadable} undecodable file(s) among those tried (the harness skips them)" if unreadable else ""
    return f"{len(classes)} classes; {sizes} tracks; files exist and decode{note}"


def _splits_disjoint(splits: dict[str, Any]) -> str:
    seen_id: dict[str, str] = {}
    seen_audio: dict[tuple, str] = {}
    for s, sp in splits.items():
        ids = [it.track_id for it in sp.items]
        dup = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
        if dup:
            raise _Fail(f"track id(s) {dup[:3]} appear more than once in the {s} split",
                        "give every item a unique track_id (records and the cache are keyed by it)")
        for it in sp.items:
            if it.track_id in seen_id:
                raise _Fail(f"track {it.track_id!r} is in both the {seen_id[it.track_id]} and the {s} split",
                            "a track must be in one split only (the probe would be scored on training data)")
            seen_id[it.track_id] = s
            key = (str(Path(it.path).resolve()), it.start, it.end)
            if key in seen_audio and seen_audio[key] != s:
                raise _Fail(f"the audio {it.path} (span {it.start}..{it.end}) is in both the {seen_audio[key]} and "
                            f"the {s} split", "a recording must be in one split only")
            seen_audio[key] = s
    return "no track id or audio is in two splits; ids unique within each split"


def _labels(t: Any, splits: dict[str, Any], classes: list[str]) -> str:
    n = len(classes)
    used: set[int] = set()
    for s, sp in splits.items():
        for it in sp.items:
            lab = it.label
            if t.kind == "multiclass":
                ok = isinstance(lab, int) and not isinstance(lab, bool) and 0 <= lab < n
                if not ok:
                    raise _Fail(f"{s} item {it.track_id!r} has label {lab!r}: expected an int class index in "
                                f"0..{n - 1} (multiclass, {n} classes)",
                                "map label names to their index in classes(); an unknown label is a "
                                "split.problem(..., 'unknown_label'), not an item")
                used.add(lab)
            elif t.kind == "regression":
                ok = (isinstance(lab, tuple) and len(lab) == n and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in lab))
                if not ok:
                    raise _Fail(f"{s} item {it.track_id!r} has label {lab!r}: expected a tuple of {n} finite numbers "
                                f"(regression, targets {classes})", "one float per target named by classes()")
            else:
                ok = (isinstance(lab, tuple) and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < n
                                                     for c in lab) and len(set(lab)) == len(lab))
                if not ok:
                    raise _Fail(f"{s} item {it.track_id!r} has label {lab!r}: expected a tuple of distinct int class "
                                f"indices in 0..{n - 1} (multilabel, {n} classes)",
                                "use a tuple of class indices (an empty tuple for a clip with no tag)")
                used.update(lab)
    if t.kind == "regression":
        flat = {it.label for it in splits["train"].items}
        if len(flat) < 2:
            raise _Fail(f"the train split has {len(flat)} distinct target value(s); a probe needs at least 2",
                        "make the demo's train split cover a range of values")
        return f"every label a tuple of {n} finite numbers ({', '.join(classes)}); {len(flat)} distinct in train"
    train = {it.label for it in splits["train"].items} if t.kind == "multiclass" else \
        {c for it in splits["train"].items for c in it.label}
    if len(train) < 2:
        raise _Fail(f"the train split uses {len(train)} class(es); a probe needs at least 2",
                    "make the demo's train split cover several classes")
    return f"every label inside the {n}-class vocabulary; {len(used)} classes used"


def _metrics(t: Any, splits: dict[str, Any], classes: list[str]) -> str:
    import numpy as np

    from bench.probe import targets

    labels = [it.label for sp in splits.values() for it in sp.items]
    n = len(classes)
    y = targets(labels, n, t.kind)
    if t.kind == "multiclass":
        perfect = np.eye(n, dtype=np.float32)[y] * 10.0
    elif t.kind == "regression":
        perfect = y.astype(np.float32)
    else:
        perfect = y.astype(np.float32) * 10.0 - 5.0
    constant = np.zeros((len(labels), n), dtype=np.float32)
    results = {}
    for what, scores in (("perfect", perfect), ("constant", constant)):
        out = t.score(y, scores)
        if not isinstance(out, dict):
            raise _Fail(f"score() returned {type(out).__name__}, expected a dict of metric name -> float",
                        "return {name: value} for every name in metrics")
        missing = [m for m in t.metrics if m not in out]
        if missing:
            raise _Fail(f"score() of a {what} prediction lacks metric(s) {missing} (it returned {sorted(out)})",
                        "return every name listed in the task's metrics")
        bad = {k: v for k, v in out.items() if not isinstance(v, (int, float, np.floating)) or not math.isfinite(v)}
        if bad:
            raise _Fail(f"score() of a {what} prediction returned non-finite or non-number values {bad}",
                        "return plain floats (float(x)); a metric undefined on this data should leave out the "
                        "classes it cannot score")
        results[what] = {k: float(v) for k, v in out.items()}
    p, c = results["perfect"][t.primary_metric], results["constant"][t.primary_metric]
    if not p > c:
        raise _Fail(f"primary metric {t.primary_metric!r}: a perfect prediction scores {p:.4g}, a constant one "
                    f"{c:.4g}; the perfect one must score higher",
                    "higher must be better (the leaderboard ranks by it); check the argument order (y_true, scores)")
    return f"{t.primary_metric}: perfect {p:.3g}, constant {c:.3g}; all {len(t.metrics)} metrics finite"
