"""Each error of a run is printed once on stderr (when it happens), the exit status unchanged (2).

The failure summary at the end names the parts that failed without repeating their messages; a worker's
error reaches the terminal once, through its replayed log.
"""

from __future__ import annotations

import pytest

from bench import hookimpl
from bench.cli import main
from bench.encoder import Encoder


class _Raises(Encoder):
    name, sample_rate, window, dim = "raises_once", 16000, 16000, 4

    def embed(self, waveforms):
        raise RuntimeError("plugin bug in embed 7f3a")


class _Plugins:
    @staticmethod
    @hookimpl
    def register_encoders(register):
        register("raises_once", _Raises)


def _bench(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return code, out.err


def test_a_failing_plugin_is_reported_once_and_named_in_the_summary(fresh_plugins, capsys, nsynth_tiny, tmp_path):
    fresh_plugins.load_plugins()
    fresh_plugins.pm.register(_Plugins(), name="raises-once")
    fresh_plugins.invalidate()
    code, err = _bench(capsys, "run", "-e", "raises_once,logmel", "-t", "nsynth_pitch", "--data-root",
                       str(nsynth_tiny), "--out", str(tmp_path / "o"), "--seeds", "0", "--probe-grid", "fast")
    assert code == 2
    assert err.count("plugin bug in embed 7f3a") == 1, err
    assert "1 part(s) of the run failed, each with its error above" in err
    assert err.rstrip().endswith("raises_once x nsynth_pitch")  # the summary names the part


def test_a_corrupt_checkpoint_file_is_reported_once(capsys, nsynth_tiny, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00not a safetensors file")
    code, err = _bench(capsys, "run", "-e", "random", "-t", "nsynth_pitch", "--checkpoint", str(bad),
                       "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "o"), "--seeds", "0")
    assert code == 2
    assert err.count("is not a readable safetensors file") == 1, err
    assert err.count(str(bad)) == 1, err


@pytest.mark.slow
def test_a_worker_jobs_error_reaches_the_terminal_once(capsys, nsynth_tiny, tmp_path):
    """Jobs in worker processes (``bench reproduce --jobs 2``): the failing job's error is in its worker's log,
    replayed once by the parent; the summary names the job without the message."""
    from bench.commands.common import report_failures
    from bench.config import DataRoots
    from bench.jobs import Job, JobSet, run_jobs
    from bench.settings import EvalSettings, RunConfig

    settings = EvalSettings(out=tmp_path / "o", data_roots=DataRoots(None, {"nsynth_pitch": str(nsynth_tiny)}),
                            seeds=(0,), probe_grid="fast", progress=False)
    jobs = [Job("bad", "random", {"preset": "nosuch"}, ("nsynth_pitch",), title="encoder bad"),
            Job("good", "logmel", {}, ("nsynth_pitch",))]
    failures: list[str] = []
    records, _ = run_jobs(jobs, JobSet(RunConfig(["random", "logmel"], ["nsynth_pitch"], settings)), workers=2,
                          threads=1, failures=failures)
    assert report_failures(failures, bool(records), "reproduction") == 2
    err = capsys.readouterr().err
    assert records and err.count("unknown SampleCNN preset 'nosuch'") == 1, err
    assert "1 part(s) of the reproduction failed" in err and err.rstrip().endswith("encoder bad")
