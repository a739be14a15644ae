"""Audio stage: decode, downmix, resample, and cut into windows.

Decoding uses soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3) and
resampling uses soxr; nothing here needs torchaudio or FFmpeg. A file that
cannot be decoded raises :class:`AudioError` naming the file; the extract stage
catches it, skips the track and counts it.

Long files: the extract stage uses at most ``max_windows`` windows of a track,
so :func:`load_windows` reads only those from a file that has more (a two-hour
WAV is not decoded whole); :func:`decode_all` checks a whole file block by
block for `bench data check --decode`.
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


#: a decoded track shorter than this is not embedded (a 1-sample WAV is a zero-padded window of silence)
MIN_SECONDS = 0.05


def _existing(path: str | Path) -> Path:
    """``path`` as a Path, or an AudioError when it is missing, empty, or a WAV whose header announces
    more audio than the file holds (before any decoder sees it: libsndfile quietly decodes what is there)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    short = wav_shortfall(path, size)
    if short is not None:
        raise AudioError(path, f"truncated: its WAV header announces {short[0]:,} bytes of audio, the file holds "
                               f"{short[1]:,} (a cut download or copy; fetch the file again)")
    return path


def wav_shortfall(path: Path, size: int | None = None) -> tuple[int, int] | None:
    """(bytes the ``data`` chunk announces, bytes the file holds after its start) for a RIFF WAV that holds
    less than it announces; None for a whole WAV, a streamed one (size 0 or 0xFFFFFFFF), or another format."""
    import struct

    size = path.stat().st_size if size is None else size
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            pos = 12
            for _ in range(64):  # the data chunk comes after fmt and a few others
                f.seek(pos)
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, n = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"data":
                    held = size - (pos + 8)
                    if n in (0, 0xFFFFFFFF) or n <= held:
                        return None
                    return n, max(held, 0)
                pos += 8 + n + (n & 1)
    except OSError:
        return None
    return None


def _check_length(path: Path, n: int, sr: int) -> None:
    if n < MIN_SECONDS * sr:
        raise AudioError(path, f"too short: {n} sample(s) ({n / sr:.4f} s); a track needs at least "
                               f"{MIN_SECONDS} s of audio")


def load(path: str | Path, sample_rate: int, start: float | None = None, end: float | None = None) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz, optionally the span [start, end) seconds."""
    import soundfile as sf

    path = _existing(path)
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            first = int(round(start * sr)) if start else 0
            frames = int(round((end - (start or 0.0)) * sr)) if end is not None else -1
            if first:
                f.seek(first)
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types for bad data
        raise _decode_error(path, exc) from exc
    if data.size == 0:
        raise AudioError(path, "no audio samples decoded")
    _check_length(path, len(data), sr)
    return resample(_mono(path, data), sr, sample_rate)


def _decode_error(path: Path, exc: Exception) -> AudioError:
    detail = str(exc).replace(f"Error opening {str(path)!r}: ", "")
    if "does not exist" in detail:  # libsndfile says this of MP3s it cannot parse
        detail = "not a valid audio stream"
    return AudioError(path, f"cannot decode: corrupt or unsupported audio ({detail})")


def _mono(path: Path, data: np.ndarray) -> np.ndarray:
    mono = data.mean(axis=1)
    if not np.isfinite(mono).all():
        raise AudioError(path, "decoded samples contain NaN or infinity")
    return mono


def load_windows(path: str | Path, sample_rate: int, length: int, max_windows: int | None = 64,
                 start: float | None = None, end: float | None = None) -> np.ndarray:
    """``windows(load(path, sample_rate, start, end), length, max_windows)``, reading only what is used.

    A track with at most ``max_windows`` full windows is decoded whole, exactly
    as :func:`load` does (its windows are identical). A longer one is not: each
    chosen window's span is sought and read on its own, with a margin of
    context for the resampler when the file's rate differs, so memory and
    decoding stay at ``max_windows`` windows whatever the file's length. The
    windows are those the whole decode would give: the same positions, the
    same samples when no resampling is needed, and equal to float rounding
    (measured: at most 3e-7) when the resampler runs on each window's span.
    """
    import soundfile as sf

    path = _existing(path)
    if max_windows is None:
        return windows(load(path, sample_rate, start, end), length, max_windows)
    try:
        with sf.SoundFile(str(path)) as f:
            sr, total = f.samplerate, f.frames
            first = min(int(round(start * sr)) if start else 0, max(total, 0))
            span = total - first
            if end is not None:
                span = min(span, int(round((end - (start or 0.0)) * sr)))
            n = int(round(span * sample_rate / sr)) // length if span > 0 else 0
            if n <= max_windows or not f.seekable():
                f.close()
                return windows(load(path, sample_rate, start, end), length, max_windows)
            chosen = np.linspace(0, n - 1, max_windows).round().astype(int)
            return np.stack([_read_window(path, f, int(i) * length, length, first, span, sr, sample_rate)
                             for i in chosen])
    except AudioError:
        raise
    except Exception as exc:  # libsndfile raises several types for bad data
        raise _decode_error(path, exc) from exc


def _read_window(path: Path, f, out_lo: int, length: int, first: int, span: int, sr: int, sr_out: int) -> np.ndarray:
    """Output samples ``[out_lo, out_lo + length)`` of the resampled span, read from the open file ``f``."""
    import math

    if sr == sr_out:
        f.seek(first + out_lo)
        x = _mono(path, f.read(frames=length, dtype="float32", always_2d=True))
        return np.pad(x, (0, length - len(x))).astype(np.float32)
    # Start the read on a frame whose output position is a whole sample (steps of sr/g input frames
    # are sr_out/g output samples), with about 50 ms of context on each side for the filter.
    g = math.gcd(sr, sr_out)
    step_in, step_out = sr // g, sr_out // g
    margin = int(0.05 * sr) + step_in
    lo_steps = max(0, (out_lo * sr // sr_out - margin) // step_in)
    lo = lo_steps * step_in
    hi = min(span, -(-(out_lo + length) * sr // sr_out) + margin)
    f.seek(first + lo)
    x = resample(_mono(path, f.read(frames=hi - lo, dtype="float32", always_2d=True)), sr, sr_out)
    off = out_lo - lo_steps * step_out
    w = x[off : off + length]
    return np.pad(w, (0, length - len(w))).astype(np.float32)


def decode_all(path: str | Path, start: float | None = None, end: float | None = None,
               block: int = 1 << 16) -> tuple[float, float]:
    """Decode the file (or the span [start, end) seconds) block by block, keeping nothing.

    Returns ``(seconds decoded, seconds the header announces)`` for the span;
    raises :class:`AudioError` for a file that cannot be opened or decoded, has
    no samples, holds NaN/infinity, or ends before the announced length.
    """
    import soundfile as sf

    path = _existing(path)
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            first = int(round(start * sr)) if start else 0
            want = max(0, f.frames - first)
            if end is not None:
                want = min(want, int(round((end - (start or 0.0)) * sr)))
            if first:
                f.seek(first)
            got = 0
            while got < want:
                data = f.read(frames=min(block, want - got), dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                _mono(path, data)
                got += len(data)
    except AudioError:
        raise
    except Exception as exc:  # libsndfile raises several types for bad data
        raise _decode_error(path, exc) from exc
    if got == 0:
        raise AudioError(path, "no audio samples decoded")
    if got < want:
        raise AudioError(path, f"truncated: {got / sr:.2f} s decoded of the {want / sr:.2f} s its header announces")
    return got / sr, want / sr


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
