"""Probe cache: a warm rerun trains no probe and writes the same records; keys, bad entries, listing by kind."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from conftest import forget_results


def _run(root, out, *extra):
    rc = main(["run", "--encoder", "logmel", "--tasks", "nsynth_pitch", "--data-root", str(root), "--seeds", "0",
               "--probe-grid", "fast", "--device", "cpu", "--no-progress", "--out", str(out), *extra])
    assert rc == 0
    return {p.name: json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))}


def _same(rec):
    """A record without what legitimately differs between two runs (when, how long, cache status)."""
    rec = json.loads(json.dumps(rec))
    for k in ("created", "command", "timings", "cache"):
        rec.pop(k, None)
    rec["probe"].pop("cache")
    return rec


def _boom(*a, **k):
    raise AssertionError("a warm run must not train a probe")


def test_warm_run_trains_no_probe_and_writes_identical_records(nsynth_tiny, tmp_path, monkeypatch):
    cold = _run(nsynth_tiny, tmp_path / "cold", "--seeds", "0,1")
    assert {r["probe"]["cache"] for r in cold.values()} == {"miss"}
    monkeypatch.setattr("bench.probe.select_probe", _boom)
    monkeypatch.setattr("bench.confidence.bootstrap", _boom)
    forget_results()  # the same command would reuse its records (bench.run_memo): this tests the probe cache
    warm = _run(nsynth_tiny, tmp_path / "warm", "--seeds", "0,1")
    assert {r["probe"]["cache"] for r in warm.values()} == {"hit"}
    assert warm.keys() == cold.keys()
    for name in cold:
        assert _same(warm[name]) == _same(cold[name])
    assert (tmp_path / "warm" / "leaderboard.md").read_text() == (tmp_path / "cold" / "leaderboard.md").read_text()


def test_no_cache_trains_again_and_stores_nothing(nsynth_tiny, tmp_path, monkeypatch):
    from bench.store import kind_root

    _run(nsynth_tiny, tmp_path / "a")
    calls = []
    import bench.probe as probe

    real = probe.select_probe
    monkeypatch.setattr("bench.probe.select_probe", lambda *a, **k: calls.append(1) or real(*a, **k))
    before = sorted(p.name for p in kind_root("probes").iterdir())
    rec = _run(nsynth_tiny, tmp_path / "b", "--no-cache")
    assert calls == [1] and rec["logmel__nsynth_pitch__seed0.json"]["probe"]["cache"] == "off"
    assert sorted(p.name for p in kind_root("probes").iterdir()) == before


def test_a_new_seed_or_grid_misses_and_a_bad_entry_is_rebuilt(nsynth_tiny, tmp_path, capsys):
    from bench.store import kind_root

    _run(nsynth_tiny, tmp_path / "a")
    assert _run(nsynth_tiny, tmp_path / "b", "--seeds", "3")["logmel__nsynth_pitch__seed3.json"]["probe"]["cache"] \
        == "miss"
    grid = _run(nsynth_tiny, tmp_path / "c", "--probe-grid", "lr=1e-3;wd=1e-6")
    assert grid["logmel__nsynth_pitch__seed0.json"]["probe"]["cache"] == "miss"
    entries = sorted(p for p in kind_root("probes").iterdir() if not p.name.startswith("."))
    assert len(entries) == 3
    for e in entries:  # one changed byte in the stored scores
        blob = bytearray((e / "scores.npz").read_bytes())
        blob[-30] ^= 1
        (e / "scores.npz").write_bytes(bytes(blob))
    capsys.readouterr()
    forget_results()
    rec = _run(nsynth_tiny, tmp_path / "d")["logmel__nsynth_pitch__seed0.json"]
    assert rec["probe"]["cache"] == "rebuilt"
    assert "checksum" in capsys.readouterr().err
    forget_results()
    assert _run(nsynth_tiny, tmp_path / "e")["logmel__nsynth_pitch__seed0.json"]["probe"]["cache"] == "hit"


def test_key_holds_protocol_seed_conditions_and_code():
    from bench.keys import probe_key as make_key
    from bench_tasks.nsynth import NSynthPitch

    base = dict(task=NSynthPitch(), classes=["a", "b"], embedding_keys={"train": "t", "valid": "v", "test": "x"},
                condition_keys={}, probe={"head": "mlp"}, grid=[(3e-4, 1e-6)], seed=0)
    k = make_key(**base)
    assert k.fields["protocol"] == "bench" and len(k.fields["code"]) == 64
    assert make_key(**base).digest == k.digest
    for change in ({"protocol": "official"}, {"seed": 1}, {"condition_keys": {"reverb@0.5": "r"}},
                   {"embedding_keys": {"train": "t2", "valid": "v", "test": "x"}}, {"grid": [(1e-3, 1e-6)]},
                   {"classes": ["b", "a"]}, {"probe": {"head": "linear"}}):
        assert make_key(**{**base, **change}).digest != k.digest, change


def _fake_checkpoint(folder, name="simclr-0123456789abcdef"):
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.zeros(3, np.float32)}, str(folder / f"{name}.safetensors"),
              metadata={"encoder": "simclr", "config": "{}", "extra": json.dumps({"trained": True, "steps": 7})})
    (folder / f"{name}.run").mkdir()
    (folder / f"{name}.run" / "metrics.jsonl").write_text("{}\n")
    (folder / "supervised-00000000000000ff.run").mkdir()  # interrupted training, no weights yet


def test_cache_list_and_clear_by_kind(nsynth_tiny, tmp_path, capsys):
    import re

    from bench.errors import BenchError
    from bench.commands.cache import parse_kinds
    from bench.store import kind_root

    def checkpoints_root():
        return kind_root("checkpoints")

    _run(nsynth_tiny, tmp_path / "a")
    _fake_checkpoint(checkpoints_root())
    capsys.readouterr()
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert out.count("| embeddings ") == 3 and out.count("| probes ") == 1 and out.count("| checkpoints ") == 2
    assert out.count("| results ") == 1  # the finished pair (bench.run_memo)
    assert re.search(r"\| probes +\| logmel ", out) and "7 steps" in out and "incomplete (training state)" in out
    assert main(["cache", "list", "--kind", "probes"]) == 0
    out = capsys.readouterr().out
    assert out.count("| probes ") == 1 and "| embeddings " not in out
    assert main(["cache", "clear"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Removed ([5-9]|\d\d) ", out) and "Kept 2 checkpoints entries" in out
    assert main(["cache", "list", "--kind", "embeddings,probes,results,renders,pretrain-audio"]) == 0
    assert "(empty)" in capsys.readouterr().out
    assert (checkpoints_root() / "simclr-0123456789abcdef.safetensors").is_file()
    assert main(["cache", "clear", "--kind", "checkpoints", "--encoder", "simclr"]) == 0
    assert not (checkpoints_root() / "simclr-0123456789abcdef.safetensors").exists()
    assert not (checkpoints_root() / "simclr-0123456789abcdef.run").exists()
    assert (checkpoints_root() / "supervised-00000000000000ff.run").is_dir()
    with pytest.raises(BenchError, match="unknown kind 'probe'"):
        parse_kinds("probe")
