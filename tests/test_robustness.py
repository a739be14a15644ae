"""Robustness analysis: paired drop intervals, the table from records, comparisons and the rendered outputs."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from bench import confidence, metrics, results
from bench import robustness as R
from bench.errors import BenchError

N_CLASSES = 5


def score_fn(y, s):
    return {"accuracy": metrics.accuracy(y, s)}


def predictions(y: np.ndarray, correct: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scores whose argmax is y where ``correct``, another class elsewhere."""
    wrong = (y + rng.integers(1, N_CLASSES, len(y))) % N_CLASSES
    pred = np.where(correct, y, wrong)
    s = rng.random((len(y), N_CLASSES)) * 0.5
    s[np.arange(len(y)), pred] += 1.0
    return s


def simulate(n: int, p_clean: float, p_flip: float, rng: np.random.Generator):
    """Clean predictions right with probability p_clean; the corruption breaks each right one with p_flip.
    Population drop of accuracy: p_clean * p_flip."""
    y = rng.integers(0, N_CLASSES, n)
    ok = rng.random(n) < p_clean
    ok_corr = ok & (rng.random(n) >= p_flip)
    return y, predictions(y, ok, rng), predictions(y, ok_corr, rng)


def test_paired_drop_covers_the_true_drop():
    rng = np.random.default_rng(0)
    p_clean, p_flip = 0.8, 0.25
    true_drop = p_clean * p_flip
    hits, widths, unpaired = 0, [], []
    for _ in range(40):
        y, c, k = simulate(200, p_clean, p_flip, rng)
        d = R.paired_drop(score_fn, y, c, k, "accuracy", n_boot=300)
        assert d["drop"] == pytest.approx(score_fn(y, c)["accuracy"] - score_fn(y, k)["accuracy"], abs=1e-6)
        assert d["method"] == R.PAIRED_SCORED and d["n_tracks"] == 200 and len(d["values"]) == 300
        hits += d["lo"] <= true_drop <= d["hi"]
        widths.append(d["hi"] - d["lo"])
        bc = confidence.bootstrap(score_fn, y, c, "accuracy", n_boot=300)
        bk = confidence.bootstrap(score_fn, y, k, "accuracy", n_boot=300)
        unpaired.append(2 * 1.96 * np.hypot(bc["se"], bk["se"]))
    assert hits / 40 >= 0.85  # nominal 95%
    # pairing removes the spread the two share: a much tighter interval than independent errors give
    assert np.mean(widths) < 0.8 * np.mean(unpaired)


def test_paired_drop_excludes_zero_for_a_large_drop_and_not_for_none():
    rng = np.random.default_rng(1)
    y, c, k = simulate(300, 0.8, 0.3, rng)
    big = R.paired_drop(score_fn, y, c, k, "accuracy", n_boot=300)
    assert big["lo"] > 0
    y, c, _ = simulate(300, 0.8, 0.0, rng)
    same = R.paired_drop(score_fn, y, c, c + 0.01 * rng.random(c.shape), "accuracy", n_boot=300)
    assert same["lo"] <= 0 <= same["hi"]


def test_paired_drop_multilabel_roc_auc_uses_the_vectorised_bootstrap():
    rng = np.random.default_rng(2)
    y = (rng.random((150, 4)) < 0.3).astype(float)
    clean = y + 0.6 * rng.standard_normal(y.shape)
    corr = y + 2.0 * rng.standard_normal(y.shape)

    def sf(yy, ss):
        return {"roc_auc": metrics.roc_auc(yy, ss)}

    d = R.paired_drop(sf, y, clean, corr, "roc_auc", n_boot=200, track_ids=[f"t{i}" for i in range(150)])
    assert d["lo"] > 0 and d["drop"] > 0.1
    assert d["tracks_digest"] == R.tracks_digest(f"t{i}" for i in range(150))


def test_paired_drop_refuses_misaligned_inputs():
    with pytest.raises(ValueError, match="differ in length"):
        R.paired_drop(score_fn, np.zeros(3, int), np.zeros((3, 5)), np.zeros((2, 5)), "accuracy")


def test_common_tracks():
    ci, ki = R.common_tracks(["a", "b", "c", "d"], ["d", "a", "c"])
    assert ci.tolist() == [0, 2, 3] and ki.tolist() == [1, 2, 0]


# --------------------------------------------------------------------------- records


def record(encoder, condition, seed, y, s, *, n_boot=200, variant=None, skipped=(), created="2026-01-01", **extra):
    ci = confidence.bootstrap(score_fn, y, s, "accuracy", n_boot=n_boot)
    rec = results.new_record(
        encoder=encoder, task="gtzan", seed=seed, primary_metric="accuracy", metrics=score_fn(y, s),
        confidence=ci, condition=condition, variant=variant,
        data={"fingerprint": "fp", "tracks": {"test": len(y)}, "skipped": {"test": [{"path": p} for p in skipped]}},
        **extra,
    )
    rec["created"] = created
    rec.setdefault("demo_data", True)
    return rec


def suite_records(flips: dict[str, dict[str, float]], n=240, seeds=(0, 1), with_drop=False, seed=3):
    """Records of several encoders: clean plus one record per condition, per probe seed."""
    rng = np.random.default_rng(seed)
    recs = []
    y = rng.integers(0, N_CLASSES, n)
    for enc, conds in flips.items():
        for s in seeds:
            ok = rng.random(n) < 0.8
            clean = predictions(y, ok, rng)
            recs.append(record(enc, "clean", s, y, clean))
            for cond, p in conds.items():
                corr = predictions(y, ok & (rng.random(n) >= p), rng)
                extra = {R.DROP_KEY: R.paired_drop(score_fn, y, clean, corr, "accuracy", n_boot=200)} if with_drop else {}
                recs.append(record(enc, cond, s, y, corr, **extra))
    return recs


def by(rows, **kw):
    out = [r for r in rows if all(r[k] == v for k, v in kw.items())]
    assert len(out) == 1, (kw, len(out))
    return out[0]


def test_table_pairs_the_records_resamples():
    recs = suite_records({"A": {"mp3@16": 0.3, "reverb@0.5": 0.0, "reverb@1": 0.1}})
    rows = R.table(recs)
    assert [r["condition"] for r in rows] == ["clean", "reverb@0.5", "reverb@1", "mp3@16"]  # registry, mild->harsh
    clean = by(rows, condition="clean")
    assert clean["drop"] is None and clean["lo"] < clean["value"] < clean["hi"] and clean["n_seeds"] == 2
    mp3 = by(rows, condition="mp3@16")
    vals = {(r["condition"], r["seed"]): r["metrics"]["accuracy"] for r in recs}
    expect = np.mean([vals[("clean", s)] - vals[("mp3@16", s)] for s in (0, 1)])
    assert mp3["drop"] == pytest.approx(expect)
    assert mp3["drop_method"] == R.PAIRED_RECORDS
    assert mp3["drop_lo"] > 0 and mp3["significant"] == "worse"
    assert mp3["corruption"] == "mp3" and mp3["strength"] == 16 and mp3["unit"] == "bitrate in kbit/s"
    assert mp3["drop_pct"] == pytest.approx(100 * mp3["drop"] / mp3["clean"])
    assert by(rows, condition="reverb@0.5")["significant"] == "n.s."


def test_table_prefers_the_drop_scored_at_scoring_time():
    rows = R.table(suite_records({"A": {"mp3@16": 0.3}}, with_drop=True))
    mp3 = by(rows, condition="mp3@16")
    assert mp3["drop_method"] == R.PAIRED_SCORED and mp3["drop_lo"] > 0


def test_table_falls_back_to_unpaired_when_the_tracks_differ():
    recs = suite_records({"A": {"mp3@16": 0.3}})
    paired = by(R.table(recs), condition="mp3@16")
    for r in recs:  # one test file skipped under the corruption: resamples no longer match
        if r["condition"] == "mp3@16":
            r["data"]["skipped"]["test"] = [{"path": "x.wav", "reason": "corruption failed"}]
    rows = R.table(recs)
    unpaired = by(rows, condition="mp3@16")
    assert unpaired["drop_method"] == R.UNPAIRED and unpaired["skipped"] == 1
    assert unpaired["drop"] == pytest.approx(paired["drop"])
    assert unpaired["drop_hi"] - unpaired["drop_lo"] > paired["drop_hi"] - paired["drop_lo"]
    assert "1 corrupted test track(s) were skipped" in R.to_markdown(rows)


def test_compare_and_summary_decide_which_encoder_is_more_robust():
    recs = suite_records({"A": {"mp3@16": 0.05, "reverb@1": 0.05, "augment@0": 0.0},
                          "B": {"mp3@16": 0.4, "reverb@1": 0.4, "augment@0": 0.0}})
    rows = R.table(recs)
    assert by(rows, encoder="A", condition="augment@0")["_identity"]
    cmp = {c["condition"]: c for c in R.compare(rows, "A", "B")}
    assert cmp["mp3@16"]["verdict"] == "A more robust" and cmp["mp3@16"]["method"] == "paired bootstrap over test tracks"
    assert cmp["mp3@16"]["diff"] == pytest.approx(cmp["mp3@16"]["drop_a"] - cmp["mp3@16"]["drop_b"])
    summ = R.summary(rows)
    a = by(summ, encoder="A")
    assert a["condition"] == "mean" and a["n_conditions"] == 2  # the identity condition is left out
    assert a["drop"] == pytest.approx(np.mean([by(rows, encoder="A", condition=c)["drop"] for c in ("mp3@16", "reverb@1")]))
    assert a["drop_method"].startswith("paired")
    assert R.compare(summ, "A", "B")[0]["verdict"] == "A more robust"
    per = R.summary(rows, by="corruption")
    assert {r["condition"] for r in per} == {"mp3:mean", "reverb:mean"}
    same = R.compare(R.table(suite_records({"A": {"mp3@16": 0.2}, "B": {"mp3@16": 0.2}}, seed=4)), "A", "B")
    assert same[0]["verdict"] == "inconclusive"


def test_labels_duplicates_and_bad_records():
    rng = np.random.default_rng(5)
    y, c, k = simulate(100, 0.8, 0.2, rng)
    recs = [record("semisupcon", "clean", 0, y, c, variant={"label_fraction": 0.05}),
            record("semisupcon", "mp3@16", 0, y, c, variant={"label_fraction": 0.05}, created="2026-01-01"),
            record("semisupcon", "mp3@16", 0, y, k, variant={"label_fraction": 0.05}, created="2026-02-01"),
            record("simclr", "mp3@16", 0, y, k)]
    recs[0].pop("condition")  # no condition = clean
    rows = R.table(recs)
    assert {r["encoder"] for r in rows} == {"semisupcon[label_fraction=0.05]", "simclr"}
    newest = by(rows, encoder="semisupcon[label_fraction=0.05]", condition="mp3@16")
    assert newest["value"] == pytest.approx(score_fn(y, k)["accuracy"])  # the newer duplicate won
    assert by(rows, encoder="simclr")["drop_method"] == "no clean records"
    other = record("simclr", "clean", 0, y, c)
    other["data"]["fingerprint"] = "another"
    with pytest.raises(BenchError, match="simclr on gtzan come from different data"):
        R.table(recs + [other])
    real = record("simclr", "clean", 0, y, c, demo_data=False)
    real["data"]["fingerprint"] = "another"
    assert {r["encoder"] for r in R.table(recs + [real])} == {
        "semisupcon[label_fraction=0.05] (demo data)", "simclr (demo data)", "simclr"}
    bad = dict(recs[0], schema_version=999)
    with pytest.raises(BenchError, match="schema version 999"):
        R.table([bad])
    with pytest.raises(BenchError, match="no result records"):
        R.table([])


def test_renderings(tmp_path):
    recs = suite_records({"A": {"mp3@16": 0.3, "mp3@64": 0.05, "augment@0.5": 0.1, "augment@1": 0.2},
                          "B": {"mp3@16": 0.1, "augment@1": 0.1}})
    rows = R.table(recs)
    md = R.to_markdown(rows)
    assert md.startswith(R.DEMO_NOTE) and "### gtzan: accuracy under corruption" in md
    assert "| condition" in md and "drop +" in md and "*" in md
    table = list(csv.DictReader(io.StringIO(R.to_csv(rows))))
    assert list(table[0]) == list(R.FIELDS) and len(table) == len(rows)
    assert json.loads(R.to_json(rows))[0]["encoder"] == "A"
    png = R.curves_png(rows, "gtzan")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    frag = R.html_fragment(rows, {"gtzan": png})
    assert frag.startswith('<section class="robustness">') and "<table>" in frag and "data:image/png;base64," in frag
    assert "&lt;" not in R.html_fragment(rows)  # no double escaping
    files = R.write_report(recs, tmp_path / "out")
    assert {p.name for p in files.values()} == {
        "robustness.md", "robustness.csv", "robustness.json", "robustness_fragment.html", "robustness_gtzan.png"}
    assert all(p.stat().st_size > 0 for p in files.values())


def test_the_clean_bootstrap_is_computed_once_per_probe(monkeypatch):
    # every condition of a probe pairs against the same clean scores: their bootstrap is reused, and the
    # drops are what a fresh computation gives
    rng = np.random.default_rng(5)
    y, c, k1 = simulate(150, 0.8, 0.2, rng)
    _, _, k2 = simulate(150, 0.8, 0.3, np.random.default_rng(6))
    expected = [R.paired_drop(score_fn, y, c, k, "accuracy", n_boot=200) for k in (k1, k2)]
    calls = []
    real = confidence.bootstrap

    def counting(fn, yy, s, *a, **kw):
        calls.append(np.asarray(s).copy())
        return real(fn, yy, s, *a, **kw)

    monkeypatch.setattr(confidence, "bootstrap", counting)
    got = [R.paired_drop(score_fn, y, c.copy(), k, "accuracy", n_boot=200) for k in (k1, k2)]
    assert len(calls) == 2 and not any(np.array_equal(s, c) for s in calls)  # clean came from the memo
    assert [g["values"] for g in got] == [e["values"] for e in expected]
    assert [(g["drop"], g["lo"], g["hi"]) for g in got] == [(e["drop"], e["lo"], e["hi"]) for e in expected]
    other = c.copy()
    other[0] = 1 - other[0] if other.ndim == 1 else other[0][::-1]
    R.paired_drop(score_fn, y, other, k1, "accuracy", n_boot=200)
    assert len(calls) == 4  # other clean scores are another entry
