"""Membership inference attacks: known answers, scikit-learn agreement, protocol hygiene."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from sharpmem_lib.attacks import (
    AttackData,
    attack_scores,
    balanced,
    fit_class_thresholds,
    membership_metrics,
    run_attacks,
    tpr_at_fpr,
)


def logits_from_probs(p):
    return np.log(np.clip(p, 1e-12, None))


def make_data(rng, n, classes, member_conf, nonmember_conf):
    """Outputs whose true-class probability is drawn around a given confidence."""
    def part(conf):
        y = rng.integers(0, classes, n)
        p_y = np.clip(rng.normal(conf, 0.05, n), 0.01, 0.99)
        p = np.full((n, classes), 0.0)
        p[:] = ((1 - p_y) / (classes - 1))[:, None]
        p[np.arange(n), y] = p_y
        return logits_from_probs(p), y
    am, an, em, en = part(member_conf), part(nonmember_conf), part(member_conf), part(nonmember_conf)
    return AttackData(*am, *an, *em, *en)


def test_scores_by_hand():
    p = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]])
    y = np.array([0, 2])
    np.testing.assert_array_equal(attack_scores(p, y, "correctness"), [1.0, 0.0])
    np.testing.assert_allclose(attack_scores(p, y, "confidence"), [0.7, 0.3])
    np.testing.assert_allclose(attack_scores(p, y, "entropy"), (p * np.log(p)).sum(1))
    # Mentr for row 0: -(0.3) log 0.7 - 0.2 log 0.8 - 0.1 log 0.9
    m0 = -(0.3 * np.log(0.7)) - 0.2 * np.log(0.8) - 0.1 * np.log(0.9)
    m1 = -(0.7 * np.log(0.3)) - 0.2 * np.log(0.8) - 0.5 * np.log(0.5)
    np.testing.assert_allclose(attack_scores(p, y, "mentr"), [-m0, -m1])


def test_separated_scores_give_accuracy_and_auc_one():
    data = make_data(np.random.default_rng(0), 200, 5, member_conf=0.95, nonmember_conf=0.3)
    table = run_attacks(data, attacks=("confidence", "mentr")).loc["honest"]
    assert table.loc["confidence", "balanced_acc"] == 1.0 and table.loc["confidence", "auc"] == 1.0
    assert table.loc["best", "tpr@0.1%fpr"] == 1.0


def test_identical_distributions_give_chance():
    data = make_data(np.random.default_rng(1), 2000, 5, member_conf=0.6, nonmember_conf=0.6)
    table = run_attacks(data, protocols=("honest",), attacks=("confidence", "entropy", "mentr"))
    assert (table["balanced_acc"] - 0.5).abs().max() < 0.04
    assert (table["auc"] - 0.5).abs().max() < 0.04


def test_correctness_attack_equals_the_generalization_gap():
    rng = np.random.default_rng(2)
    n, classes = 1000, 10
    train_acc, test_acc = 0.95, 0.7

    def outputs(acc):
        y = rng.integers(0, classes, n)
        right = rng.random(n) < acc
        pred = np.where(right, y, (y + 1 + rng.integers(0, classes - 1, n)) % classes)
        return logits_from_probs(np.eye(classes)[pred] * 0.9 + 0.01), y, right.mean()

    em, ey, tr = outputs(train_acc)
    en, ny, te = outputs(test_acc)
    data = AttackData(em, ey, en, ny, em, ey, en, ny)
    acc = run_attacks(data, attacks=("correctness",)).loc[("honest", "correctness"), "balanced_acc"]
    assert acc == pytest.approx(0.5 + (tr - te) / 2)


def test_auc_and_tpr_agree_with_scikit_learn():
    rng = np.random.default_rng(3)
    y = rng.random(500) < 0.5
    scores = rng.normal(size=500) + y
    metrics = membership_metrics(y, scores, scores > 0.5)
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, scores))
    fpr, tpr, _ = roc_curve(y, scores)
    for target in (0.01, 0.1):
        # brute force over every threshold: the best TPR with FPR <= target
        best = max(((scores[y] >= t).mean() for t in np.unique(scores) if (scores[~y] >= t).mean() <= target),
                   default=0.0)
        assert tpr_at_fpr(y, scores, target) == pytest.approx(best)


def test_thresholds_maximise_per_class_balanced_accuracy():
    member, nonmember = np.array([0.9, 0.8, 0.7, 0.4]), np.array([0.6, 0.5, 0.3, 0.75])
    t = fit_class_thresholds(member, np.zeros(4, int), nonmember, np.zeros(4, int), 1)[0]
    brute = max(np.unique(np.r_[member, nonmember]), key=lambda s: (member >= s).mean() + (nonmember < s).mean())
    assert ((member >= t).mean() + (nonmember < t).mean()) == ((member >= brute).mean() + (nonmember < brute).mean())


def test_honest_thresholds_do_not_depend_on_evaluation_data():
    rng = np.random.default_rng(4)
    data = make_data(rng, 300, 4, member_conf=0.8, nonmember_conf=0.6)
    other = make_data(np.random.default_rng(99), 300, 4, member_conf=0.5, nonmember_conf=0.9)
    swapped = AttackData(*(getattr(data, f) for f in list(data.__dataclass_fields__)[:4]),
                         *(getattr(other, f) for f in list(other.__dataclass_fields__)[4:]))
    # the honest thresholds are a function of the attacker-known sets alone
    from sharpmem_lib.attacks import _probabilities
    def honest_thresholds(d):
        fm = attack_scores(_probabilities(d.attack_member_logits), d.attack_member_labels, "confidence")
        fn = attack_scores(_probabilities(d.attack_nonmember_logits), d.attack_nonmember_labels, "confidence")
        return fit_class_thresholds(fm, d.attack_member_labels, fn, d.attack_nonmember_labels, 4)
    np.testing.assert_array_equal(honest_thresholds(data), honest_thresholds(swapped))
    # on reversed evaluation data the honest attack does worse than chance; SELENA's protocol,
    # fitting on the evaluation data, falls back to chance (a threshold cannot reverse direction)
    both = run_attacks(swapped, attacks=("confidence",))
    honest, selena = both.loc[("honest", "confidence"), "balanced_acc"], both.loc[("selena", "confidence"), "balanced_acc"]
    assert honest < 0.5 <= selena


def test_selena_protocol_is_never_below_honest_on_the_same_data():
    data = make_data(np.random.default_rng(5), 400, 5, member_conf=0.75, nonmember_conf=0.65)
    both = run_attacks(data, attacks=("confidence", "mentr", "entropy"))
    assert (both.loc["selena", "balanced_acc"] >= both.loc["honest", "balanced_acc"] - 1e-12).all()


def test_nn_attack_learns_a_clear_signal():
    data = make_data(np.random.default_rng(6), 400, 4, member_conf=0.9, nonmember_conf=0.5)
    table = run_attacks(data, attacks=("nn",))
    assert table.loc[("honest", "nn"), "balanced_acc"] > 0.9
    assert table.loc[("honest", "nn"), "auc"] == table.loc[("selena", "nn"), "auc"]  # fitted once, on attacker data


def test_balanced_and_bad_input():
    m, n = balanced(np.arange(10), np.arange(100, 104), seed=0)
    assert len(m) == len(n) == 4 and set(n) == {100, 101, 102, 103}
    data = make_data(np.random.default_rng(7), 20, 3, 0.8, 0.5)
    with pytest.raises(ValueError, match="protocol='optimistic'"):
        run_attacks(data, ("optimistic",))
    with pytest.raises(ValueError, match="attacks='lira'"):
        run_attacks(data, attacks=("lira",))


def test_attack_data_from_a_partition():
    from sharpmem_lib.attacks import attack_data, attack_sets
    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.splits import make_partition

    d = load_dataset("digits")
    part = make_partition("digits", d, split_seed=2)
    logits = np.random.default_rng(0).normal(size=(len(d), 10))
    data = attack_data(logits, d.y, attack_sets(part, seed=1))
    assert len(data.eval_member_labels) == len(data.eval_nonmember_labels) == min(len(part.eval_members),
                                                                                   len(part.eval_nonmembers))
    np.testing.assert_array_equal(data.attack_member_logits, logits[part.attack_members])
    # every evaluation row comes from the evaluation sets: compare rows by content
    eval_rows = {tuple(r) for r in data.eval_member_logits}
    assert eval_rows <= {tuple(r) for r in logits[part.eval_members]}
    assert not eval_rows & {tuple(r) for r in logits[part.attack_members]}


# ------------------------------------------------------------------ label-only attacks
import torch  # noqa: E402

from sharpmem_lib.attacks import _translate, label_only_attack, perturbed_queries, robustness_scores  # noqa: E402


def test_translation_matches_brute_force():
    x = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).reshape(2, 1, 4, 5) + 1
    for dy, dx in [(1, 2), (-1, 0), (0, -3), (-2, 1)]:
        out = _translate(x, dy, dx).numpy()
        ref = np.zeros_like(out)
        for i in range(4):
            for j in range(5):
                si, sj = i - dy, j - dx
                if 0 <= si < 4 and 0 <= sj < 5:
                    ref[..., i, j] = x.numpy()[..., si, sj]
        np.testing.assert_array_equal(out, ref)


def test_query_sets():
    x = torch.rand(3, 1, 8, 8)
    queries = list(perturbed_queries(x, "translations", 2, repeats=0, seed=0))
    assert len(queries) == 5 * 5 * 2
    assert any(torch.equal(q, x) for q in queries)  # the unperturbed image is one query
    bits = torch.randint(0, 2, (4, 30)).float()
    for q in perturbed_queries(bits, "bitflips", 7, repeats=3, seed=1):
        assert ((q != bits).sum(1) == 7).all() and set(q.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="needs images"):
        list(perturbed_queries(bits, "translations", 1, 1, 0))


class NearestNeighbour(torch.nn.Module):
    """1-NN over stored points: the most memorizing classifier there is."""

    def __init__(self, X, y, classes):
        super().__init__()
        self.register_buffer("X", torch.as_tensor(X, dtype=torch.float32))
        self.register_buffer("onehot", torch.nn.functional.one_hot(torch.as_tensor(y), classes).float())
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # predict_logits reads the device from a parameter

    def forward(self, x):
        nearest = torch.cdist(x.flatten(1), self.X).argmin(1)
        return self.onehot[nearest] + 0 * self.dummy


def test_label_only_attack_finds_a_memorizing_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X[:, 0] + 0.7 * rng.normal(size=400) > 0).astype(int)  # noisy labels: members must be memorized
    members = np.arange(200)
    model = NearestNeighbour(X[members], y[members], 2)
    sets = {"attack_member": np.arange(0, 100), "eval_member": np.arange(100, 200),
            "attack_nonmember": np.arange(200, 300), "eval_nonmember": np.arange(300, 400)}
    Xs = {k: X[v] for k, v in sets.items()}
    ys = {k: y[v] for k, v in sets.items()}
    assert robustness_scores(model, Xs["eval_member"], ys["eval_member"], "noise", 0.01, repeats=3).mean() == 1.0
    table = label_only_attack(model, Xs, ys, "noise", [0.05, 0.3], repeats=10)
    honest, selena = table.loc["honest"], table.loc["selena"]
    assert honest["balanced_acc"] > 0.6 and honest["strength"] in (0.05, 0.3)
    assert selena["balanced_acc"] >= honest["balanced_acc"] - 0.02


def test_honest_best_attack_is_chosen_on_attacker_data():
    data = make_data(np.random.default_rng(8), 300, 4, member_conf=0.8, nonmember_conf=0.65)
    table = run_attacks(data)
    honest = table.loc["honest"].drop(index="best")
    assert table.loc[("honest", "best"), "chosen"] == honest["fit_acc"].idxmax()
    selena = table.loc["selena"].drop(index="best")
    assert table.loc[("selena", "best"), "chosen"] == selena["balanced_acc"].idxmax()
    assert table.loc[("honest", "best"), "balanced_acc"] == honest.loc[honest["fit_acc"].idxmax(), "balanced_acc"]


# ------------------------------------------------------------------------------ LiRA
from scipy.stats import norm  # noqa: E402

from sharpmem_lib.attacks import lira_leave_one_out, lira_scores, logit_confidence  # noqa: E402


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
    from sharpmem_lib.attacks import tpr_by_group
    scores = np.r_[np.arange(100.0), [150.0, 160.0, 50.0, 40.0]]  # 100 non-members, 4 members
    member = np.r_[np.zeros(100, bool), np.ones(4, bool)]
    group = np.r_[np.zeros(100, int), [1, 1, 2, 2]]
    # at 1 % FPR one non-member (score 99) may exceed the threshold: threshold = 98
    assert tpr_by_group(scores, member, group, 0.01) == {1: 1.0, 2: 0.0}
    assert tpr_by_group(scores, member, group, 0.55) == {1: 1.0, 2: 0.5}  # threshold 44: 55 of 100 non-members above


def test_lira_evaluation_pools_targets():
    from sharpmem_lib.attacks import lira_evaluation
    rng = np.random.default_rng(3)
    masks = rng.random((24, 200)) < 0.7  # enough shadows that every point is held out by some
    difficulty = rng.normal(0, 2, 200)
    conf = difficulty + 1.5 * masks + rng.normal(0, 0.3, (24, 200))
    group = np.arange(200) % 2
    table, scores, member = lira_evaluation(conf, masks, targets=[0, 1, 2], group=group)
    assert list(table.index) == [0, 1, 2] and len(scores) == len(member) == 600
    assert (table["auc"] > 0.9).all() and {"tpr@1%fpr_g0", "tpr@1%fpr_g1"} <= set(table.columns)


@pytest.mark.parametrize("method, tolerance, share", [("cw", 0.1, 0.9), ("hopskipjump", 0.35, 0.8)])
def test_boundary_distances_match_a_linear_model_by_hand(method, tolerance, share):
    """For a linear two-class model the L2 distance to the decision boundary is
    |(w0 - w1) x + b0 - b1| / ||w0 - w1||; CW should find it, HopSkipJump (a label-only
    search that only ever overestimates it) should come close. Misclassified points: 0."""
    import torch
    from torch import nn

    from sharpmem_lib.attacks import boundary_distances

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    v = np.random.default_rng(1).normal(size=4)
    v /= np.linalg.norm(v)
    with torch.no_grad():  # a boundary through the middle of the [0, 1] box
        model[1].weight.copy_(torch.tensor(np.stack([2.5 * v, -2.5 * v])))
        model[1].bias.copy_(torch.tensor([-2.5 * v.sum() / 2, 2.5 * v.sum() / 2]))
    X = np.random.default_rng(0).uniform(0.3, 0.7, size=(30, 1, 2, 2)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.tensor(X)).argmax(1).numpy()
    w, b = model[1].weight.detach().numpy(), model[1].bias.detach().numpy()
    flat = X.reshape(30, -1)
    margin = flat @ (w[0] - w[1]) + b[0] - b[1]
    normal = (w[0] - w[1]) / np.linalg.norm(w[0] - w[1])
    true = np.abs(margin) / np.linalg.norm(w[0] - w[1])
    # the closed form holds where the nearest boundary point lies inside the [0, 1] box
    nearest = flat - np.sign(margin)[:, None] * true[:, None] * normal
    inside = ((nearest >= 0) & (nearest <= 1)).all(1)
    assert inside.sum() >= 10
    d = boundary_distances(model, X, y, method, seed=0)
    close = np.abs(d - true) <= tolerance * true + 1e-3
    assert close[inside].mean() >= share
    if method == "hopskipjump":
        assert (d >= true - 1e-3).all()  # an adversarial example is never closer than the boundary
    wrong = boundary_distances(model, X[:5], 1 - y[:5], method, seed=0)
    assert (wrong == 0).all()


def test_boundary_distance_attack_rejects_bad_method():
    from sharpmem_lib.attacks import boundary_distances

    with pytest.raises(ValueError, match="method='pgd' is not valid"):
        boundary_distances(None, np.zeros((1, 2)), np.zeros(1, int), "pgd")
