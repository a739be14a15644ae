"""`bench embed`: embeddings exported per split (track ids, labels, matrix) load back, in both formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.cli import main
from bench.export import read_split


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_embed_exports_every_split_and_it_loads_back(nsynth_tiny, tmp_path, capsys, fmt):
    from bench_tasks.nsynth import NSynthPitch

    to = tmp_path / "emb"
    code = main(["embed", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(nsynth_tiny), "--to", str(to),
                 "--format", fmt, "--no-progress"])
    assert code == 0
    assert "logmel x nsynth_pitch" in capsys.readouterr().out
    folder = to / "logmel" / "nsynth_pitch"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == fmt and meta["embedding_dim"] == 192 and meta["kind"] == "multiclass"
    # the tiny NSynth fixture is written by the demo builder: demo data however it is reached
    assert meta["demo_data"] is True and meta["data_fingerprint"]
    task = NSynthPitch()
    for split in ("train", "valid", "test"):
        ids, X, y = read_split(folder, split)
        items = {it.track_id: it for it in task.items(split, nsynth_tiny)}
        assert len(ids) == X.shape[0] == len(y) == meta["splits"][split]["tracks"] > 0
        assert X.shape[1] == 192 and X.dtype == np.float32 and np.isfinite(X).all()
        assert [int(v) for v in y] == [items[i].label for i in ids]  # labels follow their track ids
    # a second export comes from the embedding cache and is identical
    again = tmp_path / "again"
    assert main(["embed", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(nsynth_tiny), "--to", str(again),
                 "--format", fmt, "--no-progress"]) == 0
    a, b = read_split(folder, "test"), read_split(again / "logmel" / "nsynth_pitch", "test")
    assert a[0] == b[0] and np.array_equal(a[1], b[1])


def test_multilabel_labels_are_multi_hot_in_npy(tmp_path):
    from types import SimpleNamespace

    from bench.export import write_task
    from bench.task import Item

    items = [Item("a", "a.mp3", (0, 2)), Item("b", "b.mp3", (1,))]
    emb = SimpleNamespace(items=items, X=np.ones((2, 3), np.float32), skipped=[], window_seconds=1.0)
    task = SimpleNamespace(name="tags", kind="multilabel", settings={})
    data = SimpleNamespace(task=task, classes=["x", "y", "z"], root=tmp_path, fingerprint="f", demo=True)
    for fmt in ("npy", "parquet"):
        out = write_task(tmp_path / fmt, fmt, encoder="e", variant="e", weights_hash="w", data=data,
                         embs={"test": emb})
        ids, X, y = read_split(out, "test")
        assert ids == ["a", "b"] and X.shape == (2, 3)
        if fmt == "npy":
            assert y.tolist() == [[1, 0, 1], [0, 1, 0]]
        else:
            assert [list(v) for v in y] == [[0, 2], [1]]


def test_embed_applies_the_protocols_task_settings(nsynth_tiny, tmp_path):
    """`--protocol marble` exports the task as MARBLE sets it (NSynth pitch over all 128 MIDI pitches), and says so."""
    for protocol in ("bench", "marble"):
        assert main(["embed", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(nsynth_tiny), "--to",
                     str(tmp_path / protocol), "--protocol", protocol, "--no-progress"]) == 0
    bench_meta, marble_meta = (json.loads((tmp_path / p / "logmel" / "nsynth_pitch" / "meta.json").read_text())
                               for p in ("bench", "marble"))
    assert (bench_meta["protocol"], marble_meta["protocol"]) == ("bench", "marble")
    assert (marble_meta["task_settings"]["pitch_min"], marble_meta["task_settings"]["pitch_max"]) == (0, 127)
    assert bench_meta["task_settings"] != marble_meta["task_settings"]
    assert len(marble_meta["classes"]) == 128 and len(bench_meta["classes"]) < 128
