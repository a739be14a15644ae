"""Audio stage: decode, downmix, resample, and cut into windows.

Decoding uses soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3) and
resampling uses soxr; nothing here needs torchaudio or FFmpeg. A file that
cannot be decoded raises :class:`AudioError` naming the file; the extract stage
catches it, skips the track and counts it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".aif", ".aiff")


class AudioError(Exception):
    """A file that could not be decoded (corrupt, empty, or not audio)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def load(path: str | Path, sample_rate: int, start: float | None = None, end: float | None = None) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz, optionally the span [start, end) seconds."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            first = int(round(start * sr)) if start else 0
            frames = int(round((end - (start or 0.0)) * sr)) if end is not None else -1
            if first:
                f.seek(first)
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types for bad data
        detail = str(exc).replace(f"Error opening {str(path)!r}: ", "")
        if "does not exist" in detail:  # libsndfile says this of MP3s it cannot parse
            detail = "not a valid audio stream"
        raise AudioError(path, f"cannot decode: corrupt or unsupported audio ({detail})") from exc
    if data.size == 0:
        raise AudioError(path, "no audio samples decoded")
    mono = data.mean(axis=1)
    if not np.isfinite(mono).all():
        raise AudioError(path, "decoded samples contain NaN or infinity")
    return resample(mono, sr, sample_rate)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample a mono signal with soxr (high quality); a no-op when the rates match."""
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(x.astype(np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)


def windows(x: np.ndarray, length: int, max_windows: int | None = 64) -> np.ndarray:
    """Non-overlapping windows ``[W, length]`` of a mono signal.

    The remainder after the last full window is dropped; a signal shorter than
    one window is zero-padded to one window. At most ``max_windows`` windows are
    kept, taken evenly across the track so long tracks are covered end to end.
    """
    if length <= 0:
        raise ValueError(f"window length must be positive, got {length}")
    n = len(x) // length
    if n == 0:
        out = np.zeros((1, length), dtype=np.float32)
        out[0, : len(x)] = x
        return out
    w = x[: n * length].reshape(n, length)
    if max_windows is not None and n > max_windows:
        idx = np.linspace(0, n - 1, max_windows).round().astype(int)
        w = w[idx]
    return np.ascontiguousarray(w, dtype=np.float32)


def find_audio(folder: str | Path) -> list[Path]:
    """Every audio file below ``folder`` (recursive, sorted)."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
