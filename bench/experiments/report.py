"""The report of ``bench reproduce``: per claim the sentence, the evidence table and the verdict; markdown and HTML.

``report.md`` and ``report.html`` (self-contained: images inline) in the
output folder, with the rule that decides a verdict, what was run, and as
appendices the leaderboard, the label-fraction sweep and the robustness
tables and curves (whose own files are written beside them).
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from bench.experiments.claims import RULE, Claim, Evidence, evidence, verdict

#: each claim with its evidence and verdict
Assessed = list[tuple[Claim, list[Evidence], str]]

DEMO_NOTE = ("DEMO DATA: generated data in the real formats, small encoders and short pretraining on CPU. These "
             "verdicts test the pipeline and say nothing about real music; `--scale paper` on the real datasets is "
             "the reproduction.")


DETECTABLE = ("'detectable': the half-width h of the comparison's 95% interval, the smallest difference it could "
              "tell from 0 (a true difference of h is declared about half the time, one of 1.43 h about 80% of the "
              "time); a claim whose true effect is below it cannot be decided by this run. 'pt seeds': pretraining "
              "seeds of A / B.")


def _num(v: float | None, sign: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:+.4f}" if sign else f"{v:.4f}"


def evidence_rows(items: list[Evidence]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of a claim's evidence table."""
    head = ["A", "B", "task", "measure", "A", "B", "A - B [95% interval]", "detectable", "pt seeds", "outcome",
            "counted", "how"]
    cells = []
    for e in items:
        interval = _num(e.diff, True) + (f" [{_num(e.lo, True)}, {_num(e.hi, True)}]" if e.lo is not None else "")
        # the smallest |A - B| this interval could tell from 0 (its half-width; docs/experiments.md)
        detectable = "-" if e.detectable is None else f"±{e.detectable:.4f}"
        cells.append([e.spec.a, e.spec.b, e.spec.task, e.metric or "-", _num(e.a_value), _num(e.b_value),
                      interval if e.diff is not None else "-", detectable,
                      f"{e.n_pt[0]} / {e.n_pt[1]}" if e.diff is not None else "-", e.outcome,
                      "yes" if e.spec.counted else "no (context)",
                      "; ".join(x for x in (e.method, e.detail, e.spec.note) if x)])
    return head, cells


def assess(records: list[dict[str, Any]], claims: list[Claim]) -> Assessed:
    """Each claim with its evidence and verdict."""
    out = []
    for c in claims:
        items = evidence(records, c)
        out.append((c, items, verdict(items)))
    return out


def to_markdown(assessed: Assessed, meta: dict[str, Any],
                appendix: dict[str, str]) -> str:
    from tabulate import tabulate

    parts = [f"# bench reproduce: the four claims of SemiSupCon ({meta['scale']} scale)\n"]
    if meta.get("demo"):
        parts.append(f"**{DEMO_NOTE}**\n")
    parts.append(_meta_md(meta))
    parts.append("## Verdicts\n")
    parts.append(tabulate([[c.number, c.sentence, f"**{v}**"] for c, _, v in assessed],
                          headers=["#", "claim", "verdict"], tablefmt="github", disable_numparse=True) + "\n")
    parts.append(f"How a verdict is decided: {RULE}\n")
    parts.append(f"{DETECTABLE}\n")
    for c, items, v in assessed:
        parts.append(f"## Claim {c.number}: {c.sentence}\n\nVerdict: **{v}**. {c.reading}\n")
        if items:
            head, cells = evidence_rows(items)
            parts.append(tabulate(cells, headers=head, tablefmt="github", disable_numparse=True) + "\n")
        else:
            parts.append("No comparison could be made: the tasks it needs were not run (see --tasks).\n")
    for title, text in appendix.items():
        parts.append(f"## Appendix: {title}\n\n{text}\n")
    return "\n".join(parts)


def _meta_items(meta: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """What was run, as (line, sub-lines) for the markdown and the HTML list."""
    items = [(f"command: {meta['command']}", []), (f"when: {meta['created']}; bench {meta['version']}", []),
             (f"tasks: {', '.join(meta['tasks'])}; probe seeds {meta['seeds']}, probe grid '{meta['grid']}'", []),
             (f"pretraining seeds: {', '.join(map(str, meta['pretrain_seeds']))} (every seeded encoder trained "
              "once per seed; rows and claims pool them)" if meta.get("pretrain_seeds") else
              "pretraining seeds: each encoder's own (one checkpoint per encoder: the intervals do not cover "
              "a second pretraining)", []),
             (f"corruption conditions (robustness): {meta['conditions']}", []),
             (f"wall time of this run: {meta['wall_s']:.0f} s (with everything cached, a run only rewrites the "
              "report)", [])]
    if meta.get("demo_size"):
        items.append((f"demo data size: {meta['demo_size']}", []))
    if meta.get("protocol"):
        items.append((f"probing protocol: {meta['protocol']}; label fractions (p_s): "
                      f"{', '.join(f'{f:g}' for f in meta.get('fractions') or []) or 'none'}; unlabeled pool: "
                      f"{', '.join(meta.get('unlabeled_dirs') or []) or 'the task train splits present'}", []))
    if meta.get("launcher") and meta["launcher"] != "local":
        items.append((meta["launcher"], []))
    elif (meta.get("workers") or 1) > 1:
        items.append((f"jobs ran {meta['workers']} at a time in worker processes of {meta.get('threads')} torch "
                      "thread(s) each (each job's output is in logs/)", []))
    items.append(("jobs (row label: what it is; seconds in this run):",
                  [f"{j['label']}: {j['role']}; {j['seconds']} s" for j in meta["jobs"]]))
    if meta.get("failures"):
        items.append((f"{len(meta['failures'])} part(s) failed (their comparisons are missing):", meta["failures"]))
    return items


def _meta_md(meta: dict[str, Any]) -> str:
    lines = []
    for line, sub in _meta_items(meta):
        lines.append(f"- {line}")
        lines += [f"  - {s}" for s in sub]
    return "\n".join(lines) + "\n"


def to_html(assessed: Assessed, meta: dict[str, Any],
            appendix_html: dict[str, str], records: list[dict[str, Any]] | None = None) -> str:
    """The report page; with ``records``, their provenance (:func:`bench.provenance.html_block`) after the list
    of what was run."""
    from bench import provenance
    from bench.experiments.robustness import html_page

    esc = html.escape
    body = []
    if meta.get("demo"):
        body.append(f'<p class="demo">{esc(DEMO_NOTE)}</p>')
    body.append("<ul>" + "".join(
        f"<li>{esc(line)}" + ("<ul>" + "".join(f"<li>{esc(s)}</li>" for s in sub) + "</ul>" if sub else "") + "</li>"
        for line, sub in _meta_items(meta)) + "</ul>")
    rows = "".join(f"<tr><td>{c.number}</td><td>{esc(c.sentence)}</td><td><b>{esc(v)}</b></td></tr>"
                   for c, _, v in assessed)
    if records:
        body.append("<details><summary>Provenance of the records (versions, data, weights)</summary>"
                    + provenance.html_block(records) + "</details>")
    body.append(f"<h2>Verdicts</h2><table><tr><th>#</th><th>claim</th><th>verdict</th></tr>{rows}</table>")
    body.append(f"<p>How a verdict is decided: {esc(RULE).replace('**', '')}</p><p>{esc(DETECTABLE)}</p>")
    for c, items_, v in assessed:
        body.append(f"<h2>Claim {c.number}: {esc(c.sentence)}</h2><p>Verdict: <b>{esc(v)}</b>. {esc(c.reading)}</p>")
        if items_:
            head, cells = evidence_rows(items_)
            body.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + "".join(
                "<tr>" + "".join(f"<td>{esc(x)}</td>" for x in row) + "</tr>" for row in cells) + "</table>")
    for title, fragment in appendix_html.items():
        body.append(f"<h2>Appendix: {esc(title)}</h2>{fragment}")
    return html_page(f"bench reproduce: the four claims of SemiSupCon ({meta['scale']} scale)", *body)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def write(records: list[dict[str, Any]], claims: list[Claim], meta: dict[str, Any],
          out: Path) -> tuple[dict[str, Path], Assessed]:
    """Write report.md, report.html and the appendices' files (leaderboard, sweep, robustness) into ``out``;
    returns the files and each claim with its evidence and verdict."""
    from bench import leaderboard, robustness
    from bench.experiments.sweep_plot import sweep_png, sweep_table

    assessed = assess(records, claims)
    files = dict(leaderboard.write(records, out))
    clean = [r for r in records if (r.get("condition") or "clean") == "clean"]
    appendix = {"leaderboard (clean test audio)": leaderboard.render(clean)}
    appendix_html = {"leaderboard (clean test audio)": "<pre>" + html.escape(leaderboard.render(clean)) + "</pre>"}
    swept = [r for r in clean if "label_fraction" in (r.get("sweep") or {})]
    if swept:
        table = sweep_table(swept, ["label_fraction"])
        png = sweep_png(swept, ["label_fraction"])
        (out / "sweep.md").write_text(table)
        (out / "sweep_label_fraction.png").write_bytes(png)
        appendix["label-fraction sweep"] = table + "\n![metric against label_fraction](sweep_label_fraction.png)\n"
        appendix_html["label-fraction sweep"] = ("<pre>" + html.escape(table) + "</pre>"
                                                 + _img(png, "primary metric against label_fraction"))
    curves = _learning_curves(clean, out)
    if curves is not None:
        appendix["learning curves (probe on the valid splits during pretraining)"] = f"![learning curves]({curves.name})\n"
        appendix_html["learning curves (probe on the valid splits during pretraining)"] = _img(
            curves.read_bytes(), "probe metric on the valid splits over the pretraining steps, per encoder")
    if any((r.get("condition") or "clean") != "clean" for r in records):
        labels = {r.get("variant") for r in records if (r.get("condition") or "clean") != "clean"}
        rob = [r for r in records if r.get("variant") in labels]
        rfiles = robustness.write_report(rob, out)
        files.update({f"robustness_{k}": v for k, v in rfiles.items()})
        pngs = "".join(f"\n![{k[4:]}]({v.name})" for k, v in rfiles.items() if k.startswith("png:"))
        appendix["robustness to corruptions"] = rfiles["markdown"].read_text() + pngs + "\n"
        appendix_html["robustness to corruptions"] = rfiles["html"].read_text()
    md = out / "report.md"
    md.write_text(to_markdown(assessed, meta, appendix))
    page = out / "report.html"
    page.write_text(to_html(assessed, meta, appendix_html, records))
    files.update({"report": md, "report_html": page})
    return files, assessed


CURVE_ENCODERS = ("semisupcon", "simclr", "supervised")


def _learning_curves(clean: list[dict[str, Any]], out: Path) -> Path | None:
    """``curves.png``: the learning curves of the pretrained encoders side by side (one per encoder and
    pretraining seed, from the first record of each), so a reader sees whether and when each one learns;
    None when no record carries a curve (a run without ``probe_every``)."""
    from bench.pretrain.curves import curves_of, plot_curves

    runs: dict[str, Any] = {}
    for r in clean:
        pre = r.get("pretraining") or {}
        if r.get("encoder") not in CURVE_ENCODERS or not pre.get("probe_curve"):
            continue
        seed = pre.get("seed")
        name = str(r.get("variant") or r.get("encoder")) + ("" if seed is None else f" s{seed}")
        if name not in runs:
            runs[name] = curves_of(pre)
    if not runs:
        return None
    return plot_curves(runs, out / "curves.png", title="Learning curves (probe on the valid splits)")


def summary_lines(assessed: Assessed) -> list[str]:
    """One line per claim: number, verdict, sentence (for the terminal)."""
    return [f"claim {c.number}: {v.upper():13s} {c.sentence}" for c, _, v in assessed]
