"""The one store and key chain: every cache kind detects an edited entry, a flipped byte and a truncated file,
says so, recomputes and gives the numbers a computation without the cache gives; keys miss on every cause."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import keys, store
from bench.extract import Embeddings
from bench.task import Item
from conftest import write_wav_array

DAMAGES = ("edit", "flip", "truncate")


def _damage(path: Path, how: str) -> None:
    """Change ``path`` in place as a user or a failing disk would; the mtime is put back each time."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    if how == "edit":  # a plausible, same-size edit: one digit of a JSON number, or one value's byte
        text = data.decode("latin-1")
        digit = next((i for i, c in enumerate(text) if c.isdigit() and c != "9" and i > len(text) // 3), None)
        i = digit if digit is not None else len(data) // 2
        data[i] = ord("9") if digit is not None else data[i] ^ 0x40
    elif how == "flip":
        data[len(data) - 9] ^= 1
    else:
        del data[len(data) // 2 :]
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _files(entry: Path) -> list[Path]:
    return sorted((p for p in entry.rglob("*") if p.is_file() and p.name != store.MANIFEST),
                  key=lambda p: -p.stat().st_size)


# -- one harness per kind: (compute through the cache) -> (value, status); the entry's files; the no-cache value


def _embeddings(tmp_path, monkeypatch):
    from bench.embedding_cache import EmbeddingCache

    items = [Item(f"t{i}", f"/x/{i}.wav", 0) for i in range(6)]
    key = keys.embeddings_key(encoder="e", encoder_config={}, weights="w", task="t", task_settings={}, split="test",
                              data="d", max_windows=8, window=10, sample_rate=100)

    def extract(sub, label):
        X = np.array([[float(it.track_id[1:]), 0.5, -1.0] for it in sub], dtype=np.float32)
        return Embeddings(list(sub), X, [], windows=len(sub), seconds=0.0)

    cache = EmbeddingCache.open(tmp_path / "embeddings")

    def run():
        emb, status = cache.get_or_extract(key, items, extract, dim=3)
        return (emb.X.tolist(), emb.windows, [it.track_id for it in emb.items]), status

    fresh = extract(items, "")
    return run, lambda: cache.entry_dir(key), (fresh.X.tolist(), 6, [it.track_id for it in items])


def _probes(tmp_path, monkeypatch):
    from bench.probe import ProbeResult, SelectedProbe
    from bench.probe_cache import ProbeCache

    from bench_tasks.nsynth import NSynthPitch

    key = keys.probe_key(task=NSynthPitch(), classes=["a", "b", "c"], embedding_keys={"test": "x"}, condition_keys={},
                         probe={}, grid=[(1e-3, 1e-6)], seed=0)

    def compute():
        res = ProbeResult(np.arange(12, dtype=np.float32).reshape(4, 3), 0.25, 3, 5, 0.1, None, {})
        return SelectedProbe(res, 1e-3, 1e-6, [{"lr": 1e-3}], "accuracy"), {"clean": {"accuracy": 0.5}}, \
            {"clean": {"accuracy": [0.25, 0.75]}}

    cache = ProbeCache.open(tmp_path / "probes")

    def run():
        (sel, metrics, ci), status = cache.get_or_compute(key, compute, {"clean": 4})
        return (sel.result.test_scores.tolist(), sel.lr, metrics, ci), status

    sel, metrics, ci = compute()
    return run, lambda: cache.root / key.name, (sel.result.test_scores.tolist(), sel.lr, metrics, ci)


def _renders(tmp_path, monkeypatch):
    from bench import render_cache

    def draw(values):
        return b"\x89PNG" + json.dumps(values).encode() * 4

    def run():
        before = len(calls)
        data = render_cache.png("chart", lambda v: calls.append(1) or draw(v), [0.25, 0.5])
        return data, "hit" if len(calls) == before else "miss"

    calls: list[int] = []
    folder = lambda: next(p for p in render_cache.root().iterdir() if not p.name.startswith("."))  # noqa: E731
    return run, folder, draw([0.25, 0.5])


def _checkpoints(tmp_path, monkeypatch):
    from bench import plugins
    from bench.config import DataRoots
    from bench.pretrain import checkpoints
    from bench.weights import weights_hash

    saves: list[int] = []
    real = checkpoints.save_checkpoint
    monkeypatch.setattr(checkpoints, "save_checkpoint", lambda *a, **k: saves.append(1) or real(*a, **k))

    def run():
        enc = plugins.get_encoder("random")
        before = len(saves)
        path, _ = checkpoints.ensure_pretrained(enc, data_roots=DataRoots(), cache_dir=tmp_path, quiet=True)
        return (weights_hash(enc), store.verify(path)), "hit" if len(saves) == before else "miss"

    def entry():  # a single sealed file: damage the weights themselves
        return next((tmp_path / "checkpoints").glob("*.safetensors"))

    return run, entry, (weights_hash(plugins.get_encoder("random")), True)


def _pretrain_audio(tmp_path, monkeypatch):
    from bench.pretrain.audio_store import AudioStore
    from bench.pretrain.pools import Track

    rng = np.random.default_rng(0)
    tracks = []
    for i in range(3):
        write_wav_array(tmp_path / "pool" / f"{i}.wav", rng.uniform(-0.5, 0.5, 4000 + 500 * i))
        tracks.append(Track(str(tmp_path / "pool" / f"{i}.wav"), str(i), "dir"))

    def value(cache):
        s = AudioStore(tracks, 4000, cache)
        return [np.asarray(s.get(t)).tolist() for t in tracks], s.failed

    fresh = value(tmp_path / "fresh")
    builds: list[int] = []
    from bench.pretrain import decode

    real = decode.write_pool
    monkeypatch.setattr(decode, "write_pool", lambda *a: builds.append(1) or real(*a))

    def run():
        before = len(builds)
        got = value(tmp_path / "cache")
        return got, "hit" if len(builds) == before else "miss"

    def entry():
        root = tmp_path / "cache" / "pretrain-audio"
        return next(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    return run, entry, fresh


def _results(tmp_path, monkeypatch):
    """The run memo (bench.run_memo) of one logmel pair: its records against the records computed afresh."""
    from types import SimpleNamespace

    from bench import run_memo
    from bench.config import DataRoots
    from bench.settings import EvalSettings, RunConfig

    from bench_tasks.nsynth import NSynthPitch

    task = NSynthPitch()
    # the real settings types: every field the memo key reads is there, with its default
    settings = EvalSettings(tmp_path / "out", DataRoots(None, {}, "small", 0), probe_grid="fast", seeds=(0,),
                            batch_size=8)
    config = RunConfig(["logmel"], [task.name], settings)
    data = SimpleNamespace(fingerprint="f" * 64, classes=["a", "b"])
    prep = SimpleNamespace(entry=SimpleNamespace(name="logmel"), encoder=object(), options={}, weights={},
                           pools=None)

    def compute():
        return [{"encoder": "logmel", "task": task.name, "seed": 0, "metrics": {"accuracy": 0.3125},
                 "ci": {"accuracy": [0.125, 0.5625]}}]

    def run():
        records = run_memo.lookup("logmel", task, config, data, {})
        if records:
            return [{k: v for k, v in r.items() if k not in ("reused", "created", "command")} for r in records], "hit"
        records = compute()
        assert run_memo.store(prep, task, config, data, records)
        return records, "miss"

    return run, lambda: next(p for p in run_memo.root().iterdir() if not p.name.startswith(".")), compute()


KINDS = {"embeddings": _embeddings, "probes": _probes, "renders": _renders, "checkpoints": _checkpoints,
         "pretrain-audio": _pretrain_audio, "results": _results}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_detects_damage_says_so_and_recomputes_the_right_numbers(kind, damage, tmp_path, monkeypatch,
                                                                            capsys):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    run, entry, expected = KINDS[kind](tmp_path, monkeypatch)
    first, status = run()
    assert status == "miss" and first == expected
    again, status = run()
    assert status == "hit" and again == expected
    where = entry()
    files = [where] if where.is_file() else _files(where)
    target = files[0] if damage != "edit" else next((f for f in files if f.suffix == ".json"), files[0])
    _damage(target, damage)
    capsys.readouterr()
    got, status = run()
    err = capsys.readouterr().err
    assert got == expected, f"{kind}: a damaged entry ({damage}) changed the numbers"
    assert status != "hit" and err.count("warning:") == 1 and ("checksum" in err or "bad" in err), err
    assert run() == (expected, "hit")  # the recomputed entry is stored and trusted again


# -- keys hold every cause ---------------------------------------------------------------------------


@pytest.fixture
def fake_module(tmp_path, monkeypatch):
    """A package on sys.path (a new name each time) with a module ``enc``: (module name, its file)."""
    name = f"fakeplug_{os.getpid()}_{len(list(tmp_path.parent.iterdir()))}_{tmp_path.name[-12:].replace('-', '_')}"
    pkg = tmp_path / "src" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "enc.py").write_text("SCALE = 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    return f"{name}.enc", pkg / "enc.py"


def _same_size_edit(path: Path, old: str, new: str) -> None:
    st = path.stat()
    text = path.read_text()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_editing_an_encoder_plugins_source_or_version_misses_the_embedding_cache(fake_module, tmp_path):
    from bench import plugins
    from bench.embedding_cache import EmbeddingCache
    from bench.shard import key_for
    from bench.plugins import PluginInfo

    module, source = fake_module
    reg = plugins.encoders()
    info = PluginInfo("fakeplug", module, "fake-dist", "0.1")
    reg.add("fake-enc", f"{module}:Enc", "", info)
    try:
        enc = plugins.get_encoder("logmel")
        task = plugins.get_task("nsynth_pitch")
        items = [Item("a", str(tmp_path / "missing.wav"), 0)]
        cache = EmbeddingCache.open(tmp_path / "emb")
        calls = []

        def status():
            key = key_for("fake-enc", enc, "w", task, "test", items, tmp_path)
            extract = lambda sub, label: calls.append(1) or Embeddings(list(sub), np.ones((1, enc.dim), np.float32))  # noqa: E731
            return cache.get_or_extract(key, items, extract, dim=enc.dim)[1]

        assert (status(), status()) == ("miss", "hit")
        _same_size_edit(source, "1.0", "2.0")  # same size, same mtime: only the content tells
        assert status() == "miss"
        info.version = "0.2"
        assert status() == "miss" and status() == "hit" and len(calls) == 3
    finally:
        del reg.entries["fake-enc"]


def test_editing_the_probe_code_misses_the_probe_cache(fake_module, tmp_path, monkeypatch):
    from bench.probe import ProbeResult, SelectedProbe
    from bench.probe_cache import ProbeCache
    from bench_tasks.nsynth import NSynthPitch

    assert {"bench.probe", "bench.probe_data", "bench.metrics", "bench.confidence"} <= set(keys.PROBE_MODULES)
    module, source = fake_module
    monkeypatch.setattr(keys, "PROBE_MODULES", (*keys.PROBE_MODULES, module))
    cache = ProbeCache.open(tmp_path / "probes")
    calls = []

    def compute():
        calls.append(1)
        return SelectedProbe(ProbeResult(np.zeros((2, 2), np.float32), 0.1, 1, 1, 0.0), 1e-3, 0.0), \
            {"clean": {"accuracy": 0.5}}, {"clean": {}}

    def status():
        key = keys.probe_key(task=NSynthPitch(), classes=["a", "b"], embedding_keys={"test": "x"},
                             condition_keys={}, probe={}, grid=[(1e-3, 0.0)], seed=0)
        return cache.get_or_compute(key, compute, {"clean": 2})[1]

    assert (status(), status()) == ("miss", "hit")
    _same_size_edit(source, "1.0", "3.0")
    assert (status(), status()) == ("miss", "hit") and len(calls) == 2


def test_replacing_an_unlabeled_folders_audio_changes_the_checkpoint_key(tmp_path):
    from bench import plugins
    from bench.config import DataRoots
    from bench.pretrain.checkpoints import checkpoint_key
    from bench.pretrain.pools import PoolPlan

    folder = tmp_path / "music"
    rng = np.random.default_rng(1)
    for i in range(2):
        write_wav_array(folder / f"{i}.wav", rng.uniform(-0.5, 0.5, 2000))
    enc = plugins.get_encoder("simclr")
    plan = PoolPlan(dirs=(str(folder),))
    before = checkpoint_key(enc, enc.recipe(), plan, DataRoots(general=str(tmp_path)))
    assert checkpoint_key(enc, enc.recipe(), plan, DataRoots(general=str(tmp_path))) == before
    victim = folder / "1.wav"
    st = victim.stat()
    write_wav_array(victim, rng.uniform(-0.5, 0.5, 2000))  # same name, same size, other audio
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_size == st.st_size
    assert checkpoint_key(enc, enc.recipe(), plan, DataRoots(general=str(tmp_path))) != before


def test_the_key_chain_and_listing_import_no_torch():
    import subprocess

    code = ("import sys\nfrom bench import keys, store, embedding_cache, probe_cache, render_cache\n"
            "store.entries()\nprint('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_the_digest_memo_serves_a_thread_other_than_the_one_that_opened_it(tmp_path, capsys):
    """ensure_pretrained may run in a thread (tests, a caller's pool) after the main thread opened the memo."""
    import threading

    (tmp_path / "a").write_bytes(b"a" * 10)
    memo = store.FileDigests(tmp_path / "memo.sqlite")
    first = memo.digest(tmp_path / "a")
    got = []
    t = threading.Thread(target=lambda: got.append(memo.digest(tmp_path / "a")))
    t.start()
    t.join(30)
    assert got == [first] and "cannot be used" not in capsys.readouterr().err


def test_resolve_gives_what_realpath_gives_with_links_and_dots(tmp_path, monkeypatch):
    """The per-folder resolution of file paths (one lstat a file) equals os.path.realpath, links included."""
    import os

    from bench.store import resolve

    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "a.wav").write_bytes(b"a")
    (real / "sub" / "b.wav").write_bytes(b"b")
    (tmp_path / "linkdir").symlink_to(real)
    (real / "link.wav").symlink_to(real / "sub" / "b.wav")
    (real / "sub" / "up").symlink_to(real)
    monkeypatch.chdir(real)
    paths = [real / "a.wav", tmp_path / "linkdir" / "a.wav", tmp_path / "linkdir" / "sub" / "b.wav",
             real / "link.wav", tmp_path / "linkdir" / "link.wav", real / "sub" / ".." / "a.wav",
             real / "sub" / "up" / "sub" / "b.wav", real / "missing.wav", tmp_path / "nowhere" / "x.wav",
             "a.wav", "sub/b.wav", ".", "..", str(real / "sub") + "/"]
    assert resolve(paths) == [os.path.realpath(p) for p in paths]
