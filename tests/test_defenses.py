"""Defenses: each core mechanism against an independent check (paper §5.2, Fig. 5c)."""

import contextlib

import numpy as np
import pandas as pd
import pytest
import torch

from sharpmem_lib.attacks import AttackSets, run_attacks
from sharpmem_lib.data import ToyMixture, load_dataset
from sharpmem_lib.defenses import (AdvRegRegularizer, MemGuard, check_defense, split_ai_assignment,
                                   split_ai_soft_labels, train_advreg, train_dp_sgd, train_selena)
from sharpmem_lib.experiments import ExperimentConfig, run_experiment
from sharpmem_lib.models import MLP
from sharpmem_lib.privacy import evaluate_privacy
from sharpmem_lib.tensors import seed_everything
from sharpmem_lib.train import TrainConfig, train_classifier


@pytest.fixture(scope="module")
def toy():
    mix = ToyMixture()
    return mix.sample(300, seed=0), mix.sample(200, seed=1)


def model(seed=0):
    seed_everything(seed)
    return MLP(2, 2, (16,))


# ------------------------------------------------------------------ SELENA


def test_split_ai_assignment_leaves_each_point_out_of_exactly_l_models():
    trained = split_ai_assignment(500, n_models=7, n_excluded=3, seed=1)
    assert trained.shape == (7, 500)
    assert (trained.sum(0) == 4).all()
    # the left-out models are spread over all sub-models, not always the same ones
    assert ((~trained).sum(1) > 150).all()
    assert np.array_equal(trained, split_ai_assignment(500, 7, 3, seed=1))
    assert not np.array_equal(trained, split_ai_assignment(500, 7, 3, seed=2))


@pytest.mark.parametrize("kwargs, message", [(dict(n_models=3, n_excluded=3), "n_excluded"),
                                             (dict(n_models=0, n_excluded=1), "n_models")])
def test_split_ai_assignment_rejects_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        split_ai_assignment(10, **kwargs)


def test_split_ai_never_answers_with_a_model_that_saw_the_point():
    rng = np.random.default_rng(0)
    trained = split_ai_assignment(50, n_models=5, n_excluded=2, seed=0)
    probs = rng.dirichlet(np.ones(3), size=(5, 50))
    poisoned = np.where(trained[:, :, None], np.nan, probs)  # anything a seen model says is garbage
    soft = split_ai_soft_labels(poisoned, trained)
    assert np.isfinite(soft).all()
    brute = np.stack([probs[~trained[:, i], i].mean(0) for i in range(50)])
    np.testing.assert_allclose(soft, brute)
    np.testing.assert_allclose(soft.sum(1), 1.0)


def test_selena_distils_split_ai_into_one_model(toy):
    train, test = toy
    config = TrainConfig(epochs=6, batch_size=32, lr=0.05)
    result = train_selena(lambda: MLP(2, 2, (16,)), train.X, train.y, config, n_models=4, n_excluded=2,
                          X_val=test.X, y_val=test.y, progress=False)
    assert 0.5 < result.history[0]["split_ai_train_acc"] <= 1.0
    assert result.best_state is not None and len(result.history) == 6
    out = result.model(torch.as_tensor(test.X, dtype=torch.float32))
    assert out.shape == (len(test.X), 2)


def test_interrupted_selena_resumes_without_retraining_finished_sub_models(toy, tmp_path):
    train, test = toy
    config = TrainConfig(epochs=3, batch_size=32, lr=0.05)
    builds = []

    def build():
        builds.append(1)
        if len(builds) == killed_at:
            raise KeyboardInterrupt
        return MLP(2, 2, (16,))

    killed_at = None
    whole = train_selena(build, train.X, train.y, config, n_models=4, n_excluded=2, progress=False,
                         checkpoint_path=tmp_path / "a.pt")
    assert not (tmp_path / "a.pt.split-ai").exists()  # cleaned up once the run is complete
    builds.clear()
    killed_at = 3  # while building the third sub-model
    with pytest.raises(KeyboardInterrupt):
        train_selena(build, train.X, train.y, config, n_models=4, n_excluded=2, progress=False,
                     checkpoint_path=tmp_path / "b.pt")
    assert len(list((tmp_path / "b.pt.split-ai").glob("*/probs.npz"))) == 2  # two finished sub-models in the store
    builds.clear()
    killed_at = None
    resumed = train_selena(build, train.X, train.y, config, n_models=4, n_excluded=2, progress=False,
                           checkpoint_path=tmp_path / "b.pt")
    assert len(builds) == 3  # sub-models 3 and 4, then the student
    for p, q in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    assert whole.history == resumed.history


# ------------------------------------------------------------------ AdvReg


def test_advreg_with_alpha_zero_is_plain_training(toy):
    train, test = toy
    config = TrainConfig(algorithm="sam", epochs=3, batch_size=32, lr=0.05)
    plain = train_classifier(model(), train.X, train.y, config, progress=False).model
    adv = train_advreg(model(), train.X, train.y, config, test.X, test.y, alpha=0.0, progress=False).model
    for p, q in zip(plain.parameters(), adv.parameters()):
        assert torch.equal(p, q)
    other = train_advreg(model(), train.X, train.y, config, test.X, test.y, alpha=1.0, progress=False).model
    assert not all(torch.equal(p, q) for p, q in zip(plain.parameters(), other.parameters()))


def test_advreg_alternates_k_inference_steps_per_classifier_step(toy):
    train, test = toy
    config = TrainConfig(epochs=2, batch_size=100, lr=0.05)
    result = train_advreg(model(), train.X, train.y, config, test.X, test.y, alpha=1.0, k_inference=3,
                          progress=False)
    batches = 3  # 300 points, batches of 100
    assert [h["classifier_steps"] for h in result.history] == [batches, 2 * batches]
    assert [h["inference_steps"] for h in result.history] == [3 * batches, 6 * batches]
    assert all(np.isfinite(h["inference_gain"]) for h in result.history)


def test_advreg_penalty_is_the_log_membership_confidence():
    reg = AdvRegRegularizer(3, np.zeros((4, 2)), np.zeros(4, int), alpha=2.0)
    logits, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    with torch.no_grad():
        h = torch.sigmoid(reg.h(torch.cat([logits.softmax(1), torch.nn.functional.one_hot(y, 3).float()], 1)))
        assert reg.loss(logits, y).item() == pytest.approx((2.0 * torch.log(h).mean()).item(), rel=1e-5)


@pytest.mark.parametrize("defense, kwargs, lr", [("advreg", {"alpha": 1.0}, 0.05),
                                                ("dpsgd", {"noise_multiplier": 1.0}, 0.1)])
def test_defended_run_resumes_to_the_same_result(tmp_path, defense, kwargs, lr):
    """A killed run ends exactly where an uninterrupted one does, best-validation weights
    included: for DP-SGD the checkpoint also carries the momentum, the accountant and both
    random streams (sampler, noise)."""
    cfg = ExperimentConfig("digits", "mlp", TrainConfig(epochs=3, batch_size=64, lr=lr),
                           model_kwargs={"hidden": (16,)}, defense=defense, defense_kwargs=kwargs)
    whole = run_experiment(cfg, tmp_path / "a", progress=False)

    class Killed(Exception):
        pass

    def kill(epoch):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        run_experiment(cfg, tmp_path / "b", progress=False, on_epoch_end=kill)
    resumed = run_experiment(cfg, tmp_path / "b", progress=False)
    for which in ("logits_final", "logits_best"):  # the best-validation weights survive the kill too
        np.testing.assert_array_equal(whole.outputs()[which], resumed.outputs()[which])
    assert whole.history == resumed.history and whole.status["best_epoch"] == resumed.status["best_epoch"]
    if defense == "dpsgd":
        assert whole.history[-1]["epsilon"] > whole.history[0]["epsilon"]


# ------------------------------------------------------------------ DP-SGD


def test_dp_sgd_spends_privacy_and_returns_a_plain_module(toy):
    train, test = toy
    config = TrainConfig(epochs=3, batch_size=50, lr=0.1)
    result = train_dp_sgd(model(), train.X, train.y, config, noise_multiplier=1.0, max_grad_norm=1.0,
                          X_val=test.X, y_val=test.y, progress=False)
    eps = [h["epsilon"] for h in result.history]
    assert 0 < eps[0] < eps[1] < eps[2]
    assert not any(hasattr(p, "grad_sample") for p in result.model.parameters())
    assert result.best_state is not None
    with pytest.raises(ValueError, match="plain SGD"):
        train_dp_sgd(model(), train.X, train.y, TrainConfig(algorithm="sam", epochs=1), progress=False)


# ------------------------------------------------------------------ MemGuard


def test_memguard_keeps_labels_and_moves_its_attack_score_to_one_half():
    rng = np.random.default_rng(0)
    n, k = 400, 5
    labels = rng.integers(0, k, n)
    member = np.eye(k)[labels] * 8 + rng.normal(0, 1, (n, k))  # confident
    nonmember = np.eye(k)[labels] * 2 + rng.normal(0, 1, (n, k))  # less so
    guard = MemGuard(seed=0).fit(member, nonmember)
    z = np.concatenate([member, nonmember])
    before, defended = guard.score(z), guard.transform(z)
    after = guard.score(defended)
    assert (defended.argmax(1) == z.argmax(1)).all()
    assert np.abs(after - 0.5).mean() < 0.25 * np.abs(before - 0.5).mean()
    np.testing.assert_allclose(np.exp(defended).sum(1), 1.0, rtol=1e-5)
    # phase II with a zero budget adds no noise at all
    np.testing.assert_allclose(MemGuard(seed=0, budget=0.0).fit(member, nonmember).transform(z),
                               torch.as_tensor(z).float().log_softmax(1).numpy(), atol=1e-6)


def test_memguard_must_be_fitted_first():
    with pytest.raises(RuntimeError, match="fit"):
        MemGuard().transform(np.zeros((2, 3)))


def synthetic_outputs(n, k, rng, member_scale=8.0, nonmember_scale=2.0):
    labels = rng.integers(0, k, 2 * n)
    logits = np.eye(k)[labels] * np.r_[np.full(n, member_scale), np.full(n, nonmember_scale)][:, None]
    return logits + rng.normal(0, 1, (2 * n, k)), labels


def test_memguard_defeats_confidence_attacks_fitted_on_defended_outputs():
    rng = np.random.default_rng(1)
    k, n = 5, 300
    defender, _ = synthetic_outputs(n, k, rng)
    guard = MemGuard(seed=0).fit(defender[:n], defender[n:])
    parts = [synthetic_outputs(n, k, rng) for _ in range(2)]  # attacker-known and evaluation sets

    def attack(transform):
        (za, ya), (ze, ye) = [(transform(z), y) for z, y in parts]
        outputs, labels = AttackSets(za[:n], za[n:], ze[:n], ze[n:]), AttackSets(ya[:n], ya[n:], ye[:n], ye[n:])
        return run_attacks(outputs, labels, protocols=("honest",), attacks=("confidence", "entropy"))

    plain, guarded = attack(lambda z: z), attack(guard.transform)
    for name in ("confidence_global", "entropy_global"):
        assert plain.loc[("honest", name), "auc"] > 0.9
        assert abs(guarded.loc[("honest", name), "auc"] - 0.5) < 0.5 * abs(plain.loc[("honest", name), "auc"] - 0.5)


def test_memguard_in_privacy_evaluation_keeps_accuracy_and_label_only_attacks(tmp_path):
    data = load_dataset("digits")
    art = run_experiment(ExperimentConfig("digits", "mlp", TrainConfig(epochs=5, batch_size=64, lr=0.05),
                                          model_kwargs={"hidden": (32,)}), tmp_path, progress=False)
    plain = evaluate_privacy(art, data, [0], which="final")
    guarded = evaluate_privacy(art, data, [0], which="final", output_defense=MemGuard(seed=0, steps=50))
    assert (guarded["test_acc"] == plain["test_acc"]).all()
    assert (guarded["multi_query"] == plain["multi_query"]).all()


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize("defense, kwargs, message", [("memguard", {}, "defense='memguard' is not valid"),
                                                      ("advreg", {"beta": 1}, r"\['beta'\].*alpha"),
                                                      ("advreg", {"alpha": -1.0}, "alpha=-1.0"),
                                                      ("dpsgd", {"noise_multiplier": 0.0}, "noise_multiplier=0.0"),
                                                      ("dpsgd", {"delta": 1.5}, "delta=1.5"),
                                                      ("selena", {"n_models": 4, "n_excluded": 4}, "n_excluded=4")])
def test_bad_defense_is_rejected_up_front(defense, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_defense(defense, kwargs)
    with pytest.raises(ValueError, match=message):
        ExperimentConfig("digits", "mlp", defense=defense, defense_kwargs=kwargs)


# ------------------------------------------------------------------ devices (issue 17)


def test_advreg_before_step_leaves_batchnorm_statistics_alone():
    """The inference model's step queries the classifier in eval mode: BatchNorm's running
    statistics must not absorb the members' batch or the reference (validation) data, and
    the classifier is back in training mode afterwards. (Old code: train mode, stats moved.)"""
    from torch import nn

    seed_everything(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    g = torch.Generator().manual_seed(0)
    X_ref, y_ref = 3 + torch.randn(40, 2, generator=g), torch.randint(0, 2, (40,), generator=g)
    reg = AdvRegRegularizer(2, X_ref, y_ref, k_inference=3)
    before = {k: v.clone() for k, v in net[1].state_dict().items()}
    net.train()
    reg.before_step(net, torch.randn(16, 2, generator=g), torch.randint(0, 2, (16,), generator=g))
    assert net.training and net[1].training
    for name, value in net[1].state_dict().items():
        assert torch.equal(value, before[name]), name
    assert reg.steps == {"inference": 3, "classifier": 1}
    assert np.isfinite(reg.epoch_record()["inference_gain"])


def test_dp_sgd_noise_generator_lives_on_the_training_device(toy, monkeypatch):
    """Opacus draws the noise with device= the parameters' device and the run's generator;
    the generator must be on that device (a CPU generator crashes the first CUDA step)."""
    import opacus

    seen = []
    real = opacus.PrivacyEngine.make_private

    def spy(self, **kwargs):
        seen.append(kwargs["noise_generator"].device)
        return real(self, **kwargs)

    monkeypatch.setattr(opacus.PrivacyEngine, "make_private", spy)
    train, _ = toy
    net = model()
    train_dp_sgd(net, train.X, train.y, TrainConfig(epochs=1, batch_size=50), progress=False)
    assert seen == [next(net.parameters()).device]


def test_memguard_evaluation_is_kept_in_the_store_under_its_settings(tmp_path, monkeypatch):
    """A warm build must not fit MemGuard again: its rows are stored under its settings
    (cache_config); the same rows come back without a fit, and other settings are computed anew."""
    data = load_dataset("digits")
    art = run_experiment(ExperimentConfig("digits", "mlp", TrainConfig(epochs=5, batch_size=64, lr=0.05),
                                          model_kwargs={"hidden": (32,)}), tmp_path, progress=False)
    fits, real_fit = [], MemGuard.fit
    monkeypatch.setattr(MemGuard, "fit", lambda self, *a: fits.append(self.steps) or real_fit(self, *a))
    first = evaluate_privacy(art, data, [0], which="final", output_defense=MemGuard(seed=0, steps=20))
    assert fits == [20]
    again = evaluate_privacy(art, data, [0], which="final", output_defense=MemGuard(seed=0, steps=20))
    assert fits == [20]  # read back: no fit, no transform, no query
    pd.testing.assert_frame_equal(first, again)
    evaluate_privacy(art, data, [0], which="final", output_defense=MemGuard(seed=0, steps=21))
    assert fits == [20, 21]  # another setting is another entry
    assert MemGuard(seed=3).cache_config() != MemGuard(seed=0).cache_config()


def test_memguard_runs_on_one_thread_with_the_same_logits_and_restores_the_thread_count(monkeypatch):
    """MemGuard's fit and transform run on one torch thread (faster: element-wise steps on
    small tensors); the defended logits must be those of the old multi-threaded run, and the
    caller's thread count must come back."""
    from sharpmem_lib import defenses

    rng = np.random.default_rng(3)
    member, nonmember = rng.normal(0, 3, (300, 10)), rng.normal(0, 1, (300, 10))
    z = rng.normal(0, 2, (500, 10))
    seen = []
    real = defenses.MemGuard._transform
    monkeypatch.setattr(defenses.MemGuard, "_transform", lambda self, x: seen.append(torch.get_num_threads())
                        or real(self, x))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fast = MemGuard(seed=0, steps=40, epochs=40).fit(member, nonmember).transform(z)
        assert seen == [1] and torch.get_num_threads() == 2
        with monkeypatch.context() as m:  # the old path: no thread limit
            m.setattr(defenses, "one_cpu_thread", contextlib.nullcontext)
            old = MemGuard(seed=0, steps=40, epochs=40).fit(member, nonmember).transform(z)
        assert seen[-1] == 2
    finally:
        torch.set_num_threads(previous)
    np.testing.assert_array_equal(fast, old)
