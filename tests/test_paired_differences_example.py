"""examples/paired_differences.py: the comparison bench reproduce uses, on the test or on the validation split."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from test_multibootstrap import records_of


def _example():
    path = Path(__file__).resolve().parents[1] / "examples" / "paired_differences.py"
    spec = importlib.util.spec_from_file_location("paired_differences_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_split_valid_reads_the_validation_scores(tmp_path, capsys):
    rng = np.random.default_rng(3)
    base = np.clip(rng.normal(0.5, 0.2, 100), 0, 1)
    # on test a beats b by 0.2; on validation b beats a by 0.2
    test = {"a": records_of("a", base, [0.2, 0.2, 0.2], rng=rng), "b": records_of("b", base, [0.0, 0.0, 0.0], rng=rng)}
    valid = {"a": records_of("a", base, [0.0, 0.0, 0.0], rng=rng), "b": records_of("b", base, [0.2, 0.2, 0.2], rng=rng)}
    for enc in ("a", "b"):
        for i, (t, v) in enumerate(zip(test[enc], valid[enc])):
            rec = {**t, "variant": enc, "valid_metrics": v["metrics"], "valid_confidence": v["confidence"]}
            (tmp_path / f"{enc}-{i}.json").write_text(json.dumps(rec))
    main = _example().main
    assert main([str(tmp_path), "t1", "a:b"]) == 0
    out = capsys.readouterr().out
    assert " test " in out and "favours" in out and "= +0.1" in out
    assert main(["--split", "valid", str(tmp_path), "t1", "a:b"]) == 0
    out = capsys.readouterr().out
    assert " valid " in out and "against" in out and "= -0.1" in out
    assert main(["--split", "tset", str(tmp_path), "t1", "a:b"]) == 2  # a typo is refused with the usage
