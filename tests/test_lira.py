"""LiRA: scores by hand, calibration, disjoint memorization models, resolvable FPRs."""

import numpy as np
import pytest
from scipy.stats import norm

from sharpmem_lib import report
from sharpmem_lib.attacks import (group_sizes, lira_evaluation, lira_leave_one_out, lira_scores, logit_confidence,
                                  low_fpr_metric, membership_metrics, memorization_groups, split_models, tpr_by_group)
from sharpmem_lib.memorization import buckets, memorization_scores


def test_logit_confidence_is_log_odds_of_the_true_class():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 7, 5)) * 4
    y = rng.integers(0, 5, 7)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    p_y = p[:, np.arange(7), y]
    np.testing.assert_allclose(logit_confidence(z, y), np.log(p_y) - np.log(1 - p_y), rtol=1e-10)
    # stable where p_y is ~1 in float64
    big = np.array([[50.0, 0.0, 0.0]])
    assert logit_confidence(big, np.array([0]))[0] == pytest.approx(50 - np.log(2))


def test_lira_scores_by_hand():
    shadow = np.array([[1.0, 0.0], [2.0, 1.0], [4.0, 2.0], [5.0, 5.0]])
    shadow_in = np.array([[False, False], [False, True], [True, False], [True, True]])
    target = np.array([3.0, 1.5])
    online = lira_scores(target, shadow, shadow_in, online=True, global_variance=False)
    offline = lira_scores(target, shadow, shadow_in, online=False, global_variance=False)
    for j in range(2):
        ins, outs = shadow[shadow_in[:, j], j], shadow[~shadow_in[:, j], j]
        expected = (norm.logpdf(target[j], ins.mean(), ins.std(ddof=1))
                    - norm.logpdf(target[j], outs.mean(), outs.std(ddof=1)))
        assert online[j] == pytest.approx(expected)
        assert offline[j] == pytest.approx(norm.logcdf(target[j], outs.mean(), outs.std(ddof=1)))
    with pytest.raises(ValueError, match="held it out"):
        lira_scores(target, shadow, np.ones_like(shadow_in))


def test_per_example_calibration_beats_a_global_threshold():
    """Examples differ in difficulty; membership adds +1 to phi. LiRA's per-example Gaussians
    see through the difficulty, a global threshold on phi does not."""
    rng = np.random.default_rng(1)
    n, shadows = 2000, 64
    difficulty = rng.normal(0, 3, n)
    member = rng.random(n) < 0.5
    target = difficulty + member + rng.normal(0, 0.3, n)
    shadow_in = rng.random((shadows, n)) < 0.5
    shadow = difficulty + shadow_in + rng.normal(0, 0.3, (shadows, n))
    lira_auc = membership_metrics(member, lira_scores(target, shadow, shadow_in), member)["auc"]
    naive_auc = membership_metrics(member, target, member)["auc"]
    offline_auc = membership_metrics(member, lira_scores(target, shadow, shadow_in, online=False), member)["auc"]
    assert lira_auc > 0.95 and offline_auc > 0.9 and naive_auc < 0.65


def test_lira_on_subset_trained_models():
    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.subsampling import run_subsampling
    from sharpmem_lib.models import MLP
    from sharpmem_lib.train import TrainConfig

    d = load_dataset("digits")
    runs = run_subsampling(lambda: MLP(64, 10, (32,)), d.X[:300], d.y[:300], d.X[300:310], d.y[300:310],
                           TrainConfig(epochs=15, batch_size=20, lr=0.1), n_models=24, progress=False)
    assert runs.confidence_train.shape == (24, 300)
    scores, member = lira_leave_one_out(runs.confidence_train, runs.masks, target=0)
    assert member.sum() == 210 and scores.shape == (300,)
    assert membership_metrics(member, scores, scores > 0)["auc"] > 0.55


def test_tpr_by_group_uses_one_threshold():
    scores = np.r_[np.arange(100.0), [150.0, 160.0, 50.0, 40.0]]  # 100 non-members, 4 members
    member = np.r_[np.zeros(100, bool), np.ones(4, bool)]
    group = np.r_[np.zeros(100, int), [1, 1, 2, 2]]
    # at 1 % FPR one non-member (score 99) may exceed the threshold: threshold = 98
    assert tpr_by_group(scores, member, group, 0.01) == {1: 1.0, 2: 0.0}
    assert tpr_by_group(scores, member, group, 0.55) == {1: 1.0, 2: 0.5}  # threshold 44: 55 of 100 non-members above


def test_lira_evaluation_pools_targets():
    rng = np.random.default_rng(3)
    masks = rng.random((24, 200)) < 0.7  # enough shadows that every point is held out by some
    difficulty = rng.normal(0, 2, 200)
    conf = difficulty + 1.5 * masks + rng.normal(0, 0.3, (24, 200))
    group = np.arange(200) % 2
    table, scores, member = lira_evaluation(conf, masks, targets=[0, 1, 2], group=group)
    assert list(table.index) == [0, 1, 2] and len(scores) == len(member) == 600
    assert (table["auc"] > 0.9).all() and {"tpr@1%fpr_g0", "tpr@1%fpr_g1"} <= set(table.columns)


def synthetic_population(rng, models, points, keep=0.7):
    masks = rng.random((models, points)) < keep
    difficulty = rng.normal(0, 2, points)
    conf = difficulty + 1.5 * masks + rng.normal(0, 0.3, (models, points))
    correct = rng.random((models, points)) < 1 / (1 + np.exp(-(conf - 0.5)))
    return masks, conf, correct


def test_split_models_keeps_memorization_models_disjoint_from_targets_and_shadows():
    m = split_models(128, 32, 48)
    assert len(m.targets) == 32 and set(m.targets) <= set(m.pool)
    assert not set(m.memorization) & set(m.pool) and len(m.memorization) + len(m.pool) == 128
    for bad, message in (((40, 8, 8), "n_targets=8"), ((40, 32, 20), "n_models=40"), ((40, 32, 1), "n_memorization=1")):
        with pytest.raises(ValueError, match=message):
            split_models(*bad)


def test_memorization_groups_use_only_the_given_models():
    """The groups are eq. 1 on the memorization models alone: rewriting every other model's
    outcomes leaves them unchanged, and they equal a hand computation on those models."""
    rng = np.random.default_rng(0)
    masks, conf, correct = synthetic_population(rng, 64, 300)
    m = split_models(64, 32, 24)
    groups = memorization_groups(masks, correct, m.memorization)
    value = memorization_scores(masks[m.memorization], correct[m.memorization]).value
    expected = np.zeros(300, int)
    expected[value != 0] = buckets(-value[value != 0])
    np.testing.assert_array_equal(groups, expected)
    scrambled = correct.copy()
    scrambled[m.pool] = rng.random((len(m.pool), 300)) < 0.5
    np.testing.assert_array_equal(memorization_groups(masks, scrambled, m.memorization), groups)
    # a point the memorization models never held out has no estimate: group 0
    masks[m.memorization, 5] = True
    g = memorization_groups(masks, correct, m.memorization)
    assert g[5] == 0 and ((np.delete(g, 5) > 0) | (np.delete(value, 5) == 0)).all()


def test_zero_memorization_scores_form_their_own_group_and_sizes_are_reported():
    """Most points are never misclassified (score exactly 0, as 90.5 % are at the default
    profile): none of them may be ranked into a quintile, where a stable sort would put them
    by dataset index into 'the most memorized fifth'. The groups' sizes are reported, and
    with too few non-zero scores there are fewer groups, said so in the setup sentence."""
    rng = np.random.default_rng(5)
    n_models, n = 40, 200
    masks = rng.random((n_models, n)) < 0.5
    masks[0], masks[1] = True, False  # every point is held in and held out at least once
    correct = np.ones((n_models, n), bool)  # 180 points always right: memorization exactly 0
    correct[:, 180:] = masks[:, 180:] | (rng.random((n_models, 20)) < 0.3)  # 20 memorized points
    groups = memorization_groups(masks, correct, np.arange(n_models))
    assert (groups[:180] == 0).all()
    value = memorization_scores(masks, correct).value
    assert (value[180:] > 0).all() and (groups[180:] > 0).all()
    assert group_sizes(groups) == {0: 180, 1: 4, 2: 4, 3: 4, 4: 4, 5: 4}
    # group 1 holds the highest scores among the measured points only
    assert value[180:][groups[180:] == 1].min() >= value[180:][groups[180:] == 5].max()
    # three non-zero scores: three groups, not five, and the setup sentence says so
    few = correct.copy()
    few[:, 183:] = True
    g3 = memorization_groups(masks, few, np.arange(n_models))
    assert group_sizes(g3) == {0: 197, 1: 1, 2: 1, 3: 1}
    s = report.lira_groups(group_sizes(g3))
    assert "197 of the 200 training points (98.5 %)" in s and "ranked into 3 equal-count groups" in s
    assert "fewer than five" in s and "fewer than five" not in report.lira_groups(group_sizes(groups))


def test_lira_evaluation_on_32_targets_reports_resolvable_fprs():
    rng = np.random.default_rng(1)
    masks, conf, correct = synthetic_population(rng, 80, 1000, keep=0.5)
    m = split_models(80, 32, 16)
    groups = memorization_groups(masks, correct, m.memorization)
    table, scores, member = lira_evaluation(conf, masks, m, group=groups)
    assert len(table) == 32 and len(scores) == 32 * 1000
    np.testing.assert_array_equal(table["n_nonmembers"], (~masks[m.targets]).sum(1))
    np.testing.assert_allclose(table["min_fpr"], 1 / table["n_nonmembers"])
    assert (table["n_shadows"] == len(m.pool) - 1).all()
    # about 500 non-members per target: 0.1 % FPR is below what they resolve, 1 % is not
    assert table["tpr@0.1%fpr"].isna().all() and table["tpr@1%fpr"].notna().all()
    assert table["tpr@0fp"].notna().all() and low_fpr_metric(int(table["n_nonmembers"].max())) == "tpr@0fp"
    assert low_fpr_metric(1000) == "tpr@0.1%fpr" and low_fpr_metric(999) == "tpr@0fp"
    # the memorization models never serve as shadows: scores match an explicit pool
    s0, _ = lira_leave_one_out(conf, masks, int(m.targets[0]), shadows=m.pool)
    np.testing.assert_allclose(scores[:1000], s0)
    s_all, _ = lira_leave_one_out(conf, masks, int(m.targets[0]))
    assert not np.allclose(s0, s_all)


def test_enough_nonmembers_resolve_a_tenth_of_a_percent():
    rng = np.random.default_rng(2)
    masks, conf, _ = synthetic_population(rng, 24, 4000, keep=0.5)
    table, _, _ = lira_evaluation(conf, masks, [0, 1])
    assert (table["n_nonmembers"] >= 1000).all() and table["tpr@0.1%fpr"].notna().all()
