"""Datasets by name (paper §3.1, §4, App. B).

Every loader returns :class:`Arrays` for the *whole* dataset; which examples a target model
trains on is decided by :mod:`sharpmem_lib.splits`. Datasets that need a download
(Fashion-MNIST, CIFAR-10/100, Purchase-100, Texas-100) are read from their published file
formats in a data directory, looked up in this order: the ``data_dir`` argument, the
``SHARPMEM_DATA`` environment variable, ``~/.cache/sharpmem``. When the files are missing
the error names the paths it tried and where to get the data; nothing is downloaded unless
``download=True`` is passed (Fashion-MNIST and CIFAR, through torchvision).

=================  =======  ==========================================================
name               classes  what
=================  =======  ==========================================================
``toy2d``          2        Fig. 1's 2-D mixture (synthetic, exact Bayes rule)
``digits``         10       scikit-learn's 1,797 real 8x8 handwritten digits (offline)
``longtail``       10       synthetic long tail: Zipf-sized subpopulations per class
``fashion_mnist``  10       Zalando's 70,000 28x28 images (IDX files)
``cifar10``        10       60,000 32x32 colour images (torchvision's python pickles)
``cifar100``       100      60,000 32x32 colour images, fine labels
``purchase100``    100      197,324 shopping records, 600 binary features (Shokri et al.)
``texas100``       100      67,330 hospital records, 6,169 binary features (Shokri et al.)
=================  =======  ==========================================================
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from sharpmem_lib.validation import check_choice, check_fraction, check_positive

__all__ = [
    "Arrays",
    "DatasetInfo",
    "DATASETS",
    "DatasetNotFoundError",
    "ToyMixture",
    "data_dirs",
    "dataset_table",
    "load_dataset",
    "longtail",
    "read_idx",
    "RED",
    "BLUE",
]

RED, BLUE = 0, 1


@dataclass(frozen=True)
class Arrays:
    """A labelled dataset.

    ``X``: features, (n, d) float32 for tabular data or (n, C, H, W) for images (uint8 for
    the image datasets stored that way; the training engine scales them to [0, 1]).
    ``y``: (n,) int64 labels. ``group``: (n,) int64 ground-truth subpopulation id where the
    dataset has one (``toy2d``: 0 typical red, 1 atypical red, 2 blue; ``longtail``: the
    subpopulation), else -1. ``official_test``: (n,) bool, the dataset's own test split
    (CIFAR, Fashion-MNIST), all False for a single pool. ``meta``: more per-example arrays,
    e.g. ``longtail``'s ``subpop_size``.
    """

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray | None = None
    official_test: np.ndarray | None = None
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.y)
        if len(self.X) != n:
            raise ValueError(f"X has {len(self.X)} rows but y has {n}")
        if self.group is None:
            object.__setattr__(self, "group", np.full(n, -1, dtype=np.int64))
        if self.official_test is None:
            object.__setattr__(self, "official_test", np.zeros(n, dtype=bool))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1

    def subset(self, index: np.ndarray) -> "Arrays":
        """The rows ``index`` (every per-example array indexed alike)."""
        return Arrays(self.X[index], self.y[index], self.group[index], self.official_test[index],
                      {k: v[index] for k, v in self.meta.items()})


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset that needs a download are not where we looked."""


def _log_gauss(x: np.ndarray, mean: np.ndarray, std: float) -> np.ndarray:
    """Log density of an isotropic 2-D Gaussian N(mean, std^2 I) at the rows of ``x``."""
    d = x.shape[-1]
    sq = ((x - mean) ** 2).sum(-1)
    return -0.5 * sq / std**2 - d * np.log(std) - 0.5 * d * np.log(2 * np.pi)


@dataclass(frozen=True)
class ToyMixture:
    """The two-class 2-D distribution of Fig. 1.

    The red class is a mixture of a large *typical* Gaussian cluster and a small *atypical*
    one (weight ``atypical_weight`` of the red mass) that sits inside the blue class's
    territory; the blue class is one Gaussian. All densities are explicit, so the Bayes
    optimal rule, argmax_c P(c) p(x | c), is exact.
    """

    typical_mean: tuple[float, float] = (-1.5, 0.0)
    typical_std: float = 1.0
    atypical_mean: tuple[float, float] = (2.5, 1.5)
    atypical_std: float = 0.35
    atypical_weight: float = 0.05
    blue_mean: tuple[float, float] = (1.5, 0.0)
    blue_std: float = 1.0
    red_prior: float = 0.5

    def __post_init__(self) -> None:
        check_fraction("atypical_weight", self.atypical_weight)
        check_fraction("red_prior", self.red_prior)
        for name in ("typical_std", "atypical_std", "blue_std"):
            check_positive(name, getattr(self, name))

    def class_log_density(self, x: np.ndarray) -> np.ndarray:
        """log p(x | c) for c = red, blue; shape (n, 2)."""
        x = np.asarray(x, dtype=np.float64)
        w = self.atypical_weight
        red = np.logaddexp(
            np.log1p(-w) + _log_gauss(x, np.array(self.typical_mean), self.typical_std),
            np.log(w) + _log_gauss(x, np.array(self.atypical_mean), self.atypical_std),
        )
        blue = _log_gauss(x, np.array(self.blue_mean), self.blue_std)
        return np.stack([red, blue], axis=-1)

    def log_posterior_ratio(self, x: np.ndarray) -> np.ndarray:
        """log P(red | x) - log P(blue | x); the Bayes boundary is its zero level set."""
        logp = self.class_log_density(x)
        return logp[..., RED] - logp[..., BLUE] + np.log(self.red_prior) - np.log1p(-self.red_prior)

    def bayes_predict(self, x: np.ndarray) -> np.ndarray:
        """The Bayes optimal label for each row of ``x``."""
        return np.where(self.log_posterior_ratio(x) >= 0, RED, BLUE).astype(np.int64)

    def sample(self, n: int, seed: int) -> Arrays:
        """Draw ``n`` i.i.d. labelled points (labels from the prior, then the components)."""
        check_positive("n", n, integer=True)
        rng = np.random.default_rng(seed)
        y = np.where(rng.random(n) < self.red_prior, RED, BLUE)
        atypical = (y == RED) & (rng.random(n) < self.atypical_weight)
        group = np.where(y == BLUE, 2, atypical.astype(np.int64))
        means = np.array([self.typical_mean, self.atypical_mean, self.blue_mean])
        stds = np.array([self.typical_std, self.atypical_std, self.blue_std])
        X = means[group] + stds[group, None] * rng.standard_normal((n, 2))
        return Arrays(X.astype(np.float32), y.astype(np.int64), group.astype(np.int64))


# --------------------------------------------------------------------------- files


def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Where datasets are looked for, in order."""
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
    if os.environ.get("SHARPMEM_DATA"):
        dirs.append(Path(os.environ["SHARPMEM_DATA"]))
    dirs.append(Path.home() / ".cache" / "sharpmem")
    return dirs


def _not_found(name: str, tried: list[Path], how: str) -> DatasetNotFoundError:
    listing = "\n  ".join(str(p) for p in tried)
    return DatasetNotFoundError(
        f"dataset {name!r} not found. Looked for:\n  {listing}\n{how}\n"
        "Put the files in one of these places, or pass data_dir=... (or set SHARPMEM_DATA)."
    )


def md5sum(path: Path, decompress: bool = False) -> str:
    """md5 of a file's bytes (of its gzip content when ``decompress``)."""
    h = hashlib.md5()
    with (gzip.open if decompress else open)(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, *expected: str | None, decompressed: str | None = None) -> None:
    """Accept ``path`` if its md5 is one of ``expected`` or, for a ``.gz``, if its content's
    md5 is ``decompressed``; otherwise raise naming the file. No sums given: no check."""
    wanted = [e for e in expected if e]
    if not wanted and not decompressed:
        return
    actual = md5sum(path)
    if actual in wanted:
        return
    if decompressed and path.suffix == ".gz" and md5sum(path, decompress=True) == decompressed:
        return
    if decompressed and path.suffix != ".gz" and actual == decompressed:
        return
    raise ValueError(f"{path}: checksum mismatch (md5 {actual}); the file is corrupt or not the "
                     "published one: delete it and fetch it again")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST's format; ``.gz`` or raw) into an array of its shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: truncated IDX file ({array.size} values for shape {shape})")
    return array.reshape(shape)


# ------------------------------------------------------------------------ loaders


def _load_toy2d(n: int = 400, seed: int = 0, data_dir=None, **mixture_kwargs) -> Arrays:
    return ToyMixture(**mixture_kwargs).sample(n, seed)


def _load_digits(data_dir=None) -> Arrays:
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    return Arrays(X, digits.target.astype(np.int64))


def longtail(
    num_classes: int = 10,
    subpops_per_class: int = 30,
    n_per_class: int = 300,
    zipf_exponent: float = 1.2,
    dim: int = 32,
    class_spread: float = 1.0,
    subpop_spread: float = 2.0,
    noise: float = 0.6,
    seed: int = 0,
) -> Arrays:
    """Feldman's long-tail model (2020): each class is a mixture of subpopulations whose
    frequencies follow a Zipf law, so a few subpopulations are common and many are rare.

    A point is ``class centre + subpopulation offset + noise``. With ``subpop_spread``
    larger than ``class_spread``, a rare subpopulation shares little with its class: a model
    gets its test points right only by memorizing its few training points. Every example
    carries its subpopulation id (``group``, globally unique) and the subpopulation's size
    in the pool (``meta['subpop_size']``), the ground truth for memorization metrics.
    """
    for name, value in dict(num_classes=num_classes, subpops_per_class=subpops_per_class,
                            n_per_class=n_per_class, dim=dim).items():
        check_positive(name, value, integer=True)
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, subpops_per_class + 1) ** zipf_exponent
    sizes = np.maximum(1, np.round(weights / weights.sum() * n_per_class)).astype(int)
    class_centres = rng.normal(0.0, class_spread, (num_classes, dim))
    X, y, group, size = [], [], [], []
    for k in range(num_classes):
        for s, m in enumerate(sizes):
            centre = class_centres[k] + rng.normal(0.0, subpop_spread, dim)
            X.append(centre + rng.normal(0.0, noise, (m, dim)))
            y.append(np.full(m, k))
            group.append(np.full(m, k * subpops_per_class + s))
            size.append(np.full(m, m))
    order = rng.permutation(sum(len(a) for a in y))
    return Arrays(np.concatenate(X)[order].astype(np.float32), np.concatenate(y)[order].astype(np.int64),
                  np.concatenate(group)[order].astype(np.int64),
                  meta={"subpop_size": np.concatenate(size)[order].astype(np.int64)})


def _load_longtail(data_dir=None, **kwargs) -> Arrays:
    return longtail(**kwargs)


# (file stem, md5 of the published .gz, md5 of the uncompressed IDX bytes). The .gz sums are
# the ones Zalando publishes (and torchvision checks); Debian's dataset-fashion-mnist package
# recompresses the same IDX files (upstream git 55506a9), so the uncompressed sums, computed
# from that package, are accepted too.
FASHION_FILES = {
    "train_images": ("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    "train_labels": ("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"),
    "test_images": ("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
    "test_labels": ("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
}
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def _load_fashion_mnist(data_dir=None, download: bool = False, checksums: dict | None = None) -> Arrays:
    """Fashion-MNIST from its four IDX files, ``.gz`` or raw, checked against known md5 sums.

    ``checksums`` (key of ``FASHION_FILES`` -> md5 of the uncompressed bytes) replaces the
    known sums, for files written by tests.
    """
    candidates = []
    for d in data_dirs(data_dir):
        candidates += [d / "fashion_mnist", d / "FashionMNIST" / "raw", d]
    candidates.append(FASHION_SYSTEM_DIR)

    def find(folder: Path) -> dict[str, Path] | None:
        found = {}
        for key, (stem, _, _) in FASHION_FILES.items():
            path = next((folder / f for f in (stem + ".gz", stem) if (folder / f).exists()), None)
            if path is None:
                return None
            found[key] = path
        return found

    files = next((f for f in map(find, candidates) if f), None)
    if files is None and download:
        from torchvision.datasets import FashionMNIST

        root = data_dirs(data_dir)[0]
        FashionMNIST(root, train=True, download=True)
        FashionMNIST(root, train=False, download=True)
        files = find(root / "FashionMNIST" / "raw")
    if files is None:
        raise _not_found("fashion_mnist", candidates,
                         "Get the four IDX files from https://github.com/zalandoresearch/fashion-mnist, "
                         "or `apt-get install dataset-fashion-mnist` (Debian), or pass download=True.")
    for key, path in files.items():
        if checksums is None:
            _verify(path, FASHION_FILES[key][1], decompressed=FASHION_FILES[key][2])
        else:
            _verify(path, decompressed=checksums[key])
    train_x, test_x = read_idx(files["train_images"]), read_idx(files["test_images"])
    train_y, test_y = read_idx(files["train_labels"]), read_idx(files["test_labels"])
    X = np.concatenate([train_x, test_x])[:, None]  # (70000, 1, 28, 28) uint8
    y = np.concatenate([train_y, test_y]).astype(np.int64)
    official_test = np.r_[np.zeros(len(train_y), bool), np.ones(len(test_y), bool)]
    return Arrays(X, y, official_test=official_test)


def _cifar_files(variant: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]], bytes]:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if variant == "cifar10" else CIFAR100
    label_key = b"labels" if variant == "cifar10" else b"fine_labels"
    return cls.base_folder, [tuple(t) for t in cls.train_list], [tuple(t) for t in cls.test_list], label_key


def _load_cifar(variant: str, data_dir=None, download: bool = False, checksums: dict | None = None) -> Arrays:
    """CIFAR-10/100 from torchvision's python pickles, checked against the published md5 sums.

    ``checksums`` (file name -> md5) replaces the published sums, for files written by tests.
    """
    folder, train_list, test_list, label_key = _cifar_files(variant)
    candidates = [d / folder for d in data_dirs(data_dir)]
    root = next((c for c in candidates if all((c / f).exists() for f, _ in train_list + test_list)), None)
    if root is None and download:
        from torchvision.datasets import CIFAR10, CIFAR100

        cls = CIFAR10 if variant == "cifar10" else CIFAR100
        cls(data_dirs(data_dir)[0], train=True, download=True)
        root = data_dirs(data_dir)[0] / folder
    if root is None:
        url = "https://www.cs.toronto.edu/~kriz/cifar.html"
        raise _not_found(variant, candidates, f"Download and extract the python version from {url} "
                         "(the folder named above), or pass download=True.")
    parts_x, parts_y, parts_test = [], [], []
    for files, is_test in ((train_list, False), (test_list, True)):
        for name, md5 in files:
            path = root / name
            _verify(path, md5 if checksums is None else checksums.get(name))
            with open(path, "rb") as f:
                entry = pickle.load(f, encoding="bytes")
            parts_x.append(np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            parts_y.append(np.asarray(entry[label_key], dtype=np.int64))
            parts_test.append(np.full(len(parts_y[-1]), is_test))
    return Arrays(np.concatenate(parts_x), np.concatenate(parts_y), official_test=np.concatenate(parts_test))


def _read_table(path: Path) -> np.ndarray:
    import pandas as pd

    return pd.read_csv(path, header=None).to_numpy()


def _load_purchase100(data_dir=None) -> Arrays:
    """Purchase-100 as released by Shokri et al. (``dataset_purchase``: label 1..100, then 600
    binary features per line) or as SELENA's ``prepare_dataset.py`` saves it (X.npy, Y.npy)."""
    tried = []
    for d in data_dirs(data_dir):
        folder = d / "purchase100"
        tried += [folder / "X.npy", folder / "dataset_purchase"]
        if (folder / "X.npy").exists() and (folder / "Y.npy").exists():
            return Arrays(np.load(folder / "X.npy").astype(np.float32), np.load(folder / "Y.npy").astype(np.int64))
        if (folder / "dataset_purchase").exists():
            table = _read_table(folder / "dataset_purchase")
            return Arrays(table[:, 1:].astype(np.float32), table[:, 0].astype(np.int64) - 1)
    raise _not_found("purchase100", tried, "Get dataset_purchase.tgz (Shokri et al. 2017; the SELENA "
                     "repository's prepare_dataset.py names the address) and extract it into purchase100/.")


def _load_texas100(data_dir=None) -> Arrays:
    """Texas-100 as released by Shokri et al. (``texas/100/feats`` and ``texas/100/labels``,
    comma-separated, labels 1..100) or as SELENA saves it (feats.npy, labels.npy)."""
    tried = []
    for d in data_dirs(data_dir):
        folder = d / "texas100"
        tried += [folder / "feats.npy", folder / "texas" / "100" / "feats"]
        if (folder / "feats.npy").exists() and (folder / "labels.npy").exists():
            return Arrays(np.load(folder / "feats.npy").astype(np.float32),
                          np.load(folder / "labels.npy").astype(np.int64))
        raw = folder / "texas" / "100"
        if (raw / "feats").exists() and (raw / "labels").exists():
            return Arrays(_read_table(raw / "feats").astype(np.float32),
                          _read_table(raw / "labels").ravel().astype(np.int64) - 1)
    raise _not_found("texas100", tried, "Get dataset_texas.tgz (Shokri et al. 2017; the SELENA "
                     "repository's prepare_dataset.py names the address) and extract it into texas100/.")


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: what a dataset is, where it comes from, and how to load it."""

    name: str
    num_classes: int
    description: str
    source: str
    loader: Callable[..., Arrays] = field(repr=False)
    offline: bool = True  # loads without any file the user must fetch
    published_size: tuple[int, int] | None = None  # (examples, of which official test), for datasets to fetch


DATASETS: dict[str, DatasetInfo] = {
    "toy2d": DatasetInfo("toy2d", 2, "Fig. 1's 2-D problem: red = typical + small atypical cluster, blue = one cluster",
                         "synthetic (sharpmem_lib.data.ToyMixture)", _load_toy2d),
    "digits": DatasetInfo("digits", 10, "1,797 real 8x8 handwritten digits",
                          "scikit-learn's load_digits (UCI optical digits), ships in the wheel", _load_digits),
    "longtail": DatasetInfo("longtail", 10, "long-tailed subpopulations per class, with ground-truth sizes",
                            "synthetic (sharpmem_lib.data.longtail), after Feldman (2020)", _load_longtail),
    "fashion_mnist": DatasetInfo("fashion_mnist", 10, "70,000 28x28 grey images of clothing",
                                 "Xiao et al. 2017; IDX files", _load_fashion_mnist, offline=False,
                                 published_size=(70_000, 10_000)),
    "cifar10": DatasetInfo("cifar10", 10, "60,000 32x32 colour images", "Krizhevsky 2009; python pickles",
                           lambda **kw: _load_cifar("cifar10", **kw), offline=False, published_size=(60_000, 10_000)),
    "cifar100": DatasetInfo("cifar100", 100, "60,000 32x32 colour images, 100 fine classes",
                            "Krizhevsky 2009; python pickles", lambda **kw: _load_cifar("cifar100", **kw), offline=False,
                            published_size=(60_000, 10_000)),
    "purchase100": DatasetInfo("purchase100", 100, "197,324 purchase records, 600 binary features",
                               "Shokri et al. 2017 (Kaggle acquire-valued-shoppers)", _load_purchase100, offline=False,
                               published_size=(197_324, 0)),
    "texas100": DatasetInfo("texas100", 100, "67,330 hospital discharge records, 6,169 binary features",
                            "Shokri et al. 2017 (Texas DSHS inpatient data)", _load_texas100, offline=False,
                            published_size=(67_330, 0)),
}


def dataset_table():
    """The registry as a table (for the book)."""
    import pandas as pd

    return pd.DataFrame([{"dataset": d.name, "classes": d.num_classes, "what": d.description, "source": d.source,
                          "needs a download": "no" if d.offline else "yes"} for d in DATASETS.values()]).set_index("dataset")


def load_dataset(name: str, data_dir: str | Path | None = None, **kwargs) -> Arrays:
    """Load a registered dataset by name; ``kwargs`` go to its loader."""
    check_choice("dataset", name, DATASETS)
    return DATASETS[name].loader(data_dir=data_dir, **kwargs)
