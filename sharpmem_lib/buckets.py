"""Chapter 2's analysis (paper §3.2, Figs. 2, 3): memorization buckets of a dataset's held-out
test points, and each model's accuracy per bucket.

The equations (influence entropy, eq. 3; equal-count buckets) are in
:mod:`sharpmem_lib.memorization`; the subset models they are estimated from come from
:mod:`sharpmem_lib.subsampling`, or from Feldman & Zhang's published CIFAR-100 file.

What the buckets measure (issue 18 §5):

- Test points with no measured influence (every same-class estimate zero, because every
  subset model classifies them alike) are kept out of the entropy ranking, in their own
  group (bucket :data:`~sharpmem_lib.memorization.UNMEASURED` = 0); eq. 3's convention would
  give them log(n_k), the size of their class, and sort the top buckets by class label.
  :func:`bucket_composition` shows each bucket's classes.
- Influence entropy tracks plain difficulty, the subset models' accuracy on the point
  (``subset_acc``): :func:`difficulty_by_bucket`, :func:`entropy_difficulty`,
  :func:`ground_truth_check` (with a partial correlation) and :func:`gain_within_strata`
  (a method's per-bucket gain inside strata of equal difficulty) let a reader tell
  memorization from difficulty.
- Bucket-pattern comparisons use the highest bucket not at the 100 % ceiling
  (:func:`comparison_bucket`, :func:`pattern_test`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sharpmem_lib.data import check_feldman_zhang_file, resolve_data_file
from sharpmem_lib.experiments import Artifact
from sharpmem_lib.memorization import UNMEASURED, SameClassInfluence, buckets, load_feldman_zhang
from sharpmem_lib.stats import Correlation, PairedTest, correlation, paired_test, paired_tests_by, partial_correlation
from sharpmem_lib.subsampling import SubsamplingConfig, run_subsampling_experiment, subsampling_job
from sharpmem_lib.validation import check_choice

__all__ = ["MemorizationBuckets", "bucket_accuracy_table", "memorization_buckets", "bucket_composition",
           "difficulty_by_bucket", "entropy_difficulty", "ground_truth_check", "difficulty_strata",
           "gain_within_strata", "ceiling_buckets", "comparison_bucket", "pattern_test"]


@dataclass
class MemorizationBuckets:
    """Influence entropy (eq. 3) and buckets of a dataset's held-out test points.

    ``test_ids``: dataset indices (the partition's non-members, validation excluded);
    ``entropy``, ``bucket`` (1 = lowest entropy = most memorization; 0 =
    :data:`~sharpmem_lib.memorization.UNMEASURED`), ``top1`` (memorization score of each test
    point's top-1 influencer), ``measured`` (some same-class influence estimate is non-zero),
    ``labels`` (class) and ``subset_acc`` (the subset models' accuracy on the point, the
    difficulty proxy; NaN with published estimates, which do not include it) align with
    them; ``influence`` is the :class:`~sharpmem_lib.memorization.SameClassInfluence` they
    come from; ``source`` says whose estimates these are.
    """

    test_ids: np.ndarray
    entropy: np.ndarray
    bucket: np.ndarray
    top1: np.ndarray
    influence: SameClassInfluence
    source: str
    measured: np.ndarray
    labels: np.ndarray
    subset_acc: np.ndarray

    @property
    def n_unmeasured(self) -> int:
        return int((~self.measured).sum())


def memorization_buckets(config: SubsamplingConfig, results_dir: str | Path | None = None, *,
                         data_dir: str | Path | None = None, influence_file: str | Path | None = None,
                         progress: bool = True) -> MemorizationBuckets:
    """The buckets of chapter 2 (Figs. 2, 3): from Feldman & Zhang's published file when
    ``influence_file`` is given (CIFAR-100; a relative path is looked up in the data
    directories, and a file for another dataset is rejected), else from ``config``'s cached
    subset models."""
    if influence_file:
        influence_path = resolve_data_file(influence_file, data_dir, what="influence_file")
    job = subsampling_job(config, data_dir)
    data, partition = job.data, job.partition
    if influence_file:
        check_feldman_zhang_file(influence_path, config.dataset, data)
        offset = int((~data.official_test).sum())
        influence, _ = load_feldman_zhang(influence_path, test_id_offset=offset)
        source = f"Feldman & Zhang's published estimates ({influence_file})"
        subset_acc = {}  # the file holds no per-model correctness
    else:
        runs, train_ids, test_ids = run_subsampling_experiment(config, results_dir, progress=progress, job=job)
        influence = SameClassInfluence.from_dense(runs.influence().value, data.y[test_ids], data.y[train_ids],
                                                  test_ids, train_ids, train_mem=runs.memorization().value)
        source = (f"our estimates from {config.n_models} {config.model} models, each trained on "
                  f"{config.fraction:.0%} of the {len(train_ids)} training points of {config.dataset}")
        subset_acc = dict(zip(test_ids.tolist(), runs.correct_test.mean(0).tolist()))
    test_ids, entropy = influence.entropy()
    held_out = np.isin(test_ids, partition.validation, invert=True)  # never score on the validation set
    test_ids, entropy = test_ids[held_out], entropy[held_out]
    measured = influence.any_influence(test_ids)
    return MemorizationBuckets(test_ids, entropy, buckets(entropy, measured=measured),
                               influence.top1_memorization(test_ids), influence, source, measured,
                               np.asarray(data.y)[test_ids],
                               np.array([subset_acc.get(int(j), np.nan) for j in test_ids], dtype=float))


def bucket_accuracy_table(artifacts: dict[tuple[str, int], Artifact], test_ids: np.ndarray, labels: np.ndarray,
                          bucket: np.ndarray, which: str = "best", stratum: np.ndarray | None = None,
                          n_buckets: int = 5) -> pd.DataFrame:
    """Accuracy of each (method, seed) model on the test points of each bucket 1..n_buckets
    (unmeasured points, bucket 0, are in none of them).

    ``test_ids`` are dataset indices, ``labels`` the dataset's labels, ``bucket`` the bucket
    of each test id. Returns one row per (method, seed, bucket) with columns ``acc`` and
    ``points`` (test points in the bucket). With ``stratum`` (e.g. :func:`difficulty_strata`),
    one row per (method, seed, stratum, bucket) instead, for the non-empty cells.
    """
    check_choice("which", which, ["best", "final"])
    bucket = np.asarray(bucket)
    strata = [None] if stratum is None else [int(s) for s in np.unique(stratum) if s != UNMEASURED]
    rows = []
    for (method, seed), art in artifacts.items():
        correct = art.outputs()[f"logits_{which}"][test_ids].argmax(1) == labels[test_ids]
        for s in strata:
            for b in range(1, n_buckets + 1):
                cell = (bucket == b) if s is None else (bucket == b) & (np.asarray(stratum) == s)
                if s is not None and not cell.any():
                    continue
                acc = float(correct[cell].mean()) if cell.any() else float("nan")
                rows.append({"method": method, "seed": seed, **({} if s is None else {"stratum": s}), "bucket": b,
                             "acc": acc, "points": int(cell.sum())})
    return pd.DataFrame(rows)


def bucket_composition(bucket: np.ndarray, labels: np.ndarray, n_buckets: int = 5) -> pd.DataFrame:
    """How many test points of each class every bucket holds (rows "unmeasured", 1..n_buckets;
    one column per class, and "total"): a bucket that holds only a few classes is sorted by
    class, not by memorization."""
    bucket, labels = np.asarray(bucket), np.asarray(labels)
    if bucket.shape != labels.shape:
        raise ValueError(f"bucket {bucket.shape} and labels {labels.shape} must have one entry per test point")
    classes = np.unique(labels)
    groups = [UNMEASURED, *range(1, n_buckets + 1)]
    table = pd.DataFrame([[int(((bucket == g) & (labels == k)).sum()) for k in classes] for g in groups],
                         index=pd.Index(["unmeasured" if g == UNMEASURED else g for g in groups], name="bucket"),
                         columns=[int(k) if np.issubdtype(classes.dtype, np.integer) else k for k in classes])
    table["total"] = table.sum(axis=1)
    return table


def difficulty_by_bucket(mb: MemorizationBuckets, n_buckets: int = 5) -> pd.DataFrame:
    """Influence entropy and the difficulty proxy side by side, per bucket (and the
    unmeasured group): test points, mean entropy, and the subset models' mean accuracy on
    them (eq. 1's "P[correct]" over all subset models; low = hard)."""
    rows = []
    for g in (UNMEASURED, *range(1, n_buckets + 1)):
        inside = mb.bucket == g
        rows.append({"bucket": "unmeasured" if g == UNMEASURED else g, "test points": int(inside.sum()),
                     "mean entropy": float(mb.entropy[inside].mean()) if inside.any() and g != UNMEASURED
                     else float("nan"),
                     "mean subset-model accuracy": float(np.nanmean(mb.subset_acc[inside]))
                     if inside.any() and np.isfinite(mb.subset_acc[inside]).any() else float("nan")})
    return pd.DataFrame(rows).set_index("bucket")


def entropy_difficulty(mb: MemorizationBuckets, method: str = "spearman") -> Correlation:
    """Correlation of influence entropy with the subset models' accuracy, over the measured
    test points: how much of what entropy ranks is plain difficulty."""
    return correlation(mb.entropy[mb.measured], mb.subset_acc[mb.measured], method)


def ground_truth_check(mb: MemorizationBuckets, size: np.ndarray, method: str = "spearman") -> dict[str, Correlation]:
    """On data with known subpopulation sizes (``size``, aligned with ``mb.test_ids``), over
    the measured test points: does entropy predict the size (``"entropy"``), does difficulty
    alone (``"difficulty"``: the subset models' accuracy), and does entropy beyond difficulty
    (``"entropy | difficulty"``: the partial correlation,
    :func:`~sharpmem_lib.stats.partial_correlation`)?"""
    size = np.asarray(size, dtype=float)
    if size.shape != mb.entropy.shape:
        raise ValueError(f"size has shape {size.shape}; expected one per test point {mb.entropy.shape}")
    m = mb.measured
    return {"entropy": correlation(mb.entropy[m], size[m], method),
            "difficulty": correlation(mb.subset_acc[m], size[m], method),
            "entropy | difficulty": partial_correlation(mb.entropy[m], size[m], mb.subset_acc[m], method)}


def difficulty_strata(subset_acc: np.ndarray, measured: np.ndarray, n_strata: int = 3) -> np.ndarray:
    """Equal-count strata of the measured test points by the subset models' accuracy on them
    (1 = hardest; unmeasured points and points without an accuracy get 0)."""
    subset_acc = np.asarray(subset_acc, dtype=float)
    known = np.asarray(measured, dtype=bool) & np.isfinite(subset_acc)
    return buckets(np.where(known, subset_acc, 0.0), n_strata, measured=known)


def gain_within_strata(table: pd.DataFrame, method: str, baseline: str = "sgd") -> pd.DataFrame:
    """``method`` − ``baseline`` per bucket inside each difficulty stratum, paired by seed
    (:func:`~sharpmem_lib.stats.paired_test`), from :func:`bucket_accuracy_table` with
    ``stratum``. One row per (stratum, bucket): ``gain``, ``ci95_low``, ``ci95_high``,
    ``p_value``, ``seeds``, ``points``. If the gain by bucket shrinks inside a stratum as it
    does overall, it follows memorization, not difficulty."""
    if "stratum" not in table:
        raise ValueError("table has no 'stratum' column; build it with bucket_accuracy_table(..., stratum=...)")
    rows = []
    for stratum, part in table.groupby("stratum", sort=True):
        points = part.groupby("bucket")["points"].first()
        for b, t in paired_tests_by(part, method, baseline, "acc", "bucket").items():
            rows.append({"stratum": int(stratum), "bucket": int(b), "gain": t.estimate, "ci95_low": t.ci_low,
                         "ci95_high": t.ci_high, "p_value": t.p_value, "seeds": t.n, "points": int(points[b])})
    return pd.DataFrame(rows)


def ceiling_buckets(table: pd.DataFrame, metric: str = "acc", ceiling: float = 1.0) -> list[int]:
    """The buckets where every method and seed scores ``ceiling`` (100 %): no method can
    differ there, so a comparison with such a bucket is empty."""
    low = table.groupby("bucket")[metric].min()
    return [int(b) for b, v in low.items() if v >= ceiling]


def comparison_bucket(table: pd.DataFrame, low: int = 1, metric: str = "acc", ceiling: float = 1.0) -> int | None:
    """The bucket a pattern "larger in bucket ``low``" is compared with: the highest bucket
    above ``low`` that is not at the ceiling (:func:`ceiling_buckets`); None when the ceiling
    covers every bucket above ``low``, so the comparison is empty."""
    at = set(ceiling_buckets(table, metric, ceiling))
    open_ = [int(b) for b in table["bucket"].unique() if b > low and int(b) not in at]
    return max(open_) if open_ else None


def pattern_test(table: pd.DataFrame, method: str, baseline: str = "sgd", low: int = 1,
                 metric: str = "acc", ceiling: float = 1.0) -> tuple[int | None, PairedTest | None]:
    """Is ``method``'s gain over ``baseline`` larger in bucket ``low`` than in the comparison
    bucket (:func:`comparison_bucket`)? The paired test, by seed, of
    (gain in ``low``) − (gain in the comparison bucket). Returns (comparison bucket, test), or
    (None, None) when the ceiling leaves no bucket to compare with."""
    high = comparison_bucket(table, low, metric, ceiling)
    if high is None:
        return None, None
    wide = table[table["bucket"].isin([low, high])].pivot_table(index="seed", columns=["method", "bucket"],
                                                                 values=metric)
    gain = {b: wide[(method, b)] - wide[(baseline, b)] for b in (low, high)}
    return high, paired_test(gain[low].to_numpy(float), gain[high].to_numpy(float))
