"""Verified downloads: a file is used only when its checksum matches, and is written atomically.

:func:`fetch` tries each address of a :class:`RemoteFile` in turn (the original host first, then
mirrors), streams the bytes into a temporary file beside the target while hashing them, and
renames the temporary file into place only when the MD5 matches. A download never writes more
than the file's published size (a server that sends more, or announces more, is refused at once),
and a failed, partial, corrupt or interrupted download (SIGTERM, SIGINT, SIGHUP) leaves nothing
behind; temporary files of processes that were killed outright are removed by the next fetch.
Any ``urllib`` address works, ``file://`` included (the tests use it; they never reach the
internet).
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "DGM_DATA_DIR"
CHUNK = 1 << 20


class DataUnavailableError(RuntimeError):
    """The data could not be had: not cached and not downloadable. The message says why."""


class ChecksumError(DataUnavailableError):
    """A file's checksum is not the published one."""


@dataclass(frozen=True)
class RemoteFile:
    """A file of ``size`` bytes published under ``filename`` with checksum ``md5`` at each of ``urls``."""

    filename: str
    md5: str
    urls: tuple[str, ...]
    size: int

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError(f"{self.filename}: at least one address is needed")
        if len(self.md5) != 32 or any(c not in "0123456789abcdef" for c in self.md5):
            raise ValueError(f"{self.filename}: {self.md5!r} is not a lowercase hex MD5")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"{self.filename}: size must be the published size in bytes, got {self.size!r}")


def data_dir() -> Path:
    """Where data sets are cached: ``$DGM_DATA_DIR``, default ``~/.cache/dgm``."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "dgm")


def md5_of(path: Path) -> str:
    """The MD5 hex digest of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class Interrupted(BaseException):
    """A signal arrived during a download (raised in its place, so that cleanup runs)."""


@contextmanager
def _signals_raise() -> Iterator[None]:
    """During the block, SIGTERM, SIGINT and SIGHUP raise :class:`Interrupted` (main thread only);
    afterwards the previous handlers come back and the signal is delivered to them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def handler(signum, frame):
        caught.append(signum)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if caught:  # cleanup is done: let the process react to the signal as it would have
            signal.raise_signal(caught[0])


def _part_name(target: Path, pid: int) -> Path:
    return target.with_name(f".{target.name}.part-{pid}")


def _remove_orphaned_parts(target: Path) -> None:
    """Delete temporary files of earlier downloads of ``target`` whose process no longer exists."""
    for part in target.parent.glob(f".{target.name}.part-*"):
        pid = part.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            part.unlink(missing_ok=True)
        except PermissionError:  # the process exists (another user's): leave its file alone
            pass


def _download(url: str, target: Path, md5: str, size: int, timeout_s: float) -> None:
    """Stream at most ``size`` bytes of ``url`` into a temporary file, check size and MD5, rename
    to ``target``."""
    tmp = _part_name(target, os.getpid())
    with _signals_raise():  # outermost: the partial file is gone before a signal takes effect
        _stream(url, target, tmp, md5, size, timeout_s)


def _stream(url: str, target: Path, tmp: Path, md5: str, size: int, timeout_s: float) -> None:
    try:
        h = hashlib.md5()
        written = 0
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(tmp, "wb") as out:
            announced = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            if announced is not None and announced.isdigit() and int(announced) != size:
                raise ChecksumError(
                    f"{url} announces {int(announced)} bytes for {target.name}, expected {size}: refused"
                )
            while chunk := response.read(min(CHUNK, size + 1 - written)):
                written += len(chunk)
                if written > size:
                    raise ChecksumError(
                        f"{url} sent more than the {size} bytes of {target.name}: stopped and discarded"
                    )
                h.update(chunk)
                out.write(chunk)
        if written != size:
            raise ChecksumError(
                f"{target.name} from {url} has {written} bytes, expected {size}: partial download, discarded"
            )
        got = h.hexdigest()
        if got != md5:
            raise ChecksumError(
                f"{target.name} downloaded from {url} has MD5 {got}, expected {md5}: "
                "corrupt or partial download, discarded"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(
    remote: RemoteFile, directory: Path | None = None, download: bool = True, timeout_s: float = 30.0
) -> Path:
    """The path of ``remote`` in ``directory`` (default :func:`data_dir`), verified; download it if needed.

    A cached copy with a wrong size or checksum is replaced by a verified download when
    ``download``; with ``download=False`` it is left as it is and :class:`ChecksumError` says so.
    Raises :class:`DataUnavailableError` naming every address tried and why it failed.
    """
    directory = data_dir() if directory is None else Path(directory)
    target = directory / remote.filename
    problems: list[str] = []
    if target.exists():
        actual = target.stat().st_size
        got = md5_of(target) if actual == remote.size else None
        if got == remote.md5:
            return target
        what = f"MD5 {got}, expected {remote.md5}" if got else f"{actual} bytes, expected {remote.size}"
        if not download:
            raise ChecksumError(
                f"cached {target} has {what}; left as it is (download=False): delete it, or fetch "
                "with download=True to replace it with a verified copy"
            )
        problems.append(f"cached {target} had {what}; replacing it")
    if not download:
        problems.append(f"{target} is not there and download=False")
        raise DataUnavailableError("; ".join(problems))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataUnavailableError(f"cannot create the data folder {directory}: {e}") from e
    _remove_orphaned_parts(target)
    corrupt = 0
    for url in remote.urls:
        try:
            _download(url, target, remote.md5, remote.size, timeout_s)
            return target
        except ChecksumError as e:
            corrupt += 1
            problems.append(str(e))
        except (OSError, ValueError) as e:  # URLError, timeouts, refused connections, bad URLs
            problems.append(f"{url}: {type(e).__name__}: {e}")
    error = ChecksumError if corrupt == len(remote.urls) else DataUnavailableError
    raise error(f"could not obtain {remote.filename}: " + "; ".join(problems))
