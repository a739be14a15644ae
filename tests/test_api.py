"""The Python API (bench.api, docs/api.md): evaluate, load_results, and a cheap ``import bench``."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bench
from bench.errors import BenchError

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_import_bench_imports_neither_torch_nor_pandas():
    code = ("import sys, bench; assert callable(bench.evaluate) and callable(bench.load_results); "
            "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        bench.no_such_thing  # noqa: B018


def test_docs_example_runs_on_tiny_data(nsynth_tiny, tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/api.md lost its python example"
    code = blocks[0].replace('"~/datasets"', repr(str(nsynth_tiny)))
    assert code != blocks[0], "the example no longer names its data root as ~/datasets"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # the asserts in the example are the test
    captured = capsys.readouterr()
    assert "accuracy" in captured.out and captured.err == ""  # only what the example prints itself
    res = namespace["res"]
    assert set(res.table["metric"]) == {"accuracy", "pitch_class_accuracy"}
    assert res.table.loc[res.table["primary"], "lo"].notna().all()
    records = sorted((tmp_path / "my-results" / "records").glob("*.json"))
    assert [json.loads(f.read_text())["seed"] for f in records] == [0]
    assert (tmp_path / "my-results" / "leaderboard.md").is_file()


def test_bad_input_raises_bench_errors(tmp_path):
    with pytest.raises(BenchError, match="no_such_encoder"):
        bench.evaluate("no_such_encoder", "nsynth_pitch")
    with pytest.raises(BenchError, match="seed"):
        bench.evaluate("logmel", "nsynth_pitch", seeds=())
    with pytest.raises(BenchError, match="no such results"):
        bench.load_results(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no records"):
        bench.load_results(tmp_path / "empty")
