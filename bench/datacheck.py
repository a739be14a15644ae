"""`bench data check`: what a data root holds for a task, before any model runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.audio import AUDIO_EXTENSIONS
from bench.task import SPLITS


def check(task: Any, data_root: Path, decode: bool = False, progress: bool = True) -> dict[str, Any]:
    """Index every split and report counts, problems, missing/corrupt/unexpected files."""
    from bench.audio import AudioError, load

    report: dict[str, Any] = {"task": task.name, "data_root": str(data_root), "splits": {}, "unexpected": []}
    referenced: set[str] = set()
    for split in SPLITS:
        sp = task.items(split, data_root)
        entry = {"tracks": len(sp), "problems": [str(p) for p in sp.problems], "corrupt": []}
        missing = [str(p) for p in sp.problems if p.kind == "missing_audio"]
        entry["missing"] = len(missing)
        for item in sp:
            referenced.add(str(Path(item.path).resolve()))
        if decode:
            from tqdm.auto import tqdm

            for item in tqdm(sp.items, desc=f"decode {split}", unit="file", disable=not progress, leave=False):
                try:
                    load(item.path, 8000, item.start, item.end if item.end is not None else
                         (item.start or 0) + 1.0)
                except AudioError as exc:
                    entry["corrupt"].append(f"{item.path}: {exc.reason}")
        entry["usable"] = len(sp) - len(entry["corrupt"])
        report["splits"][split] = entry
    for d in task.dataset_dirs:
        base = Path(data_root) / d
        if base.is_dir():
            for p in base.rglob("*"):
                if p.suffix.lower() in AUDIO_EXTENSIONS and str(p.resolve()) not in referenced:
                    report["unexpected"].append(str(p))
    report["unexpected"].sort()
    return report


def format_report(report: dict[str, Any], limit: int = 10) -> str:
    lines = [f"Task {report['task']} in {report['data_root']}:"]
    for split, e in report["splits"].items():
        usable = f"{e['usable']} usable" if e["corrupt"] else "not decoded (use --decode to find corrupt files)"
        lines.append(f"  {split:5s}: {e['tracks']} tracks indexed, {usable}; {len(e['problems'])} problem(s), "
                     f"{e['missing']} missing file(s), {len(e['corrupt'])} corrupt")
        for p in (e["problems"] + e["corrupt"])[:limit]:
            lines.append(f"    {p}")
        more = len(e["problems"]) + len(e["corrupt"]) - limit
        if more > 0:
            lines.append(f"    ... and {more} more")
    if report["unexpected"]:
        lines.append(f"  {len(report['unexpected'])} audio file(s) not in any split (unexpected), e.g.:")
        lines.extend(f"    {p}" for p in report["unexpected"][:limit])
    return "\n".join(lines)
