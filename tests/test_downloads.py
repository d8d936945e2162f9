from __future__ import annotations

import functools
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from dgm.downloads import ChecksumError, DataUnavailableError, RemoteFile, data_dir, fetch

from fakecifar import md5


def _closed_port_url(name: str) -> str:
    with socket.socket() as s:  # bind, read the port, close: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


@pytest.fixture
def served(tmp_path):
    """A loopback HTTP server over tmp_path/www; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_downloads_from_the_mirror_when_the_host_fails_and_caches(served, tmp_path):
    www, base = served
    (www / "f.bin").write_bytes(b"payload" * 1000)
    remote = RemoteFile("f.bin", md5(www / "f.bin"), (_closed_port_url("f.bin"), f"{base}/f.bin"), size=7000)
    cache = tmp_path / "cache"
    path = fetch(remote, cache)
    assert path == cache / "f.bin" and path.read_bytes() == b"payload" * 1000
    assert sorted(p.name for p in cache.iterdir()) == ["f.bin"]  # no temporary file left
    (www / "f.bin").unlink()
    assert fetch(remote, cache, download=False) == path  # the verified copy is reused


def test_wrong_checksum_is_an_error_and_leaves_nothing(served, tmp_path):
    www, base = served
    (www / "f.bin").write_bytes(b"truncated")
    got = md5(www / "f.bin")
    remote = RemoteFile("f.bin", "0" * 32, (f"{base}/f.bin", (www / "f.bin").as_uri()), size=9)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as e:
        fetch(remote, cache)
    assert "f.bin" in str(e.value) and got in str(e.value) and "0" * 32 in str(e.value)
    assert list(cache.iterdir()) == []


def test_corrupt_cached_copy_is_never_used(tmp_path):
    good = tmp_path / "good.bin"
    good.write_bytes(b"the real thing")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "f.bin").write_bytes(b"the real th")  # a partial copy
    remote = RemoteFile("f.bin", md5(good), (good.as_uri(),), size=14)
    with pytest.raises(ChecksumError, match="11 bytes, expected 14.*left as it is"):
        fetch(remote, cache, download=False)
    assert (cache / "f.bin").read_bytes() == b"the real th"  # no download asked for: nothing deleted
    (cache / "f.bin").write_bytes(b"the real thX--")  # right size, wrong content
    with pytest.raises(ChecksumError, match=md5(cache / "f.bin")):
        fetch(remote, cache, download=False)
    assert fetch(remote, cache).read_bytes() == b"the real thing"  # replaced by a verified download
    assert sorted(p.name for p in cache.iterdir()) == ["f.bin"]


def test_no_network_names_every_address(tmp_path):
    urls = (_closed_port_url("a"), _closed_port_url("b"))
    with pytest.raises(DataUnavailableError) as e:
        fetch(RemoteFile("f.bin", "0" * 32, urls, size=1), tmp_path, timeout_s=5)
    assert not isinstance(e.value, ChecksumError)
    assert all(u in str(e.value) for u in urls)
    assert list(tmp_path.iterdir()) == []


def test_remote_file_validation_and_data_dir(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="MD5"):
        RemoteFile("f", "XYZ", ("file:///f",), size=1)
    with pytest.raises(ValueError, match="address"):
        RemoteFile("f", "0" * 32, (), size=1)
    for size in (0, -5, 1.5, True, None):
        with pytest.raises(ValueError, match="size"):
            RemoteFile("f", "0" * 32, ("file:///f",), size=size)
    monkeypatch.setenv("DGM_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("DGM_DATA_DIR")
    assert data_dir().parts[-2:] == (".cache", "dgm")


def test_unwritable_data_folder_is_data_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    remote = RemoteFile("f.bin", "0" * 32, ((tmp_path / "f.bin").as_uri(),), size=1)
    with pytest.raises(DataUnavailableError, match="cannot create the data folder"):
        fetch(remote, blocker / "cache")


class _Endless(http.server.BaseHTTPRequestHandler):
    """A captive portal gone wrong: 200 OK, no length (or a false one), then data until stopped."""

    announce: str | None = None
    sent = 0

    def do_GET(self):  # noqa: N802 - the base class's name
        self.send_response(200)
        if self.announce is not None:
            self.send_header("Content-Length", self.announce)
        self.end_headers()
        try:
            for _ in range(2000):  # bounded: at most 128 MB, far more than the file's size
                self.wfile.write(b"x" * 65536)
                type(self).sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def endless():
    def start(announce=None):
        handler = type("Handler", (_Endless,), {"announce": announce, "sent": 0})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/f.bin", handler

    servers = []
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_a_server_that_never_stops_cannot_fill_the_disk(endless, tmp_path):
    url, handler = endless()
    remote = RemoteFile("f.bin", "0" * 32, (url,), size=100_000)
    with pytest.raises(ChecksumError, match="more than the 100000 bytes"):
        fetch(remote, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_false_content_length_is_refused_before_reading(endless, tmp_path):
    url, handler = endless(announce=str(10**12))
    with pytest.raises(ChecksumError, match="announces 1000000000000 bytes"):
        fetch(RemoteFile("f.bin", "0" * 32, (url,), size=100_000), tmp_path)
    assert list(tmp_path.iterdir()) == []


SLOW_FETCH = """
import sys
from dgm.downloads import RemoteFile, fetch
fetch(RemoteFile("f.bin", "0" * 32, (sys.argv[1],), size=10**9), sys.argv[2], timeout_s=60)
"""


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(600):  # at most a minute
                self.wfile.write(b"y" * 1024)
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_download_leaves_no_partial_file(tmp_path, sig):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/f.bin"
        proc = subprocess.Popen(
            [sys.executable, "-c", SLOW_FETCH, url, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".f.bin.part-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob(".f.bin.part-*")), "the download never started"
        time.sleep(0.3)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode != 0  # the signal still ends the process ...
    assert list(tmp_path.iterdir()) == []  # ... after the partial file was removed


def test_partial_files_of_killed_processes_are_removed_by_the_next_fetch(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    orphan = tmp_path / f".f.bin.part-{int(dead.stdout)}"
    orphan.write_bytes(b"half")
    alive = tmp_path / f".f.bin.part-{os.getppid()}"  # a running process's download: left alone
    alive.write_bytes(b"busy")
    good = tmp_path / "src.bin"
    good.write_bytes(b"data")
    fetch(RemoteFile("f.bin", md5(good), (good.as_uri(),), size=4), tmp_path)
    assert not orphan.exists() and alive.exists() and (tmp_path / "f.bin").read_bytes() == b"data"
