"""One job of a ``bench reproduce`` plan: its encoder prepared (pretrained once, by key), every task evaluated.

The same function runs a job in the ``bench reproduce`` process (``--jobs 1``)
and in a worker process (:mod:`bench.experiments.parallel`).
"""

from __future__ import annotations

import dataclasses
from typing import Any


def run_job(job: Any, config: Any, tasks: dict[str, Any], conditions: Any, failures: list[str],
            ) -> list[dict[str, Any]]:
    """One job: its encoder prepared (pretrained once, by key), then every task of the job evaluated."""
    from bench.experiments.pairs import evaluate_pair
    from bench.run import guarded, prepare_encoder

    jconfig = dataclasses.replace(config, encoders=[job.encoder], encoder_options=dict(job.options),
                                  variants={job.encoder: job.label})
    prep = guarded(f"{job.label}", failures, config.out, prepare_encoder, job.encoder, jconfig)
    records: list[dict[str, Any]] = []
    if prep is None:
        return records
    for tname in job.tasks:
        if tname not in tasks:
            continue
        conds = conditions if tname in job.robustness_tasks else ()
        recs = guarded(f"{job.label} x {tname}", failures, config.out, evaluate_pair, prep, tasks[tname],
                       jconfig, conds, 0, failures, job.tags)
        records.extend(recs or [])
    return records
