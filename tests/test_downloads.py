from __future__ import annotations

import functools
import http.server
import socket
import threading

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
    remote = RemoteFile("f.bin", md5(www / "f.bin"), (_closed_port_url("f.bin"), f"{base}/f.bin"))
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
    remote = RemoteFile("f.bin", "0" * 32, (f"{base}/f.bin", (www / "f.bin").as_uri()))
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
    remote = RemoteFile("f.bin", md5(good), (good.as_uri(),))
    with pytest.raises(DataUnavailableError, match=md5(cache / "f.bin")):
        fetch(remote, cache, download=False)
    assert list(cache.iterdir()) == []
    (cache / "f.bin").write_bytes(b"the real th")
    assert fetch(remote, cache).read_bytes() == b"the real thing"  # replaced by a verified download


def test_no_network_names_every_address(tmp_path):
    urls = (_closed_port_url("a"), _closed_port_url("b"))
    with pytest.raises(DataUnavailableError) as e:
        fetch(RemoteFile("f.bin", "0" * 32, urls), tmp_path, timeout_s=5)
    assert not isinstance(e.value, ChecksumError)
    assert all(u in str(e.value) for u in urls)
    assert list(tmp_path.iterdir()) == []


def test_remote_file_validation_and_data_dir(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="MD5"):
        RemoteFile("f", "XYZ", ("file:///f",))
    with pytest.raises(ValueError, match="address"):
        RemoteFile("f", "0" * 32, ())
    monkeypatch.setenv("DGM_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("DGM_DATA_DIR")
    assert data_dir().parts[-2:] == (".cache", "dgm")


def test_unwritable_data_folder_is_data_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    remote = RemoteFile("f.bin", "0" * 32, ((tmp_path / "f.bin").as_uri(),))
    with pytest.raises(DataUnavailableError, match="cannot create the data folder"):
        fetch(remote, blocker / "cache")
