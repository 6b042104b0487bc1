"""Thresholds, metrics and protocols: brute force, SELENA's loop, and no-signal data."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from sharpmem_lib.attacks import (AttackSets, attack_sets, balanced, choose, cv_accuracy, fit_threshold,
                                  fit_threshold_attacks, fit_thresholds, membership_metrics, run_attacks,
                                  threshold_attack, tpr_at_fpr)


pytestmark = pytest.mark.usefixtures("one_thread")


def selena_loop(member, nonmember):
    """SELENA's global-threshold loop, transcribed from ``threshold_based_inference_attack``
    (attack/dsq_attack.py)."""
    list_all = np.sort(np.concatenate((member, nonmember)))
    max_gap, chosen = 0, 0
    for thre in list_all:
        ratio1 = np.sum(member >= thre)
        ratio2 = len(nonmember) - np.sum(nonmember >= thre)
        if ratio1 + ratio2 > max_gap:
            max_gap, chosen = ratio1 + ratio2, thre
    return chosen


def test_global_threshold_is_selenas_and_the_brute_force_optimum():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 40))
        member = np.round(rng.normal(0.3, 1, n), 1)  # rounded: many ties
        nonmember = np.round(rng.normal(0, 1, n), 1)
        t = fit_threshold(member, nonmember)
        assert t == selena_loop(member, nonmember)
        acc = lambda s: (member >= s).sum() + (nonmember < s).sum()  # noqa: E731  (equal sizes: counts)
        values = np.unique(np.r_[member, nonmember])
        best = max(acc(s) for s in values)
        assert acc(t) == best and t == min(s for s in values if acc(s) == best)  # lowest of the optima


def test_unequal_sets_maximise_balanced_accuracy():
    rng = np.random.default_rng(1)
    member, nonmember = rng.normal(0.5, 1, 30), rng.normal(0, 1, 90)
    t = fit_threshold(member, nonmember)
    bal = lambda s: (member >= s).mean() + (nonmember < s).mean()  # noqa: E731
    assert bal(t) == pytest.approx(max(bal(s) for s in np.r_[member, nonmember]))


def test_per_class_thresholds_maximise_the_overall_balanced_accuracy_by_brute_force():
    """Each class's threshold is chosen on its own; the product of all combinations of
    candidate thresholds finds nothing better on the fitting data."""
    rng = np.random.default_rng(2)
    classes = 3
    ym, yn = rng.integers(0, classes, 14), rng.integers(0, classes, 10)
    sm, sn = np.round(rng.normal(0.4, 1, 14), 1), np.round(rng.normal(0, 1, 10), 1)
    t = fit_thresholds(sm, ym, sn, yn, classes, per_class=True)
    bal = lambda th: (sm >= th[ym]).mean() + (sn < th[yn]).mean()  # noqa: E731
    grids = [np.unique(np.r_[sm[ym == c], sn[yn == c]]) for c in range(classes)]
    brute = max(bal(np.array(combo)) for combo in itertools.product(*grids))
    assert bal(t) == pytest.approx(brute)
    g = fit_thresholds(sm, ym, sn, yn, classes, per_class=False)
    assert (g == g[0]).all() and g[0] == fit_threshold(sm, sn)
    assert bal(t) >= bal(g) - 1e-12  # in-sample, per-class can only do better


def test_a_class_without_fitting_data_gets_the_global_threshold():
    sm, sn = np.array([0.9, 0.8, 0.3]), np.array([0.2, 0.4, 0.6])
    t = fit_thresholds(sm, np.array([0, 0, 1]), sn, np.array([0, 1, 1]), 3, per_class=True)
    assert t[2] == fit_threshold(sm, sn)


def test_cv_accuracy_by_hand():
    """Two folds by hand: each fold predicted by the threshold of the other."""
    sets = AttackSets(np.array([3.0, 1.0, 2.0, 5.0]), np.array([0.0, 2.5, 1.5, -1.0]), np.zeros(1), np.zeros(1))
    labels = AttackSets(np.zeros(4, int), np.zeros(4, int), np.zeros(1, int), np.zeros(1, int))
    rng = np.random.default_rng(7)
    fm, fn = np.array_split(rng.permutation(4), 2), np.array_split(rng.permutation(4), 2)
    pm, pn = np.zeros(4, bool), np.zeros(4, bool)
    for k in range(2):
        keep_m, keep_n = np.setdiff1d(np.arange(4), fm[k]), np.setdiff1d(np.arange(4), fn[k])
        t = fit_threshold(sets.attack_member[keep_m], sets.attack_nonmember[keep_n])
        pm[fm[k]], pn[fn[k]] = sets.attack_member[fm[k]] >= t, sets.attack_nonmember[fn[k]] >= t
    expected = (pm.mean() + (~pn).mean()) / 2
    assert cv_accuracy(sets, labels, 1, per_class=False, folds=2, seed=7) == pytest.approx(expected)
    with pytest.raises(ValueError, match="folds=1"):
        cv_accuracy(sets, labels, 1, per_class=False, folds=1)


def test_tpr_at_fpr_keeps_tied_operating_points():
    """One member alone on top, then members and non-members tied in pairs: the ROC's
    points (0.1, 0.2), (0.2, 0.3), ... lie on one line. At 10 % FPR the truth is 0.2;
    scikit-learn's default drop_intermediate=True keeps only the line's ends and gives 0.1."""
    scores = np.r_[10.0, np.arange(9, 0, -1), np.arange(9, 0, -1), -5.0]
    y = np.r_[True, np.ones(9, bool), np.zeros(9, bool), False]
    fpr, tpr, _ = roc_curve(y, scores)  # the default curve
    assert tpr[fpr <= 0.1].max() == pytest.approx(0.1)
    assert tpr_at_fpr(y, scores, 0.1) == pytest.approx(0.2)
    brute = max(((scores[y] >= t).mean() for t in np.unique(scores) if (scores[~y] >= t).mean() <= 0.1))
    assert brute == pytest.approx(0.2)


def test_auc_and_tpr_agree_with_scikit_learn_and_brute_force():
    rng = np.random.default_rng(3)
    y = rng.random(3000) < 0.5
    scores = np.round(rng.normal(size=3000) + y, 1)
    metrics = membership_metrics(y, scores, scores > 0.5)
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, scores))
    for target in (0.001, 0.01, 0.1, 0.0):
        best = max(((scores[y] >= t).mean() for t in np.r_[np.unique(scores), np.inf]
                    if (scores[~y] >= t).mean() <= target), default=0.0)
        assert tpr_at_fpr(y, scores, target) == pytest.approx(best)
    assert metrics["n_nonmembers"] == (~y).sum() and metrics["min_fpr"] == pytest.approx(1 / (~y).sum())


def test_low_fpr_is_reported_only_where_resolvable():
    y = np.r_[np.ones(600, bool), np.zeros(600, bool)]
    scores = np.random.default_rng(4).normal(size=1200) + y
    m = membership_metrics(y, scores, scores > 0.5)
    assert np.isnan(m["tpr@0.1%fpr"]) and np.isfinite(m["tpr@1%fpr"]) and np.isfinite(m["tpr@0fp"])


def test_balanced_and_attack_sets():
    m, n = balanced(np.arange(10), np.arange(100, 104), seed=0)
    assert len(m) == len(n) == 4 and set(n) == {100, 101, 102, 103}
    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.splits import make_partition

    d = load_dataset("digits")
    part = make_partition("digits", d, split_seed=2)
    sets = attack_sets(part, seed=1)
    assert len(sets.eval_member) == len(sets.eval_nonmember) == min(len(part.eval_members), len(part.eval_nonmembers))
    np.testing.assert_array_equal(sets.attack_member, part.attack_members)
    assert set(sets.eval_member) <= set(part.eval_members) and not set(sets.eval_member) & set(part.attack_members)
    logits = np.random.default_rng(0).normal(size=(len(d), 10))
    np.testing.assert_array_equal(sets.take(logits).eval_nonmember, logits[sets.eval_nonmember])
    with pytest.raises(ValueError, match="missing"):
        AttackSets.from_dict({"attack_member": np.zeros(1)})


# ----------------------------------------------------------------------------- protocols


def independent_sets(rng, sizes, fn):
    return AttackSets(*(fn(n) for n in sizes))


def test_thresholds_are_fitted_on_attacker_data_under_both_protocols():
    """SELENA fits on the attacker-known sets too: for a given attack and threshold kind
    the two protocols report the same evaluation numbers, whatever the evaluation sets hold."""
    rng = np.random.default_rng(5)
    scores = AttackSets(rng.normal(1, 1, 200), rng.normal(0, 1, 200), rng.normal(0, 1, 200), rng.normal(1, 1, 200))
    labels = independent_sets(rng, (200,) * 4, lambda n: rng.integers(0, 4, n))
    table = threshold_attack({"s": scores}, labels, 4)
    for kind in ("global", "class"):
        np.testing.assert_allclose(table.loc[("honest", kind), "balanced_acc"],
                                   table.loc[("selena", kind), "balanced_acc"])
    # evaluation sets reversed: a threshold fitted on attacker data is below chance on them,
    # and SELENA's protocol, choosing only among such thresholds, cannot avoid it
    assert table.loc[("selena", "best"), "balanced_acc"] < 0.4
    # the thresholds do not move when only the evaluation sets change
    other = AttackSets(scores.attack_member, scores.attack_nonmember, rng.normal(size=200), rng.normal(size=200))
    t1 = fit_thresholds(scores.attack_member, labels.attack_member, scores.attack_nonmember,
                        labels.attack_nonmember, 4, True)
    t2 = fit_thresholds(other.attack_member, labels.attack_member, other.attack_nonmember,
                        labels.attack_nonmember, 4, True)
    np.testing.assert_array_equal(t1, t2)


def test_each_protocol_chooses_by_its_own_column():
    rng = np.random.default_rng(6)
    cand = {s: AttackSets(rng.normal(s, 1, 300), rng.normal(0, 1, 300), rng.normal(s, 1, 300), rng.normal(0, 1, 300))
            for s in (0.0, 0.2, 0.5)}
    labels = independent_sets(rng, (300,) * 4, lambda n: rng.integers(0, 3, n))
    table = fit_threshold_attacks(cand, labels, 3)
    assert choose(table, "selena") == table["balanced_acc"].idxmax()
    assert choose(table, "honest") == table["attacker_acc"].idxmax()
    rows = threshold_attack(cand, labels, 3)
    assert rows.loc[("selena", "best"), "balanced_acc"] == table["balanced_acc"].max()
    assert rows.loc[("selena", "global"), "balanced_acc"] == table.xs("global", level="threshold")["balanced_acc"].max()
    assert (rows.loc[("honest", "best"), "candidate"], rows.loc[("honest", "best"), "chosen_threshold"]) == \
        table["attacker_acc"].idxmax()
    with pytest.raises(ValueError, match="protocol='optimistic'"):
        threshold_attack(cand, labels, 3, protocols=("optimistic",))


# ------------------------------------------------- no membership signal: every attack at 50 %

N = 2000  # evaluation members and as many non-members (and as many attacker-known of each)
CLASSES = 10


def no_signal_labels(rng):
    return AttackSets(*(rng.integers(0, CLASSES, N) for _ in range(4)))


def test_single_query_attacks_without_signal_are_at_chance_under_every_protocol():
    """Logits drawn independently of membership: every attack, the NN and the best of
    them, under both protocols, within 2 points of 50 %. Fitting thresholds on the
    evaluation sets themselves (the old 'selena' protocol) fails this."""
    rng = np.random.default_rng(11)
    labels = no_signal_labels(rng)

    def logits(y):  # a fairly accurate, fairly confident model, the same on all four sets
        z = rng.normal(0, 2, (len(y), CLASSES))
        z[np.arange(len(y)), y] += 3
        return z

    outputs = labels.map(logits)
    table = run_attacks(outputs, labels, num_classes=CLASSES, seed=0,
                        nn_options={"scale": 0.125, "batch_size": 128, "lr": 1e-3, "epochs": 30, "init_std": None})
    assert set(table.index.get_level_values("attack")) >= {"correctness", "confidence_global", "confidence_class",
                                                           "entropy_class", "mentr_global", "nn", "best"}
    off = (table["balanced_acc"] - 0.5).abs()
    assert off.max() <= 0.02, table["balanced_acc"].to_string()


def test_label_only_selection_without_signal_is_at_chance():
    """Robustness scores (fractions of 10 queries kept) drawn independently of membership,
    six strengths: SELENA's best strength and max(global, class) stay within 2 points."""
    rng = np.random.default_rng(12)
    labels = no_signal_labels(rng)
    cand = {s: labels.map(lambda y, s=s: rng.binomial(10, 1 / (1 + s), len(y)) / 10) for s in (1, 2, 5, 10, 20, 30)}
    table = threshold_attack(cand, labels, CLASSES, seed=0)
    assert (table["balanced_acc"] - 0.5).abs().max() <= 0.02, table["balanced_acc"].to_string()


def test_boundary_selection_without_signal_is_at_chance():
    """Boundary distances (0 for misclassified points, else positive) drawn independently
    of membership."""
    rng = np.random.default_rng(13)
    labels = no_signal_labels(rng)
    dist = labels.map(lambda y: np.where(rng.random(len(y)) < 0.2, 0.0, rng.gamma(2.0, 0.5, len(y))))
    table = threshold_attack({"cw": dist}, labels, CLASSES, seed=0)
    assert (table["balanced_acc"] - 0.5).abs().max() <= 0.02, table["balanced_acc"].to_string()
