"""Data sets of the book: the homework's 2d Gaussians, and the chapters' images (CIFAR-10 from
:mod:`dgm.cifar10`, or the offline stand-in cut from scikit-learn's sample photographs) with the
map between the images' [0, 1] scale and the models' [-1, 1]."""

from __future__ import annotations

import hashlib
import html
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dgm.cifar10 import CIFAR10, Labelled, check_count, load_cifar10_labelled, to_unit_float
from dgm.downloads import DataUnavailableError, RemoteFile

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


def to_model_scale(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Images in [0, 1] -> a float32 tensor in [-1, 1] on ``device`` (the homework centres the data)."""
    return torch.as_tensor(images, dtype=torch.float32).to(device) * 2 - 1


def to_image_scale(x: torch.Tensor) -> np.ndarray:
    """Model outputs on the [-1, 1] scale -> images clamped to [0, 1], as numpy: (...) -> (...)."""
    return (x.detach().clamp(-1, 1) * 0.5 + 0.5).cpu().numpy()


#: the photographs of scikit-learn's load_sample_images, in its order: a patch's label is its photo
PATCH_PHOTOS = ("china", "flower")


def image_patches_labelled(
    size: int = 32, train_stride: int = 4, test_stride: int = 8, test_fraction: float = 0.2, seed: int = 0
) -> Labelled:
    """Colour patches (N, 3, size, size) in [0, 1] from scikit-learn's two sample photographs, each
    labelled with its photograph (an index into :data:`PATCH_PHOTOS`).

    The rightmost ``test_fraction`` of each photograph's columns gives the test patches, the rest
    the training patches, so no pixel is in both. Patches start every ``*_stride`` pixels; each
    set is shuffled with ``seed``.
    """
    from sklearn.datasets import load_sample_images

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    photos = load_sample_images().images  # each (427, 640, 3) uint8
    if len(photos) != len(PATCH_PHOTOS):
        raise ValueError(f"scikit-learn ships {len(photos)} sample photographs, expected {len(PATCH_PHOTOS)}")
    train, test = [], []
    for label, photo in enumerate(photos):
        split = photo.shape[1] - round(photo.shape[1] * test_fraction)
        for region, stride, out in (
            (photo[:, :split], train_stride, train),
            (photo[:, split:], test_stride, test),
        ):
            if min(region.shape[:2]) < size:
                raise ValueError(f"a {region.shape[:2]} region cannot hold {size}x{size} patches")
            windows = np.lib.stride_tricks.sliding_window_view(region, (size, size), axis=(0, 1))
            patches = windows[::stride, ::stride].reshape(-1, 3, size, size)  # (n, 3, size, size)
            out.append((patches, np.full(len(patches), label, dtype=np.int64)))
    rng = np.random.default_rng(seed)
    splits = []
    for parts in (train, test):
        images, labels = (np.concatenate(p) for p in zip(*parts))
        order = rng.permutation(len(images))  # the order rng.permutation(images) would give
        splits.append((to_unit_float(images[order]), labels[order]))
    (train_x, train_y), (test_x, test_y) = splits
    return Labelled(train_x, test_x, train_y, test_y, PATCH_PHOTOS)


def load_image_patches(
    size: int = 32, train_stride: int = 4, test_stride: int = 8, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The patches of :func:`image_patches_labelled`: train and test (N, 3, size, size) in [0, 1]."""
    labelled = image_patches_labelled(size, train_stride, test_stride, test_fraction, seed)
    return labelled.train, labelled.test


DATASET_ENV = "DGM_DATASET"
IMAGE_DATASETS = ("cifar10", "patches")


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare fingerprints
class ImageData:
    """Train and test images (N, C, H, W) float32 in [0, 1], with what they are and why."""

    train: np.ndarray
    test: np.ndarray
    name: str  # "cifar10" or "patches"
    stand_in_reason: str | None = None  # why the stand-in replaced CIFAR-10; None for CIFAR-10
    train_labels: np.ndarray | None = None  # (N,) int64: CIFAR-10's class, the stand-in's photograph
    test_labels: np.ndarray | None = None
    label_names: tuple[str, ...] = ()

    @classmethod
    def from_labelled(cls, data: Labelled, name: str, stand_in_reason: str | None = None) -> ImageData:
        """The images and labels of ``data`` as the data set ``name``."""
        return cls(
            data.train,
            data.test,
            name,
            stand_in_reason,
            data.train_labels,
            data.test_labels,
            data.label_names,
        )

    @property
    def description(self) -> str:
        """One line for the run card."""
        sizes = f"{len(self.train)} train / {len(self.test)} test images"
        if self.name == "cifar10":
            return f"CIFAR-10, {sizes} (archive MD5 verified)"
        return (
            f"STAND-IN, not CIFAR-10: 32x32 patches of scikit-learn's sample photographs, {sizes} "
            f"({self.stand_in_reason})"
        )

    def fingerprint(self) -> str:
        """The data's identity for checkpoint keys: its name and a hash of the arrays."""
        h = hashlib.sha256()
        for x in (self.train, self.test):
            h.update(str(x.shape).encode())
            h.update(np.ascontiguousarray(x).tobytes())
        return f"{self.name}-{h.hexdigest()[:16]}"

    def subset(self, n_train: int | None, n_test: int | None) -> ImageData:
        """The first ``n_train`` training and ``n_test`` test images (``None``: all), with their labels."""
        labels = {
            key: None if getattr(self, key) is None else getattr(self, key)[:n]
            for key, n in (("train_labels", n_train), ("test_labels", n_test))
        }
        return replace(self, train=self.train[:n_train], test=self.test[:n_test], **labels)

    def _repr_html_(self) -> str:
        """An admonition for the top of a chapter: a warning when the stand-in is used."""
        if self.name == "cifar10":
            return (
                '<div class="admonition note"><p class="admonition-title">Data: CIFAR-10</p>'
                f"<p>{html.escape(self.description)}.</p></div>"
            )
        return (
            '<div class="admonition warning"><p class="admonition-title">'
            "These images are a stand-in, not CIFAR-10</p>"
            "<p>This build uses patches of 32x32 pixels cut from the two photographs that ship "
            f"with scikit-learn ({len(self.train)} for training, {len(self.test)} for testing, "
            "from separate parts of each photograph), because "
            f"{html.escape(self.stand_in_reason or 'it was asked for')}. Every number and figure "
            "on this page is about these patches. Build with network access (or with the archive "
            f"in <code>$DGM_DATA_DIR</code>) and <code>{DATASET_ENV}=cifar10</code> for CIFAR-10."
            "</p></div>"
        )

    def __repr__(self) -> str:
        return f"ImageData({self.description})"


def load_image_data(
    dataset: str | None = None,
    profile: str | None = None,
    root: Path | str | None = None,
    source: RemoteFile = CIFAR10,
    n_train: int | None = None,
    n_test: int | None = None,
) -> ImageData:
    """The chapter's images: ``dataset`` (default ``$DGM_DATASET``) or, if unset, CIFAR-10 with a fallback.

    ``cifar10`` asked for explicitly and unavailable raises :class:`DataUnavailableError`.
    Unset, the smoke profile uses the stand-in patches (it never downloads) and the other
    profiles use CIFAR-10, or the patches when CIFAR-10 cannot be had; the reason is kept in
    ``stand_in_reason`` for the chapter to show. ``n_train`` and ``n_test`` (``None``: all) keep the
    first images of each split, taken before they are converted to float.
    """
    from dgm.profiles import current_profile

    check_count("n_train", n_train)
    check_count("n_test", n_test)
    sizes = {"n_train": n_train, "n_test": n_test}

    choice = os.environ.get(DATASET_ENV, "").strip() if dataset is None else dataset
    if choice and choice not in IMAGE_DATASETS:
        raise ValueError(
            f"unknown data set {choice!r} (from {DATASET_ENV}); valid: {', '.join(IMAGE_DATASETS)}"
        )
    if choice == "cifar10":
        try:
            return ImageData.from_labelled(load_cifar10_labelled(root, True, source, **sizes), "cifar10")
        except DataUnavailableError as e:
            raise DataUnavailableError(
                f"CIFAR-10 was asked for ({DATASET_ENV}=cifar10) but is unavailable: {e}"
            ) from e
    if choice == "patches":
        reason = f"{DATASET_ENV}=patches asked for it"
    elif (current_profile() if profile is None else profile) == "smoke":
        reason = "the smoke profile never downloads CIFAR-10"
    else:
        try:
            return ImageData.from_labelled(load_cifar10_labelled(root, True, source, **sizes), "cifar10")
        except DataUnavailableError as e:
            reason = f"CIFAR-10 could not be obtained: {e}"
    return ImageData.from_labelled(image_patches_labelled(), "patches", reason).subset(n_train, n_test)
