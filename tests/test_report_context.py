"""Tables and reports read at a glance (issue 27): the chance row, the bold rule, the chart's axes and size,
the provenance block of the HTML reports."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from bench import leaderboard as L
from bench import leaderboard_chart as chart
from bench.metrics import chance_scores
from test_leaderboard import make_record


class _Task:
    def __init__(self, kind, scorer=None):
        self.kind = kind
        self._scorer = scorer

    def score(self, y, scores):
        from bench import metrics

        if self._scorer:
            return self._scorer(y, scores)
        names = ("accuracy",) if self.kind == "multiclass" else ("roc_auc", "average_precision")
        return metrics.score(self.kind, y, scores, names)


def _chance(metrics):
    return {"method": "majority / prior predictor", "n_tracks": 40, "metrics": metrics}


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# -- chance levels ----------------------------------------------------------------------------------------------


def test_chance_of_a_multiclass_task_is_the_majority_class():
    labels = [0] * 6 + [1] * 3 + [2] * 1
    got = chance_scores(_Task("multiclass"), labels, 4)
    assert got["metrics"] == {"accuracy": pytest.approx(0.6)} and got["n_tracks"] == 10 and "most frequent class" in got["method"]


def test_chance_of_a_multilabel_task_is_auc_half_and_the_positive_rates():
    labels = [[0], [0, 1], [1], [0], [], [2]]  # tag 3 never appears: left out of the macro averages
    got = chance_scores(_Task("multilabel"), labels, 4)["metrics"]
    assert got["roc_auc"] == pytest.approx(0.5)
    assert got["average_precision"] == pytest.approx(np.mean([3 / 6, 2 / 6, 1 / 6]))


def test_chance_of_the_key_task_is_the_weighted_score_of_the_most_frequent_key():
    from bench.run import make_task

    task = make_task("giantsteps_key")
    labels = [0] * 5 + [7] * 3 + [12] * 2  # C major, G major (a fifth up: 0.5), C minor (parallel: 0.2 credit)
    got = chance_scores(task, labels, 24)["metrics"]
    y = np.asarray(labels)
    assert got["accuracy"] == pytest.approx(0.5)
    assert got["weighted_score"] == pytest.approx(task.score(y, np.eye(24)[np.zeros(10, int)])["weighted_score"])
    assert 0.5 < got["weighted_score"] < 1.0


def test_a_scorer_failing_on_the_constant_predictor_keeps_the_record():
    def boom(y, s):
        raise ValueError("no")

    got = chance_scores(_Task("multiclass", boom), [0, 1], 2)
    assert got["metrics"] == {} and "ValueError" in got["error"]


# -- the chance row ---------------------------------------------------------------------------------------------


def _one_encoder():
    recs = [make_record("semisupcon", "t1", s, 0.04 + 0.01 * s, extra={"pc": 0.07}) for s in (0, 1)]
    for r in recs:
        r["chance"] = _chance({"accuracy": 1 / 12, "pc": 0.1})
    return recs


def test_a_one_encoder_leaderboard_shows_the_chance_row_unranked_and_ungated(tmp_path):
    from bench.cli import main
    from bench.results import write_record

    recs = _one_encoder()
    text = L.render(recs)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("|")}
    assert "chance" in rows and "0.0833" in rows["chance"] and "0.1000" in rows["chance"]
    assert rows["chance"].rstrip().endswith("|            |")  # no average rank
    assert "**" not in text  # one encoder: nothing to be best against
    assert "Row 'chance': the chance level on the test split, scored by majority / prior predictor." in text
    df = L.table(recs)
    assert list(df.index) == ["semisupcon", "chance"] and np.isnan(df.loc["chance", L.RANK_COL])
    assert df.loc["semisupcon", L.RANK_COL] == 1.0
    # the gate: the baseline entries are the encoder rows only, and a folder passes against itself
    assert [e["encoder"] for e in L.baseline(recs)["entries"]] == ["semisupcon"]
    for r in recs:
        write_record(r, tmp_path / "res" / "records")
    assert main(["leaderboard", str(tmp_path / "res"), "--out", str(tmp_path / "lb")]) == 0
    doc = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    assert [e["encoder"] for e in doc["entries"]] == ["semisupcon"]
    assert {(c["task"], c["metric"]) for c in doc["chance"]} == {("t1", "accuracy"), ("t1", "pc")}
    assert doc["rows"][-1]["encoder"] == "chance" and doc["rows"][-1][L.RANK_COL] is None
    assert main(["compare", str(tmp_path / "res"), str(tmp_path / "lb" / "leaderboard.json")]) == 0
    csv = (tmp_path / "lb" / "leaderboard.csv").read_text().splitlines()
    assert csv[-1].startswith("chance,0.083333,,,")


def test_no_chance_block_no_chance_row_and_an_encoder_called_chance_keeps_its_name():
    assert "chance" not in L.table([make_record("a"), make_record("b", value=0.1)]).index
    recs = [make_record("chance", value=0.3), make_record("b", value=0.1)]
    recs[0]["chance"] = _chance({"accuracy": 0.25})
    df = L.table(recs)
    assert list(df.index) == ["chance", "b", "chance (label prior)"]
    assert df.loc["chance", L.RANK_COL] == 1.0 and np.isnan(df.loc["chance (label prior)", L.RANK_COL])


def test_the_chance_row_comes_from_clean_records_and_says_when_records_differ():
    recs = [make_record("a", fingerprint="x"), make_record("b", fingerprint="y", value=0.4)]
    recs[0]["chance"] = _chance({"accuracy": 0.2})
    recs[1]["chance"] = _chance({"accuracy": 0.3})
    noisy = make_record("a", value=0.2)
    noisy.update(condition="noise@0.5", chance=_chance({"accuracy": 0.9}))
    rows = L.chance_rows([*recs, noisy])
    assert [(c["mean"], c["min"], c["max"], c["n_records"]) for c in rows] == [(pytest.approx(0.25), 0.2, 0.3, 2)]
    assert "differs between the records of t1 (0.2000-0.3000)" in L.render(recs)


# -- bold only when the intervals separate --------------------------------------------------------------------


def test_two_rows_with_overlapping_intervals_are_not_bold_separated_ones_are():
    # intervals: a 0.55 [0.50, 0.60], b 0.52 [0.47, 0.57]: they overlap
    close = [make_record("a", value=0.55), make_record("b", value=0.52)]
    text = L.render(close)
    assert "**" not in text and "0.5500 [" in text and L.BOLD_RULE in text
    far = [make_record("a", value=0.75), make_record("b", value=0.52)]
    assert "**0.7500 [" in L.render(far) and "**0.5200" not in L.render(far)
    # a third row whose interval reaches the best's: no bold, even though the second is far below
    wide = [*far, make_record("c", value=0.6, values=list(np.linspace(0.4, 0.8, 50)))]
    assert "**" not in L.render(wide)
    # a row without an interval cannot be told apart from the best
    bare = [make_record("a", value=0.75), make_record("b", value=0.52)]
    del bare[1]["confidence"]["values"]
    bare[1]["confidence"].update(lo=None, hi=None)
    assert "**" not in L.render(bare)


def test_published_and_chance_rows_never_compete():
    recs = [make_record("a", value=0.75, demo=False), make_record("b", value=0.52, demo=False)]
    for r in recs:
        r["chance"] = _chance({"accuracy": 0.99})  # a chance level above every row changes nothing
    assert "**0.7500 [" in L.render(recs) and "**0.9900" not in L.render(recs)
    # published rows (MARBLE's MTAT numbers, up to 0.914) neither take the mark nor block it
    mtat = [make_record(e, "mtat", 0, v, demo=False, primary="roc_auc") for e, v in (("a", 0.86), ("b", 0.70))]
    for r in mtat:
        r["protocol"] = "marble"
    text = L.render(mtat, reference="marble")
    assert "Jukebox-5B (published)" in text and "**0.8600 [" in text and text.count("**") == 2


# -- the chart and the HTML report --------------------------------------------------------------------------------


def test_layout_wraps_panels_within_the_page_width():
    for n_tasks in (1, 4, 6, 9):
        for n_bars in (1, 3, 8, 30):
            cols, rows, width, _ = chart.layout(n_tasks, n_bars)
            assert width <= chart.MAX_WIDTH_IN + 1e-9 and cols * rows >= n_tasks and cols >= 1
    assert chart.layout(6, 3)[:2] == (3, 2)  # 6 panels of 3 bars: two rows rather than one 18-inch row


def test_y_limits_roc_auc_from_half_and_scores_up_to_one():
    assert chart.y_limits([0.7, 0.6, 0.8, 0.5], "roc_auc")[0] == 0.5
    assert chart.y_limits([0.7, 0.6, 0.8], "average_precision")[0] == 0.0
    lo, hi = chart.y_limits([0.04, 0.0, 0.09, 0.62, 0.57, 0.67, 1 / 12], "accuracy")
    assert lo == 0.0 and 0.67 < hi <= 1.0
    assert chart.y_limits([0.45, 0.4, 0.5], "roc_auc")[0] < 0.4  # worse than chance is still drawn


def _board(n_tasks, n_encoders):
    recs = []
    for t in range(n_tasks):
        primary = "roc_auc" if t == 0 else "accuracy"
        for e in range(n_encoders):
            r = make_record(f"encoder-{e}", f"task{t}", 0, 0.55 + 0.04 * e + 0.01 * t, primary=primary)
            r["chance"] = _chance({primary: 0.5 if t == 0 else 0.1})
            recs.append(r)
    return recs


def test_the_chart_is_cached_under_the_code_of_its_own_module():
    """bench.render_cache keys a drawing by the code of ``make.__module__``: a wrapper in bench.leaderboard would
    serve old charts after bench/leaderboard_chart.py changed."""
    assert L.chart_png is chart.chart_png and chart.chart_png.__module__ == "bench.leaderboard_chart"


def test_panels_of_one_metric_share_their_axis_with_the_chance_line(monkeypatch):
    import matplotlib.figure

    seen = []
    real = matplotlib.figure.Figure.savefig

    def keep(fig, *a, **k):
        seen.append([(ax.get_title(), ax.get_ylim(), [tuple(ln.get_ydata()) for ln in ax.get_lines()])
                     for ax in fig.axes if ax.get_visible()])
        return real(fig, *a, **k)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    recs = _board(3, 2)
    recs[2]["metrics"]["accuracy"] = 0.04  # a small bar on task1, a large one (0.36) on task2
    png = L.chart_png(L.summary(recs), True, L.chance_by_task(L.chance_rows(recs)))
    assert _png_size(png)[0] <= chart.MAX_WIDTH_PX
    (panels,) = seen
    by = {title: (ylim, lines) for title, ylim, lines in panels}
    assert by["task1"][0] == by["task2"][0]  # accuracy panels: one y range
    assert by["task0"][0][0] == 0.5  # ROC-AUC from chance
    assert any(set(y) == {0.1} for y in by["task1"][1]) and any(set(y) == {0.5} for y in by["task0"][1])


def test_the_html_report_fits_1400_px_and_carries_provenance(tmp_path):
    recs = _board(6, 8)
    for r in recs:
        r.update(command="bench run --demo --encoders x", checkpoint="/ckpt/enc.safetensors",
                 versions={"music-bench": "0.1.0", "torch": "2.13.0", "python": "3.11.9"},
                 data={"fingerprint": "fp", "root": "/data/demo", "tracks": {"train": 8, "valid": 4, "test": 4}})
    recs[-1]["versions"] = {**recs[-1]["versions"], "torch": "2.12.0"}
    files = L.write(recs, tmp_path)
    width, height = _png_size(files["png"].read_bytes())
    assert width <= chart.MAX_WIDTH_PX < 1400 and height > width / 3  # 6 panels of 8 bars: wrapped in rows
    page = files["html"].read_text()
    style = page[page.index("<style>"):page.index("</style>")]
    assert "max-width:1300px" in style and "img.chart{display:block;max-width:100%;height:auto}" in style
    assert 'class="chart"' in page and f"max-width:min(100%,{chart.MAX_WIDTH_PX}px)" in page
    assert '<div class="scroll"><table>' in page  # a wide table scrolls inside the page
    prov = page[page.index('<section class="provenance">'):]
    for text in ("bench run --demo --encoders x", "torch 2.13.0 / 2.12.0 (differs between records)",
                 "demo data (generated) under /data/demo", "checkpoint /ckpt/enc.safetensors", "music-bench 0.1.0",
                 "48 record(s)"):
        assert text in prov, text
    doc = json.loads(files["json"].read_text())
    assert doc["provenance"]["command"] == ["bench run --demo --encoders x"]


def test_robustness_fragment_and_reproduce_report_carry_provenance(tmp_path):
    from bench import robustness
    from bench.experiments import report

    recs = []
    for cond, v in (("clean", 0.8), ("noise@0.5", 0.6)):
        r = make_record("a", "t1", 0, v)
        r.update(condition=cond, variant="a", command="bench robustness --demo")
        recs.append(r)
    files = robustness.write_report(recs, tmp_path)
    frag = files["html"].read_text()
    assert "Provenance of the robustness records" in frag and "bench robustness --demo" in frag
    meta = {"scale": "demo", "command": "bench reproduce", "created": "now", "version": "0.1.0", "tasks": ["t1"],
            "seeds": [0], "grid": "fast", "conditions": "none", "wall_s": 1.0, "jobs": []}
    page = report.to_html([], meta, {}, recs)
    assert '<section class="provenance">' in page and "bench robustness --demo" in page
