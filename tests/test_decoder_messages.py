"""What libmpg123 prints on fd 2 is captured per file and reported by bench, not sprayed over the terminal."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench import decoder_messages
from bench.task import Item


def test_each_thread_captures_exactly_what_it_printed():
    def job(i):
        with decoder_messages.capture() as lines:
            for k in range(3):
                os.write(2, f"[src/libmpg123/x.c:f():{k}] note from job {i} line {k}\n".encode())
        return i, lines

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(job, range(64)))
    for i, lines in results:
        assert lines == [f"note from job {i} line {k}" for k in range(3)]


def test_the_main_thread_captures_under_a_lock(capfd):
    with decoder_messages.capture() as lines:
        os.write(2, b"Note: Trying to resync...\n")
    os.write(2, b"after\n")
    assert lines == ["Note: Trying to resync..."]
    assert capfd.readouterr().err == "after\n"
    assert threading.current_thread() is threading.main_thread()


def _mp3s(folder, n_good=6):
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(4 * 16000) / 16000
    paths = []
    for i in range(n_good):
        p = folder / f"good{i}.mp3"
        sf.write(str(p), (0.3 * np.sin(2 * np.pi * (220 + 50 * i) * t)).astype(np.float32), 16000, format="MP3")
        paths.append(p)
    clean = paths[0].read_bytes()
    mid = len(clean) // 2
    hiccup = bytearray(clean)  # a short run of zeros: libmpg123 resyncs, notes it, and decodes the rest
    hiccup[mid : mid + 50] = bytes(50)
    (folder / "hiccup.mp3").write_bytes(bytes(hiccup))
    broken = bytearray(clean)  # 2000 random bytes: libmpg123 gives up
    broken[mid : mid + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    (folder / "broken.mp3").write_bytes(bytes(broken))
    return paths + [folder / "hiccup.mp3", folder / "broken.mp3"]


def test_extraction_reports_decoder_messages_per_file_and_prints_none(tmp_path, capfd):
    from bench.extract import extract
    from bench_plugins.logmel import LogMelEncoder

    paths = _mp3s(tmp_path)
    items = [Item(p.stem, str(p), 0) for p in paths for _ in range(3)]  # each file three times, in parallel
    items = [Item(f"{it.track_id}-{k}", it.path, 0) for k, it in enumerate(items)]
    enc = LogMelEncoder()
    emb = extract(enc, items, workers=4, progress=False)
    err = capfd.readouterr().err
    assert "libmpg123" not in err and "resync" not in err.lower() and "Illegal" not in err
    assert sorted({s["path"] for s in emb.skipped}) == [str(tmp_path / "broken.mp3")]
    assert all("decoder: " in s["reason"] and "Giving up resync" in s["reason"] for s in emb.skipped)
    assert sorted({w["path"] for w in emb.warnings}) == [str(tmp_path / "hiccup.mp3")]
    assert len(emb.warnings) == 3 and all("Skipped 36 bytes" in " ".join(w["messages"]) or "Illegal" in
                                          " ".join(w["messages"]) for w in emb.warnings)
    assert len(emb.items) == 3 * 7


def _mtat_root(root):
    """An MTAT-layout root: train (folder 0) holds the damaged files, valid (c) and test (d) clean ones."""
    import shutil

    base = root / "magnatagatune"
    paths = _mp3s(root / "src")
    rows = ['"clip_id"\t"guitar"\t"piano"\t"mp3_path"']
    plan = [("0", p) for p in paths[:4] + paths[-2:]] + [("c", paths[4]), ("c", paths[5])] * 2 + \
        [("d", paths[4]), ("d", paths[5])] * 2
    for i, (folder, src) in enumerate(plan):
        rel = f"{folder}/{src.stem}-{i}.mp3"
        (base / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, base / rel)
        rows.append(f'"{src.stem if folder == "0" else i}"\t"{i % 2}"\t"{1 - i % 2}"\t"{rel}"')
    (base / "annotations_final.csv").write_text("\n".join(rows) + "\n")
    return root


def test_a_run_counts_them_in_its_own_lines_and_records(tmp_path, capfd):
    import json

    from bench.cli import main

    root = _mtat_root(tmp_path / "root")
    out = tmp_path / "out"
    assert main(["run", "-e", "logmel", "-t", "mtat", "--data-root", str(root), "--seeds", "0", "--probe-grid",
                 "fast", "--no-progress", "--device", "cpu", "--out", str(out)]) == 0
    err = capfd.readouterr().err
    raw = [line for line in err.splitlines() if line.startswith(("Note:", "[src/", "Warning:", "error:"))]
    assert not raw, err
    assert "skipped 1 unreadable file(s) in train" in err
    assert "1 file(s) in train decoded with warnings from the decoder (kept)" in err
    rec = json.loads((out / "records" / "logmel__mtat__seed0.json").read_text())
    assert [w["track_id"] for w in rec["data"]["decoder_warnings"]["train"]] == ["hiccup"]
    assert rec["data"]["skipped_count"] == 1
