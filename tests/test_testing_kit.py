"""The conformance kit: built-ins pass, each broken fixture plugin fails exactly its check, the CLI
reports it, the pytest plugin runs it, and `bench plugin new` writes a package that passes its own test."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from bench.errors import BenchError, UnknownNameError
from conftest import REPO, bench_cmd

FIXTURES = REPO / "tests" / "fixtures" / "bench-broken-plugins"

#: (kind, name, the one check it breaks)
BROKEN = [
    ("encoder", "bad_create", "create"),
    ("encoder", "bad_attributes", "attributes"),
    ("encoder", "bad_to_eval", "to_eval"),
    ("encoder", "bad_embed_shape", "embed_shape"),
    ("encoder", "bad_dtype", "embed_shape"),
    ("encoder", "bad_finite", "finite"),
    ("encoder", "bad_deterministic", "deterministic"),
    ("encoder", "bad_batch_invariance", "batch_invariance"),
    ("encoder", "bad_config_json", "config_json"),
    ("encoder", "bad_config_stable", "config_stable"),
    ("encoder", "bad_checkpoint_roundtrip", "checkpoint_roundtrip"),
    ("encoder", "bad_options_from_config", "options_from_config"),
    ("encoder", "bad_import_without_torch", "import_without_torch"),
    ("task", "bad_task_create", "create"),
    ("task", "bad_task_import_without_torch", "import_without_torch"),
    ("task", "bad_task_demo", "demo"),
    ("task", "bad_task_loader", "loader"),
    ("task", "bad_task_splits_disjoint", "splits_disjoint"),
    ("task", "bad_task_labels", "labels"),
    ("task", "bad_task_metrics", "metrics"),
]


def pip_target(src: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(src)], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    """The broken fixture plugins, installed for real with pip (no network)."""
    target = tmp_path_factory.mktemp("broken-site")
    pip_target(FIXTURES, target)
    return target


@pytest.fixture
def broken(broken_site, monkeypatch, fresh_plugins):
    """The registries with the broken fixture plugins installed (on sys.path, as an installed package is)."""
    monkeypatch.syspath_prepend(str(broken_site))
    fresh_plugins.reset()
    return broken_site


# -- the built-ins pass, through the pytest plugin as a plugin author would use it --------------------

# The SampleCNN encoders with the test suite's tiny preset (tests/conftest.py; the demo preset's
# network is the same code, 20x the compute); `bench plugin check random` checks the demo preset.
@pytest.mark.bench_encoder("logmel")
@pytest.mark.bench_encoder("random", preset="tiny")
@pytest.mark.bench_encoder("semisupcon", preset="tiny")
@pytest.mark.bench_encoder("simclr", preset="tiny")
@pytest.mark.bench_encoder("supervised", preset="tiny")
@pytest.mark.bench_task("nsynth_pitch")
@pytest.mark.bench_task("nsynth_instrument")
@pytest.mark.bench_task("emomusic")
@pytest.mark.bench_task("mtg_jamendo_genre")
@pytest.mark.bench_task("mtg_jamendo_instrument")
@pytest.mark.bench_task("mtg_jamendo_top50")
@pytest.mark.bench_task("gtzan")
@pytest.mark.bench_task("mtat")
@pytest.mark.bench_task("giantsteps_key")
def test_builtin_conformance(bench_check):
    bench_check.assert_ok()


NO_DEMO = {"mtg_jamendo_moodtheme", "vocalset_singer", "vocalset_technique"}  # their own test files


def test_every_builtin_is_covered_above(fresh_plugins):
    """A new built-in encoder or task must be added to test_builtin_conformance (hf: tests/test_hf.py).

    Tasks with no demo data (nothing to render truthfully) cannot run the kit; their loaders are tested on
    real-format fixtures in their own test files."""
    marks = {m.args[0] for m in test_builtin_conformance.pytestmark} | NO_DEMO
    missing = [n for n in fresh_plugins.encoders().names() + fresh_plugins.tasks().names()
               if n not in marks and n != "hf"]
    assert not missing, f"built-ins without a conformance test: {missing}"


# -- each broken fixture fails exactly its check, saying what and how to fix --------------------------

@pytest.mark.parametrize("kind,name,check", BROKEN, ids=[b[1] for b in BROKEN])
def test_broken_fixture_fails_its_check(broken, kind, name, check):
    from bench.testing import check_encoder, check_task

    report = check_encoder(name) if kind == "encoder" else check_task(name)
    failed = [c.name for c in report.failures]
    assert failed == [check], report.format()
    c = report.get(check)
    assert c.message and c.fix, report.format()
    with pytest.raises(AssertionError, match=check):
        report.assert_ok()


@pytest.mark.parametrize("kind,name", [("encoder", "good_encoder"), ("task", "good_task")])
def test_unbroken_fixtures_pass_every_check(broken, kind, name):
    from bench.testing import ENCODER_CHECKS, TASK_CHECKS, check_encoder, check_task

    report = check_encoder(name) if kind == "encoder" else check_task(name)
    assert report.ok, report.format()
    assert [c.name for c in report.checks] == list(ENCODER_CHECKS if kind == "encoder" else TASK_CHECKS)
    ran = {c.name for c in report.checks if c.status != "skip"}
    assert ran >= set(ENCODER_CHECKS if kind == "encoder" else TASK_CHECKS) - {"options_from_config"}


def test_check_encoder_takes_a_class_and_an_instance(broken):
    from bench_broken.encoders import BadBatchInvariance, GoodEncoder

    from bench.testing import check_encoder

    assert check_encoder(GoodEncoder, {"seed": 3}).ok
    report = check_encoder(BadBatchInvariance())
    assert [c.name for c in report.failures] == ["batch_invariance"]
    assert report.get("import_without_torch").status == "skip"  # no module given for a class


def test_example_plugin_conforms(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "examples" / "bench-example-plugin" / "src"))
    from bench_example import RandomProjectionEncoder

    from bench.testing import check_encoder

    report = check_encoder(RandomProjectionEncoder, module="bench_example")
    assert report.ok, report.format()
    assert report.get("import_without_torch").status == "pass"


# -- the command line ---------------------------------------------------------------------------------

def plugin_cli(*argv):
    from bench.commands import plugin

    parser = argparse.ArgumentParser(prog="bench")
    plugin.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["plugin", *argv])
    return args.func(args)


def test_cli_check_reports_and_exits_1_on_failure(broken, capsys):
    assert plugin_cli("check", "good_encoder", "bad_embed_shape") == 1
    out = capsys.readouterr().out
    assert "FAIL  embed_shape" in out and "squeeze()" in out and "fix:" in out
    assert "1 of 2 passed every check; failed: encoder bad_embed_shape (embed_shape)" in out
    assert plugin_cli("check", "good_encoder", "good_task", "-O", "good_encoder:seed=2") == 0
    assert "windows/s" in capsys.readouterr().out
    # an encoder that cannot be built from the options given is bad input: exit 2, the reason printed
    assert plugin_cli("check", "bad_options_from_config", "-O", "colour=red") == 2
    assert "unexpected keyword argument 'colour'" in capsys.readouterr().out


def test_cli_check_names_a_plugin_or_an_unknown_name(broken):
    from bench.testing import resolve_names

    assert resolve_names(["ssl_encoders"]) == [("encoder", n) for n in ("random", "semisupcon", "simclr",
                                                                         "supervised")]
    with pytest.raises(UnknownNameError, match="Did you mean 'good_encoder'"):
        resolve_names(["good_encodr"])


def test_bench_plugin_check_subprocess(broken_site):
    """`bench plugin check` as a user runs it (once the lead wires bench/commands into bench.cli)."""
    from bench.cli import build_parser

    verbs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert "plugin" in verbs
    res = bench_cmd("plugin", "check", "logmel", "bad_finite", env={"PYTHONPATH": str(broken_site)})
    assert res.returncode == 1, res.stderr
    assert "FAIL  finite" in res.stdout and "encoder 'logmel'" in res.stdout
    assert bench_cmd("plugin", "check", "no_such_thing").returncode == 2


# -- the pytest plugin ----------------------------------------------------------------------------------

def run_pytest(folder: Path, pythonpath: Path | None = None):
    env = {"PYTHONPATH": str(pythonpath)} if pythonpath else {}
    import os

    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                          capture_output=True, text=True, cwd=folder, env={**os.environ, **env}, timeout=600)


def test_pytest_plugin_reports_a_broken_check_by_name(broken_site, tmp_path):
    (tmp_path / "test_mine.py").write_text(
        "import pytest\nfrom bench_broken.encoders import GoodEncoder\n\n\n"
        "@pytest.mark.bench_encoder('bad_finite')\n"
        "def test_bench_conformance(bench_check):\n    bench_check.assert_ok()\n\n\n"
        "@pytest.mark.bench_encoder(GoodEncoder, seed=1)\n@pytest.mark.bench_task('good_task')\n"
        "def test_good(bench_check):\n    bench_check.assert_ok()\n")
    res = run_pytest(tmp_path, broken_site)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "test_bench_conformance[bad_finite:finite]" in res.stdout
    assert "log(x + eps)" in res.stdout
    # bad_finite: finite fails, the other 12 pass (none depends on finite); GoodEncoder as a class: 12 pass,
    # import_without_torch skips (no module given); good_task: 7 pass.
    assert "1 failed, 31 passed, 1 skipped" in res.stdout, res.stdout
    (tmp_path / "test_mine.py").write_text("def test_bench_conformance(bench_check):\n    pass\n")
    res = run_pytest(tmp_path, broken_site)
    assert res.returncode != 0 and "needs a @pytest.mark.bench_encoder" in res.stdout + res.stderr


# -- bench plugin new -----------------------------------------------------------------------------------

def test_new_plugin_installs_and_passes_its_own_test(tmp_path, capsys):
    out = tmp_path / "bench-my-enc"
    assert plugin_cli("new", "my-enc", "--out", str(out)) == 0
    assert "pyproject.toml" in capsys.readouterr().out
    site = tmp_path / "site"
    pip_target(out, site)
    res = run_pytest(out, site)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "passed" in res.stdout and "failed" not in res.stdout
    assert "encoder 'my_enc':" in res.stdout and "windows/s" in res.stdout  # speed in the summary
    res = bench_cmd("list", env={"PYTHONPATH": str(site)})
    assert "my_enc" in res.stdout and "bench-my-enc 0.1.0" in res.stdout


def test_new_plugin_refuses_bad_names_and_existing_folders(tmp_path):
    from bench.scaffold import new_plugin

    with pytest.raises(BenchError, match="lowercase"):
        new_plugin("My Encoder", tmp_path / "x")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    with pytest.raises(BenchError, match="not empty"):
        new_plugin("fine", tmp_path / "taken")
    assert (tmp_path / "taken" / "file").read_text() == "mine"
