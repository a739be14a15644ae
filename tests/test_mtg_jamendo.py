"""MTG-Jamendo: the split files' TSV format, the audio folders, the demo's truthful tags."""

import pytest

from bench.errors import DataError
from bench_tasks.mtg_jamendo import Genre, Instrument, MoodTheme, Top50

HEAD = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
ROWS = {  # the first lines of split-0's moodtheme train file and a top-50 row (shared spec), plus made-up ones
    "train": ["track_0000948\tartist_000087\talbum_000149\t48/948.mp3\t212.7\tmood/theme---background",
              "track_0000950\tartist_000087\talbum_000149\t50/950.mp3\t248.0\tmood/theme---background\t"
              "mood/theme---calm",
              "track_0000951\tartist_000087\talbum_000149\t51/951.mp3\t248.0",
              "track_0000948\tartist_000087\talbum_000149\t48/948.mp3\t212.7\tmood/theme---dark"],
    "validation": ["track_0000946\tartist_000088\talbum_000150\t46/946.mp3\t241.7\tmood/theme---calm\t"
                   "mood/theme---dark"],
    "test": ["track_0001009\tartist_000089\talbum_000151\t09/1009.mp3\t100.0\tmood/theme---dark",
             "track_0001010\tartist_000089\talbum_000151\tnowhere.wav\t100.0\tmood/theme---dark"],
}


def _fixture(root, audio="audio-low"):
    d = root / "mtg-jamendo"
    folder = d / "data" / "splits" / "split-0"
    folder.mkdir(parents=True)
    for split, rows in ROWS.items():
        (folder / f"autotagging_moodtheme-{split}.tsv").write_bytes(("\r\n".join([HEAD, *rows]) + "\r\n").encode())
        for r in rows:
            rel = r.split("\t")[3]
            if rel.endswith(".mp3"):
                name = rel.replace(".mp3", ".low.mp3") if audio == "audio-low" else rel
                (d / audio / name).parent.mkdir(parents=True, exist_ok=True)
                (d / audio / name).write_bytes(b"ID3")
    return d


@pytest.mark.parametrize("audio", ["audio-low", "audio"])
def test_real_format_fixture(tmp_path, audio):
    d = _fixture(tmp_path, audio)
    task = MoodTheme()
    assert task.classes(tmp_path) == ["mood/theme---background", "mood/theme---calm", "mood/theme---dark"]
    train = task.items("train", tmp_path)
    assert [(it.track_id, it.label) for it in train] == [("track_0000948", (0,)), ("track_0000950", (0, 1))]
    assert train.items[0].path.endswith(f"{audio}/48/948{'.low' if audio == 'audio-low' else ''}.mp3")
    kinds = sorted(p.kind for p in train.problems)
    assert kinds == ["duplicate", "malformed"]  # the untagged row, the repeated track
    test = task.items("test", tmp_path)
    assert [it.label for it in test] == [(2,)] and "nowhere.wav" in test.problems[0].message
    assert task.items("valid", tmp_path).items[0].label == (1, 2)
    (d / audio / "09" / ("1009.low.mp3" if audio == "audio-low" else "1009.mp3")).unlink()
    assert "missing_audio" in [p.kind for p in task.items("test", tmp_path).problems]


def test_wrong_or_missing_files_say_what_to_do(tmp_path):
    _fixture(tmp_path)
    with pytest.raises(DataError, match="autotagging_genre-train.tsv"):
        Genre().items("train", tmp_path)
    with pytest.raises(DataError, match="splits 0..4"):
        MoodTheme(split=7).items("train", tmp_path)
    with pytest.raises(DataError, match="audio=.*auto"):
        MoodTheme(audio="flac").items("train", tmp_path)
    f = tmp_path / "mtg-jamendo" / "data" / "splits" / "split-0" / "autotagging_moodtheme-train.tsv"
    f.write_text("id,tags\n1,2\n")
    with pytest.raises(DataError, match="not an MTG-Jamendo split file"):
        MoodTheme().items("train", tmp_path)


def test_moodtheme_has_no_demo(tmp_path):
    with pytest.raises(NotImplementedError, match="mood"):
        MoodTheme().make_demo(tmp_path)


def test_tiny_demo_tags_are_the_plans(tmp_path):
    from bench_tasks import mtg_jamendo_demo as demo

    Genre().make_demo(tmp_path, size="tiny", seed=0)
    tracks = {f"track_{t['id']:07d}": t for t in demo.plan("tiny", 0)}
    for task in (Genre(), Instrument(), Top50()):
        classes = task.classes(tmp_path)
        artists = {}
        for split in ("train", "valid", "test"):
            sp = task.items(split, tmp_path)
            assert len(sp) and not sp.problems
            for it in sp:
                t = tracks[it.track_id]
                assert t["split"] == split
                assert [classes[c] for c in it.label] == [g for g in t["tags"] if task.subset == "top50tags"
                                                          or g.startswith(task.subset + "---")]
                artists.setdefault(t["artist"], set()).add(split)
        assert all(len(s) == 1 for s in artists.values())  # artists never cross splits
    assert "genre---metal" in Genre().classes(tmp_path)
    assert "instrument---drums" in Instrument().classes(tmp_path)
