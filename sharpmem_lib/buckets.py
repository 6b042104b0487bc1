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
- Entropy is divided by its class's maximum, log(n_k) (:func:`normalized_entropy`): with
  equal class sizes (the paper's CIFAR-100) that is the paper's order; with a random member
  set, whose classes differ in size, raw eq. 3 sorts the buckets by class size.
- Bucket-pattern comparisons use the highest bucket not at the 100 % ceiling
  (:func:`comparison_bucket`, :func:`pattern_test`).

How precise the estimates are (issue 16): each influence estimate (eq. 2) is a difference of
two proportions over the models that did / did not train on the point, with the binomial
standard error of :func:`sharpmem_lib.memorization.influence_scores`;
:func:`top_influence_precision` and :func:`influence_precision` report it per test point and
per bucket, beside each test point's largest influence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sharpmem_lib.data import check_feldman_zhang_file, display_name, resolve_data_file
from sharpmem_lib.experiments import Artifact, ExperimentConfig, experiment_config
from scipy.stats import norm

from sharpmem_lib.memorization import UNMEASURED, SameClassInfluence, _check_bucket_ids, buckets, load_feldman_zhang
from sharpmem_lib.stats import Correlation, PairedTest, correlation, paired_test, paired_tests_by, partial_correlation
from sharpmem_lib.subsampling import SubsamplingConfig, run_subsampling_experiment, subsampling_job
from sharpmem_lib.validation import check_choice

__all__ = ["MemorizationBuckets", "bucket_accuracy_table", "memorization_buckets", "bucket_composition",
           "difficulty_by_bucket", "entropy_difficulty", "ground_truth_check", "difficulty_strata",
           "gain_within_strata", "ceiling_buckets", "comparison_bucket", "pattern_test", "BucketStudyConfig",
           "top_influence_precision", "influence_precision", "class_names", "FASHION_MNIST_CLASSES",
           "normalized_entropy", "class_sizes",
           "BucketStudy", "run_bucket_study", "top1_table", "subpopulation_table", "bucket_tests", "bucket_roles",
           "bucket_family", "bucket_numbers", "near_unmeasured_share", "NEAR_UNMEASURED_AGREE",
           "FIGURES"]


@dataclass
class MemorizationBuckets:
    """Influence entropy (eq. 3) and buckets of a dataset's held-out test points.

    ``test_ids``: dataset indices (the partition's non-members, validation excluded);
    ``entropy`` (eq. 3 over log(n_k): :func:`normalized_entropy`, the paper's order when
    classes are of equal size), ``bucket`` (1 = lowest entropy = most memorization; 0 =
    :data:`~sharpmem_lib.memorization.UNMEASURED`), ``top1`` (memorization score of each test
    point's top-1 influencer), ``measured`` (some same-class influence estimate is non-zero),
    ``labels`` (class) and ``subset_acc`` (the subset models' accuracy on the point, the
    difficulty proxy; NaN with published estimates, which do not include it) align with
    them; ``influence`` is the :class:`~sharpmem_lib.memorization.SameClassInfluence` they
    come from; ``source`` says whose estimates these are. ``top1_influence`` (each test
    point's largest same-class influence), ``top1_se`` (its standard error) and
    ``median_se`` (the median standard error of the point's same-class estimates) come from
    :func:`top_influence_precision`; NaN where unknown (published estimates hold no standard
    errors) and for unmeasured points.
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
    top1_influence: np.ndarray | None = None
    top1_se: np.ndarray | None = None
    median_se: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("top1_influence", "top1_se", "median_se"):
            if getattr(self, name) is None:
                setattr(self, name, np.full(len(self.test_ids), np.nan))

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
        precision = None  # nor standard errors
    else:
        runs, train_ids, test_ids = run_subsampling_experiment(config, results_dir, progress=progress, job=job)
        estimate = runs.influence()
        influence = SameClassInfluence.from_dense(estimate.value, data.y[test_ids], data.y[train_ids],
                                                  test_ids, train_ids, train_mem=runs.memorization().value)
        precision = dict(zip(test_ids.tolist(), zip(*top_influence_precision(
            estimate.value, estimate.se, data.y[test_ids], data.y[train_ids]))))
        model = {"mlp": "MLP", "fc": "fully connected", "cnn": "CNN", "wrn16_8": "WRN-16-8"}.get(config.model,
                                                                                              config.model)
        source = (f"our estimates from {config.n_models:,} {model} models, each trained on "
                  f"{config.fraction:.0%} of the {len(train_ids):,} training points of {display_name(config.dataset)}")
        subset_acc = dict(zip(test_ids.tolist(), runs.correct_test.mean(0).tolist()))
    test_ids, entropy = influence.entropy()
    held_out = np.isin(test_ids, partition.validation, invert=True)  # never score on the validation set
    test_ids = test_ids[held_out]  # ranked by eq. 3 over log(n_k), so that unequal class sizes do not sort them
    entropy = normalized_entropy(entropy[held_out], class_sizes(influence, test_ids))
    measured = influence.any_influence(test_ids)
    nan3 = (np.nan, np.nan, np.nan)
    top, top_se, median_se = (np.array([(precision or {}).get(int(j), nan3)[c] if m else np.nan
                                        for j, m in zip(test_ids, measured)], dtype=float) for c in range(3))
    return MemorizationBuckets(test_ids, entropy, buckets(entropy, measured=measured),
                               influence.top1_memorization(test_ids), influence, source, measured,
                               np.asarray(data.y)[test_ids],
                               np.array([subset_acc.get(int(j), np.nan) for j in test_ids], dtype=float),
                               top, top_se, median_se)


def class_sizes(influence: SameClassInfluence, test_ids: np.ndarray) -> np.ndarray:
    """n_k for each test id: the number of same-class training points its entropy is over."""
    size = {int(j): len(tr) for tr, te, _ in influence.blocks.values() for j in te}
    return np.array([size[int(j)] for j in test_ids], dtype=np.int64)


def normalized_entropy(entropy: np.ndarray, n_k: np.ndarray) -> np.ndarray:
    """Influence entropy (eq. 3) divided by its maximum log(n_k), the entropy of influence
    spread evenly over the n_k same-class training points: in [0, 1] (0 where n_k = 1).

    Where every class has the same number of training points (Feldman & Zhang's CIFAR-100
    file: 500 each) this is eq. 3 times one constant, so it ranks test points exactly as the
    paper does. Where class sizes differ (a random member set: fashion_mnist_cpu's classes
    hold 240-266 of the 2,500 members), eq. 3's spread-out values sit near log(n_k), and the
    top buckets would fill with the largest classes; dividing by log(n_k) removes that."""
    entropy, n_k = np.asarray(entropy, dtype=float), np.asarray(n_k)
    if entropy.shape != n_k.shape or (n_k < 1).any():
        raise ValueError(f"n_k must hold a class size >= 1 per entropy value; got shapes {n_k.shape} and "
                         f"{entropy.shape}, smallest {n_k.min() if n_k.size else None}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_k > 1, entropy / np.log(np.maximum(n_k, 2)), 0.0)


def top_influence_precision(value: np.ndarray, se: np.ndarray, test_labels: np.ndarray,
                            train_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each test point (row of the (test x train) ``value`` and ``se`` of
    :func:`~sharpmem_lib.memorization.influence_scores`), over the training points of its own
    class (eq. 3's set): its largest influence, that estimate's standard error (ties: the
    first training column, i.e. the lowest training id when ids are sorted), and the median
    standard error of all its same-class estimates. NaN for a test point whose class has no
    training point."""
    value, se = np.asarray(value, dtype=float), np.asarray(se, dtype=float)
    test_labels, train_labels = np.asarray(test_labels), np.asarray(train_labels)
    if value.shape != se.shape or value.shape != (len(test_labels), len(train_labels)):
        raise ValueError(f"value {value.shape} and se {se.shape} must be (test, train) = "
                         f"({len(test_labels)}, {len(train_labels)})")
    top, top_se, median_se = (np.full(len(test_labels), np.nan) for _ in range(3))
    for k in np.unique(test_labels):
        te, tr = np.flatnonzero(test_labels == k), np.flatnonzero(train_labels == k)
        if not len(tr):
            continue
        v, e = value[np.ix_(te, tr)], se[np.ix_(te, tr)]
        best = v.argmax(axis=1)
        top[te], top_se[te] = v[np.arange(len(te)), best], e[np.arange(len(te)), best]
        median_se[te] = np.median(e, axis=1)
    return top, top_se, median_se


def influence_precision(mb: MemorizationBuckets, n_buckets: int = 5, alpha: float = 0.05) -> pd.DataFrame:
    """How precise the influence estimates are, per bucket and over all measured test points:
    the median standard error of a same-class influence estimate, the median largest
    influence and its standard error, and the share of test points whose largest influence
    is resolved from zero: z = influence / SE above the one-sided Bonferroni critical value
    over the n_k same-class training points it was picked from (z > Φ⁻¹(1 − alpha / n_k)),
    so that noise alone passes with probability at most ``alpha`` per test point. NaN where
    the estimates hold no standard errors (published files)."""
    n_k = {int(k): int(len(tr)) for k, (tr, _, _) in mb.influence.blocks.items()} if mb.influence else {}
    critical = np.array([norm.isf(alpha / n_k[int(k)]) if n_k.get(int(k)) else np.nan for k in mb.labels])
    with np.errstate(divide="ignore", invalid="ignore"):
        resolved = np.where(mb.top1_se > 0, mb.top1_influence / mb.top1_se > critical, False)
    known = np.isfinite(mb.top1_se)
    rows = []
    for g in (*range(1, n_buckets + 1), "all measured"):
        inside = mb.measured & ((mb.bucket == g) if g != "all measured" else True)
        have = inside & known
        rows.append({"bucket": g, "test points": int(inside.sum()),
                     "median SE of an estimate": float(np.median(mb.median_se[have])) if have.any() else np.nan,
                     "median largest influence": float(np.median(mb.top1_influence[have])) if have.any() else np.nan,
                     "its median SE": float(np.median(mb.top1_se[have])) if have.any() else np.nan,
                     "share resolved from zero": float(resolved[have].mean()) if have.any() else np.nan})
    return pd.DataFrame(rows).set_index("bucket")


NEAR_UNMEASURED_AGREE = 0.99
"""A measured test point is *nearly unmeasured* when the subset models agree on whether they
classify it correctly in at least this share of cases (:func:`near_unmeasured_share`)."""


def near_unmeasured_share(mb: MemorizationBuckets, n_buckets: int = 5,
                          agree: float = NEAR_UNMEASURED_AGREE) -> dict[int, float]:
    """Per bucket 1..``n_buckets``, the share of its test points that are nearly unmeasured:
    the subset models' accuracy on the point (``mb.subset_acc``) is at least ``agree`` or at
    most 1 − ``agree``, so at most a share 1 − ``agree`` of the models disagree with the rest
    and every influence estimate (eq. 2) of the point rests on those few. An unmeasured point
    (all models agree) is the limit, and is in no bucket. NaN where the estimates hold no
    per-model correctness (published files) or the bucket is empty."""
    acc = np.asarray(mb.subset_acc, float)
    with np.errstate(invalid="ignore"):
        near = np.minimum(acc, 1 - acc) <= 1 - agree + 1e-12
    out = {}
    for b in range(1, n_buckets + 1):
        inside = (np.asarray(mb.bucket) == b) & np.isfinite(acc)
        out[b] = float(near[inside].mean()) if inside.any() else float("nan")
    return out


def bucket_accuracy_table(artifacts: dict[tuple[str, int], Artifact], test_ids: np.ndarray, labels: np.ndarray,
                          bucket: np.ndarray, which: str = "best", stratum: np.ndarray | None = None,
                          n_buckets: int = 5) -> pd.DataFrame:
    """Accuracy of each (method, seed) model on the test points of each bucket 1..n_buckets
    (unmeasured points, bucket 0, are in none of them).

    ``test_ids`` are dataset indices, ``labels`` the dataset's labels, ``bucket`` the bucket
    of each test id. Returns one row per (method, seed, bucket) with columns ``acc``,
    ``points`` (test points in the bucket) and ``status`` (``complete``, or ``diverged:
    <reason>`` for a target given as its DivergedError, whose ``acc`` is NaN: shown, and
    left out of every paired test, which drops pairs with a NaN side). With ``stratum`` (e.g.
    :func:`difficulty_strata`), one row per (method, seed, stratum, bucket) instead, for the
    non-empty cells.
    """
    check_choice("which", which, ["best", "final"])
    bucket = np.asarray(bucket)
    _check_bucket_ids(bucket, n_buckets)  # a bool mask or an id outside 0..n_buckets: named, not dropped
    strata = [None] if stratum is None else [int(s) for s in np.unique(stratum) if s != UNMEASURED]
    rows = []
    for (method, seed), art in artifacts.items():
        reason = getattr(art, "reason", None)  # a DivergedError (try_run_experiment): shown, NaN accuracy
        correct = (None if reason is not None
                   else art.outputs()[f"logits_{which}"][test_ids].argmax(1) == labels[test_ids])
        for s in strata:
            for b in range(1, n_buckets + 1):
                cell = (bucket == b) if s is None else (bucket == b) & (np.asarray(stratum) == s)
                if s is not None and not cell.any():
                    continue
                acc = float(correct[cell].mean()) if cell.any() and correct is not None else float("nan")
                rows.append({"method": method, "seed": seed, **({} if s is None else {"stratum": s}), "bucket": b,
                             "acc": acc, "points": int(cell.sum()),
                             "status": "complete" if reason is None else f"diverged: {reason}"})
    return pd.DataFrame(rows)


#: Fashion-MNIST's classes by label (Zalando's fashion-mnist README, "Labels").
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
_CLASS_NAMES = {"fashion_mnist": FASHION_MNIST_CLASSES, "fashion_mnist_cpu": FASHION_MNIST_CLASSES}


def class_names(dataset: str) -> dict[int, str] | None:
    """Label -> class name for datasets whose labels have names (Fashion-MNIST), else None
    (digits' labels are their names)."""
    names = _CLASS_NAMES.get(dataset)
    return None if names is None else dict(enumerate(names))


def bucket_composition(bucket: np.ndarray, labels: np.ndarray, n_buckets: int = 5,
                       names: dict[int, str] | None = None) -> pd.DataFrame:
    """How many test points of each class every bucket holds (rows "unmeasured", 1..n_buckets;
    one column per class, and "total"): a bucket that holds only a few classes is sorted by
    class, not by memorization. ``names`` (e.g. :func:`class_names`) label the columns."""
    bucket, labels = np.asarray(bucket), np.asarray(labels)
    if bucket.shape != labels.shape:
        raise ValueError(f"bucket {bucket.shape} and labels {labels.shape} must have one entry per test point")
    _check_bucket_ids(bucket, n_buckets)
    classes = np.unique(labels)
    groups = [UNMEASURED, *range(1, n_buckets + 1)]
    table = pd.DataFrame([[int(((bucket == g) & (labels == k)).sum()) for k in classes] for g in groups],
                         index=pd.Index(["unmeasured" if g == UNMEASURED else g for g in groups], name="bucket"),
                         columns=[int(k) if np.issubdtype(classes.dtype, np.integer) else k for k in classes])
    table["total"] = table.sum(axis=1)
    return table.rename(columns=names) if names else table


def difficulty_by_bucket(mb: MemorizationBuckets, n_buckets: int = 5) -> pd.DataFrame:
    """Influence entropy and the difficulty proxy side by side, per bucket (and the
    unmeasured group): test points, mean entropy (over log(n_k)), and the subset models' mean accuracy on
    them (eq. 1's "P[correct]" over all subset models; low = hard)."""
    rows = []
    for g in (UNMEASURED, *range(1, n_buckets + 1)):
        inside = mb.bucket == g
        rows.append({"bucket": "unmeasured" if g == UNMEASURED else g, "test points": int(inside.sum()),
                     "mean entropy / log(n_k)": float(mb.entropy[inside].mean()) if inside.any() and g != UNMEASURED
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
                                                                 values=metric, dropna=False)  # keep diverged (NaN)
    gain = {b: wide[(method, b)] - wide[(baseline, b)] for b in (low, high)}
    return high, paired_test(gain[low].to_numpy(float), gain[high].to_numpy(float))


# ------------------------------------------------------------------ chapter 2's study


@dataclass(frozen=True)
class BucketStudyConfig:
    """Everything chapter 2 trains: the subset models of the influence estimates
    (``subset_recipe``, ``n_models`` of them on ``fraction`` of the members), the SGD, SAM and
    SWA targets (``recipe``, ``seeds`` each, knobs ``sam_rho``, ``swa_start``, ``swa_lr``), and
    the ground-truth check's ``ground_truth_models`` subset models on ``ground_truth_dataset``
    ("" to skip it) with ``ground_truth_recipe`` (:mod:`sharpmem_lib.recipes`)."""

    dataset: str
    subset_recipe: str
    recipe: str
    n_models: int = 1000
    fraction: float = 0.7
    seeds: int = 3
    sam_rho: float = 0.1
    swa_start: float = 0.5
    swa_lr: float = 0.02
    ground_truth_dataset: str = "longtail"
    ground_truth_recipe: str = "digits_mlp_subset"
    ground_truth_models: int = 1000

    METHODS = ("sgd", "sam", "swa")

    def __post_init__(self) -> None:
        from sharpmem_lib.recipes import get_recipe
        from sharpmem_lib.validation import check_positive

        for name in ("subset_recipe", "recipe", "ground_truth_recipe"):
            get_recipe(getattr(self, name))
        check_positive("seeds", self.seeds, integer=True)
        check_positive("ground_truth_models", self.ground_truth_models, integer=True)

    def _subsets(self, dataset: str, recipe: str, n_models: int) -> SubsamplingConfig:
        from sharpmem_lib.recipes import get_recipe

        r = get_recipe(recipe)
        return SubsamplingConfig(dataset, r.model, r.train, n_models=n_models, fraction=self.fraction,
                                 model_kwargs=dict(r.model_kwargs))

    def subsampling(self) -> SubsamplingConfig:
        """The subset models of the influence estimates (eqs. 1-2)."""
        return self._subsets(self.dataset, self.subset_recipe, self.n_models)

    def ground_truth(self) -> SubsamplingConfig | None:
        """The subset models on the ground-truth data, or None when the check is skipped."""
        if not self.ground_truth_dataset:
            return None
        return self._subsets(self.ground_truth_dataset, self.ground_truth_recipe, self.ground_truth_models)

    def targets(self) -> dict[tuple[str, int], ExperimentConfig]:
        """The (method, seed) -> target of Fig. 3a."""
        knobs = {"sam_rho": self.sam_rho, "swa_start": self.swa_start, "swa_lr": self.swa_lr}
        return {(m, s): experiment_config(self.recipe, self.dataset, m, s, **knobs)
                for m in self.METHODS for s in range(self.seeds)}


@dataclass
class BucketStudy:
    """Chapter 2's results: the ``data``, its ``buckets``, the targets' ``artifacts`` keyed
    (method, seed), their accuracy per bucket (``table``, :func:`bucket_accuracy_table`) and
    per difficulty stratum and bucket (``strata_table``; None without a difficulty proxy),
    and the ground-truth check's buckets and subpopulation sizes (None when skipped)."""

    config: BucketStudyConfig
    data: object
    buckets: MemorizationBuckets
    artifacts: dict
    table: pd.DataFrame
    strata_table: pd.DataFrame | None
    ground_truth: MemorizationBuckets | None
    subpop_size: np.ndarray | None

    @property
    def diverged(self) -> dict:
        """(method, seed) -> reason, for each target that diverged (its ``artifacts`` entry is
        its DivergedError; its rows in ``table`` have NaN accuracy and a ``diverged`` status)."""
        from sharpmem_lib.experiments import diverged_runs

        return diverged_runs(self.artifacts)

    def diverged_table(self) -> pd.DataFrame:
        """The diverged targets with their status, for the chapter (empty when none diverged)."""
        from sharpmem_lib.experiments import diverged_table

        return diverged_table(self.artifacts)


def run_bucket_study(config: BucketStudyConfig, results_dir: str | Path | None = None, *,
                     data_dir: str | Path | None = None, influence_file: str | Path | None = None,
                     progress: bool = True) -> BucketStudy:
    """Train (or read) chapter 2's subset models and targets and return its results."""
    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.experiments import train_targets

    data = load_dataset(config.dataset, data_dir=data_dir)
    mb = memorization_buckets(config.subsampling(), results_dir, data_dir=data_dir, influence_file=influence_file,
                              progress=progress)
    # a diverged target is kept as its DivergedError: NaN rows in the tables, out of the paired tests
    artifacts = train_targets(config.targets(), results_dir, data_dir=data_dir, progress=progress)
    y = np.asarray(data.y)
    table = bucket_accuracy_table(artifacts, mb.test_ids, y, mb.bucket)
    strata = difficulty_strata(mb.subset_acc, mb.measured)
    strata_table = (bucket_accuracy_table(artifacts, mb.test_ids, y, mb.bucket, stratum=strata)
                    if (strata > 0).any() else None)
    gt, size = None, None
    if config.ground_truth() is not None:
        gt = memorization_buckets(config.ground_truth(), results_dir, data_dir=data_dir, progress=progress)
        size = load_dataset(config.ground_truth_dataset, data_dir=data_dir).meta["subpop_size"][gt.test_ids]
    return BucketStudy(config, data, mb, artifacts, table, strata_table, gt, size)


def top1_table(mb: MemorizationBuckets, n_buckets: int = 5) -> pd.DataFrame:
    """Per bucket: the mean memorization score (eq. 1) of the test points' top-1
    influencers, the test points, and how many of them have a measured influence."""
    from sharpmem_lib.memorization import mean_by_bucket

    return pd.DataFrame({"bucket": range(1, n_buckets + 1),
                         "mean top-1 memorization": np.round(mean_by_bucket(mb.top1, mb.bucket, n_buckets), 3),
                         "test points": [int((mb.bucket == b).sum()) for b in range(1, n_buckets + 1)],
                         "with a measured influence": [int(mb.measured[mb.bucket == b].sum())
                                                       for b in range(1, n_buckets + 1)]}).set_index("bucket")


def subpopulation_table(gt: MemorizationBuckets, size: np.ndarray, n_buckets: int = 5) -> pd.DataFrame:
    """Ground truth per entropy bucket: median subpopulation size and the share of test
    points from subpopulations of at most 5 examples."""
    return pd.DataFrame({"bucket": range(1, n_buckets + 1),
                         "median subpopulation size": [float(np.median(size[gt.bucket == b])) if (gt.bucket == b).any()
                                                       else float("nan") for b in range(1, n_buckets + 1)],
                         "share from subpopulations of size <= 5": [float(np.mean(size[gt.bucket == b] <= 5))
                                                                    if (gt.bucket == b).any() else float("nan")
                                                                    for b in range(1, n_buckets + 1)]}
                        ).set_index("bucket").round(2)


def bucket_tests(study: BucketStudy) -> tuple[dict, dict]:
    """Chapter 2's family of tests and the paper's signs: SAM and SWA − SGD per bucket,
    paired by seed (``(method, b)``, +: flat minima gain, most in bucket 1), and the trend of
    top-1 memorization across buckets over test points (``"top1"``, −: it falls)."""
    from sharpmem_lib.stats import trend_test

    tests = {(m, b): t for m in ("sam", "swa") for b, t in paired_tests_by(study.table, m, "sgd", "acc",
                                                                             "bucket").items()}
    top = max((b for _, b in tests), default=None)
    # the paper (§3.2): "for test data points in bucket 5, there is minimal performance gain": no direction
    expected = {k: 0 if k[1] == top else 1 for k in tests}
    for m in ("sam", "swa"):  # the claim itself: the gain is larger in bucket 1 than in the highest open bucket
        high, t = pattern_test(study.table, m)
        if high is not None:
            tests[(m, "pattern")], expected[(m, "pattern")] = t, 1
    mb = study.buckets
    return ({**tests, "top1": trend_test(mb.bucket, mb.top1)}, {**expected, "top1": -1})


def bucket_family(study: BucketStudy) -> dict:
    """:func:`bucket_tests` with :func:`bucket_roles`, as the keyword arguments of
    :func:`~sharpmem_lib.stats.holm_verdicts`: ``holm_verdicts(**bucket_family(study))``."""
    tests, expected = bucket_tests(study)
    return {"tests": tests, "expected": expected, **bucket_roles(study, tests)}


def bucket_roles(study: BucketStudy, tests: dict) -> dict[str, list]:
    """Which of :func:`bucket_tests` are exploratory and which empty, for
    :func:`~sharpmem_lib.stats.holm_verdicts` (``**bucket_roles(study, tests)``). Confirmatory
    (the Holm family): each method in bucket 1 and bucket 1 against the highest bucket not at
    the ceiling (``(m, "pattern")``). Exploratory: buckets 2.. (the paper: they
    "interpolate"; the highest has no paper direction), and the top-1 trend (``"top1"``):
    its rank test treats the test points as independent, but their memorization scores come
    from the same subset models and many share one top influencer, so its p is optimistic
    and may decide no claim. Empty: buckets where every run scores 100 %
    (:func:`ceiling_buckets`), which no method can change."""
    ceiling = set(ceiling_buckets(study.table))
    empty = [k for k in tests if isinstance(k, tuple) and k[1] in ceiling]
    exploratory = [k for k in tests if isinstance(k, tuple) and k[1] not in (1, "pattern") and k not in empty]
    return {"exploratory": exploratory + [k for k in tests if k == "top1"], "empty": empty}


def bucket_numbers(study: BucketStudy) -> dict:
    """The numbers chapter 2's prose states: the estimates' source, test points and the
    unmeasured ones, the estimates' precision over the measured test points (the "all
    measured" row of :func:`influence_precision`), entropy vs difficulty (a Correlation, or None without the proxy), the
    mean top-1 memorization per bucket, per method the gain frame by bucket, the ceiling
    buckets and the bucket-1-minus-comparison test (:func:`pattern_test`), the seeds, and
    the ground-truth check (:func:`ground_truth_check`; its test points and unmeasured ones,
    the median subpopulation size in each of buckets 1 to 5; None when skipped)."""
    from sharpmem_lib.memorization import mean_by_bucket
    from sharpmem_lib.stats import paired_gain

    mb, table = study.buckets, study.table
    ed = entropy_difficulty(mb) if np.isfinite(mb.subset_acc[mb.measured]).any() else None
    out = {"source": mb.source, "n_test": len(mb.test_ids), "n_unmeasured": mb.n_unmeasured,
           "entropy_difficulty": ed, "top1_means": mean_by_bucket(mb.top1, mb.bucket), "seeds": study.config.seeds,
           "ceiling": ceiling_buckets(table), "diverged": study.diverged,
           "precision": influence_precision(mb).loc["all measured"].to_dict(),
           "near_unmeasured": near_unmeasured_share(mb), "near_unmeasured_agree": NEAR_UNMEASURED_AGREE}
    for m in ("sam", "swa"):
        out[f"{m}_gain"] = paired_gain(table, m, "sgd", "acc", by="bucket")
        out[f"{m}_pattern"] = pattern_test(table, m)
    gt = study.ground_truth
    out["ground_truth"] = None if gt is None else ground_truth_check(gt, study.subpop_size)
    if gt is not None:
        size = study.subpop_size
        out["gt_unmeasured"], out["gt_n_test"] = gt.n_unmeasured, len(gt.test_ids)
        out["gt_medians"] = [float(np.median(size[gt.bucket == b])) if (gt.bucket == b).any() else float("nan")
                             for b in range(1, 6)]  # buckets 1..5 (0 = unmeasured)
        out["median_b1"], out["median_b5"] = out["gt_medians"][0], out["gt_medians"][-1]
    return out


FIGURES: dict[str, tuple[str, str]] = {
    "2": ("Test images from bucket 1 (red frame, lowest influence entropy) and bucket 5 (blue frame), each followed by "
          "its most influential training images of the same class, titled with their influence.",
          "Grid of small images: each row a framed test image followed by its most influential training images and "
          "their influence values"),
    "3b–c": ("Memorization score (eq. 1) of each test point's most influential training point, (b) in bucket 1 and "
             "(c) in bucket 5; the dashed line is the mean.",
             "Two histograms of the memorization score of the top-1 influencer, for bucket 1 and for bucket 5"),
    "3a": ("(a) Test accuracy per memorization bucket for SGD, SAM and SWA, mean ± standard deviation over seeds "
           "(bucket 1 = lowest influence entropy = most memorization); (a') each method's gain over SGD per bucket, "
           "paired by seed, with 95 % intervals.",
           "Grouped bars of test accuracy in buckets 1 to 5 for SGD, SAM and SWA, and the gains over SGD per bucket "
           "with error bars"),
    "S2.1": ("Influence entropy against the true size of each test point's subpopulation on the synthetic long-tail "
             "data (left), and subpopulation sizes per entropy bucket (right): a check the paper could not make.",
             "Scatter of influence entropy against subpopulation size (log axis), and box plots of subpopulation size "
             "in buckets 1 to 5"),
}
"""Chapter 2's figures: number -> (caption, alt text), for :func:`sharpmem_lib.plots.show_figure`."""
