"""Memorization and influence (paper §2, §3.2): Feldman & Zhang's subsampling estimator,
influence entropy (eq. 3), memorization buckets and top influencers.

The estimator (Feldman & Zhang 2020) trains M models, each on a random subset of the
training set (70 % in their work). With ``masks[m, i]`` true when model m trained on point
i and ``correct[m, j]`` true when model m classifies point j correctly,

    mem(i)     = P[correct on i | i in]  - P[correct on i | i out]      (eq. 1)
    infl(i, j) = P[correct on j | i in]  - P[correct on j | i out]      (eq. 2)

each probability being the fraction over the models in that group. Both come with the
number of models in each group and a standard error (two independent binomial proportions).

Influence entropy (eq. 3) of a test point j is the entropy of |infl(i, j)| over the training
points i *of j's own class*, normalised to sum to one: low entropy means a few training
points carry the prediction (memorization); high entropy means it rests on many. Buckets
sort test points by entropy: bucket 1 = lowest entropy = most memorization. (The caption of
the paper's Fig. 2 says the reverse; its text and Fig. 3 agree with this order.)

Pure functions of arrays, like :mod:`sklearn.metrics`: this module trains nothing and imports
no engine. The subset models that produce ``masks`` and ``correct`` are trained by
:mod:`sharpmem_lib.subsampling`; chapter 2's buckets are assembled in :mod:`sharpmem_lib.buckets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sharpmem_lib.validation import check_positive

__all__ = [
    "accuracy_by_bucket",
    "mean_by_bucket",
    "Estimate",
    "SameClassInfluence",
    "buckets",
    "influence_entropy",
    "UNMEASURED",
    "influence_scores",
    "load_feldman_zhang",
    "memorization_scores",
]


@dataclass(frozen=True)
class Estimate:
    """A subsampling estimate: ``value`` and its standard error ``se``, with ``n_in`` and
    ``n_out`` the numbers of models that trained on / held out the (training) point."""

    value: np.ndarray
    se: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray


def _check(masks: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    for name, value in (("masks", masks), ("correct", correct)):  # bool casts 0.5 or 2 to True silently
        v = np.asarray(value)
        if v.dtype != bool and not np.isin(v, (0, 1)).all():
            raise ValueError(f"{name} must hold booleans (or 0/1); got dtype {v.dtype} with other values")
    masks, correct = np.asarray(masks, dtype=bool), np.asarray(correct, dtype=bool)
    if masks.ndim != 2 or correct.ndim != 2 or masks.shape[0] != correct.shape[0]:
        raise ValueError(f"masks (models x train) and correct (models x points) must share their first axis; "
                         f"got {masks.shape} and {correct.shape}")
    n_in, n_out = masks.sum(0), (~masks).sum(0)
    if (n_in == 0).any() or (n_out == 0).any():
        raise ValueError(f"{int(((n_in == 0) | (n_out == 0)).sum())} training point(s) were never held out or "
                         "never trained on: train more models")
    return masks, correct


def _difference(p_in: np.ndarray, p_out: np.ndarray, n_in: np.ndarray,
                n_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    se = np.sqrt(p_in * (1 - p_in) / n_in + p_out * (1 - p_out) / n_out)
    return p_in - p_out, se


def memorization_scores(masks: np.ndarray, correct_train: np.ndarray) -> Estimate:
    """mem(i) of eq. 1 for every training point, from ``masks`` (models x train) and
    ``correct_train`` (models x train, each model's correctness on the training points)."""
    masks, correct = _check(masks, correct_train)
    if correct.shape != masks.shape:
        raise ValueError(f"correct_train must be models x train like masks {masks.shape}; got {correct.shape}")
    n_in, n_out = masks.sum(0), (~masks).sum(0)
    p_in = (correct & masks).sum(0) / n_in
    p_out = (correct & ~masks).sum(0) / n_out
    value, se = _difference(p_in, p_out, n_in, n_out)
    return Estimate(value, se, n_in, n_out)


def influence_scores(masks: np.ndarray, correct_test: np.ndarray) -> Estimate:
    """infl(i, j) of eq. 2 as (test x train) arrays, from ``masks`` (models x train) and
    ``correct_test`` (models x test). Two matrix products, so it scales to many models."""
    masks, correct = _check(masks, correct_test)
    m_in = masks.astype(np.float64)
    c = correct.astype(np.float64)
    n_in, n_out = masks.sum(0), (~masks).sum(0)
    p_in = (c.T @ m_in) / n_in  # (test, train)
    p_out = (c.T @ (1.0 - m_in)) / n_out
    value, se = _difference(p_in, p_out, n_in[None, :], n_out[None, :])
    return Estimate(value, se, n_in, n_out)


def influence_entropy(weights: np.ndarray, axis: int = 0) -> np.ndarray:
    """Entropy (nats) of |weights| normalised along ``axis`` (eq. 3), 0 log 0 = 0.

    An all-zero vector (nothing influences the point) is treated as evenly spread, the
    maximum log(n): no single training point carries the prediction.

    Influence estimates may be negative (a training point that hurts the test point); the
    paper's eq. 3 takes p_i = |S_i| / sum |S_i|, so only their magnitude counts, as here.
    ``ValueError`` for what has no entropy: NaN or infinite weights (a NaN used to make the
    whole vector "evenly spread", the maximum entropy), complex or non-numeric weights, a
    scalar, an ``axis`` out of range, or no weights along it.
    """
    raw = np.asarray(weights)
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"weights have dtype {raw.dtype}; influence estimates are real numbers")
    if raw.ndim == 0 or not -raw.ndim <= axis < raw.ndim:
        raise ValueError(f"axis={axis!r} is not valid for weights of shape {raw.shape}; the entropy is taken over "
                         "the training points along one axis")
    if raw.shape[axis] == 0:
        raise ValueError(f"weights of shape {raw.shape} have no training point along axis {axis}")
    if not np.isfinite(raw).all():
        raise ValueError(f"weights hold {int((~np.isfinite(raw)).sum())} NaN or infinite value(s); an influence "
                         "entropy needs finite estimates (leave such test points out, or mark them unmeasured)")
    w = np.abs(raw.astype(np.float64))
    total = w.sum(axis=axis, keepdims=True)
    n = w.shape[axis]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(total > 0, w / total, 1.0 / n)
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=axis)


#: The bucket of test points with no measured influence (every same-class influence estimate
#: zero): kept out of the entropy ranking as a group of their own.
UNMEASURED = 0


def buckets(entropy: np.ndarray, n_buckets: int = 5, measured: np.ndarray | None = None) -> np.ndarray:
    """Equal-count buckets 1..n_buckets by increasing entropy (bucket 1 = lowest entropy =
    most memorization). Ties keep the points' order, so the result is deterministic.

    ``measured``: where False, the point has no measured influence (all its estimates are
    zero, so eq. 3 gives it the evenly-spread maximum log(n_k), the size of its class, by
    convention, not by measurement). Such points get bucket :data:`UNMEASURED` (0) and the
    others are ranked among themselves; otherwise they would fill the top buckets ordered
    by class size and index."""
    check_positive("n_buckets", n_buckets, integer=True)
    entropy = np.asarray(entropy)
    measured = np.ones(len(entropy), bool) if measured is None else np.asarray(measured, dtype=bool)
    if measured.shape != entropy.shape:
        raise ValueError(f"measured has shape {measured.shape}; expected one flag per point {entropy.shape}")
    if np.isnan(entropy[measured].astype(float)).any():  # argsort would rank NaN as the highest entropy
        raise ValueError(f"entropy is NaN at {int(np.isnan(entropy[measured].astype(float)).sum())} measured "
                         "point(s); mark them measured=False or leave them out")
    n = int(measured.sum())
    if n < n_buckets:
        raise ValueError(f"n_buckets={n_buckets} is more than the {n} points with a measured influence to bucket")
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.argsort(entropy[measured], kind="stable")] = np.arange(n)
    out = np.full(len(entropy), UNMEASURED, dtype=np.int64)
    out[measured] = 1 + (ranks * n_buckets) // n
    return out


def _check_bucket_ids(bucket: np.ndarray, n_buckets: int) -> None:
    """Every id in ``bucket`` is :data:`UNMEASURED` (0) or one of 1..``n_buckets``: an id
    outside (a 10-bucket array read with n_buckets=5, a -1 sentinel, 2.5) would be left out
    of every bucket without a word. Booleans are not ids: a mask (``bucket == 1``) would read as
    buckets 0 and 1."""
    check_positive("n_buckets", n_buckets, integer=True)
    if np.asarray(bucket).dtype == bool:
        raise ValueError(f"bucket holds booleans (dtype bool); it must hold integer bucket ids, {UNMEASURED} "
                         f"(unmeasured) or 1..{n_buckets}, such as MemorizationBuckets.bucket (not a mask like "
                         "bucket == 1)")
    kind = np.asarray(bucket).dtype
    if kind.kind not in "iuf":  # strings ('1' is not 1), objects (None), complex: not ids
        raise ValueError(f"bucket holds {kind} values; it must hold integer bucket ids, {UNMEASURED} (unmeasured) or "
                         f"1..{n_buckets}, such as MemorizationBuckets.bucket")
    ids = np.unique(bucket)
    bad = ids[~np.isin(ids, np.arange(n_buckets + 1))]
    if len(bad):
        shown = ", ".join(f"{b:g}" if isinstance(b, (float, np.floating)) else str(b) for b in bad[:5].tolist())
        raise ValueError(f"bucket holds id(s) {shown}{', ...' if len(bad) > 5 else ''} outside the valid range: "
                         f"{UNMEASURED} (unmeasured) or 1..{n_buckets} (n_buckets={n_buckets})")


def accuracy_by_bucket(correct: np.ndarray, bucket: np.ndarray, n_buckets: int = 5) -> np.ndarray:
    """Accuracy in each bucket: ``correct`` (runs, points) bool -> (runs, n_buckets).
    ``bucket``: one id per point, :data:`UNMEASURED` or 1..``n_buckets`` (else ValueError)."""
    correct = np.atleast_2d(np.asarray(correct, dtype=float))
    bucket = np.asarray(bucket)
    if bucket.shape != correct.shape[1:]:  # numpy raised a bare IndexError
        raise ValueError(f"bucket must hold one bucket per point; got shape {bucket.shape} for correct of shape "
                         f"{correct.shape} (runs x points)")
    _check_bucket_ids(bucket, n_buckets)
    return np.stack([correct[:, bucket == b].mean(1) for b in range(1, n_buckets + 1)], axis=1)


def mean_by_bucket(values: np.ndarray, bucket: np.ndarray, n_buckets: int = 5) -> list[float]:
    """Mean of the finite ``values`` in each bucket (NaN for a bucket with none).
    ``bucket``: one id per value, :data:`UNMEASURED` or 1..``n_buckets`` (else ValueError)."""
    values, bucket = np.asarray(values, float), np.asarray(bucket)
    if bucket.shape != values.shape:
        raise ValueError(f"bucket must hold one bucket per value; got shapes {bucket.shape} and {values.shape}")
    _check_bucket_ids(bucket, n_buckets)
    out = []
    for b in range(1, n_buckets + 1):
        v = values[(bucket == b) & np.isfinite(values)]
        out.append(float(v.mean()) if len(v) else float("nan"))
    return out


@dataclass
class SameClassInfluence:
    """Influence restricted to same-class (train, test) pairs, per class, with dataset indices.

    ``blocks[k] = (train_ids, test_ids, infl)`` with ``infl`` of shape
    (len(train_ids), len(test_ids)): the layout of Feldman & Zhang's published file, and all
    eq. 3 needs. ``train_mem`` maps a training id to its memorization score, where known.
    """

    blocks: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    train_mem: dict[int, float] | None = None

    @classmethod
    def from_dense(cls, infl: np.ndarray, test_labels: np.ndarray, train_labels: np.ndarray,
                   test_ids: np.ndarray | None = None, train_ids: np.ndarray | None = None,
                   train_mem: np.ndarray | None = None) -> "SameClassInfluence":
        """From a (test x train) influence matrix, e.g. ``influence_scores(...).value``."""
        infl = np.asarray(infl)
        test_ids = np.arange(infl.shape[0]) if test_ids is None else np.asarray(test_ids)
        train_ids = np.arange(infl.shape[1]) if train_ids is None else np.asarray(train_ids)
        blocks = {}
        for k in np.union1d(np.unique(test_labels), np.unique(train_labels)):
            tr, te = np.flatnonzero(train_labels == k), np.flatnonzero(test_labels == k)
            blocks[int(k)] = (train_ids[tr], test_ids[te], infl[np.ix_(te, tr)].T)
        mem = None if train_mem is None else dict(zip(train_ids.tolist(), np.asarray(train_mem).tolist()))
        return cls(blocks, mem)

    def test_ids(self) -> np.ndarray:
        return np.sort(np.concatenate([te for _, te, _ in self.blocks.values()]))

    def entropy(self) -> tuple[np.ndarray, np.ndarray]:
        """(test ids, influence entropy of each), sorted by test id (eq. 3)."""
        ids, values = [], []
        for tr, te, block in self.blocks.values():
            if len(te) and len(tr):
                ids.append(te)
                values.append(influence_entropy(block, axis=0))
        ids, values = np.concatenate(ids), np.concatenate(values)
        order = np.argsort(ids)
        return ids[order], values[order]

    def _block_of(self, test_id: int) -> tuple[np.ndarray, np.ndarray]:
        for tr, te, block in self.blocks.values():
            pos = np.flatnonzero(te == test_id)
            if len(pos):
                return tr, block[:, pos[0]]
        raise KeyError(f"test id {test_id} is not in any class block")

    def top_influencers(self, test_id: int, k: int = 10, measured_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` same-class training ids with the largest influence on ``test_id``, and
        their influence, largest first (ties by training id). With ``measured_only`` (the
        default) training points whose estimated influence is zero are left out, so fewer
        than ``k`` (none for an unmeasured test point) may come back: ranking zeros would
        show arbitrary images as "most influential" (Fig. 2)."""
        tr, column = self._block_of(test_id)
        if measured_only:
            tr, column = tr[column != 0], column[column != 0]
        order = np.lexsort((tr, -column))[:k]
        return tr[order], column[order]

    def top1_memorization(self, test_ids: np.ndarray | None = None) -> np.ndarray:
        """Memorization score of each test point's top-1 influencer (paper Figs. 3b, 3c);
        NaN where no training point has a positive influence (then there is no top one)."""
        if self.train_mem is None:
            raise ValueError("no memorization scores attached (train_mem)")
        test_ids = self.test_ids() if test_ids is None else np.asarray(test_ids)
        out = np.full(len(test_ids), np.nan)
        for n, j in enumerate(test_ids):
            ids, scores = self.top_influencers(int(j), 1)
            if len(ids) and scores[0] > 0:
                out[n] = self.train_mem[int(ids[0])]
        return out

    def any_influence(self, test_ids: np.ndarray | None = None) -> np.ndarray:
        """Whether any same-class training point has a non-zero estimated influence on each
        test point. Where none has, eq. 3's entropy is the evenly-spread maximum by convention."""
        test_ids = self.test_ids() if test_ids is None else np.asarray(test_ids)
        return np.array([bool(np.any(self._block_of(int(j))[1] != 0)) for j in test_ids])


def load_feldman_zhang(path: str | Path, test_id_offset: int = 0) -> tuple[SameClassInfluence, dict[str, np.ndarray]]:
    """Read Feldman & Zhang's published CIFAR-100 file (``cifar100_infl_matrix.npz``).

    Per class k it holds ``infl_matrix_class{k}`` of shape (train of class k) x (test of
    class k), ``tr_classidx_{k}`` and ``tt_classidx_{k}``: the dataset indices of those rows
    and columns, which we map back to (forgetting ``tt_classidx_k`` silently pairs each
    score with the wrong test image). Also ``tr_mem``, ``tr_labels``, ``tt_labels``.
    ``test_id_offset`` is added to test indices (our CIFAR arrays put the 10,000 official
    test images after the 50,000 training images: pass 50_000). Returns the influence and
    the file's other arrays.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found. Feldman & Zhang's precomputed CIFAR-100 influence and memorization "
            "estimates are published at https://pluskid.github.io/influence-memorization/ "
            "(file cifar100_infl_matrix.npz); pass its path.")
    with np.load(path) as f:
        keys = set(f.files)
        missing = {"tr_mem", "tr_labels", "tt_labels"} - keys
        if missing:
            raise ValueError(f"{path}: not a Feldman-Zhang influence file (missing {sorted(missing)})")
        classes = sorted(int(k[len("infl_matrix_class"):]) for k in keys if k.startswith("infl_matrix_class"))
        blocks = {}
        for k in classes:
            infl, tr, te = f[f"infl_matrix_class{k}"], f[f"tr_classidx_{k}"], f[f"tt_classidx_{k}"]
            if infl.shape != (len(tr), len(te)):
                raise ValueError(f"{path}: infl_matrix_class{k} has shape {infl.shape}, "
                                 f"expected ({len(tr)}, {len(te)}) from tr_classidx_{k}, tt_classidx_{k}")
            blocks[k] = (np.asarray(tr), np.asarray(te) + test_id_offset, np.asarray(infl))
        extra = {name: f[name] for name in ("tr_mem", "tr_labels", "tt_labels")}
    mem = dict(enumerate(extra["tr_mem"].tolist()))
    return SameClassInfluence(blocks, mem), extra
