"""The extractor's track means: the float64 mean of each track's window embeddings, cast to float32."""

from __future__ import annotations

import numpy as np
import torch

from bench.audio import load, windows
from bench.encoder import Encoder
from bench.extract import extract
from bench.task import Item
from conftest import write_wav_array


class _Mix(Encoder):
    """Elementwise on each window's samples (exact whatever the batch): rows differ per window and track."""

    name, sample_rate, window, dim = "mix", 4000, 400, 6

    def embed(self, waveforms):
        return waveforms[:, :6] * 3 + waveforms[:, 100:106]


def test_track_means_match_the_float64_mean_of_their_windows_across_batches(tmp_path):
    rng = np.random.default_rng(1)
    items = []
    for i, seconds in enumerate([0.05, 0.3, 1.0, 0.55, 0.12, 2.1, 0.4]):  # 1 to 21 windows each
        path = tmp_path / f"t{i}.wav"
        write_wav_array(path, rng.standard_normal(int(seconds * 4000)) * 0.1)
        items.append(Item(f"t{i}", str(path), 0))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    items.insert(3, Item("bad", str(bad), 0))
    enc = _Mix()
    # batches of 4 windows: most tracks' windows are split over two or more batches
    out = extract(enc, items, batch_size=4, max_windows=16, workers=2, progress=False, keep_windows=True)
    assert [it.track_id for it in out.items] == [f"t{i}" for i in range(7)]
    assert [s["track_id"] for s in out.skipped] == ["bad"]
    rows, want = [], []
    for it in out.items:
        w = windows(load(it.path, enc.sample_rate), enc.window, 16)
        e = enc.embed(torch.from_numpy(w)).numpy()
        rows.append(e)
        total = np.zeros(enc.dim, np.float64)
        for r in e:
            total += r
        want.append((total / len(e)).astype(np.float32))
    assert out.X.dtype == np.float32 and out.X.shape == (7, enc.dim)
    assert np.array_equal(out.X, np.stack(want))
    assert out.window_counts.tolist() == [len(r) for r in rows] and out.windows == sum(len(r) for r in rows)
    assert np.array_equal(out.window_X, np.concatenate(rows))
