import numpy as np
import pytest
import soundfile as sf

from bench.audio import AudioError, find_audio, load, windows
from conftest import write_wav


@pytest.mark.parametrize("fmt,ext", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3")])
def test_decodes_formats_to_mono_at_target_rate(tmp_path, fmt, ext):
    sr = 22050
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1).astype(np.float32) * 0.5
    path = tmp_path / f"x{ext}"
    sf.write(str(path), stereo, sr, format=fmt)
    x = load(path, 16000)
    assert x.ndim == 1 and x.dtype == np.float32
    assert abs(len(x) - 16000) < 16000 * 0.1  # MP3 adds codec padding
    spec = np.abs(np.fft.rfft(x[:16000] if len(x) >= 16000 else x, n=16000))
    assert abs(int(spec.argmax()) - 440) <= 2  # the tone survives decode + resample


def test_span_is_read(tmp_path):
    path = write_wav(tmp_path / "a.wav", seconds=3.0)
    assert len(load(path, 16000, start=1.0, end=2.0)) == 16000


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"RIFF\x00\x00garbage" * 10, "cannot decode")])
def test_corrupt_and_empty_files_raise_audio_error_naming_file(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as err:
        load(path, 16000)
    assert str(path) in str(err.value) and reason in err.value.reason


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load(tmp_path / "nope.wav", 16000)


def test_windows_non_overlapping_remainder_dropped_and_padding():
    x = np.arange(10, dtype=np.float32)
    w = windows(x, 3)
    assert w.shape == (3, 3) and w[1, 0] == 3 and w[2, 2] == 8
    short = windows(np.ones(2, np.float32), 5)
    assert short.shape == (1, 5) and short[0].tolist() == [1, 1, 0, 0, 0]


def test_windows_cap_spreads_over_track():
    x = np.repeat(np.arange(100, dtype=np.float32), 4)
    w = windows(x, 4, max_windows=5)
    assert w.shape == (5, 4)
    assert w[0, 0] == 0 and w[-1, 0] == 99


def test_find_audio_recursive(tmp_path):
    write_wav(tmp_path / "a" / "b" / "c.wav")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in find_audio(tmp_path)] == ["c.wav"]
