"""VocalSet: the FULL/<singer>/<context>/<technique>/ tree, singer-disjoint and MARBLE technique splits."""

import numpy as np
import pytest
import soundfile as sf

from bench import protocols
from bench.errors import DataError
from bench_tasks.vocalset import (SINGERS, TECHNIQUES_10, TEST_SINGERS, VALID_SINGERS, VocalSetSinger,
                                  VocalSetTechnique)

CONTEXTS = ("arpeggios", "scales")


def _fixture(root, techniques=("belt", "vibrato", "messa"), vowels=("a", "e")):
    full = root / "vocalset" / "FULL"
    for singer in SINGERS:
        for ctx in CONTEXTS:
            for tech in techniques:
                for v in vowels:
                    p = full / singer / ctx / tech / f"{singer}_{ctx}_{tech}_{v}.wav"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(p, np.zeros(800), 44100, subtype="PCM_16")
    (full / "f1" / "arpeggios" / "belt" / "notes.txt").write_text("not audio")
    (full / "f1" / "arpeggios" / "belt" / "arpeggios_belt_o.wav").write_bytes(b"RIFF")  # no singer prefix
    (root / "vocalset" / "FULL" / "README").mkdir()
    return full


def test_technique_split_keeps_singers_apart(tmp_path):
    _fixture(tmp_path)
    task = VocalSetTechnique()
    sp = {s: task.items(s, tmp_path) for s in ("train", "valid", "test")}
    singers = {s: {it.track_id.split("/")[0] for it in v} for s, v in sp.items()}
    assert singers["test"] == set(TEST_SINGERS) and singers["valid"] == set(VALID_SINGERS)
    assert len(singers["train"]) == 12 and not singers["train"] & (singers["valid"] | singers["test"])
    labels = {TECHNIQUES_10[it.label] for v in sp.values() for it in v}
    assert labels == {"belt", "vibrato"}  # messa is not one of the 10
    # the file without a singer prefix is labelled by its folders
    assert "f1/arpeggios/belt/arpeggios_belt_o" in {it.track_id for it in sp["train"]}


def test_marble_technique_split_shares_singers_and_is_set_by_the_protocol(tmp_path):
    _fixture(tmp_path)
    settings = protocols.get("marble").task_settings(VocalSetTechnique())
    assert settings == {"split": "marble"}
    task = VocalSetTechnique(**settings)
    sp = {s: task.items(s, tmp_path) for s in ("train", "valid", "test")}
    singers = {s: {it.track_id.split("/")[0] for it in v} for s, v in sp.items()}
    assert singers["test"] == set(TEST_SINGERS)
    assert singers["valid"] & singers["train"]  # not singer-disjoint, as MARBLE's code makes it
    n = sum(len(v) for v in sp.values())
    assert n == len(VocalSetTechnique().items("train", tmp_path)) + sum(
        len(VocalSetTechnique().items(s, tmp_path)) for s in ("valid", "test"))
    assert protocols.get("bench").task_settings(VocalSetTechnique()) == {}


def test_singer_split_keeps_an_exercise_together_and_covers_every_singer(tmp_path):
    _fixture(tmp_path)
    task = VocalSetSinger()
    assert task.classes(tmp_path) == list(SINGERS)
    sp = {s: task.items(s, tmp_path) for s in ("train", "valid", "test")}
    where = {}
    for s, v in sp.items():
        for it in v:
            assert SINGERS[it.label] == it.track_id.split("/")[0]
            where.setdefault(it.track_id.rsplit("_", 1)[0], set()).add(s)
    assert all(len(x) == 1 for x in where.values())  # the vowels of one exercise stay in one split
    assert all(len(v) for v in sp.values())
    total = sum(len(v) for v in sp.values())
    assert 0.1 < len(sp["test"]) / total < 0.3
    assert len({it.label for it in sp["train"]}) >= 15


def test_missing_tree_and_no_demo(tmp_path):
    (tmp_path / "vocalset").mkdir()
    with pytest.raises(DataError, match="VocalSet11.zip"):
        VocalSetSinger().items("train", tmp_path)
    with pytest.raises(NotImplementedError, match="singer"):
        VocalSetTechnique().make_demo(tmp_path)
    with pytest.raises(DataError, match="split="):
        _fixture(tmp_path / "x")
        VocalSetTechnique(split="random").items("train", tmp_path / "x")
