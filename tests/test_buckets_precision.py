"""Chapter 2 on Fashion-MNIST (issue 16): the standard error of the influence estimates,
entropy normalised by class size, class names, and the sentences that report them."""

import numpy as np
import pytest
from scipy.stats import norm

from sharpmem_lib import report
from sharpmem_lib.buckets import (FASHION_MNIST_CLASSES, MemorizationBuckets, bucket_composition, class_names,
                                  influence_precision, normalized_entropy, top_influence_precision)
from sharpmem_lib.memorization import SameClassInfluence, buckets, influence_entropy, influence_scores


def test_influence_standard_error_equals_a_loop_and_the_spread_over_repeated_draws():
    """eq. 2's SE is that of a difference of two independent binomial proportions: checked
    against a loop, and against the SD of the estimate over 2,000 independent replications
    of a model whose correctness on j depends on whether training point 0 was in."""
    rng = np.random.default_rng(0)
    masks = rng.random((300, 5)) < 0.7
    correct = rng.random((300, 3)) < 0.8
    est = influence_scores(masks, correct)
    for j in range(3):
        for i in range(5):
            a, b = correct[masks[:, i], j], correct[~masks[:, i], j]
            se = np.sqrt(a.mean() * (1 - a.mean()) / len(a) + b.mean() * (1 - b.mean()) / len(b))
            assert est.se[j, i] == pytest.approx(se)
    values, ses = [], []
    for _ in range(2000):
        masks = rng.random((200, 2)) < 0.7
        correct = rng.random((200, 1)) < np.where(masks[:, :1], 0.9, 0.6)  # true infl(0, j) = 0.3
        e = influence_scores(masks, correct)
        values.append(e.value[0, 0])
        ses.append(e.se[0, 0])
    assert np.mean(values) == pytest.approx(0.3, abs=0.005)
    assert np.std(values) == pytest.approx(np.mean(ses), rel=0.06)


def test_top_influence_precision_by_hand():
    value = np.array([[0.1, 0.3, -0.5, 0.2],
                      [0.0, 0.0, 0.4, 0.4],
                      [0.2, 0.1, 0.0, 0.0]])
    se = np.array([[0.01, 0.02, 0.03, 0.04],
                   [0.05, 0.06, 0.07, 0.08],
                   [0.09, 0.10, 0.11, 0.12]])
    test_labels, train_labels = np.array([0, 1, 2]), np.array([0, 0, 1, 1])
    top, top_se, median_se = top_influence_precision(value, se, test_labels, train_labels)
    np.testing.assert_allclose(top[:2], [0.3, 0.4])  # class 0: columns 0-1; class 1: columns 2-3, tie -> first
    np.testing.assert_allclose(top_se[:2], [0.02, 0.07])
    np.testing.assert_allclose(median_se[:2], [0.015, 0.075])
    assert np.isnan(top[2]) and np.isnan(top_se[2]) and np.isnan(median_se[2])  # class 2 has no training point
    with pytest.raises(ValueError, match="must be \\(test, train\\)"):
        top_influence_precision(value, se[:, :3], test_labels, train_labels)


def test_normalized_entropy_keeps_the_papers_order_and_removes_class_size():
    rng = np.random.default_rng(1)
    # equal class sizes (the paper's CIFAR-100): the same order as eq. 3
    raw = influence_entropy(rng.random((50, 40)), axis=0)
    np.testing.assert_array_equal(buckets(normalized_entropy(raw, np.full(40, 50))), buckets(raw))
    # influence spread evenly-ish over each class: a class of 260 training points and one of 240
    n_k = np.repeat([260, 240], 100)
    raw = np.array([influence_entropy(rng.uniform(0.9, 1.1, n)) for n in n_k])
    by_raw = buckets(raw)
    assert set(by_raw[n_k == 260]) == {3, 4, 5} and set(by_raw[n_k == 240]) == {1, 2, 3}  # sorted by class size
    by_norm = buckets(normalized_entropy(raw, n_k))
    for b in range(1, 6):  # both classes in every bucket
        assert 0.25 < np.mean(n_k[by_norm == b] == 260) < 0.75
    np.testing.assert_allclose(normalized_entropy(np.log([7.0, 3.0]), np.array([7, 9])), [1.0, np.log(3) / np.log(9)])
    assert normalized_entropy(np.array([0.0]), np.array([1]))[0] == 0.0  # one training point: all on it
    with pytest.raises(ValueError, match="n_k must hold a class size"):
        normalized_entropy(raw, n_k[:5])


def _buckets_with(top, top_se, median_se, bucket, labels, n_train_per_class):
    n = len(top)
    blocks = {int(k): (np.arange(n_train_per_class[k]), np.flatnonzero(labels == k), np.zeros((1, 1)))
              for k in np.unique(labels)}
    measured = bucket > 0
    return MemorizationBuckets(np.arange(n), np.zeros(n), bucket, np.full(n, np.nan), SameClassInfluence(blocks),
                               "test", measured, labels, np.full(n, 0.5), top, top_se, median_se)


def test_influence_precision_by_hand():
    # class 0 has 20 training points: z must exceed norm.isf(0.05 / 20) = 2.80
    labels = np.array([0, 0, 0, 1, 1, 0])
    top = np.array([0.30, 0.05, 0.10, 0.5, 0.2, np.nan])
    top_se = np.array([0.10, 0.01, 0.05, 0.1, 0.2, np.nan])
    median_se = np.array([0.02, 0.04, 0.06, 0.08, 0.10, np.nan])
    bucket = np.array([1, 1, 2, 1, 2, 0])
    mb = _buckets_with(top, top_se, median_se, bucket, labels, {0: 20, 1: 1000})
    table = influence_precision(mb, n_buckets=2)
    c0, c1 = norm.isf(0.05 / 20), norm.isf(0.05 / 1000)
    assert 2.8 < c0 < 3.0 and 3.8 < c1 < 4.0  # so z = 3 passes in class 0, and z = 5 in class 1
    # bucket 1: z = 3 (class 0, passes), 5 (class 0, passes), 5 (class 1, c1 = 3.9: passes)
    assert table.loc[1, "test points"] == 3 and table.loc[1, "share resolved from zero"] == pytest.approx(1.0)
    # bucket 2: z = 2 (class 0, fails), 1 (class 1, fails)
    assert table.loc[2, "share resolved from zero"] == 0.0
    assert table.loc[1, "median SE of an estimate"] == pytest.approx(0.04)
    assert table.loc[2, "median largest influence"] == pytest.approx(0.15)
    assert table.loc[2, "its median SE"] == pytest.approx(0.125)
    assert table.loc["all measured", "test points"] == 5  # the unmeasured point is in no row
    assert table.loc["all measured", "share resolved from zero"] == pytest.approx(3 / 5)
    # published estimates carry no standard errors: NaN, and the sentence says so
    mb_published = _buckets_with(*(np.full(6, np.nan),) * 3, bucket, labels, {0: 20, 1: 1000})
    assert np.isnan(influence_precision(mb_published).loc["all measured", "its median SE"])
    assert "without standard errors" in report.influence_precision_note(
        influence_precision(mb_published).loc["all measured"].to_dict())


def test_influence_precision_note_and_unmeasured_share():
    precise = {"median SE of an estimate": 0.0123, "median largest influence": 0.2, "its median SE": 0.02,
               "share resolved from zero": 0.9}
    note = report.influence_precision_note(precise)
    assert note.startswith("One influence estimate (eq. 2) has a standard error of 0.012 ")
    assert note.endswith("the median test point's largest influence is 0.200 ± 0.020.")
    # session 9 referee: the share resolved from zero was said twice, here and in bucket_noise_sentence
    assert "resolved" not in note and "noise" not in note
    assert report.influence_precision_note({**precise, "share resolved from zero": 0.12}) == note
    noisy = report.bucket_noise_sentence({**precise, "share resolved from zero": 0.12})
    assert "only for 12.0 % of the measured test points" in noisy and "Bonferroni" in noisy
    assert noisy.endswith("so their entropy, and their bucket, are mostly noise.")
    assert report.influence_precision_note(None).startswith("These estimates come without standard errors")
    assert report.unmeasured_share(665, 4000) == ("16.6 % (665 of 4000 test points), within the book's target of "
                                                  "at most 20 %")
    assert report.unmeasured_share(2761, 4000).endswith("above the book's target of at most 20 %")
    assert report.unmeasured_share(800, 4000).startswith("20.0 %") and "within" in report.unmeasured_share(800, 4000)
    assert report.unmeasured_share(0, 0) == "n/a (no test points)"


def test_fashion_class_names_label_the_composition_table():
    assert class_names("fashion_mnist_cpu")[0] == "T-shirt/top" and class_names("fashion_mnist")[9] == "Ankle boot"
    assert len(FASHION_MNIST_CLASSES) == 10 and class_names("digits") is None
    table = bucket_composition(np.array([0, 1, 1, 2]), np.array([9, 0, 9, 0]), n_buckets=2,
                               names=class_names("fashion_mnist_cpu"))
    assert list(table.columns) == ["T-shirt/top", "Ankle boot", "total"]
    assert table.loc[1].tolist() == [1, 1, 2]


def test_near_unmeasured_share_by_hand():
    """Session 9 referee: bucket 5 held mostly points whose influence was barely measured.
    A point is nearly unmeasured when at least 99 % of the subset models agree on whether
    they classify it correctly (accuracy >= 0.99 or <= 0.01); counted per bucket by hand."""
    from sharpmem_lib.buckets import near_unmeasured_share

    bucket = np.array([1, 1, 1, 1, 5, 5, 5, 0])
    acc = np.array([0.5, 0.99, 0.985, 0.01, 1.0, 0.0, 0.7, 1.0])  # 0.99 and 0.01: exactly at the edge, counted
    n = len(bucket)
    mb = MemorizationBuckets(np.arange(n), np.zeros(n), bucket, np.full(n, np.nan), SameClassInfluence({}), "test",
                             bucket > 0, np.zeros(n, int), acc)
    shares = near_unmeasured_share(mb)
    assert shares[1] == pytest.approx(2 / 4) and shares[5] == pytest.approx(2 / 3)
    assert np.isnan(shares[2])  # an empty bucket has no share
    published = MemorizationBuckets(np.arange(n), np.zeros(n), bucket, np.full(n, np.nan), SameClassInfluence({}),
                                    "test", bucket > 0, np.zeros(n, int), np.full(n, np.nan))
    assert np.isnan(near_unmeasured_share(published)[5])  # no per-model correctness: unknown, not 0
    assert "not known here" in report.near_unmeasured_sentence(near_unmeasured_share(published), 0.99)
