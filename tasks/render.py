"""Render symbolic music to audio with a SoundFont: the sound source of the demo datasets.

The demo generators write their music as MIDI (``pretty_midi`` objects: General
MIDI programs, a GM drum kit on channel 10) and this module turns it into
audio with ``midirenderer`` (a Rust SoundFont synthesiser, rustysynth inside)
and a SoundFont of recorded instrument samples. The built-in SoundFont is
TimGM6mb, which the ``pretty_midi`` wheel ships; ``BENCH_DEMO_SOUNDFONT`` or
``demo_soundfont`` in the config file name another ``.sf2`` file
(:func:`bench.config.demo_soundfont`).

midirenderer always renders 48 kHz stereo, with the synthesiser's reverb and
chorus, for exactly the length of the MIDI file; :func:`render_midi` marks the
wanted length with a controller event, downmixes to mono and resamples with
soxr. The synthesiser has no randomness, so the same MIDI and SoundFont give
the same samples.
"""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.config import DEMO_METADATA

RENDER_SR = 48000  # fixed by midirenderer
DEFAULT_FILE = "TimGM6mb.sf2"
#: what is known about the built-in SoundFont (from the Debian package's copyright file,
#: timgm6mb-soundfont 1.3-5); recorded in every demo dataset's demo_metadata.json
DEFAULT_INFO = {
    "name": "TimGM6mb",
    "file": DEFAULT_FILE,
    "copyright": "2004 Tim Brechbill; 2010 David Bolton",
    "licence": "GPL-2.0 (GNU General Public License version 2)",
    "source": "shipped in the pretty_midi wheel (pretty_midi/TimGM6mb.sf2); from MuseScore 1.3; "
              "Debian package timgm6mb-soundfont",
}
# an undefined GM controller number: an event on it only marks where the MIDI file ends
_END_MARK_CC = 3


def default_soundfont() -> Path:
    """Path of the TimGM6mb SoundFont inside the installed ``pretty_midi`` package (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pretty_midi is not installed: pip install pretty_midi (it ships the demo SoundFont)")
    return Path(list(spec.submodule_search_locations)[0]) / DEFAULT_FILE


def soundfont_path() -> Path:
    """The SoundFont to render with: the user's choice (config/env), else the built-in one."""
    from bench.config import demo_soundfont

    return demo_soundfont() or default_soundfont()


@lru_cache(maxsize=4)
def soundfont_bytes(path: str) -> bytes:
    """The SoundFont file's bytes, read once per process (midirenderer takes bytes)."""
    return Path(path).read_bytes()


def _riff_info(data: bytes) -> dict[str, str]:
    """Text fields of a SoundFont's INFO list (INAM name, ICOP copyright, ICMT comment, ...)."""
    out: dict[str, str] = {}
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        return out
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"LIST" and data[pos + 8 : pos + 12] == b"INFO":
            p, end = pos + 12, pos + 8 + size
            while p + 8 <= end:
                sid, ssize = data[p : p + 4], int.from_bytes(data[p + 4 : p + 8], "little")
                text = data[p + 8 : p + 8 + ssize].split(b"\0")[0].decode("latin-1").strip()
                if text:
                    out[sid.decode("latin-1")] = text
                p += 8 + ssize + (ssize & 1)
            break
        pos += 8 + size + (size & 1)
    return out


def soundfont_info(path: Path | None = None) -> dict[str, Any]:
    """Name, copyright, licence and SHA-256 of a SoundFont, for the datasets' metadata and the docs."""
    path = Path(path) if path is not None else soundfont_path()
    data = soundfont_bytes(str(path))
    digest = hashlib.sha256(data).hexdigest()
    if path.resolve() == default_soundfont().resolve():
        info: dict[str, Any] = dict(DEFAULT_INFO)
    else:
        fields = _riff_info(data)
        info = {"name": fields.get("INAM", path.stem), "file": path.name,
                "copyright": fields.get("ICOP", "not stated in the file"),
                "licence": "not recorded: the user's own SoundFont (see its copyright field and its source)",
                "source": str(path)}
    info.update({"sha256": digest, "bytes": len(data)})
    return info


def render_midi(midi: Any, sample_rate: int, seconds: float, soundfont: Path | None = None):
    """Render a ``pretty_midi.PrettyMIDI`` to ``seconds`` of mono float32 audio at ``sample_rate``.

    Notes are cut at ``seconds`` (as a clip cut from a longer piece); what sounds
    past a note's end (release, reverb) is kept up to ``seconds``.
    """
    import midirenderer
    import numpy as np
    import pretty_midi
    import soundfile as sf
    import soxr

    sf_path = soundfont or soundfont_path()
    if not midi.instruments:
        midi.instruments.append(pretty_midi.Instrument(program=0))
    for inst in midi.instruments:
        inst.notes = [n for n in inst.notes if n.start < seconds]
        for n in inst.notes:
            n.end = min(n.end, seconds)
    # the renderer stops at the last MIDI event: mark the wanted end
    midi.instruments[0].control_changes.append(pretty_midi.ControlChange(_END_MARK_CC, 0, seconds))
    buf = io.BytesIO()
    midi.write(buf)
    try:
        wav = midirenderer.render_wave_from(soundfont_bytes(str(sf_path)), buf.getvalue())
    except (ValueError, RuntimeError) as exc:
        raise RuntimeError(f"rendering with the SoundFont {sf_path} failed: {exc}") from exc
    stereo, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    mono = stereo.mean(axis=1)
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate, quality="HQ")
    n = int(round(seconds * sample_rate))
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(mono))] = mono[:n]
    return out


def metadata(dataset: str, size: str, seed: int, sample_rate: int, extra: dict | None = None) -> dict[str, Any]:
    """The ``demo_metadata.json`` of one generated dataset: what made it and from which sounds."""
    from importlib.metadata import PackageNotFoundError, version

    from bench.config import DEMO_VERSION

    def ver(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    return {
        "generator": "bench demo data (generated, not the real dataset)",
        "dataset": dataset,
        "demo_version": DEMO_VERSION,
        "size": size,
        "seed": seed,
        "sample_rate": sample_rate,
        "soundfont": soundfont_info(),
        "renderer": {"midirenderer": ver("midirenderer"), "pretty_midi": ver("pretty_midi"),
                     "render_rate": RENDER_SR, "resampler": f"soxr {ver('soxr')} HQ"},
        **(extra or {}),
    }


def write_metadata(folder: Path, meta: dict[str, Any]) -> None:
    """Write ``demo_metadata.json`` into a dataset folder (not audio: the loaders ignore it)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
