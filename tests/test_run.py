"""The main job end to end on tiny generated data, and how it treats bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import hookimpl
from bench.cli import main
from bench.encoder import Encoder


def run_cli(*args):
    return main(list(args))


def test_run_writes_records_with_provenance_and_leaderboard(nsynth_tiny, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_cli("run", "--encoder", "logmel", "--tasks", "nsynth_pitch", "--data-root", str(nsynth_tiny),
                   "--out", str(out), "--device", "cpu", "--seeds", "0,1")
    assert code == 0
    captured = capsys.readouterr()
    assert "logmel" in captured.out and "nsynth_pitch" in captured.out
    assert str(out / "records") in captured.err  # says where the records went
    rec = json.loads((out / "records" / "logmel__nsynth_pitch__seed1.json").read_text())
    assert rec["schema_version"] == 1 and rec["seed"] == 1
    assert set(rec["metrics"]) == {"accuracy", "pitch_class_accuracy"}
    assert rec["primary_metric"] == "accuracy"
    assert rec["demo_data"] is True  # an explicit data root holding demo data (its demo_metadata.json) is demo data
    assert len(rec["data"]["fingerprint"]) == 64 and rec["data"]["tracks"]["train"] > 0
    assert rec["encoder_config"]["name"] == "logmel" and len(rec["weights_hash"]) == 64
    assert rec["versions"]["torch"] and rec["plugins"]["encoder"]["distribution"] == "music-bench"
    assert rec["timings"]["extract_s"] > 0
    for ext in ("md", "csv", "json"):
        assert (out / f"leaderboard.{ext}").is_file()


def test_demo_data_is_built_once_and_tables_say_demo(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("run", "-e", "logmel", "-t", "nsynth_pitch", "--demo-size", "tiny", "--out", str(out),
                   "--device", "cpu") == 0
    captured = capsys.readouterr()
    assert "DEMO DATA" in captured.out
    assert "Building demo data" in captured.err
    assert "DEMO DATA" in (out / "leaderboard.md").read_text()
    rec = json.loads((out / "records" / "logmel__nsynth_pitch__seed0.json").read_text())
    assert rec["demo_data"] is True
    assert run_cli("run", "-e", "logmel", "-t", "nsynth_pitch", "--demo-size", "tiny", "--out", str(out),
                   "--device", "cpu") == 0
    assert "Building demo data" not in capsys.readouterr().err


def test_same_config_and_seed_give_identical_metrics(nsynth_tiny, tmp_path):
    for name in ("a", "b"):
        assert run_cli("run", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(nsynth_tiny),
                       "--out", str(tmp_path / name), "--device", "cpu") == 0
    ra = json.loads((tmp_path / "a" / "records" / "logmel__nsynth_pitch__seed0.json").read_text())
    rb = json.loads((tmp_path / "b" / "records" / "logmel__nsynth_pitch__seed0.json").read_text())
    assert ra["metrics"] == rb["metrics"]


def test_corrupt_and_empty_audio_are_skipped_and_counted(nsynth_tiny, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(nsynth_tiny / "nsynth", root / "nsynth")
    audio = sorted((root / "nsynth" / "nsynth-train" / "audio").glob("*.wav"))
    audio[0].write_bytes(b"this is not a wav file" * 20)
    audio[1].write_bytes(b"")
    out = tmp_path / "out"
    assert run_cli("run", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(root), "--out", str(out),
                   "--device", "cpu") == 0
    err = capsys.readouterr().err
    assert audio[0].name in err and "skipped 2 unreadable" in err
    rec = json.loads((out / "records" / "logmel__nsynth_pitch__seed0.json").read_text())
    assert rec["data"]["skipped_count"] == 2
    reasons = {s["reason"] for s in rec["data"]["skipped"]["train"]}
    assert any("empty" in r for r in reasons) and any("cannot decode" in r for r in reasons)


class _BadShape(Encoder):
    name = "bad_shape"
    sample_rate = 16000
    window = 16000
    dim = 8

    def embed(self, waveforms):
        return torch.zeros(waveforms.shape[0], 5)


class _NaNEncoder(_BadShape):
    name = "nan_encoder"

    def embed(self, waveforms):
        return torch.full((waveforms.shape[0], 8), float("nan"))


class _BadPlugins:
    @staticmethod
    @hookimpl
    def register_encoders(register):
        register("bad_shape", _BadShape)
        register("nan_encoder", _NaNEncoder)


def test_encoder_breaking_contract_is_named_and_run_goes_on(fresh_plugins, nsynth_tiny, tmp_path, capsys):
    fresh_plugins.load_plugins()
    fresh_plugins.pm.register(_BadPlugins(), name="bad-plugins")
    fresh_plugins.invalidate()
    out = tmp_path / "out"
    code = run_cli("run", "-e", "bad_shape,nan_encoder,logmel", "-t", "nsynth_pitch", "--data-root",
                   str(nsynth_tiny), "--out", str(out), "--device", "cpu")
    assert code == 2  # some parts failed: exit 2, the records of the others written
    err = capsys.readouterr().err
    assert "encoder 'bad_shape': embed() returned shape" in err and "[B, dim]" in err
    assert "encoder 'nan_encoder': embed() returned NaN" in err
    assert (out / "records" / "logmel__nsynth_pitch__seed0.json").is_file()  # the rest still ran
    assert "logmel" in (out / "leaderboard.md").read_text()


def test_unknown_encoder_exits_non_zero_with_suggestion(capsys):
    assert run_cli("run", "--encoder", "logmle", "--tasks", "nsynth_pitch") != 0
    err = capsys.readouterr().err
    assert "Did you mean 'logmel'" in err and "Available encoders: " in err


def test_unknown_task(capsys):
    assert run_cli("run", "--encoder", "logmel", "--tasks", "nsynth") != 0
    assert "Did you mean 'nsynth_pitch'" in capsys.readouterr().err


def test_missing_data_root_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    code = run_cli("run", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(tmp_path / "nope"),
                   "--out", str(tmp_path / "out"), "--device", "cpu")
    assert code == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "bench data check" in err and "Traceback" not in err


def test_data_root_from_environment(nsynth_tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_ROOT", str(nsynth_tiny))
    out = tmp_path / "out"
    assert run_cli("run", "-e", "logmel", "-t", "nsynth_pitch", "--out", str(out), "--device", "cpu") == 0
    rec = json.loads((out / "records" / "logmel__nsynth_pitch__seed0.json").read_text())
    assert rec["data"]["root"] == str(nsynth_tiny) and rec["demo_data"] is True


def test_leaderboard_command_rebuilds_table(nsynth_tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("run", "-e", "logmel", "-t", "nsynth_pitch", "--data-root", str(nsynth_tiny), "--out",
                   str(out), "--device", "cpu") == 0
    (out / "leaderboard.md").unlink()
    capsys.readouterr()
    assert run_cli("leaderboard", str(out)) == 0
    assert "logmel" in capsys.readouterr().out
    assert (out / "leaderboard.md").is_file()


def test_data_check_reports_counts_missing_corrupt_and_unexpected(nsynth_tiny, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(nsynth_tiny / "nsynth", root / "nsynth")
    audio = sorted((root / "nsynth" / "nsynth-test" / "audio").glob("*.wav"))
    audio[0].unlink()
    audio[1].write_bytes(b"garbage" * 50)
    shutil.copy(audio[2], root / "nsynth" / "nsynth-test" / "audio" / "stray-000-000.wav")
    assert run_cli("data", "check", "--task", "nsynth_pitch", "--data-root", str(root), "--decode") == 0
    out = capsys.readouterr().out
    assert "1 missing file(s)" in out and "1 corrupt" in out
    assert "stray-000-000.wav" in out and "not in any split" in out


def test_help_for_every_verb(capsys):
    for verb in (["run"], ["list"], ["leaderboard"], ["data"], ["data", "demo"], ["data", "check"]):
        with pytest.raises(SystemExit) as exc:
            main([*verb, "--help"])
        assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_data_root_from_config_file_and_per_task_override(nsynth_tiny, tmp_path, monkeypatch):
    from bench.config import DataRoots

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'data_root = "{tmp_path / "elsewhere"}"\n')
    monkeypatch.setenv("BENCH_CONFIG", str(cfg))
    roots = DataRoots.from_args(None)
    assert roots.general == str(tmp_path / "elsewhere")
    roots = DataRoots.from_args([f"nsynth_pitch={nsynth_tiny}"])
    assert roots.per_task == {"nsynth_pitch": str(nsynth_tiny)} and not roots.is_demo("nsynth_pitch")
    cfg.write_text("data_root = [unclosed")
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="not valid TOML"):
        DataRoots.from_args(None)


def test_data_demo_command_builds_into_folder(tmp_path, capsys):
    assert run_cli("data", "demo", "--tasks", "nsynth_pitch", "--size", "tiny", "--out", str(tmp_path)) == 0
    assert (tmp_path / "nsynth" / "nsynth-train" / "examples.json").is_file()
    assert "nsynth_pitch: demo data in" in capsys.readouterr().out


def test_data_check_counts_missing_files_of_every_builtin_task(tmp_path, capsys):
    from bench import plugins

    task = plugins.get_task("gtzan")
    task.make_demo(tmp_path, size="tiny", seed=0)
    victim = task.items("test", tmp_path).items[0]
    Path(victim.path).unlink()
    assert run_cli("data", "check", "--task", "gtzan", "--data-root", str(tmp_path)) == 0
    assert "1 missing file(s)" in capsys.readouterr().out


def test_checkpoint_brings_its_encoder_options_and_dash_o_sets_them(tmp_path):
    from bench_plugins.ssl_encoders import SemiSupConEncoder

    from bench.commands.common import parse_options
    from bench.config import DataRoots
    from bench.weights import save_checkpoint
    from bench.errors import BenchError, PluginError
    from bench.run import prepare_encoder
    from bench.settings import EvalSettings, RunConfig

    assert parse_options(["label_fraction=0.05", "weighted=true", "label_task=mtat,gtzan", "seed=7"]) == {
        "label_fraction": 0.05, "weighted": True, "label_task": "mtat,gtzan", "seed": 7}
    with pytest.raises(BenchError, match="KEY=VALUE"):
        parse_options(["preset"])
    from bench.run import encoder_options_for

    opts = parse_options(["preset=paper", "semisupcon:label_fraction=0.05", "simclr:tau=0.2"])
    assert encoder_options_for("semisupcon", opts) == {"preset": "paper", "label_fraction": 0.05}
    assert encoder_options_for("logmel", opts) == {"preset": "paper"}
    trained = SemiSupConEncoder(preset="tiny", label_fraction=0.05, threshold=2.0, seed=5)
    path = tmp_path / "ssc.safetensors"
    save_checkpoint(trained, path)

    def config(**kw):
        return RunConfig(encoders=["semisupcon"], tasks=[], settings=EvalSettings(tmp_path, DataRoots()), **kw)

    enc = prepare_encoder("semisupcon", config(checkpoint=str(path))).encoder
    assert enc.config() == trained.config() and enc.objective["label_fraction"] == 0.05
    # explicit options win, and a mismatch with the checkpoint is refused with both configs shown
    with pytest.raises(PluginError, match="label_fraction"):
        prepare_encoder("semisupcon", config(checkpoint=str(path), encoder_options={"label_fraction": 0.5}))


def test_threads_before_torch_is_imported_go_through_the_environment():
    """A command whose workers compute (bench reproduce --jobs 2) sets the thread count without importing
    torch in its own process; torch, imported later, runs with that count."""
    code = ("import sys; from bench.commands.common import apply_threads; apply_threads(1); "
            "assert 'torch' not in sys.modules; import torch; print(torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "BENCH_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1"]


def test_threads_option_and_environment(monkeypatch):
    import torch

    from bench.commands.common import apply_threads
    from bench.errors import BenchError

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("BENCH_THREADS", raising=False)
        assert apply_threads(None) is None and torch.get_num_threads() == before
        assert apply_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("BENCH_THREADS", "2")
        assert apply_threads(None) == 2 and torch.get_num_threads() == 2
        assert apply_threads(1) == 1  # the option wins over the environment
        monkeypatch.setenv("BENCH_THREADS", "two")
        with pytest.raises(BenchError, match="BENCH_THREADS"):
            apply_threads(None)
        with pytest.raises(BenchError, match="at least 1"):
            apply_threads(0)
    finally:
        torch.set_num_threads(before)
