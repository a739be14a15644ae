"""GiantSteps key task: key parsing, MTG filters, artist-disjoint split, problems, MIREX score, demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import audio
from bench.errors import DataError
from bench_tasks import giantsteps_demo
from bench_tasks.giantsteps import (
    KEY_NAMES,
    GiantStepsKey,
    artist_groups,
    artists_of,
    key_weighted_score,
    parse_key,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gs_demo")
    GiantStepsKey().make_demo(root, size="tiny", seed=5)
    return root


def test_key_names_and_parsing():
    assert len(KEY_NAMES) == 24 and KEY_NAMES[0] == "C major" and KEY_NAMES[1] == "Db major"
    assert KEY_NAMES[-1] == "B minor" and KEY_NAMES[12] == "C minor"
    assert parse_key("D# minor") == KEY_NAMES.index("Eb minor")
    assert parse_key("F# major") == KEY_NAMES.index("Gb major")
    assert parse_key("Bb major") == KEY_NAMES.index("Bb major")
    assert parse_key("  a minor ") == KEY_NAMES.index("A minor")
    assert parse_key("Cb major") == KEY_NAMES.index("B major")
    assert parse_key("E# minor") == KEY_NAMES.index("F minor")
    assert parse_key("G min") == KEY_NAMES.index("G minor")
    for bad in ("H minor", "C dorian", "", "C", "C# minor extra"):
        with pytest.raises(ValueError):
            parse_key(bad)


def test_artist_groups_link_multi_artist_credits():
    assert artists_of("Foo, Bar & Baz feat. Qux") == ["foo", "bar", "baz", "qux"]
    assert artists_of("  Björk ") == ["bjork"]
    groups = artist_groups({"1": ["a", "b"], "2": ["b"], "3": ["c"], "4": ["d", "a"]})
    assert groups["1"] == groups["2"] == groups["4"] == "a" and groups["3"] == "c"


def write_mtg(root: Path, ann_rows: list[str], meta_rows: list[str], audio_ids: list[str]) -> Path:
    base = root / "giantsteps-mtg-key-dataset"
    (base / "annotations").mkdir(parents=True)
    (base / "audio").mkdir()
    ann = base / "annotations" / "annotations.txt"
    ann.write_text("\n".join(["ID\tMANUAL KEY\tC", *ann_rows]) + "\n")
    (base / "annotations" / "beatport_metadata.txt").write_text(
        "\n".join(["ID\tARTIST\tSONG TITLE\tMIX\tLABEL\tBP GENRE\tBP BPM\tBP KEY", *meta_rows]) + "\n")
    for i in audio_ids:
        (base / "audio" / f"{i}.LOFI.mp3").write_bytes(b"x")
    return ann


def test_mtg_filters_and_problems(tmp_path):
    rows = [
        "100\tD# minor\t2",  # 2: kept, Eb minor
        "101\tC major\t1",  # 3: low confidence: dropped silently
        "102\tA minor\t0",  # 4: dropped
        "103\tA minor / C major\t2",  # 5: ambiguous: dropped
        "104\tH minor\t2",  # 6: unknown key: problem
        "105",  # 7: malformed
        "100\tC major\t2",  # 8: duplicate
        "106\tG major\t2",  # 9: no audio
        "107\tF major\tx",  # 10: bad confidence
        "108\tbb major\t2",  # 11: kept, Bb major
    ]
    meta = [f"{i}\tArtist {i}\tT\tOriginal Mix\tL\tTechno\t128\tX" for i in range(100, 109)]
    ann = write_mtg(tmp_path, rows, meta, ["100", "101", "102", "103", "104", "105", "108"])
    task = GiantStepsKey(valid_fraction=0.5)
    train, valid = task.items("train", tmp_path), task.items("valid", tmp_path)
    got = {it.track_id: KEY_NAMES[it.label] for it in [*train, *valid]}
    assert got == {"100": "Eb minor", "108": "Bb major"}
    probs = {p.line: p for p in train.problems}
    assert set(probs) == {6, 7, 8, 9, 10}
    assert all(p.file == str(ann) for p in train.problems)
    assert probs[6].kind == "unknown_label" and "H minor" in probs[6].message
    assert probs[8].kind == "duplicate" and probs[9].kind == "missing_audio"
    # valid reports the same file problems; the missing audio is reported on 106's side only
    assert {6, 7, 8, 10} <= {p.line for p in valid.problems}
    assert sum(p.line == 9 for p in [*train.problems, *valid.problems]) == 1


def test_artist_disjoint_split(tmp_path):
    rows, meta, ids = [], [], []
    for i in range(300):
        tid = str(1000 + i)
        artist = f"Artist {i % 90}" + (f", Artist {(i * 7) % 90}" if i % 25 == 0 else "")
        rows.append(f"{tid}\t{KEY_NAMES[i % 24]}\t2")
        meta.append(f"{tid}\t{artist}\tT\tM\tL\tG\t120\tK")
        ids.append(tid)
    write_mtg(tmp_path, rows, meta, ids)
    task = GiantStepsKey()
    train, valid = task.items("train", tmp_path), task.items("valid", tmp_path)
    assert len(train) + len(valid) == 300 and not train.problems
    assert 0.08 < len(valid) / 300 < 0.35
    credit = dict(m.split("\t")[:2] for m in meta)
    a_train = {a for it in train for a in artists_of(credit[it.track_id])}
    a_valid = {a for it in valid for a in artists_of(credit[it.track_id])}
    assert a_train and a_valid and not (a_train & a_valid)
    # deterministic and stable: the same split again
    assert [it.track_id for it in task.items("valid", tmp_path)] == [it.track_id for it in valid]


def test_test_split_key_files(tmp_path):
    base = tmp_path / "giantsteps-key-dataset"
    (base / "annotations" / "key").mkdir(parents=True)
    (base / "audio").mkdir()
    keys = {"1": "C minor", "2": "Eb major\n", "3": "X minor", "4": "", "5": "A minor"}
    for tid, text in keys.items():
        (base / "annotations" / "key" / f"{tid}.LOFI.key").write_text(text)
    for tid in ("1", "2", "3", "4"):
        (base / "audio" / f"{tid}.LOFI.mp3").write_bytes(b"x")
    test = GiantStepsKey().items("test", tmp_path)
    assert {it.track_id: KEY_NAMES[it.label] for it in test} == {"1": "C minor", "2": "Eb major"}
    probs = {Path(p.file).name: p for p in test.problems}
    assert probs["3.LOFI.key"].line == 1 and probs["3.LOFI.key"].kind == "unknown_label"
    assert "empty" in probs["4.LOFI.key"].message
    assert probs["5.LOFI.key"].kind == "missing_audio"


def test_not_the_dataset_raises_data_error(tmp_path):
    task = GiantStepsKey()
    with pytest.raises(DataError, match="bench data check"):
        task.items("test", tmp_path / "nowhere")
    with pytest.raises(DataError, match="giantsteps-key-dataset not found"):
        task.items("test", tmp_path)
    (tmp_path / "giantsteps-mtg-key-dataset").mkdir()
    with pytest.raises(DataError, match="annotations.txt not found.*bench data check"):
        task.items("train", tmp_path)


def test_weighted_score_relations_and_fifths_setting():
    s = key_weighted_score
    assert s("C major", "C major") == 1.0
    assert s("C major", "G major") == 0.5  # fifth above
    assert s("C major", "F major", "both") == 0.5  # fifth below: MIREX since 2017
    assert s("C major", "F major", "ascending") == 0.0  # mir_eval default rule
    assert s("A minor", "E minor", "ascending") == 0.5 and s("A minor", "D minor", "both") == 0.5
    assert s("C major", "A minor") == 0.3 and s("A minor", "C major") == 0.3  # relative
    assert s("C major", "C minor") == 0.2 and s("C minor", "C major") == 0.2  # parallel
    assert s("C major", "F minor", "both") == 0.0  # a fifth below in the other mode is not a fifth
    assert s("C major", "Db major") == 0.0
    y = np.array([0, 0, 0, 0, 0])  # C major
    est = [KEY_NAMES.index(k) for k in ("C major", "G major", "F major", "A minor", "D major")]
    scores = np.eye(24)[est]
    both = GiantStepsKey().score(y, scores)
    asc = GiantStepsKey(fifths="ascending").score(y, scores)
    assert both == {"weighted_score": pytest.approx((1 + 0.5 + 0.5 + 0.3) / 5), "accuracy": 0.2}
    assert asc["weighted_score"] == pytest.approx((1 + 0.5 + 0.3) / 5)


def test_settings_are_validated_and_explained():
    with pytest.raises(TypeError):
        GiantStepsKey(fifths="down")
    with pytest.raises(TypeError):
        GiantStepsKey(valid_fraction=2)
    assert "above or below" in GiantStepsKey().describe_settings()
    assert "mir_eval default" in GiantStepsKey(fifths="ascending").describe_settings()
    t = GiantStepsKey()
    assert (t.primary_metric, t.metrics, t.probe, t.kind) == ("weighted_score", ("weighted_score", "accuracy"),
                                                              "linear", "multiclass")
    assert "mean of window embeddings" in t.description and t.max_windows == 64


def test_demo_layout_quirks_and_labels(demo):
    mtg = demo / "giantsteps-mtg-key-dataset" / "annotations"
    ann = (mtg / "annotations.txt").read_text().splitlines()
    assert ann[0] == "ID\tMANUAL KEY\tC"
    body = [r.split("\t") for r in ann[1:]]
    assert any("#" in k for _, k, _ in body) and any("/" in k for _, k, _ in body)
    assert {c for *_, c in body} == {"0", "1", "2"}
    assert (mtg / "beatport_metadata.txt").read_text().startswith("ID\tARTIST\tSONG TITLE")
    key_dir = demo / "giantsteps-key-dataset" / "annotations" / "key"
    texts = {p.name: p.read_bytes() for p in key_dir.iterdir()}
    assert any(not t.endswith(b"\n") for t in texts.values()) and all(b"#" not in t for t in texts.values())
    task = GiantStepsKey()
    test = task.items("test", demo)
    assert len(test) == giantsteps_demo.SIZES["tiny"]["test"] and not test.problems
    for it in test:
        assert KEY_NAMES[it.label] == texts[f"{it.track_id}.LOFI.key"].decode().strip()
    keep = {i: parse_key(k) for i, k, c in body if c == "2" and "/" not in k}
    train, valid = task.items("train", demo), task.items("valid", demo)
    assert len(train) + len(valid) == len(keep) and len(valid) > 0 and len(train) > len(valid)
    assert all(keep[it.track_id] == it.label for it in [*train, *valid])
    assert len({it.label for it in test}) == 24
    bad = []
    for it in [*train, *valid]:
        try:
            audio.load(it.path, 16000, end=0.5)
        except audio.AudioError:
            bad.append(it.track_id)
    assert len(bad) == 1  # the demo's corrupt track


def test_demo_is_deterministic(demo, tmp_path):
    p = giantsteps_demo.plan("tiny", 5)
    ann = demo / "giantsteps-mtg-key-dataset" / "annotations" / "annotations.txt"
    assert ("\n".join(p["ann"]) + "\n").encode() == ann.read_bytes()
    job = next(j for j in p["jobs"] if j[1] != p["corrupt"])
    giantsteps_demo._render((str(tmp_path), job, p["corrupt"]))
    rel = Path("giantsteps-mtg-key-dataset" if job[0] == "mtg" else "giantsteps-key-dataset") / "audio"
    name = f"{job[1]}.LOFI.mp3"
    assert (tmp_path / rel / name).read_bytes() == (demo / rel / name).read_bytes()
    assert giantsteps_demo.plan("tiny", 6)["ann"] != p["ann"]
