"""The jobs of ``bench reproduce`` in worker processes (``--jobs N``): N jobs at a time, each on its share of the cores.

On a CPU machine one process does not use its cores well: a demo pretraining
at 2 torch threads ran 1.45x slower than two such pretrainings at 1 thread each
side by side on the same 2 cores, and a probe trains on one thread and leaves
the other core idle. So the jobs of a plan (each an encoder: pretraining,
extraction, probes; independent of one another) run in ``workers`` processes
of ``threads`` torch threads each, the longest first.

- Workers are *spawned* (a fresh interpreter, not a fork of a process whose
  OpenMP pool may be running). Each loads the plugins' entry points itself and
  gets the plugins its parent registered in-process
  (:func:`bench.plugins.registered_in_process`).
- Everything a job computes goes through the shared cache (checkpoints,
  pretraining audio and embeddings by key, with locks where two jobs could
  build the same thing), so the records are the ones the job would write in
  one process with the same thread count, and a rerun reuses them.
- A job's output (its log lines, skipped files, decoder messages) goes to
  ``<out>/logs/<n>-<label>.log``; the parent prints a line when a job starts
  and, when it ends, its log, so jobs never interleave on the terminal.
- A worker that dies (killed, out of memory) fails the jobs that were running
  (named, with their logs); the others still run in a fresh pool.

The demo data is built by the parent before any worker starts, so two jobs
never render the same dataset.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: set in each worker by :func:`_init`: the task objects it created, by name
_TASKS: dict[str, Any] = {}


@dataclass
class Finished:
    index: int
    records: list[dict[str, Any]]
    failures: list[str]
    seconds: float


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_workers(n_jobs: int, device: str, n_cores: int | None = None) -> tuple[int, int]:
    """(workers, torch threads each) for ``--jobs auto``.

    One process on a GPU (the jobs would share its memory). On CPU: one
    thread per worker up to 2 cores (measured: two 1-thread processes beat one
    2-thread process by 1.45x on the 2-core development machine), 2 threads
    per worker above that; never more workers than jobs.
    """
    n = cores() if n_cores is None else n_cores
    if device.startswith("cuda") or n_jobs <= 1 or n <= 1:
        return 1, n
    per = 1 if n <= 2 else 2
    workers = max(1, min(n_jobs, n // per))
    return workers, max(1, n // workers)


def log_name(index: int, label: str) -> str:
    """``<index>-<label>.log`` with the label's brackets and separators made file-name safe."""
    return f"{index}-{re.sub(r'[^A-Za-z0-9._-]+', '_', label).strip('_')}.log"


def order(jobs: list[Any]) -> list[int]:
    """Indices of ``jobs``, the costliest first (corrupted test sets, then pretraining, then the rest).

    Longest-first keeps the last job short, so no worker idles while another
    runs a long one at the end.
    """
    def cost(i: int) -> tuple[int, int]:
        job = jobs[i]
        return (-len(job.robustness_tasks), 0 if job.encoder != "random" else 1)

    return sorted(range(len(jobs)), key=lambda i: (*cost(i), i))


def run_jobs(p: Any, config: Any, workers: int, threads: int | None, failures: list[str],
             ) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run ``p.jobs`` in ``workers`` spawned processes; records in plan order, and each job's seconds."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from bench import plugins
    from bench.run import log

    logs = Path(config.out) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    n = len(p.jobs)
    threads = threads or max(1, cores() // workers)
    extra = plugins.registered_in_process()
    log(f"reproduce: {n} jobs in {workers} worker processes of {threads} torch thread(s) each; "
        f"each job's output goes to {logs}/ and is printed when the job ends")
    ctx = multiprocessing.get_context("spawn")
    queue = order(p.jobs)
    done: dict[int, Finished] = {}
    started: dict[int, float] = {}

    def submit(pool: Any, i: int) -> Any:
        job = p.jobs[i]
        started[i] = time.perf_counter()
        log(f"== reproduce: job {i + 1}/{n} started: {job.label} ({job.role}) on {', '.join(job.tasks)}"
            + (f"; corruptions on {', '.join(job.robustness_tasks)}" if job.robustness_tasks else ""))
        return pool.submit(_run, i, job, config, p.scale.conditions, str(logs / log_name(i + 1, job.label)))

    while queue:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(threads, extra)) as pool:
            running: dict[Any, int] = {}
            while queue and len(running) < workers:
                i = queue.pop(0)
                running[submit(pool, i)] = i
            broken = False
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = running.pop(fut)
                    job = p.jobs[i]
                    path = logs / log_name(i + 1, job.label)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        msg = (f"{job.label}: its worker process died (killed, or out of memory?) while it ran; its "
                               f"output so far is in {path}. Rerun the same command: what was cached is reused")
                        failures.append(msg)
                        log(f"error: {msg}")
                        done[i] = Finished(i, [], [msg], round(time.perf_counter() - started[i], 1))
                        continue
                    done[i] = result
                    failures.extend(result.failures)
                    _replay(path)
                    log(f"== reproduce: job {i + 1}/{n} finished: {job.label} in {result.seconds:.1f} s "
                        f"({len(result.records)} records" + (f", {len(result.failures)} failed" if result.failures
                                                             else "") + ")")
                    if queue and not broken:
                        j = queue.pop(0)
                        running[submit(pool, j)] = j
            if not broken:
                break
    records = [r for i in range(n) if i in done for r in done[i].records]
    return records, {p.jobs[i].label: done[i].seconds for i in done}


def _replay(path: Path) -> None:
    """Print a finished job's log to this process's stderr (without progress-bar redraws)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    lines = [ln.split("\r")[-1] for ln in text.splitlines()]
    body = "\n".join(ln for ln in lines if ln.strip())
    if body:
        print(body, file=sys.stderr, flush=True)


def _init(threads: int, extra: list[tuple[str, object]]) -> None:
    """Worker start: the allocator setting and thread count of a compute verb, and the parent's plugins.

    torch is not imported here (a job whose records are all reused never
    needs it): ``OMP_NUM_THREADS`` sets its thread count when it is imported.
    """
    from bench import allocator, plugins

    allocator.tune()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["BENCH_THREADS"] = str(threads)
    plugins.register_all(extra)
    if "torch" in sys.modules:  # the parent's plugins, unpickled, may have imported it already
        sys.modules["torch"].set_num_threads(threads)


def _run(index: int, job: Any, config: Any, conditions: str, log_path: str) -> Finished:
    """One job in a worker, its stdout and stderr (file descriptors 1 and 2) written to ``log_path``."""
    from bench import plugins
    from bench.corruptions import parse_conditions
    from bench.experiments.jobs import run_job
    from bench.run import guarded

    t0 = time.perf_counter()
    failures: list[str] = []
    saved = (os.dup(1), os.dup(2))
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log_path, "w") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            for name in job.tasks:
                if name not in _TASKS:
                    task = guarded(f"task {name}", failures, config.out, lambda n=name: plugins.tasks().get(n).create())
                    if task is not None:
                        _TASKS[name] = task
            # no progress bars: the log is printed when the job ends
            records = run_job(job, dataclasses.replace(config, progress=False), dict(_TASKS),
                              parse_conditions(conditions), failures)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    return Finished(index, records, failures, round(time.perf_counter() - t0, 1))
