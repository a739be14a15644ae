"""Every layer of an encoder: a stack of embeddings extracted once, a probe per layer, the layer chosen on validation.

An encoder with ``layers = L > 1`` (:attr:`bench.encoder.Encoder.layers`; the ``hf`` encoder with
``-O layer=all``) returns ``[B, L, dim]`` per batch; the embedding cache keeps each track's stack as one row of
``L * dim`` floats, layer after layer, under the encoder's own key (its config says ``layer: all``), so the
whole stack is extracted and stored once. Here:

- :func:`split` cuts a split's rows into L per-layer :class:`~bench.extract.Embeddings`, each with its own
  key (``<entry digest>#layer<l>``), so every layer's probe has its own probe-cache entry;
- :func:`evaluate` fits the probe of one seed on every layer (:func:`bench.run.evaluate`, the same grid and
  protocol as any encoder) and chooses the layer whose chosen probe scores best on validation (the task's
  primary metric; ties: the lower validation loss, then the lower layer), as MARBLE does for its hub models;
  the test split never takes part in the choice;
- :func:`record_field` is what each record holds: the chosen layer and every layer's validation and test
  score (the curve);
- :func:`write` renders the curves of a run's records: ``layers.md`` (a table per encoder and task, mean
  over probe seeds, the chosen layer marked) and ``layers.png`` (one panel per task).

An encoder with one layer goes through :func:`evaluate` unchanged (no curve).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.corruptions import CLEAN

if TYPE_CHECKING:  # pragma: no cover
    from bench.extract import Embeddings
    from bench.settings import EvalSettings, Evaluation, IndexedTask

MARKDOWN, PNG = "layers.md", "layers.png"


@dataclass
class LayerChoice:
    """One probe seed over every layer: the chosen layer's evaluation and embeddings, and each layer's scores."""

    evaluation: Evaluation
    #: the chosen layer's embeddings of train/valid/test, and of each condition's test set
    embeddings: dict[str, Embeddings]
    conditions: dict[str, Embeddings]
    #: the chosen layer (None: the encoder has one layer)
    layer: int | None = None
    #: per layer: {"layer", "valid", "valid_loss", "test": {condition: primary metric}}
    curve: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def split(emb: Embeddings, count: int) -> list[Embeddings]:
    """``emb`` (rows of ``count`` stacked layers) as ``count`` per-layer embeddings, each keyed by its layer."""
    if emb.X.shape[1] % count:
        raise ValueError(f"rows of {emb.X.shape[1]} floats are not {count} layers of equal size")
    import numpy as np

    dim = emb.X.shape[1] // count
    out = []
    for i in range(count):  # contiguous copies: together the size of the stack, and what the probes expect
        cols = slice(i * dim, (i + 1) * dim)
        layer = dataclasses.replace(emb, X=np.ascontiguousarray(emb.X[:, cols]),
                                    key=f"{emb.key}#layer{i}" if emb.key else "")
        if emb.window_X is not None:
            layer.window_X = np.ascontiguousarray(emb.window_X[:, cols])
        out.append(layer)
    return out


def _valid(ev: Evaluation) -> tuple[float, float]:
    """(validation primary metric, validation loss) of the grid point the probe chose."""
    sel = ev.selected
    row = next((r for r in sel.grid if r.get("lr") == sel.lr and r.get("weight_decay") == sel.weight_decay), {})
    score = row.get("valid_score")
    loss = sel.result.valid_loss
    return (float(score) if score is not None else math.nan), float(loss)


def evaluate(data: IndexedTask, embs: dict[str, Embeddings], settings: EvalSettings, seed: int,
             conditions: dict[str, Embeddings], count: int) -> LayerChoice:
    """The probe of ``seed`` on each of ``count`` layers, and the layer chosen on validation."""
    from bench.run import evaluate as evaluate_one

    if count == 1:
        return LayerChoice(evaluate_one(data, embs, settings, seed, conditions=conditions), embs, conditions)
    per_split = {s: split(e, count) for s, e in embs.items()}
    per_cond = {c: split(e, count) for c, e in conditions.items()}
    primary = data.task.primary_metric
    best: tuple[tuple[float, float], int] | None = None
    curve, evals = [], []
    for i in range(count):
        ev = evaluate_one(data, {s: v[i] for s, v in per_split.items()}, settings, seed,
                          conditions={c: v[i] for c, v in per_cond.items()})
        valid, loss = _valid(ev)
        curve.append({"layer": i, "valid": _num(valid), "valid_loss": _num(loss),
                      "test": {c: _num(m.get(primary, math.nan)) for c, m in ev.metrics.items()}})
        evals.append(ev)
        rank = (valid if math.isfinite(valid) else -math.inf, -loss if math.isfinite(loss) else -math.inf)
        if best is None or rank > best[0]:  # strictly better: a tie keeps the lower layer
            best = (rank, i)
    assert best is not None
    i = best[1]
    return LayerChoice(evals[i], {s: v[i] for s, v in per_split.items()}, {c: v[i] for c, v in per_cond.items()},
                       i, curve)


def record_field(choice: LayerChoice, metric: str, condition: str = CLEAN) -> dict[str, Any] | None:
    """The ``layers`` block of the record of ``condition``: the chosen layer and the per-layer curve."""
    if choice.layer is None:
        return None
    return {"count": len(choice.curve), "chosen": choice.layer, "metric": metric,
            "chosen_on": f"valid {metric}",
            "curve": [{"layer": p["layer"], "valid": p["valid"], "test": p["test"].get(condition)}
                      for p in choice.curve]}


def _num(x: float) -> float | None:
    return round(float(x), 6) if math.isfinite(x) else None


# -- the curve of a run: table and plot ------------------------------------------------------------------


def curves(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (variant, task) of the clean records with a ``layers`` block: mean valid and test per layer over
    the probe seeds, and the layer each seed chose."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in records:
        if rec.get("layers") and rec.get("condition", CLEAN) == CLEAN:
            groups.setdefault((rec["variant"], rec["task"]), []).append(rec)
    out = []
    for (variant, task), recs in groups.items():
        count = recs[0]["layers"]["count"]
        rows = []
        for i in range(count):
            points = [r["layers"]["curve"][i] for r in recs if len(r["layers"]["curve"]) == count]
            rows.append({"layer": i, "valid": _mean([p["valid"] for p in points]),
                         "test": _mean([p["test"] for p in points])})
        out.append({"variant": variant, "task": task, "metric": recs[0]["layers"]["metric"], "rows": rows,
                    "chosen": sorted(r["layers"]["chosen"] for r in recs),
                    "score": _mean([r["metrics"].get(r["primary_metric"]) for r in recs])})
    return out


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else None


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def markdown(found: list[dict[str, Any]]) -> str:
    """A table per (encoder, task): every layer's validation and test score, the chosen layer(s) marked."""
    parts = ["# Per-layer scores", "",
             "Each layer probed on its own (mean over probe seeds); the layer is chosen on validation, per seed, "
             "and the reported score is the chosen layer's test score (bench.layers)."]
    for c in found:
        chosen = sorted(set(c["chosen"]))
        parts += ["", f"## {c['variant']} x {c['task']}", "",
                  f"Chosen layer: {', '.join(map(str, c['chosen']))} (per seed); reported {c['metric']} "
                  f"{_f(c['score'])}.", "", f"| layer | valid {c['metric']} | test {c['metric']} | chosen |",
                  "|---|---|---|---|"]
        parts += [f"| {r['layer']} | {_f(r['valid'])} | {_f(r['test'])} | {'*' if r['layer'] in chosen else ''} |"
                  for r in c["rows"]]
    return "\n".join(parts) + "\n"


def plot_png(found: list[dict[str, Any]]) -> bytes:
    """One panel per task: test (solid) and validation (dashed) score per layer, a line per encoder, the
    chosen layers marked."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    tasks = sorted({c["task"] for c in found})
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for c in (c for c in found if c["task"] == task):
            xs = [r["layer"] for r in c["rows"]]
            line, = ax.plot(xs, [math.nan if r["test"] is None else r["test"] for r in c["rows"]], marker="o",
                            label=f"{c['variant']} test")
            ax.plot(xs, [math.nan if r["valid"] is None else r["valid"] for r in c["rows"]], linestyle="--",
                    color=line.get_color(), label=f"{c['variant']} valid")
            for layer in sorted(set(c["chosen"])):
                ax.axvline(layer, color=line.get_color(), alpha=0.3)
            ax.set_ylabel(c["metric"])
        ax.set_title(task)
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write(records: list[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    """``layers.md`` and ``layers.png`` in ``out_dir`` when some record holds a per-layer curve; else nothing."""
    found = curves(records)
    if not found:
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    md, png = out_dir / MARKDOWN, out_dir / PNG
    md.write_text(markdown(found))
    png.write_bytes(plot_png(found))
    return {"layers_markdown": md, "layers_png": png}
