"""`bench data download` / `bench data check --checksums`: fetch a task's dataset from its source, verified.

Where each built-in task's files come from and the checksums that vouch for
them are in ``bench/dataset_sources.json`` (or a file of the same shape given
with ``--sources``, e.g. an institutional mirror). A checksum is listed only
where a published one exists, with ``checksum_source`` naming where; a file
without one has its digests recorded on first download in
``DIR/downloads/checksums.json`` and is reported as *unverified*.

Resumable (``NAME.part`` + HTTP ``Range``); a checksum mismatch is refused
(``NAME.corrupt``, both checksums named). Archives stay in ``DIR/downloads/``
for ``bench data check --checksums``; unpacking never leaves the target folder.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from bench.errors import BenchError, DataError

SOURCES = Path(__file__).with_name("dataset_sources.json")
DOWNLOADS = "downloads"
RECORD = "checksums.json"
CHUNK = 1 << 20
MD5_RE = re.compile(r"^[0-9a-f]{32}$")

Log = Callable[[str], None]


def load_sources(path: Path | None = None) -> dict[str, Any]:
    """The index of dataset sources: ``{task: {dataset, homepage, licence, note, files: [...]}}``."""
    path = Path(path) if path else SOURCES
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BenchError(f"--sources {path}: cannot read it ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise BenchError(f"--sources {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    out = {k: v for k, v in data.items() if not k.startswith("_")}
    for task, entry in out.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("files"), list):
            raise BenchError(f"{path}: entry {task!r} needs a 'files' list")
        for f in entry["files"]:
            if not isinstance(f, dict) or not f.get("name") or not f.get("url") or "/" in f["name"]:
                raise BenchError(f"{path}: a file of {task!r} needs a plain 'name' and a 'url': {f!r}")
    return out


def has_recipe(task: str) -> bool:
    """Whether the shipped index knows where to download ``task``'s dataset (for error messages)."""
    try:
        return task in load_sources()
    except BenchError:
        return False


def task_entry(task: str, sources: dict[str, Any]) -> dict[str, Any]:
    if task not in sources:
        import difflib

        close = difflib.get_close_matches(task, list(sources), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BenchError(f"no download recipe for task {task!r}.{hint} Tasks with one: {', '.join(sorted(sources))}. "
                         "For other tasks see `bench list` and the task's own data help.")
    return sources[task]


@dataclass
class Digests:
    md5: str
    sha256: str
    size: int


def digests(path: Path) -> Digests:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return Digests(md5.hexdigest(), sha.hexdigest(), size)


class _Interrupted(Exception):
    """The transfer stopped early; the part file keeps what arrived."""


def _get(url: str, part: Path, log: Log, timeout: float) -> None:
    """Download ``url`` into ``part``, continuing from the bytes already there when the server allows."""
    from bench import __version__

    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"bench/{__version__} (dataset download)"}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing after what we have: complete if the server says so
            total = (exc.headers.get("Content-Range") or "").rpartition("/")[2]
            if total.isdigit() and int(total) == have:
                return
            part.unlink()  # a part longer than the file: start again
            raise _Interrupted(f"the server refused the range after {have} bytes; the part was dropped") from None
        raise
    with resp:
        mode = "wb"
        if have and resp.status == 206:
            if not (resp.headers.get("Content-Range") or "").startswith(f"bytes {have}-"):
                part.unlink()
                raise _Interrupted("the server answered another range than asked; the part was dropped")
            mode = "ab"
            log(f"  resuming at {_mb(have)}")
        elif have:
            log(f"  the server does not resume ({resp.status}): downloading from the start")
            have = 0
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        got = 0
        with open(part, mode) as f:
            try:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    got += len(chunk)
            except (http.client.HTTPException, OSError) as exc:
                raise _Interrupted(f"the transfer broke after {_mb(have + got)} ({exc.__class__.__name__})") from None
        if expected is not None and got < expected:
            raise _Interrupted(f"the connection closed after {_mb(have + got)} of {_mb(have + expected)}")


def fetch(name: str, urls: list[str], dest: Path, md5: str | None, source: str, log: Log = print,
          timeout: float = 60.0) -> Digests:
    """``dest`` downloaded (resumably) from the first of ``urls`` that gives it, checked against ``md5``.

    A file already at ``dest`` is checked, not fetched again. A mismatch on the
    last URL is refused with a DataError naming both checksums and the source.
    """
    part = dest.with_name(dest.name + ".part")
    if dest.is_file():
        d = digests(dest)
        if md5 is None or d.md5 == md5:
            return d
        log(f"  {dest} is there but its md5 {d.md5} is not the published {md5}: downloading again")
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for i, url in enumerate(urls):
        log(f"{name}: {url}")
        try:
            _get(url, part, log, timeout)
        except KeyboardInterrupt:
            if part.exists():
                log(f"  stopped: {_mb(part.stat().st_size)} kept in {part}; rerun the same command to resume")
            raise
        except _Interrupted as exc:
            kept = f" ({_mb(part.stat().st_size)} kept in {part}; rerun the same command to resume)" if part.exists() else ""
            errors.append(f"{url}: {exc}{kept}")
            continue
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            errors.append(f"{url}: {reason}")
            continue
        d = digests(part)
        if md5 is not None and d.md5 != md5:
            msg = (f"{name}: md5 {d.md5} does not match the published md5 {md5} ({source}); "
                   f"the download from {url} is corrupt or not the published file")
            if i + 1 < len(urls):  # another source may have the right bytes: this copy is dropped
                part.unlink()
                log(f"  {msg}; trying the next source")
                errors.append(msg)
                continue
            bad = dest.with_name(dest.name + ".corrupt")
            part.replace(bad)
            raise DataError(f"{msg}. Moved to {bad}. Rerun to download it again, or give another copy with --url "
                            f"{name}=URL (the published md5 still decides).")
        part.replace(dest)
        return d
    raise DataError(f"{name}: could not download it: " + "; ".join(errors))


def read_record(root: Path) -> dict[str, Any]:
    path = root / DOWNLOADS / RECORD
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc}); delete it to record the digests again") from None


def _write_record(root: Path, record: dict[str, Any]) -> None:
    path = root / DOWNLOADS / RECORD
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def download(task: str, root: Path, sources: dict[str, Any], urls: dict[str, str] | None = None,
             log: Log = print, timeout: float = 60.0) -> dict[str, Any]:
    """Fetch, verify and unpack every file of ``task`` under ``root``; returns a summary."""
    entry = task_entry(task, sources)
    urls = dict(urls or {})
    names = {f["name"] for f in entry["files"]}
    for n in urls:
        if n not in names:
            raise BenchError(f"--url {n}=...: {task} has no file {n!r}; its files: {', '.join(sorted(names))}")
    root = Path(root).expanduser()
    dl = root / DOWNLOADS
    dl.mkdir(parents=True, exist_ok=True)
    record = read_record(root)
    summary: dict[str, Any] = {"task": task, "root": str(root), "files": {}}
    for f in entry["files"]:
        name, md5 = f["name"], f.get("md5")
        url = urls.get(name, f["url"])
        t0 = time.perf_counter()
        d = fetch(name, [url], dl / name, md5, f.get("checksum_source", ""), log, timeout)
        prev = record.get(name)
        if md5:
            status = "verified"
        elif prev and prev.get("sha256") != d.sha256:
            status = "changed"
            log(f"  {name}: sha256 {d.sha256} differs from the one recorded on first download "
                f"({prev.get('sha256')}); kept the new file, recorded it, and reporting it")
        else:
            status = "unverified"
        if not md5 and (prev is None or status == "changed"):
            record[name] = {"task": task, "url": url, "md5": d.md5, "sha256": d.sha256, "size": d.size,
                            "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            _write_record(root, record)
        log(f"  {name}: {_mb(d.size)}, md5 {d.md5} " + (
            f"matches the published one ({f.get('checksum_source')})" if md5 else
            "(no published checksum: recorded as unverified)") + f" [{time.perf_counter() - t0:.1f}s]")
        summary["files"][name] = status
        _place(f, root, dl, d, log)
        if "per_file" in f:
            summary["files"].update(_per_file(f["per_file"], root, log, timeout))
    return summary


def _place(f: dict[str, Any], root: Path, dl: Path, d: Digests, log: Log) -> None:
    """Unpack an archive (once per archive content) or copy a plain file into the dataset folder."""
    if f.get("copy_to"):
        target = _inside(root, f["copy_to"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dl / f["name"], target)
        return
    kind = f.get("unpack")
    if not kind:
        return
    marker = dl / (f["name"] + ".unpacked")
    if marker.is_file() and marker.read_text().strip() == d.sha256:
        return
    into = _inside(root, f["into"])
    parts = f.get("parts") or [f["name"]]
    archive = dl / parts[0]
    if len(parts) > 1:  # a split archive (MTAT's mp3.zip.001-003): the parts concatenated are the zip
        archive = dl / (f["name"] + ".joined")
        with open(archive, "wb") as out:
            for p in parts:
                with open(dl / p, "rb") as src:
                    shutil.copyfileobj(src, out, CHUNK)
    log(f"  unpacking into {into}")
    into.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "tar":
            with tarfile.open(archive) as t:
                t.extractall(into, filter="data")
        elif kind == "zip":
            _unzip(archive, into, strip_top=bool(f.get("strip_top")))
        else:
            raise BenchError(f"{f['name']}: unknown unpack kind {kind!r} (tar or zip)")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{archive}: cannot unpack it ({exc}); delete it and rerun to download it again") from None
    finally:
        if archive.name.endswith(".joined"):
            archive.unlink(missing_ok=True)
    marker.write_text(d.sha256 + "\n")


def _unzip(archive: Path, into: Path, strip_top: bool) -> None:
    base = into.resolve()
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            parts = PurePosixPath(info.filename).parts
            if strip_top:
                parts = parts[1:]
            if not parts or info.is_dir():
                continue
            if any(p in ("..", "") for p in parts) or PurePosixPath(info.filename).is_absolute():
                raise DataError(f"{archive}: member {info.filename!r} would leave {into}; not unpacking it")
            target = base.joinpath(*parts)
            if not target.resolve().is_relative_to(base):
                raise DataError(f"{archive}: member {info.filename!r} would leave {into}; not unpacking it")
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)


def _inside(root: Path, rel: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise BenchError(f"sources: {rel!r} leaves the download folder {root}")
    return path


def per_file_list(spec: dict[str, Any], root: Path) -> list[tuple[str, str | None, Path]]:
    """(stem, published md5 or None when its .md5 file is malformed, target path) per listed file."""
    out = []
    md5_dir = _inside(root, spec["md5_dir"])
    for p in sorted(md5_dir.glob("*.md5")) if md5_dir.is_dir() else []:
        text = p.read_text(encoding="utf-8", errors="replace").strip().split()
        value = text[0].lower() if text else ""
        stem = p.name[: -len(".md5")]
        out.append((stem, value if MD5_RE.match(value) else None, _inside(root, spec["target"].format(stem=stem))))
    return out


def _per_file(spec: dict[str, Any], root: Path, log: Log, timeout: float) -> dict[str, str]:
    """Fetch every file a dataset lists with its own md5 (GiantSteps' md5/ folder), each checked."""
    listed = per_file_list(spec, root)
    if not listed:
        raise DataError(f"{root / spec['md5_dir']}: no *.md5 files, so no audio list to download")
    failed, done = [], 0
    quiet: Log = lambda s: None  # noqa: E731 - thousands of files: only failures and a count are printed
    for stem, md5, target in listed:
        if md5 is None:
            failed.append(f"{stem}: its .md5 file holds no md5")
            continue
        urls = [u.format(stem=stem) for u in spec["urls"]]
        try:
            fetch(target.name, urls, target, md5, spec["checksum_source"].format(stem=stem), quiet, timeout)
            done += 1
        except DataError as exc:
            failed.append(str(exc))
    log(f"  {done} of {len(listed)} files listed in {spec['md5_dir']} downloaded and matching their published md5")
    if failed:
        for msg in failed[:10]:
            log(f"    {msg}")
        raise DataError(f"{len(failed)} of {len(listed)} files of {spec['md5_dir']} could not be downloaded and "
                        "verified (listed above); rerun to retry them (the others are kept)")
    return {spec["md5_dir"]: "verified"}


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"
