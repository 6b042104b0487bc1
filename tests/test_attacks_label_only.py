"""Label-only attacks: perturbations by brute force, robustness on a memorizing model, and
the boundary-distance attack against a linear model's closed-form distance."""

import numpy as np
import pytest
import torch

from sharpmem_lib.attacks import AttackSets, label_only_attack, perturbed_queries, robustness_scores, translate
from sharpmem_lib.attacks import label_only


pytestmark = pytest.mark.usefixtures("one_thread")


def test_translation_matches_brute_force():
    x = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).reshape(2, 1, 4, 5) + 1
    for dy, dx in [(1, 2), (-1, 0), (0, -3), (-2, 1)]:
        out = translate(x, dy, dx).numpy()
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


def memorizing_setup():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X[:, 0] + 0.7 * rng.normal(size=400) > 0).astype(int)  # noisy labels: members must be memorized
    model = NearestNeighbour(X[:200], y[:200], 2)
    index = AttackSets(np.arange(0, 100), np.arange(200, 300), np.arange(100, 200), np.arange(300, 400))
    return model, index.take(X), index.take(y)


def test_label_only_attack_finds_a_memorizing_model():
    model, Xs, ys = memorizing_setup()
    assert robustness_scores(model, Xs.eval_member, ys.eval_member, "noise", 0.01, repeats=3).mean() == 1.0
    table = label_only_attack(model, Xs, ys, "noise", [0.05, 0.3], repeats=10)
    assert set(table.index) == {(p, k) for p in ("honest", "selena") for k in ("global", "class", "best")}
    honest, selena = table.loc[("honest", "best")], table.loc[("selena", "best")]
    assert honest["balanced_acc"] > 0.6 and honest["strength"] in (0.05, 0.3)
    assert selena["balanced_acc"] == table.loc["selena", "balanced_acc"].max()  # SELENA: the max over choices
    with pytest.raises(ValueError, match="strengths"):
        label_only_attack(model, Xs, ys, "noise", [])


def test_boundary_distance_attack_on_a_memorizing_model():
    """1-NN is right on every member; its distances feed the shared threshold step."""
    from sharpmem_lib.attacks import boundary_distance_attack

    model, Xs, ys = memorizing_setup()
    table = boundary_distance_attack(model, Xs, ys, "hopskipjump", max_points=20, max_iter=1)
    assert table["n_eval"].iloc[0] == 40 and (table["method"] == "hopskipjump").all()
    assert table.loc[("selena", "best"), "balanced_acc"] == table.loc["selena", "balanced_acc"].max()


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


class CountingLinear(torch.nn.Module):
    """A linear classifier on flattened images that counts its forward passes."""

    def __init__(self, d, classes, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.lin = torch.nn.Linear(d, classes)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x.flatten(1))


def test_robustness_scores_are_remembered_for_the_same_weights_and_points_only():
    """Chapter 4's MemGuard rows query the same SGD weights on the same points as its
    undefended rows: the second call must read the scores (no forward pass), equal to a fresh
    computation; other weights, points or settings must be computed anew."""
    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    model = CountingLinear(36, 3)
    first = robustness_scores(model, X, y, "translations", 1)
    calls = model.calls
    assert calls == 18  # (2s+1)^2 x 2 queries, one batch each
    first[:] = -1  # the caller's copy: mutating it must not touch what is remembered
    again = robustness_scores(model, X, y, "translations", 1)
    assert model.calls == calls  # read, not recomputed
    twin = CountingLinear(36, 3)  # the same weights (same seed) in another object: remembered too
    np.testing.assert_array_equal(robustness_scores(twin, X, y, "translations", 1), again)
    assert twin.calls == 0
    label_only._MEMO.clear()
    fresh = robustness_scores(twin, X, y, "translations", 1)  # computed from scratch
    assert twin.calls == calls
    np.testing.assert_array_equal(again, fresh)
    assert (again >= 0).all()
    with torch.no_grad():
        model.lin.weight[0, 0] += 1e-3  # one changed weight: computed anew
    robustness_scores(model, X, y, "translations", 1)
    assert model.calls == 2 * calls
    robustness_scores(model, X[:-1], y[:-1], "translations", 1)  # other points
    robustness_scores(model, X, y, "noise", 0.1, repeats=2)  # other settings
    assert model.calls == 2 * calls + 18 + 2


def test_robustness_memo_keeps_chapter_4s_span_and_evicts_the_oldest_beyond_its_budget(monkeypatch):
    """Chapter 4 scores ~50 other (target, weights) pairs between an SGD target's undefended
    rows and its MemGuard rows: 60 entries must all be kept; past the byte budget the least
    recently used entry goes first."""
    rng = np.random.default_rng(1)
    X = rng.random((500, 1, 2, 2)).astype(np.float32)  # one batch of robustness_scores (512): one forward per query
    y = rng.integers(0, 3, len(X))
    label_only._MEMO.clear()
    models = [CountingLinear(4, 3, seed=s) for s in range(60)]
    for m in models:
        robustness_scores(m, X, y, "noise", 0.1, repeats=1)
    robustness_scores(models[0], X, y, "noise", 0.1, repeats=1)
    assert models[0].calls == 1 and len(label_only._MEMO) == 60
    monkeypatch.setattr(label_only, "_MEMO_BYTES", 3 * label_only._MEMO[next(iter(label_only._MEMO))].nbytes)  # 3 fit
    robustness_scores(models[1], X, y, "noise", 0.1, repeats=1)  # still remembered, now the newest
    assert models[1].calls == 1
    extra = CountingLinear(4, 3, seed=99)
    robustness_scores(extra, X, y, "noise", 0.1, repeats=1)
    assert len(label_only._MEMO) == 3  # the three most recently used: models[0], models[1], extra
    robustness_scores(models[0], X, y, "noise", 0.1, repeats=1)
    robustness_scores(models[2], X, y, "noise", 0.1, repeats=1)
    assert models[0].calls == 1 and models[2].calls == 2
