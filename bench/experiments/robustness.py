"""``bench robustness`` as a stage: encoders x tasks x corruption conditions -> records, tables, curves, report.

Per encoder x task (the pair driver, :func:`bench.pair.evaluate_pair`): the probe
of each seed is trained on clean embeddings once and tested on the clean test
split and on the test audio under every condition. Outputs in the output
folder: ``records/`` (one per encoder x task x condition x seed; corrupted ones
carry ``condition``, ``corruption`` and the paired ``drop``), the leaderboard
(clean rows first), ``robustness.md/.csv/.json`` (metric and drop with
intervals per encoder x task x condition), ``robustness_<task>.png``
(degradation curves) and ``robustness.html`` (the report: tables and curves).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from bench.jobs import Job, JobSet, run_jobs
from bench.run import check_option_scopes, log
from bench.settings import RunConfig, RunOutcome


def run_robustness(config: RunConfig, conditions: str, corruption_seed: int = 0) -> RunOutcome:
    """Evaluate every encoder x task clean and under ``conditions`` (a spec: bench.corruptions.parse_conditions);
    write records, tables, curves and report."""
    from bench.corruptions import parse_conditions

    settings = config.settings
    settings.out.mkdir(parents=True, exist_ok=True)
    check_option_scopes(config.encoder_options, config.encoders)
    n_conditions = len(parse_conditions(conditions))
    log(f"robustness: {len(config.encoders)} encoder(s) x {len(config.tasks)} task(s) x {n_conditions} "
        f"condition(s) + clean, probe seeds {list(settings.seeds)}, corruption seed {corruption_seed}")
    tasks = tuple(config.tasks)
    jobs = [Job(name, name, dict(config.encoder_options), tasks, tasks, names_rows=False, title=f"encoder {name}")
            for name in config.encoders]
    failures: list[str] = []
    records, _ = run_jobs(jobs, JobSet(config, conditions, corruption_seed), failures=failures)
    outcome = RunOutcome(records, failures, settings.out)
    if records:
        outcome.files = write_outputs(records, settings.out)
        log(f"Robustness report: {outcome.files['report']} (tables: {outcome.files['markdown']}, curves: "
            f"robustness_<task>.png; leaderboard: {outcome.files['leaderboard']})")
    else:
        log(f"No records were written: every part failed (see above). Output folder: {settings.out}")
    return outcome


def write_outputs(records: list[dict[str, Any]], out: Path) -> dict[str, Path]:
    """Leaderboard, robustness tables and curves, and the HTML report of ``records`` in ``out``."""
    from bench import leaderboard, robustness

    board = leaderboard.write(records, out)
    files = robustness.write_report(records, out)
    fragment = files["html"].read_text()
    page = out / "robustness.html"
    page.write_text(html_page("bench robustness", fragment,
                              f'<p>Leaderboard (clean and per condition): <a href="leaderboard.html">'
                              f'leaderboard.html</a>. {len(records)} record(s).</p>'))
    print(files["markdown"].read_text())
    return {**files, "report": page, "leaderboard": board["markdown"]}


STYLE = ("body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}td:first-child,th:first-child"
         "{text-align:left}.demo{background:#fff3cd;border:1px solid #e0c060;padding:8px;font-weight:bold}"
         "img{max-width:100%}")


def html_page(title: str, *body: str) -> str:
    """A self-contained HTML page around ``body`` fragments (the reports' shared frame)."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>\n" + "\n".join(body)
            + "\n</body></html>\n")
