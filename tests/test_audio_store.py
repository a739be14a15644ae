"""The pretraining audio store's int16 form: round trip, damage detected, parallel build equals serial."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bench.pretrain.audio_store import AudioStore
from bench.pretrain.pools import Track
from bench.pretrain.sampling import crop_views
from conftest import write_wav_array


def _pool(tmp_path, n=4):
    rng = np.random.default_rng(1)
    tracks, waves = [], []
    for i in range(n):
        x = rng.uniform(-1.0, 1.0, 3000 + 700 * i).astype(np.float32)
        x[:3] = (1.5, -1.5, 0.99999)  # out of range: clipped; near the top: rounded within range
        write_wav_array(tmp_path / "pool" / f"{i}.wav", x)
        tracks.append(Track(str(tmp_path / "pool" / f"{i}.wav"), str(i), "dir"))
        waves.append(x)
    return tracks, waves


def test_int16_store_round_trips_within_one_step_and_takes_two_bytes_a_sample(tmp_path):
    tracks, waves = _pool(tmp_path)
    s16 = AudioStore(tracks, 4000, tmp_path / "c", dtype="int16", workers=1)
    s32 = AudioStore(tracks, 4000, tmp_path / "c", dtype="float32", workers=1)
    assert s16.folder != s32.folder  # the sample type is part of the key
    n = sum(len(w) for w in waves)
    assert s16.data.dtype == np.int16 and os.path.getsize(s16.folder / "audio.npy") == 128 + 2 * n
    for t, w in zip(tracks, waves):
        assert np.array_equal(np.asarray(s32.get(t)), w)  # float32: the decoder's values, unclipped
        views = crop_views(s16.get(t), 1, len(w), np.zeros(1))  # the whole track, converted per crop
        assert views.dtype == np.float32 and views[0, 0] == 1.0 and views[0, 1] == -1.0  # clipped
        assert np.max(np.abs(views[0] - np.clip(w, -1, 1))) <= 1 / 32768
        assert np.max(np.abs(views[0] - w)) > 0  # int16 really changes the audio (so the key must differ)


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_parallel_build_equals_serial_build(tmp_path, dtype):
    tracks, _ = _pool(tmp_path, n=5)
    (tmp_path / "pool" / "bad.wav").write_bytes(b"not audio at all")
    tracks.append(Track(str(tmp_path / "pool" / "bad.wav"), "bad", "dir"))
    serial = AudioStore(tracks, 4000, tmp_path / "serial", dtype=dtype, workers=1)
    parallel = AudioStore(tracks, 4000, tmp_path / "parallel", dtype=dtype, workers=2)
    assert (serial.folder / "audio.npy").read_bytes() == (parallel.folder / "audio.npy").read_bytes()
    assert (serial.folder / "index.json").read_text() == (parallel.folder / "index.json").read_text()
    assert len(serial.failed) == 1 and not serial.has(tracks[-1])


def test_float32_store_bytes_are_what_np_save_writes(tmp_path):
    """The streamed float32 store is byte for byte the file the earlier (concatenate + np.save) build wrote."""
    tracks, waves = _pool(tmp_path, n=3)
    s = AudioStore(tracks, 4000, tmp_path / "c", workers=1)
    np.save(tmp_path / "ref.npy", np.concatenate([waves[i] for i in np.argsort([t.path for t in tracks])]))
    assert (s.folder / "audio.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_int16_store_is_detected_and_rebuilt(tmp_path, damage, capsys):
    tracks, _ = _pool(tmp_path)
    first = AudioStore(tracks, 4000, tmp_path / "c", dtype="int16", workers=1)
    want = [np.asarray(first.get(t)).copy() for t in tracks]
    path = first.folder / "audio.npy"
    st = path.stat()
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) - 9] ^= 1
    else:
        del data[len(data) // 2 :]
    del first
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    capsys.readouterr()
    again = AudioStore(tracks, 4000, tmp_path / "c", dtype="int16", workers=1)
    err = capsys.readouterr().err
    assert "warning:" in err and ("checksum" in err or "bad" in err), err
    assert all(np.array_equal(np.asarray(again.get(t)), w) for t, w in zip(tracks, want))


def test_unknown_store_dtype_is_a_clear_error(tmp_path):
    from bench.encoder import Recipe
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="store_dtype"):
        Recipe(steps=1, batch_size=2, lr=1e-3, store_dtype="int8")
    with pytest.raises(BenchError, match="store_dtype"):
        AudioStore([], 4000, tmp_path, dtype="float16")
    assert "store_dtype" not in Recipe(steps=1, batch_size=2, lr=1e-3).key_dict()
    assert Recipe(steps=1, batch_size=2, lr=1e-3, store_dtype="int16").key_dict()["store_dtype"] == "int16"


def test_the_paper_preset_stores_int16_and_the_demo_float32():
    from bench import plugins

    assert plugins.get_encoder("semisupcon", preset="paper").recipe().store_dtype == "int16"
    assert plugins.get_encoder("semisupcon", preset="demo").recipe().store_dtype == "float32"
