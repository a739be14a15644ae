"""The task contract: everything a third party writes to add a benchmark task.

A task knows one dataset's on-disk format and standard split, its label
vocabulary, its metrics, and how to write a small demo copy of that dataset in
the same format (so the loader that reads a user's real download is the one the
tests and the demo run exercise).

A minimal task::

    from bench.task import Item, Split, Task

    class MyTask(Task):
        name = "my_task"
        kind = "multiclass"             # or "multilabel", or "regression"
        dataset_dirs = ("my-dataset",)   # folder(s) under the data root
        primary_metric = "accuracy"
        metrics = ("accuracy",)

        def classes(self, data_root):
            return ["a", "b"]

        def items(self, split, data_root):        # split: "train", "valid", "test"
            root = self.require_dir(data_root, "my-dataset")
            out = Split(split)
            ...                                    # out.items.append(Item(...))
            return out                             # out.problem(file, line, msg) for bad rows

        def make_demo(self, data_root, size="small", seed=0):
            ...                                    # write my-dataset/ in the real format

Labels: an ``int`` class index for multiclass, a tuple of class indices for
multilabel, a tuple of floats (one per target, in the order of ``classes()``,
which then names the targets: ``["arousal", "valence"]``) for regression; a
regression probe predicts those numbers with a mean-squared-error loss. Problems with single rows or files (a malformed line, a missing
file, an unknown label) are recorded on the :class:`Split` and the rest loads;
a data root that is missing or is not this dataset raises
:class:`bench.errors.DataError` with :meth:`Task.data_help` in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bench.errors import DataError, shorten

SPLITS = ("train", "valid", "test")
KINDS = ("multiclass", "multilabel", "regression")


@dataclass(frozen=True)
class Item:
    """One track of a split: its id, audio file, label, and optional span (seconds)."""

    track_id: str
    path: str
    label: Any
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class Problem:
    """A row or file that could not be used, with where it is and what is wrong.

    ``kind`` is one of: ``malformed`` (an unparsable row or entry),
    ``missing_audio`` (a listed audio file is not on disk; `bench data check`
    counts these), ``duplicate``, ``unknown_label``, or a task-specific word.
    """

    file: str
    line: int | None
    message: str
    kind: str = "malformed"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass
class Split:
    """The items of one split plus the problems met while indexing it."""

    name: str
    items: list[Item] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def problem(self, file: str | Path, line: int | None, message: str, kind: str = "malformed") -> None:
        self.problems.append(Problem(str(file), line, shorten(message), kind))  # a 200 MB line stays short

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class Task:
    """Base class and contract of a task plugin. Settings are keyword options."""

    name: str = ""
    kind: str = "multiclass"
    #: folders under the data root that hold this task's dataset
    dataset_dirs: tuple[str, ...] = ()
    primary_metric: str = "accuracy"
    metrics: tuple[str, ...] = ("accuracy",)
    #: probe head used by the protocol (method.md): "mlp" or "linear"
    probe: str = "mlp"
    #: at most this many windows per track are embedded and mean-pooled
    max_windows: int = 64
    #: augmentation transforms this task's labels are NOT invariant to (names of
    #: ``bench.augment.TRANSFORMS``: gain, polarity, noise, filter, pitch_shift, delay). A pitch
    #: shifted C4 note is no longer a C4, so a pitch task declares ``("pitch_shift",)``. With the
    #: encoder option ``label_aware_augment=true`` the labeled clips of this task skip these
    #: transforms during pretraining (unlabeled clips and other tasks' clips keep them).
    label_variant_transforms: tuple[str, ...] = ()
    description: str = ""
    #: where the data comes from, shown when the data root is missing or wrong
    download_help: str = ""

    def __init__(self, **settings: Any) -> None:
        unknown = set(settings) - set(self.default_settings())
        if unknown:
            raise TypeError(
                f"unknown setting(s) {sorted(unknown)} for task {self.name!r}; "
                f"known: {sorted(self.default_settings())}"
            )
        self.settings = {**self.default_settings(), **settings}

    # -- what every task implements ---------------------------------------
    def default_settings(self) -> dict[str, Any]:
        """Task settings and their defaults (recorded with every result)."""
        return {}

    def classes(self, data_root: Path) -> list[str]:
        """The label vocabulary, in class-index order."""
        raise NotImplementedError

    def items(self, split: str, data_root: Path) -> Split:
        """Index one split (``train``, ``valid`` or ``test``) without decoding audio."""
        raise NotImplementedError

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        """Write a demo dataset in the real on-disk format under ``data_root``."""
        raise NotImplementedError(f"task {self.name!r} has no demo data generator")

    # -- defaults ------------------------------------------------------------
    def score(self, y_true: Any, scores: Any) -> dict[str, float]:
        """Metrics from true labels and probe outputs (logits or probabilities).

        ``y_true``: class indices ``[N]`` (multiclass), multi-hot ``[N, C]``
        (multilabel) or target values ``[N, C]`` (regression); ``scores``: ``[N, C]``
        (regression: the predicted values). Returns every name in ``metrics``.
        """
        from bench import metrics

        return metrics.score(self.kind, y_true, scores, self.metrics)

    def data_help(self) -> str:
        dirs = ", ".join(f"{d}/" for d in self.dataset_dirs) or "its dataset folder"
        text = (
            f"Task {self.name!r} reads {dirs} under the data root "
            "(--data-root DIR, or BENCH_DATA_ROOT, or data_root in the config file)."
        )
        if self.download_help:
            text += " " + self.download_help
        from bench.download import has_recipe

        if has_recipe(self.name):
            text += f" Or fetch and verify it: `bench data download {self.name} --to DIR`."
        text += f" Run `bench data check --task {self.name} --data-root DIR` to see what is found."
        return text

    def data_hint(self, data_root: Path) -> str:
        """' ' + what was found near ``data_root`` and the flag or command that fixes it, or '' (bench.datahints)."""
        from bench.datahints import near_miss

        hint = near_miss(self.name, self.dataset_dirs, data_root)
        return f" {hint}" if hint else ""

    def require_dir(self, data_root: Path, sub: str) -> Path:
        """``data_root/sub`` or a DataError that says what is missing and what to do."""
        data_root = Path(data_root)
        if not data_root.is_dir():
            raise DataError(f"data root {data_root} does not exist or is not a folder. {self.data_help()}")
        path = data_root / sub
        if not path.is_dir():
            raise DataError(f"{path} not found: {data_root} does not hold the {self.name} dataset."
                            f"{self.data_hint(data_root)} {self.data_help()}")
        return path

    def describe_settings(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings.items())
