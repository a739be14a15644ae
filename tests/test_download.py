"""`bench data download` and `bench data check --checksums`, against a loopback HTTP server.

Every URL here is on 127.0.0.1 and every archive a small stand-in built by the
test: nothing reaches outside the machine.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.cli import main
from bench.download import SOURCES, load_sources


class Server:
    """Serves ``files`` (path -> bytes) with Range support; ``break_once`` paths send half a body, once."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.break_once: set[str] = set()
        self.ranges: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                outer.ranges.append((self.path, self.headers.get("Range")))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                start = 0
                if rng:
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if self.path in outer.break_once:
                    outer.break_once.discard(self.path)
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(part)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def bench(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return code, out.out, out.err


def _gtzan_sources(tmp_path: Path, server: Server, archive: bytes, md5: str | None) -> Path:
    server.files["/sound/genres.tar.gz"] = archive
    entry = {"name": "genres.tar.gz", "url": server.url + "/sound/genres.tar.gz", "unpack": "tar", "into": "gtzan"}
    if md5:
        entry |= {"md5": md5, "checksum_source": "the test's stand-in index"}
    src = tmp_path / "sources.json"
    src.write_text(json.dumps({"gtzan": {"licence": "test", "files": [entry]}}))
    return src


STANDIN = {"genres/blues/blues.00000.wav": b"RIFF" + bytes(range(256)) * 400,
           "genres/jazz/jazz.00001.wav": b"RIFF" + bytes(255 - i for i in range(256)) * 300}


def test_an_interrupted_download_resumes_then_verifies_and_unpacks(capsys, tmp_path, server):
    archive = _tar_gz(STANDIN)
    src = _gtzan_sources(tmp_path, server, archive, _md5(archive))
    server.break_once.add("/sound/genres.tar.gz")
    to = tmp_path / "data"
    code, out, err = bench(capsys, "data", "download", "gtzan", "--to", to, "--sources", src)
    assert code == 2 and "rerun the same command to resume" in err
    part = to / "downloads" / "genres.tar.gz.part"
    half = part.stat().st_size
    assert 0 < half < len(archive)

    code, out, err = bench(capsys, "data", "download", "gtzan", "--to", to, "--sources", src)
    assert code == 0, err
    assert server.ranges[-1] == ("/sound/genres.tar.gz", f"bytes={half}-")  # asked only for the rest
    assert "resuming at" in out and "every file verified" in out
    assert (to / "downloads" / "genres.tar.gz").read_bytes() == archive and not part.exists()
    assert (to / "gtzan" / "genres" / "blues" / "blues.00000.wav").read_bytes() == STANDIN["genres/blues/blues.00000.wav"]

    code, out, _ = bench(capsys, "data", "check", "--checksums", "--task", "gtzan", "--data-root", to, "--sources", src)
    assert code == 0 and "verified" in out and _md5(archive) in out


def test_a_corrupted_archive_is_refused_with_its_checksum_named_then_restored(capsys, tmp_path, server):
    archive = _tar_gz(STANDIN)
    published = _md5(archive)
    corrupt = bytearray(archive)
    corrupt[len(corrupt) // 2] ^= 0xFF
    src = _gtzan_sources(tmp_path, server, bytes(corrupt), published)
    to = tmp_path / "data"
    code, _, err = bench(capsys, "data", "download", "gtzan", "--to", to, "--sources", src)
    assert code == 2
    assert published in err and _md5(bytes(corrupt)) in err and "the test's stand-in index" in err
    assert (to / "downloads" / "genres.tar.gz.corrupt").is_file()
    assert not (to / "downloads" / "genres.tar.gz").exists() and not (to / "gtzan").exists()  # nothing unpacked

    code, out, _ = bench(capsys, "data", "check", "--checksums", "--task", "gtzan", "--data-root", to, "--sources", src)
    assert code == 2 and "MISSING" in out

    server.files["/sound/genres.tar.gz"] = archive  # the source is right again: a rerun restores the folder
    code, _, err = bench(capsys, "data", "download", "gtzan", "--to", to, "--sources", src)
    assert code == 0, err
    code, out, _ = bench(capsys, "data", "check", "--checksums", "--task", "gtzan", "--data-root", to, "--sources", src)
    assert code == 0 and "verified" in out

    # a file damaged on disk later is found by the check
    kept = to / "downloads" / "genres.tar.gz"
    kept.write_bytes(bytes(corrupt))
    code, out, _ = bench(capsys, "data", "check", "--checksums", "--task", "gtzan", "--data-root", to, "--sources", src)
    assert code == 2 and "MISMATCH" in out and published in out


def test_without_a_published_checksum_the_digest_is_recorded_as_unverified(capsys, tmp_path, server):
    archive = _tar_gz(STANDIN)
    src = _gtzan_sources(tmp_path, server, archive, None)
    to = tmp_path / "data"
    code, out, err = bench(capsys, "data", "download", "gtzan", "--to", to, "--sources", src)
    assert code == 0, err
    assert "no published checksum" in out
    record = json.loads((to / "downloads" / "checksums.json").read_text())
    assert record["genres.tar.gz"]["sha256"] == hashlib.sha256(archive).hexdigest()
    code, out, _ = bench(capsys, "data", "check", "--checksums", "--task", "gtzan", "--data-root", to, "--sources", src)
    assert code == 0 and "unverified" in out and "as recorded on first download" in out
    (to / "downloads" / "genres.tar.gz").write_bytes(archive[:-1] + bytes([archive[-1] ^ 1]))
    code, out, _ = bench(capsys, "data", "check", "--checksums", "--task", "gtzan", "--data-root", to, "--sources", src)
    assert code == 2 and "MISMATCH" in out


def test_split_archive_plain_file_and_per_file_md5_lists(capsys, tmp_path, server):
    # MTAT-like: a zip split in parts plus a CSV copied into place
    inner = _zip({"0/a.mp3": b"ID3" + b"a" * 500, "f/b.mp3": b"ID3" + b"b" * 700})
    cut = [inner[:100], inner[100:300], inner[300:]]
    for i, piece in enumerate(cut, 1):
        server.files[f"/mtat/mp3.zip.00{i}"] = piece
    server.files["/mtat/annotations_final.csv"] = b"clip_id\ttag\tmp3_path\n"
    # GiantSteps-like: a repository archive with a top folder and md5/ lists; audio from a fallback URL
    audio = {"1.LOFI": b"ID3" + b"x" * 900, "2.LOFI": b"ID3" + b"y" * 800}
    repo = _zip({"repo-abc/annotations/key/1.LOFI.key": b"C major",
                 **{f"repo-abc/md5/{k}.md5": (_md5(v) + "\n").encode() for k, v in audio.items()}})
    server.files["/gs/repo.zip"] = repo
    server.files["/backup/1.LOFI.mp3"] = audio["1.LOFI"]
    server.files["/primary/2.LOFI.mp3"] = audio["2.LOFI"]
    server.files["/primary/1.LOFI.mp3"] = b"not the published bytes"  # md5 mismatch: the next URL is tried
    u = server.url
    sources = {
        "mtat": {"files": [
            {"name": "mp3.zip.001", "url": u + "/mtat/mp3.zip.001"},
            {"name": "mp3.zip.002", "url": u + "/mtat/mp3.zip.002"},
            {"name": "mp3.zip.003", "url": u + "/mtat/mp3.zip.003", "unpack": "zip",
             "parts": ["mp3.zip.001", "mp3.zip.002", "mp3.zip.003"], "into": "magnatagatune"},
            {"name": "annotations_final.csv", "url": u + "/mtat/annotations_final.csv",
             "copy_to": "magnatagatune/annotations_final.csv"}]},
        "giantsteps_key": {"files": [
            {"name": "gs.zip", "url": u + "/gs/repo.zip", "unpack": "zip", "strip_top": True, "into": "gs",
             "per_file": {"md5_dir": "gs/md5", "target": "gs/audio/{stem}.mp3",
                          "urls": [u + "/primary/{stem}.mp3", u + "/backup/{stem}.mp3"],
                          "checksum_source": "gs md5/{stem}.md5"}}]},
    }
    src = tmp_path / "sources.json"
    src.write_text(json.dumps(sources))
    to = tmp_path / "data"
    code, out, err = bench(capsys, "data", "download", "all", "--to", to, "--sources", src)
    assert code == 0, err
    assert (to / "magnatagatune" / "0" / "a.mp3").read_bytes() == b"ID3" + b"a" * 500
    assert (to / "magnatagatune" / "annotations_final.csv").is_file()
    assert (to / "gs" / "annotations" / "key" / "1.LOFI.key").is_file()
    assert {p.name: p.read_bytes() for p in (to / "gs" / "audio").iterdir()} == {
        f"{k}.mp3": v for k, v in audio.items()}
    assert "2 of 2 files listed in gs/md5" in out
    code, out, _ = bench(capsys, "data", "check", "--checksums", "--task", "all", "--data-root", to, "--sources", src)
    assert code == 0 and "2 of 2 files match" in out
    (to / "gs" / "audio" / "2.LOFI.mp3").write_bytes(b"damaged")
    code, out, _ = bench(capsys, "data", "check", "--checksums", "--task", "giantsteps_key", "--data-root", to,
                         "--sources", src)
    assert code == 2 and "MISMATCH" in out and "2.LOFI.mp3" in out


def test_an_archive_member_leaving_the_folder_is_not_unpacked(capsys, tmp_path, server):
    evil = _zip({"top/../../escape.txt": b"x"})
    server.files["/evil.zip"] = evil
    src = tmp_path / "sources.json"
    src.write_text(json.dumps({"t": {"files": [{"name": "e.zip", "url": server.url + "/evil.zip", "unpack": "zip",
                                                 "into": "t"}]}}))
    code, _, err = bench(capsys, "data", "download", "t", "--to", tmp_path / "d", "--sources", src)
    assert code == 2 and "would leave" in err
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "d" / "escape.txt").exists()


def test_unknown_task_and_bad_url_option_are_refused(capsys, tmp_path):
    code, _, err = bench(capsys, "data", "download", "gtzann", "--to", tmp_path)
    assert code == 2 and "did you mean 'gtzan'" in err.lower()
    code, _, err = bench(capsys, "data", "download", "gtzan", "--to", tmp_path, "--url", "nope")
    assert code == 2 and "NAME=URL" in err
    code, _, err = bench(capsys, "data", "download", "gtzan", "--to", tmp_path, "--url", "other.tar=http://127.0.0.1:9/x")
    assert code == 2 and "genres.tar.gz" in err


def test_the_shipped_index_cites_a_source_for_every_checksum():
    sources = load_sources(SOURCES)
    assert {"gtzan", "nsynth_pitch", "mtat", "giantsteps_key"} <= set(sources)
    for task, entry in sources.items():
        assert entry.get("licence") and entry.get("homepage"), task
        for f in entry["files"]:
            if "md5" in f:
                assert re.fullmatch(r"[0-9a-f]{32}", f["md5"]) and f.get("checksum_source"), f
    assert sources["gtzan"]["files"][0]["md5"] == "5b3d6dddb579ab49814ab86dba69e7c7"  # mirdata gtzan_genre REMOTES
