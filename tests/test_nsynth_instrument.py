"""nsynth_instrument: the family label of NSynth's examples.json, same data and splits as nsynth_pitch."""

import json

import numpy as np
import pytest
import soundfile as sf

from bench.errors import DataError
from bench_tasks.nsynth_format import FAMILIES
from bench_tasks.nsynth_instrument import NSynthInstrument


def _entry(note_str, note, family, family_str=None, pitch=49):
    inst = note_str.rsplit("-", 2)[0]
    return {"qualities": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0], "pitch": pitch, "note": note,
            "instrument_source_str": "synthetic", "velocity": 25, "instrument_str": inst, "instrument": 656,
            "sample_rate": 16000, "qualities_str": ["dark"], "instrument_source": 2, "note_str": note_str,
            "instrument_family": family, "instrument_family_str": family_str or FAMILIES[family]}


def _write_split(root, split, entries):
    folder = root / "nsynth" / f"nsynth-{split}"
    (folder / "audio").mkdir(parents=True)
    (folder / "examples.json").write_text(json.dumps({e["note_str"]: e for e in entries}, indent=4))
    for e in entries:
        sf.write(folder / "audio" / f"{e['note_str']}.wav", np.zeros(1600), 16000, subtype="PCM_16")


def test_real_format_fixture_labels_are_instrument_family(tmp_path):
    # the first official test entry (docs: shared spec) and a pitch outside 21..108: kept, family is the label
    _write_split(tmp_path, "train", [_entry("bass_synthetic_068-049-025", 0, 0),
                                     _entry("vocal_acoustic_001-120-050", 1, 10, pitch=120)])
    _write_split(tmp_path, "valid", [_entry("flute_acoustic_002-060-100", 2, 2)])
    _write_split(tmp_path, "test", [_entry("organ_electronic_003-060-100", 3, 6),
                                    _entry("organ_electronic_003-061-100", 4, 6, "guitar")])
    task = NSynthInstrument()
    assert task.classes(tmp_path) == FAMILIES and len(FAMILIES) == 11
    train = task.items("train", tmp_path)
    assert [it.label for it in train] == [0, 10] and not train.problems
    test = task.items("test", tmp_path)
    assert [it.label for it in test] == [6]
    assert len(test.problems) == 1 and test.problems[0].kind == "unknown_label"
    assert "disagree" in test.problems[0].message


def test_demo_labels_match_examples_json(nsynth_tiny):
    task = NSynthInstrument()
    for split in ("train", "valid", "test"):
        examples = json.loads((nsynth_tiny / "nsynth" / f"nsynth-{split}" / "examples.json").read_text())
        sp = task.items(split, nsynth_tiny)
        assert len(sp) == len(examples) and not sp.problems
        for it in sp:
            assert it.label == examples[it.track_id]["instrument_family"]
    # instruments are disjoint across splits, as in NSynth
    inst = {s: {it.track_id.rsplit("-", 2)[0] for it in task.items(s, nsynth_tiny)} for s in ("train", "test")}
    assert not inst["train"] & inst["test"]


def test_demo_folder_is_the_pitch_tasks(tmp_path, monkeypatch):
    """Both tasks write nsynth/ with the same generator call, so one demo folder serves both."""
    from bench_tasks import nsynth_demo
    from bench_tasks.nsynth import NSynthPitch

    calls = []
    monkeypatch.setattr(nsynth_demo, "make_demo", lambda root, **kw: calls.append(kw))
    NSynthInstrument().make_demo(tmp_path, size="tiny", seed=3)
    NSynthPitch().make_demo(tmp_path, size="tiny", seed=3)
    a, b = calls
    assert {**a, "pitch_min": 21, "pitch_max": 108} == b


def test_missing_root_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="nsynth_instrument"):
        NSynthInstrument().items("train", tmp_path)


def test_not_in_all_but_in_extended(fresh_plugins):
    reg = fresh_plugins.tasks()
    assert "nsynth_instrument" not in reg.resolve("all")
    assert "nsynth_instrument" in reg.resolve("extended")
    assert set(reg.resolve("all,extended,extended-real")) == set(reg.names())
    assert len(reg.resolve("all")) == 4  # the main job and the CI gate keep the paper's four tasks
