"""`bench data check`: what a data root holds for a task, before any model runs; with ``--checksums``, whether
the files `bench data download` fetched still match their published (or first-recorded) checksums."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.audio import AUDIO_EXTENSIONS
from bench.task import SPLITS


def check(task: Any, data_root: Path, decode: bool = False, progress: bool = True) -> dict[str, Any]:
    """Index every split and report counts, problems, missing/corrupt/unexpected files.

    With ``decode``, every indexed file is decoded from start to end (or over
    its item's span), block by block at its own sample rate: a file that fails
    anywhere, or ends before the length its header announces, is corrupt.
    """
    from bench.audio import AudioError, decode_all
    from bench.decoder_messages import capture, summary

    report: dict[str, Any] = {"task": task.name, "data_root": str(data_root), "splits": {}, "unexpected": [],
                              "decoded": decode}
    referenced: set[str] = set()
    for split in SPLITS:
        sp = task.items(split, data_root)
        entry = {"tracks": len(sp), "problems": [str(p) for p in sp.problems], "corrupt": [], "seconds": 0.0}
        missing = [str(p) for p in sp.problems if p.kind == "missing_audio"]
        entry["missing"] = len(missing)
        for item in sp:
            referenced.add(str(Path(item.path).resolve()))
        if decode:
            from tqdm.auto import tqdm

            for item in tqdm(sp.items, desc=f"decode {split}", unit="file", disable=not progress, leave=False):
                with capture() as notes:  # what libmpg123 prints on fd 2, kept with the file it is about
                    try:
                        entry["seconds"] += decode_all(item.path, item.start, item.end)[0]
                        reason = ""
                    except AudioError as exc:
                        reason = exc.reason
                if reason:
                    entry["corrupt"].append(f"{item.path}: {reason}" + (f" [decoder: {summary(notes)}]" if notes else ""))
                elif notes:
                    entry["problems"].append(f"{item.path}: decoded, with warnings from the decoder: {summary(notes)}")
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
        if report.get("decoded"):
            usable = f"each decoded end to end: {e['usable']} usable ({_duration(e['seconds'])} of audio)"
        else:
            usable = "not decoded (use --decode to decode every file end to end)"
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


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 600 else f"{seconds / 3600:.2f} h"


@dataclass
class Check:
    name: str
    status: str  # verified | unverified | mismatch | missing | unrecorded
    detail: str

    @property
    def bad(self) -> bool:
        return self.status in ("mismatch", "missing")


def verify(task: str, root: Path, sources: dict[str, Any]) -> list[Check]:
    """Check every downloaded file of ``task`` under ``root`` against the index or the recorded digest."""
    from bench.download import DOWNLOADS, digests, read_record, task_entry

    entry = task_entry(task, sources)
    root = Path(root).expanduser()
    record = read_record(root)
    out = []
    for f in entry["files"]:
        name, md5 = f["name"], f.get("md5")
        path = root / DOWNLOADS / name
        if not path.is_file():
            out.append(Check(name, "missing", f"{path} not found (run `bench data download {task} --to {root}`)"))
        else:
            d = digests(path)
            rec = record.get(name)
            if md5:
                ok = d.md5 == md5
                out.append(Check(name, "verified" if ok else "mismatch",
                                 f"md5 {d.md5}" + ("" if ok else f", published {md5}") + f" ({f.get('checksum_source')})"))
            elif rec:
                ok = rec.get("sha256") == d.sha256
                out.append(Check(name, "unverified" if ok else "mismatch",
                                 f"sha256 {d.sha256}" + (" as recorded on first download" if ok else
                                                         f", recorded on first download {rec.get('sha256')}")
                                 + "; no published checksum"))
            else:
                out.append(Check(name, "unrecorded", f"sha256 {d.sha256}; no published checksum and none recorded"))
        if "per_file" in f:
            out.append(_verify_per_file(f["per_file"], root))
    return out


def _verify_per_file(spec: dict[str, Any], root: Path) -> Check:
    from bench.download import digests, per_file_list

    listed = per_file_list(spec, root)
    if not listed:
        return Check(spec["md5_dir"], "missing", f"{root / spec['md5_dir']} holds no *.md5 files")
    missing, bad = [], []
    for stem, md5, target in listed:
        if not target.is_file():
            missing.append(str(target))
        elif md5 is None or digests(target).md5 != md5:
            bad.append(str(target))
    detail = f"{len(listed) - len(missing) - len(bad)} of {len(listed)} files match the md5 published in {spec['md5_dir']}"
    if bad:
        return Check(spec["md5_dir"], "mismatch", detail + f"; {len(bad)} do not, e.g. {', '.join(bad[:3])}")
    if missing:
        return Check(spec["md5_dir"], "missing", detail + f"; {len(missing)} missing, e.g. {', '.join(missing[:3])}")
    return Check(spec["md5_dir"], "verified", detail)


def format_checks(task: str, root: Path, checks: list[Check]) -> str:
    lines = [f"Checksums of {task} in {root}:"]
    lines += [f"  {c.status.upper() if c.bad else c.status:10s} {c.name}: {c.detail}" for c in checks]
    return "\n".join(lines)
