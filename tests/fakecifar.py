"""Small archives in the real format of ``cifar-10-python.tar.gz``, for tests that never go online."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_fake_cifar(path: Path, n_per_batch: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write an archive laid out like the real one; return the raw rows (train (5n, 3072), test (n, 3072)).

    As in the original (pickled by Python 2), the batches are protocol-2 pickles of dicts; the
    batches use bytes keys, batches.meta str keys, so that both spellings are exercised.
    """
    rng = np.random.default_rng(seed)
    rows = {}
    with tarfile.open(path, "w:gz") as tar:
        meta = {"num_cases_per_batch": n_per_batch, "label_names": LABEL_NAMES, "num_vis": 3072}
        _add(tar, "batches.meta", pickle.dumps(meta, protocol=2))
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for i, name in enumerate(names):
            data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
            rows[name] = data
            batch = {
                b"batch_label": f"batch {i}".encode(),
                b"labels": list(rng.integers(0, 10, n_per_batch)),
                b"data": data,
                b"filenames": [f"img_{i}_{j}.png".encode() for j in range(n_per_batch)],
            }
            _add(tar, name, pickle.dumps(batch, protocol=2))
        _add(tar, "readme.html", b"<html></html>")
    train = np.concatenate([rows[f"data_batch_{i}"] for i in range(1, 6)])
    return train, rows["test_batch"]


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def pixel(rows: np.ndarray, i: int, c: int, y: int, x: int) -> int:
    """Pixel (c, y, x) of image i, read as the CIFAR-10 documentation describes a row:
    1024 red values, then 1024 green, then 1024 blue, each 32x32 in row-major order."""
    return int(rows[i][1024 * c + 32 * y + x])
