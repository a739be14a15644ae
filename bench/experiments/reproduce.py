"""``bench reproduce`` as a stage: everything the paper's four claims need, then one report with a verdict each.

The plan (:func:`plan`) is a list of jobs, each an encoder with options, a row
label, the tasks it is evaluated on and, for the robustness claim, the
corruption conditions of its test audio:

- the four encoders of the paper, clean, on every task: ``semisupcon``,
  ``simclr``, ``supervised``, ``random``;
- the label-fraction sweep: ``semisupcon[label_fraction=F]`` (the default
  fraction 1.0 is ``semisupcon`` itself);
- a second supervision source: ``semisupcon[label_task=...]`` against the
  preset's own labeled pool;
- the robustness suite on ``semisupcon`` and ``simclr`` (a quick subset of the
  conditions at demo scale).

Each job goes through the run steps (:func:`bench.run.prepare_encoder`:
pretrained once, cached by key; :func:`bench.pair.evaluate_pair`:
embeddings cached, records reused when they match), so a second run only
rewrites the report. The claims and their comparisons are built by
:func:`claims_for`; :mod:`bench.experiments.report` writes the report.

Scales: ``demo`` runs on the generated demo data on CPU (the demo preset, the
demo size ``medium`` when this bench has it, else ``small``); ``paper`` is the
paper's recipe (preset ``paper``, 50k-step pretraining, the full suite) for
real data and GPUs, and refuses to run on demo data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError
from bench.experiments.claims import Claim, Spec
from bench.jobs import Job
from bench.settings import RunConfig

if TYPE_CHECKING:  # pragma: no cover
    from bench.config import DataRoots
    from bench.launcher import SlurmLauncher

#: every task the claims use, in the order of the report
TASKS = ("mtat", "nsynth_pitch", "giantsteps_key", "gtzan")
TAGGING, PITCH, KEY = "mtat", "nsynth_pitch", "giantsteps_key"


@dataclass(frozen=True)
class Scale:
    """What a scale runs: preset, probe seeds and grid, sweep values, sources, corruption conditions."""

    name: str
    options: dict[str, Any]
    seeds: tuple[int, ...]
    probe_grid: str
    fractions: tuple[float, ...]
    #: the second supervision source (the preset's own pool is the first)
    source: str
    #: what the preset's own labeled pool is, for the report
    preset_source: str
    conditions: str
    #: tasks of the robustness runs (None: every task of the run)
    robustness_tasks: tuple[str, ...] | None = None
    demo: bool = True
    budget: str = ""
    #: pretraining seeds of every seeded job (each pretrained or initialised once per seed; rows and claims
    #: pool them: the multi-bootstrap). Empty: each encoder's own seed, one model
    pretrain_seeds: tuple[int, ...] = ()


SCALES = {
    # demo: five pretrainings of the demo recipe (800 steps of 32 clips; docs/experiments.md has the measured
    # figures: 3 seeds took 83 min from an empty cache), three probe seeds, the default grid,
    # five corruptions at one strength each. One label fraction, the 5% claim 1 names (with simclr at 0% and
    # semisupcon at 100% the sweep has three points): a 20% variant cost 3.7 of the 37 minutes measured with it
    # Three pretraining seeds: one checkpoint per encoder let a second pretraining (another thread count or
    # machine) flip verdicts, so a claim is about the procedure, not one checkpoint (docs/experiments.md)
    "demo": Scale("demo", {}, (0, 1, 2), "default", (0.05,), "mtat", "nsynth_pitch+gtzan",
                  "augment@1;reverb@0.5;distortion@20;bitcrush@6;mp3@32",
                  budget="about 85 min on 2 CPU cores from an empty cache (83 min measured)",
                  pretrain_seeds=(0, 1, 2)),
    # paper: the paper's preset and recipe (50k steps, batch 96 x 2 views), three probe seeds, the default
    # grid, the official p_s grid and the full robustness suite; for real data and GPUs
    "paper": Scale("paper", {"preset": "paper"}, (0, 1, 2), "default", (0.05, 0.1, 0.25, 0.5, 0.75),
                   "nsynth_pitch", "mtat", "default", demo=False, budget="days on one GPU"),
}

#: label-fraction presets of ``--fractions``: ``official`` is the p_s grid of the official SemiSupCon code's
#: configs (``config/pretraining/experiments/ps_bs/ps/ps={005,01,025,05,075}.yaml``, ``supervised_data_p``);
#: p_s = 1.0 is the plain ``semisupcon`` job
FRACTION_PRESETS: dict[str, tuple[float, ...]] = {"official": (0.05, 0.1, 0.25, 0.5, 0.75), "none": ()}
#: the encoders of the plan that are pretrained (recipe options apply to them); ``random`` is not
TRAINED = ("semisupcon", "simclr", "supervised")
#: the encoders that draw an unlabeled pool (``--unlabeled-dir``); the supervised baseline reads labels only
CONTRASTIVE = ("semisupcon", "simclr")
#: options the plan itself sets per job: refused in ``-O`` (``seed``: see --pretrain-seeds)
PLANNED = ("label_fraction",)


@dataclass
class Plan:
    scale: Scale
    tasks: tuple[str, ...]
    jobs: list[Job]
    claims: list[Claim]
    demo_size: str | None = None
    #: the probing protocol (bench.protocols) every job is scored under
    protocol: str = "bench"
    #: the unlabeled pool's folders (``--unlabeled-dir``), given to the contrastive jobs
    unlabeled_dirs: tuple[str, ...] = ()
    #: ``-O`` options given to every job (``encoder:key`` scoped to one); recipe keys to the pretrained ones
    options: dict[str, Any] = field(default_factory=dict)
    #: the label fractions of the p_s sweep
    fractions: tuple[float, ...] = ()
    #: ``--official-batchnorm``: BatchNorm statistics re-estimated per task, as the official probe (bench.batchnorm)
    official_batchnorm: bool = False


def parse_fractions(text: str | None, default: tuple[float, ...]) -> tuple[float, ...]:
    """``--fractions``: a preset name (official, none), or fractions in (0, 1) separated by commas."""
    if text is None:
        return default
    name = text.strip().lower()
    if name in FRACTION_PRESETS:
        return FRACTION_PRESETS[name]
    try:
        values = tuple(float(v) for v in name.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(not 0 < v < 1 for v in values) or len(set(values)) != len(values):
        raise BenchError(f"--fractions {text!r}: give {', '.join(FRACTION_PRESETS)} or distinct label fractions in "
                         "(0, 1) separated by commas, e.g. 0.05,0.25 (1.0 is the plain semisupcon job)")
    return values


def job_options(encoder: str, base: dict[str, Any], fixed: dict[str, Any], unlabeled_dirs: tuple[str, ...],
                ) -> dict[str, Any]:
    """One job's options: the scale's, the ``-O`` ones that apply to ``encoder`` (recipe keys only to the
    pretrained encoders) and the unlabeled folders (contrastive encoders)."""
    from bench.run import encoder_options_for, split_options

    mine = encoder_options_for(encoder, fixed)
    if encoder not in TRAINED:
        mine = split_options(mine)[0]
    if encoder == "simclr":  # no labeled pool: the option would only change its checkpoint key
        mine.pop("official_ps_twice", None)
    out = {**base, **mine}
    if unlabeled_dirs and encoder in CONTRASTIVE:
        out["unlabeled_dirs"] = tuple(unlabeled_dirs)
    return out


def demo_size() -> str:
    """The demo data size of ``--scale demo``: ``medium`` when this bench has it, else ``small``."""
    from bench import config

    return "medium" if "medium" in config.DEMO_SIZES else "small"


def plan(scale_name: str, tasks: tuple[str, ...] | None = None, pretrain_seeds: tuple[int, ...] | None = None,
         *, protocol: str = "bench", unlabeled_dirs: tuple[str, ...] = (), options: dict[str, Any] | None = None,
         fractions: tuple[float, ...] | None = None, conditions: str | None = None,
         official_batchnorm: bool = False) -> Plan:
    """The jobs and claims of a scale, on ``tasks`` (default: all four of the paper's tasks).

    ``pretrain_seeds``: the pretraining seeds of every seeded job (None: the scale's own);
    ``protocol``: the probing protocol; ``unlabeled_dirs``: the contrastive jobs' unlabeled pool (the
    paper's is FMA); ``options``: ``-O`` options of every job; ``fractions``: the p_s sweep (default: the
    scale's); ``conditions``: the robustness claim's corruption conditions (default: the scale's).
    """
    import dataclasses

    from bench import protocols
    from bench.jobs import with_pretrain_seeds

    if scale_name not in SCALES:
        raise BenchError(f"--scale {scale_name!r}: choose one of {', '.join(SCALES)}")
    protocol = protocols.get(protocol).name
    fixed = dict(options or {})
    planned = sorted({k.split(":", 1)[-1] for k in fixed} & set(PLANNED))
    if planned:
        raise BenchError(f"-O {planned[0]}=...: bench reproduce sets {planned[0]} per job itself (--fractions "
                         "for the label fractions); leave it out of -O")
    s = SCALES[scale_name]
    if pretrain_seeds is not None:
        s = dataclasses.replace(s, pretrain_seeds=tuple(pretrain_seeds))
    if conditions is not None:
        from bench.corruptions import parse_conditions

        parse_conditions(conditions)  # a bad condition is named before anything runs
        s = dataclasses.replace(s, conditions=conditions)
    fracs = s.fractions if fractions is None else tuple(fractions)
    tasks = tuple(tasks or TASKS)
    rob = tuple(t for t in (s.robustness_tasks or tasks) if t in tasks)
    lf = {"label_fraction": "1.0"}
    src = s.source.replace("+", ",")
    dirs = tuple(unlabeled_dirs)

    def opts(encoder: str, **extra: Any) -> dict[str, Any]:
        return {**job_options(encoder, s.options, fixed, dirs), **extra}

    jobs = [
        Job("semisupcon", "semisupcon", opts("semisupcon"), tasks, rob, {"sweep": lf}, "SemiSupCon (preset labels)"),
        Job("simclr", "simclr", opts("simclr"), tasks, rob, {}, "SimCLR (no labels)"),
        Job("supervised", "supervised", opts("supervised"), tasks, (), {}, "supervised baseline"),
        Job("random", "random", opts("random"), tasks, (), {}, "untrained floor"),
        *[Job(f"semisupcon[label_fraction={f:g}]", "semisupcon", opts("semisupcon", label_fraction=f), tasks, (),
              {"sweep": {"label_fraction": f"{f:g}"}}, f"SemiSupCon, {f:.0%} of the labels") for f in fracs],
        Job(f"semisupcon[label_task={s.source}]", "semisupcon", opts("semisupcon", label_task=src), tasks, (), {},
            f"SemiSupCon labeled by {s.source}"),
    ]
    p = Plan(s, tasks, jobs, [], demo_size() if s.demo else None, protocol, dirs, fixed, fracs, official_batchnorm)
    p.claims = claims_for(p)  # on the seed-free jobs: a claim compares rows, each pooling its seeds
    p.jobs = with_pretrain_seeds(jobs, s.pretrain_seeds)
    return p


def claims_for(p: Plan) -> list[Claim]:
    """The four claims of method.md with the comparisons that decide them on this plan's jobs."""
    s, tasks = p.scale, p.tasks
    five = next((j.label for j in p.jobs if j.tags.get("sweep", {}).get("label_fraction") == "0.05"), None)
    src_label = f"semisupcon[label_task={s.source}]"
    own = set(s.preset_source.split("+"))
    other = set(s.source.split("+"))
    claims = [
        Claim(1, "Labeled positives beat SimCLR on tagging, even with 5% of the labels.",
              [Spec(five, "simclr", TAGGING) if five else Spec("semisupcon[label_fraction=0.05]", "simclr", TAGGING),
               Spec("semisupcon", "simclr", TAGGING),
               Spec("supervised", "simclr", TAGGING, counted=False, note="context"),
               Spec("random", "simclr", TAGGING, counted=False, note="context")],
              "SemiSupCon with 5% and with all of its labels against SimCLR, macro ROC-AUC on the tagging task."),
        Claim(2, "SemiSupCon transfers better than SimCLR to pitch and key, which pitch-shift augmentation teaches "
                 "SimCLR to ignore.",
              [Spec("semisupcon", "simclr", PITCH), Spec("semisupcon", "simclr", KEY),
               Spec("random", "simclr", PITCH, counted=False, note="context: does SimCLR lose what the "
                    "untrained network has?"),
               Spec("random", "simclr", KEY, counted=False, note="context")],
              "SemiSupCon against SimCLR on pitch (NSynth accuracy) and key (MIREX weighted score)."
              + (" At demo scale the pretraining recipe does not augment (docs/pretraining.md), so SimCLR is not "
                 "taught to ignore pitch here: the comparison asks whether the labels add pitch and key "
                 "information to what both learn without augmentation." if s.demo else "")),
        Claim(3, "SemiSupCon's representation is more robust to audio corruptions than SimCLR's.",
              [Spec("semisupcon", "simclr", t, kind="drop") for t in next(
                  (j.robustness_tasks for j in p.jobs if j.label == "semisupcon"), ())],
              "Drop of the primary metric (clean - corrupted, averaged over the conditions) of SemiSupCon minus "
              "SimCLR's, per task; negative = SemiSupCon loses less."),
        Claim(4, "The choice of the labeled dataset shapes the representation: each labeled pool helps the tasks "
                 "it labels.",
              [*[Spec(src_label, "semisupcon", t, note=f"{t} is labeled by {s.source} only")
                 for t in sorted(other - own) if t in tasks],
               *[Spec("semisupcon", src_label, t, note=f"{t} is labeled by {s.preset_source} only")
                 for t in sorted(own - other) if t in tasks]],
              f"SemiSupCon labeled by {s.preset_source} (the preset's pool, row 'semisupcon') against SemiSupCon "
              f"labeled by {s.source}, on the tasks only one of the two pools labels."),
    ]
    for c in claims:  # a claim whose tasks were left out by --tasks says so rather than disappearing
        c.specs = [sp for sp in c.specs if sp.task in tasks] or c.specs[:0]
    return claims


def run_plan(p: Plan, config: RunConfig, workers: int = 1, threads: int | None = None,
             launcher: SlurmLauncher | None = None) -> tuple[list[dict[str, Any]], list[str], dict[str, float]]:
    """Run every job (pretraining cached, records reused); returns records, failures and the jobs' seconds.

    ``workers`` > 1: the jobs run side by side in that many worker processes
    of ``threads`` torch threads each (:func:`bench.jobs.run_jobs`); ``launcher``: each job a cluster job
    (:mod:`bench.launcher`).
    """
    from bench.jobs import JobSet, run_jobs

    failures: list[str] = []
    js = JobSet(config, p.scale.conditions, announce="reproduce")
    if launcher is not None or (workers > 1 and len(p.jobs) > 1):
        _build_demo_data(config, p.tasks)
    if launcher is not None:
        records, seconds = launcher.run_jobs(p.jobs, js, failures)
    else:
        records, seconds = run_jobs(p.jobs, js, workers, threads, failures)
    return records, failures, seconds


def _build_demo_data(config: RunConfig, names: tuple[str, ...]) -> None:
    """Build the demo data of the plan's tasks that use it, here, before jobs run side by side.

    Two jobs starting together would otherwise both render the same datasets
    (their pretraining pools read every task's data too). A task whose data
    cannot be built is left to its jobs, which report it with their context.
    """
    from bench import plugins

    for name in names:
        roots = config.settings.data_roots
        if not roots.is_demo(name):
            continue
        try:
            roots.root(plugins.get_task(name))
        except Exception:  # noqa: BLE001 - reported by the jobs that need this task
            continue


@dataclass
class Outcome:
    records: list[dict[str, Any]]
    failures: list[str]
    files: dict[str, Any]
    #: one line per claim with its verdict
    lines: list[str]


def run(p: Plan, roots: DataRoots, *, out: Path, device: str = "auto", progress: bool = False,
        started: float | None = None, jobs: int | None = 1, threads: int | None = None,
        launcher: SlurmLauncher | None = None) -> Outcome:
    """Run the plan into ``out`` and write the report; the verdicts come back as lines for the terminal.

    ``jobs``: how many jobs run side by side in worker processes (None: as many
    as suit this machine, :func:`bench.jobs.auto_workers`);
    ``threads``: torch threads per worker (None: the cores shared out);
    ``launcher``: the jobs go to a cluster instead (:mod:`bench.launcher`; the device is resolved by each job).
    """
    import sys

    from bench import __version__
    from bench.device import resolve_device
    from bench.experiments import report
    from bench.run import log
    from bench.settings import EvalSettings

    started = time.perf_counter() if started is None else started
    s = p.scale
    # with a launcher each job resolves the device on its own node (this one may have no GPU)
    dev = resolve_device(device) if launcher is None else launcher.settings.device
    settings = EvalSettings(out=out, data_roots=roots, device=dev, seeds=s.seeds,
                            probe_grid=s.probe_grid, progress=progress, protocol=p.protocol,
                            official_batchnorm=p.official_batchnorm)
    config = RunConfig(encoders=[], tasks=list(p.tasks), settings=settings)
    log(f"reproduce --scale {s.name}: {len(p.jobs)} jobs on {', '.join(p.tasks)}"
        + (f" (demo data, size {p.demo_size})" if s.demo else "") + f"; output {out}")
    if launcher is not None:
        jobs, threads = 1, launcher.settings.cpus
    elif jobs is None:
        from bench.jobs import auto_workers

        jobs, auto_threads = auto_workers(len(p.jobs), settings.device)
        threads = threads or auto_threads
    records, failures, seconds = run_plan(p, config, jobs, threads, launcher)
    meta = {
        "scale": s.name, "demo": s.demo, "demo_size": p.demo_size,
        "command": "bench " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("bench") else
                   f"bench reproduce --scale {s.name}",
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"), "version": __version__, "tasks": list(p.tasks),
        "seeds": list(s.seeds), "grid": s.probe_grid, "conditions": s.conditions, "protocol": p.protocol,
        "official_batchnorm": p.official_batchnorm, "fractions": list(p.fractions),
        "unlabeled_dirs": list(p.unlabeled_dirs), "options": dict(p.options),
        "workers": jobs, "threads": threads, "launcher": launcher.describe() if launcher else "local",
        "pretrain_seeds": list(s.pretrain_seeds),
        "jobs": [{"label": j.label, "pretrain_seed": j.pretrain_seed, "role": j.role,
                  "seconds": seconds.get(j.name, 0.0)} for j in p.jobs],
        "failures": failures, "wall_s": time.perf_counter() - started,
    }
    files, assessed = report.write(records, p.claims, meta, out) if records else ({}, [])
    return Outcome(records, failures, files, report.summary_lines(assessed))


def pools_text(p: Plan, job: Job) -> str:
    """What a job pretrains on, in words: the labeled pool and its p_s, the unlabeled pool (no data read)."""
    if job.encoder not in TRAINED:
        return "not pretrained"
    labeled = str(job.options.get("label_task") or p.scale.preset_source).replace(",", "+").replace("+", " + ")
    ps = float(job.options.get("label_fraction", 1.0))
    twice = " applied twice (official_ps_twice)" if job.options.get("official_ps_twice") else ""
    lab = f"labeled {labeled} train split(s), p_s {ps:g}{twice}"
    if job.encoder == "supervised":
        return lab
    unl = ("; ".join(_folder_text(d) for d in job.options["unlabeled_dirs"]) if job.options.get("unlabeled_dirs")
           else "the train splits of every task whose data is present (no --unlabeled-dir)")
    return ("no labels; " if job.encoder == "simclr" else lab + "; ") + "unlabeled " + unl


def _folder_text(d: str) -> str:
    from bench.pretrain import fma

    path = d[len(fma.PREFIX):] if d.startswith(fma.PREFIX) else d
    try:
        if d.startswith(fma.PREFIX) or fma.is_fma(path):
            return f"FMA at {path} (its training split)"
    except Exception:  # noqa: BLE001 - an unreadable folder is reported when the pools are built
        pass
    return f"every audio file under {path}"


def describe(p: Plan) -> str:
    """The plan in words: protocol, p_s grid, jobs (options, pools, tasks, corruptions), each claim's comparisons."""
    from bench import protocols

    s = p.scale
    proto = protocols.get(p.protocol)
    lines = [f"bench reproduce --scale {s.name} ({s.budget}): tasks {', '.join(p.tasks)}; probe seeds "
             f"{list(s.seeds)}" + (f"; demo data size {p.demo_size}" if s.demo else ""),
             f"pretraining seeds: {', '.join(map(str, s.pretrain_seeds))} (each seeded job once per seed; rows and "
             "claims pool them)" if s.pretrain_seeds else "pretraining seeds: each encoder's own (one model)",
             f"protocol: {proto.name} ({proto.summary}); probe lr/wd: {proto.grid_description(s.probe_grid)}"
             + ("; BatchNorm statistics re-estimated on each task's train windows (--official-batchnorm)"
                if p.official_batchnorm else ""),
             "label fractions (p_s): " + (", ".join(f"{f:g}" for f in p.fractions) or "none") + ", and 1.0 (semisupcon)"
             + (" = the official grid (SemiSupCon config/pretraining/experiments/ps_bs/ps)"
                if p.fractions == FRACTION_PRESETS["official"] else ""),
             "unlabeled pool: " + ("; ".join(_folder_text(d) for d in p.unlabeled_dirs) if p.unlabeled_dirs else
                                   "the task train splits present (give --unlabeled-dir for the paper's FMA)"),
             "options (-O): " + (", ".join(f"{k}={v}" for k, v in p.options.items()) or "none"),
             "", f"jobs ({len(p.jobs)}):"]
    for j in p.jobs:
        opts = ", ".join(f"{k}={v}" for k, v in j.options.items() if k != "unlabeled_dirs") or "defaults"
        lines.append(f"  {j.name:38s} {j.role}; options: {opts}")
        lines.append(f"  {'':38s} pools: {pools_text(p, j)}")
        if j.robustness_tasks:
            lines.append(f"  {'':38s} corrupted test audio on {', '.join(j.robustness_tasks)}: {s.conditions}")
    lines += ["", "claims (A vs B on task; * = counted in the verdict):"]
    for c in p.claims:
        lines.append(f"  {c.number}. {c.sentence}")
        for sp in c.specs:
            what = "drop under corruption" if sp.kind == "drop" else "primary metric"
            lines.append(f"     {'*' if sp.counted else ' '} {sp.a} vs {sp.b} on {sp.task} ({what})")
        if not c.specs:
            lines.append("       (no comparison: its tasks are not in --tasks)")
    return "\n".join(lines)
