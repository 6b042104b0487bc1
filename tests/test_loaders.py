"""Every loader, on small files in the real formats that the tests write themselves."""

import gzip
import hashlib
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from sharpmem_lib.data import (
    FASHION_SYSTEM_DIR,
    DataFileError,
    DatasetNotFoundError,
    check_feldman_zhang_file,
    load_dataset,
    longtail,
    read_idx,
    resolve_data_file,
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


REAL_DATA_REQUIRED = os.environ.get("SHARPMEM_CI") == "1"  # .ci/run installs the Debian package and sets this


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.exists() and not REAL_DATA_REQUIRED,
                    reason="Debian's dataset-fashion-mnist is not installed (CI installs it and then requires it)")
def test_real_fashion_mnist_when_installed():
    """The real files, md5-checked by the loader (in CI this test must run, not skip)."""
    assert FASHION_SYSTEM_DIR.exists(), f"{FASHION_SYSTEM_DIR} is missing: apt-get install dataset-fashion-mnist"
    data = load_dataset("fashion_mnist")
    assert data.X.shape == (70_000, 1, 28, 28)
    assert np.bincount(data.y).tolist() == [7_000] * 10
    assert data.official_test.sum() == 10_000
    # the default book's CPU sample: a fixed 7,000 of these images, with their labels
    from sharpmem_lib.data import FASHION_CPU_SIZE
    cpu = load_dataset("fashion_mnist_cpu")
    keep = np.sort(np.random.default_rng(0).permutation(70_000)[:FASHION_CPU_SIZE])
    np.testing.assert_array_equal(cpu.X, data.X[keep])
    np.testing.assert_array_equal(cpu.y, data.y[keep])
    assert cpu.X.shape == (7_000, 1, 28, 28) and not cpu.official_test.any()
    assert np.bincount(cpu.y).min() > 600  # every class well represented


def write_cifar(root: Path, variant: str):
    rng = np.random.default_rng(1)
    if variant == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        folder, key, classes = root / "cifar-10-batches-py", b"labels", 10
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
    (tmp_path / "nowhere").mkdir()  # a data directory without the files (a missing directory: DataDirError)
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


# ------------------------------------------------------------------ files are validated, not trusted


def write_purchase_npy(tmp_path, X, Y):
    folder = tmp_path / "purchase100"
    folder.mkdir(exist_ok=True)
    np.save(folder / "X.npy", X)
    np.save(folder / "Y.npy", Y)
    return folder


GOOD_X, GOOD_Y = np.random.default_rng(4).integers(0, 2, (30, 600)).astype(np.float32), np.arange(30) % 100


@pytest.mark.parametrize("X, Y, message", [
    (GOOD_X[:, :7], GOOD_Y, r"X has shape \(30, 7\): \(7,\) per example, expected \(600,\)"),
    (GOOD_X[:, 0], GOOD_Y, r"X has shape \(30,\); expected \(n, features\)"),
    (GOOD_X, np.eye(100)[GOOD_Y], r"labels are one-hot, shape \(30, 100\)"),
    (GOOD_X, np.r_[GOOD_Y[:-1], 100], r"labels must be 0..99; row 29 has 100"),
    (GOOD_X, (np.arange(30) % 100) + 71, r"row 29 has 100 \(1-based labels\? they must start at 0\)"),
    (GOOD_X, np.r_[-1, GOOD_Y[1:]], r"labels must be 0..C-1; row 0 has -1"),
    (GOOD_X, GOOD_Y + 0.5, r"labels must be whole numbers; row 0 has 0.5"),
    (np.where(np.arange(600) == 5, np.nan, GOOD_X), GOOD_Y, r"non-finite values .* in 30 row\(s\), the first is row 0"),
    (GOOD_X[:29], GOOD_Y, r"X has 29 rows but there are 30 labels"),
    (GOOD_X.astype(str), GOOD_Y, r"X has dtype <U"),
])
def test_purchase_npy_files_are_checked(tmp_path, X, Y, message):
    folder = write_purchase_npy(tmp_path, X, Y)
    with pytest.raises(DataFileError, match=message) as err:
        load_dataset("purchase100", data_dir=tmp_path)
    assert str(folder / "X.npy") in str(err.value)


def test_purchase_npy_with_1_based_labels_1_to_100(tmp_path):
    write_purchase_npy(tmp_path, np.zeros((100, 600)), np.arange(1, 101))
    with pytest.raises(DataFileError, match=r"labels must be 0..99; row 99 has 100 \(1-based"):
        load_dataset("purchase100", data_dir=tmp_path)


def write_raw_purchase(tmp_path, text: str):
    folder = tmp_path / "purchase100"
    folder.mkdir()
    (folder / "dataset_purchase").write_text(text)
    return folder / "dataset_purchase"


def raw_line(label, n=600, value=1):
    return ",".join([str(label)] + [str(value)] * n)


@pytest.mark.parametrize("lines, message", [
    ([raw_line(3), raw_line(5, n=599), raw_line(7)], r"line 2 has 600 values where 601 are expected"),
    ([raw_line(3), raw_line(5, n=601)], r"not a well-formed comma-separated table"),
    ([raw_line(3, n=7), raw_line(4, n=7)], r"8 comma-separated fields per line; expected 601"),
    ([raw_line(3), raw_line(0)], r"labels in this file must be 1..100 .*; line 2 has 0"),
    ([raw_line(3), raw_line(101)], r"labels in this file must be 1..100; line 2 has 101"),  # as written
    ([raw_line(3), raw_line(2.5)], r"must be whole numbers 1..100; line 2 has 2.5"),
    ([raw_line(3), raw_line(4, value=2)], r"features are binary \(0/1\); row 1 has 2"),
    ([raw_line(3), raw_line(4, value="x")], r"line 2, field 2 is not a number \('x'\)"),
    ([], r"the file is empty"),
])
def test_purchase_raw_file_is_checked(tmp_path, lines, message):
    path = write_raw_purchase(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=message) as err:
        load_dataset("purchase100", data_dir=tmp_path)
    assert str(path) in str(err.value)


def test_texas_files_are_checked(tmp_path):
    raw = tmp_path / "texas100" / "texas" / "100"
    raw.mkdir(parents=True)
    np.savetxt(raw / "feats", np.ones((4, 6169)), fmt="%d", delimiter=",")
    (raw / "labels").write_text("1\n2\n3\n")  # one label short
    with pytest.raises(DataFileError, match=r"X has 4 rows but there are 3 labels") as err:
        load_dataset("texas100", data_dir=tmp_path)
    assert str(raw / "feats") in str(err.value)
    (raw / "labels").write_text("1\n2\n3\n\n4,5\n")
    with pytest.raises(DataFileError, match=r"labels: not a well-formed|labels: 2 comma-separated"):
        load_dataset("texas100", data_dir=tmp_path)
    np.savetxt(raw / "feats", np.ones((4, 7)), fmt="%d", delimiter=",")
    (raw / "labels").write_text("1\n2\n3\n4\n")
    with pytest.raises(DataFileError, match=r"feats: 7 comma-separated fields per line; expected 6169"):
        load_dataset("texas100", data_dir=tmp_path)
    folder = tmp_path / "texas100"
    np.save(folder / "feats.npy", np.ones((4, 6169)))
    np.save(folder / "labels.npy", np.array([0, 1, 2, 100]))
    with pytest.raises(DataFileError, match=r"labels.npy: labels must be 0..99; row 3 has 100"):
        load_dataset("texas100", data_dir=tmp_path)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "not a complete gzip file"),
    (lambda b: b"this is not gzip at all" + b, "not a complete gzip file"),
    (lambda b: b"", "not a complete gzip file|truncated|checksum mismatch"),
])
def test_damaged_fashion_gzip_names_the_file(tmp_path, damage, message):
    _, sums = write_fashion(tmp_path / "fashion_mnist")
    path = tmp_path / "fashion_mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    for checksums in (sums, None):  # the checksum step and the published-sums step both name the file
        with pytest.raises(DataFileError, match=message) as err:
            load_dataset("fashion_mnist", data_dir=tmp_path, checksums=checksums)
        assert str(path) in str(err.value)


def test_damaged_gzip_read_directly_names_the_file(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(idx_bytes(np.zeros((4, 3, 3))))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataFileError, match=f"{path}: not a complete gzip file"):
        read_idx(path)


def test_fashion_labels_are_checked(tmp_path):
    arrays, sums = write_fashion(tmp_path / "fashion_mnist", gz=False)
    path = tmp_path / "fashion_mnist" / "t10k-labels-idx1-ubyte"
    raw = idx_bytes(np.array([0, 1, 2, 3, 10]))
    path.write_bytes(raw)
    sums["test_labels"] = md5(raw)
    with pytest.raises(DataFileError, match=r"t10k-labels-idx1-ubyte: labels must be 0..9; row 4 has 10"):
        load_dataset("fashion_mnist", data_dir=tmp_path, checksums=sums)
    raw = idx_bytes(np.array([0, 1, 2]))
    path.write_bytes(raw)
    sums["test_labels"] = md5(raw)
    with pytest.raises(DataFileError, match=r"t10k-images-idx3-ubyte holds 5 images but .*t10k-labels"):
        load_dataset("fashion_mnist", data_dir=tmp_path, checksums=sums)


def test_cifar_labels_are_checked_and_pickles_cannot_run_code(tmp_path):
    sums, _ = write_cifar(tmp_path, "cifar10")
    folder = tmp_path / "cifar-10-batches-py"
    blob = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 10]})
    (folder / "test_batch").write_bytes(blob)
    sums["test_batch"] = md5(blob)
    with pytest.raises(DataFileError, match=r"test_batch: labels must be 0..9; row 1 has 10"):
        load_dataset("cifar10", data_dir=tmp_path, checksums=sums)

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    blob = pickle.dumps({b"data": Evil(), b"labels": [0]})
    (folder / "test_batch").write_bytes(blob)
    sums["test_batch"] = md5(blob)
    with pytest.raises(DataFileError, match=r"test_batch: not a readable CIFAR python batch .*not allowed"):
        load_dataset("cifar10", data_dir=tmp_path, checksums=sums)
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------ relative paths, Feldman & Zhang


def test_relative_data_paths_resolve_against_the_data_directories(tmp_path, monkeypatch):
    data_dir, elsewhere = tmp_path / "data", tmp_path / "notebooks"
    data_dir.mkdir()
    elsewhere.mkdir()
    (data_dir / "infl.npz").write_bytes(b"x")
    (elsewhere / "only_here.npz").write_bytes(b"x")
    monkeypatch.chdir(elsewhere)
    assert resolve_data_file("infl.npz", data_dir) == data_dir / "infl.npz"
    monkeypatch.setenv("SHARPMEM_DATA", str(data_dir))
    assert resolve_data_file("infl.npz") == data_dir / "infl.npz"  # the paper profile's case: no data_dir given
    assert resolve_data_file(data_dir / "infl.npz") == data_dir / "infl.npz"
    with pytest.raises(FileNotFoundError) as err:
        resolve_data_file("only_here.npz", data_dir)  # the current directory is not a data directory
    assert str(data_dir / "only_here.npz") in str(err.value)


def write_feldman_zhang(path, tr_labels, tt_labels):
    np.savez(path, tr_labels=np.asarray(tr_labels), tt_labels=np.asarray(tt_labels), tr_mem=np.zeros(len(tr_labels)),
             infl_matrix_class0=np.zeros((1, 1)), tr_classidx_0=[0], tt_classidx_0=[0])


def test_feldman_zhang_file_for_another_dataset_is_rejected(tmp_path):
    path = tmp_path / "fz.npz"
    rng = np.random.default_rng(0)
    write_feldman_zhang(path, rng.integers(0, 100, 50_000), rng.integers(0, 100, 10_000))
    check_feldman_zhang_file(path, "cifar100")  # the right sizes and classes for CIFAR-100
    with pytest.raises(DataFileError, match=r"labels up to 99, but 'cifar10' has 10 classes"):
        check_feldman_zhang_file(path, "cifar10")
    with pytest.raises(DataFileError, match=r"50000 training and 10000 test .* 'fashion_mnist' has 60000 and 10000"):
        check_feldman_zhang_file(path, "fashion_mnist")
    with pytest.raises(DataFileError, match=r"'purchase100' has 197324 and 0"):
        check_feldman_zhang_file(path, "purchase100")
    np.savez(tmp_path / "other.npz", X=np.zeros(3))
    with pytest.raises(DataFileError, match=r"not a Feldman-Zhang influence file \(missing \['tr_labels'"):
        check_feldman_zhang_file(tmp_path / "other.npz", "cifar100")


def test_feldman_zhang_labels_must_match_the_loaded_data(tmp_path):
    from sharpmem_lib.data import Arrays

    data = Arrays(np.zeros((6, 2), np.float32), np.array([0, 1, 2, 0, 1, 2]),
                  official_test=np.array([False, False, False, False, True, True]))
    path = tmp_path / "fz.npz"
    write_feldman_zhang(path, [0, 1, 2, 0], [1, 2])
    check_feldman_zhang_file(path, "cifar10", data)
    write_feldman_zhang(path, [0, 1, 2, 0], [2, 1])
    with pytest.raises(DataFileError, match=r"differ from the labels of 'cifar10' \(0 train, 2 test\)"):
        check_feldman_zhang_file(path, "cifar10", data)


# ------------------------------------------------------------------ Fashion-MNIST on a fresh machine


@pytest.fixture
def no_fashion(monkeypatch, tmp_path):
    """A machine without Fashion-MNIST anywhere (the real system folder is hidden)."""
    import sharpmem_lib.data as data

    monkeypatch.setattr(data, "FASHION_SYSTEM_DIR", tmp_path / "usr-share" / "fashion-mnist")
    return data


def test_obtain_fashion_fails_naming_both_ways(no_fashion, monkeypatch, tmp_path):
    monkeypatch.setattr(no_fashion.os, "geteuid", lambda: 1000)

    def offline(root):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(no_fashion, "_download_fashion_mnist", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        no_fashion.obtain_fashion_mnist(tmp_path / "data", log=lambda *_: None)
    text = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in text and "not running as root" in text
    assert "zalandoresearch/fashion-mnist" in text and "md5-checked" in text and "Network is unreachable" in text


def test_obtain_fashion_uses_apt_as_root(no_fashion, monkeypatch, tmp_path):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        if cmd[:2] == ["apt-get", "install"]:
            write_fashion(no_fashion.FASHION_SYSTEM_DIR)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    import shutil
    import subprocess

    monkeypatch.setattr(no_fashion.os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(no_fashion, "_download_fashion_mnist", lambda root: pytest.fail("must not download"))
    files = no_fashion.obtain_fashion_mnist(tmp_path / "data", log=lambda *_: None)
    assert calls[0][:3] == ["apt-get", "install", "-y"] and "dataset-fashion-mnist" in calls[0]
    assert files["train_images"].parent == no_fashion.FASHION_SYSTEM_DIR


def test_obtain_fashion_downloads_when_apt_is_unusable(no_fashion, monkeypatch, tmp_path):
    monkeypatch.setattr(no_fashion.os, "geteuid", lambda: 1000)

    def fake_download(root):
        write_fashion(root / "FashionMNIST" / "raw")
        return no_fashion._fashion_in(root / "FashionMNIST" / "raw")

    monkeypatch.setattr(no_fashion, "_download_fashion_mnist", fake_download)
    files = no_fashion.obtain_fashion_mnist(tmp_path / "data", log=lambda *_: None)
    assert files["test_labels"] == tmp_path / "data" / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    # found where the loader looks, with nothing fetched a second time
    monkeypatch.setattr(no_fashion, "_download_fashion_mnist", lambda root: pytest.fail("fetched twice"))
    assert no_fashion.obtain_fashion_mnist(tmp_path / "data", log=lambda *_: None) == files


def test_chapter_buckets_resolve_and_check_the_influence_file(tmp_path, monkeypatch):
    """memorization_buckets looks a relative influence_file up in the data directory, not the
    current one, and refuses a file for another dataset before using it (nothing trains)."""
    from sharpmem_lib import subsampling
    from sharpmem_lib.buckets import memorization_buckets
    from sharpmem_lib.subsampling import SubsamplingConfig

    monkeypatch.setattr(subsampling, "run_subsampling_experiment", lambda *a, **k: pytest.fail("trained"))
    config = SubsamplingConfig("digits", "mlp", n_models=4)
    data_dir, cwd = tmp_path / "data", tmp_path / "notebooks"
    data_dir.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    write_feldman_zhang(cwd / "fz.npz", np.zeros(50_000, int), np.zeros(10_000, int))  # beside the notebook only
    with pytest.raises(FileNotFoundError, match=str(data_dir / "fz.npz")):
        memorization_buckets(config, tmp_path / "results", data_dir=data_dir, influence_file="fz.npz")
    write_feldman_zhang(data_dir / "fz.npz", np.zeros(50_000, int), np.zeros(10_000, int))  # CIFAR-sized
    with pytest.raises(DataFileError, match=r"fz.npz: influence estimates for 50000 training and 10000 test .* "
                                            r"'digits' has 1797 and 0"):
        memorization_buckets(config, tmp_path / "results", data_dir=data_dir, influence_file="fz.npz")
