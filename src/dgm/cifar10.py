"""CIFAR-10 and the course's pickled images: verified download, and readers that run no code.

:func:`load_cifar10` fetches the official archive (:mod:`dgm.downloads`: size cap, MD5, mirrors)
and parses it without extracting it; :func:`load_pickle` reads the course's pickled dicts of
images. Both unpickle only plain containers and numpy arrays, so a data file cannot run code.
"""

from __future__ import annotations

import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from dgm.downloads import RemoteFile, fetch

#: The official python-version archive of CIFAR-10 (Krizhevsky, 2009), with a well-known mirror.
CIFAR10 = RemoteFile(
    filename="cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    urls=(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",  # the original host
        "https://dataset.bj.bcebos.com/cifar/cifar-10-python.tar.gz",  # PaddlePaddle's mirror
    ),
    size=170_498_071,  # bytes: no download may write more
)
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_SHAPE = (3, 32, 32)
CIFAR10_CLASSES = 10
#: The channel counts of the course's NHWC images (grey, colour, colour with alpha).
CHANNELS = (1, 3, 4)

# What a pickled numpy array needs, by module: nothing else can be loaded from a data file.
_ARRAY_MODULES = {
    "numpy",
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core.numeric",
    "numpy._core.numeric",
}
_ARRAY_NAMES = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}


class _Refused(pickle.UnpicklingError):
    """The file asks for something other than plain containers and arrays."""


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, so that a data file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module in _ARRAY_MODULES and name in _ARRAY_NAMES) or (module, name) == ("_codecs", "encode"):
            return super().find_class(module, name)
        raise _Refused(f"refusing to load {module}.{name} from a data file")


def _unpickle(f: IO[bytes], what: str) -> dict:
    """A pickled dict (Python 2 or 3) with ``str`` keys; a ValueError naming ``what`` if it is none."""
    try:
        obj = _ArrayUnpickler(f, encoding="latin1").load()
    except _Refused as e:
        raise pickle.UnpicklingError(f"{what}: {e}") from e
    except (
        EOFError,
        pickle.UnpicklingError,
        UnicodeDecodeError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OSError,
        zlib.error,
    ) as e:
        raise ValueError(f"{what}: not a readable data file ({type(e).__name__}: {e or 'truncated'})") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _cifar_batch(tar: tarfile.TarFile, archive: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the archive: images (N, 3, 32, 32) uint8 and labels (N,) int64, in the file's order."""
    member = f"{CIFAR10_FOLDER}/{name}"
    try:
        f = tar.extractfile(member)
    except KeyError:
        f = None
    if f is None:
        raise ValueError(f"{archive}: no {member} in the archive")
    batch = _unpickle(f, f"{archive}:{member}")
    data = np.asarray(batch.get("data"))
    n_dims = int(np.prod(CIFAR10_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != n_dims:
        raise ValueError(
            f"{archive}:{member}: expected uint8 data of shape (N, {n_dims}), got {data.dtype} {data.shape}"
        )
    labels = np.asarray(batch.get("labels", ()), dtype=np.int64)
    if labels.shape != (len(data),):
        raise ValueError(f"{archive}:{member}: {labels.size} labels for {len(data)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= CIFAR10_CLASSES):
        raise ValueError(f"{archive}:{member}: labels outside 0..{CIFAR10_CLASSES - 1}")
    # each row: 1024 red, 1024 green, 1024 blue, row-major
    return data.reshape(-1, *CIFAR10_SHAPE), labels


@dataclass(frozen=True, eq=False)
class Labelled:
    """Train and test images with their labels (N,) int64, indices into ``label_names``."""

    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray
    label_names: tuple[str, ...]


def read_cifar10_labelled(path: Path) -> Labelled:
    """Parse ``cifar-10-python.tar.gz`` without extracting it: train (50000, 3, 32, 32), test
    (10000, ...) uint8, their labels and the ten class names."""
    path = Path(path)
    try:
        return _read_cifar10_archive(path)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{path}: not a readable cifar-10-python.tar.gz ({type(e).__name__}: {e})") from e


def read_cifar10_archive(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images of :func:`read_cifar10_labelled`: train (50000, 3, 32, 32), test (10000, ...), uint8."""
    labelled = read_cifar10_labelled(path)
    return labelled.train, labelled.test


def _read_cifar10_archive(path: Path) -> Labelled:
    with tarfile.open(path, "r:gz") as tar:
        meta_file = tar.extractfile(f"{CIFAR10_FOLDER}/batches.meta")
        meta = _unpickle(meta_file, f"{path}:batches.meta")
        if meta.get("num_vis") != int(np.prod(CIFAR10_SHAPE)):
            raise ValueError(f"{path}: batches.meta says num_vis={meta.get('num_vis')}, expected 3072")
        names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", ()))
        if len(names) != CIFAR10_CLASSES:
            raise ValueError(f"{path}: batches.meta names {len(names)} classes, expected {CIFAR10_CLASSES}")
        batches = [_cifar_batch(tar, path, b) for b in CIFAR10_TRAIN_BATCHES]
        test, test_labels = _cifar_batch(tar, path, CIFAR10_TEST_BATCH)
    train, train_labels = (np.concatenate(parts) for parts in zip(*batches))
    return Labelled(train, test, train_labels, test_labels, names)


def to_unit_float(x: np.ndarray) -> np.ndarray:
    """uint8 0-255 -> float32 in [0, 1] (one copy)."""
    out = x.astype(np.float32)
    out /= np.float32(255)
    return out


def check_count(name: str, n: int | None) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"{name} must be a positive number of images or None (all), got {n!r}")


def load_cifar10_labelled(
    root: Path | str | None = None,
    download: bool = True,
    source: RemoteFile = CIFAR10,
    n_train: int | None = None,
    n_test: int | None = None,
) -> Labelled:
    """CIFAR-10 as float32 in [0, 1], with its labels: train (50000, 3, 32, 32), test (10000, ...),
    in the data set's order.

    The archive is kept under ``root`` (default ``$DGM_DATA_DIR`` or ``~/.cache/dgm``), downloaded
    if missing and ``download``, and used only if its MD5 is the published one. Raises
    :class:`DataUnavailableError` saying why when it cannot be had. ``n_train`` and ``n_test`` keep
    only the first images of each split, taken before the conversion to float (which quadruples the
    size: all 60,000 images are 0.74 GB as float32, 0.18 GB as bytes).
    """
    check_count("n_train", n_train)
    check_count("n_test", n_test)
    path = fetch(source, None if root is None else Path(root), download=download)
    raw = read_cifar10_labelled(path)
    return Labelled(
        to_unit_float(raw.train[:n_train]),
        to_unit_float(raw.test[:n_test]),
        raw.train_labels[:n_train],
        raw.test_labels[:n_test],
        raw.label_names,
    )


def load_cifar10(
    root: Path | str | None = None,
    download: bool = True,
    source: RemoteFile = CIFAR10,
    n_train: int | None = None,
    n_test: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The images of :func:`load_cifar10_labelled`: train (50000, 3, 32, 32), test (10000, ...),
    float32 in [0, 1]."""
    labelled = load_cifar10_labelled(root, download, source, n_train, n_test)
    return labelled.train, labelled.test


def load_pickle(
    path: Path | str, flatten: bool = False, binarize: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The course's format (a pickled dict of NHWC 0-255 ``train``/``test``) -> NCHW float32 in [0, 1].

    ``binarize`` maps a pixel to 1 when its value is at least 128 (above 0.5 after scaling), else 0;
    ``flatten`` returns (N, C * H * W) in channel-major order.
    """
    with open(path, "rb") as f:
        data = _unpickle(f, str(path))
    out = []
    for key in ("train", "test"):
        if key not in data:
            raise ValueError(f"{path}: no {key!r} array (keys: {sorted(data)})")
        x = np.asarray(data[key])
        if x.ndim != 4:
            raise ValueError(f"{path}: {key} must be NHWC images (4 dimensions), got shape {x.shape}")
        if x.shape[3] not in CHANNELS and x.shape[1] in CHANNELS:
            raise ValueError(
                f"{path}: {key} has shape {x.shape}, channels first (N, C, H, W); the course's "
                "format is channels last (N, H, W, C): transpose it with x.transpose(0, 2, 3, 1)"
            )
        if x.shape[3] not in CHANNELS:
            raise ValueError(f"{path}: {key} has {x.shape[3]} channels in its last axis; expected 1, 3 or 4")
        if x.size and (x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.round(x))):
            raise ValueError(f"{path}: {key} must hold integer pixel values 0-255")
        if binarize and x.size and x.max() <= 1:
            raise ValueError(
                f"{path}: {key} holds only 0 and 1 (already binary?): binarize=True thresholds "
                "0-255 pixels at 128 and would turn every pixel to 0; load it with binarize=False"
            )
        x = x.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        x = (x >= 128).astype(np.float32) if binarize else to_unit_float(x)
        if flatten:
            x = x.reshape(len(x), -1)  # (N, C * H * W)
        out.append(np.ascontiguousarray(x))
    return out[0], out[1]
