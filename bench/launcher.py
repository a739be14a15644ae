"""``--launcher slurm``: each job of ``bench reproduce`` / ``bench sweep`` as one cluster job, through submitit.

A :class:`bench.jobs.Job` (one encoder with its options and pretraining
seed: its pretraining, extraction and probes) is independent of the others
except through the cache, so each one is submitted as one Slurm job with the
GPUs, CPUs, memory and time of the ``--slurm-*`` options. The jobs read and
write the same cache folder (``BENCH_CACHE_DIR``, which must be on a file
system every node sees, as must the data roots and ``--out``): checkpoints,
embeddings and probes land there by key, with the locks that already keep two
local workers from building one thing twice. This process waits for the jobs
(polling every ``--slurm-poll`` seconds), prints each one's log when it ends,
and assembles the records and the report as a local run does.

Reruns: each job writes its outcome to ``<folder>/results/<key>.pkl`` when it
ends (the key is a digest of the job, the run's settings, bench's source and the plugins' identities),
and the job ids go to ``<folder>/jobs.json``. A rerun of the same command
collects the outcomes of the jobs that finished, waits for the ones still
queued or running on the cluster (no second submission), and submits again
the ones that failed, died or were never submitted; those reuse whatever
their first attempt cached. An outcome with a failed part is submitted again
too, as a local rerun would retry it.

``--slurm-cluster local`` runs the same path through submitit's local
executor (each job a process on this machine): how the tests exercise it,
and a way to try a command before queueing it.

submitit is imported only when a slurm launcher runs (``bench --help`` does
not import it); without it ``--launcher slurm`` is a usage error naming the
extra to install.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pickle
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError

if TYPE_CHECKING:  # pragma: no cover
    from bench.jobs import Finished, Job, JobSet

INSTALL = "pip install music-bench[slurm]"
#: the environment a job gets from this process (the cache folder above all: the jobs share it)
CARRIED_ENV = ("BENCH_CACHE_DIR", "BENCH_CONFIG", "BENCH_DATA_ROOT", "BENCH_DIST_TIMEOUT_S", "BENCH_STRICT_PLUGINS")
#: Slurm states of a job that may still end well: a rerun waits for it instead of submitting it again
LIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED", "UNKNOWN")
_SLURM_FLAGS = ("slurm_partition", "slurm_gpus", "slurm_cpus", "slurm_time", "slurm_mem", "slurm_account",
                "slurm_folder", "slurm_cluster", "slurm_poll")


def add_launcher(p: argparse.ArgumentParser) -> None:
    """``--launcher local|slurm`` and the ``--slurm-*`` options of the commands that run jobs."""
    p.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="local (default): the jobs run on this machine (--jobs); slurm: each job (an encoder and "
                        "pretraining seed: pretraining, extraction, probes) is one Slurm job through submitit, and "
                        "the report is written when they end; the cache folder, data roots and --out must be on a "
                        f"shared file system (docs/scale.md; needs `{INSTALL}`)")
    g = p.add_argument_group("slurm launcher (--launcher slurm)")
    g.add_argument("--slurm-partition", default=None, metavar="NAME", help="partition of every job")
    g.add_argument("--slurm-account", default=None, metavar="NAME", help="account charged for the jobs")
    g.add_argument("--slurm-gpus", type=int, default=1, metavar="N",
                   help="GPUs per job: 1 (default) or 0 for CPU jobs; a job runs one process")
    g.add_argument("--slurm-cpus", type=int, default=8, metavar="N",
                   help="CPU cores per job (default 8): torch threads and the pretraining sampler's share "
                        "(docs/scale.md: about 2 cores feed the paper recipe on one GPU)")
    g.add_argument("--slurm-mem", type=int, default=None, metavar="GB", help="memory per job (default: the "
                   "partition's)")
    g.add_argument("--slurm-time", default="24:00:00", metavar="[D-]HH:MM:SS|MIN",
                   help="time limit per job (default 24:00:00; the paper's 50k-step pretraining plus probes)")
    g.add_argument("--slurm-folder", type=Path, default=None, metavar="DIR",
                   help="submitit's folder: job scripts, logs, outcomes and jobs.json (default: <out>/slurm)")
    g.add_argument("--slurm-cluster", choices=("slurm", "local"), default="slurm",
                   help="slurm (default) or local: the same jobs as processes on this machine through submitit's "
                        "local executor (a try before queueing; the tests)")
    g.add_argument("--slurm-poll", type=float, default=30.0, metavar="S",
                   help="seconds between checks of the jobs' states (default 30)")


def parse_time(text: str) -> int:
    """``--slurm-time``: minutes (``90``), ``HH:MM``, ``HH:MM:SS`` or ``D-HH:MM:SS`` -> whole minutes, at least 1."""
    t = str(text).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?", t)
    if not m or (m.group(1) and not m.group(3)):
        raise BenchError(f"--slurm-time {text!r}: give minutes (90), HH:MM, HH:MM:SS or D-HH:MM:SS (1-12:00:00)")
    days, first, second, third = (int(g) if g else 0 for g in m.groups())
    if m.group(3) is None:  # plain minutes
        minutes = first
    elif m.group(4) is None:  # HH:MM
        minutes = first * 60 + second
    else:  # HH:MM:SS, rounded up to whole minutes
        minutes = first * 60 + second + (1 if third else 0)
    minutes += days * 24 * 60
    if minutes < 1:
        raise BenchError(f"--slurm-time {text!r}: the time limit must be at least one minute")
    return minutes


@dataclass(frozen=True)
class SlurmSettings:
    """What every job is given: resources, where submitit writes, the device each job resolves for itself."""

    partition: str | None = None
    account: str | None = None
    gpus: int = 1
    cpus: int = 8
    mem_gb: int | None = None
    minutes: int = 24 * 60
    folder: Path | None = None
    cluster: str = "slurm"
    poll_s: float = 30.0
    #: the --device as given: each job resolves it on its own node (``auto``: its GPU)
    device: str = "auto"


def launcher_from_args(args: argparse.Namespace) -> SlurmLauncher | None:
    """The launcher of ``--launcher``: None for ``local``; a :class:`SlurmLauncher` after checking every
    ``--slurm-*`` value and that submitit can be imported (else a usage error naming the extra)."""
    given = [f"--{f.replace('_', '-')}" for f in _SLURM_FLAGS
             if getattr(args, f, None) not in (None, add_defaults().get(f))]
    if args.launcher == "local":
        if given:
            raise BenchError(f"{given[0]} applies to --launcher slurm; add --launcher slurm or drop it")
        return None
    import importlib.util

    if importlib.util.find_spec("submitit") is None:
        raise BenchError(f"--launcher slurm submits the jobs through submitit, which is not installed: {INSTALL}")
    if args.slurm_gpus not in (0, 1):
        raise BenchError(f"--slurm-gpus {args.slurm_gpus}: a job runs one process on 0 or 1 GPU; to spread one "
                         "pretraining over several GPUs use accelerate launch (docs/scale.md)")
    if args.slurm_cpus < 1:
        raise BenchError(f"--slurm-cpus must be at least 1, got {args.slurm_cpus}")
    if args.slurm_mem is not None and args.slurm_mem < 1:
        raise BenchError(f"--slurm-mem must be at least 1 (GB), got {args.slurm_mem}")
    if not args.slurm_poll > 0:
        raise BenchError(f"--slurm-poll must be positive (seconds), got {args.slurm_poll}")
    device = str(getattr(args, "device", "auto") or "auto").strip().lower()
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        raise BenchError(f"--device {device!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    if args.slurm_gpus == 0 and device.startswith("cuda"):
        raise BenchError(f"--device {device} with --slurm-gpus 0: the jobs would have no GPU; give --slurm-gpus 1")
    folder = args.slurm_folder.expanduser().resolve() if args.slurm_folder else None
    return SlurmLauncher(SlurmSettings(args.slurm_partition, args.slurm_account, args.slurm_gpus, args.slurm_cpus,
                                       args.slurm_mem, parse_time(args.slurm_time), folder, args.slurm_cluster,
                                       float(args.slurm_poll), device))


def add_defaults() -> dict[str, Any]:
    """The ``--slurm-*`` defaults (a value other than these, given with ``--launcher local``, is refused)."""
    p = argparse.ArgumentParser()
    add_launcher(p)
    return {f: p.get_default(f) for f in _SLURM_FLAGS}


def job_key(job: Job, js: JobSet) -> str:
    """A digest of everything a job's outcome depends on: the job, the run's settings, bench's source and its
    plugins' identities (distribution, version, code digest).

    Another setting (protocol, seeds, data roots, options) or another bench gives another key, so a rerun
    never collects an outcome made for something else.
    """
    from bench.keys import code_digest, plugin_identity

    settings = dataclasses.replace(js.config.settings, progress=False)
    def identity(kind: str, name: str) -> Any:
        try:
            return plugin_identity(kind, name)
        except Exception:  # noqa: BLE001 - not registered: the job reports it; the name stands in
            return name

    plugins = [identity("encoder", job.encoder), *[identity("task", t) for t in job.tasks]]
    text = json.dumps([repr(job), repr(dataclasses.replace(js, config=dataclasses.replace(js.config,
                                                                                           settings=settings))),
                       code_digest("bench", package=True, recursive=True), plugins], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class SlurmLauncher:
    """Runs jobs as Slurm jobs (or submitit local processes) and collects their records."""

    def __init__(self, settings: SlurmSettings) -> None:
        self.settings = settings

    def describe(self) -> str:
        s = self.settings
        res = (f"{s.gpus} GPU, {s.cpus} CPU cores" + (f", {s.mem_gb} GB" if s.mem_gb else "")
               + f", {s.minutes // 60}:{s.minutes % 60:02d} h")
        where = f"partition {s.partition}" if s.partition else "the default partition"
        if s.account:
            where += f", account {s.account}"
        cluster = "Slurm" if s.cluster == "slurm" else "local processes through submitit (--slurm-cluster local)"
        return (f"launcher: {cluster}; one job per row above ({res}; {where}); device {s.device} resolved on each "
                f"node; logs and outcomes in {s.folder or '<out>/slurm'}; the cache folder and --out must be "
                "shared by the nodes")

    def folder(self, js: JobSet) -> Path:
        return self.settings.folder or Path(js.config.settings.out).resolve() / "slurm"

    def executor(self, folder: Path) -> Any:
        import submitit

        s = self.settings
        ex = submitit.AutoExecutor(folder=folder / "%j", cluster=s.cluster)
        params: dict[str, Any] = {"timeout_min": s.minutes, "cpus_per_task": s.cpus, "gpus_per_node": s.gpus,
                                  "nodes": 1, "tasks_per_node": 1, "name": "bench"}
        if s.mem_gb:
            params["mem_gb"] = s.mem_gb
        if s.partition:
            params["slurm_partition"] = s.partition
        if s.account:
            params["slurm_account"] = s.account
        ex.update_parameters(**params)
        return ex

    def run_jobs(self, jobs: list[Job], js: JobSet, failures: list[str] | None = None,
                 ) -> tuple[list[dict[str, Any]], dict[str, float]]:
        """Submit the jobs not finished yet, wait for all, return the records in job order and each job's
        seconds (by label), as :func:`bench.jobs.run_jobs` does."""
        from bench import plugins
        from bench.corruptions import parse_conditions
        from bench.jobs import Finished
        from bench.run import log
        from bench.store import cache_dir

        failures = failures if failures is not None else []
        if js.conditions:
            parse_conditions(js.conditions)  # a bad condition is named before anything is submitted
        folder = self.folder(js)
        (folder / "results").mkdir(parents=True, exist_ok=True)
        state_path = folder / "jobs.json"
        state = _read_json(state_path)
        env = {k: os.environ[k] for k in CARRIED_ENV if k in os.environ}
        env["BENCH_CACHE_DIR"] = str(cache_dir().expanduser().resolve())
        extra = plugins.registered_in_process()
        what = js.announce or "jobs"
        n = len(jobs)
        done: dict[int, Finished] = {}
        waiting: dict[int, Any] = {}
        executor = None
        collected = resumed = 0
        keys = [job_key(job, js) for job in jobs]
        for i, job in enumerate(jobs):
            key = keys[i]
            result = folder / "results" / f"{key}.pkl"
            got = _load(result)
            if got is not None and not got.failures:
                done[i] = dataclasses.replace(got, index=i)
                collected += 1
                continue
            old = state.get(key, {})
            live = self._live(folder, old) if got is None else None
            if live is not None:
                waiting[i] = live
                resumed += 1
                continue
            result.unlink(missing_ok=True)  # an outcome with failures: the new attempt's replaces it
            if executor is None:
                executor = self.executor(folder)
            executor.update_parameters(name=f"bench-{i + 1}-{_safe(job.name)}"[:64])
            sub = executor.submit(_job_main, i, job, js, env, self.settings.device, extra, self.settings.cpus,
                                  str(result))
            state[key] = {"label": job.name, "job_id": str(sub.job_id), "cluster": self.settings.cluster,
                          "submitted": time.strftime("%Y-%m-%d %H:%M:%S %z")}
            _write_json(state_path, state)
            log(f"== {what}: job {i + 1}/{n} submitted: {job.name} ({job.role}) as {self.settings.cluster} job "
                f"{sub.job_id}; log {sub.paths.stderr}")
            waiting[i] = sub
        log(f"{what}: {n} jobs: {collected} collected from an earlier run, {resumed} still on the cluster from an "
            f"earlier run, {n - collected - resumed} submitted; waiting (folder {folder})")
        while waiting:
            for i in list(waiting):
                sub = waiting[i]
                job = jobs[i]
                path = folder / "results" / f"{keys[i]}.pkl"
                got = _load(path)
                if got is None:
                    if not sub.done():
                        continue
                    got = _load(path)  # it may have ended between the two looks
                del waiting[i]
                if got is None:
                    got = Finished(i, [], [self._failure(job, sub)], 0.0)
                _replay(sub)
                done[i] = dataclasses.replace(got, index=i)
                log(f"== {what}: job {i + 1}/{n} finished: {job.name} in {got.seconds:.1f} s "
                    f"({len(got.records)} records" + (f", {len(got.failures)} failed" if got.failures else "") + ")")
            if waiting:
                time.sleep(self.settings.poll_s)
        for i in range(n):
            failures.extend(done[i].failures)
        records = [r for i in range(n) for r in done[i].records]
        return records, {jobs[i].name: done[i].seconds for i in done}

    def _live(self, folder: Path, old: dict[str, Any]) -> Any:
        """The cluster job of an earlier run still queued or running (so not submitted again), else None."""
        if not old or old.get("cluster") != "slurm" or self.settings.cluster != "slurm":
            return None  # a local process of an earlier run died with it
        import submitit

        job: Any = submitit.SlurmJob(folder=folder / "%j", job_id=old["job_id"])
        try:
            state = str(job.state).upper()
        except Exception:  # noqa: BLE001 - sacct unreachable: submit again rather than wait forever
            return None
        return job if state.split()[0] in LIVE_STATES else None

    @staticmethod
    def _failure(job: Job, sub: Any) -> str:
        """The failure of a job that left no outcome (killed, timed out, out of memory, crashed)."""
        reason = ""
        try:  # the last exception line of its log (a crash, an import error), else submitit's own word
            text = sub.stderr() or ""
            errors = [ln.strip() for ln in text.splitlines() if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b",
                                                                         ln.strip())]
            reason = errors[-1] if errors else ""
            if not reason:
                exc = sub.exception()
                reason = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
        except Exception as exc:  # noqa: BLE001 - the state itself cannot be read
            reason = f"{type(exc).__name__}: {exc}"
        reason = reason[:300]
        return (f"{job.name}: its cluster job {sub.job_id} ended without an outcome"
                + (f" ({reason})" if reason else "") + f"; its log is {sub.paths.stderr}. Rerun the same command: "
                "finished jobs are collected, this one is submitted again and reuses what it cached")


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _load(path: Path) -> Finished | None:
    """A job's outcome written by :func:`_job_main`; None when absent or unreadable (then it runs again)."""
    from bench.jobs import Finished

    try:
        with open(path, "rb") as fh:
            got = pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - a torn or foreign file is not trusted: the job runs again
        return None
    return got if isinstance(got, Finished) else None


def _replay(sub: Any) -> None:
    """Print a finished job's log (stderr, then stdout) to this process's stderr, progress redraws dropped."""
    for reader in (sub.stderr, sub.stdout):
        try:
            text = reader() or ""
        except Exception:  # noqa: BLE001 - a missing log is not an error of the run
            continue
        lines = [ln.split("\r")[-1] for ln in text.splitlines()]
        body = "\n".join(ln for ln in lines if ln.strip() and not ln.startswith("submitit "))
        if body:
            print(body, file=sys.stderr, flush=True)


def _job_main(index: int, job: Job, js: JobSet, env: dict[str, str], device: str,
              extra: list[tuple[str, object]], threads: int, result_path: str) -> Finished:
    """One job on its node: the submitter's cache folder and plugins, the device resolved here, the job run as
    a local worker runs it; its outcome written to ``result_path`` (atomically) and returned."""
    from bench import allocator, plugins
    from bench.corruptions import parse_conditions
    from bench.device import resolve_device
    from bench.jobs import Finished, run_job
    from bench.pair import make_tasks

    os.environ.update(env)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["BENCH_THREADS"] = str(threads)
    allocator.tune()
    plugins.register_all(extra)
    t0 = time.perf_counter()
    failures: list[str] = []
    try:
        resolved = resolve_device(device)
    except BenchError as exc:
        failures.append(f"{job.name}: {exc}")
        finished = Finished(index, [], failures, 0.0)
    else:
        settings = dataclasses.replace(js.config.settings, device=resolved, progress=False)
        js = dataclasses.replace(js, config=dataclasses.replace(js.config, settings=settings))
        tasks = make_tasks(list(job.tasks), settings.protocol, failures, settings.out)
        conditions = parse_conditions(js.conditions) if js.conditions and job.robustness_tasks else []
        records = run_job(job, js, tasks, conditions, failures)
        finished = Finished(index, records, failures, round(time.perf_counter() - t0, 1))
    path = Path(result_path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(finished, fh)
    os.replace(tmp, path)
    return finished
