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

Every loader checks what it read (:func:`check_xy`): the shape of X (and the feature count
of the tabular sets), whole-number labels in 0..C-1 (not one-hot, not 1-based), finite
values; a truncated, foreign or corrupt file is a :class:`DataFileError` naming the file.
``make book`` fetches Fashion-MNIST when it is missing (:func:`obtain_fashion_mnist`).

**Bring your own data.** Any chapter runs on a dataset of yours by name, with the same
checks and partitions (:func:`sharpmem_lib.splits.split_spec`):

* save ``<data_dir>/<name>.npz`` with ``X`` (n, features) or (n, channels, height, width),
  ``y`` (n,) integer labels 0..C-1, and optionally ``official_test`` (n,) bool (the
  dataset's own test split; members are then the rest) and ``group`` (n,) int; then pass
  ``dataset=<name>`` (e.g. ``papermill ... -p dataset name -p data_dir /path``); or
* in Python, ``register_dataset(name, loader)`` with ``loader(data_dir=None)`` returning
  :class:`Arrays` or ``(X, y)``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from sharpmem_lib.validation import check_choice, check_fraction, check_positive

__all__ = [
    "display_name",
    "Arrays",
    "BUILTIN_DATASETS",
    "DataDirError",
    "DataFileError",
    "DatasetInfo",
    "DATASETS",
    "DatasetNotFoundError",
    "NPZ_KEYS",
    "ToyMixture",
    "available_datasets",
    "check_dataset_name",
    "check_feldman_zhang_file",
    "check_xy",
    "data_dirs",
    "dataset_fingerprint",
    "dataset_table",
    "load_dataset",
    "load_npz_dataset",
    "locate_dataset",
    "longtail",
    "obtain_fashion_mnist",
    "read_idx",
    "register_dataset",
    "resolve_data_file",
    "unregister_dataset",
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


class DataFileError(ValueError):
    """A data file exists but is not what its loader expects (format, shape, labels, values)."""


class DataDirError(DatasetNotFoundError, ValueError):
    """A data directory that was given (``data_dir``, ``$SHARPMEM_DATA``) is not a directory:
    no dataset can be found there (a ``DatasetNotFoundError``), and the value is wrong (a
    ``ValueError``)."""


def data_dirs(data_dir: str | Path | None = None, strict: bool = True) -> list[Path]:
    """Where datasets are looked for, in order: ``data_dir``, ``$SHARPMEM_DATA``,
    ``~/.cache/sharpmem``. A ``data_dir`` or ``$SHARPMEM_DATA`` that is not a directory is a
    :class:`DataDirError` naming it (a typo used to be skipped silently, and the data then
    came from another directory or was reported missing); ``strict=False`` skips it instead
    (looking for which ``<name>.npz`` datasets exist, where a missing folder holds none)."""
    dirs = []
    for name, value in (("data_dir", data_dir), ("SHARPMEM_DATA", os.environ.get("SHARPMEM_DATA"))):
        if value is None or str(value) == "":
            continue
        path = Path(value).expanduser()
        if not path.is_dir() and strict:
            what = "is a file, not a directory" if path.exists() else "does not exist"
            raise DataDirError(f"{name}={str(value)!r} is not valid: {path} {what}; give the directory that holds "
                               f"the data files (or '' for the defaults: $SHARPMEM_DATA, ~/.cache/sharpmem)")
        if path.is_dir():
            dirs.append(path)
    dirs.append(Path.home() / ".cache" / "sharpmem")
    return dirs


def resolve_data_file(path: str | Path, data_dir: str | Path | None = None, what: str = "data file") -> Path:
    """An existing file named by ``path``: as given if absolute, else the first of
    ``<dir>/<path>`` over :func:`data_dirs` (not the current directory, which for a notebook
    is ``notebooks/``). ``FileNotFoundError`` names every place tried."""
    path = Path(path).expanduser()
    tried = [path] if path.is_absolute() else [d / path for d in data_dirs(data_dir)]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    listing = "\n  ".join(str(p) for p in tried)
    raise FileNotFoundError(f"{what} {str(path)!r} not found. Looked for:\n  {listing}\n"
                            "A relative path is looked up in the data directories: pass data_dir=... "
                            "(or set SHARPMEM_DATA), or give an absolute path.")


def _not_found(name: str, tried: list[Path], how: str) -> DatasetNotFoundError:
    listing = "\n  ".join(str(p) for p in tried)
    return DatasetNotFoundError(
        f"dataset {name!r} not found. Looked for:\n  {listing}\n{how}\n"
        "Put the files in one of these places, or pass data_dir=... (or set SHARPMEM_DATA)."
    )


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_xy(X, y, source: str | Path, *, num_classes: int | None = None,
             feature_shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check a dataset's features and labels; return them with ``y`` as int64.

    ``X``: numbers, shape (n, features) or (n, channels, height, width) (``feature_shape``
    is the per-example shape when known), finite. ``y``: (n,) whole-number class indices in
    0..C-1, ``C = num_classes`` when known; without it, class 0 must occur (1-based labels
    are the usual mistake). Raises :class:`DataFileError` naming ``source`` and the fault.
    """
    X, y = np.asarray(X), np.asarray(y)

    def fail(what: str):
        raise DataFileError(f"{source}: {what}")

    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        fail(f"X has dtype {X.dtype}; expected numbers")
    if np.issubdtype(X.dtype, np.complexfloating):  # torch's .float() would drop the imaginary part silently
        fail(f"X has dtype {X.dtype}; expected real numbers")
    if X.ndim not in (2, 4):
        hint = (" (images need a channel axis: (n, channels, height, width), e.g. X[:, None])" if X.ndim == 3 else
                " (one row of features per example)")
        fail(f"X has shape {X.shape}; expected (n, features) or (n, channels, height, width){hint}")
    if feature_shape is not None and X.shape[1:] != tuple(feature_shape):
        fail(f"X has shape {X.shape}: {X.shape[1:]} per example, expected {tuple(feature_shape)}")
    if 0 in X.shape[1:]:
        fail(f"X has shape {X.shape}: no features per example")
    if y.ndim == 2 and y.shape[1] > 1 and np.isin(y, (0, 1)).all() and (y.sum(1) == 1).all():
        fail(f"labels are one-hot, shape {y.shape}; store class indices 0..C-1 instead (y.argmax(1))")
    if y.ndim != 1:
        fail(f"labels have shape {y.shape}; expected (n,) class indices")
    if len(X) != len(y):
        fail(f"X has {len(X)} rows but there are {len(y)} labels")
    if len(y) == 0:
        fail("no examples")
    if np.issubdtype(y.dtype, np.floating):
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            fail(f"labels must be whole numbers; row {_first(~whole)} has {y[_first(~whole)]}")
    elif not np.issubdtype(y.dtype, np.integer):
        fail(f"labels have dtype {y.dtype}; expected integers")
    y = y.astype(np.int64)
    if (y < 0).any():
        fail(f"labels must be 0..C-1; row {_first(y < 0)} has {y[_first(y < 0)]}")
    if num_classes is not None and (y >= num_classes).any():
        one_based = " (1-based labels? they must start at 0)" if y.min() >= 1 and y.max() == num_classes else ""
        fail(f"labels must be 0..{num_classes - 1}; row {_first(y >= num_classes)} has "
             f"{y[_first(y >= num_classes)]}{one_based}")
    if num_classes is None and not (y == 0).any():
        fail(f"no example has label 0, labels run {y.min()}..{y.max()}: they must be 0..C-1 "
             "(1-based labels? subtract 1)")
    if np.issubdtype(X.dtype, np.floating):
        bad = ~np.isfinite(X.reshape(len(X), -1)).all(1)
        if bad.any():
            fail(f"X has non-finite values (NaN or inf) in {int(bad.sum())} row(s), the first is row {_first(bad)}")
    if np.issubdtype(X.dtype, np.number) and X.size:  # training runs in float32: larger values become inf there
        big = np.abs(X.reshape(len(X), -1)).max(1) > np.finfo(np.float32).max
        if big.any():
            fail(f"X has values beyond float32's range (|x| > {np.finfo(np.float32).max:.3g}) in {int(big.sum())} "
                 f"row(s), the first is row {_first(big)}; they would become inf in training")
    if len(np.unique(y)) < 2:
        fail(f"every example has label {y[0]}: a classifier needs at least 2 classes")
    if num_classes is None:  # C is inferred as max + 1: a class no example has is a numbering mistake
        absent = np.setdiff1d(np.arange(y.max() + 1), y)
        if len(absent):
            fail(f"labels run 0..{y.max()} but no example has class(es) {absent[:10].tolist()}"
                 f"{' ...' if len(absent) > 10 else ''} ({len(absent)} of {y.max() + 1}); number the classes "
                 "0..C-1 without gaps (e.g. np.unique(y, return_inverse=True)[1]), or register the dataset "
                 "with num_classes=C")
    return X, y


def _check_raw_labels(labels: np.ndarray, path: Path, num_classes: int) -> np.ndarray:
    """Shokri et al.'s releases number classes 1..C; return them as 0..C-1."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.floating) and (labels != np.round(labels)).any():
        i = _first(labels != np.round(labels))  # named as written in the file, not after the shift to 0..C-1
        raise DataFileError(f"{path}: labels in this file must be whole numbers 1..{num_classes}; line {i + 1} "
                            f"has {labels[i]}")
    if labels.ndim == 1 and len(labels) and np.issubdtype(labels.dtype, np.number) and (labels > num_classes).any():
        i = _first(labels > num_classes)
        raise DataFileError(f"{path}: labels in this file must be 1..{num_classes}; line {i + 1} has {labels[i]}")
    if labels.ndim == 1 and len(labels) and np.issubdtype(labels.dtype, np.number) and (labels < 1).any():
        i = _first(labels < 1)
        raise DataFileError(f"{path}: labels in this file must be 1..{num_classes} (the published release counts "
                            f"from 1); line {i + 1} has {labels[i]}")
    return labels - 1 if np.issubdtype(np.asarray(labels).dtype, np.number) else labels


def md5sum(path: Path, decompress: bool = False) -> str:
    """md5 of a file's bytes (of its gzip content when ``decompress``)."""
    h = hashlib.md5()
    try:
        with (gzip.open if decompress else open)(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataFileError(f"{path}: not a complete gzip file ({type(err).__name__}: {err}); it is truncated "
                            "or corrupt: delete it and fetch it again") from None
    except IsADirectoryError:  # a folder under a data file's name: was a bare IsADirectoryError
        raise DataFileError(f"{path}: is a directory, not the data file of that name; remove it and put the "
                            "file there") from None
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
    raise DataFileError(f"{path}: checksum mismatch (md5 {actual}); the file is corrupt or not the "
                        "published one: delete it and fetch it again")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST's format; ``.gz`` or raw) into an array of its shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataFileError(f"{path}: not a complete gzip file ({type(err).__name__}: {err}); it is truncated "
                            "or corrupt: delete it and fetch it again") from None
    if len(data) < 4:
        raise DataFileError(f"{path}: truncated IDX file ({len(data)} bytes, no header)")
    zero, dtype_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype_code != 0x08:
        raise DataFileError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    if len(data) < 4 + 4 * ndim:
        raise DataFileError(f"{path}: truncated IDX file (header cut short)")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise DataFileError(f"{path}: truncated IDX file ({array.size} values for shape {shape})")
    return array.reshape(shape)


def _read_table(path: Path, n_columns: int | None = None) -> np.ndarray:
    """A headerless comma-separated table of numbers; a ragged or non-numeric line is an
    error naming the file and the line (pandas would pad a short line with NaN)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, header=None)
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataFileError(f"{path}: not a well-formed comma-separated table of numbers ({err})") from None
    non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        col = non_numeric[0]
        row = _first(pd.to_numeric(frame[col], errors="coerce").isna().to_numpy())
        raise DataFileError(f"{path}: line {row + 1}, field {col + 1} is not a number ({frame[col].iloc[row]!r})")
    table = frame.to_numpy()
    if n_columns is not None and table.shape[1] != n_columns:
        raise DataFileError(f"{path}: {table.shape[1]} comma-separated fields per line; expected {n_columns}")
    short = np.isnan(table).any(1) if np.issubdtype(table.dtype, np.floating) else np.zeros(len(table), bool)
    if short.any():
        row = _first(short)
        present = int((~np.isnan(table[row])).sum())
        raise DataFileError(f"{path}: line {row + 1} has {present} values where {table.shape[1]} are expected "
                            "(a short line, an empty field, or a NaN written in the file)")
    return table


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's batches (dicts of bytes, lists, numpy arrays) and nothing that
    could run code: any other global is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")


def _read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            entry = _ArraysOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as err:
        raise DataFileError(f"{path}: not a readable CIFAR python batch ({type(err).__name__}: {err})") from None
    if not isinstance(entry, dict):
        raise DataFileError(f"{path}: expected a dict of arrays, found {type(entry).__name__}")
    return entry


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
FASHION_DEBIAN_PACKAGE = "dataset-fashion-mnist"
FASHION_URL = "https://github.com/zalandoresearch/fashion-mnist"


def _fashion_candidates(data_dir=None) -> list[Path]:
    candidates = []
    for d in data_dirs(data_dir):
        candidates += [d / "fashion_mnist", d / "FashionMNIST" / "raw", d]
    return candidates + [FASHION_SYSTEM_DIR]


def _fashion_in(folder: Path) -> dict[str, Path] | None:
    found = {}
    for key, (stem, _, _) in FASHION_FILES.items():
        path = next((folder / f for f in (stem + ".gz", stem) if (folder / f).exists()), None)
        if path is None:
            return None
        found[key] = path
    return found


def _fashion_how() -> str:
    return (f"Get the four IDX files from {FASHION_URL} (md5-checked), or `apt-get install "
            f"{FASHION_DEBIAN_PACKAGE}` (Debian; puts them in {FASHION_SYSTEM_DIR}), or pass download=True.")


def _find_fashion_mnist(data_dir=None) -> dict[str, Path]:
    candidates = _fashion_candidates(data_dir)
    files = next((f for f in map(_fashion_in, candidates) if f), None)
    if files is None:
        raise _not_found("fashion_mnist", candidates, _fashion_how())
    return files


def _download_fashion_mnist(root: Path) -> dict[str, Path] | None:
    """Zalando's published .gz files through torchvision, which checks their md5 sums."""
    from torchvision.datasets import FashionMNIST

    FashionMNIST(root, train=True, download=True)
    FashionMNIST(root, train=False, download=True)
    return _fashion_in(root / "FashionMNIST" / "raw")


def obtain_fashion_mnist(data_dir: str | Path | None = None, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Fashion-MNIST's four files, fetched if they are not here (what ``make book`` runs first).

    In order: files already in a data directory or :data:`FASHION_SYSTEM_DIR`; Debian's
    ``dataset-fashion-mnist`` through ``apt-get`` when running as root; Zalando's published
    files, md5-checked, into the first data directory. Where neither way works, raises
    :class:`DatasetNotFoundError` naming both, before anything is computed. A ``data_dir``
    that does not exist yet is created: here it is where the files go.
    """
    if data_dir is not None and str(data_dir) != "" and not Path(data_dir).expanduser().exists():
        Path(data_dir).expanduser().mkdir(parents=True)
    try:
        return _find_fashion_mnist(data_dir)
    except DatasetNotFoundError:
        pass
    import shutil
    import subprocess

    if shutil.which("apt-get") is None:
        apt = "apt-get is not available here"
    elif os.geteuid() != 0:
        apt = "not running as root (run `sudo apt-get install -y dataset-fashion-mnist`)"
    else:
        log(f"installing Debian's {FASHION_DEBIAN_PACKAGE} (Fashion-MNIST, 30 MB) with apt-get")
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", FASHION_DEBIAN_PACKAGE]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:  # the package lists may be missing on a fresh machine
            subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env)
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        apt = f"apt-get failed ({proc.returncode}): {proc.stderr.strip()[-300:]}" if proc.returncode else "installed"
        found = _fashion_in(FASHION_SYSTEM_DIR)
        if found:
            return found
    root = data_dirs(data_dir)[0]
    log(f"apt: {apt}; downloading Zalando's published Fashion-MNIST files into {root}")
    try:
        found = _download_fashion_mnist(root)
        download = "the downloaded files are incomplete"
    except Exception as err:  # no network, a failed md5 check, a read-only folder: all end here
        found, download = None, f"{type(err).__name__}: {err}"
    if found:
        return found
    raise DatasetNotFoundError(
        "Fashion-MNIST is not here and could not be obtained either way:\n"
        f"  1. Debian's package: `apt-get install {FASHION_DEBIAN_PACKAGE}` as root -> {apt}\n"
        f"  2. Zalando's published files ({FASHION_URL}, md5-checked) into {root} -> {download}\n"
        f"Do one of them by hand (or put the four IDX .gz files in {root / 'fashion_mnist'}) and run again.")


def _load_fashion_mnist(data_dir=None, download: bool = False, checksums: dict | None = None) -> Arrays:
    """Fashion-MNIST from its four IDX files, ``.gz`` or raw, checked against known md5 sums.

    ``checksums`` (key of ``FASHION_FILES`` -> md5 of the uncompressed bytes) replaces the
    known sums, for files written by tests.
    """
    files = obtain_fashion_mnist(data_dir, log=lambda *_: None) if download else _find_fashion_mnist(data_dir)
    for key, path in files.items():
        if checksums is None:
            _verify(path, FASHION_FILES[key][1], decompressed=FASHION_FILES[key][2])
        else:
            _verify(path, decompressed=checksums[key])
    parts = {}
    for split in ("train", "test"):
        images, labels = read_idx(files[f"{split}_images"]), read_idx(files[f"{split}_labels"])
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataFileError(f"{files[f'{split}_images']}: images of shape {images.shape[1:]}; expected (28, 28)")
        if len(images) != len(labels):
            raise DataFileError(f"{files[f'{split}_images']} holds {len(images)} images but "
                                f"{files[f'{split}_labels']} holds {labels.shape} labels")
        parts[split] = check_xy(images[:, None], labels, files[f"{split}_labels"], num_classes=10)
    X = np.concatenate([parts["train"][0], parts["test"][0]])  # (70000, 1, 28, 28) uint8
    y = np.concatenate([parts["train"][1], parts["test"][1]])
    official_test = np.r_[np.zeros(len(parts["train"][1]), bool), np.ones(len(parts["test"][1]), bool)]
    return Arrays(X, y, official_test=official_test)


def _cifar_files(variant: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]], bytes]:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if variant == "cifar10" else CIFAR100
    label_key = b"labels" if variant == "cifar10" else b"fine_labels"
    return cls.base_folder, [tuple(t) for t in cls.train_list], [tuple(t) for t in cls.test_list], label_key


def _find_cifar(variant: str, data_dir=None) -> Path:
    folder, train_list, test_list, _ = _cifar_files(variant)
    candidates = [d / folder for d in data_dirs(data_dir)]
    root = next((c for c in candidates if all((c / f).exists() for f, _ in train_list + test_list)), None)
    if root is None:
        url = "https://www.cs.toronto.edu/~kriz/cifar.html"
        raise _not_found(variant, candidates, f"Download and extract the python version from {url} "
                         "(the folder named above), or pass download=True.")
    return root


def _load_cifar(variant: str, data_dir=None, download: bool = False, checksums: dict | None = None) -> Arrays:
    """CIFAR-10/100 from torchvision's python pickles, checked against the published md5 sums.

    ``checksums`` (file name -> md5) replaces the published sums, for files written by tests.
    """
    folder, train_list, test_list, label_key = _cifar_files(variant)
    try:
        root = _find_cifar(variant, data_dir)
    except DatasetNotFoundError:
        if not download:
            raise
        from torchvision.datasets import CIFAR10, CIFAR100

        cls = CIFAR10 if variant == "cifar10" else CIFAR100
        if data_dir is not None and str(data_dir) != "":  # the download's destination may be new
            Path(data_dir).expanduser().mkdir(parents=True, exist_ok=True)
        cls(data_dirs(data_dir)[0], train=True, download=True)
        root = data_dirs(data_dir)[0] / folder
    num_classes = 10 if variant == "cifar10" else 100
    parts_x, parts_y, parts_test = [], [], []
    for files, is_test in ((train_list, False), (test_list, True)):
        for name, md5 in files:
            path = root / name
            _verify(path, md5 if checksums is None else checksums.get(name))
            entry = _read_pickle(path)
            if b"data" not in entry or label_key not in entry:
                raise DataFileError(f"{path}: missing {b'data'!r} or {label_key!r} (a {variant} batch has both)")
            data = np.asarray(entry[b"data"])
            if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
                raise DataFileError(f"{path}: data has shape {data.shape} and dtype {data.dtype}; "
                                    "expected (n, 3072) uint8")
            X, y = check_xy(data.reshape(-1, 3, 32, 32), entry[label_key], path, num_classes=num_classes)
            parts_x.append(X)
            parts_y.append(y)
            parts_test.append(np.full(len(y), is_test))
    return Arrays(np.concatenate(parts_x), np.concatenate(parts_y), official_test=np.concatenate(parts_test))


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataFileError(f"{path}: not a readable .npy array ({err})") from None


PURCHASE_FEATURES, TEXAS_FEATURES = 600, 6169


def _find_purchase100(data_dir=None) -> tuple[str, Path]:
    tried = []
    for d in data_dirs(data_dir):
        folder = d / "purchase100"
        tried += [folder / "X.npy", folder / "dataset_purchase"]
        if (folder / "X.npy").exists() and (folder / "Y.npy").exists():
            return "npy", folder
        if (folder / "dataset_purchase").exists():
            return "raw", folder / "dataset_purchase"
    raise _not_found("purchase100", tried, "Get dataset_purchase.tgz (Shokri et al. 2017; the SELENA "
                     "repository's prepare_dataset.py names the address) and extract it into purchase100/.")


def _load_purchase100(data_dir=None) -> Arrays:
    """Purchase-100 as released by Shokri et al. (``dataset_purchase``: label 1..100, then 600
    binary features per line) or as SELENA's ``prepare_dataset.py`` saves it (X.npy, Y.npy,
    labels 0..99)."""
    kind, path = _find_purchase100(data_dir)
    if kind == "npy":
        X, y = check_xy(_load_npy(path / "X.npy"), _load_npy(path / "Y.npy"), f"{path / 'X.npy'}, {path / 'Y.npy'}",
                        num_classes=100, feature_shape=(PURCHASE_FEATURES,))
    else:
        table = _read_table(path, n_columns=1 + PURCHASE_FEATURES)
        X, y = check_xy(table[:, 1:], _check_raw_labels(table[:, 0], path, 100), path, num_classes=100,
                        feature_shape=(PURCHASE_FEATURES,))
    _check_binary(X, path, "Purchase-100")
    return Arrays(X.astype(np.float32), y)


def _check_binary(X: np.ndarray, path: Path, name: str) -> None:
    """Shokri et al.'s Purchase-100 and Texas-100 features are binary: another value means
    another file (or a scaled copy), named rather than trained on."""
    bad = ~np.isin(X, (0, 1)).all(1)
    if bad.any():
        row = _first(bad)
        value = X[row][~np.isin(X[row], (0, 1))][0].item()
        raise DataFileError(f"{path}: {name}'s features are binary (0/1); row {row} has {value!r} "
                            f"({int(bad.sum())} row(s) with other values)")


def _find_texas100(data_dir=None) -> tuple[str, Path]:
    tried = []
    for d in data_dirs(data_dir):
        folder = d / "texas100"
        tried += [folder / "feats.npy", folder / "texas" / "100" / "feats"]
        if (folder / "feats.npy").exists() and (folder / "labels.npy").exists():
            return "npy", folder
        raw = folder / "texas" / "100"
        if (raw / "feats").exists() and (raw / "labels").exists():
            return "raw", raw
    raise _not_found("texas100", tried, "Get dataset_texas.tgz (Shokri et al. 2017; the SELENA "
                     "repository's prepare_dataset.py names the address) and extract it into texas100/.")


def _load_texas100(data_dir=None) -> Arrays:
    """Texas-100 as released by Shokri et al. (``texas/100/feats`` and ``texas/100/labels``,
    comma-separated, labels 1..100) or as SELENA saves it (feats.npy, labels.npy, 0..99)."""
    kind, path = _find_texas100(data_dir)
    if kind == "npy":
        X, y = check_xy(_load_npy(path / "feats.npy"), _load_npy(path / "labels.npy"),
                        f"{path / 'feats.npy'}, {path / 'labels.npy'}", num_classes=100,
                        feature_shape=(TEXAS_FEATURES,))
    else:
        feats = _read_table(path / "feats", n_columns=TEXAS_FEATURES)
        labels = _check_raw_labels(_read_table(path / "labels", n_columns=1), path / "labels", 100)
        X, y = check_xy(feats, labels, f"{path / 'feats'}, {path / 'labels'}", num_classes=100,
                        feature_shape=(TEXAS_FEATURES,))
    _check_binary(X, path, "Texas-100")
    return Arrays(X.astype(np.float32), y)


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: what a dataset is, where it comes from, and how to load it.

    ``num_classes`` and ``feature_shape`` (one example's shape), when given, are checked on
    every load; ``builtin`` is False for datasets added by :func:`register_dataset`.
    """

    name: str
    num_classes: int | None
    description: str
    source: str
    loader: Callable[..., Arrays] = field(repr=False)
    offline: bool = True  # loads without any file the user must fetch
    published_size: tuple[int, int] | None = None  # (examples, of which official test), for datasets to fetch
    feature_shape: tuple[int, ...] | None = None
    builtin: bool = True
    find: Callable[..., object] | None = field(default=None, repr=False)  # raises DatasetNotFoundError if absent
    path: Path | None = None  # the file of a user's npz dataset


DATASETS: dict[str, DatasetInfo] = {
    "toy2d": DatasetInfo("toy2d", 2, "Fig. 1's 2-D problem: red = typical + small atypical cluster, blue = one cluster",
                         "synthetic (sharpmem_lib.data.ToyMixture)", _load_toy2d, feature_shape=(2,)),
    "digits": DatasetInfo("digits", 10, "1,797 real 8x8 handwritten digits",
                          "scikit-learn's load_digits (UCI optical digits), ships in the wheel", _load_digits,
                          feature_shape=(1, 8, 8)),
    "longtail": DatasetInfo("longtail", 10, "long-tailed subpopulations per class, with ground-truth sizes",
                            "synthetic (sharpmem_lib.data.longtail), after Feldman (2020)", _load_longtail),
    "fashion_mnist": DatasetInfo("fashion_mnist", 10, "70,000 28x28 grey images of clothing",
                                 "Xiao et al. 2017; IDX files", _load_fashion_mnist, offline=False,
                                 published_size=(70_000, 10_000), feature_shape=(1, 28, 28),
                                 find=_find_fashion_mnist),
    "fashion_mnist_cpu": DatasetInfo("fashion_mnist_cpu", 10, "7,000 Fashion-MNIST images (a fixed sample), "
                                     "sized for a CPU", "Xiao et al. 2017; IDX files (fashion_mnist's)",
                                     lambda **kw: _load_fashion_mnist_cpu(**kw), offline=False,
                                     published_size=(7_000, 0), feature_shape=(1, 28, 28),
                                     find=lambda data_dir=None: _find_fashion_mnist(data_dir)),
    "cifar10": DatasetInfo("cifar10", 10, "60,000 32x32 colour images", "Krizhevsky 2009; python pickles",
                           lambda **kw: _load_cifar("cifar10", **kw), offline=False, published_size=(60_000, 10_000),
                           feature_shape=(3, 32, 32), find=lambda data_dir=None: _find_cifar("cifar10", data_dir)),
    "cifar100": DatasetInfo("cifar100", 100, "60,000 32x32 colour images, 100 fine classes",
                            "Krizhevsky 2009; python pickles", lambda **kw: _load_cifar("cifar100", **kw),
                            offline=False, published_size=(60_000, 10_000), feature_shape=(3, 32, 32),
                            find=lambda data_dir=None: _find_cifar("cifar100", data_dir)),
    "purchase100": DatasetInfo("purchase100", 100, "197,324 purchase records, 600 binary features",
                               "Shokri et al. 2017 (Kaggle acquire-valued-shoppers)", _load_purchase100, offline=False,
                               published_size=(197_324, 0), feature_shape=(PURCHASE_FEATURES,),
                               find=_find_purchase100),
    "texas100": DatasetInfo("texas100", 100, "67,330 hospital discharge records, 6,169 binary features",
                            "Shokri et al. 2017 (Texas DSHS inpatient data)", _load_texas100, offline=False,
                            published_size=(67_330, 0), feature_shape=(TEXAS_FEATURES,), find=_find_texas100),
}
BUILTIN_DATASETS = tuple(DATASETS)

_DISPLAY_NAMES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                  "purchase100": "Purchase-100", "texas100": "Texas-100", "digits": "scikit-learn's 8×8 digits",
                  "longtail": "the synthetic long-tailed data", "toy2d": "the 2-D toy mixture"}


def display_name(name: str) -> str:
    """A dataset as a reader names it in prose: 'cifar100' -> 'CIFAR-100', 'fashion_mnist_cpu'
    -> 'the 7,000-image Fashion-MNIST sample' (its size: :data:`FASHION_CPU_SIZE`); a dataset the
    library does not know (a user's) keeps its name."""
    if name == "fashion_mnist_cpu":
        return f"the {FASHION_CPU_SIZE:,}-image Fashion-MNIST sample"  # no parentheses: it sits inside some
    return _DISPLAY_NAMES.get(str(name), str(name))

# ------------------------------------------------------------------ bring your own data

NPZ_KEYS = {"X": "features, (n, features) or (n, channels, height, width), numbers, finite",
            "y": "labels, (n,) integers 0..C-1 (not one-hot, not 1-based)",
            "official_test": "optional, (n,) bool: the dataset's own test split (members are then the rest)",
            "group": "optional, (n,) integers: a ground-truth subpopulation id per example"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _check_new_name(name: str, replace: bool) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name={name!r} is not valid; use lower-case letters, digits and '_', starting with a letter")
    if name in BUILTIN_DATASETS:
        raise ValueError(f"name={name!r} is a built-in dataset; choose another name "
                         f"(built-ins: {list(BUILTIN_DATASETS)})")
    if name in DATASETS and not replace:
        raise ValueError(f"dataset {name!r} is already registered; pass replace=True to replace it")


def _checked_user_arrays(info: DatasetInfo, data, source: str) -> Arrays:
    """A user loader's result (``Arrays`` or ``(X, y)``), held to the built-ins' standard."""
    if isinstance(data, tuple) and len(data) == 2:
        data = Arrays(*check_xy(*data, source, num_classes=info.num_classes, feature_shape=info.feature_shape))
    if not isinstance(data, Arrays):
        raise DataFileError(f"{source}: the loader returned {type(data).__name__}; expected Arrays or (X, y)")
    X, y = check_xy(data.X, data.y, source, num_classes=info.num_classes, feature_shape=info.feature_shape)
    official = np.asarray(data.official_test)
    if official.shape != y.shape or official.dtype != bool:
        raise DataFileError(f"{source}: official_test must be a (n,) bool mask; got shape {official.shape}, "
                            f"dtype {official.dtype}")
    if official.all():
        raise DataFileError(f"{source}: official_test marks every example as test; nothing is left to train on")
    group = np.asarray(data.group)
    if group.shape != y.shape or not np.issubdtype(group.dtype, np.integer):
        raise DataFileError(f"{source}: group must be (n,) integers; got shape {group.shape}, dtype {group.dtype}")
    return Arrays(X, y, group.astype(np.int64), official, data.meta)


def register_dataset(name: str, loader: Callable[..., Arrays | tuple], *, num_classes: int | None = None,
                     feature_shape: tuple[int, ...] | None = None, description: str = "", source: str = "",
                     replace: bool = False) -> DatasetInfo:
    """Add a dataset to the registry, so that every chapter and every function that takes a
    dataset name accepts ``name``.

    ``loader(data_dir=None)`` returns :class:`Arrays` or a pair ``(X, y)``; its result is
    checked like every built-in loader's (:func:`check_xy`: shape, dtype, labels 0..C-1,
    finite values), and ``num_classes`` / ``feature_shape`` are enforced when given.
    Partitions for it follow :func:`sharpmem_lib.splits.split_spec`. A registration lives in
    this Python process only; for notebooks run by papermill, save the arrays as
    ``<data_dir>/<name>.npz`` instead (:data:`NPZ_KEYS`), which every process finds by name.
    """
    _check_new_name(name, replace)
    if not callable(loader):
        raise ValueError(f"loader={loader!r} is not valid; it must be a function returning Arrays or (X, y)")
    if num_classes is not None:
        check_positive("num_classes", num_classes, integer=True)
    info = DatasetInfo(name, num_classes, description or f"user dataset {name!r}",
                       source or f"registered in Python ({getattr(loader, '__qualname__', loader)!s})",
                       loader, feature_shape=None if feature_shape is None else tuple(feature_shape), builtin=False)
    DATASETS[name] = info
    return info


def unregister_dataset(name: str) -> None:
    """Remove a dataset added by :func:`register_dataset` (built-ins stay)."""
    if name in BUILTIN_DATASETS:
        raise ValueError(f"dataset {name!r} is built in and cannot be removed")
    DATASETS.pop(name, None)


def load_npz_dataset(path: str | Path) -> Arrays:
    """A dataset saved as one ``.npz`` with the keys of :data:`NPZ_KEYS`, checked."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataFileError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    unknown = sorted(set(arrays) - set(NPZ_KEYS))
    missing = sorted({"X", "y"} - set(arrays))
    if unknown or missing:
        raise DataFileError(f"{path}: " + "; ".join(
            ([f"missing key(s) {missing}"] if missing else []) + ([f"unknown key(s) {unknown}"] if unknown else []))
            + f"; the keys are {list(NPZ_KEYS)}")
    X, y = check_xy(arrays["X"], arrays["y"], path)
    official = arrays.get("official_test", np.zeros(len(y), bool))
    if official.shape != y.shape or official.dtype != bool:
        raise DataFileError(f"{path}: official_test must be a (n,) bool mask; got shape {official.shape}, "
                            f"dtype {official.dtype}")
    if official.all():
        raise DataFileError(f"{path}: official_test marks every example as test; nothing is left to train on")
    group = arrays.get("group", np.full(len(y), -1))
    if group.shape != y.shape or not np.issubdtype(group.dtype, np.integer):
        raise DataFileError(f"{path}: group must be (n,) integers; got shape {group.shape}, dtype {group.dtype}")
    return Arrays(X, y, group.astype(np.int64), official)


def _npz_datasets(data_dir=None) -> dict[str, Path]:
    """``<dir>/<name>.npz`` files with X and y in the data directories (first one wins)."""
    found: dict[str, Path] = {}
    for d in data_dirs(data_dir, strict=False):  # a missing folder holds no dataset (check_dataset_name names it)
        for path in sorted(d.glob("*.npz")) if d.is_dir() else []:
            if path.stem in found or path.stem in BUILTIN_DATASETS or not _NAME.match(path.stem):
                continue
            try:
                if {"X", "y"} <= set(_npz_keys(path)):
                    found[path.stem] = path
            except DataFileError:
                continue  # not a dataset (an unreadable one is reported when it is asked for by name)
    return found


def _npz_keys(path: Path) -> list[str]:
    """The array names in the .npz file ``path``, sorted, without loading the arrays;
    :class:`DataFileError` naming the file if it is no readable .npz."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return sorted(f.files)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataFileError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None


def _npz_loader(name: str) -> Callable[..., Arrays]:
    def load(data_dir=None) -> Arrays:
        path = _npz_datasets(data_dir).get(name)
        if path is None:
            raise _not_found(name, [d / f"{name}.npz" for d in data_dirs(data_dir)],
                             f"Save it with numpy.savez(path, X=..., y=...) (keys: {list(NPZ_KEYS)}).")
        return load_npz_dataset(path)

    return load


def available_datasets(data_dir: str | Path | None = None) -> list[str]:
    """Every dataset name that loads: the registry, plus each ``<name>.npz`` (keys X, y) in a
    data directory, which is registered on the way."""
    for name, path in _npz_datasets(data_dir).items():
        if name not in DATASETS or (not DATASETS[name].builtin and DATASETS[name].source.startswith("npz file")):
            DATASETS[name] = DatasetInfo(name, None, f"user dataset {name!r}", f"npz file {path}",
                                         _npz_loader(name), builtin=False, path=path)
    return list(DATASETS)


_FINGERPRINTS: dict[tuple, str] = {}


def dataset_fingerprint(name: str) -> str | None:
    """A hash of a user dataset's content, for cache keys: a changed ``<name>.npz`` (or a
    re-registered loader returning other arrays) must not reuse results of the old data.
    ``None`` for the built-in datasets, whose files are fixed (md5-checked) or generated."""
    info = DATASETS.get(name)
    if info is None or info.builtin:
        return None
    if info.path is not None:
        stat = info.path.stat()
        memo = (str(info.path), stat.st_size, stat.st_mtime_ns)
        if memo not in _FINGERPRINTS:
            h = hashlib.sha256()
            with open(info.path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            _FINGERPRINTS[memo] = h.hexdigest()
        return _FINGERPRINTS[memo]
    memo = (name, id(info.loader))
    if memo not in _FINGERPRINTS:
        data = load_dataset(name)
        h = hashlib.sha256()
        for array in (data.X, data.y, data.official_test, data.group):
            array = np.ascontiguousarray(array)
            h.update(f"{array.dtype}{array.shape}".encode())
            h.update(array.tobytes())
        _FINGERPRINTS[memo] = h.hexdigest()
    return _FINGERPRINTS[memo]


def check_dataset_name(name: str, data_dir: str | Path | None = None, parameter: str = "dataset") -> None:
    """``ValueError`` naming ``parameter`` and every available dataset unless ``name`` is one."""
    if not isinstance(name, str):
        raise ValueError(f"{parameter}={name!r} is not valid; it must be a dataset name (a string)")
    if name in BUILTIN_DATASETS:
        _refuse_shadowing_npz(name, data_dir)
    available_datasets(data_dir)  # registers this directory's <name>.npz datasets
    here = _npz_datasets(data_dir)
    # an npz dataset registered from another data directory earlier in this process is not one here
    valid = [d for d, info in DATASETS.items()
             if info.builtin or not info.source.startswith("npz file") or d in here]
    if name not in valid:
        data_dirs(data_dir)  # a data_dir that does not exist: say so, rather than list the names found elsewhere
        _explain_unusable_npz(name, data_dir)
    check_choice(parameter, name, valid)


def _refuse_shadowing_npz(name: str, data_dir: str | Path | None) -> None:
    """A user's ``<name>.npz`` dataset named like a built-in one was silently ignored (the
    built-in loaded instead, so a chapter ran on other data than the user meant): refused."""
    for d in data_dirs(data_dir, strict=False):
        path = d / f"{name}.npz"
        if not path.is_file():
            continue
        try:
            keys = set(_npz_keys(path))
        except DataFileError:
            continue  # not a dataset file: nothing is shadowed
        if {"X", "y"} <= keys:
            raise DataFileError(f"{path}: holds a dataset named like the built-in dataset {name!r}, which is what "
                                f"dataset={name!r} loads, so this file would be ignored; rename it (e.g. "
                                f"my_{name}.npz, then dataset: my_{name}) or move it out of the data directory")


def _explain_unusable_npz(name: str, data_dir: str | Path | None) -> None:
    """A ``<name>.npz`` that is there but no dataset (unreadable, or without X and y): say so,
    rather than only listing the valid names."""
    for d in data_dirs(data_dir):
        path = d / f"{name}.npz"
        if not path.is_file():
            continue
        keys = _npz_keys(path)  # raises naming an unreadable file
        if {"X", "y"} <= set(keys):  # a dataset, but its file name is not one a dataset can have
            raise DataFileError(f"{path}: holds a dataset, but {name!r} is not a valid dataset name: "
                                + ("it is a built-in dataset's; rename the file" if name in BUILTIN_DATASETS else
                                   "use lower-case letters, digits and '_', starting with a letter; rename the file"))
        raise DataFileError(f"{path}: holds {keys}, not a dataset; save it with numpy.savez(path, X=..., y=...) "
                            f"(keys: {list(NPZ_KEYS)})")


def locate_dataset(name: str, data_dir: str | Path | None = None) -> None:
    """Check, without reading them, that the files of dataset ``name`` are where the loader
    looks; raises :class:`DatasetNotFoundError` naming the paths and where to get them."""
    check_dataset_name(name, data_dir)
    info = DATASETS[name]
    if info.find is not None and info.builtin:
        info.find(data_dir=data_dir)
    elif not info.builtin and info.source.startswith("npz file") and name not in _npz_datasets(data_dir):
        _npz_loader(name)(data_dir)  # raises naming the paths


# ------------------------------------------------------------------- Feldman & Zhang


def check_feldman_zhang_file(path: str | Path, dataset: str, data: Arrays | None = None) -> None:
    """Reject an influence file that does not belong to ``dataset`` before it is used.

    Feldman & Zhang's file stores ``tr_labels`` and ``tt_labels``, the labels of the
    dataset's official training and test images in order. They must have as many entries as
    the dataset has training / test examples (published sizes, or ``data``), lie in
    0..C-1, and, when ``data`` is given, equal its labels. Raises :class:`DataFileError`.
    """
    path = Path(path)
    info = DATASETS[dataset]
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = sorted({"tr_labels", "tt_labels", "tr_mem"} - set(f.files))
            if missing:
                raise DataFileError(f"{path}: not a Feldman-Zhang influence file (missing {missing})")
            tr, tt = np.asarray(f["tr_labels"]), np.asarray(f["tt_labels"])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, DataFileError):
            raise
        raise DataFileError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    if data is not None:
        want_tr, want_tt = data.y[~data.official_test], data.y[data.official_test]
    elif info.published_size is not None:
        n, n_test = info.published_size
        want_tr, want_tt = np.zeros(n - n_test), np.zeros(n_test)
    else:
        want_tr = want_tt = None
    if want_tr is not None and (len(tr) != len(want_tr) or len(tt) != len(want_tt)):
        raise DataFileError(f"{path}: influence estimates for {len(tr)} training and {len(tt)} test examples, "
                            f"but {dataset!r} has {len(want_tr)} and {len(want_tt)}: the file is for another dataset")
    if info.num_classes is not None and max(tr.max(initial=0), tt.max(initial=0)) >= info.num_classes:
        raise DataFileError(f"{path}: labels up to {max(tr.max(), tt.max())}, but {dataset!r} has "
                            f"{info.num_classes} classes: the file is for another dataset")
    if data is not None and not (np.array_equal(tr, want_tr) and np.array_equal(tt, want_tt)):
        raise DataFileError(f"{path}: its tr_labels/tt_labels differ from the labels of {dataset!r} "
                            f"({int((tr != want_tr).sum())} train, {int((tt != want_tt).sum())} test): "
                            "the file is for another dataset or another ordering")


def dataset_table():
    """The registry as a table (for the book)."""
    import pandas as pd

    return pd.DataFrame([{"dataset": d.name, "classes": d.num_classes, "what": d.description, "source": d.source,
                          "needs a download": "no" if d.offline else "yes"}
                         for d in DATASETS.values()]).set_index("dataset")


FASHION_CPU_SIZE = 7_000  # fashion_mnist_cpu: members 2,500 + validation 500 + 2,000 + 2,000 non-members


def _load_fashion_mnist_cpu(data_dir=None, download: bool = False, checksums: dict | None = None) -> Arrays:
    """A fixed CPU-sized sample of Fashion-MNIST: the first :data:`FASHION_CPU_SIZE` images of
    a seed-0 permutation of all 70,000 (official train and test alike; no official test
    split), the same images on every machine; cut by ``splits.SPLITS['fashion_mnist_cpu']``."""
    full = _load_fashion_mnist(data_dir, download=download, checksums=checksums)
    keep = np.sort(np.random.default_rng(0).permutation(len(full.y))[:FASHION_CPU_SIZE])
    return Arrays(full.X[keep], full.y[keep])


def load_dataset(name: str, data_dir: str | Path | None = None, **kwargs) -> Arrays:
    """Load a dataset by name (built in, registered, or ``<name>.npz`` in a data directory);
    ``kwargs`` go to its loader. Every loader's arrays are checked (:func:`check_xy`)."""
    check_dataset_name(name, data_dir)
    info = DATASETS[name]
    if info.builtin:
        return info.loader(data_dir=data_dir, **kwargs)
    return _checked_user_arrays(info, info.loader(data_dir=data_dir, **kwargs), f"dataset {name!r} ({info.source})")
