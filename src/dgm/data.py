"""Data sets of the book: the homework's 2d Gaussians, CIFAR-10, the course's pickles, and the
offline stand-in for CIFAR-10 cut from scikit-learn's sample photographs."""

from __future__ import annotations

import hashlib
import html
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import numpy as np

from dgm.downloads import DataUnavailableError, RemoteFile, fetch  # noqa: F401 (re-exported)

TWO_D_MODES = ("univariate", "multivariate")


def generate_2d_data(count: int, mode: str = "univariate") -> tuple[np.ndarray, np.ndarray]:
    """The homework's 2d Gaussian data: (0.7 count, 2) train and (0.3 count, 2) test, float32.

    ``univariate``: N((2, 3), diag(3^2, 1^2)); ``multivariate``: the same rotated by 45 degrees,
    so that the covariance is not diagonal. Seeded with ``np.random.seed(42)`` as in the
    homework, so the numbers are exactly the homework's (this sets numpy's global seed, too).
    """
    if mode not in TWO_D_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(TWO_D_MODES)}")
    if not isinstance(count, (int, np.integer)) or count < 2:
        raise ValueError(f"count must be an integer >= 2, got {count!r}")
    np.random.seed(42)
    mean = [[2.0, 3.0]]
    sigma = [[3.0, 1.0]]
    if mode == "univariate":
        rotate = [[1.0, 0.0], [0.0, 1.0]]
    else:
        rotate = [[np.sqrt(2) / 2, np.sqrt(2) / 2], [-np.sqrt(2) / 2, np.sqrt(2) / 2]]
    data = mean + (np.random.randn(count, 2) * sigma).dot(rotate)
    data = data.astype("float32")
    split = int(0.7 * count)
    train_data, test_data = data[:split], data[split:]
    return train_data, test_data


def true_2d_distribution(mode: str = "univariate") -> tuple[np.ndarray, np.ndarray]:
    """Mean (2,) and covariance (2, 2) of the distribution :func:`generate_2d_data` samples from.

    Rows are ``x = mean + (eps * sigma) @ R`` with eps ~ N(0, I), so Cov(x) = R^T diag(sigma^2) R:
    diag(9, 1) for ``univariate``, [[5, 4], [4, 5]] for ``multivariate`` (R a 45-degree rotation).
    """
    if mode not in TWO_D_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(TWO_D_MODES)}")
    mean = np.array([2.0, 3.0])
    sigma = np.array([3.0, 1.0])
    a = np.sqrt(2) / 2
    rotate = np.eye(2) if mode == "univariate" else np.array([[a, a], [-a, a]])
    return mean, rotate.T @ np.diag(sigma**2) @ rotate


# --------------------------------------------------------------------------- images

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
#: The channel counts of the course's NHWC images (grey, colour, colour with alpha).
CHANNELS = (1, 3, 4)

# What a pickled numpy array needs, by module: nothing else can be loaded from a data file.
_ARRAY_MODULES = {"numpy", "numpy.core.multiarray", "numpy._core.multiarray",
                  "numpy.core.numeric", "numpy._core.numeric"}
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
    except (EOFError, pickle.UnpicklingError, UnicodeDecodeError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OSError, zlib.error) as e:
        raise ValueError(f"{what}: not a readable data file ({type(e).__name__}: {e or 'truncated'})") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _cifar_batch(tar: tarfile.TarFile, archive: Path, name: str) -> np.ndarray:
    """One batch of the archive: (N, 3, 32, 32) uint8, rows in the file's order."""
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
        raise ValueError(f"{archive}:{member}: expected uint8 data of shape (N, {n_dims}), "
                         f"got {data.dtype} {data.shape}")
    if len(batch.get("labels", ())) != len(data):
        raise ValueError(f"{archive}:{member}: {len(batch.get('labels', ()))} labels for {len(data)} images")
    return data.reshape(-1, *CIFAR10_SHAPE)  # each row: 1024 red, 1024 green, 1024 blue, row-major


def read_cifar10_archive(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``cifar-10-python.tar.gz`` without extracting it: train (50000, 3, 32, 32), test (10000, ...), uint8."""
    path = Path(path)
    try:
        return _read_cifar10_archive(path)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{path}: not a readable cifar-10-python.tar.gz ({type(e).__name__}: {e})") from e


def _read_cifar10_archive(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with tarfile.open(path, "r:gz") as tar:
        meta_file = tar.extractfile(f"{CIFAR10_FOLDER}/batches.meta")
        meta = _unpickle(meta_file, f"{path}:batches.meta")
        if meta.get("num_vis") != int(np.prod(CIFAR10_SHAPE)):
            raise ValueError(f"{path}: batches.meta says num_vis={meta.get('num_vis')}, expected 3072")
        train = np.concatenate([_cifar_batch(tar, path, b) for b in CIFAR10_TRAIN_BATCHES])
        test = _cifar_batch(tar, path, CIFAR10_TEST_BATCH)
    return train, test


def _to_unit(x: np.ndarray) -> np.ndarray:
    """uint8 0-255 -> float32 in [0, 1] (one copy)."""
    out = x.astype(np.float32)
    out /= np.float32(255)
    return out


def _check_count(name: str, n: int | None) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"{name} must be a positive number of images or None (all), got {n!r}")


def load_cifar10(root: Path | str | None = None, download: bool = True,
                 source: RemoteFile = CIFAR10, n_train: int | None = None,
                 n_test: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 as float32 in [0, 1]: train (50000, 3, 32, 32), test (10000, 3, 32, 32), in the data set's order.

    The archive is kept under ``root`` (default ``$DGM_DATA_DIR`` or ``~/.cache/dgm``), downloaded
    if missing and ``download``, and used only if its MD5 is the published one. Raises
    :class:`DataUnavailableError` saying why when it cannot be had. ``n_train`` and ``n_test`` keep
    only the first images of each split, taken before the conversion to float (which quadruples the
    size: all 60,000 images are 0.74 GB as float32, 0.18 GB as bytes).
    """
    _check_count("n_train", n_train)
    _check_count("n_test", n_test)
    path = fetch(source, None if root is None else Path(root), download=download)
    train, test = read_cifar10_archive(path)
    return _to_unit(train[:n_train]), _to_unit(test[:n_test])


def load_pickle(path: Path | str, flatten: bool = False,
                binarize: bool = False) -> tuple[np.ndarray, np.ndarray]:
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
            raise ValueError(f"{path}: {key} has shape {x.shape}, channels first (N, C, H, W); the course's "
                             "format is channels last (N, H, W, C): transpose it with x.transpose(0, 2, 3, 1)")
        if x.shape[3] not in CHANNELS:
            raise ValueError(f"{path}: {key} has {x.shape[3]} channels in its last axis; expected 1, 3 or 4")
        if x.size and (x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.round(x))):
            raise ValueError(f"{path}: {key} must hold integer pixel values 0-255")
        if binarize and x.size and x.max() <= 1:
            raise ValueError(f"{path}: {key} holds only 0 and 1 (already binary?): binarize=True thresholds "
                             "0-255 pixels at 128 and would turn every pixel to 0; load it with binarize=False")
        x = x.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        x = (x >= 128).astype(np.float32) if binarize else _to_unit(x)
        if flatten:
            x = x.reshape(len(x), -1)  # (N, C * H * W)
        out.append(np.ascontiguousarray(x))
    return out[0], out[1]


def load_image_patches(size: int = 32, train_stride: int = 4, test_stride: int = 8,
                       test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Colour patches (N, 3, size, size) in [0, 1] from scikit-learn's two sample photographs.

    The rightmost ``test_fraction`` of each photograph's columns gives the test patches, the rest
    the training patches, so no pixel is in both. Patches start every ``*_stride`` pixels; each
    set is shuffled with ``seed``.
    """
    from sklearn.datasets import load_sample_images

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train, test = [], []
    for photo in load_sample_images().images:  # (427, 640, 3) uint8
        split = photo.shape[1] - round(photo.shape[1] * test_fraction)
        for region, stride, out in ((photo[:, :split], train_stride, train), (photo[:, split:], test_stride, test)):
            if min(region.shape[:2]) < size:
                raise ValueError(f"a {region.shape[:2]} region cannot hold {size}x{size} patches")
            windows = np.lib.stride_tricks.sliding_window_view(region, (size, size), axis=(0, 1))
            out.append(windows[::stride, ::stride].reshape(-1, 3, size, size))  # (n, 3, size, size)
    rng = np.random.default_rng(seed)
    return tuple(_to_unit(rng.permutation(np.concatenate(parts))) for parts in (train, test))


DATASET_ENV = "DGM_DATASET"
IMAGE_DATASETS = ("cifar10", "patches")


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare fingerprints
class ImageData:
    """Train and test images (N, C, H, W) float32 in [0, 1], with what they are and why."""

    train: np.ndarray
    test: np.ndarray
    name: str  # "cifar10" or "patches"
    stand_in_reason: str | None = None  # why the stand-in replaced CIFAR-10; None for CIFAR-10

    @property
    def description(self) -> str:
        """One line for the run card."""
        sizes = f"{len(self.train)} train / {len(self.test)} test images"
        if self.name == "cifar10":
            return f"CIFAR-10, {sizes} (archive MD5 verified)"
        return (f"STAND-IN, not CIFAR-10: 32x32 patches of scikit-learn's sample photographs, {sizes} "
                f"({self.stand_in_reason})")

    def fingerprint(self) -> str:
        """The data's identity for checkpoint keys: its name and a hash of the arrays."""
        h = hashlib.sha256()
        for x in (self.train, self.test):
            h.update(str(x.shape).encode())
            h.update(np.ascontiguousarray(x).tobytes())
        return f"{self.name}-{h.hexdigest()[:16]}"

    def subset(self, n_train: int | None, n_test: int | None) -> ImageData:
        """The first ``n_train`` training and ``n_test`` test images (``None``: all)."""
        return replace(self, train=self.train[:n_train], test=self.test[:n_test])

    def _repr_html_(self) -> str:
        """An admonition for the top of a chapter: a warning when the stand-in is used."""
        if self.name == "cifar10":
            return ('<div class="admonition note"><p class="admonition-title">Data: CIFAR-10</p>'
                    f"<p>{html.escape(self.description)}.</p></div>")
        return ('<div class="admonition warning"><p class="admonition-title">'
                "These images are a stand-in, not CIFAR-10</p>"
                "<p>This build uses patches of 32x32 pixels cut from the two photographs that ship "
                f"with scikit-learn ({len(self.train)} for training, {len(self.test)} for testing, "
                "from separate parts of each photograph), because "
                f"{html.escape(self.stand_in_reason or 'it was asked for')}. Every number and figure "
                "on this page is about these patches. Build with network access (or with the archive "
                f"in <code>$DGM_DATA_DIR</code>) and <code>{DATASET_ENV}=cifar10</code> for CIFAR-10."
                "</p></div>")

    def __repr__(self) -> str:
        return f"ImageData({self.description})"


def load_image_data(dataset: str | None = None, profile: str | None = None,
                    root: Path | str | None = None, source: RemoteFile = CIFAR10,
                    n_train: int | None = None, n_test: int | None = None) -> ImageData:
    """The chapter's images: ``dataset`` (default ``$DGM_DATASET``) or, if unset, CIFAR-10 with a fallback.

    ``cifar10`` asked for explicitly and unavailable raises :class:`DataUnavailableError`.
    Unset, the smoke profile uses the stand-in patches (it never downloads) and the other
    profiles use CIFAR-10, or the patches when CIFAR-10 cannot be had; the reason is kept in
    ``stand_in_reason`` for the chapter to show. ``n_train`` and ``n_test`` (``None``: all) keep the
    first images of each split, taken before they are converted to float.
    """
    from dgm.profiles import current_profile

    _check_count("n_train", n_train)
    _check_count("n_test", n_test)
    sizes = {"n_train": n_train, "n_test": n_test}

    choice = os.environ.get(DATASET_ENV, "").strip() if dataset is None else dataset
    if choice and choice not in IMAGE_DATASETS:
        raise ValueError(f"unknown data set {choice!r} (from {DATASET_ENV}); valid: {', '.join(IMAGE_DATASETS)}")
    if choice == "cifar10":
        try:
            return ImageData(*load_cifar10(root, download=True, source=source, **sizes), name="cifar10")
        except DataUnavailableError as e:
            raise DataUnavailableError(f"CIFAR-10 was asked for ({DATASET_ENV}=cifar10) but is unavailable: {e}") from e
    if choice == "patches":
        reason = f"{DATASET_ENV}=patches asked for it"
    elif (current_profile() if profile is None else profile) == "smoke":
        reason = "the smoke profile never downloads CIFAR-10"
    else:
        try:
            return ImageData(*load_cifar10(root, download=True, source=source, **sizes), name="cifar10")
        except DataUnavailableError as e:
            reason = f"CIFAR-10 could not be obtained: {e}"
    return ImageData(*load_image_patches(), name="patches", stand_in_reason=reason).subset(n_train, n_test)
