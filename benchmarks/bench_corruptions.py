"""Cost of each corruption on one clip, against what clean extraction of that clip costs.

The issue's target: corrupted extraction within 2x of clean extraction per
condition. Clean extraction of a clip = decode + embed; corrupted = decode +
corrupt + embed (time_stretch and splice_out change the number of windows,
which the measurement includes). This script measures, on one
synthetic 30 s rock clip (tasks/synth_music.py) at 16 kHz:

- decode: ``bench.audio.load`` of the clip as a 16-bit WAV at 16 kHz, and as a
  128 kbit/s 44.1 kHz MP3 resampled to 16 kHz (the demo and real tasks use both);
- embed: the untrained SampleCNN (``random`` encoder, ``--preset``) over the
  clip's non-overlapping windows, batch 32, CPU, no_grad;
- each condition of the suite: ``Condition.apply`` (median of ``--repeats``
  after one warm-up call), and the ratio corrupted / clean extraction of the
  clip (WAV decode + [corrupt] + embed, the two timed back to back; median).

Times are CPU times of the process (``time.process_time``), see :func:`clock`,
with torch on one thread, so that the embed step (multi-threaded otherwise)
and the effects (single-threaded) are compared per core.

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


def clock() -> float:
    # CPU time of this process (all its threads), not wall time: these machines are shared and the
    # wall time of the same work varied by +-50% between back-to-back runs under other jobs' load,
    # while its CPU time is the cost the 2x target is about
    return time.process_time()


def median_ms(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up: imports, pedalboard / LAME initialisation
    times = []
    for _ in range(repeats):
        t0 = clock()
        out = fn()
        times.append(clock() - t0)
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
    from bench_tasks.synth_clips import genre_clip

    import torch

    torch.set_num_threads(1)
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

    embed_fn = None
    if args.preset != "none":
        from bench_plugins.ssl_encoders import RandomEncoder

        enc = RandomEncoder(preset=args.preset).eval()
        if enc.sample_rate != sr:
            raise SystemExit(f"preset {args.preset} runs at {enc.sample_rate} Hz; pass --sr {enc.sample_rate}")

        def embed_fn(sig):
            w = torch.from_numpy(windows(sig, enc.window, None))
            with torch.no_grad():
                return [enc.embed(w[i : i + 32]) for i in range(0, len(w), 32)]

        embed_ms, _ = median_ms(lambda: embed_fn(x), args.repeats)

    print(f"# {args.seconds:g} s clip at {sr} Hz; CPU ms; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; median of {args.repeats}")
    print(f"decode WAV {dec_wav:.1f} ms, decode MP3 (44.1 kHz -> {sr}) {dec_mp3:.1f} ms"
          + (f", embed ({args.preset} SampleCNN, {len(x) // enc.window} windows) {embed_ms:.1f} ms"
             if embed_fn else ""))
    print(f"{'condition':20s} {'ms/clip':>9s} {'x WAV dec':>9s} {'x MP3 dec':>9s}"
          + (f" {'extract ratio':>13s}" if embed_fn else ""))
    heavy = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip.wav"
        sf.write(wav, x, sr, subtype="PCM_16")
        for cond in conds:
            cond.apply(x, sr, seed=1)  # warm-up
            ms_list, ratios = [], []
            for _ in range(args.repeats):
                # clean and corrupted extraction of the clip timed back to back, so that the load of
                # a shared machine drifts less between the two than between separate loops
                if embed_fn:
                    t0 = clock()
                    embed_fn(load(wav, sr))
                    clean = clock() - t0
                t0 = clock()
                sig = load(wav, sr)
                t1 = clock()
                y = cond.apply(sig, sr, seed=1)
                t2 = clock()
                if embed_fn:
                    embed_fn(y)
                    ratios.append((clock() - t0) / clean)
                ms_list.append(1000 * (t2 - t1))
            ms = statistics.median(ms_list)
            line = f"{cond.id:20s} {ms:9.1f} {ms / dec_wav:9.1f} {ms / dec_mp3:9.2f}"
            if embed_fn:
                ratio = statistics.median(ratios)
                line += f" {ratio:13.2f}"
                if ratio > 2:
                    heavy.append(f"{cond.id} ({ratio:.2f}x)")
            print(line, flush=True)
    if embed_fn:
        print("over the 2x target: " + (", ".join(heavy) if heavy else "none"))

if __name__ == "__main__":
    main()
