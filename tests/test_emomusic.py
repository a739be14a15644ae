"""emomusic: the regression kind (targets, probe, R²) and the loader of EmoMusic's CSVs."""

import hashlib

import numpy as np
import pytest

from bench import metrics
from bench.errors import DataError
from bench_tasks.emomusic import EmoMusic
from bench_tasks.emomusic_format import artist_split


def test_r2_equals_scikit_learn_on_random_data():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(0)
    for n, d in ((50, 2), (7, 3), (200, 1)):
        y = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + rng.normal(size=d)
        p = y + rng.normal(size=(n, d)) * rng.uniform(0.1, 2, size=d)
        assert np.allclose(metrics.r2_per_target(y, p), r2_score(y, p, multioutput="raw_values"))
        assert metrics.r2(y, p) == pytest.approx(r2_score(y, p, multioutput="uniform_average"))
        bad = rng.normal(size=(n, d)) * 5  # worse than the mean: negative R²
        assert metrics.r2(y, bad) == pytest.approx(r2_score(y, bad))
    y = np.c_[np.ones(10), np.arange(10.0)]  # a constant target: 1.0 if predicted exactly, else 0.0
    for p in (y, y + 0.5):
        assert np.allclose(metrics.r2_per_target(y, p), r2_score(y, p, multioutput="raw_values"))


def test_task_score_names_each_target():
    y = np.random.default_rng(1).normal(size=(30, 2))
    p = y.copy()
    p[:, 1] = 0.0
    out = EmoMusic().score(y, p)
    assert out["arousal_r2"] == pytest.approx(1.0) and out["valence_r2"] == pytest.approx(1 - (y[:, 1] ** 2).sum()
                                                                                         / ((y[:, 1] - y[:, 1].mean()) ** 2).sum())
    assert out["r2"] == pytest.approx((out["arousal_r2"] + out["valence_r2"]) / 2)


def test_regression_probe_learns_a_linear_target_and_is_chosen_on_validation():
    from bench.probe import ProbeConfig, select_probe, targets

    rng = np.random.default_rng(0)
    W = rng.normal(size=(16, 2))
    X = {s: rng.normal(size=(n, 16)).astype(np.float32) for s, n in (("train", 300), ("valid", 80), ("test", 80))}
    y = {s: targets([tuple(v) for v in x @ W + 0.1 * rng.normal(size=(len(x), 2))], 2, "regression")
         for s, x in X.items()}
    assert y["train"].dtype == np.float32 and y["train"].shape == (300, 2)
    task = EmoMusic()
    sel = select_probe(X["train"], y["train"], X["valid"], y["valid"], X["test"], kind="regression", n_classes=2,
                       config=ProbeConfig(head="linear", max_epochs=300, patience=20),
                       grid=[(1e-2, 1e-6), (1e-4, 1e-6)], score_fn=task.score, metric="r2")
    assert sel.result.test_scores.shape == (80, 2)
    assert task.score(y["test"], sel.result.test_scores)["r2"] > 0.95
    assert sel.lr == 1e-2 and sel.selection_metric == "r2"  # the lr that fits in the epochs wins on validation


INFO = ("song_id,file_name,Artist,Song title,start of the segment (min.sec),end of the segment (min.sec),Genre,"
        "Mediaeval 2013 set\n")


def _fixture(root, songs, extra_info="", extra_static=""):
    d = root / "emomusic"
    (d / "clips_45seconds").mkdir(parents=True)
    info = INFO + "".join(f"{sid},{sid}.mp3,\t{artist}\t,Song {sid},0.48,1.33,\tBlues\t,{mset}\n"
                          for sid, artist, mset, *_ in songs) + extra_info
    static = "song_id,mean_arousal,std_arousal,mean_valence,std_valence\n" + "".join(
        f"{sid}, {a},0.99443,{v},0.66667\n" for sid, _, _, a, v in songs) + extra_static
    (d / "songs_info.csv").write_text(info)
    (d / "static_annotations.csv").write_text(static)
    for sid, *_ in songs:
        (d / "clips_45seconds" / f"{sid}.mp3").write_bytes(b"ID3")
    return d


def _artist(split):
    from bench_tasks.emomusic_demo import letters

    return next(f"Artist {letters(k)}" for k in range(1000) if artist_split(f"Artist {letters(k)}") == split)


def test_real_format_fixture_split_and_standardised_labels(tmp_path):
    a_tr, a_va = _artist("train"), _artist("valid")
    songs = [(2, "The New Mystikal Troubadours", "evaluation", 3.1, 3.0), (3, a_tr, "development", 3.5, 3.3),
             (5, a_tr, "development", 6.0, 7.0), (7, a_va, "development", 5.0, 4.0)]
    d = _fixture(tmp_path, songs, extra_info="9,9.mp3,X,Y,0.1,0.5,Pop,somewhere\n",
                 extra_static="11,3,1,3,1\n12,abc,1,3,1\n")
    task = EmoMusic()
    assert task.classes(tmp_path) == ["arousal", "valence"]
    sp = {s: task.items(s, tmp_path) for s in ("train", "valid", "test")}
    assert [it.track_id for it in sp["train"]] == ["3", "5"]
    assert [it.track_id for it in sp["valid"]] == ["7"] and [it.track_id for it in sp["test"]] == ["2"]
    dev = np.array([[3.5, 3.3], [6.0, 7.0], [5.0, 4.0]])
    mean, std = dev.mean(axis=0), dev.std(axis=0)  # population std over every development song
    assert np.allclose(sp["train"].items[0].label, (dev[0] - mean) / std)
    assert np.allclose(sp["test"].items[0].label, (np.array([3.1, 3.0]) - mean) / std)
    msgs = " | ".join(p.message for s in sp.values() for p in s.problems)
    assert "somewhere" in msgs and "song 11 is not in" in msgs and "'abc'" in msgs
    (d / "clips_45seconds" / "5.mp3").unlink()
    assert [p.kind for p in task.items("train", tmp_path).problems if "5.mp3" in p.message] == ["missing_audio"]


def test_artist_split_is_marbles_rule():
    name = "The New Mystikal Troubadours"
    h = int(hashlib.sha1(b"the new mystikal troubadours").hexdigest(), 16) % 10
    assert artist_split(name) == ("train" if h < 8 else "valid")
    assert artist_split("  AC/DC ") == artist_split("acdc")  # non-letters dropped, spaces collapsed


def test_missing_annotations_say_what_to_do(tmp_path):
    (tmp_path / "emomusic").mkdir()
    with pytest.raises(DataError, match="annotations.tar.gz"):
        EmoMusic().items("train", tmp_path)
    (tmp_path / "emomusic" / "songs_info.csv").write_text("a,b\n1,2\n")
    (tmp_path / "emomusic" / "static_annotations.csv").write_text("song_id,mean_arousal,mean_valence\n")
    with pytest.raises(DataError, match="no column"):
        EmoMusic().items("train", tmp_path)


def test_tiny_demo_labels_follow_the_stated_rule(tmp_path):
    import csv
    import json

    from bench_tasks import emomusic_demo

    EmoMusic().make_demo(tmp_path, size="tiny", seed=0)
    d = tmp_path / "emomusic"
    meta = json.loads((d / "demo_metadata.json").read_text())
    songs = meta["songs"] if "songs" in meta else meta["extra"]["songs"]
    for row in csv.DictReader(open(d / "static_annotations.csv")):
        s = songs[row["song_id"]]
        a, v = emomusic_demo.ratings(s["tempo"], s["loudness_db"], s["mode"] == "major", 0.0)
        assert float(row["mean_arousal"]) == pytest.approx(a, abs=0.01)
        assert abs(float(row["mean_valence"]) - v) <= 0.51
    sp = {s: EmoMusic().items(s, tmp_path) for s in ("train", "valid", "test")}
    assert all(len(x) and not x.problems for x in sp.values())
    assert len(sp["test"]) == emomusic_demo.SIZES["tiny"]["eval"]


def test_export_writes_regression_targets_as_floats():
    from types import SimpleNamespace

    from bench.export import _labels

    items = [SimpleNamespace(label=(0.5, -1.25)), SimpleNamespace(label=(2.0, 0.0))]
    y = _labels("regression", items, 2)
    assert y.dtype == np.float32 and y.tolist() == [[0.5, -1.25], [2.0, 0.0]]


def test_a_regression_task_cannot_be_a_labeled_pretraining_task():
    from bench.pretrain.pools import _multi_hot

    with pytest.raises(DataError, match="regression"):
        _multi_hot((0.3, -0.2), 2, "emomusic")


def test_chance_level_of_a_regression_task_is_the_mean_target():
    """The record's chance block (bench.metrics.chance_scores) for float targets: the test mean, R² 0 (it raised
    IndexError, losing every emomusic record of `bench run`)."""
    import numpy as np

    from bench.metrics import chance_scores
    from bench.run import make_task

    rng = np.random.default_rng(0)
    labels = [list(v) for v in rng.standard_normal((20, 2))]
    out = chance_scores(make_task("emomusic"), labels, 2)
    assert out["n_tracks"] == 20 and "error" not in out
    assert all(abs(v) < 1e-9 for v in out["metrics"].values())
