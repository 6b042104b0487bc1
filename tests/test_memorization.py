"""Feldman-Zhang estimates, influence entropy and buckets, against hand and exact values."""

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from sharpmem_lib.memorization import (
    SameClassInfluence,
    buckets,
    influence_entropy,
    influence_scores,
    load_feldman_zhang,
    memorization_scores,
)


def test_memorization_by_hand():
    masks = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], bool)
    correct = np.array([[1, 0], [1, 1], [0, 1], [1, 0]], bool)
    est = memorization_scores(masks, correct)
    # point 0: in for models 0,1 (correct 1,1) -> 1; out for 2,3 (correct 0,1) -> 0.5
    # point 1: in for models 1,2 (correct 1,1) -> 1; out for 0,3 (correct 0,0) -> 0
    np.testing.assert_allclose(est.value, [0.5, 1.0])
    np.testing.assert_array_equal(est.n_in, [2, 2])
    np.testing.assert_allclose(est.se, [np.sqrt(0 + 0.25 / 2), 0.0])


def test_influence_equals_a_loop():
    rng = np.random.default_rng(0)
    masks = rng.random((40, 6)) < 0.7
    masks[0], masks[1] = True, False  # every point both in and out somewhere
    correct = rng.random((40, 4)) < 0.6
    est = influence_scores(masks, correct)
    for j in range(4):
        for i in range(6):
            expected = correct[masks[:, i], j].mean() - correct[~masks[:, i], j].mean()
            assert est.value[j, i] == pytest.approx(expected)
    assert est.value.shape == est.se.shape == (4, 6)


def exact_1nn_influence(dist, y_train, y_test, p):
    """Exact infl(i, j) for 1-NN under Bernoulli(p) subsets: the prediction for j is the
    label of the nearest training point that is in the subset (none: wrong)."""
    n_test, n_train = dist.shape
    out = np.zeros((n_test, n_train))
    for j in range(n_test):
        order = np.argsort(dist[j], kind="stable")
        good = (y_train[order] == y_test[j]).astype(float)
        for rank_i, i in enumerate(order):
            # P(first in-subset point is at rank r), given i forced in / forced out
            p_in = sum(good[r] * p * (1 - p) ** r for r in range(rank_i)) + good[rank_i] * (1 - p) ** rank_i
            p_out = sum(good[r] * p * (1 - p) ** (r - (r > rank_i)) for r in range(n_train) if r != rank_i)
            out[j, i] = p_in - p_out
    return out


def test_estimates_converge_to_exact_1nn_influence():
    rng = np.random.default_rng(1)
    x_train, x_test = rng.normal(size=(12, 2)), rng.normal(size=(5, 2))
    y_train, y_test = rng.integers(0, 2, 12), rng.integers(0, 2, 5)
    dist = ((x_test[:, None] - x_train[None]) ** 2).sum(-1)
    exact = exact_1nn_influence(dist, y_train, y_test, p=0.7)
    errors = []
    for m in (200, 20_000):
        masks = rng.random((m, 12)) < 0.7
        masked = np.where(masks[:, None, :], dist[None], np.inf)  # (m, test, train)
        nearest = masked.argmin(-1)
        correct = (y_train[nearest] == y_test[None]) & np.isfinite(masked.min(-1))
        est = influence_scores(masks, correct)
        assert (np.abs(est.value - exact) <= 5 * est.se + 0.02).all()
        errors.append(np.abs(est.value - exact).max())
    assert errors[1] < errors[0] / 3 and errors[1] < 0.05


def test_entropy_reference_values():
    assert influence_entropy(np.ones(8)) == pytest.approx(np.log(8))
    assert influence_entropy(np.array([0, 0, 3.0, 0])) == pytest.approx(0.0)
    assert influence_entropy(np.zeros(5)) == pytest.approx(np.log(5))  # nothing influences: evenly spread
    w = np.random.default_rng(2).normal(size=(30, 7))
    np.testing.assert_allclose(influence_entropy(w, axis=0), scipy_entropy(np.abs(w), axis=0))


def test_buckets_are_equal_count_and_ordered():
    ent = np.random.default_rng(3).random(103)
    b = buckets(ent, 5)
    counts = np.bincount(b)[1:]
    assert counts.sum() == 103 and counts.max() - counts.min() <= 1
    for k in range(1, 5):
        assert ent[b == k].max() <= ent[b == k + 1].min()  # bucket 1 = lowest entropy
    with pytest.raises(ValueError, match="n_buckets=0"):
        buckets(ent, 0)


def write_fz_file(path, rng):
    """A small file with Feldman-Zhang's keys; class indices deliberately unsorted."""
    train_labels, test_labels = np.repeat([0, 1], 6), np.repeat([0, 1], 4)
    rng.shuffle(train_labels)
    rng.shuffle(test_labels)
    dense = rng.normal(size=(8, 12))  # (test, train)
    arrays = {"tr_mem": rng.random(12), "tr_labels": train_labels, "tt_labels": test_labels}
    for k in (0, 1):
        tr = rng.permutation(np.flatnonzero(train_labels == k))
        tt = rng.permutation(np.flatnonzero(test_labels == k))
        arrays[f"tr_classidx_{k}"], arrays[f"tt_classidx_{k}"] = tr, tt
        arrays[f"infl_matrix_class{k}"] = dense[np.ix_(tt, tr)].T
    np.savez(path, **arrays)
    return dense, arrays


def test_published_file_maps_back_to_dataset_indices(tmp_path):
    dense, arrays = write_fz_file(tmp_path / "cifar100_infl_matrix.npz", np.random.default_rng(4))
    infl, extra = load_feldman_zhang(tmp_path / "cifar100_infl_matrix.npz")
    reference = SameClassInfluence.from_dense(dense, arrays["tt_labels"], arrays["tr_labels"],
                                              train_mem=arrays["tr_mem"])
    ids, ent = infl.entropy()
    ref_ids, ref_ent = reference.entropy()
    np.testing.assert_array_equal(ids, np.arange(8))
    np.testing.assert_allclose(ent, ref_ent)
    # and directly: test point j's entropy is over its own class's training points
    for j in range(8):
        same = arrays["tr_labels"] == arrays["tt_labels"][j]
        assert ent[j] == pytest.approx(scipy_entropy(np.abs(dense[j, same])))
    top, scores = infl.top_influencers(3, k=3)
    same = np.flatnonzero(arrays["tr_labels"] == arrays["tt_labels"][3])
    expected = same[np.argsort(-dense[3, same], kind="stable")][:3]
    np.testing.assert_array_equal(top, expected)
    np.testing.assert_allclose(scores, dense[3, expected])
    assert infl.top1_memorization([3])[0] == pytest.approx(arrays["tr_mem"][expected[0]])
    np.testing.assert_array_equal(extra["tt_labels"], arrays["tt_labels"])


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="never held out or never trained on"):
        memorization_scores(np.ones((3, 2), bool), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="share their first axis"):
        influence_scores(np.ones((3, 2), bool), np.ones((4, 2), bool))
    with pytest.raises(FileNotFoundError, match="pluskid.github.io"):
        load_feldman_zhang(tmp_path / "absent.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not a Feldman-Zhang influence file"):
        load_feldman_zhang(tmp_path / "other.npz")


def test_accuracy_by_bucket():
    from sharpmem_lib.memorization import accuracy_by_bucket
    correct = np.array([[1, 0, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    bucket = np.array([1, 1, 2, 2, 3, 3])
    np.testing.assert_allclose(accuracy_by_bucket(correct, bucket, 3), [[0.5, 1.0, 0.0], [1, 1, 1]])


@pytest.mark.parametrize("bucket, shown", [([1, 1, 2, 2, 6, 3], "6"), ([1, 1, 2, -1, 3, 3], "-1"),
                                           ([1, 1, 2, 2.5, 3, 3], "2.5")])
def test_bucket_ids_outside_the_range_are_refused(bucket, shown):
    """Hostile tester: a 6 in a 3-bucket array (or a -1 sentinel, or 2.5) was left out of every
    bucket silently."""
    from sharpmem_lib.memorization import accuracy_by_bucket, mean_by_bucket
    correct = np.ones((2, 6), bool)
    match = rf"bucket holds id\(s\) {shown} outside the valid range: 0 \(unmeasured\) or 1..3 \(n_buckets=3\)"
    with pytest.raises(ValueError, match=match):
        accuracy_by_bucket(correct, np.array(bucket), 3)
    with pytest.raises(ValueError, match=match):
        mean_by_bucket(np.ones(6), np.array(bucket), 3)
    ok = np.array([0, 1, 2, 2, 3, 3])  # 0 = unmeasured: valid, in no bucket
    assert accuracy_by_bucket(correct, ok, 3).shape == (2, 3) and mean_by_bucket(np.ones(6), ok, 3) == [1.0] * 3
    with pytest.raises(ValueError, match="n_buckets=0"):
        mean_by_bucket(np.ones(6), ok, 0)
    with pytest.raises(ValueError, match="one bucket per value"):
        mean_by_bucket(np.ones(5), ok, 3)


def test_top1_is_undefined_without_positive_influence():
    infl = np.array([[0.0, 0.0, 0.0], [0.2, 0.5, 0.0], [-0.1, 0.0, 0.0]])  # (test, train), one class
    sci = SameClassInfluence.from_dense(infl, np.zeros(3, int), np.zeros(3, int), train_mem=np.array([0.1, 0.7, 0.3]))
    top1 = sci.top1_memorization()
    assert np.isnan(top1[0]) and top1[1] == pytest.approx(0.7) and np.isnan(top1[2])
    assert sci.any_influence().tolist() == [False, True, True]


def test_test_id_offset(tmp_path):
    dense, arrays = write_fz_file(tmp_path / "f.npz", np.random.default_rng(5))
    infl, _ = load_feldman_zhang(tmp_path / "f.npz", test_id_offset=50_000)
    np.testing.assert_array_equal(infl.test_ids(), 50_000 + np.arange(8))


def test_mean_by_bucket_ignores_undefined_values():
    from sharpmem_lib.memorization import mean_by_bucket
    out = mean_by_bucket(np.array([1.0, np.nan, 3.0, np.nan]), np.array([1, 1, 2, 3]), 3)
    assert out[:2] == [1.0, 3.0] and np.isnan(out[2])


def test_unmeasured_points_get_their_own_bucket():
    """Issue 18 §5: points with no measured influence stay out of the entropy ranking."""
    from sharpmem_lib.memorization import UNMEASURED
    entropy = np.array([0.5, 2.3, 0.1, 2.3, 0.9, 2.3, 0.3])  # 2.3 = log(n_k) of the all-zero points
    measured = np.array([True, False, True, False, True, False, True])
    b = buckets(entropy, 2, measured=measured)
    assert b.tolist() == [2, UNMEASURED, 1, UNMEASURED, 2, UNMEASURED, 1]
    assert buckets(entropy, 2).tolist() != b.tolist()  # without it the all-zero points fill bucket 2
    with pytest.raises(ValueError, match="3 points with a measured influence"):
        buckets(entropy[:5], 4, measured=measured[:5])
    with pytest.raises(ValueError, match="measured has shape"):
        buckets(entropy, 2, measured=measured[:3])


def test_top_influencers_leave_out_unmeasured_training_points():
    """Fig. 2 showed arbitrary images at influence 0.00 as 'most influential'."""
    infl = np.array([[0.0, 0.3, 0.0, -0.1], [0.0, 0.0, 0.0, 0.0]])  # (test, train), one class
    sci = SameClassInfluence.from_dense(infl, np.zeros(2, int), np.zeros(4, int))
    ids, scores = sci.top_influencers(0, k=4)
    assert ids.tolist() == [1, 3] and scores.tolist() == [0.3, -0.1]
    assert len(sci.top_influencers(1, k=4)[0]) == 0
    assert sci.top_influencers(0, k=4, measured_only=False)[0].tolist() == [1, 0, 2, 3]


@pytest.mark.parametrize("bucket", [np.array(["1", "2", "0", "1"]), np.array([1, 2, None, 0], dtype=object),
                                    np.array([1, 2, 0, 1], dtype=complex)])
def test_bucket_ids_that_are_not_numbers_get_a_clear_error(bucket):
    """Hostile tester: a string array was 'outside the valid range: 0, 1, 2' and an object
    array with None raised a bare TypeError from np.unique."""
    from sharpmem_lib.memorization import accuracy_by_bucket

    with pytest.raises(ValueError, match=r"bucket holds .* values; it must hold integer bucket ids, 0 \(unmeasured\)"):
        accuracy_by_bucket(np.array([[1, 0, 1, 1]], bool), bucket, 5)
