"""Leaderboard and confidence intervals: numbers, marks, refusals, output files."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from bench import confidence as CI
from bench import leaderboard as L
from bench.errors import BenchError
from bench.results import SCHEMA_VERSION, new_record, write_record


def make_record(encoder="a", task="t1", seed=0, value=0.5, demo=True, fingerprint="fp", weights="w",
                values=None, primary="accuracy", extra=None, created=None):
    vals = values if values is not None else list(np.clip(value + np.linspace(-0.05, 0.05, 50), 0, 1))
    rec = new_record(
        encoder=encoder, task=task, seed=seed, primary_metric=primary,
        metrics={primary: value, **(extra or {})},
        confidence={"metric": primary, "value": value, "lo": float(np.percentile(vals, 2.5)),
                    "hi": float(np.percentile(vals, 97.5)), "seed": CI.BOOT_SEED, "n_boot": len(vals),
                    "values": [float(v) for v in vals]},
        demo_data=demo, encoder_config={"name": encoder}, weights_hash=weights, data={"fingerprint": fingerprint},
    )
    if created:
        rec["created"] = created
    return rec


# -- bootstrap ---------------------------------------------------------------------------------------------


def test_vectorised_auc_and_ap_match_scikit_learn_on_resamples_with_ties():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(1)
    n = 80
    y = (rng.random(n) < 0.3).astype(float)
    s = np.round(rng.random(n), 1)  # many ties
    idx, W = CI.resample_counts(n, 25, seed=5)
    auc = CI.weighted_roc_auc(y, s, W)
    ap = CI.weighted_average_precision(y, s, W)
    for b in range(25):
        yb, sb = y[idx[b]], s[idx[b]]
        if 0 < yb.sum() < n:
            assert auc[b] == pytest.approx(roc_auc_score(yb, sb), abs=1e-12)
            assert ap[b] == pytest.approx(average_precision_score(yb, sb), abs=1e-12)


def _whole_matrix_resamples(n, n_boot, seed):
    """The resampling as it was before blocks: one [B, n] draw and one flat bincount."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    flat = (np.arange(n_boot)[:, None] * n + idx).ravel()
    return idx, np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


@pytest.mark.parametrize("n", [1, 7, 347, 1000])
def test_resample_blocks_are_the_rows_of_the_whole_draw(n):
    idx, W = _whole_matrix_resamples(n, 250, CI.BOOT_SEED)
    blocks = list(CI.resample_blocks(n, 250, CI.BOOT_SEED, block=64))
    assert [len(b[0]) for b in blocks] == [64, 64, 64, 58]
    assert np.array_equal(np.concatenate([b[0] for b in blocks]), idx)
    assert np.array_equal(np.concatenate([b[1] for b in blocks]), W)
    got_idx, got_W = CI.resample_counts(n, 250, CI.BOOT_SEED)
    assert np.array_equal(got_idx, idx) and np.array_equal(got_W, W)


def test_bootstrap_in_blocks_gives_the_values_of_the_whole_matrix():
    from bench import metrics

    rng = np.random.default_rng(3)
    n, c = 300, 12
    y = (rng.random((n, c)) < 0.2).astype(float)
    s = np.round(rng.random((n, c)) + 0.3 * y, 2)
    idx, W = _whole_matrix_resamples(n, CI.N_BOOT, CI.BOOT_SEED)
    auc = CI.bootstrap(lambda a, b: {"roc_auc": metrics.METRICS["roc_auc"](a, b)}, y, s, "roc_auc")
    assert auc["strategy"].startswith("vectorised")
    want = CI._macro_weighted(CI.weighted_roc_auc, y, s, W)
    assert auc["values"] == [CI._round(v) for v in want]
    lab = rng.integers(0, 4, n)
    logits = rng.random((n, 4))
    acc = CI.bootstrap(lambda a, b: {"accuracy": metrics.accuracy(a, b)}, lab, logits, "accuracy")
    per = (logits.argmax(1) == lab).astype(float)
    assert acc["strategy"] == "mean of per-track values"
    assert acc["values"] == [CI._round(v) for v in W @ per / n]
    # a scorer that needs the whole set: every resample through it, the same tracks
    med = CI.bootstrap(lambda a, b: {"m": float(np.median(b[np.arange(len(a)), a]))}, lab, logits, "m", n_boot=150)
    assert med["strategy"] == "task scorer on each resample"
    assert med["values"] == [CI._round(float(np.median(logits[idx[k], lab[idx[k]]]))) for k in range(150)]


def test_bootstrap_strategies_and_interval():
    from bench import metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    s = rng.random((200, 3))
    s[np.arange(200)[:150], y[:150]] += 1  # 75%-ish accuracy
    r = CI.bootstrap(lambda a, b: {"accuracy": metrics.accuracy(a, b)}, y, s, "accuracy", n_boot=300)
    assert r["strategy"] == "mean of per-track values" and r["n_boot"] == 300
    assert r["lo"] < r["value"] < r["hi"] and r["hi"] - r["lo"] < 0.2
    again = CI.bootstrap(lambda a, b: {"accuracy": metrics.accuracy(a, b)}, y, s, "accuracy", n_boot=300)
    assert again["values"] == r["values"]  # fixed resamples: paired across seeds, reproducible
    # a metric that is not a mean over tracks: each resample is rescored
    med = CI.bootstrap(lambda a, b: {"m": float(np.median(b[:, 0]))}, y, s, "m", n_boot=50)
    assert med["strategy"] == "task scorer on each resample" and med["n_boot"] == 50
    yl = (rng.random((150, 4)) < 0.3).astype(float)
    sl = rng.random((150, 4)) + yl * 0.5
    ml = CI.bootstrap(lambda a, b: {"roc_auc": metrics.roc_auc(a, b)}, yl, sl, "roc_auc", n_boot=200)
    assert ml["strategy"] == "vectorised macro roc_auc" and ml["lo"] < ml["value"] < ml["hi"]


def test_pooled_interval_is_percentile_of_seed_averages():
    v1 = list(np.linspace(0.4, 0.6, 101))
    v2 = list(np.linspace(0.5, 0.7, 101))
    cis = [{"seed": 1, "values": v1, "lo": 0.405, "hi": 0.595}, {"seed": 1, "values": v2, "lo": 0.505, "hi": 0.695}]
    lo, hi, how = CI.pooled_interval(cis)
    ref = np.percentile((np.array(v1) + np.array(v2)) / 2, [2.5, 97.5])
    assert (lo, hi) == pytest.approx(tuple(ref)) and how.startswith("pooled")
    cis[1] = {k: v for k, v in cis[1].items() if k != "values"}
    lo, hi, how = CI.pooled_interval(cis)
    assert (lo, hi) == pytest.approx((0.455, 0.645)) and how == "mean of per-seed intervals"


# -- table ----------------------------------------------------------------------------------------------------


def records3():
    return [
        make_record("a", "t1", 0, 0.8), make_record("a", "t1", 1, 0.82),
        make_record("b", "t1", 0, 0.6), make_record("b", "t1", 1, 0.62),
        make_record("a", "t2", 0, 0.3, extra={"other": 0.9}), make_record("b", "t2", 0, 0.5, extra={"other": 0.1}),
    ]


def test_table_means_intervals_and_average_rank():
    df = L.table(records3())
    assert df.loc["a", "t1"] == pytest.approx(0.81)
    assert df.loc["a", "t1 lo"] < 0.81 < df.loc["a", "t1 hi"]
    assert df.loc["a", L.RANK_COL] == pytest.approx(1.5) and df.loc["b", L.RANK_COL] == pytest.approx(1.5)
    assert df.loc["b", "t2 other"] == pytest.approx(0.1)


def test_markdown_marks_best_and_says_demo():
    text = L.render(records3())
    assert L.DEMO_NOTE in text
    # separated intervals: the best is bold; a column without intervals (t2 other) is never bold (issue 27)
    assert "**0.8100 [" in text and "**0.5000 [" in text and "0.9000" in text and "**0.9000**" not in text
    assert "0.6100 [" in text and "**0.6100" not in text and L.BOLD_RULE in text


def test_mixed_demo_and_real_are_labelled_not_averaged():
    recs = [make_record("a", "t1", 0, 0.8, demo=True, fingerprint="d"),
            make_record("a", "t1", 0, 0.4, demo=False, fingerprint="r")]
    df = L.table(recs)
    assert set(df.index) == {"a", "a (demo data)"}
    assert df.loc["a", "t1"] == pytest.approx(0.4)
    assert "Mixed" in L.title(recs) and L.DEMO_NOTE not in L.title(recs)


def test_same_encoder_task_on_different_data_is_refused():
    recs = [make_record("a", "t1", 0, 0.8, fingerprint="x"), make_record("a", "t1", 1, 0.7, fingerprint="y")]
    with pytest.raises(BenchError, match="different data"):
        L.table(recs)


def test_other_schema_refused_and_variants_split_and_duplicates_keep_newest(capsys):
    bad = make_record()
    bad["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(BenchError, match="schema version"):
        L.table([bad])
    df = L.table([make_record("a", weights="w1"), make_record("a", weights="w2", value=0.1)])
    assert len(df) == 2 and all(i.startswith("a @") for i in df.index)
    df = L.table([make_record("a", value=0.1, created="2026-01-01T00:00:00"),
                  make_record("a", value=0.9, created="2026-02-01T00:00:00")])
    assert df.loc["a", "t1"] == pytest.approx(0.9) and "appears twice" in capsys.readouterr().err


def test_write_outputs_same_numbers_in_every_format(tmp_path):
    import pandas as pd

    files = L.write(records3(), tmp_path)
    assert set(files) == {"markdown", "csv", "json", "html", "png"}
    csv = pd.read_csv(files["csv"], index_col=0)
    doc = json.loads(files["json"].read_text())
    rows = {r["encoder"]: r for r in doc["rows"]}
    assert csv.loc["a", "t1"] == pytest.approx(rows["a"]["t1"]) == pytest.approx(0.81)
    assert doc["demo_data"] is True and doc["entries"] and doc["schema_version"] == SCHEMA_VERSION
    png = files["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    page = files["html"].read_text()
    assert base64.b64encode(png).decode() in page and "<b>0.8100 [" in page
    assert "DEMO DATA" in page and "http" not in page.replace("http-equiv", "")
    assert "**0.8100" in files["markdown"].read_text()


def test_second_write_reads_the_tables_back_without_pandas(tmp_path, monkeypatch):
    """The wide table's renderings are made once per set of rows (bench.render_cache): a rewrite of the same
    records gives the same files without building the table again; other numbers build it."""
    recs = records3()  # the same records (the HTML's provenance block shows when they were made)
    first = {k: p.read_bytes() for k, p in L.write(recs, tmp_path / "a").items() if k != "json"}

    def boom(*a, **k):
        raise AssertionError("the table was built again")

    from bench import leaderboard_tables

    monkeypatch.setattr(leaderboard_tables, "wide", boom)
    again = {k: p.read_bytes() for k, p in L.write(recs, tmp_path / "b").items() if k != "json"}
    assert again == first
    assert L.render(records3()).count("**0.8100") == 1
    with pytest.raises(AssertionError, match="built again"):
        L.write([*records3(), make_record("c", "t1", 0, 0.1)], tmp_path / "c")


def test_cli_leaderboard_merges_several_runs(tmp_path, capsys):
    from bench.cli import main

    for rec in records3():
        write_record(rec, tmp_path / ("run1" if rec["encoder"] == "a" else "run2") / "records")
    assert main(["leaderboard", str(tmp_path / "run1"), str(tmp_path / "run2"), "--out", str(tmp_path / "lb")]) == 0
    out = capsys.readouterr().out
    assert "| a " in out and "| b " in out and (tmp_path / "lb" / "leaderboard.html").is_file()


def test_metrics_module_matches_sklearn_macro_scores():
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    from bench import metrics

    rng = np.random.default_rng(1)
    y = (rng.random((60, 7)) < 0.3).astype(float)
    y[:, 6] = 0  # a class with no positive is left out of the macro average
    s = np.round(rng.random((60, 7)), 1)  # ties
    keep = [c for c in range(7) if 0 < y[:, c].sum() < 60]
    assert metrics.roc_auc(y, s) == pytest.approx(np.mean([roc_auc_score(y[:, c], s[:, c]) for c in keep]))
    assert metrics.average_precision(y, s) == pytest.approx(
        np.mean([average_precision_score(y[:, c], s[:, c]) for c in keep]))
