"""Hostile input at the command line and inside a run: a clear message and exit 2, and the run goes on.

The data-side cases (corrupt files, cache poisoning, the CI gate) are in test_hostile.py.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from bench import hookimpl
from bench.cli import main
from bench.encoder import Encoder


def bench(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return code, out.out, out.err


@pytest.mark.parametrize("device,words", [("banana", "is not a device"), ("cuda:x", "is not a device")])
def test_bad_device_is_refused(capsys, tmp_path, device, words):
    code, _, err = bench(capsys, "run", "-e", "logmel", "-t", "nsynth_pitch", "--device", device,
                         "--out", str(tmp_path))
    assert code == 2 and words in err and "auto, cpu, cuda" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("verb", [["run", "-e", "logmel", "-t", "nsynth_pitch"], ["pretrain", "-e", "simclr"]])
def test_cuda_without_a_gpu_is_refused_not_silently_cpu(capsys, tmp_path, verb):
    code, _, err = bench(capsys, *verb, "--device", "cuda", "--out", str(tmp_path / "o"))
    assert code == 2 and "sees no CUDA GPU" in err


def test_out_that_is_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err = bench(capsys, "run", "-e", "logmel", "-t", "nsynth_pitch", "--out", str(tmp_path / "file"))
    assert code == 2 and "is a file" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_out_that_cannot_be_written_is_refused(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    code, _, err = bench(capsys, "run", "-e", "logmel", "-t", "nsynth_pitch", "--out", str(locked / "x"))
    assert code == 2 and "cannot write there" in err


@pytest.mark.parametrize("seeds,words", [("99999999999999999999", "outside"), ("0,0,1", "more than once"),
                                         ("a,b", "whole numbers"), (",", "empty")])
def test_bad_seeds_are_refused(capsys, tmp_path, seeds, words):
    code, _, err = bench(capsys, "run", "-e", "logmel", "-t", "nsynth_pitch", "--seeds", seeds, "--out", str(tmp_path))
    assert code == 2 and words in err


def test_unknown_option_scope_and_task_root_get_did_you_mean(capsys, tmp_path):
    code, _, err = bench(capsys, "run", "-e", "semisupcon", "-t", "gtzan", "-O", "semisupcn:tau=0.2",
                         "--out", str(tmp_path))
    assert code == 2 and "Did you mean 'semisupcon'" in err
    code, _, err = bench(capsys, "run", "-e", "logmel", "-t", "gtzan", "--data-root", f"gtzann={tmp_path}",
                         "--out", str(tmp_path))
    assert code == 2 and "'gtzann' is not a task" in err and "Did you mean 'gtzan'" in err


@pytest.mark.parametrize("option,words", [
    ("n_mel=64", "encoder 'logmel' takes no options"),
])
def test_an_option_the_encoder_does_not_have_is_refused_not_recorded(capsys, nsynth_tiny, tmp_path, option, words):
    code, _, err = bench(capsys, "run", "-e", "logmel", "-t", "nsynth_pitch", "-O", option, "--data-root",
                         str(nsynth_tiny), "--out", str(tmp_path / "o"))
    assert code == 2 and words in err
    assert not (tmp_path / "o" / "records").exists()
    assert "No records were written" in err and "Records written to" not in err


def test_nonsense_values_of_encoder_and_recipe_options_are_refused(capsys, nsynth_tiny, tmp_path):
    for option, words in (("seed=abc", "seed='abc' is not a whole number"),
                          ("steps=0", "steps=0 must be at least 1"),
                          ("lr=-1", "lr=-1.0 must be positive"),
                          ("labeled_mix=sideways", "'step' or 'row'"),
                          ("tau=zero", "tau='zero' is not a number"),
                          ("stepz=10", "Did you mean 'steps'")):
        code, _, err = bench(capsys, "run", "-e", "semisupcon", "-t", "nsynth_pitch", "-O", option,
                             "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "o"))
        assert code == 2 and words in err, (option, err)


def test_recipe_options_given_as_text_are_lists_not_characters(tmp_path):
    from bench.encoder import Recipe

    r = Recipe(steps=1, batch_size=2, lr=1e-3).replace(unlabeled_tasks="nsynth_pitch", unlabeled_dirs="/some/music")
    assert r.unlabeled_tasks == ("nsynth_pitch",) and r.unlabeled_dirs == ("/some/music",)
    r = r.replace(unlabeled_tasks="nsynth_pitch, gtzan", augment="false", steps="7")
    assert r.unlabeled_tasks == ("nsynth_pitch", "gtzan") and r.augment is False and r.steps == 7
    assert r.replace(unlabeled_tasks="none").unlabeled_tasks is None


def test_a_recipe_option_for_a_frozen_encoder_is_refused(capsys, nsynth_tiny, tmp_path):
    code, _, err = bench(capsys, "run", "-e", "random", "-t", "nsynth_pitch", "-O", "steps=5",
                         "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "o"))
    assert code == 2 and "is not trainable" in err


class _Raises(Encoder):
    name, sample_rate, window, dim = "raises_in_embed", 16000, 16000, 4

    def embed(self, waveforms):
        raise RuntimeError("plugin bug in embed")


class _RaisesInInit(Encoder):
    name, sample_rate, window, dim = "raises_in_init", 16000, 16000, 4

    def __init__(self, **options):
        raise ZeroDivisionError("plugin bug in __init__")


class _BuggyPlugins:
    @staticmethod
    @hookimpl
    def register_encoders(register):
        register("raises_in_embed", _Raises)
        register("raises_in_init", _RaisesInInit)


def test_a_plugin_that_raises_does_not_end_the_run(fresh_plugins, capsys, nsynth_tiny, tmp_path):
    fresh_plugins.load_plugins()
    fresh_plugins.pm.register(_BuggyPlugins(), name="buggy")
    fresh_plugins.invalidate()
    out = tmp_path / "out"
    code, stdout, err = bench(capsys, "run", "-e", "raises_in_embed,raises_in_init,logmel", "-t", "nsynth_pitch",
                              "--data-root", str(nsynth_tiny), "--out", str(out), "--seeds", "0",
                              "--probe-grid", "fast")
    assert code == 2
    assert "raises_in_embed x nsynth_pitch: RuntimeError: plugin bug in embed" in err
    assert "encoder raises_in_init: ZeroDivisionError: plugin bug in __init__" in err
    assert (out / "records" / "logmel__nsynth_pitch__seed0.json").is_file()  # the rest ran
    assert "logmel" in (out / "leaderboard.md").read_text()
    log = (out / "errors.log").read_text()
    assert "Traceback" in log and "plugin bug in embed" in log


def test_checkpoint_whose_metadata_is_not_json_or_whose_tensors_do_not_fit(capsys, nsynth_tiny, tmp_path):
    from safetensors.torch import save_file

    from bench_plugins.ssl_encoders import RandomEncoder
    from bench.weights import save_checkpoint

    bad_json = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad_json), metadata={"encoder": "random", "config": "{not json"})
    code, _, err = bench(capsys, "run", "-e", "random", "-t", "nsynth_pitch", "--checkpoint", str(bad_json),
                         "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "o"))
    assert code == 2 and "metadata 'config' is not JSON" in err
    not_object = tmp_path / "list.safetensors"
    save_file({"x": torch.zeros(1)}, str(not_object), metadata={"encoder": "random", "config": "[1, 2]"})
    code, _, err = bench(capsys, "run", "-e", "random", "-t", "nsynth_pitch", "--checkpoint", str(not_object),
                         "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "o"))
    assert code == 2 and "expected a JSON object" in err
    good = save_checkpoint(RandomEncoder(), tmp_path / "good.safetensors")
    meta = json.loads(json.dumps(RandomEncoder().config()))
    save_file({"encoder.stem.0.weight": torch.zeros(3)}, str(tmp_path / "wrong.safetensors"),
              metadata={"encoder": "random", "config": json.dumps(meta)})
    code, _, err = bench(capsys, "run", "-e", "random", "-t", "nsynth_pitch", "--checkpoint",
                         str(tmp_path / "wrong.safetensors"), "--data-root", str(nsynth_tiny), "--out",
                         str(tmp_path / "o"))
    assert code == 2 and "tensors do not fit encoder 'random'" in err
    assert good.is_file()


def test_a_reader_that_closes_stdout_early_gets_no_traceback():
    """`bench list | head -1`: the pipe closes before bench writes; a quiet exit 1, not a BrokenPipeError trace."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # long before the child has imported bench and printed
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
