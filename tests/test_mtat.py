"""MagnaTagATune task: CSV parsing (quoted or not), top-50, split rules, problems, demo data."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import audio
from bench.errors import DataError
from bench_tasks import mtat_demo
from bench_tasks.mtat import MTATTask, parse_annotations


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mtat_demo")
    MTATTask().make_demo(root, size="tiny", seed=3)
    return root


def write_fixture(root: Path, rows: list[str], header: str | None = None) -> Path:
    base = root / "magnatagatune"
    base.mkdir(parents=True, exist_ok=True)
    header = header or '"clip_id"\t"guitar"\t"piano"\t"rare"\t"mp3_path"'
    path = base / "annotations_final.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def touch(root: Path, rel: str) -> None:
    p = root / "magnatagatune" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")


def test_fixture_quoted_and_unquoted_rows_top_k_and_split(tmp_path):
    rows = [
        '"2"\t"1"\t"0"\t"0"\t"0/a-b-01-x-0-29.mp3"',  # line 2, quoted, train
        "6\t1\t1\t0\t5/a-b-02-y-0-29.mp3",  # line 3, unquoted, train
        "10\t0\t1\t0\tc/c-d-01-z-0-29.mp3",  # line 4, valid
        "11\t0\t0\t1\tc/c-d-02-z-0-29.mp3",  # line 5, valid, only the rare tag: dropped
        '"12"\t"1"\t"0"\t"0"\t"f/e-f-01-w-0-29.mp3"',  # line 6, test
        "13\t0\t1\t0\tb/g-h-01-v-0-29.mp3",  # line 7, train
    ]
    write_fixture(tmp_path, rows)
    for r in rows:
        touch(tmp_path, next(csv.reader([r], delimiter="\t"))[-1])
    task = MTATTask(top_k=2)
    # guitar 3, piano 3: a tie, broken by column order
    assert task.classes(tmp_path) == ["guitar", "piano"]
    train, valid, test = (task.items(s, tmp_path) for s in ("train", "valid", "test"))
    assert [(i.track_id, i.label) for i in train] == [("2", (0,)), ("6", (0, 1)), ("13", (1,))]
    assert [(i.track_id, i.label) for i in valid] == [("10", (1,))]  # clip 11 has no top-2 tag
    assert [(i.track_id, i.label) for i in test] == [("12", (0,))]
    assert all(not s.problems for s in (train, valid, test))
    assert train.items[0].path == str(tmp_path / "magnatagatune" / "0/a-b-01-x-0-29.mp3")


def test_top_k_ranks_by_count_then_column_order(tmp_path):
    header = "clip_id\tt0\tt1\tt2\tt3\tmp3_path"
    rows = ["1\t0\t1\t1\t1\t0/a.mp3", "2\t0\t0\t1\t1\t0/b.mp3", "3\t1\t0\t0\t1\t0/c.mp3"]
    path = write_fixture(tmp_path, rows, header)
    idx = parse_annotations(path)
    assert idx.counts == [1, 1, 2, 3]
    assert [idx.tags[i] for i in idx.top(4)] == ["t3", "t2", "t0", "t1"]
    assert MTATTask(top_k=3).classes(tmp_path) == ["t3", "t2", "t0"]


def test_malformed_rows_and_missing_files_are_problems_with_lines(tmp_path):
    rows = [
        "2\t1\t0\t0\t0/ok.mp3",  # 2: fine
        "3\t1\t0\t0",  # 3: too few fields
        "4\t1\t2\t0\t0/bad-value.mp3",  # 4: value 2
        "5\t1\t0\t0\tg/not-a-folder.mp3",  # 5: bad mp3_path
        "2\t0\t1\t0\t1/dup-id.mp3",  # 6: duplicate clip_id
        "7\t1\t0\t0\t0/missing.mp3",  # 7: no audio file
        "",  # blank line ignored
        "8\t\t0\t0\t0/empty-value.mp3",  # 9: empty value
    ]
    path = write_fixture(tmp_path, rows)
    touch(tmp_path, "0/ok.mp3")
    train = MTATTask(top_k=2).items("train", tmp_path)
    assert [i.track_id for i in train] == ["2"]
    where = {(Path(p.file).name, p.line): p for p in train.problems}
    assert set(where) == {(path.name, n) for n in (3, 4, 5, 6, 7, 9)}
    assert where[(path.name, 7)].kind == "missing_audio"
    assert "duplicate clip_id 2" in where[(path.name, 6)].message
    assert "'2'" in where[(path.name, 4)].message
    assert "found 4" in where[(path.name, 3)].message
    # each bad row is reported once: with its mp3_path folder's split, or train when that is unreadable
    valid = MTATTask(top_k=2).items("valid", tmp_path)
    test = MTATTask(top_k=2).items("test", tmp_path)
    assert valid.problems == [] and test.problems == []


def test_not_the_dataset_raises_data_error(tmp_path):
    task = MTATTask()
    with pytest.raises(DataError, match="bench data check"):
        task.items("train", tmp_path / "nowhere")
    (tmp_path / "magnatagatune").mkdir()
    with pytest.raises(DataError, match="annotations_final.csv not found"):
        task.items("train", tmp_path)
    write_fixture(tmp_path, ["1\t0\t0\t0\tx"], header="clip_id\tguitar\tpiano\tpath")
    with pytest.raises(DataError, match="mp3_path.*bench data check"):
        task.classes(tmp_path)


def test_demo_layout_counts_and_labels(demo):
    task = MTATTask()
    base = demo / "magnatagatune"
    text = (base / "annotations_final.csv").read_text()
    lines = text.splitlines()
    header = next(csv.reader([lines[0]], delimiter="\t"))
    assert header[0] == "clip_id" and header[-1] == "mp3_path" and len(header) == 190
    assert any(ln.startswith('"') for ln in lines[1:]) and any(not ln.startswith('"') for ln in lines[1:])
    assert sorted(p.name for p in base.iterdir() if p.is_dir()) == list("0123456789abcdef")
    classes = task.classes(demo)
    assert len(classes) == 50 and len(set(classes)) == 50
    rows = list(csv.DictReader(lines, delimiter="\t"))
    top = set(classes)
    expected = {"train": 0, "valid": 0, "test": 0}
    for r in rows:
        if any(r[t] == "1" for t in top):
            expected[{"c": "valid", "d": "test", "e": "test", "f": "test"}.get(r["mp3_path"][0], "train")] += 1
    by_id = {r["clip_id"]: r for r in rows}
    for split, n in expected.items():
        s = task.items(split, demo)
        assert len(s) == n > 0 and not s.problems
        for it in s:
            row = by_id[it.track_id]
            assert it.label == tuple(sorted(classes.index(t) for t in top if row[t] == "1"))
    assert len(rows) == mtat_demo.SIZES["tiny"]["clips"]
    # some clips carry only tags outside the top 50 and are dropped
    assert sum(expected.values()) < len(rows)


def test_demo_has_corrupt_clips_that_decoding_rejects(demo):
    items = [it for s in ("train", "valid", "test") for it in MTATTask().items(s, demo)]
    bad = []
    for it in items:
        try:
            x = audio.load(it.path, 16000)
        except audio.AudioError:
            bad.append(it)
        else:
            assert abs(len(x) - 3.0 * 16000) < 400
    assert 1 <= len(bad) <= 2  # two corrupt clips, unless one of them was dropped (no top tag)


def test_demo_tags_describe_the_audio(demo):
    """Labels are true by construction: clips tagged loud are louder than clips tagged quiet."""
    task = MTATTask()
    classes = task.classes(demo)
    rms = {"loud": [], "quiet": []}
    for split in ("train", "valid", "test"):
        for it in task.items(split, demo):
            names = {classes[i] for i in it.label}
            for tag in rms:
                if tag in names:
                    try:
                        x = audio.load(it.path, 16000)
                    except audio.AudioError:
                        continue
                    rms[tag].append(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-9))
    assert rms["loud"] and rms["quiet"]
    assert min(rms["loud"]) > max(rms["quiet"]) + 3


def test_demo_tag_vocabulary_has_rare_columns():
    assert len(mtat_demo.ALL_TAGS) == 188
    columns, clips = mtat_demo.plan_clips("small", 0)
    counts = sorted((sum(t in c["tags"] for c in clips) for t in columns), reverse=True)
    assert counts[49] > counts[60]  # the 50th tag stands above the long tail
    assert sum(c == 0 for c in counts) < 60


def test_demo_is_deterministic(demo, tmp_path):
    columns, clips = mtat_demo.plan_clips("tiny", 3)
    text = mtat_demo.csv_text(columns, clips, 3)
    assert text.encode() == (demo / "magnatagatune" / "annotations_final.csv").read_bytes()
    good = [c for c in clips if not c.get("corrupt")][:2]
    for c in good:
        mtat_demo._render_clip((str(tmp_path), c, mtat_demo.SIZES["tiny"]["seconds"]))
        assert (tmp_path / c["path"]).read_bytes() == (demo / "magnatagatune" / c["path"]).read_bytes()
    assert mtat_demo.csv_text(*mtat_demo.plan_clips("tiny", 4), 4) != text


def test_plugin_modules_are_cheap_and_registered():
    code = ("import sys, bench_tasks.mtat, bench_tasks.giantsteps, bench_tasks.gtzan; "
            "print(sorted(m for m in ('numpy', 'torch', 'soundfile') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    import importlib.metadata

    eps = {e.name: e.value for e in importlib.metadata.entry_points(group="bench")}
    assert eps.get("mtat") == "bench_tasks.mtat"
    from bench_tasks import mtat

    got = {}
    mtat.register_tasks(lambda name, target, description="": got.update({name: target}))
    assert got == {"mtat": "bench_tasks.mtat:MTATTask"}
    t = MTATTask()
    assert (t.kind, t.primary_metric, t.metrics, t.probe) == ("multilabel", "roc_auc",
                                                               ("roc_auc", "average_precision"), "mlp")
