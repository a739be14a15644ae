"""GTZAN genre classification: 10 classes, the fault-filtered split, accuracy.

Real layout under the data root (either folder name, as mirrors differ)::

    gtzan/genres/<genre>/<genre>.000NN.wav          or  gtzan/genres_original/...

Split: the fault-filtered split of Kereliuk and Sturm (443 / 197 / 290 files),
shipped with this package as ``bench_tasks/data/gtzan/{train,valid,test}_filtered.txt``
(lines like ``blues/blues.00029.wav``), since the lists are not part of the
audio download. Custom splits: if the dataset folder itself holds all three
``train_filtered.txt``, ``valid_filtered.txt`` and ``test_filtered.txt``, those
lists are used instead (same syntax); the demo data uses this. A listed file
that is missing is recorded as a problem and left out; a corrupt file (the
well-known mirror's ``jazz.00054.wav``) is skipped by the extract stage.
Encodings and symbolic links: see ``bench_tasks._common``.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench import hookimpl
from bench.errors import DataError
from bench.task import Item, Split, Task

from bench_tasks._common import link_problem, list_files, read_text_lines

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
LIST_NAMES = {s: f"{s}_filtered.txt" for s in ("train", "valid", "test")}
AUDIO_DIRS = ("genres", "genres_original")
_LINE_RE = re.compile(r"^(?:\./)?([a-z]+)/\1\.\d{5}\.(?:wav|au)$")


def shipped_list(split: str):
    """The packaged fault-filtered list of ``split`` (an importlib.resources Traversable)."""
    from importlib.resources import files

    return files("bench_tasks").joinpath("data", "gtzan", LIST_NAMES[split])


class GTZANTask(Task):
    name = "gtzan"
    kind = "multiclass"
    dataset_dirs = ("gtzan",)
    primary_metric = "accuracy"
    metrics = ("accuracy",)
    probe = "mlp"
    max_windows = 64
    description = "GTZAN genre (10 classes), fault-filtered split (Kereliuk & Sturm), accuracy"
    download_help = (
        "Download GTZAN (genres.tar.gz, or the Kaggle 'GTZAN Dataset - Music Genre Classification' "
        "mirror with genres_original/) and unpack it so that DATA_ROOT/gtzan/genres/<genre>/"
        "<genre>.000NN.wav exist. The split lists ship with bench."
    )

    def classes(self, data_root: Path) -> list[str]:
        return list(GENRES)

    def audio_dir(self, data_root: Path) -> Path:
        root = self.require_dir(data_root, "gtzan")
        for name in AUDIO_DIRS:
            if (root / name).is_dir():
                return root / name
        raise DataError(
            f"{root} has neither genres/ nor genres_original/: it does not hold the GTZAN audio."
            f"{self.data_hint(data_root)} {self.data_help()}"
        )

    def split_lists(self, data_root: Path) -> dict:
        """The three list files in use: the dataset folder's own, or the shipped fault-filtered ones."""
        root = self.require_dir(data_root, "gtzan")
        local = {s: root / n for s, n in LIST_NAMES.items()}
        found = [s for s, p in local.items() if p.is_file()]
        if len(found) == 3:
            return local
        if found:
            missing = ", ".join(LIST_NAMES[s] for s in LIST_NAMES if s not in found)
            raise DataError(
                f"{root} holds {', '.join(LIST_NAMES[s] for s in found)} but not {missing}: a custom split "
                f"needs all three lists. Add them, or remove the lists to use the standard fault-filtered split."
            )
        return {s: shipped_list(s) for s in LIST_NAMES}

    def items(self, split: str, data_root: Path) -> Split:
        if split not in LIST_NAMES:
            raise ValueError(f"unknown split {split!r}")
        audio = self.audio_dir(data_root)
        root = self.require_dir(data_root, "gtzan")
        lst = self.split_lists(data_root)[split]
        if lst == root / LIST_NAMES[split]:  # the dataset folder's own list
            lines = read_text_lines(lst, root)
        else:  # the list shipped with bench
            lines = lst.read_text(encoding="utf-8-sig").splitlines()
        out = Split(split)
        present: dict[str, tuple[set[str], dict[str, str]]] = {}
        seen: dict[str, int] = {}
        for n, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = _LINE_RE.match(line)
            if not m or m.group(1) not in GENRES:
                out.problem(lst, n, f"expected '<genre>/<genre>.000NN.wav' with a GTZAN genre, found {line!r}")
                continue
            rel = line[2:] if line.startswith("./") else line
            if rel in seen:
                out.problem(lst, n, f"duplicate entry {rel} (first on line {seen[rel]})", kind="duplicate")
                continue
            seen[rel] = n
            genre, fname = rel.split("/")
            if genre not in present:
                present[genre] = list_files(audio / genre, root)
            names, leaving = present[genre]
            if fname in leaving:
                out.problem(lst, n, f"listed file {audio.name}/{rel} {link_problem(audio / rel, root, leaving[fname])}",
                            kind="outside_root")
                continue
            if fname not in names:
                out.problem(lst, n, f"listed file {audio.name}/{rel} not found", kind="missing_audio")
                continue
            out.items.append(Item(track_id=Path(fname).stem, path=str(audio / rel), label=GENRES.index(genre)))
        return out

    def make_demo(self, data_root: Path, size: str = "small", seed: int = 0) -> None:
        from bench_tasks.gtzan_demo import make_demo

        make_demo(Path(data_root), size=size, seed=seed)


@hookimpl
def register_tasks(register):
    register("gtzan", "bench_tasks.gtzan:GTZANTask", description=GTZANTask.description)
