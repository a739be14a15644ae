"""Learning curves of pretraining runs, read back from their ``metrics.jsonl`` and drawn.

- :func:`load_curves` (a run folder): the probe curve per task (``probe``
  events of ``Recipe.probe_every``), the loss and each loss term
  (``train`` events) over the steps. A resumed run's log can hold a step
  twice (steps re-run after the last checkpoint): the last line wins.
- :func:`curves_of` (a record's ``pretraining`` block): the same, from the
  run folder it names, or from the ``probe_curve`` it keeps.
- :func:`plot_curves` (several runs, e.g. semisupcon, simclr and
  supervised): one panel per task with one line per run (probe metric over
  the steps), then one panel per run with its loss terms. The run folder's
  own ``curves.png`` is ``plot_curves({name: run_dir}, ...)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.pretrain.runfolder import METRICS_FILE

PLOT_FILE = "curves.png"


@dataclass
class Curves:
    """One run's curves: ``probe[task] = [(step, value)]`` (value None: undefined), ``metric[task]``,
    ``loss = [(step, loss)]``, ``terms[name] = [(step, value)]``."""

    probe: dict[str, list[tuple[int, float | None]]] = field(default_factory=dict)
    metric: dict[str, str] = field(default_factory=dict)
    loss: list[tuple[int, float]] = field(default_factory=list)
    terms: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    @classmethod
    def from_probe_curve(cls, points: list[dict[str, Any]]) -> "Curves":
        """The probe curve kept in a checkpoint's metadata (a record's ``pretraining.probe_curve``), without
        the loss terms (those are in the run folder's log only)."""
        out = cls()
        for p in sorted(points, key=lambda p: p["step"]):
            out.probe.setdefault(p["task"], []).append((int(p["step"]), p.get("value")))
            out.metric[p["task"]] = p.get("metric", "")
        return out

    def probe_curve(self) -> list[dict[str, Any]]:
        """The curve as the checkpoint metadata keeps it: ``[{step, task, metric, value}]``."""
        return [{"step": s, "task": t, "metric": self.metric[t], "value": v}
                for t, points in self.probe.items() for s, v in points]


def curves_of(pretraining: dict[str, Any]) -> Curves:
    """The curves of a record's ``pretraining`` block (a checkpoint's metadata): its run folder's log when it
    is still there (probe, loss and terms), else the ``probe_curve`` it keeps (probe only)."""
    run_dir = pretraining.get("run_dir")
    if run_dir and (Path(run_dir) / METRICS_FILE).is_file():
        return load_curves(run_dir)
    return Curves.from_probe_curve(pretraining.get("probe_curve") or [])


def load_curves(run_dir: str | Path) -> Curves:
    """The curves of the run folder ``run_dir`` (empty when it has no log or no probe events)."""
    path = Path(run_dir) / METRICS_FILE
    probe: dict[str, dict[int, float | None]] = {}
    loss: dict[int, float] = {}
    terms: dict[str, dict[int, float]] = {}
    out = Curves()
    lines = path.read_text().splitlines() if path.is_file() else []
    for line in lines:
        try:
            e = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill: the others still count
            continue
        step = e.get("step")
        if e.get("event") == "probe":
            probe.setdefault(e["task"], {})[step] = e.get("value")
            out.metric[e["task"]] = e.get("metric", "")
        elif e.get("event") == "train":
            if e.get("loss") is not None:
                loss[step] = e["loss"]
            for name, value in (e.get("terms") or {}).items():
                terms.setdefault(name, {})[step] = value
    out.probe = {t: sorted(p.items()) for t, p in probe.items()}
    out.loss = sorted(loss.items())
    out.terms = {n: sorted(p.items()) for n, p in terms.items()}
    return out


def plot_curves(runs: dict[str, str | Path | Curves], path: str | Path, title: str | None = None) -> Path | None:
    """Draw the curves of ``runs`` (label -> run folder or :class:`Curves`) side by side into the PNG ``path``.

    Top row: one panel per task probed in any run, the probe metric over the
    steps, one line per run. Bottom row: one panel per run, its loss and loss
    terms over the steps. None (nothing written) when no run has any curve.
    The drawing goes through :mod:`bench.render_cache`: a warm rerun writes the
    same bytes without importing matplotlib.
    """
    from bench import render_cache

    curves = {k: v if isinstance(v, Curves) else load_curves(v) for k, v in runs.items()}
    if not any(c.probe or c.loss or c.terms for c in curves.values()):
        return None
    plain = json.loads(json.dumps({k: {"probe": c.probe, "metric": c.metric, "loss": c.loss, "terms": c.terms}
                                   for k, c in curves.items()}))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_cache.png("curves", _draw, plain, title))
    return path


def _draw(curves: dict[str, dict[str, Any]], title: str | None) -> bytes:
    """The PNG of :func:`plot_curves` from the curves as JSON (label -> probe, metric, loss, terms)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({t for c in curves.values() for t in c["probe"]})
    with_loss = [k for k, c in curves.items() if c["loss"] or c["terms"]]
    cols = max(len(tasks), len(with_loss), 1)
    rows = (1 if tasks else 0) + (1 if with_loss else 0)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for j, task in enumerate(tasks):
        ax = axes[0, j]
        ax.set_visible(True)
        for label, c in curves.items():
            pts = [(s, v) for s, v in c["probe"].get(task, []) if v is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=label)
        metric = next((c["metric"][task] for c in curves.values() if task in c["metric"]), "")
        ax.set_title(f"{task} (valid)", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for j, label in enumerate(with_loss):
        ax = axes[rows - 1, j]
        ax.set_visible(True)
        c = curves[label]
        if c["loss"]:
            ax.plot(*zip(*c["loss"]), color="black", lw=1.2, label="loss")
        for name, pts in sorted(c["terms"].items()):
            if name.endswith("_per_anchor") or not pts:
                continue  # a count, not a part of the loss
            ax.plot(*zip(*pts), lw=1, label=name)
        ax.set_title(f"{label}: loss terms", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
