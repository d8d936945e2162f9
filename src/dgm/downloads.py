"""Verified downloads: a file is used only when its checksum matches, and is written atomically.

:func:`fetch` tries each address of a :class:`RemoteFile` in turn (the original host first, then
mirrors), streams the bytes into a temporary file beside the target while hashing them, and
renames the temporary file into place only when the MD5 matches. A failed, partial or corrupt
download leaves nothing behind. Any ``urllib`` address works, ``file://`` included (the tests
use it; they never reach the internet).
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
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
    """A file published under ``filename`` with checksum ``md5`` at each of ``urls`` (tried in order)."""

    filename: str
    md5: str
    urls: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError(f"{self.filename}: at least one address is needed")
        if len(self.md5) != 32 or any(c not in "0123456789abcdef" for c in self.md5):
            raise ValueError(f"{self.filename}: {self.md5!r} is not a lowercase hex MD5")


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


def _download(url: str, target: Path, md5: str, timeout_s: float) -> None:
    """Stream ``url`` into a temporary file, check its MD5, then rename it to ``target``."""
    tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
    try:
        h = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(tmp, "wb") as out:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
        got = h.hexdigest()
        if got != md5:
            raise ChecksumError(
                f"{target.name} downloaded from {url} has MD5 {got}, expected {md5}: "
                "corrupt or partial download, discarded"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(remote: RemoteFile, directory: Path | None = None, download: bool = True,
          timeout_s: float = 30.0) -> Path:
    """The path of ``remote`` in ``directory`` (default :func:`data_dir`), verified; download it if needed.

    A cached copy with a wrong checksum is deleted (and downloaded again if ``download``). Raises
    :class:`DataUnavailableError` naming every address tried and why it failed.
    """
    directory = data_dir() if directory is None else Path(directory)
    target = directory / remote.filename
    problems: list[str] = []
    if target.exists():
        got = md5_of(target)
        if got == remote.md5:
            return target
        target.unlink()
        problems.append(f"cached {target} had MD5 {got}, expected {remote.md5}; deleted it")
    if not download:
        problems.append(f"{target} is not there and download=False")
        raise DataUnavailableError("; ".join(problems))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataUnavailableError(f"cannot create the data folder {directory}: {e}") from e
    corrupt = 0
    for url in remote.urls:
        try:
            _download(url, target, remote.md5, timeout_s)
            return target
        except ChecksumError as e:
            corrupt += 1
            problems.append(str(e))
        except (OSError, ValueError) as e:  # URLError, timeouts, refused connections, bad URLs
            problems.append(f"{url}: {type(e).__name__}: {e}")
    error = ChecksumError if corrupt == len(remote.urls) else DataUnavailableError
    raise error(f"could not obtain {remote.filename}: " + "; ".join(problems))
