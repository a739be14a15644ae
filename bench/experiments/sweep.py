"""``bench sweep`` as a stage: a grid of encoder and recipe options, one comparative leaderboard, a plot.

How a user writes the grid (``-O`` of ``bench sweep``):

- ``-O KEY=V1,V2,...``: KEY is swept over the comma-separated values;
- a value that is itself a list (``label_task``, ``unlabeled_tasks``): join its
  names with ``+`` (``-O label_task=mtat+gtzan,nsynth_pitch``: two values,
  the first one the two tasks together), or separate the sweep values with
  ``|`` and keep the commas inside (``-O label_task=mtat,gtzan|nsynth_pitch``:
  the same two values). When a value holds ``|``, ``|`` separates the values
  and ``,`` does not;
- ``-O KEY=V`` (one value): a fixed option of every variant;
- ``-O ENCODER:KEY=...``: only that encoder's variants;
- several swept keys: every combination (a grid), in the order given.

Encoder options and recipe options (``steps``, ``lr``, ...) are told apart by
name (:func:`bench.run.split_options`). Every variant is built and its recipe
checked before anything is trained, so a value that does not parse is an
error naming it (exit 2). A variant is named by its swept options
(``semisupcon[label_fraction=0.05]``); one whose swept values give the same
model as the fixed options alone (the encoder's defaults) keeps the plain name,
so it is the same row as ``bench run`` gives. Each record carries ``sweep``
(the swept key -> value) for the plot. A trainable variant without a
checkpoint is pretrained (:func:`bench.pretrain.ensure_pretrained`, cached by
key: an interrupted sweep resumes, finished variants are not retrained), and
records already written for a variant are reused.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import plugins
from bench.errors import BenchError
from bench.run import log, split_options, variant_label
from bench.settings import RunConfig, RunOutcome

if TYPE_CHECKING:  # pragma: no cover
    from bench.launcher import SlurmLauncher

SWEEP_HELP = ("-O KEY=V1,V2,... sweeps KEY over the values (several swept keys: every combination); a list value "
              "joins its names with '+' (-O label_task=mtat+gtzan,nsynth_pitch), or separate the sweep values with "
              "'|' and keep commas inside one (-O label_task=mtat,gtzan|nsynth_pitch); -O KEY=V with one value is a "
              "fixed option of every variant; -O ENCODER:KEY=... applies to one encoder")


@dataclass(frozen=True)
class Axis:
    """One swept option: its key (``label_fraction`` or ``semisupcon:label_fraction``) and values."""

    key: str
    values: tuple[Any, ...]
    texts: tuple[str, ...]  # the values as the user wrote them (labels, plot ticks)

    @property
    def name(self) -> str:
        return self.key.split(":", 1)[-1]

    def applies_to(self, encoder: str) -> bool:
        return ":" not in self.key or self.key.split(":", 1)[0] == encoder


@dataclass
class Variant:
    """One point of the grid for one encoder."""

    encoder: str
    label: str
    #: every -O option of this variant (fixed and swept), unscoped
    options: dict[str, Any]
    #: swept option name -> value as written (``{"label_fraction": "0.05"}``)
    swept: dict[str, str] = field(default_factory=dict)
    #: already trained (a checkpoint in the cache), for the plan printed before the work
    cached: bool | None = None


def _value(text: str) -> Any:
    from bench.commands.common import parse_value

    return parse_value(text.replace("+", ",")) if "+" in text else parse_value(text)


def parse_grid(values: list[str] | None) -> tuple[dict[str, Any], list[Axis]]:
    """``-O`` items -> (fixed options, swept axes). An empty, repeated or malformed value is an error naming it."""
    fixed: dict[str, Any] = {}
    axes: list[Axis] = []
    seen: set[str] = set()
    for item in values or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BenchError(f"-O {item!r}: expected KEY=VALUE or KEY=V1,V2,... ({SWEEP_HELP})")
        if key in seen:
            raise BenchError(f"-O {key} is given twice; list all its sweep values in one -O {key}=V1,V2,...")
        seen.add(key)
        pieces = [p.strip() for p in text.split("|" if "|" in text else ",")]
        if not any(pieces):
            raise BenchError(f"-O {key}= has no value ({SWEEP_HELP})")
        for i, p in enumerate(pieces, 1):
            if not p:
                raise BenchError(f"-O {key}={text}: sweep value {i} of {len(pieces)} is empty (a stray ',' or '|'?)")
        if len(set(pieces)) != len(pieces):
            dupes = sorted({p for p in pieces if pieces.count(p) > 1})
            raise BenchError(f"-O {key}={text}: the value(s) {', '.join(dupes)} appear twice")
        if len(pieces) == 1:
            fixed[key] = _value(pieces[0])
        else:
            # a list value reads the same in a label however it was written: mtat+gtzan
            axes.append(Axis(key, tuple(_value(p) for p in pieces), tuple(p.replace(",", "+") for p in pieces)))
    return fixed, axes


def plan_variants(encoders: list[str], fixed: dict[str, Any], axes: list[Axis]) -> list[Variant]:
    """Every combination of the axes that apply to each encoder, in the order given."""
    from bench.run import encoder_options_for

    out = []
    for name in encoders:
        mine = [a for a in axes if a.applies_to(name)]
        base = encoder_options_for(name, fixed)
        for combo in itertools.product(*[range(len(a.values)) for a in mine]):
            options = dict(base)
            swept = {}
            for axis, i in zip(mine, combo):
                options[axis.name] = axis.values[i]
                swept[axis.name] = axis.texts[i]
            out.append(Variant(name, variant_label(name, swept), options, swept))
    return out


def _identity(name: str, options: dict[str, Any]) -> tuple[Any, Any]:
    """(encoder config, recipe) that ``options`` give ``name``: what a variant is (raises on a bad value)."""
    from bench.encoder import TrainableEncoder

    enc_opts, recipe_opts = split_options(options)
    encoder = plugins.encoders().get(name).create(**enc_opts)
    recipe = None
    if isinstance(encoder, TrainableEncoder):
        recipe = encoder.recipe().replace(**recipe_opts)
    elif recipe_opts:
        raise BenchError(f"encoder {name!r} is not trainable: the recipe option(s) {sorted(recipe_opts)} do not apply")
    return encoder, recipe


def check_variants(variants: list[Variant], fixed: dict[str, Any], config: RunConfig) -> None:
    """Build every variant (its options and recipe checked) before any work; name the ones equal to the
    fixed options alone plainly; mark which are already trained. A bad value is an error naming it."""
    import json

    from bench.config import cache_dir
    from bench.encoder import TrainableEncoder
    from bench.pretrain import default_checkpoint
    from bench.run import encoder_options_for

    defaults: dict[str, str] = {}
    built = []
    for v in variants:  # every value checked before anything else happens (no demo data built, nothing trained)
        try:
            built.append(_identity(v.encoder, v.options))
        except BenchError as exc:
            swept = ", ".join(f"{k}={t}" for k, t in v.swept.items())
            raise BenchError(f"sweep variant {v.label} ({swept or 'fixed options'}) is not valid: {exc}") from None
    same: dict[str, str] = {}
    for v, (encoder, recipe) in zip(variants, built):
        ident = json.dumps([v.encoder, encoder.config(), recipe.to_dict() if recipe else None], sort_keys=True,
                           default=str)
        if ident in same:
            raise BenchError(f"sweep variants {same[ident]} and {v.label} are the same model twice; drop the "
                             "repeated value")
        same[ident] = v.label
        if v.encoder not in defaults:
            try:
                d_enc, d_rec = _identity(v.encoder, encoder_options_for(v.encoder, fixed))
                defaults[v.encoder] = json.dumps([v.encoder, d_enc.config(), d_rec.to_dict() if d_rec else None],
                                                 sort_keys=True, default=str)
            except BenchError:
                defaults[v.encoder] = ""
        if ident == defaults[v.encoder]:
            v.label = v.encoder
        if isinstance(encoder, TrainableEncoder) and recipe is not None:
            try:
                path, _ = default_checkpoint(encoder, recipe, config.settings.data_roots, cache_dir())
                v.cached = path.is_file()
            except BenchError:  # the pools cannot be planned (data missing): the run says why, per variant
                v.cached = None


def run_sweep(config: RunConfig, variants: list[Variant], axes: list[Axis],
              launcher: SlurmLauncher | None = None, rank_on: str = "valid") -> RunOutcome:
    """Pretrain (if needed) and evaluate every variant on every task; one leaderboard, a table and a plot
    ranked on ``rank_on`` ("valid": the validation splits; "test").

    ``launcher``: each variant a cluster job (bench.launcher) instead of one after the other here."""
    from bench.jobs import Job, JobSet, run_jobs, with_pretrain_seeds

    out = config.settings.out
    out.mkdir(parents=True, exist_ok=True)
    trained = sum(1 for v in variants if v.cached)
    log(f"sweep: {len(variants)} variant(s) x {len(config.tasks)} task(s); {trained} already pretrained, "
        f"{sum(1 for v in variants if v.cached is False)} to pretrain")
    jobs = with_pretrain_seeds([Job(v.label, v.encoder, dict(v.options), tuple(config.tasks),
                                    tags={"sweep": dict(v.swept)}, title=f"variant {v.label}") for v in variants],
                               config.pretrain_seeds)
    failures: list[str] = []
    if launcher is not None:
        records, _ = launcher.run_jobs(jobs, JobSet(config), failures)
    else:
        records, _ = run_jobs(jobs, JobSet(config), failures=failures)
    outcome = RunOutcome(records, failures, out)
    if records:
        outcome.files = write_outputs(records, out, [a.name for a in axes], rank_on)
    else:
        log(f"No records were written: every part of the sweep failed (see above). Output folder: {out}")
    return outcome


def write_outputs(records: list[dict[str, Any]], out: Path, axes: list[str],
                  rank_on: str = "valid") -> dict[str, Path]:
    """``sweep.md`` (variants x tasks ranked on ``rank_on``; with "valid" the test scores only in its final
    table), ``sweep.png`` (the ranked split's metric vs swept value) and the comparative (test) leaderboard."""
    from bench import leaderboard
    from bench.experiments.sweep_plot import sweep_png, sweep_table

    table = sweep_table(records, axes, rank_on)
    files = leaderboard.write(records, out)
    # on the terminal: the ranking the user asked for (with "valid", test scores only in the final table)
    print(table if rank_on == "valid" else leaderboard.render(records))
    (out / "sweep.md").write_text(table)
    files["sweep"] = out / "sweep.md"
    if axes:
        (out / "sweep.png").write_bytes(sweep_png(records, axes, split=rank_on))
        files["sweep_png"] = out / "sweep.png"
    log(f"Sweep (ranked on {'validation' if rank_on == 'valid' else 'TEST'}): {files['sweep']}"
        + (f", plot {files['sweep_png']}" if axes else "")
        + f"; test leaderboard {files['markdown']} (also .csv, .json, .html, .png)")
    return files
