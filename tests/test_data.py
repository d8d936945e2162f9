from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np
import pytest

from dgm.data import generate_2d_data


def homework_generate_2d_data(count: int, mode: str = "univariate") -> Tuple[np.ndarray, np.ndarray]:
    # Verbatim from the homework (shared/seeds/000_*.txt, Task 2): the reference.
    assert mode in ["univariate", "multivariate"]
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


@pytest.mark.parametrize("mode", ["univariate", "multivariate"])
@pytest.mark.parametrize("count", [10, 10000, 15000])
def test_same_numbers_as_the_homework(mode, count):
    ours, ref = generate_2d_data(count, mode), homework_generate_2d_data(count, mode)
    for a, b in zip(ours, ref):
        assert a.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_statistics_of_the_two_modes():
    train, _ = generate_2d_data(100_000, "univariate")
    np.testing.assert_allclose(np.cov(train.T), [[9, 0], [0, 1]], atol=0.15)
    train, _ = generate_2d_data(100_000, "multivariate")
    np.testing.assert_allclose(np.cov(train.T), [[5, 4], [4, 5]], atol=0.15)  # R^T diag(9,1) R


def test_bad_arguments():
    with pytest.raises(ValueError, match="univariate, multivariate"):
        generate_2d_data(100, "diagonal")
    with pytest.raises(ValueError, match="count"):
        generate_2d_data(1)


def test_true_distribution_is_what_the_generator_samples():
    from dgm.data import true_2d_distribution

    for mode in ("univariate", "multivariate"):
        mean, cov = true_2d_distribution(mode)
        train, test = generate_2d_data(200_000, mode)
        x = np.concatenate([train, test])
        np.testing.assert_allclose(x.mean(axis=0), mean, atol=0.02)
        np.testing.assert_allclose(np.cov(x.T), cov, atol=0.05)
    np.testing.assert_allclose(true_2d_distribution("multivariate")[1], [[5, 4], [4, 5]], atol=1e-12)
    with pytest.raises(ValueError, match="univariate, multivariate"):
        true_2d_distribution("rotated")


# --------------------------------------------------------------------------- images

import pickle  # noqa: E402
import socket  # noqa: E402

from dgm.cifar10 import load_cifar10, load_pickle, read_cifar10_archive  # noqa: E402
from dgm.data import ImageData, load_image_data, load_image_patches  # noqa: E402
from dgm.downloads import DataUnavailableError, RemoteFile  # noqa: E402

from fakecifar import md5, pixel, write_fake_cifar  # noqa: E402


@pytest.fixture
def tiny_patches(monkeypatch):
    """Stand-in patches made instantly (the real ones are tested on their own below)."""
    import dgm.data

    fake = lambda: (np.zeros((6, 3, 32, 32), np.float32), np.ones((2, 3, 32, 32), np.float32))  # noqa: E731
    monkeypatch.setattr(dgm.data, "load_image_patches", fake)


@pytest.fixture
def fake_cifar(tmp_path):
    """A small archive in the real format, published at a file:// address."""
    archive = tmp_path / "published" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    train_rows, test_rows = write_fake_cifar(archive, n_per_batch=3)
    source = RemoteFile(
        "cifar-10-python.tar.gz", md5(archive), (archive.as_uri(),), size=archive.stat().st_size
    )
    return source, train_rows, test_rows


def _offline_source() -> RemoteFile:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return RemoteFile(
        "cifar-10-python.tar.gz", "0" * 32, (f"http://127.0.0.1:{port}/cifar-10-python.tar.gz",), size=1
    )


def test_cifar_loader_shapes_order_and_values(fake_cifar, tmp_path):
    source, train_rows, test_rows = fake_cifar
    train, test = load_cifar10(tmp_path / "cache", source=source)
    assert train.shape == (15, 3, 32, 32) and test.shape == (3, 3, 32, 32)
    assert train.dtype == test.dtype == np.float32
    for i in range(15):  # batches 1..5 in order, rows in file order
        for c, y, x in [(0, 0, 0), (1, 5, 7), (2, 31, 30), (0, 17, 2)]:
            assert train[i, c, y, x] == np.float32(pixel(train_rows, i, c, y, x) / 255)
    assert test[2, 2, 31, 31] == np.float32(pixel(test_rows, 2, 2, 31, 31) / 255)
    assert 0 <= train.min() and train.max() <= 1
    raw_train, raw_test = read_cifar10_archive(tmp_path / "cache" / "cifar-10-python.tar.gz")
    assert raw_train.dtype == np.uint8 and np.array_equal(raw_test.reshape(3, -1), test_rows)


def test_cifar_archive_with_a_missing_batch_is_refused(tmp_path):
    import tarfile

    good = tmp_path / "good.tar.gz"
    write_fake_cifar(good)
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(good) as src, tarfile.open(bad, "w:gz") as dst:
        for m in src.getmembers():
            if not m.name.endswith("data_batch_4"):
                dst.addfile(m, src.extractfile(m))
    with pytest.raises(ValueError, match="data_batch_4"):
        read_cifar10_archive(bad)


def test_offline_fallback_is_labelled(tmp_path, monkeypatch, tiny_patches):
    monkeypatch.delenv("DGM_DATASET", raising=False)
    data = load_image_data(profile="cpu", root=tmp_path, source=_offline_source())
    assert data.name == "patches"
    assert "could not be obtained" in data.stand_in_reason and "127.0.0.1" in data.stand_in_reason
    assert data.description.startswith("STAND-IN, not CIFAR-10")
    html = data._repr_html_()
    assert "admonition warning" in html and "not CIFAR-10" in html
    assert list(tmp_path.iterdir()) == []


def test_cifar10_asked_for_and_unavailable_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_DATASET", "cifar10")
    with pytest.raises(DataUnavailableError, match=r"DGM_DATASET=cifar10.*127\.0\.0\.1"):
        load_image_data(profile="cpu", root=tmp_path, source=_offline_source())
    with pytest.raises(DataUnavailableError, match="DGM_DATASET=cifar10"):
        load_image_data(profile="smoke", root=tmp_path, source=_offline_source())
    monkeypatch.setenv("DGM_DATASET", "mnist")
    with pytest.raises(ValueError, match="cifar10, patches"):
        load_image_data(root=tmp_path, source=_offline_source())


def test_dataset_choice(fake_cifar, tmp_path, monkeypatch, tiny_patches):
    source = fake_cifar[0]
    monkeypatch.delenv("DGM_DATASET", raising=False)
    real = load_image_data(profile="gpu", root=tmp_path, source=source)
    assert real.name == "cifar10" and real.stand_in_reason is None and real.train.shape == (15, 3, 32, 32)
    assert "admonition note" in real._repr_html_() and "STAND-IN" not in real.description
    smoke = load_image_data(profile="smoke", root=tmp_path / "elsewhere", source=source)
    assert smoke.name == "patches" and "smoke" in smoke.stand_in_reason
    monkeypatch.setenv("DGM_DATASET", "patches")
    assert "DGM_DATASET=patches" in load_image_data(profile="cpu", source=source).stand_in_reason
    monkeypatch.setenv("DGM_DATASET", "cifar10")
    assert load_image_data(profile="smoke", root=tmp_path, source=source).name == "cifar10"


def test_image_data_subset_and_fingerprint():
    a = ImageData(np.zeros((4, 3, 8, 8), np.float32), np.ones((2, 3, 8, 8), np.float32), "patches", "test")
    assert a.subset(2, None).train.shape == (2, 3, 8, 8) and a.subset(2, None).test.shape == (2, 3, 8, 8)
    assert a.fingerprint() == a.subset(None, None).fingerprint() != a.subset(3, None).fingerprint()
    assert a.fingerprint().startswith("patches-")


def test_patches_split_without_overlap(monkeypatch):
    import sklearn.datasets

    # Synthetic "photographs" whose pixels spell their own column: red + 256 * green = column.
    h, w = 80, 200
    cols = np.broadcast_to(np.arange(w), (h, w))
    photo = np.stack([cols % 256, cols // 256, np.zeros_like(cols)], axis=-1).astype(np.uint8)
    monkeypatch.setattr(
        sklearn.datasets, "load_sample_images", lambda: type("Bunch", (), {"images": [photo, photo]})
    )
    train, test = load_image_patches(size=16, train_stride=4, test_stride=8, test_fraction=0.2)
    column = lambda p: np.round(p[:, 0] * 255) + 256 * np.round(p[:, 1] * 255)  # noqa: E731
    split = w - 40
    assert column(train).max() < split <= column(test).min()
    # Every window start on the stride grid, in both photographs.
    assert len(train) == 2 * ((h - 16) // 4 + 1) * ((split - 16) // 4 + 1)
    assert len(test) == 2 * ((h - 16) // 8 + 1) * ((w - split - 16) // 8 + 1)
    assert train.shape[1:] == (3, 16, 16) and train.dtype == np.float32


def test_real_patches_are_natural_images():
    train, test = load_image_patches()
    assert train.shape[1:] == test.shape[1:] == (3, 32, 32)
    assert len(train) > 10_000 and len(test) > 1_000
    assert 0 <= train.min() and train.max() <= 1
    # Natural images: neighbouring pixels are strongly correlated, unlike noise.
    x = train[:500]
    r = np.corrcoef(x[:, :, :, :-1].ravel(), x[:, :, :, 1:].ravel())[0, 1]
    assert r > 0.8


def _course_pickle(path, train, test):
    with open(path, "wb") as f:
        pickle.dump({"train": train, "test": test}, f)


def test_load_pickle_course_format(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(5, 4, 6, 3), dtype=np.uint8)  # NHWC
    test = rng.integers(0, 256, size=(2, 4, 6, 3), dtype=np.uint8)
    _course_pickle(tmp_path / "d.pkl", train, test)
    tr, te = load_pickle(tmp_path / "d.pkl")
    assert tr.shape == (5, 3, 4, 6) and te.shape == (2, 3, 4, 6) and tr.dtype == np.float32
    assert tr[3, 2, 1, 5] == np.float32(train[3, 1, 5, 2] / 255)
    flat, _ = load_pickle(tmp_path / "d.pkl", flatten=True)
    assert flat.shape == (5, 72)
    assert flat[3, 2 * 24 + 1 * 6 + 5] == tr[3, 2, 1, 5]  # channel-major order
    binary, _ = load_pickle(tmp_path / "d.pkl", flatten=True, binarize=True)
    assert set(np.unique(binary)) <= {0.0, 1.0}
    np.testing.assert_array_equal(binary, (flat > 0.5).astype(np.float32))


def test_load_pickle_refuses_bad_files(tmp_path):
    _course_pickle(tmp_path / "flat.pkl", np.zeros((5, 12), np.uint8), np.zeros((2, 12), np.uint8))
    with pytest.raises(ValueError, match="NHWC"):
        load_pickle(tmp_path / "flat.pkl")
    _course_pickle(tmp_path / "unit.pkl", np.full((1, 2, 2, 3), 0.5), np.zeros((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="0-255"):
        load_pickle(tmp_path / "unit.pkl")
    with open(tmp_path / "nokey.pkl", "wb") as f:
        pickle.dump({"train": np.zeros((1, 2, 2, 3), np.uint8)}, f)
    with pytest.raises(ValueError, match="'test'"):
        load_pickle(tmp_path / "nokey.pkl")


class _Exploit:
    def __reduce__(self):
        return (print, ("this must not run",))


def test_pickles_cannot_run_code(tmp_path, capsys):
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"train": _Exploit(), "test": None}, f)
    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        load_pickle(tmp_path / "evil.pkl")
    assert "must not run" not in capsys.readouterr().out


def test_load_pickle_checks_layout_and_range_and_names_the_file(tmp_path):
    nchw = np.zeros((4, 3, 8, 8), np.uint8)
    _course_pickle(tmp_path / "nchw.pkl", nchw, nchw)
    with pytest.raises(ValueError, match=r"nchw\.pkl.*channels first.*transpose"):
        load_pickle(tmp_path / "nchw.pkl")
    binary = np.random.default_rng(0).integers(0, 2, size=(4, 8, 8, 1)).astype(np.uint8)
    _course_pickle(tmp_path / "binary.pkl", binary, binary)
    with pytest.raises(ValueError, match=r"binary\.pkl.*only 0 and 1.*binarize=False"):
        load_pickle(tmp_path / "binary.pkl", binarize=True)
    tr, _ = load_pickle(tmp_path / "binary.pkl")  # read as what it is: pixel values 0 and 1 of 255
    assert tr.max() == np.float32(1 / 255)
    good = np.zeros((2, 4, 4, 3), np.uint8)
    _course_pickle(tmp_path / "good.pkl", good, good)
    (tmp_path / "cut.pkl").write_bytes((tmp_path / "good.pkl").read_bytes()[:60])
    with pytest.raises(ValueError, match=r"cut\.pkl: not a readable data file"):
        load_pickle(tmp_path / "cut.pkl")
    (tmp_path / "foreign.pkl").write_bytes(b"PK\x03\x04 this is a zip file, not a pickle")
    with pytest.raises(ValueError, match=r"foreign\.pkl: not a readable data file"):
        load_pickle(tmp_path / "foreign.pkl")


def test_a_damaged_cifar_archive_is_a_clear_error(tmp_path):
    from dgm.cifar10 import read_cifar10_archive

    from fakecifar import write_fake_cifar

    archive = tmp_path / "cifar-10-python.tar.gz"
    write_fake_cifar(archive, n_per_batch=4)
    data = archive.read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.tar\.gz"):
        read_cifar10_archive(tmp_path / "cut.tar.gz")
    (tmp_path / "noise.tar.gz").write_bytes(b"\x1f\x8b" + bytes(range(256)) * 8)
    with pytest.raises(ValueError, match=r"noise\.tar\.gz"):
        read_cifar10_archive(tmp_path / "noise.tar.gz")
    # A member whose pickle is damaged (as only a bypassed MD5 check could let through).
    import io
    import tarfile

    with tarfile.open(archive) as src, tarfile.open(tmp_path / "bad.tar.gz", "w:gz") as dst:
        for member in src.getmembers():
            payload = src.extractfile(member).read()
            if member.name.endswith("data_batch_2"):
                payload = payload[:30] + b"\xff" * 20 + payload[50:]
            member.size = len(payload)
            dst.addfile(member, io.BytesIO(payload))
    with pytest.raises(ValueError, match=r"bad\.tar\.gz.*data_batch_2"):
        read_cifar10_archive(tmp_path / "bad.tar.gz")


def test_cifar_labels_are_the_archives(fake_cifar, tmp_path):
    import pickle
    import tarfile

    from dgm.cifar10 import load_cifar10_labelled

    source, _, _ = fake_cifar
    data = load_cifar10_labelled(tmp_path / "cache", source=source, n_train=12)
    expected = {}  # read straight from the archive's pickles
    with tarfile.open(tmp_path / "cache" / "cifar-10-python.tar.gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = pickle.load(tar.extractfile(f"cifar-10-batches-py/{name}"), encoding="bytes")
            expected[name] = [int(v) for v in batch[b"labels"]]
    train = sum((expected[f"data_batch_{i}"] for i in range(1, 6)), [])
    assert data.train_labels.tolist() == train[:12] and data.test_labels.tolist() == expected["test_batch"]
    assert data.train_labels.dtype == np.int64 and len(data.train) == 12
    assert data.label_names[:3] == ("airplane", "automobile", "bird") and len(data.label_names) == 10
    from dgm.data import load_image_data

    images = load_image_data("cifar10", root=tmp_path / "cache", source=source).subset(7, 2)
    assert (
        images.train_labels.tolist() == train[:7]
        and images.test_labels.tolist() == expected["test_batch"][:2]
    )


def test_each_patch_is_labelled_with_its_photograph():
    from sklearn.datasets import load_sample_images

    from dgm.data import PATCH_PHOTOS, load_image_data

    data = load_image_data(dataset="patches")
    photos = load_sample_images()
    assert data.label_names == PATCH_PHOTOS == tuple(Path(f).stem for f in photos.filenames)
    rng = np.random.default_rng(0)
    for split, labels in ((data.train, data.train_labels), (data.test, data.test_labels)):
        assert len(labels) == len(split) and set(np.unique(labels)) == {0, 1}
        for i in rng.choice(len(split), 5, replace=False):  # found in its own photograph, at some offset
            patch = np.round(split[i] * 255).astype(np.uint8).transpose(1, 2, 0)  # (32, 32, 3)
            photo = photos.images[labels[i]]
            windows = np.lib.stride_tricks.sliding_window_view(photo, (32, 32), axis=(0, 1))
            hits = (windows[:, :, :, 0, 0] == patch[0, 0]).all(axis=-1)
            assert any(
                np.array_equal(windows[y, x].transpose(1, 2, 0), patch) for y, x in zip(*np.nonzero(hits))
            ), (i, labels[i])
