"""bench sweep --rank-on: variants ranked on the validation splits, test scores only in the final table."""

from __future__ import annotations

import numpy as np
import pytest

from bench import confidence as CI
from bench.errors import BenchError
from bench.experiments.sweep_plot import ranking, sweep_png, sweep_table, valid_view
from bench.results import new_record


def interval(value: float) -> dict:
    vals = list(np.clip(value + np.linspace(-0.05, 0.05, 50), 0, 1))
    return {"metric": "accuracy", "value": value, "lo": float(np.percentile(vals, 2.5)),
            "hi": float(np.percentile(vals, 97.5)), "seed": CI.BOOT_SEED, "n_boot": len(vals),
            "values": [float(v) for v in vals]}


def rec(lr: str, seed: int, test: float, valid: float | None) -> dict:
    r = new_record(encoder="semisupcon", variant=f"semisupcon[lr={lr}]", task="nsynth_pitch", seed=seed,
                   condition="clean", primary_metric="accuracy", metrics={"accuracy": test},
                   confidence=interval(test), demo_data=True, encoder_config={"name": "semisupcon"},
                   weights_hash=lr, data={"fingerprint": "fp"}, sweep={"lr": lr})
    if valid is not None:
        r.update(valid_metrics={"accuracy": valid}, valid_confidence=interval(valid))
    return r


def sweep(old_record: bool = False) -> list[dict]:
    # test prefers 1e-3, validation prefers 3e-4: the two rankings disagree
    out = []
    for seed in (0, 1):
        out.append(rec("1e-3", seed, test=0.60, valid=0.30 + 0.01 * seed))
        out.append(rec("3e-4", seed, test=0.40, valid=0.50 + 0.01 * seed))
        out.append(rec("1e-4", seed, test=0.50, valid=None if old_record else 0.20))
    return out


def test_the_ranking_follows_the_chosen_split():
    recs = sweep()
    assert ranking(recs, "valid") == ["semisupcon[lr=3e-4]", "semisupcon[lr=1e-3]", "semisupcon[lr=1e-4]"]
    assert ranking(recs, "test") == ["semisupcon[lr=1e-3]", "semisupcon[lr=1e-4]", "semisupcon[lr=3e-4]"]
    view = valid_view(recs)
    assert [r["metrics"]["accuracy"] for r in view[:2]] == [0.30, 0.50]
    assert all(r["confidence"]["value"] == r["metrics"]["accuracy"] for r in view)


def test_valid_table_ranks_on_validation_and_shows_test_only_in_the_final_table():
    text = sweep_table(sweep(), ["lr"], "valid")
    ranked, final = text.split("## Final table: test scores")
    assert "ranked on validation" in ranked
    # validation means (mean over probe seeds) in the ranked table, in validation order; no test number there
    assert ranked.index("semisupcon[lr=3e-4]") < ranked.index("semisupcon[lr=1e-3]") < ranked.index("[lr=1e-4]")
    assert "0.5050" in ranked and "0.3050" in ranked and "0.2000" in ranked
    assert "0.6000" not in ranked and "0.4000" not in ranked
    assert "nsynth_pitch (accuracy, valid)" in ranked
    # the final table: the test scores, in the validation order
    assert "not used for ranking" in final and "nsynth_pitch (accuracy, test)" in final
    assert final.index("[lr=3e-4] ") < final.index("[lr=1e-3] ")
    assert "0.6000" in final and "0.4000" in final and "0.5050" not in final


def test_test_ranking_is_flagged_and_records_without_validation_scores_rank_last():
    text = sweep_table(sweep(), ["lr"], "test")
    assert "ranked on the TEST splits" in text and "Final table" not in text
    assert text.index("[lr=1e-3]") < text.index("[lr=1e-4]") < text.index("[lr=3e-4]")
    old = sweep(old_record=True)
    assert ranking(old, "valid")[-1] == "semisupcon[lr=1e-4]"
    text = sweep_table(old, ["lr"], "valid")
    assert "1 variant(s) have no validation scores" in text and "semisupcon[lr=1e-4]" in text
    # the reproduce report's call (no ranking): test scores in the records' order, as before
    plain = sweep_table(sweep(), ["lr"])
    assert "0.6000" in plain and "rank" not in plain.split("\n\n")[2].split("\n")[0]


def test_plot_of_each_split_and_a_bad_split():
    a, b = sweep_png(sweep(), ["lr"], split="valid"), sweep_png(sweep(), ["lr"], split="test")
    assert a.startswith(b"\x89PNG") and b.startswith(b"\x89PNG") and a != b
    with pytest.raises(BenchError, match="--rank-on 'train'"):
        sweep_table(sweep(), ["lr"], "train")
