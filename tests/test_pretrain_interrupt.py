"""Ctrl-C during pretraining saves a resumable state and says so; the rerun resumes from that step (issue 27)."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from test_pretrain import make, state_of, train


def interrupting(at_call):
    """A SemiSupCon encoder that sends itself SIGINT (as Ctrl-C does) during its ``at_call``-th training loss."""
    from bench_plugins.ssl_encoders import SemiSupConEncoder

    class Interrupting(SemiSupConEncoder):
        calls = 0

        def pretrain_loss(self, *a, **kw):
            Interrupting.calls += 1
            if Interrupting.calls == at_call:
                os.kill(os.getpid(), signal.SIGINT)
            return super().pretrain_loss(*a, **kw)

    return Interrupting


OPTS = dict(label_task="tiny", unlabeled_tasks=("tiny",), augment=False, steps=300, checkpoint_every=100,
            log_every=50)


def test_sigint_at_step_55_of_300_saves_and_the_rerun_resumes_from_55(tiny_task, tmp_path):
    from bench.pretrain import PretrainingInterrupted
    from bench_plugins.ssl_encoders import SemiSupConEncoder

    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)  # default_int_handler; SIG_IGN where the suite runs in the background
    with pytest.raises(PretrainingInterrupted, match=r"interrupted at step 55 of 300.*resume from step 55"):
        train(make(interrupting(55), **OPTS), tiny_task, run)  # SIGINT during step 55: it finishes, then saves
    assert torch.load(run / "train-state.pt", weights_only=True)["step"] == 55  # not the last checkpoint (none)
    events = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events[-2:]] == ["checkpoint", "interrupted"] and events[-1]["step"] == 55
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
    r = train(make(SemiSupConEncoder, **OPTS), tiny_task, run, stop_after=56)  # one step is enough to see it
    assert r.record["resumed_from"] == 55 and r.steps == 56


def test_interrupted_and_resumed_ends_with_the_weights_of_a_run_never_interrupted(tiny_task, tmp_path):
    from bench.pretrain import PretrainingInterrupted
    from bench_plugins.ssl_encoders import SemiSupConEncoder

    opts = {**OPTS, "steps": 6}
    with pytest.raises(PretrainingInterrupted):
        train(make(interrupting(3), **opts), tiny_task, tmp_path / "run")
    resumed = make(SemiSupConEncoder, **opts)
    assert train(resumed, tiny_task, tmp_path / "run").record["resumed_from"] == 3
    straight = make(SemiSupConEncoder, **opts)
    train(straight, tiny_task, tmp_path / "straight")
    a, b = state_of(straight[0]), state_of(resumed[0])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_says_where_it_saved_and_that_the_rerun_resumes(tiny_task, tmp_path, monkeypatch, capsys):
    from bench import plugins
    from bench.cli import main

    cls = interrupting(3)
    monkeypatch.setattr(plugins, "get_encoder", lambda name, **o: cls(**o))
    args = ["pretrain", "--encoder", "semisupcon", "--preset", "tiny", "--label-task", "tiny", "--steps", "10",
            "--no-augment", "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "s.safetensors"),
            "--device", "cpu", "--no-progress", "-O", "unlabeled_tasks=tiny"]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert err.count("interrupted at step 3 of 10") == 1 and "resume from step 3" in err
    assert not (tmp_path / "s.safetensors").exists()
    cls.calls = -100  # no more Ctrl-C
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "resuming from step 3 of 10" in err


def test_stopped_before_its_first_step_leaves_no_run_folder(tiny_task, tmp_path):
    from bench_plugins.ssl_encoders import SemiSupConEncoder

    class StoppedEarly(SemiSupConEncoder):
        def setup_pretraining(self, labels):
            raise KeyboardInterrupt  # Ctrl-C while the pools are decoded, before any step

    with pytest.raises(KeyboardInterrupt):
        train(make(StoppedEarly, **OPTS), tiny_task, tmp_path / "run")
    assert not (tmp_path / "run").exists()
