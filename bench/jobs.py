"""The job loop of every command: jobs (an encoder with options, its tasks) run in this process or in workers.

A :class:`Job` is one encoder prepared once (pretrained once, by key) and
evaluated on its tasks through the pair driver (:func:`bench.pair.evaluate_pair`).
:func:`run_jobs` runs a list of them: with ``workers=1`` one after the other
in this process, else side by side in ``workers`` spawned processes of
``threads`` torch threads each, the longest first; both go through
:func:`_execute`, so a job computes the same records either way.

On a CPU machine one process does not use its cores well: a demo pretraining
at 2 torch threads ran 1.45x slower than two such pretrainings at 1 thread each
side by side on the same 2 cores, and a probe trains on one thread and leaves
the other core idle.

- Workers are *spawned* (a fresh interpreter, not a fork of a process whose
  OpenMP pool may be running). Each loads the plugins' entry points itself and
  gets the plugins its parent registered in-process
  (:func:`bench.plugins.registered_in_process`). A worker and its own
  children die with the parent (:func:`_die_with`): a ``bench reproduce``
  killed with ``kill -9`` leaves nothing computing into the cache.
- Everything a job computes goes through the shared cache (checkpoints,
  pretraining audio and embeddings by key, with locks where two jobs could
  build the same thing), so a rerun reuses it.
- A worker job's output goes to ``<out>/logs/<n>-<label>.log``; the parent
  prints a line when a job starts and, when it ends, its log, so jobs never
  interleave on the terminal.
- A worker that dies (killed, out of memory) fails the jobs that were running
  (named, with their logs); the others still run in a fresh pool.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import plugins, snapshot
from bench import run as steps
from bench.corruptions import Condition, parse_conditions
from bench.errors import BenchError
from bench.pair import evaluate_pair, make_tasks, memo_applies, reuse_by_request
from bench.run import guarded, log
from bench.settings import IndexedTask, RunConfig
from bench.task import Task


@dataclass
class Job:
    """One encoder with its options, evaluated on its tasks (clean, and under corruptions on some)."""

    #: its name in logs, failures and timings; also the records' row label when ``names_rows``
    label: str
    encoder: str
    #: its ``-O`` options (unscoped, or ``encoder:key`` scoped as on the command line)
    options: dict[str, Any]
    tasks: tuple[str, ...]
    #: tasks whose test audio is also scored under the corruption conditions
    robustness_tasks: tuple[str, ...] = ()
    #: fields added to every record (e.g. ``sweep``: the swept options)
    tags: dict[str, Any] = field(default_factory=dict)
    role: str = ""
    #: the pretraining seed (encoder option ``seed``); None: the options' own
    pretrain_seed: int | None = None
    #: whether ``label`` is the records' ``variant``; False: the label made from the options (bench run)
    names_rows: bool = True
    #: how a failure to prepare its encoder is named (default: the label)
    title: str = ""

    @property
    def name(self) -> str:
        """Its name in logs, failures and timings: the label, and its pretraining seed when it has one."""
        return self._seeded(self.label)

    @property
    def failure_title(self) -> str:
        """How a failure to prepare its encoder is named."""
        return self._seeded(self.title or self.label)

    def _seeded(self, text: str) -> str:
        return text if self.pretrain_seed is None else f"{text} (pretraining seed {self.pretrain_seed})"

    def config(self, base: RunConfig) -> RunConfig:
        """``base`` narrowed to this job: its encoder, options, row label and pretraining seed.

        The pretraining seed becomes the encoder option ``seed``; the row label
        stays the seed-free one, so the rows of the seeds are one row.
        """
        options = dict(self.options)
        variants = dict(base.variants)
        if self.names_rows:
            variants[self.encoder] = self.label
        elif self.pretrain_seed is not None:
            variants[self.encoder] = steps.variant_label(self.encoder, steps.encoder_options_for(self.encoder, options))
        if self.pretrain_seed is not None:
            options.pop(f"{self.encoder}:seed", None)
            options["seed"] = self.pretrain_seed
        return dataclasses.replace(base, encoders=[self.encoder], encoder_options=options, variants=variants,
                                   pretrain_seed=self.pretrain_seed)


def with_pretrain_seeds(jobs: list[Job], seeds: tuple[int, ...]) -> list[Job]:
    """Each job of a seeded encoder once per pretraining seed (``--pretrain-seeds``); the others once.

    An encoder is seeded when its class says so (:attr:`bench.encoder.Encoder.seeded`: the
    SampleCNN encoders, trainable plugins); a frozen one (logmel, a hub model) has no
    pretraining seed, and is evaluated once, which a line says. ``-O seed`` together with
    ``--pretrain-seeds`` is refused (exit 2): one of them would be ignored.
    """
    from bench.encoder import Encoder

    if not seeds:
        return jobs
    out: list[Job] = []
    once: list[str] = []
    for job in jobs:
        if "seed" in job.options or f"{job.encoder}:seed" in job.options:
            raise BenchError(f"-O seed and --pretrain-seeds both set for {job.label}: give the seeds with "
                             "--pretrain-seeds only (it trains one model per seed and pools them in one row)")
        factory = plugins.encoders().get(job.encoder).load()
        if isinstance(factory, type) and issubclass(factory, Encoder) and factory.seeded:
            out.extend(dataclasses.replace(job, pretrain_seed=s) for s in seeds)
        else:
            out.append(job)
            once.append(job.encoder)
    if once:
        log(f"--pretrain-seeds: {', '.join(dict.fromkeys(once))} ha{'s' if len(set(once)) == 1 else 've'} no "
            "seed of its weights (Encoder.seeded is False): evaluated once")
    return out


@dataclass
class JobSet:
    """What every job of one command shares: the run's config, corruption conditions and own-head rows."""

    config: RunConfig
    #: corruption conditions (bench.corruptions.parse_conditions) of the jobs' robustness tasks
    conditions: str = ""
    corruption_seed: int = 0
    #: bench run: own-head rows, and finished pairs kept and reused by request (bench.run_memo)
    own_heads: bool = False
    #: the command named in the job start lines ("reproduce"); empty: no such lines
    announce: str = ""


@dataclass
class Finished:
    index: int
    records: list[dict[str, Any]]
    failures: list[str]
    seconds: float


def run_job(job: Job, js: JobSet, tasks: dict[str, Task], conditions: list[Condition],
            failures: list[str]) -> list[dict[str, Any]]:
    """One job: finished pairs reused by request (bench run), its encoder prepared, every task evaluated."""
    jconfig = job.config(js.config)
    out = js.config.settings.out
    records: list[dict[str, Any]] = []
    pending: dict[str, IndexedTask | None] = {t: None for t in job.tasks if t in tasks}
    if js.own_heads and memo_applies(job.encoder, js.config.settings):  # no encoder, no torch
        for tname in list(pending):
            got = guarded(f"{job.name} x {tname}", failures, out, reuse_by_request, job.encoder, tasks[tname],
                          jconfig)
            if got is None:  # indexing failed: reported, not tried again
                del pending[tname]
            elif got[1]:
                records.extend(got[1])
                del pending[tname]
            else:
                pending[tname] = got[0]
    if not pending:
        return records
    prep = guarded(job.failure_title, failures, out, steps.prepare_encoder, job.encoder, jconfig)
    if prep is None:
        return records
    for tname, data in pending.items():
        conds = conditions if tname in job.robustness_tasks else []
        recs = guarded(f"{job.name} x {tname}", failures, out, evaluate_pair, prep, tasks[tname], jconfig, conds,
                       js.corruption_seed, failures, job.tags or None, data, js.own_heads)
        records.extend(recs or [])
    return records


def run_jobs(jobs: list[Job], js: JobSet, workers: int = 1, threads: int | None = None,
             failures: list[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run ``jobs``: records in job order, and each job's seconds (by label).

    ``workers`` > 1 (and more than one job): side by side in that many
    worker processes of ``threads`` torch threads each.
    """
    failures = failures if failures is not None else []
    if js.conditions:
        parse_conditions(js.conditions)  # a bad condition is named before anything runs
    if workers > 1 and len(jobs) > 1:
        return _parallel(jobs, js, workers, threads, failures)
    names = list(dict.fromkeys(t for j in jobs for t in j.tasks))
    tasks = make_tasks(names, js.config.settings.protocol, failures, js.config.settings.out)
    with snapshot.scope():  # each task's data read once for all the jobs
        done = [_execute(i, job, js, tasks, failures, len(jobs)) for i, job in enumerate(jobs)]
    return [r for d in done for r in d.records], {jobs[d.index].name: d.seconds for d in done}


def _execute(index: int, job: Job, js: JobSet, tasks: dict[str, Task], failures: list[str],
             total: int = 0) -> Finished:
    """One job, timed; the same in this process and in a worker (``total``: the job count, announced here)."""
    t0 = time.perf_counter()
    if js.announce and total:
        log(f"== {js.announce}: job {index + 1}/{total}: {job.name} ({job.role}) on {', '.join(job.tasks)}"
            + (f"; corruptions on {', '.join(job.robustness_tasks)}" if job.robustness_tasks else ""))
    mine: list[str] = []
    conditions = parse_conditions(js.conditions) if js.conditions and job.robustness_tasks else []
    records = run_job(job, js, tasks, conditions, mine)
    failures.extend(mine)
    return Finished(index, records, mine, round(time.perf_counter() - t0, 1))


# --- worker processes -------------------------------------------------------------------------------------

#: in a worker: the tasks it created, by (name, protocol)
_TASKS: dict[tuple[str, str], Task] = {}


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


def order(jobs: list[Job]) -> list[int]:
    """Indices of ``jobs``, the costliest first (corrupted test sets, then pretraining, then the rest).

    Longest-first keeps the last job short, so no worker idles while another
    runs a long one at the end.
    """
    def cost(i: int) -> tuple[int, int]:
        job = jobs[i]
        return (-len(job.robustness_tasks), 0 if job.encoder != "random" else 1)

    return sorted(range(len(jobs)), key=lambda i: (*cost(i), i))


def start_pool(workers: int, threads: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes of ``threads`` torch threads, each dying with this process."""
    import multiprocessing

    from bench import plugins

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                               initargs=(threads, plugins.registered_in_process(), os.getpid()))


def _parallel(jobs: list[Job], js: JobSet, workers: int, threads: int | None, failures: list[str],
              ) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run ``jobs`` in ``workers`` spawned processes; records in job order, and each job's seconds."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    logs = Path(js.config.settings.out) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    n = len(jobs)
    threads = threads or max(1, cores() // workers)
    log(f"{js.announce or 'jobs'}: {n} jobs in {workers} worker processes of {threads} torch thread(s) each; "
        f"each job's output goes to {logs}/ and is printed when the job ends")
    queue = order(jobs)
    done: dict[int, Finished] = {}
    started: dict[int, float] = {}

    def submit(pool: ProcessPoolExecutor, i: int) -> Future[Finished]:
        job = jobs[i]
        started[i] = time.perf_counter()
        log(f"== {js.announce or 'jobs'}: job {i + 1}/{n} started: {job.name} ({job.role}) on {', '.join(job.tasks)}"
            + (f"; corruptions on {', '.join(job.robustness_tasks)}" if job.robustness_tasks else ""))
        return pool.submit(_run, i, job, js, str(logs / log_name(i + 1, job.name)))

    while queue:
        with start_pool(workers, threads) as pool:
            running: dict[Future[Finished], int] = {}
            while queue and len(running) < workers:
                i = queue.pop(0)
                running[submit(pool, i)] = i
            broken = False
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = running.pop(fut)
                    job = jobs[i]
                    path = logs / log_name(i + 1, job.name)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        msg = (f"{job.name}: its worker process died (killed, or out of memory?) while it ran; its "
                               f"output so far is in {path}. Rerun the same command: what was cached is reused")
                        failures.append(msg)
                        log(f"error: {msg}")
                        done[i] = Finished(i, [], [msg], round(time.perf_counter() - started[i], 1))
                        continue
                    done[i] = result
                    failures.extend(result.failures)
                    _replay(path)
                    log(f"== {js.announce or 'jobs'}: job {i + 1}/{n} finished: {job.name} in {result.seconds:.1f} s "
                        f"({len(result.records)} records" + (f", {len(result.failures)} failed" if result.failures
                                                             else "") + ")")
                    if queue and not broken:
                        j = queue.pop(0)
                        running[submit(pool, j)] = j
            if not broken:
                break
    records = [r for i in range(n) if i in done for r in done[i].records]
    return records, {jobs[i].name: done[i].seconds for i in done}


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


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``), children before their own children."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for f in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                kids = [int(x) for x in f.read_text().split()]
            except (OSError, ValueError):
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def _die_with(parent: int, poll_s: float = 0.5) -> None:
    """End this worker and every process it started when ``parent`` dies, even by ``kill -9``.

    A daemon thread checks every ``poll_s`` seconds whether this process was
    given another parent (the original one is gone); then it kills this
    worker's descendants (a decoding pool, a subprocess) and the worker itself.
    A thread, not ``PR_SET_PDEATHSIG``: the kernel's parent-death signal would
    kill the worker before it could end its own children.
    """
    import signal
    import threading

    if os.getppid() != parent:  # the parent died before this worker started
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        for pid in _descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _init(threads: int, extra: list[tuple[str, object]], parent: int) -> None:
    """Worker start: dies with ``parent``; the allocator setting and thread count of a compute verb, and the
    parent's plugins.

    torch is not imported here (a job whose records are all reused never
    needs it): ``OMP_NUM_THREADS`` sets its thread count when it is imported.
    """
    from bench import allocator, plugins

    _die_with(parent)
    allocator.tune()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["BENCH_THREADS"] = str(threads)
    plugins.register_all(extra)
    snapshot.begin()  # the worker lives for one command's jobs: each task's data read once in it
    if "torch" in sys.modules:  # the parent's plugins, unpickled, may have imported it already
        sys.modules["torch"].set_num_threads(threads)


def _run(index: int, job: Job, js: JobSet, log_path: str) -> Finished:
    """One job in a worker, its stdout and stderr (file descriptors 1 and 2) written to ``log_path``."""
    saved = (os.dup(1), os.dup(2))
    sys.stdout.flush()
    sys.stderr.flush()
    protocol = js.config.settings.protocol
    with open(log_path, "w") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            failures: list[str] = []
            missing = [t for t in job.tasks if (t, protocol) not in _TASKS]
            for name, task in make_tasks(missing, protocol, failures, js.config.settings.out).items():
                _TASKS[(name, protocol)] = task
            tasks = {t: _TASKS[(t, protocol)] for t in job.tasks if (t, protocol) in _TASKS}
            # no progress bars: the log is printed when the job ends
            settings = dataclasses.replace(js.config.settings, progress=False)
            quiet = dataclasses.replace(js, config=dataclasses.replace(js.config, settings=settings))
            result = _execute(index, job, quiet, tasks, failures)
            result.failures = failures
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    return result
