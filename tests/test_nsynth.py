import json

import numpy as np
import pytest

from bench.audio import load
from bench.errors import DataError
from bench_tasks.nsynth import REQUIRED, NSynthPitch


def test_demo_is_in_the_real_layout_with_every_field(nsynth_tiny):
    for split in ("nsynth-train", "nsynth-valid", "nsynth-test"):
        folder = nsynth_tiny / "nsynth" / split
        examples = json.loads((folder / "examples.json").read_text())
        assert examples
        for key, ex in examples.items():
            assert set(REQUIRED) <= set(ex)
            assert ex["note_str"] == key == f"{ex['instrument_str']}-{ex['pitch']:03d}-{ex['velocity']:03d}"
            assert (folder / "audio" / f"{key}.wav").is_file()
            assert len(ex["qualities"]) == 10 and ex["sample_rate"] == 16000


def test_loader_reads_demo_labels_are_pitch_minus_min(nsynth_tiny):
    task = NSynthPitch()
    sp = task.items("train", nsynth_tiny)
    assert len(sp) > 0 and not sp.problems
    examples = json.loads((nsynth_tiny / "nsynth" / "nsynth-train" / "examples.json").read_text())
    for item in sp:
        assert item.label == examples[item.track_id]["pitch"] - 21
    assert len(task.classes(nsynth_tiny)) == 88


def test_demo_audio_has_the_labelled_pitch(nsynth_tiny):
    task = NSynthPitch()
    item = next(it for it in task.items("test", nsynth_tiny) if 50 <= it.label + 21 <= 80)
    x = load(item.path, 16000)
    assert len(x) == 64000
    spec = np.abs(np.fft.rfft(x[:32000] * np.hanning(32000)))
    freqs = np.fft.rfftfreq(32000, 1 / 16000)
    f0 = 440 * 2 ** ((item.label + 21 - 69) / 12)
    # energy at the harmonics of f0 dominates energy between them
    harm = sum(spec[np.abs(freqs - k * f0) < 3].max() for k in range(1, 4))
    off = sum(spec[np.abs(freqs - (k + 0.5) * f0) < 3].max() for k in range(1, 4))
    assert harm > 5 * off


def test_pitch_range_setting_filters_and_shifts_labels(nsynth_tiny):
    task = NSynthPitch(pitch_min=60, pitch_max=71)
    items = task.items("train", nsynth_tiny).items
    assert all(0 <= it.label < 12 for it in items)
    assert len(task.classes(nsynth_tiny)) == 12
    with pytest.raises(TypeError, match="unknown setting"):
        NSynthPitch(pitch_low=3)


def test_malformed_entries_and_missing_audio_are_reported_and_rest_loads(nsynth_tiny, tmp_path):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(nsynth_tiny / "nsynth", root / "nsynth")
    index = root / "nsynth" / "nsynth-valid" / "examples.json"
    examples = json.loads(index.read_text())
    keys = list(examples)
    del examples[keys[0]]["pitch"]
    examples[keys[1]]["velocity"] = "loud"
    (root / "nsynth" / "nsynth-valid" / "audio" / f"{keys[2]}.wav").unlink()
    index.write_text(json.dumps(examples, indent=4))
    sp = NSynthPitch().items("valid", root)
    assert len(sp) == len(keys) - 3
    msgs = [str(p) for p in sp.problems]
    assert any("missing field 'pitch'" in m and str(index) in m for m in msgs)
    assert any("'velocity'" in m for m in msgs)
    assert any(keys[2] in m and "missing" in m for m in msgs)
    # problems carry a line number in examples.json
    assert all(p.line for p in sp.problems if p.kind == "malformed")


def test_missing_or_wrong_data_root_says_what_to_do(tmp_path):
    task = NSynthPitch()
    with pytest.raises(DataError, match="does not exist"):
        task.items("train", tmp_path / "nowhere")
    with pytest.raises(DataError, match="nsynth.*bench data check"):
        task.items("train", tmp_path)
    (tmp_path / "nsynth" / "nsynth-train").mkdir(parents=True)
    (tmp_path / "nsynth" / "nsynth-train" / "examples.json").write_text("{not json")
    with pytest.raises(DataError, match="examples.json:1"):
        task.items("train", tmp_path)


def test_score_pitch_class_counts_octave_errors():
    task = NSynthPitch()
    y = np.array([0, 12, 5])
    scores = np.zeros((3, 88))
    scores[0, 0] = scores[1, 0] = scores[2, 6] = 1  # right, octave error, wrong
    s = task.score(y, scores)
    assert s["accuracy"] == pytest.approx(1 / 3)
    assert s["pitch_class_accuracy"] == pytest.approx(2 / 3)


def test_demo_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    NSynthPitch().make_demo(a, size="tiny", seed=3)
    NSynthPitch().make_demo(b, size="tiny", seed=3)
    ja = (a / "nsynth" / "nsynth-test" / "examples.json").read_bytes()
    assert ja == (b / "nsynth" / "nsynth-test" / "examples.json").read_bytes()
    key = next(iter(json.loads(ja)))
    wav = f"nsynth/nsynth-test/audio/{key}.wav"
    assert (a / wav).read_bytes() == (b / wav).read_bytes()
