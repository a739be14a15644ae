"""Near misses of a data root: what was found instead of the folder a task reads, and the exact fix.

Called on the missing-data error path (:meth:`bench.task.Task.data_hint`), so a
data root that is almost right gets a message naming what is there and the
flag or command that makes it right, instead of only "not found":

- the dataset folder in another letter case (``GTZAN/`` for ``gtzan/``);
- ``--data-root`` pointing at the dataset folder itself (``~/data/gtzan``)
  rather than the folder holding it;
- the dataset one level too deep, as Kaggle's GTZAN unpacks
  (``gtzan/Data/genres_original/``), or under another name
  (``archive/Data/genres_original/``).

Only names are listed (never file contents), one folder level deep.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Iterable

#: what sits at the top of each built-in dataset folder: any one of these tells the folder apart
MARKERS: dict[str, tuple[str, ...]] = {
    "gtzan": ("genres", "genres_original"),
    "nsynth": ("nsynth-train", "nsynth-valid", "nsynth-test"),
    "magnatagatune": ("annotations_final.csv",),
    "giantsteps-key-dataset": ("annotations/key",),
    "giantsteps-mtg-key-dataset": ("annotations/annotations.txt",),
}


def _q(p: Path | str) -> str:
    return shlex.quote(str(p))


def _marker(folder: Path, dataset_dir: str) -> str | None:
    """The first marker of ``dataset_dir`` found in ``folder``, else None."""
    for m in MARKERS.get(dataset_dir, ()):
        if (folder / m).exists():
            return m
    return None


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []


def near_miss(task_name: str, dataset_dirs: Iterable[str], data_root: Path) -> str:
    """A hint for each dataset folder of the task that is not where the task reads it; '' when none."""
    root = Path(data_root).expanduser()
    if not root.is_dir():
        return ""
    hints = [h for d in dataset_dirs if (h := _one(task_name, d, root))]
    return " ".join(hints)


def _one(task: str, d: str, root: Path) -> str:
    want = root / d
    if want.is_dir():
        if not MARKERS.get(d) or _marker(want, d):
            return ""
        for sub in _subdirs(want):  # one level too deep: gtzan/Data/genres_original (Kaggle)
            m = _marker(sub, d)
            if m:
                first = m.split("/")[0]
                rel = f"{sub.name}/{first}"
                return (f"Found {sub / first}: one folder too deep for {task}, which reads {want / first}. "
                        f"Link it in place (links inside the dataset folder are followed): "
                        f"ln -s {_q(rel)} {_q(want / first)}.")
        return ""
    for sub in _subdirs(root):  # another letter case: GTZAN/ for gtzan/
        if sub.name.lower() == d.lower():
            return (f"Found {sub}, but {task} reads {want} (letter case matters). "
                    f"Rename it: mv {_q(sub)} {_q(want)} (or link it: ln -s {_q(sub.name)} {_q(want)}).")
    if root.name == d or _marker(root, d):  # the data root is the dataset folder itself
        if root.name == d:
            return (f"{root} is the {d}/ folder itself; the data root is the folder that holds it: "
                    f"--data-root {_q(root.parent)} (or --data-root {task}={_q(root.parent)}).")
        return (f"{root} holds {_marker(root, d)}, so it is the {d} dataset folder itself under another name; "
                f"the data root is a folder holding it as {d}/: ln -s {_q(root)} {_q(root.parent / d)} "
                f"then --data-root {_q(root.parent)}.")
    for sub in _subdirs(root):  # the dataset under another name one level down: archive/Data/genres_original
        if _marker(sub, d):
            return (f"Found {sub / _marker(sub, d)}: {sub} looks like the {d} dataset folder under another name. "
                    f"Link it as {d}/: ln -s {_q(sub.name)} {_q(want)} then --data-root {_q(root)}.")
    return ""
