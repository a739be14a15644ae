"""Hostile-user cases (issue 10): each builds its broken input here and checks the right number or a
clear message (exit 2 for bad input), and that the rest goes on.

Sections:
  1. content-true data fingerprint and the embedding cache key
  2. embedding cache safety: checksums, the shared temporary fallback folder
  3. the CI gate: bench compare and the leaderboard with NaN, null and junk
  4. annotation files: encodings, quotes, problems reported once
  5. symbolic links in a data root
  6. audio: long files, corrupt files, `bench data check --decode`
  7. what held when the issue was filed (kept so it stays held)
  8. run and CLI (added with the trainable-half rewrite)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench import embedding_cache as C
from bench import keys, shard
from bench import store as F
from bench.cli import main
from bench.errors import DataError
from bench.extract import Embeddings
from bench.task import Item


@pytest.fixture
def nsynth_copy(nsynth_tiny, tmp_path):
    """A private copy of the tiny NSynth demo that a test may damage."""
    data = tmp_path / "data"
    shutil.copytree(nsynth_tiny / "nsynth", data / "nsynth")
    return data


def _noise_over(path: Path, seed: int) -> None:
    """Overwrite a WAV with white noise of exactly the same length, format and byte size."""
    import soundfile as sf

    info = sf.info(str(path))
    size = path.stat().st_size
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, (info.frames, info.channels)).astype(np.float32)
    sf.write(str(path), noise, info.samplerate, subtype=info.subtype, format=info.format)
    assert path.stat().st_size == size


# == 1. content-true data fingerprint ======================================================================


def test_same_size_noise_changes_the_cache_key_the_fingerprint_and_the_embeddings(nsynth_copy, tmp_path):
    """Every NSynth WAV has the same size: overwriting the test split with noise must not be a cache hit."""
    from bench import plugins
    from bench.weights import weights_hash

    data = nsynth_copy
    task = plugins.get_task("nsynth_pitch")
    enc = plugins.get_encoder("logmel")
    store = C.EmbeddingCache.open(tmp_path / "emb")
    wh = weights_hash(enc)
    splits = {s: task.items(s, data).items for s in ("train", "valid", "test")}

    def embed(split):
        return shard.embed_split(store, "logmel", enc, wh, task, split, splits[split], data, progress=False)

    before_fp = keys.data_fingerprint(splits, data)
    before_key = shard.key_for("logmel", enc, wh, task, "test", splits["test"], data).digest
    train_key = shard.key_for("logmel", enc, wh, task, "train", splits["train"], data).digest
    X0, info0 = embed("test")
    assert embed("test")[1]["status"] == "hit"
    for i, item in enumerate(splits["test"]):
        _noise_over(Path(item.path), seed=i)
    assert keys.data_fingerprint(splits, data) != before_fp
    assert shard.key_for("logmel", enc, wh, task, "test", splits["test"], data).digest != before_key
    X1, info1 = embed("test")
    assert info1["status"] == "miss" and info1["fingerprint"] != info0["fingerprint"]
    assert not np.allclose(X0.X, X1.X)
    # the train split's files are untouched: its key (and so its cache entry) stays
    assert shard.key_for("logmel", enc, wh, task, "train", splits["train"], data).digest == train_key


def test_memo_rereads_nothing_when_unchanged_and_sees_an_overwrite_with_the_old_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(F, "RACY_NS", 0)  # these files were just written; trust their stat at once
    files = []
    for i in range(4):
        p = tmp_path / "d" / f"{i}.bin"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(bytes([i]) * 1000)
        files.append(p)
    first = F.FileDigests(tmp_path / "memo.sqlite")
    sums = first.digests(files)
    assert first.hashed == 4 and len(set(sums)) == 4
    first.close()
    warm = F.FileDigests(tmp_path / "memo.sqlite")  # another process: the persistent memo
    assert warm.digests(files) == sums and warm.hashed == 0
    st = files[2].stat()
    files[2].write_bytes(b"\x07" * 1000)  # same size ...
    os.utime(files[2], ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the old mtime
    again = warm.digests(files)
    assert warm.hashed == 1 and again[2] != sums[2] and again[:2] == sums[:2]


def test_a_file_written_just_before_it_was_hashed_is_not_memoised(tmp_path):
    """Coarse filesystem timestamps: a second write in the same tick would keep every stat field."""
    p = tmp_path / "fresh.bin"
    p.write_bytes(b"a" * 64)
    memo = F.FileDigests()
    memo.digest(p)
    memo.digest(p)
    assert memo.hashed == 2


def test_missing_and_unreadable_files_do_not_break_the_fingerprint(tmp_path):
    items = [Item("a", str(tmp_path / "nope.wav"), 0)]
    fp = keys.data_fingerprint({"test": items}, tmp_path, F.FileDigests())
    (tmp_path / "nope.wav").write_bytes(b"now here")
    assert keys.data_fingerprint({"test": items}, tmp_path, F.FileDigests()) != fp


def test_a_broken_digest_memo_is_reported_and_the_run_goes_on(tmp_path, capsys):
    bad = tmp_path / "memo.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    (tmp_path / "x").write_bytes(b"x")
    memo = F.FileDigests(bad)
    assert memo.digest(tmp_path / "x") == F.hash_file(tmp_path / "x")
    assert "cannot be used" in capsys.readouterr().err


# == 2. embedding cache safety ==============================================================================


def _fake_extract(items, label):
    X = np.array([[float(i), 1.0, 2.0, 3.0] for i, _ in enumerate(items)], dtype=np.float32).reshape(-1, 4)
    return Embeddings(list(items), X, [], windows=len(items), seconds=0.0)


def _key():
    return keys.embeddings_key(encoder="enc", encoder_config={}, weights="w", task="t", task_settings={},
                               split="test", data="fp", max_windows=64, window=100, sample_rate=16000)


def test_reordered_rows_in_a_cached_matrix_are_detected_reported_and_rebuilt(tmp_path, capsys):
    store = C.EmbeddingCache.open(tmp_path / "emb")
    items = [Item(f"t{i}", f"/x/{i}.wav", 0) for i in range(5)]
    emb, status = store.get_or_extract(_key(), items, _fake_extract, dim=4)
    assert status == "miss"
    entry = store.entry_dir(_key())
    ids, X = C.read_table(entry / C.DATA)
    shutil.rmtree(entry / C.DATA)
    C.write_table(entry / C.DATA, list(ids), X[::-1].copy(), 4)  # same ids, rows reversed, all finite
    again, status = store.get_or_extract(_key(), items, _fake_extract, dim=4)
    assert status == "rebuilt" and "checksum" in capsys.readouterr().err
    np.testing.assert_array_equal(again.X, emb.X)
    assert store.get_or_extract(_key(), items, _fake_extract, dim=4)[1] == "hit"


def _blocked(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker / "embeddings"  # cannot be created: the fallback is used


def test_fallback_folder_is_created_private(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "tmp"))
    store = C.EmbeddingCache.open(_blocked(tmp_path))
    assert store.enabled and store.root == F.fallback_root() / "embeddings"
    assert (F.fallback_root().stat().st_mode & 0o777) == 0o700
    assert F.file_digests().store == F.fallback_root() / F.MEMO_NAME


@pytest.mark.parametrize("plant", ["loose-mode", "other-owner", "symlink"])
def test_a_fallback_folder_someone_else_could_have_planted_is_refused(tmp_path, monkeypatch, capsys, plant):
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "tmp"))
    if plant == "other-owner":  # the folder is made by this process: seen from another user id, it is theirs
        uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    target = F.fallback_root()
    target.parent.mkdir()
    if plant == "symlink":
        real = tmp_path / "elsewhere"
        real.mkdir(mode=0o700)
        target.symlink_to(real)
    else:
        target.mkdir(mode=0o700)
        if plant == "loose-mode":
            target.chmod(0o777)
    planted = C.EmbeddingCache(F.fallback_root() / "embeddings")
    planted.get_or_extract(_key(), [Item("t0", "/x/0.wav", 0)], _fake_extract, dim=4)
    store = C.EmbeddingCache.open(_blocked(tmp_path))
    err = capsys.readouterr().err
    assert not store.enabled and "will not be cached" in err
    assert ("not trusted" in err) if plant != "symlink" else ("not a folder" in err)
    assert str(target) in err
    assert F.file_digests().store is None  # nor is the digest memo kept there


# == 3. the CI gate: bench compare and the leaderboard ======================================================


def _record(encoder="a", task="t1", seed=0, value=0.5):
    from bench.results import new_record

    return new_record(encoder=encoder, task=task, seed=seed, primary_metric="accuracy", metrics={"accuracy": value},
                      confidence={}, demo_data=True, encoder_config={}, weights_hash="w",
                      data={"fingerprint": f"fp-{task}"})


def _results(folder: Path, values: dict) -> Path:
    from bench.results import write_record

    for (enc, task, seed), v in values.items():
        write_record(_record(enc, task, seed, v), folder / "records")
    return folder


def _baseline_file(tmp_path, mean) -> Path:
    from bench.results import SCHEMA_VERSION

    doc = {"format": "bench-baseline", "format_version": 1, "schema_version": SCHEMA_VERSION, "demo_data": True,
           "entries": [{"encoder": "a", "task": "t1", "metric": "accuracy", "mean": 0.5},
                       {"encoder": "b", "task": "t1", "metric": "accuracy", "mean": mean}]}
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(doc))  # json writes float("nan") as the NaN literal, as Python reads it back
    return path


@pytest.mark.parametrize("mean", [float("nan"), None, "high", True])
def test_a_baseline_mean_that_is_not_a_finite_number_is_an_error_not_a_pass(tmp_path, capsys, mean):
    cur = _results(tmp_path / "cur", {("a", "t1", 0): 0.1, ("b", "t1", 0): 0.0})
    base = _baseline_file(tmp_path, mean)
    assert main(["compare", str(cur), str(base)]) == 2
    err = capsys.readouterr().err
    assert str(base) in err and "entry 1 (b x t1)" in err


def test_a_results_folder_with_a_nan_metric_is_no_baseline(tmp_path, capsys):
    base = _results(tmp_path / "base", {("a", "t1", 0): float("nan")})
    cur = _results(tmp_path / "cur", {("a", "t1", 0): 0.9})
    assert main(["compare", str(cur), str(base)]) == 2
    assert "a x t1" in capsys.readouterr().err


def test_write_baseline_from_nan_results_is_refused(tmp_path, capsys):
    res = _results(tmp_path / "res", {("a", "t1", 0): 0.7, ("a", "t1", 1): float("nan"), ("b", "t1", 0): 0.2})
    out = tmp_path / "base.json"
    assert main(["compare", str(res), "--write-baseline", str(out)]) == 2
    assert "a x t1" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("tol", ["nan", "-0.1", "inf"])
def test_a_tolerance_that_lets_everything_pass_is_refused(tmp_path, capsys, tol):
    res = _results(tmp_path / "res", {("a", "t1", 0): 0.5})
    assert main(["compare", str(res), str(res), "--tolerance", tol]) == 2
    assert "--tolerance" in capsys.readouterr().err


def test_a_nan_metric_shows_as_nan_and_the_gate_fails_on_it(tmp_path, capsys):
    good = _results(tmp_path / "good", {("a", "t1", 0): 0.5, ("a", "t1", 1): 0.5, ("b", "t1", 0): 0.4})
    base = tmp_path / "base.json"
    assert main(["compare", str(good), "--write-baseline", str(base)]) == 0
    bad = _results(tmp_path / "bad", {("a", "t1", 0): 0.9, ("a", "t1", 1): float("nan"), ("b", "t1", 0): 0.4})
    capsys.readouterr()
    assert main(["leaderboard", str(bad)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| a "))
    assert "| NaN" in row and "0.9" not in row  # not the mean of the defined seeds
    assert "NaN" in (bad / "leaderboard.csv").read_text()
    assert main(["compare", str(bad), str(base)]) == 1
    assert "regressed" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["no-task", "string-metric", "no-seed"])
def test_a_damaged_record_is_a_clear_error_naming_its_file(tmp_path, capsys, damage):
    res = _results(tmp_path / "res", {("a", "t1", 0): 0.5, ("b", "t1", 0): 0.4})
    victim = res / "records" / "b__t1__seed0.json"
    rec = json.loads(victim.read_text())
    if damage == "no-task":
        del rec["task"]
    elif damage == "string-metric":
        rec["metrics"]["accuracy"] = "0.4"
    else:
        del rec["seed"]
    victim.write_text(json.dumps(rec))
    for argv in (["leaderboard", str(res)], ["compare", str(res), str(res)]):
        assert main(argv) == 2
        assert str(victim) in capsys.readouterr().err


# == 4. annotation files: encodings, quotes, problems reported once =========================================

SECRET = "SECRET-FIRST-LINE do not print me"


def _nsynth_entry(key: str, pitch: int) -> dict:
    inst, _, _ = key.rpartition("-")[0].rpartition("-")
    return {"note": abs(hash(key)) % 10**6, "note_str": key, "instrument": 1, "instrument_str": inst,
            "pitch": pitch, "velocity": 100, "sample_rate": 16000, "instrument_source": 0,
            "instrument_source_str": "acoustic", "instrument_family": 0, "instrument_family_str": "bass",
            "qualities": [0] * 10, "qualities_str": []}


def make_nsynth(root: Path, n: int = 3, encoding: str = "utf-8") -> Path:
    """nsynth/nsynth-{train,valid,test}/ with n entries each (empty audio files: indexing does not decode)."""
    for split in ("train", "valid", "test"):
        folder = root / "nsynth" / f"nsynth-{split}"
        (folder / "audio").mkdir(parents=True)
        ex = {}
        for i in range(n):
            key = f"bass_acoustic_{split}{i:03d}-{60 + i:03d}-100"
            ex[key] = _nsynth_entry(key, 60 + i)
            (folder / "audio" / f"{key}.wav").write_bytes(b"RIFF")
        (folder / "examples.json").write_bytes(json.dumps(ex, indent=1).encode(encoding))
    return root / "nsynth"


MTAT_HEADER = '"clip_id"\t"guitar"\t"piano"\t"mp3_path"'


def make_mtat(root: Path, rows: list[str], encoding: str = "utf-8") -> Path:
    base = root / "magnatagatune"
    base.mkdir(parents=True, exist_ok=True)
    (base / "annotations_final.csv").write_bytes(("\n".join([MTAT_HEADER, *rows]) + "\n").encode(encoding))
    for row in rows:
        mp3 = row.split("\t")[-1].strip('"')
        if len(mp3) > 2 and mp3[1] == "/" and ".." not in mp3:
            (base / mp3).parent.mkdir(exist_ok=True)
            (base / mp3).write_bytes(b"x")
    return base


def make_giantsteps(root: Path, encoding: str = "utf-8", which: str = "") -> None:
    test = root / "giantsteps-key-dataset"
    (test / "annotations" / "key").mkdir(parents=True)
    (test / "audio").mkdir()
    for i, key in enumerate(["C minor", "Eb major"]):
        (test / "annotations" / "key" / f"{i}.LOFI.key").write_bytes(
            key.encode(encoding if which == "key" and i == 0 else "utf-8"))
        (test / "audio" / f"{i}.LOFI.mp3").write_bytes(b"x")
    mtg = root / "giantsteps-mtg-key-dataset"
    (mtg / "annotations").mkdir(parents=True)
    (mtg / "audio").mkdir()
    ann = ["ID\tMANUAL KEY\tC"] + [f"{100 + i}\tA minor\t2" for i in range(6)]
    meta = ["ID\tARTIST\tSONG TITLE"] + [f"{100 + i}\tArtist {i}\tSong" for i in range(6)]
    for name, lines in (("annotations.txt", ann), ("beatport_metadata.txt", meta)):
        enc = encoding if which == name else "utf-8"
        (mtg / "annotations" / name).write_bytes(("\n".join(lines) + "\n").encode(enc))
    for i in range(6):
        (mtg / "audio" / f"{100 + i}.LOFI.mp3").write_bytes(b"x")


def make_gtzan(root: Path, encoding: str = "utf-8") -> Path:
    base = root / "gtzan"
    for g in ("blues", "jazz"):
        (base / "genres" / g).mkdir(parents=True)
        for i in range(2):
            (base / "genres" / g / f"{g}.{i:05d}.wav").write_bytes(b"x")
    for i, split in enumerate(("train", "valid", "test")):
        (base / f"{split}_filtered.txt").write_bytes(f"blues/blues.0000{i % 2}.wav\njazz/jazz.00001.wav\n"
                                                     .encode(encoding))
    return base


def _task(name):
    from bench import plugins

    return plugins.get_task(name)


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1-garbage"])
@pytest.mark.parametrize("case", ["nsynth", "mtat", "giantsteps-annotations", "giantsteps-metadata", "gtzan"])
def test_an_annotation_file_that_is_not_utf8_is_a_data_error_naming_it(tmp_path, case, encoding):
    def enc(text_encoding):
        return text_encoding if encoding == "utf-16" else "utf-8"

    if case == "nsynth":
        make_nsynth(tmp_path, encoding=enc("utf-16"))
        bad, task, split = tmp_path / "nsynth" / "nsynth-train" / "examples.json", "nsynth_pitch", "train"
    elif case == "mtat":
        make_mtat(tmp_path, ['"1"\t"1"\t"0"\t"0/a.mp3"'], encoding=enc("utf-16"))
        bad, task, split = tmp_path / "magnatagatune" / "annotations_final.csv", "mtat", "train"
    elif case.startswith("giantsteps"):
        name = "annotations.txt" if case.endswith("annotations") else "beatport_metadata.txt"
        make_giantsteps(tmp_path, encoding=enc("utf-16"), which=name)
        bad, task, split = tmp_path / "giantsteps-mtg-key-dataset" / "annotations" / name, "giantsteps_key", "train"
    else:
        make_gtzan(tmp_path, encoding=enc("utf-16"))
        bad, task, split = tmp_path / "gtzan" / "train_filtered.txt", "gtzan", "train"
    if encoding != "utf-16":  # bytes that are no encoding of text (not UTF-8)
        bad.write_bytes(bad.read_bytes().replace(b"\n", b"\xff\xfe\xfa\n", 1))
    with pytest.raises(DataError) as exc:
        _task(task).items(split, tmp_path)
    assert str(bad) in str(exc.value)
    assert ("UTF-16" in str(exc.value)) if encoding == "utf-16" else ("not UTF-8" in str(exc.value))


def test_a_utf16_key_file_skips_its_track_only(tmp_path):
    make_giantsteps(tmp_path, encoding="utf-16", which="key")
    sp = _task("giantsteps_key").items("test", tmp_path)
    assert [it.track_id for it in sp] == ["1"]
    assert len(sp.problems) == 1 and "UTF-16" in sp.problems[0].message and sp.problems[0].file.endswith("0.LOFI.key")


def test_nsynth_accepts_a_utf8_bom_like_the_other_loaders(tmp_path):
    make_nsynth(tmp_path, encoding="utf-8-sig")
    assert (tmp_path / "nsynth" / "nsynth-test" / "examples.json").read_bytes().startswith(b"\xef\xbb\xbf")
    sp = _task("nsynth_pitch").items("test", tmp_path)
    assert len(sp) == 3 and not sp.problems


def test_an_unterminated_quote_in_the_mtat_csv_spoils_one_row_not_the_next_ones(tmp_path):
    make_mtat(tmp_path, [
        '"1"\t"1"\t"0"\t"0/a.mp3"',
        '"2"\t"1\t"0"\t"0/b.mp3"',  # line 3: the quote before 1 is never closed
        '"3"\t"0"\t"1"\t"0/c.mp3"',
        '"4"\t"1"\t"1"\t"0/d.mp3"',
    ])
    sp = _task("mtat").items("train", tmp_path)
    assert [it.track_id for it in sp] == ["1", "3", "4"]
    assert [(p.line, "quot" in p.message) for p in sp.problems] == [(3, True)]


def test_mtat_csv_problems_are_reported_once_not_once_per_split(tmp_path):
    make_mtat(tmp_path, [
        '"1"\t"1"\t"0"\t"0/a.mp3"', '"2"\t"1"\t"0"\t"c/b.mp3"', '"3"\t"1"\t"0"\t"d/c.mp3"',
        '"4"\t"2"\t"0"\t"c/bad-value.mp3"',  # a valid-split row
        '"5"\t"1"\t"0"',  # too few fields: no folder to tell the split by
        '"6"\t"1\t"0"\t"e/x.mp3"',  # broken quoting
    ])
    task = _task("mtat")
    problems = {s: [p.line for p in task.items(s, tmp_path).problems] for s in ("train", "valid", "test")}
    assert problems == {"train": [6, 7], "valid": [5], "test": []}


# == 5. symbolic links in a data root =======================================================================


def _secret(tmp_path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    secret = outside / "secret.txt"
    secret.write_text(SECRET + "\n")
    return secret


def test_mtat_links_inside_are_followed_links_leaving_are_reported_and_skipped(tmp_path):
    root = tmp_path / "root"
    base = make_mtat(root, ['"1"\t"1"\t"0"\t"0/a.mp3"', '"2"\t"1"\t"0"\t"0/b.mp3"', '"3"\t"1"\t"0"\t"0/c.mp3"'])
    secret = _secret(tmp_path)
    (base / "0" / "b.mp3").unlink()
    (base / "0" / "b.mp3").symlink_to(base / "0" / "a.mp3")  # inside: followed
    (base / "0" / "c.mp3").unlink()
    (base / "0" / "c.mp3").symlink_to(secret)  # leaves the dataset folder: skipped
    sp = _task("mtat").items("train", root)
    assert [it.track_id for it in sp] == ["1", "2"]
    [p] = sp.problems
    assert p.kind == "outside_root" and "0/c.mp3" in p.message and str(secret) in p.message


def test_a_linked_annotation_file_outside_the_root_is_not_read_nor_echoed(tmp_path):
    root = tmp_path / "root"
    base = make_mtat(root, ['"1"\t"1"\t"0"\t"0/a.mp3"'])
    (base / "annotations_final.csv").unlink()
    (base / "annotations_final.csv").symlink_to(_secret(tmp_path))
    with pytest.raises(DataError) as exc:
        _task("mtat").items("train", root)
    assert "symbolic link" in str(exc.value) and SECRET not in str(exc.value)
    assert main(["data", "check", "--task", "mtat", "--data-root", str(root)]) != 0


def test_a_dataset_folder_that_is_itself_a_link_works(tmp_path):
    """Linking the whole dataset folder to another disk is the supported way to keep data elsewhere."""
    elsewhere = tmp_path / "big-disk"
    make_mtat(elsewhere, ['"1"\t"1"\t"0"\t"0/a.mp3"'])
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "magnatagatune").symlink_to(elsewhere / "magnatagatune")
    sp = _task("mtat").items("train", tmp_path / "root")
    assert [it.track_id for it in sp] == ["1"] and not sp.problems


def test_nsynth_giantsteps_gtzan_skip_links_that_leave_their_dataset_folder(tmp_path):
    secret = _secret(tmp_path)
    root = tmp_path / "root"
    make_nsynth(root)
    wav = next((root / "nsynth" / "nsynth-test" / "audio").iterdir())
    wav.unlink()
    wav.symlink_to(secret)
    sp = _task("nsynth_pitch").items("test", root)
    assert len(sp) == 2 and [p.kind for p in sp.problems] == ["outside_root"]

    make_giantsteps(root)
    key = root / "giantsteps-key-dataset" / "annotations" / "key" / "0.LOFI.key"
    key.unlink()
    key.symlink_to(secret)
    sp = _task("giantsteps_key").items("test", root)
    assert [it.track_id for it in sp] == ["1"]
    assert [p.kind for p in sp.problems] == ["outside_root"] and SECRET not in str(sp.problems[0])

    make_gtzan(root)
    clip = root / "gtzan" / "genres" / "jazz" / "jazz.00001.wav"
    clip.unlink()
    clip.symlink_to(secret)
    sp = _task("gtzan").items("test", root)
    assert [it.track_id for it in sp] == ["blues.00000"] and [p.kind for p in sp.problems] == ["outside_root"]


# == 6. audio: long files, corrupt files, `bench data check --decode` =========================================


def _tone(path: Path, seconds: float, sr: int, fmt: str | None = None) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.05 * np.sin(0.3 * t)))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, format=fmt) if fmt else sf.write(str(path), x, sr, subtype="PCM_16")
    return path


class _FramesRead:
    """Counts the frames soundfile reads (wraps SoundFile.read)."""

    def __init__(self, monkeypatch):
        import soundfile as sf

        self.frames = 0
        real = sf.SoundFile.read

        def read(f, frames=-1, *a, **k):
            out = real(f, frames, *a, **k)
            self.frames += len(out)
            return out

        monkeypatch.setattr(sf.SoundFile, "read", read)


def test_a_long_file_is_read_only_where_its_windows_are(tmp_path, monkeypatch):
    """A 10-minute file at 8 kHz embedded by logmel (3 s windows at 16 kHz, at most 64): 200 windows exist."""
    import tracemalloc

    import torch

    from bench import plugins
    from bench.audio import load, windows
    from bench.extract import extract

    long = _tone(tmp_path / "long.wav", 600, 8000)
    enc = plugins.get_encoder("logmel").eval()
    tracemalloc.start()
    whole = windows(load(long, enc.sample_rate), enc.window, 64)  # what was done before
    whole_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    counter = _FramesRead(monkeypatch)
    emb = extract(enc, [Item("long", str(long), 0)], max_windows=64, progress=False)
    windowed_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert emb.windows == 64 and not emb.skipped
    assert counter.frames < 0.4 * 600 * 8000  # 64 windows of 1.5 s at 8 kHz (+ resampler context) of 4.8M
    assert windowed_peak < 0.5 * whole_peak
    with torch.no_grad():
        expected = enc.embed(torch.from_numpy(whole)).double().mean(0).float().numpy()
    np.testing.assert_allclose(emb.X[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sr", [16000, 44100])
def test_a_normal_file_gives_exactly_the_windows_it_gave_before(tmp_path, sr):
    from bench.audio import load, load_windows, windows

    clip = _tone(tmp_path / "clip.wav", 29.1, sr)  # MTAT-length: 9 windows of 3 s, under the cap
    np.testing.assert_array_equal(load_windows(clip, 16000, 48000, 64), windows(load(clip, 16000), 48000, 64))


@pytest.mark.parametrize("sr", [16000, 22050])
def test_windows_of_a_long_file_match_the_whole_decode(tmp_path, sr):
    from bench.audio import load, load_windows, windows

    long = _tone(tmp_path / "long.flac", 120, sr, fmt="FLAC")
    got, ref = load_windows(long, 16000, 16000, 16), windows(load(long, 16000), 16000, 16)
    if sr == 16000:
        np.testing.assert_array_equal(got, ref)
    else:  # resampled per window with context: float rounding only
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_data_check_decode_decodes_whole_files_and_says_so(tmp_path, capsys):
    root = tmp_path / "root"
    base = make_mtat(root, ['"1"\t"1"\t"0"\t"0/a.mp3"', '"2"\t"1"\t"0"\t"0/b.mp3"', '"3"\t"0"\t"1"\t"d/c.mp3"'])
    for rel in ("0/a.mp3", "0/b.mp3", "d/c.mp3"):
        _tone(base / rel, 4.0, 16000, fmt="MP3")
    damaged = bytearray((base / "0/b.mp3").read_bytes())  # the first second is fine, the middle is not
    mid = len(damaged) // 2
    damaged[mid : mid + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    (base / "0/b.mp3").write_bytes(bytes(damaged))
    main(["data", "check", "--task", "mtat", "--data-root", str(root), "--decode"])
    out = capsys.readouterr().out
    assert "not decoded" not in out and "decoded end to end" in out
    train = next(line for line in out.splitlines() if line.strip().startswith("train"))
    assert "1 usable (4.0 s of audio)" in train and "1 corrupt" in train
    assert "0/b.mp3" in out
    main(["data", "check", "--task", "mtat", "--data-root", str(root)])
    assert "not decoded" in capsys.readouterr().out


# == 7. what held when the issue was filed ====================================================================


def test_held_corrupt_audio_is_skipped_and_counted_and_stays_counted_on_a_cache_hit(nsynth_copy, tmp_path):
    from bench import plugins
    from bench.weights import weights_hash

    task, enc = plugins.get_task("nsynth_pitch"), plugins.get_encoder("logmel")
    items = task.items("test", nsynth_copy).items
    (Path(items[1].path)).write_bytes(b"RIFF\x00\x00garbage" * 50)
    store = C.EmbeddingCache.open(tmp_path / "emb")
    for status in ("miss", "hit"):
        emb, info = shard.embed_split(store, "logmel", enc, weights_hash(enc), task, "test", items, nsynth_copy,
                                      progress=False)
        assert info["status"] == status
        assert [s["track_id"] for s in emb.skipped] == [items[1].track_id] and "decode" in emb.skipped[0]["reason"]
        assert len(emb.items) == len(items) - 1


def test_held_annotation_paths_cannot_leave_the_data_root(tmp_path):
    secret = _secret(tmp_path)
    root = tmp_path / "root"
    make_mtat(root, ['"1"\t"1"\t"0"\t"0/../../../outside/secret.txt"', '"2"\t"1"\t"0"\t"0/a.mp3"'])
    make_nsynth(root)
    ex_path = root / "nsynth" / "nsynth-test" / "examples.json"
    ex = json.loads(ex_path.read_text())
    evil = "../../../../outside/secret"
    ex[evil] = {**_nsynth_entry("bass_acoustic_x-060-100", 60), "note_str": evil, "note": 999}
    ex_path.write_text(json.dumps(ex))
    make_giantsteps(root)
    ann = root / "giantsteps-mtg-key-dataset" / "annotations" / "annotations.txt"
    ann.write_text(ann.read_text() + "../../../outside/secret\tA minor\t2\n")
    make_gtzan(root)
    lst = root / "gtzan" / "train_filtered.txt"
    lst.write_text(lst.read_text() + "blues/../../../../outside/secret.txt\n")
    top = os.path.realpath(root)
    for name in ("mtat", "nsynth_pitch", "giantsteps_key", "gtzan"):
        for split in ("train", "valid", "test"):
            for item in _task(name).items(split, root):
                assert os.path.realpath(item.path).startswith(top + os.sep), (name, item.path)
    assert secret.read_text().startswith(SECRET)


def test_held_a_pickle_checkpoint_is_refused_and_its_payload_never_runs(tmp_path, capsys):
    import pickle

    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"state_dict": Payload()}))
    import torch

    torch.save({"state_dict": Payload()}, tmp_path / "evil-zip.pt")
    for path in (evil, tmp_path / "evil-zip.pt"):
        rc = main(["run", "--encoder", "random", "--tasks", "nsynth_pitch", "--demo-size", "tiny", "--seeds", "0",
                   "--probe-grid", "fast", "--no-progress", "--checkpoint", str(path), "--out", str(tmp_path / "o")])
        assert rc != 0 and not marker.exists()
        assert str(path) in capsys.readouterr().err


def test_held_a_killed_extraction_resumes_bit_identically(nsynth_copy, tmp_path):
    from bench import plugins
    from bench.extract import extract

    task, enc = plugins.get_task("nsynth_pitch"), plugins.get_encoder("logmel").eval()
    items = task.items("train", nsynth_copy).items[:12]
    calls = {"n": 0}

    def run(sub, label, kill_at=None):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise KeyboardInterrupt("killed")
        return extract(enc, sub, progress=False)

    clean, _ = C.EmbeddingCache.open(tmp_path / "clean").get_or_extract(_key(), items, run, dim=enc.dim,
                                                                         chunk_tracks=4)
    store = C.EmbeddingCache.open(tmp_path / "emb")
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        store.get_or_extract(_key(), items, lambda s, lab: run(s, lab, kill_at=3), dim=enc.dim, chunk_tracks=4)
    assert not store.entry_dir(_key()).exists()
    calls["n"] = 0
    resumed, status = store.get_or_extract(_key(), items, run, dim=enc.dim, chunk_tracks=4)
    assert status == "resumed" and calls["n"] == 1  # only the chunk that was killed is extracted again
    np.testing.assert_array_equal(resumed.X, clean.X)


# == 8. run and CLI ===========================================================================================
# (per-pair error boundary, plugin names, option validation, --seeds/--device/--out checks: added with the
# trainable-half rewrite of bench/cli.py and bench/run.py)
