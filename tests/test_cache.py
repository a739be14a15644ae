"""The embedding cache: warm runs compute nothing, keys invalidate exactly, bad entries are rebuilt."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bench import embedding_cache as C
from bench import keys, shard
from bench.extract import Embeddings
from bench.task import Item
from conftest import forget_results


# -- helpers -----------------------------------------------------------------------------------------


def fake_items(n: int, prefix: str = "t") -> list[Item]:
    return [Item(f"{prefix}{i:03d}", f"/nowhere/{prefix}{i:03d}.wav", i % 3) for i in range(n)]


def key(**changes):
    fields = dict(encoder="enc", encoder_config={"name": "enc", "dim": 4}, weights="w0", task="task",
                  task_settings={"a": 1}, split="train", data="fp0", max_windows=64, window=100,
                  sample_rate=16000)
    fields.update(changes)
    return keys.embeddings_key(**fields)


class Extractor:
    """A fake extract_fn: deterministic embeddings from the track id; counts the tracks it embeds."""

    def __init__(self, skip: set[str] | None = None, fail_on_call: int | None = None):
        self.tracks = 0
        self.calls = 0
        self.skip = skip or set()
        self.fail_on_call = fail_on_call

    def __call__(self, items, label):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        kept = [it for it in items if it.track_id not in self.skip]
        self.tracks += len(items)
        X = np.array([[int(it.track_id[1:]), 1.0, 2.0, 3.0] for it in kept], dtype=np.float32).reshape(-1, 4)
        skipped = [{"track_id": it.track_id, "path": it.path, "reason": "cannot decode"} for it in items
                   if it.track_id in self.skip]
        return Embeddings(kept, X, skipped, windows=2 * len(kept), seconds=0.01)


@pytest.fixture
def store(tmp_path):
    return C.EmbeddingCache.open(tmp_path / "emb")


# -- unit tests on the store ---------------------------------------------------------------------------


def test_miss_then_hit_and_skipped_files_are_kept(store):
    items = fake_items(7)
    ex = Extractor(skip={"t003"})
    emb, status = store.get_or_extract(key(), items, ex, dim=4)
    assert status == "miss" and ex.tracks == 7
    again = Extractor()
    emb2, status2 = store.get_or_extract(key(), items, again, dim=4)
    assert status2 == "hit" and again.calls == 0
    np.testing.assert_array_equal(emb.X, emb2.X)
    assert [it.track_id for it in emb2.items] == [it.track_id for it in items if it.track_id != "t003"]
    assert emb2.skipped == [{"track_id": "t003", "path": "/nowhere/t003.wav", "reason": "cannot decode"}]
    assert emb2.windows == 12


@pytest.mark.parametrize("change", [
    {"weights": "w1"}, {"encoder_config": {"name": "enc", "dim": 4, "preset": "x"}}, {"task_settings": {"a": 2}},
    {"data": "fp1"}, {"max_windows": 8}, {"window": 50}, {"sample_rate": 22050}, {"encoder": "other"},
])
def test_every_key_field_invalidates(store, change):
    items = fake_items(3)
    store.get_or_extract(key(), items, Extractor(), dim=4)
    ex = Extractor()
    _, status = store.get_or_extract(key(**change), items, ex, dim=4)
    assert status == "miss" and ex.tracks == 3
    # the original entry is still there and still valid
    ex0 = Extractor()
    assert store.get_or_extract(key(), items, ex0, dim=4)[1] == "hit" and ex0.calls == 0


def test_extraction_version_is_part_of_the_key(monkeypatch):
    a = key()
    monkeypatch.setattr(keys, "EXTRACT_VERSION", "999")
    assert key().digest != a.digest


def _corrupt_rows(entry: Path) -> None:
    meta = json.loads((entry / "meta.json").read_text())
    meta["rows"] += 1
    (entry / "meta.json").write_text(json.dumps(meta))


def _corrupt_nan(entry: Path) -> None:
    import shutil

    shutil.rmtree(entry / "data")
    X = np.full((5, 4), np.nan, np.float32)
    C.write_table(entry / "data", [f"t{i:03d}" for i in range(5)], X, 4)


def _corrupt_ids(entry: Path) -> None:
    import shutil

    shutil.rmtree(entry / "data")
    C.write_table(entry / "data", [f"x{i:03d}" for i in range(5)], np.zeros((5, 4), np.float32), 4)


def _corrupt_truncate(entry: Path) -> None:
    f = next((entry / "data").glob("*.arrow"))
    f.write_bytes(f.read_bytes()[:50])


def _corrupt_meta(entry: Path) -> None:
    (entry / "meta.json").write_text("{not json")


@pytest.mark.parametrize("corrupt", [_corrupt_rows, _corrupt_nan, _corrupt_ids, _corrupt_truncate, _corrupt_meta])
def test_bad_entry_is_reported_deleted_and_rebuilt(store, corrupt, capsys):
    items = fake_items(5)
    good, _ = store.get_or_extract(key(), items, Extractor(), dim=4)
    corrupt(store.entry_dir(key()))
    ex = Extractor()
    emb, status = store.get_or_extract(key(), items, ex, dim=4)
    assert status == "rebuilt" and ex.tracks == 5
    assert "is bad" in capsys.readouterr().err
    np.testing.assert_array_equal(emb.X, good.X)
    ex2 = Extractor()
    assert store.get_or_extract(key(), items, ex2, dim=4)[1] == "hit" and ex2.calls == 0


def test_interrupted_extraction_leaves_no_entry_and_resumes(store):
    items = fake_items(10)
    with pytest.raises(KeyboardInterrupt):
        store.get_or_extract(key(), items, Extractor(fail_on_call=3), dim=4, chunk_tracks=3)
    assert not store.entry_dir(key()).exists()
    assert [e["status"] for e in store.entries()] == ["incomplete (2 chunk(s))"]
    ex = Extractor()
    emb, status = store.get_or_extract(key(), items, ex, dim=4, chunk_tracks=3)
    assert status == "resumed"
    assert ex.tracks == 4  # chunks 3 and 4 (3 + 1 tracks); chunks 1-2 came from disk
    ref = Extractor()(items, "")
    np.testing.assert_array_equal(emb.X, ref.X)
    assert not store.partial_dir(key()).exists()
    assert [e["status"] for e in store.entries()] == ["complete"]


def test_interrupted_final_write_leaves_no_entry(store, monkeypatch):
    items = fake_items(4)

    def crash(src, dst):
        raise KeyboardInterrupt("killed while renaming")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(KeyboardInterrupt):
        store.get_or_extract(key(), items, Extractor(), dim=4)
    monkeypatch.undo()
    assert not store.entry_dir(key()).exists()
    assert store.entries() == []
    ex = Extractor()
    assert store.get_or_extract(key(), items, ex, dim=4)[1] == "miss" and ex.tracks == 4


def test_unwritable_cache_dir_falls_back_to_temp(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "tmpdir"))
    store = C.EmbeddingCache.open(blocker / "embeddings")
    assert "not writable" in capsys.readouterr().err
    assert store.enabled and str(store.root).startswith(str(tmp_path / "tmpdir"))
    assert store.get_or_extract(key(), fake_items(2), Extractor(), dim=4)[1] == "miss"
    assert store.get_or_extract(key(), fake_items(2), Extractor(), dim=4)[1] == "hit"


def test_no_writable_place_means_no_cache_but_the_run_goes_on(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(blocker / "tmp"))
    store = C.EmbeddingCache.open(blocker / "embeddings")
    assert not store.enabled and "will not be cached" in capsys.readouterr().err
    emb, status = store.get_or_extract(key(), fake_items(2), Extractor(), dim=4)
    assert status == "off" and len(emb.items) == 2


def test_clear_by_encoder_and_task(store):
    store.get_or_extract(key(), fake_items(2), Extractor(), dim=4)
    store.get_or_extract(key(encoder="b"), fake_items(2), Extractor(), dim=4)
    store.get_or_extract(key(task="other"), fake_items(2), Extractor(), dim=4)
    assert len(store.entries()) == 3
    removed = store.clear(encoder="b")
    assert [r["encoder"] for r in removed] == ["b"]
    removed = store.clear(task="other")
    assert [(r["encoder"], r["task"]) for r in removed] == [("enc", "other")]
    assert len(store.entries()) == 1
    store.clear()
    assert store.entries() == []


# -- end to end on the tiny NSynth demo -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    """A cache folder holding the tiny demo data (built once for the module)."""
    return tmp_path_factory.mktemp("bench-cache")


def _run(tmp_path, out: str, *extra: str) -> dict:
    from bench.cli import main

    rc = main(["run", "--encoder", "logmel", "--tasks", "nsynth_pitch", "--demo-size", "tiny", "--seeds", "0",
               "--probe-grid", "fast", "--no-progress", "--out", str(tmp_path / out), *extra])
    assert rc == 0
    return json.loads((tmp_path / out / "records" / "logmel__nsynth_pitch__seed0.json").read_text())


def test_warm_run_decodes_no_audio_and_embeds_nothing(demo_cache, tmp_path, monkeypatch, capsys):
    import shutil

    from bench_plugins.logmel import LogMelEncoder

    monkeypatch.setenv("BENCH_CACHE_DIR", str(demo_cache))
    shutil.rmtree(demo_cache / "embeddings", ignore_errors=True)
    cold = _run(tmp_path, "cold")
    assert cold["cache"] == {"train": "miss", "valid": "miss", "test": "miss"}

    def boom(*a, **k):
        raise AssertionError("the warm run must not decode or embed")

    monkeypatch.setattr(LogMelEncoder, "embed", boom)
    monkeypatch.setattr("bench.extract.load_windows", boom)
    monkeypatch.setattr("bench.audio.load", boom)
    forget_results()  # the same command would reuse its records (bench.run_memo): this tests the embedding cache
    warm = _run(tmp_path, "warm")
    assert warm["cache"] == {"train": "hit", "valid": "hit", "test": "hit"}
    assert warm["metrics"] == cold["metrics"]
    assert warm["data"]["windows"] == cold["data"]["windows"]

    from bench.cli import main

    capsys.readouterr()
    assert main(["cache", "list", "--kind", "embeddings,probes,results"]) == 0
    listing = capsys.readouterr().out
    # three splits' embeddings, the probe of seed 0 and the finished pair
    assert "5 entries" in listing and listing.count(" | logmel ") == 5 and "nsynth_pitch" in listing
    assert main(["cache", "clear", "--encoder", "logmel", "--task", "nsynth_pitch"]) == 0
    assert "Removed 5" in capsys.readouterr().out


def test_changed_test_split_recomputes_only_test(demo_cache, tmp_path, monkeypatch):
    """Editing one file of the test split changes that split's fingerprint, and only its entry is rebuilt."""
    import shutil

    import soundfile as sf

    from bench import plugins
    from bench.config import DataRoots
    from bench.weights import weights_hash

    monkeypatch.setenv("BENCH_CACHE_DIR", str(demo_cache))
    data = tmp_path / "data"
    root = DataRoots(demo_size="tiny").root(plugins.get_task("nsynth_pitch"))
    shutil.copytree(root / "nsynth", data / "nsynth")
    task = plugins.get_task("nsynth_pitch")
    enc = plugins.get_encoder("logmel")
    store = C.EmbeddingCache.open(tmp_path / "emb")
    wh = weights_hash(enc)

    def embed_all():
        return {s: shard.embed_split(store, "logmel", enc, wh, task, s, task.items(s, data).items, data,
                                     progress=False)[1]["status"] for s in ("train", "valid", "test")}

    assert embed_all() == {"train": "miss", "valid": "miss", "test": "miss"}
    assert embed_all() == {"train": "hit", "valid": "hit", "test": "hit"}
    victim = task.items("test", data).items[0].path
    x, sr = sf.read(victim)
    sf.write(victim, x[: len(x) // 2], sr)  # a different (shorter) recording
    assert embed_all() == {"train": "hit", "valid": "hit", "test": "miss"}
    other = plugins.get_encoder("logmel")
    other.options["note"] = "changed config"
    assert shard.embed_split(store, "logmel", other, wh, task, "valid", task.items("valid", data).items, data,
                             progress=False)[1]["status"] == "miss"


def test_stale_builds_of_dead_processes_are_cleaned(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / "emb" / ".tmp" / f"enc__task__train__abc.{pid}.deadbeef"
    mine = tmp_path / "emb" / ".tmp" / f"enc__task__train__abc.{os.getpid()}.cafe"
    stale.mkdir(parents=True)
    mine.mkdir(parents=True)
    C.EmbeddingCache.open(tmp_path / "emb")
    assert not stale.exists() and mine.exists()


def test_table_writer_writes_the_bytes_datasets_from_dict_writes(tmp_path):
    """The Arrow columns are built from the matrix buffer (no Python list per row); the files on disk are
    those datasets' own from_dict writes, so entries written before and after read alike."""
    import filecmp

    import datasets

    from bench.embedding_cache import write_table as _write_table

    for n, dim in ((0, 4), (3, 1), (40, 16)):
        X = np.random.default_rng(n).random((n, dim), dtype=np.float32)
        ids = [f"track{i}" for i in range(n)]
        ours, ref = tmp_path / f"ours{n}", tmp_path / f"ref{n}"
        _write_table(ours, ids, X, dim)
        features = datasets.Features({"track_id": datasets.Value("string"),
                                      "embedding": datasets.List(datasets.Value("float32"), length=dim)})
        datasets.Dataset.from_dict({"track_id": ids, "embedding": X}, features=features).save_to_disk(str(ref))
        names = sorted(p.name for p in ref.iterdir())
        assert sorted(p.name for p in ours.iterdir()) == names
        assert all(filecmp.cmp(ours / f, ref / f, shallow=False) for f in names)


def test_the_shared_path_over_one_process_keys_and_stores_as_the_local_path(tmp_path, demo_cache, monkeypatch):
    """``shard.embed_split_shared`` (the accelerate path, here with a group of one process) computes the same key
    and rows as ``shard.embed_split`` and serves what the local path stored, and the other way round."""
    import numpy as np

    from bench import plugins
    from bench.config import DataRoots
    from bench.procs import Procs
    from bench.weights import weights_hash

    monkeypatch.setenv("BENCH_CACHE_DIR", str(demo_cache))
    task, enc = plugins.get_task("nsynth_pitch"), plugins.get_encoder("logmel")
    root = DataRoots(demo_size="tiny").root(task)
    wh, items = weights_hash(enc), task.items("valid", root).items
    shared = C.EmbeddingCache.open(tmp_path / "shared")
    local = C.EmbeddingCache.open(tmp_path / "local")
    a, info_a = shard.embed_split_shared(Procs(), shared, "logmel", enc, wh, task, "valid", items, root,
                                         progress=False)
    b, info_b = shard.embed_split(local, "logmel", enc, wh, task, "valid", items, root, progress=False)
    assert info_a == info_b and info_a["status"] == "miss" and np.array_equal(a.X, b.X) and a.key == b.key == info_a["key"]
    assert shard.embed_split(shared, "logmel", enc, wh, task, "valid", items, root, progress=False)[1]["status"] == "hit"
    again, info = shard.embed_split_shared(Procs(), local, "logmel", enc, wh, task, "valid", items, root,
                                           progress=False)
    assert info["status"] == "hit" and np.array_equal(again.X, b.X)
