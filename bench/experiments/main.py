"""``bench run`` as a stage: encoders x tasks -> records -> leaderboard files.

One job per encoder (:class:`bench.jobs.Job`) through the job loop
(:func:`bench.jobs.run_jobs`, in this process): each pair is reused by
request when it ran before (:mod:`bench.run_memo`, no encoder built), else
evaluated by the pair driver (:func:`bench.pair.evaluate_pair`, with own-head
rows). A pair that fails is reported with its name and the other pairs go on;
records are written as soon as a pair finishes; the leaderboard last (and, for an encoder probed layer by
layer, the per-layer curves: :mod:`bench.layers`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bench.jobs import Job, JobSet, run_jobs, with_pretrain_seeds
from bench.run import check_option_scopes, log
from bench.settings import RunConfig, RunOutcome


def run(config: RunConfig) -> RunOutcome:
    from bench import layers, leaderboard, plan, procs, run_memo

    settings = config.settings
    group = procs.current(settings.device)
    if group.several:  # under accelerate launch: this process's GPU; progress bars from the main process only
        config = replace(config, settings=replace(settings, device=group.device,
                                                  progress=settings.progress and group.is_main))
        settings = config.settings
    settings.out.mkdir(parents=True, exist_ok=True)
    check_option_scopes(config.encoder_options, config.encoders)
    if run_memo.enabled(settings):
        run_memo.new_run()  # and the file-digest memo kept in the cache folder, before any pair is indexed
    if group.is_main:
        for line in plan.describe(config):
            log(line)
    jobs = with_pretrain_seeds([Job(name, name, dict(config.encoder_options), tuple(config.tasks), names_rows=False,
                                    title=f"encoder {name}") for name in config.encoders], config.pretrain_seeds)
    failures: list[str] = []
    records: list[dict[str, Any]]
    records, _ = run_jobs(jobs, JobSet(config, own_heads=True), failures=failures)
    outcome = RunOutcome(records, failures, settings.out)
    if not group.is_main:
        procs.finish()  # wait for the main process's probes and records, then leave together
        return outcome
    plan.observe(records, config)
    if records:
        outcome.files = leaderboard.write(records, settings.out)
        print(leaderboard.render(records))
        log(f"Records written to {settings.out / 'records'}")
        log(f"Leaderboard: {outcome.files['markdown']} (also .csv, .json, .html, .png)")
        curves = layers.write(records, settings.out)  # encoders probed layer by layer: the per-layer curves
        if curves:
            outcome.files.update(curves)
            print(curves["layers_markdown"].read_text())
            log(f"Per-layer curves: {curves['layers_markdown']} and {curves['layers_png']}")
    else:
        log(f"No records were written: every part of the run failed (see above). Output folder: {settings.out}")
    procs.finish()
    return outcome
