"""Single-query attacks: scores by hand, known answers, and the NN attack's protocols."""

import numpy as np
import pytest
import torch

from sharpmem_lib.attacks import AttackSets, attack_scores, nn_attack, run_attacks
from sharpmem_lib.attacks.single_query import NN_WIDTHS, InferenceAttack

SMALL_NN = {"scale": 0.125, "batch_size": 64, "lr": 1e-3, "epochs": 30, "init_std": None}


pytestmark = pytest.mark.usefixtures("one_thread")


def logits_from_probs(p):
    return np.log(np.clip(p, 1e-12, None))


def make_data(rng, n, classes, member_conf, nonmember_conf):
    """Outputs whose true-class probability is drawn around a given confidence; members of
    both the attacker-known and the evaluation sets look alike, and so do non-members."""
    def part(conf):
        y = rng.integers(0, classes, n)
        p_y = np.clip(rng.normal(conf, 0.05, n), 0.01, 0.99)
        p = np.full((n, classes), 0.0)
        p[:] = ((1 - p_y) / (classes - 1))[:, None]
        p[np.arange(n), y] = p_y
        return logits_from_probs(p), y
    parts = [part(member_conf), part(nonmember_conf), part(member_conf), part(nonmember_conf)]
    return AttackSets(*(z for z, _ in parts)), AttackSets(*(y for _, y in parts))


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
    outputs, labels = make_data(np.random.default_rng(0), 200, 5, member_conf=0.95, nonmember_conf=0.3)
    table = run_attacks(outputs, labels, attacks=("confidence", "mentr")).loc["honest"]
    for name in ("confidence_global", "confidence_class", "best"):
        # SELENA's threshold is the lowest attacker-known member score (not a midpoint): the
        # odd evaluation member below it is missed
        assert table.loc[name, "balanced_acc"] >= 0.98 and table.loc[name, "auc"] == 1.0
    assert table.loc["best", "tpr@0fp"] == 1.0


def test_correctness_attack_equals_the_generalization_gap():
    rng = np.random.default_rng(2)
    n, classes = 1000, 10

    def outputs(acc):
        y = rng.integers(0, classes, n)
        right = rng.random(n) < acc
        pred = np.where(right, y, (y + 1 + rng.integers(0, classes - 1, n)) % classes)
        return logits_from_probs(np.eye(classes)[pred] * 0.9 + 0.01), y, right.mean()

    em, ey, tr = outputs(0.95)
    en, ny, te = outputs(0.7)
    table = run_attacks(AttackSets(em, en, em, en), AttackSets(ey, ny, ey, ny), attacks=("correctness",))
    assert table.loc[("honest", "correctness"), "balanced_acc"] == pytest.approx(0.5 + (tr - te) / 2)


def test_selena_best_is_the_max_over_attacks_and_honest_best_the_attacker_estimate():
    outputs, labels = make_data(np.random.default_rng(8), 300, 4, member_conf=0.8, nonmember_conf=0.65)
    table = run_attacks(outputs, labels, nn_options=SMALL_NN)
    selena = table.loc["selena"].drop(index="best")
    assert table.loc[("selena", "best"), "chosen"] == selena["balanced_acc"].astype(float).idxmax()
    assert table.loc[("selena", "best"), "balanced_acc"] == selena["balanced_acc"].max()
    honest = table.loc["honest"].drop(index="best")
    assert table.loc[("honest", "best"), "chosen"] == honest["attacker_acc"].astype(float).idxmax()
    # threshold attacks are fitted once, on attacker data: the same numbers under both protocols
    thresholded = [a for a in selena.index if a != "nn"]
    np.testing.assert_allclose(selena.loc[thresholded, "balanced_acc"].astype(float),
                               honest.loc[thresholded, "balanced_acc"].astype(float))


def test_nn_attack_learns_a_clear_signal_and_selena_picks_its_best_evaluation_epoch():
    outputs, labels = make_data(np.random.default_rng(6), 400, 4, member_conf=0.9, nonmember_conf=0.5)
    rows = nn_attack(outputs, labels, 4, **SMALL_NN)
    assert rows.loc[("honest", "nn"), "balanced_acc"] > 0.9
    assert 1 <= rows.loc[("selena", "nn"), "epoch"] <= SMALL_NN["epochs"]
    assert rows.loc[("honest", "nn"), "attacker_acc"] > 0.8 and np.isnan(rows.loc[("selena", "nn"), "attacker_acc"])


def test_selenas_nn_architecture():
    model = InferenceAttack(100)
    widths = [m.out_features for m in model.features if isinstance(m, torch.nn.Linear)]
    assert tuple(widths) == NN_WIDTHS["features"] and model.features[0].in_features == 100
    assert [m.out_features for m in model.combine if isinstance(m, torch.nn.Linear)] == [512, 256, 128, 64, 1]
    assert float(model.combine[-1].bias.detach().abs().max()) == 0.0
    assert abs(float(model.features[0].weight.detach().std()) - 0.01) < 0.001
    out = model(torch.rand(3, 100), torch.eye(100)[:3])
    assert out.shape == (3,) and ((out > 0) & (out < 1)).all()


def test_bad_input():
    outputs, labels = make_data(np.random.default_rng(7), 20, 3, 0.8, 0.5)
    with pytest.raises(ValueError, match="protocol='optimistic'"):
        run_attacks(outputs, labels, ("optimistic",))
    with pytest.raises(ValueError, match="attacks='lira'"):
        run_attacks(outputs, labels, attacks=("lira",))
    with pytest.raises(ValueError, match="holdout=1.5"):
        nn_attack(outputs, labels, 3, holdout=1.5)


def test_nn_attack_with_foreach_adam_gives_the_per_tensor_loops_numbers(monkeypatch):
    """The NN attack's Adam runs with foreach=True (one call per operation for all parameter
    tensors, faster on a CPU): the rows must be exactly those of the per-tensor loop
    (foreach=False), which computed every cached attack before."""
    import pandas as pd

    rng = np.random.default_rng(4)
    outputs, labels = make_data(rng, 200, 10, 0.9, 0.4)
    opts = dict(epochs=10, batch_size=32, lr=1e-3, scale=0.125, init_std=None, seed=2)
    new = nn_attack(outputs, labels, 10, **opts)
    real = torch.optim.Adam
    monkeypatch.setattr(torch.optim, "Adam", lambda params, **kw: real(params, **{**kw, "foreach": False}))
    old = nn_attack(outputs, labels, 10, **opts)
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    assert new["auc"].max() > 0.6  # it learned something: not the equality of two untrained networks


def _reference_nn_attack(outputs, labels, num_classes, epochs, batch_size, lr, scale, init_std, seed, holdout=0.2):
    """The NN attack as it was before the fast path (commit 51ffb6e): module calls, the
    batch as cat([members[bm], non-members[bn]]), and every watched set scored after every
    epoch; the epoch picked by np.argmax over the per-epoch accuracies."""
    from torch import nn

    from sharpmem_lib.attacks.single_query import probabilities
    from sharpmem_lib.attacks.thresholds import balanced_accuracy, membership_metrics

    def train(fit_m, fit_n, watch):
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = InferenceAttack(num_classes, scale, init_std)
        opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
        n = min(len(fit_m[0]), len(fit_n[0]))
        history = {k: {"acc": [], "scores": []} for k in watch}
        for _ in range(epochs):
            model.train()
            perm_m, perm_n = torch.randperm(len(fit_m[0]), generator=gen), torch.randperm(len(fit_n[0]), generator=gen)
            for i in range(0, n, batch_size):
                bm, bn = perm_m[i:min(i + batch_size, n)], perm_n[i:min(i + batch_size, n)]
                out = model(torch.cat([fit_m[0][bm], fit_n[0][bn]]), torch.cat([fit_m[1][bm], fit_n[1][bn]]))
                loss = nn.functional.mse_loss(out, torch.cat([torch.ones(len(bm)), torch.zeros(len(bn))]))
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                for k, (m, nm) in watch.items():
                    sm, sn = model(*m).numpy(), model(*nm).numpy()
                    history[k]["acc"].append(balanced_accuracy(sm > 0.5, sn > 0.5))
                    history[k]["scores"].append(np.r_[sm, sn])
        return history

    f = {k: (torch.as_tensor(probabilities(np.asarray(getattr(outputs, k))), dtype=torch.float32),
             torch.as_tensor(np.eye(num_classes)[np.asarray(getattr(labels, k))], dtype=torch.float32))
         for k, _ in outputs.items()}
    evaluation = (f["eval_member"], f["eval_nonmember"])
    y_true = np.r_[np.ones(len(labels.eval_member), bool), np.zeros(len(labels.eval_nonmember), bool)]
    rows = {}
    h = train(f["attack_member"], f["attack_nonmember"], {"eval": evaluation})
    epoch = int(np.argmax(h["eval"]["acc"]))
    rows["selena"] = (epoch, float("nan"), h["eval"]["scores"][epoch])
    rng = np.random.default_rng(seed)
    split = {}
    for k in ("attack_member", "attack_nonmember"):
        perm = rng.permutation(len(f[k][0]))
        cut = int(round(holdout * len(perm)))
        split[k] = tuple(tuple(t[idx] for t in f[k]) for idx in (perm[cut:], perm[:cut]))
    halves = {k: tuple(tuple(t[i::2] for t in split[k][1]) for i in (0, 1)) for k in split}
    h = train(split["attack_member"][0], split["attack_nonmember"][0],
              {"choose": (halves["attack_member"][0], halves["attack_nonmember"][0]),
               "check": (halves["attack_member"][1], halves["attack_nonmember"][1]), "eval": evaluation})
    epoch = int(np.argmax(h["choose"]["acc"]))
    rows["honest"] = (epoch, float(h["check"]["acc"][epoch]), h["eval"]["scores"][epoch])
    return {p: {**membership_metrics(y_true, s, s > 0.5), "attacker_acc": a, "epoch": e + 1}
            for p, (e, a, s) in rows.items()}


@pytest.mark.parametrize("seed, member_conf", [(0, 0.9), (3, 0.6)])
def test_nn_attack_fast_path_gives_the_old_loops_numbers(seed, member_conf):
    """The fast NN attack (functional forward, one gather per batch, the report sets scored
    only at a new best epoch) must give exactly the old loop's rows, cached attacks included."""
    rng = np.random.default_rng(seed)
    outputs, labels = make_data(rng, 150, 10, member_conf, 0.5)
    opts = dict(epochs=12, batch_size=32, lr=1e-3, scale=0.125, init_std=None, seed=seed)
    new = nn_attack(outputs, labels, 10, **opts)
    ref = _reference_nn_attack(outputs, labels, 10, **opts)
    for protocol, expected in ref.items():
        got = new.loc[(protocol, "nn")]
        for key, value in expected.items():
            if isinstance(value, float) and np.isnan(value):
                assert np.isnan(got[key]), (protocol, key)
            else:
                assert got[key] == value, (protocol, key, got[key], value)
    assert 1 < new.loc[("honest", "nn"), "epoch"] or 1 < new.loc[("selena", "nn"), "epoch"]  # a choice was made
