import atexit
import csv
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bench import hookimpl
from bench.task import Item, Split, Task

REPO = Path(__file__).resolve().parents[1]

# Hugging Face libraries (transformers for the hf encoder, datasets for the embedding cache) read
# these when imported: tests never download and never touch the user's hub cache.
_HF_HOME = tempfile.mkdtemp(prefix="bench-tests-hf-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ.update({"HF_HUB_OFFLINE": "1", "HF_HOME": _HF_HOME, "HF_HUB_CACHE": os.path.join(_HF_HOME, "hub"),
                   "HF_MODULES_CACHE": os.path.join(_HF_HOME, "modules")})


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Each test gets its own cache folder and no inherited data root or config."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))
    monkeypatch.setenv("BENCH_CONFIG", str(cache / "no-config.toml"))
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    monkeypatch.delenv("BENCH_STRICT_PLUGINS", raising=False)
    yield


@pytest.fixture(scope="session")
def nsynth_tiny(tmp_path_factory):
    """A tiny demo NSynth under a data root, built once per session."""
    from bench_tasks.nsynth import NSynthPitch

    root = tmp_path_factory.mktemp("nsynth-root")
    NSynthPitch().make_demo(root, size="tiny", seed=0)
    return root


@pytest.fixture
def fresh_plugins():
    """Reset the plugin manager before and after a test that registers plugins in-process."""
    from bench import plugins

    plugins.reset()
    yield plugins
    plugins.reset()


def write_wav(path: Path, seconds: float = 1.0, sr: int = 16000, freq: float = 440.0) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
    return path


def forget_results():
    """Delete the stored finished pairs (bench.run_memo), so a rerun exercises the embedding and probe caches."""
    from bench import run_memo

    shutil.rmtree(run_memo.root(), ignore_errors=True)


def bench_cmd(*args, env=None, cwd=None):
    """Run the bench CLI in a subprocess and return the CompletedProcess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=600)


# --- tiny SampleCNN preset and a tiny multilabel task (pretraining tests) ---

TINY = {
    "sample_rate": 4000,
    "window": 243,  # 3^5: stem -> 81, 4 pooled blocks -> 1
    "stem_channels": 4,
    "channels": (4, 8, 8, 8),
    "dim": 8,
    "proj_hidden": 8,
    "proj_dim": 4,
    "recipe": {"lr": 1e-3, "batch_size": 4, "views": 2, "steps": 4, "seed": 123,
               "checkpoint_every": 2, "log_every": 1},
}


@pytest.fixture(autouse=True)
def tiny_presets(monkeypatch, tmp_path):
    from bench_plugins import samplecnn

    monkeypatch.setitem(samplecnn.PRESETS, "tiny", TINY)
    monkeypatch.setitem(samplecnn.PRESETS, "tiny2", {**TINY, "channels": (4, 8, 8, 16)})


def write_wav_array(path: Path, x: np.ndarray, sr: int = 4000) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.astype(np.float32), sr, subtype="FLOAT")


class TinyTask(Task):
    """3-tag multilabel task: tiny/<split>/<id>.wav plus tiny/<split>.csv (id,tags)."""

    name = "tiny"
    kind = "multilabel"
    dataset_dirs = ("tiny",)
    primary_metric = "roc_auc"
    metrics = ("roc_auc",)

    def classes(self, data_root):
        return ["a", "b", "c"]

    def items(self, split, data_root):
        root = self.require_dir(data_root, "tiny")
        out = Split(split)
        with open(root / f"{split}.csv") as f:
            for tid, tags in csv.reader(f):
                out.items.append(Item(tid, str(root / split / f"{tid}.wav"),
                                      tuple(int(t) for t in tags.split()) if tags else ()))
        return out

    def make_demo(self, data_root, size="small", seed=0):
        make_tiny(Path(data_root), seed=seed)


def make_tiny(root: Path, n_train: int = 6, seed: int = 0, seconds: float = 0.5) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("valid", 2), ("test", 2)):
        rows = []
        for i in range(n):
            tid = f"{split}{i:03d}"
            t = np.arange(int(seconds * 4000)) / 4000
            x = 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.05 * rng.standard_normal(len(t))
            write_wav_array(root / "tiny" / split / f"{tid}.wav", x)
            rows.append([tid, " ".join(str(c) for c in sorted({i % 3, (i + 1) % 3} if i % 2 else {i % 3}))])
        with open(root / "tiny" / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)
    return root


class TinyClassTask(TinyTask):
    """2-class multiclass task on the tiny task's files: class = index of the track mod 2."""

    name = "tinyclass"
    kind = "multiclass"
    primary_metric = "accuracy"
    metrics = ("accuracy",)

    def classes(self, data_root):
        return ["even", "odd"]

    def items(self, split, data_root):
        out = Split(split)
        for it in TinyTask.items(self, split, data_root):
            out.items.append(Item(it.track_id, it.path, int(it.track_id[-3:]) % 2))
        return out


class _TinyClassPlugin:
    @hookimpl
    def register_tasks(self, register):
        register("tinyclass", TinyClassTask, description="tiny multiclass test task")


@pytest.fixture
def tiny_two_tasks(tiny_task):
    """The tiny task plus ``tinyclass`` (multiclass, same files): for several labeled tasks."""
    from bench import plugins

    plugins.pm.register(_TinyClassPlugin(), name="tinyclass-test-plugin")
    plugins.invalidate()
    try:
        yield tiny_task
    finally:
        plugins.pm.unregister(name="tinyclass-test-plugin")
        plugins.invalidate()


class _TinyPlugin:
    @hookimpl
    def register_tasks(self, register):
        register("tiny", TinyTask, description="tiny test task")


@pytest.fixture
def tiny_task(tmp_path):
    """Registers the tiny task in-process; yields its DataRoots (data in tmp_path/data)."""
    from bench import plugins
    from bench.config import DataRoots

    root = make_tiny(tmp_path / "data")
    plugin = _TinyPlugin()
    plugins.load_plugins()
    plugins.pm.register(plugin, name="tiny-test-plugin")
    plugins.invalidate()
    try:
        yield DataRoots(per_task={"tiny": str(root)})
    finally:
        plugins.pm.unregister(name="tiny-test-plugin")
        plugins.invalidate()


#: The tests that take 5 s or more on a developer's machine (``pytest --durations``, file by file), mostly
#: end-to-end runs: each gets the ``slow`` marker, so ``pytest -m "not slow"`` is the fast subset. Kept here
#: rather than as decorators so that one list says what the fast subset leaves out;
#: tests/test_structure.py checks that every name is still a test.
SLOW_TESTS = {
    "test_api.py": ("test_docs_example_runs_on_tiny_data",),
    "test_run_limit.py": ("test_limit_keeps_n_tracks_per_split_says_so_and_config_reruns_it",),
    "test_pretrain_seeds.py": ("test_run_pretrain_seeds_make_one_model_per_seed_and_one_pooled_row",
                               "test_reproduce_with_pretraining_seeds_pools_them_in_claims_and_report"),
    "test_run.py": ("test_run_writes_records_with_provenance_and_leaderboard",
                    "test_demo_data_is_built_once_and_tables_say_demo",
                    "test_encoder_breaking_contract_is_named_and_run_goes_on",
                    "test_corrupt_and_empty_audio_are_skipped_and_counted", "test_data_root_from_environment"),
    "test_experiments.py": ("test_reproduce_jobs_in_worker_processes_give_the_records_of_one_process",
                            "test_robustness_on_tiny_data_records_drops_skips_and_reuses"),
    "test_hostile_cli.py": ("test_a_plugin_that_raises_does_not_end_the_run",),
    "test_testing_kit.py": ("test_pytest_plugin_reports_a_broken_check_by_name",
                            "test_new_plugin_installs_and_passes_its_own_test"),
    "test_plugins.py": ("test_third_party_trainable_encoder_is_pretrained_and_evaluated",
                        "test_example_plugin_runs_in_bench_run",
                        "test_example_plugin_installed_shows_in_list_and_broken_one_is_isolated"),
    "test_shard.py": ("test_two_processes_write_the_records_of_one",),
    "test_run_memo.py": ("test_warm_rerun_does_not_import_torch",
                         "test_warm_rerun_writes_the_same_records_without_building_the_encoder"),
    "test_probe_cache.py": ("test_warm_run_trains_no_probe_and_writes_identical_records",),
    "test_probe.py": ("test_run_records_carry_grid_and_interval",),
    "test_hf.py": ("test_bench_run_with_a_local_model",),
    "test_gtzan.py": ("test_demo_is_deterministic",),
    "test_nsynth.py": ("test_demo_is_deterministic",),
    "test_sanity.py": ("test_shuffled_labels_sit_at_chance_and_real_labels_beat_them",),
    "test_launcher.py": ("test_reproduce_through_submitit_gives_the_report_of_a_local_run_and_a_rerun_collects",
                         "test_a_job_that_dies_is_a_named_failure_and_the_rerun_submits_it_again",
                         "test_sweep_through_submitit_writes_its_leaderboard",
                         "test_paper_scale_dry_run_end_to_end_on_tiny_stand_ins_locally_and_through_submitit"),
    "test_ddp.py": ("test_gather_and_sync_batchnorm_match_one_process",
                    "test_accelerate_launch_two_cpu_processes_match_single_process"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if getattr(item, "originalname", item.name) in SLOW_TESTS.get(item.path.name, ()):
            item.add_marker(pytest.mark.slow)
