"""Command-line habits for people: `bench list --json`, did-you-mean for options, near-miss data roots,
swapped `bench compare` arguments."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.cli import main


def bench(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return code, out.out, out.err


def test_list_json_parses_with_task_metadata(capsys):
    code, out, _ = bench(capsys, "list", "--json")
    assert code == 0
    data = json.loads(out)
    tasks = {t["name"]: t for t in data["tasks"]}
    assert {"gtzan", "mtat", "nsynth_pitch", "giantsteps_key"} <= set(tasks)
    g = tasks["gtzan"]
    assert g["kind"] == "multiclass" and g["splits"] == ["train", "valid", "test"]
    assert g["num_classes"] == 10 and "blues" in g["classes"] and g["primary_metric"] == "accuracy"
    assert g["download"] == "bench data download gtzan --to DIR" and g["licence"] and g["homepage"]
    assert tasks["nsynth_pitch"]["licence"] == "CC BY 4.0" and tasks["nsynth_pitch"]["num_classes"] == 88
    assert tasks["mtat"]["kind"] == "multilabel" and tasks["mtat"]["classes"] is None  # read from the data
    encoders = {e["name"]: e for e in data["encoders"]}
    assert {"logmel", "semisupcon"} <= set(encoders) and encoders["logmel"]["description"]
    assert data["plugin_failures"] == []


def test_list_json_imports_neither_torch_nor_numpy():
    code = ("import sys, io, contextlib\nfrom bench.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['list', '--json'])\n"
            "print('HEAVY=' + ','.join(m for m in ('torch', 'numpy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "HEAVY=\n" in out, out
