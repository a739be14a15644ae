"""Provenance block of the reports: what made the numbers, read from the records themselves.

Every record holds the command that wrote it, when, the package versions, its data root and fingerprint, and
its encoder's weights (hash, checkpoint, pretraining). :func:`items` gathers them over a set of records (each
distinct value once, so a table merged from several runs says where they differ); :func:`html_block` is the
``<section>`` the leaderboard, robustness and reproduce HTML reports show.
"""

from __future__ import annotations

import html
from typing import Any

#: the package versions shown first (others follow in the records' order)
FIRST = ("music-bench", "python", "torch", "numpy", "scikit-learn", "platform")
#: distinct values listed per line before "and N more"
MAX_LIST = 6


def _distinct(values: list[Any]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values if v not in (None, "")))


def _listed(values: list[str], sep: str = "; ") -> str:
    more = len(values) - MAX_LIST
    return sep.join(values[:MAX_LIST]) + (f"{sep}and {more} more" if more > 0 else "")


def items(records: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(heading, lines) of the provenance of ``records``: commands, dates, versions, data, weights, device."""
    out: list[tuple[str, list[str]]] = []
    commands = _distinct([r.get("command") for r in records])
    if commands:
        out.append(("command" if len(commands) == 1 else f"commands ({len(commands)})",
                    commands[:MAX_LIST] + ([f"and {len(commands) - MAX_LIST} more"] if len(commands) > MAX_LIST
                                           else [])))
    created = sorted(_distinct([r.get("created") for r in records]))
    if created:
        out.append(("date", [created[0] if len(created) == 1 else f"{created[0]} to {created[-1]}"]))
    versions: dict[str, list[str]] = {}
    for r in records:
        for k, v in (r.get("versions") or {}).items():
            versions.setdefault(str(k), [])
            if str(v) not in versions[str(k)]:
                versions[str(k)].append(str(v))
    order = [k for k in FIRST if k in versions] + [k for k in versions if k not in FIRST]
    if order:
        out.append(("versions", [f"{k} {' / '.join(versions[k])}" + (" (differs between records)"
                                                                     if len(versions[k]) > 1 else "")
                                 for k in order]))
    data: dict[str, list[str]] = {}
    for r in records:
        d = r.get("data") or {}
        what = "demo data (generated)" if r.get("demo_data") else "real data"
        line = f"{what} under {d.get('root', '?')}, fingerprint {str(d.get('fingerprint') or '?')[:12]}"
        tracks = d.get("tracks") or {}
        if tracks:
            line += " (" + ", ".join(f"{s} {n}" for s, n in tracks.items()) + " tracks)"
        if line not in data.setdefault(str(r.get("task")), []):
            data[str(r["task"])].append(line)
    if data:
        out.append(("data", [f"{task}: {_listed(lines)}" for task, lines in sorted(data.items())]))
    weights: dict[str, list[str]] = {}
    for r in records:
        label = str(r.get("variant") or r.get("encoder"))
        line = f"weights {str(r.get('weights_hash') or '?')[:12]}"
        line += f", checkpoint {r['checkpoint']}" if r.get("checkpoint") else ", no checkpoint (the encoder's own weights)"
        pre = r.get("pretraining") or {}
        if pre.get("trained") or pre.get("steps"):
            line += f", pretrained {pre.get('steps', '?')} steps"
            if isinstance(pre.get("final_loss"), (int, float)):
                line += f" (final loss {pre['final_loss']:.4g})"
        if pre.get("seed") is not None:
            line += f", pretraining seed {pre['seed']}"
        if line not in weights.setdefault(label, []):
            weights[label].append(line)
    if weights:
        out.append(("weights", [f"{label}: {_listed(lines)}" for label, lines in weights.items()]))
    devices = _distinct([r.get("device") for r in records])
    if devices:
        out.append(("device", [", ".join(devices)]))
    out.append(("records", [f"{len(records)} record(s)"]))
    return out


#: the style of the block, carried inside it (pages of other modules include it as it is)
STYLE = (".provenance dt{font-weight:bold;margin-top:.4em}.provenance dd{margin-left:1.5em;font-family:monospace;"
         "font-size:90%;overflow-wrap:anywhere}")


def html_block(records: list[dict[str, Any]], heading: str = "Provenance") -> str:
    """A ``<section class="provenance">`` listing :func:`items` (every value escaped), with its style."""
    esc = html.escape
    rows = "".join(
        f"<dt>{esc(head)}</dt>" + "".join(f"<dd>{esc(line)}</dd>" for line in lines) for head, lines in items(records))
    return (f'<section class="provenance"><style>{STYLE}</style><h2>{esc(heading)}</h2><p>From the records: what '
            f'was run, when, with which versions, data and weights.</p><dl>{rows}</dl></section>')
