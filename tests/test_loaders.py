"""Every loader, on small files in the real formats that the tests write themselves."""

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from sharpmem_lib.data import (
    FASHION_SYSTEM_DIR,
    DatasetNotFoundError,
    load_dataset,
    longtail,
    read_idx,
)


@pytest.fixture(autouse=True)
def isolated_data_dirs(monkeypatch, tmp_path):
    """Only the directory a test passes is searched (not ~/.cache or $SHARPMEM_DATA)."""
    monkeypatch.delenv("SHARPMEM_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape) \
        + array.astype(np.uint8).tobytes()


def write_fashion(folder: Path, n_train=12, n_test=5, gz=True):
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": ("train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28))),
        "train_labels": ("train-labels-idx1-ubyte", rng.integers(0, 10, n_train)),
        "test_images": ("t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28))),
        "test_labels": ("t10k-labels-idx1-ubyte", rng.integers(0, 10, n_test)),
    }
    folder.mkdir(parents=True)
    sums = {}
    for key, (stem, array) in arrays.items():
        raw = idx_bytes(array)
        sums[key] = md5(raw)
        if gz:
            with gzip.open(folder / (stem + ".gz"), "wb") as f:
                f.write(raw)
        else:
            (folder / stem).write_bytes(raw)
    return arrays, sums


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx_files(tmp_path, gz):
    arrays, sums = write_fashion(tmp_path / "fashion_mnist", gz=gz)
    data = load_dataset("fashion_mnist", data_dir=tmp_path, checksums=sums)
    assert data.X.shape == (17, 1, 28, 28) and data.X.dtype == np.uint8
    np.testing.assert_array_equal(data.X[:12, 0], arrays["train_images"][1])
    np.testing.assert_array_equal(data.y[12:], arrays["test_labels"][1])
    assert data.official_test.tolist() == [False] * 12 + [True] * 5


def test_fashion_mnist_checksums_are_enforced(tmp_path):
    _, sums = write_fashion(tmp_path / "fashion_mnist")
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_dataset("fashion_mnist", data_dir=tmp_path)  # the published sums: our files are not those
    sums["test_labels"] = "0" * 32
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: checksum mismatch"):
        load_dataset("fashion_mnist", data_dir=tmp_path, checksums=sums)


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    good = idx_bytes(np.zeros((4, 3, 3)))
    (tmp_path / "cut").write_bytes(good[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "cut")
    (tmp_path / "foreign").write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        read_idx(tmp_path / "foreign")


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_when_installed():
    data = load_dataset("fashion_mnist")
    assert data.X.shape == (70_000, 1, 28, 28)
    assert np.bincount(data.y).tolist() == [7_000] * 10
    assert data.official_test.sum() == 10_000


def write_cifar(root: Path, variant: str):
    rng = np.random.default_rng(1)
    if variant == "cifar10":
        folder, files, key, classes = root / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels", 10
    else:
        folder, files, key, classes = root / "cifar-100-python", ["train", "test"], b"fine_labels", 100
    folder.mkdir(parents=True)
    sums, images = {}, []
    for name in files:
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        images.append(data)
        blob = pickle.dumps({b"data": data, key: rng.integers(0, classes, 3).tolist(), b"coarse_labels": [0, 0, 0]})
        (folder / name).write_bytes(blob)
        sums[name] = md5(blob)
    return sums, images


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_cifar_python_pickles(tmp_path, variant):
    sums, images = write_cifar(tmp_path, variant)
    data = load_dataset(variant, data_dir=tmp_path, checksums=sums)
    n_files = len(images)
    assert data.X.shape == (3 * n_files, 3, 32, 32) and data.X.dtype == np.uint8
    # CHW layout: the first 1024 bytes of a row are the red channel
    np.testing.assert_array_equal(data.X[0, 0].ravel(), images[0][0, :1024])
    assert data.official_test.sum() == 3
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_dataset(variant, data_dir=tmp_path)  # published sums


def test_purchase_raw_and_selena_formats(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.integers(1, 101, 20)
    feats = rng.integers(0, 2, (20, 600))
    folder = tmp_path / "purchase100"
    folder.mkdir()
    np.savetxt(folder / "dataset_purchase", np.c_[labels, feats], fmt="%d", delimiter=",")
    data = load_dataset("purchase100", data_dir=tmp_path)
    np.testing.assert_array_equal(data.y, labels - 1)
    np.testing.assert_array_equal(data.X, feats)
    assert data.X.dtype == np.float32
    np.save(folder / "X.npy", feats[:5].astype(np.float64))
    np.save(folder / "Y.npy", labels[:5] - 1)
    assert len(load_dataset("purchase100", data_dir=tmp_path)) == 5  # SELENA's .npy take precedence


def test_texas_raw_format(tmp_path):
    rng = np.random.default_rng(3)
    labels, feats = rng.integers(1, 101, 9), rng.integers(0, 2, (9, 6169))
    raw = tmp_path / "texas100" / "texas" / "100"
    raw.mkdir(parents=True)
    np.savetxt(raw / "feats", feats, fmt="%d", delimiter=",")
    np.savetxt(raw / "labels", labels, fmt="%d")
    data = load_dataset("texas100", data_dir=tmp_path)
    assert data.X.shape == (9, 6169)
    np.testing.assert_array_equal(data.y, labels - 1)


@pytest.mark.parametrize("name, hint", [("cifar100", "cifar.html"), ("purchase100", "dataset_purchase.tgz"),
                                        ("texas100", "dataset_texas.tgz"), ("cifar10", "download=True")])
def test_missing_files_name_paths_and_source(tmp_path, name, hint):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, data_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and hint in str(err.value)


def test_digits_is_real_and_offline():
    data = load_dataset("digits")
    assert data.X.shape == (1797, 1, 8, 8) and 0.0 <= data.X.min() and data.X.max() == 1.0
    assert np.bincount(data.y).min() >= 170


def test_longtail_ground_truth():
    data = longtail(num_classes=4, subpops_per_class=10, n_per_class=200, seed=5)
    counts = np.bincount(data.group)
    # the recorded size of each example's subpopulation is its true count
    np.testing.assert_array_equal(data.meta["subpop_size"], counts[data.group])
    # Zipf: within a class, subpopulation sizes decrease with rank, and the tail is tiny
    sizes = counts[:10]
    assert list(sizes) == sorted(sizes, reverse=True) and sizes[-1] <= 5 < sizes[0]
    assert (data.group // 10 == data.y).all()
    again = longtail(num_classes=4, subpops_per_class=10, n_per_class=200, seed=5)
    np.testing.assert_array_equal(data.X, again.X)
