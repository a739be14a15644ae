"""Plugin discovery, isolation of broken plugins, registries, and the entry-point table."""

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench import hookimpl
from bench.errors import PluginError, UnknownNameError
from conftest import REPO, bench_cmd


def test_builtins_come_from_entry_points(fresh_plugins):
    enc = fresh_plugins.encoders()
    tasks = fresh_plugins.tasks()
    assert "logmel" in enc.names()
    assert "nsynth_pitch" in tasks.names()
    assert enc.get("logmel").plugin.distribution == "music-bench"


def test_every_module_with_hooks_is_in_the_entry_point_table():
    table = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["bench"]
    registered = {v.split(":")[0] for v in table.values()}
    mapping = {"plugins": "bench_plugins", "tasks": "bench_tasks"}
    missing = []
    for folder, pkg in mapping.items():
        for path in sorted((REPO / folder).glob("*.py")):
            tree = ast.parse(path.read_text())
            has_hook = any(
                isinstance(node, ast.FunctionDef) and node.name.startswith("register_")
                and any("hookimpl" in ast.unparse(d) for d in node.decorator_list)
                for node in tree.body
            )
            if has_hook and f"{pkg}.{path.stem}" not in registered:
                missing.append(f"{folder}/{path.name}")
    assert not missing, f"modules with hooks missing from [project.entry-points.bench]: {missing}"


def test_unknown_name_suggests_close_matches(fresh_plugins):
    with pytest.raises(UnknownNameError) as err:
        fresh_plugins.encoders().get("logmell")
    msg = str(err.value)
    assert "Did you mean 'logmel'" in msg and "Available encoders" in msg


class _DupPlugin:
    @staticmethod
    @hookimpl
    def register_encoders(register):
        register("logmel", "somewhere:Else")


def test_duplicate_names_name_both_plugins(fresh_plugins, capsys):
    fresh_plugins.load_plugins()
    fresh_plugins.pm.register(_DupPlugin(), name="dup-plugin")
    fresh_plugins.invalidate()
    with pytest.raises(PluginError) as err:
        fresh_plugins.encoders(strict=True)
    msg = str(err.value)
    assert "duplicate encoder name 'logmel'" in msg
    assert "'logmel'" in msg and "'dup-plugin'" in msg
    # not strict: reported and skipped, and everything else (bench list included) still works
    fresh_plugins.invalidate()
    reg = fresh_plugins.encoders(strict=False)
    assert "semisupcon" in reg.names() and reg.get("logmel").plugin.name == "logmel"
    assert "duplicate encoder name 'logmel'" in capsys.readouterr().err
    assert any("logmel" in f.stage for f in fresh_plugins.failures())


class _FakeEntryPoint:
    def __init__(self, name, module):
        self.name, self.value, self.dist, self._module = name, f"{name}_module", None, module

    def load(self):
        return self._module


def test_misspelled_or_missing_hook_is_reported_like_a_failed_import(fresh_plugins, monkeypatch, capsys):
    import importlib.metadata
    import types

    typo = types.ModuleType("typo_plugin")

    @hookimpl
    def register_encoder(register):  # the hook is register_encoders: this registers nothing
        register("never", "x:y")

    typo.register_encoder = register_encoder
    empty = types.ModuleType("empty_plugin")
    eps = [_FakeEntryPoint("typo", typo), _FakeEntryPoint("empty", empty)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: eps)
    fresh_plugins.load_plugins(strict=False)
    err = capsys.readouterr().err
    assert "'register_encoder' (did you mean 'register_encoders'?)" in err
    assert "defines no bench hook" in err
    assert {f.plugin.name for f in fresh_plugins.failures()} == {"typo", "empty"}
    assert fresh_plugins.pm.get_plugin("typo") is None  # unregistered, nothing half-loaded
    fresh_plugins.reset()
    with pytest.raises(PluginError, match="register_encoder"):
        fresh_plugins.load_plugins(strict=True)


class _RaisingHook:
    @staticmethod
    @hookimpl
    def register_tasks(register):
        raise RuntimeError("boom in hook")


def test_hook_that_raises_is_isolated_unless_strict(fresh_plugins, capsys):
    fresh_plugins.load_plugins()
    fresh_plugins.pm.register(_RaisingHook(), name="raiser")
    fresh_plugins.invalidate()
    assert "nsynth_pitch" in fresh_plugins.tasks(strict=False).names()
    assert "boom in hook" in capsys.readouterr().err
    fresh_plugins.invalidate()
    with pytest.raises(PluginError, match="raiser"):
        fresh_plugins.tasks(strict=True)


def test_lazy_target_import_error_names_plugin(fresh_plugins):
    fresh_plugins.load_plugins()

    class Lazy:
        @staticmethod
        @hookimpl
        def register_encoders(register):
            register("ghost", "no_such_module_xyz:Encoder")

    fresh_plugins.pm.register(Lazy(), name="lazy-plugin")
    fresh_plugins.invalidate()
    with pytest.raises(PluginError, match="ghost.*lazy-plugin.*no_such_module_xyz"):
        fresh_plugins.get_encoder("ghost")


def test_importing_plugins_does_not_import_torch():
    code = (
        "import sys; from bench import plugins; plugins.encoders(); plugins.tasks(); "
        "from bench.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "False", "torch imported while loading plugins / building the CLI"


def _pip_target(src: Path, target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(src)],
        check=True, capture_output=True, text=True,
    )


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory):
    """The example plugin and a deliberately broken one, installed for real with pip (no network)."""
    target = tmp_path_factory.mktemp("site")
    _pip_target(REPO / "examples" / "bench-example-plugin", target)
    _pip_target(REPO / "examples" / "bench-trainable-plugin", target)
    broken = tmp_path_factory.mktemp("broken-src")
    (broken / "bench_broken").mkdir()
    (broken / "bench_broken" / "__init__.py").write_text("import this_dependency_is_not_installed\n")
    (broken / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "bench-broken-plugin"\nversion = "9.9.9"\n'
        '[tool.setuptools]\npackages = ["bench_broken"]\n'
        '[project.entry-points.bench]\nbroken = "bench_broken"\n'
    )
    _pip_target(broken, target)
    return target


def test_example_plugin_installed_shows_in_list_and_broken_one_is_isolated(installed_plugins):
    res = bench_cmd("list", env={"PYTHONPATH": str(installed_plugins)})
    assert res.returncode == 0, res.stderr
    assert "example_randproj" in res.stdout
    assert "bench-example-plugin 0.1.0" in res.stdout
    assert "logmel" in res.stdout  # everything else still works
    assert "broken" in res.stderr and "bench-broken-plugin" in res.stderr and "9.9.9" in res.stderr
    assert "this_dependency_is_not_installed" in res.stderr


def test_strict_switch_makes_broken_plugin_fatal(installed_plugins):
    env = {"PYTHONPATH": str(installed_plugins)}
    res = bench_cmd("--strict-plugins", "list", env=env)
    assert res.returncode != 0
    assert "bench-broken-plugin" in res.stderr
    assert "Traceback" not in res.stderr
    res = bench_cmd("list", env={**env, "BENCH_STRICT_PLUGINS": "1"})
    assert res.returncode != 0


def test_example_plugin_runs_in_bench_run(installed_plugins, nsynth_tiny, tmp_path):
    res = bench_cmd("run", "--encoder", "example_randproj", "--tasks", "nsynth_pitch",
                    "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "out"), "--device", "cpu",
                    env={"PYTHONPATH": str(installed_plugins)})
    assert res.returncode == 0, res.stderr
    assert "example_randproj" in res.stdout
    assert (tmp_path / "out" / "records" / "example_randproj__nsynth_pitch__seed0.json").is_file()


def test_third_party_trainable_encoder_is_pretrained_and_evaluated(installed_plugins, nsynth_tiny, tmp_path):
    """The trainable contract is whole: a plugin's own loss, trained by bench pretrain, evaluated by bench run."""
    env = {"PYTHONPATH": str(installed_plugins), "BENCH_CACHE_DIR": str(tmp_path / "cache")}
    ckpt = tmp_path / "vicreg.safetensors"
    res = bench_cmd("pretrain", "--encoder", "example_vicreg", "-O", "width=16", "--steps", "2",
                    "--batch-size", "4", "--data-root", str(nsynth_tiny), "--out", str(ckpt), "--device", "cpu",
                    "--no-progress", env=env)
    assert res.returncode == 0, res.stderr
    assert "labeled pool: none" in res.stderr and "unlabeled pool: nsynth_pitch" in res.stderr
    run = json.loads((tmp_path / "vicreg.run" / "run.json").read_text())
    assert run["steps"] == 2 and run["config"]["width"] == 16
    # the checkpoint brings its options back through the base class's options_from_config
    res = bench_cmd("run", "--encoder", "example_vicreg", "--checkpoint", str(ckpt), "--tasks", "nsynth_pitch",
                    "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "a"), "--device", "cpu",
                    "--seeds", "0", "--probe-grid", "fast", env=env)
    assert res.returncode == 0, res.stderr
    rec = json.loads((tmp_path / "a" / "records" / "example_vicreg__nsynth_pitch__seed0.json").read_text())
    assert rec["encoder_config"]["width"] == 16 and rec["checkpoint"] == str(ckpt)
    assert rec["pretraining"]["steps"] == 2
    # with no checkpoint, bench run pretrains it on the data present (recipe options via -O) and caches it
    res = bench_cmd("run", "--encoder", "example_vicreg", "-O", "steps=2", "-O", "batch_size=4", "--tasks",
                    "nsynth_pitch", "--data-root", str(nsynth_tiny), "--out", str(tmp_path / "b"), "--device", "cpu",
                    "--seeds", "0", "--probe-grid", "fast", env=env)
    assert res.returncode == 0, res.stderr
    rec = json.loads((tmp_path / "b" / "records" / "example_vicreg[batch_size=4,steps=2]__nsynth_pitch__seed0.json")
                     .read_text())
    assert rec["variant"] == "example_vicreg[batch_size=4,steps=2]"
    assert [s["task"] for s in rec["pretraining"]["pools"]["unlabeled"]] == ["nsynth_pitch"]
    assert "Pretraining example_vicreg" in res.stderr
