"""Cost of each corruption on one clip, against what clean extraction of that clip costs.

The issue's target: corrupted extraction within 2x of clean extraction per
condition. Clean extraction of a clip = decode + embed; corrupted = decode +
corrupt + embed (time_stretch and splice_out change the number of windows, so
their embed time is scaled by the length ratio). This script measures, on one
synthetic 30 s rock clip (tasks/synth_music.py) at 16 kHz:

- decode: ``bench.audio.load`` of the clip as a 16-bit WAV at 16 kHz, and as a
  128 kbit/s 44.1 kHz MP3 resampled to 16 kHz (the demo and real tasks use both);
- embed: the untrained SampleCNN (``random`` encoder, ``--preset``) over the
  clip's non-overlapping windows, batch 32, CPU, no_grad;
- each condition of the suite: ``Condition.apply`` (median of ``--repeats``
  after one warm-up call).

    python benchmarks/bench_corruptions.py                    # default suite, demo preset
    python benchmarks/bench_corruptions.py --suite quick --repeats 5
    python benchmarks/bench_corruptions.py --preset none      # corruptions vs decode only
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def median_ms(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up: imports, pedalboard / LAME initialisation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--sr", type=int, default=16000)
    ap.add_argument("--suite", default="default", help="a suite name or a condition list (bench.corruptions)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preset", default="demo", help="SampleCNN preset of the embed step, or 'none' to skip it")
    args = ap.parse_args()

    import soundfile as sf

    from bench.audio import load, windows
    from bench.corruptions import parse_conditions
    from bench_tasks.synth_music import genre_clip

    conds = parse_conditions(args.suite)
    sr = args.sr
    x = genre_clip(np.random.default_rng(0), "rock", args.seconds, sr).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        wav, mp3 = Path(tmp) / "clip.wav", Path(tmp) / "clip.mp3"
        sf.write(wav, x, sr, subtype="PCM_16")
        x44 = genre_clip(np.random.default_rng(0), "rock", args.seconds, 44100).astype(np.float32)
        # compression level 0.6 of MPEG-1's 32..320 kbit/s range = 147, LAME picks 128
        sf.write(mp3, x44, 44100, format="MP3", compression_level=0.6, bitrate_mode="CONSTANT")
        dec_wav, _ = median_ms(lambda: load(wav, sr), args.repeats)
        dec_mp3, _ = median_ms(lambda: load(mp3, sr), args.repeats)

    embed = None
    if args.preset != "none":
        import torch

        from bench_plugins.ssl_encoders import RandomEncoder

        enc = RandomEncoder(preset=args.preset).eval()
        if enc.sample_rate != sr:
            raise SystemExit(f"preset {args.preset} runs at {enc.sample_rate} Hz; pass --sr {enc.sample_rate}")

        def run_embed(sig=x):
            w = torch.from_numpy(windows(sig, enc.window, None))
            with torch.no_grad():
                return [enc.embed(w[i : i + 32]) for i in range(0, len(w), 32)]

        embed, _ = median_ms(run_embed, args.repeats)

    print(f"# {args.seconds:g} s clip at {sr} Hz; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; median of {args.repeats}")
    print(f"decode WAV {dec_wav:.1f} ms, decode MP3 (44.1 kHz -> {sr}) {dec_mp3:.1f} ms"
          + (f", embed ({args.preset} SampleCNN, {len(x) // enc.window} windows) {embed:.1f} ms" if embed else ""))
    clean = dec_wav + (embed or 0.0)
    head = f"{'condition':20s} {'ms/clip':>9s} {'x WAV dec':>9s} {'x MP3 dec':>9s}"
    print(head + (f" {'extract ratio':>13s}" if embed else ""))
    heavy = []
    for cond in conds:
        ms, y = median_ms(lambda: cond.apply(x, sr, seed=1), args.repeats)
        line = f"{cond.id:20s} {ms:9.1f} {ms / dec_wav:9.1f} {ms / dec_mp3:9.2f}"
        if embed:
            # corrupted extraction of the clip over clean extraction (WAV decode), windows rescaled
            ratio = (dec_wav + ms + embed * len(y) / len(x)) / clean
            line += f" {ratio:13.2f}"
            if ratio > 2:
                heavy.append(f"{cond.id} ({ratio:.2f}x)")
        print(line)
    if embed:
        print("over the 2x target: " + (", ".join(heavy) if heavy else "none"))


if __name__ == "__main__":
    main()
