"""The training loop: learns, is deterministic, fails loudly, and checks its config."""

import numpy as np
import pytest
import torch
from torch import nn

from sharpmem_lib.data import ToyMixture
from sharpmem_lib.models import MLP, count_parameters
from sharpmem_lib.tensors import seed_everything
from sharpmem_lib.train import TrainConfig, accuracy, train_classifier


@pytest.fixture(scope="module")
def toy():
    mix = ToyMixture()
    return mix.sample(400, seed=0), mix.sample(2000, seed=1)


def fit(train, config, hidden=(16,)):
    seed_everything(config.seed)
    return train_classifier(MLP(2, 2, hidden), train.X, train.y, config, progress=False)


@pytest.mark.parametrize("algorithm", ["sgd", "sam", "sharpreg"])
def test_learns_the_toy_problem(toy, algorithm):
    train, test = toy
    result = fit(train, TrainConfig(algorithm=algorithm, lam=0.5, xi=0.1, rho=0.05, lr=0.05, epochs=15, batch_size=32))
    assert accuracy(result.model, test.X, test.y) > 0.85
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert [h["epoch"] for h in result.history] == list(range(1, 16))


def test_same_config_gives_identical_weights(toy):
    train, _ = toy
    cfg = TrainConfig(algorithm="sam", epochs=3, batch_size=50, seed=7)
    a, b = fit(train, cfg).model, fit(train, cfg).model
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    c = fit(train, TrainConfig(algorithm="sam", epochs=3, batch_size=50, seed=8)).model
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_divergence_raises_and_names_hyperparameters(toy):
    train, _ = toy
    with pytest.raises(FloatingPointError, match=r"sharpreg\(rho=0.1, lam=1, xi=0.5\), lr=1e\+20"):
        fit(train, TrainConfig(algorithm="sharpreg", lam=1.0, xi=0.5, lr=1e20, epochs=5))


def test_swa_recomputes_batchnorm_statistics(toy):
    """After SWA, BN's running mean must be the mean activation of the *averaged* weights."""
    train, _ = toy
    seed_everything(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    cfg = TrainConfig(algorithm="sam", epochs=8, batch_size=40, swa=True, swa_start=0.5, swa_lr=0.02)
    swa_model = train_classifier(model, train.X, train.y, cfg, progress=False).model
    with torch.no_grad():
        pre_bn = swa_model[0](torch.as_tensor(train.X))
    # update_bn averages per-batch means with equal weights; batches are equal-sized here
    torch.testing.assert_close(swa_model[1].running_mean, pre_bn.mean(0), atol=1e-5, rtol=0)
    assert not all(torch.equal(p, q) for p, q in zip(swa_model.parameters(), model.parameters()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(algorithm="adam"), r"algorithm='adam' is not valid; choose one of \['sgd', 'sam'"),
        (dict(rho=-1.0), "rho=-1.0"),
        (dict(epochs=0), "epochs=0"),
        (dict(batch_size=2.5), "batch_size=2.5"),
        (dict(swa=True, swa_start=1.0), "swa_start=1.0"),
    ],
)
def test_bad_config_fails_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_mlp_shape_and_parameter_count():
    model = MLP(2, 3, hidden=(4, 5))
    assert count_parameters(model) == (2 * 4 + 4) + (4 * 5 + 5) + (5 * 3 + 3)
    assert model(torch.zeros(7, 2)).shape == (7, 3)
    with pytest.raises(ValueError, match="activation='swish'"):
        MLP(2, 2, activation="swish")
    np.testing.assert_equal(MLP(2, 2, hidden=()).forward(torch.zeros(1, 2)).shape, (1, 2))


@pytest.mark.parametrize("trainer", ["train_classifier", "train_dp_sgd"])
def test_a_resumed_run_keeps_a_best_epoch_from_before_the_kill(toy, tmp_path, trainer):
    """Validation labels that contradict the training labels make an early epoch the best
    one. A run killed after epoch 2 and resumed must report that epoch and its weights, as
    the uninterrupted run does (the best-validation bookkeeping is in the checkpoint)."""
    from sharpmem_lib.defenses import train_dp_sgd

    train, test = toy
    fn = train_classifier if trainer == "train_classifier" else train_dp_sgd
    config = TrainConfig(epochs=5, batch_size=50, lr=0.1)

    class Killed(Exception):
        pass

    def kill(epoch):
        if epoch == 2:
            raise Killed

    def run(path, on_epoch_end=None):
        seed_everything(0)
        return fn(MLP(2, 2, (16,)), train.X, train.y, config, X_val=test.X, y_val=1 - test.y, checkpoint_path=path,
                  on_epoch_end=on_epoch_end, progress=False)

    whole = run(tmp_path / "whole.pt")
    assert whole.best_epoch <= 2  # else this test would not exercise the checkpointed bookkeeping
    with pytest.raises(Killed):
        run(tmp_path / "killed.pt", kill)
    resumed = run(tmp_path / "killed.pt")
    assert resumed.best_epoch == whole.best_epoch
    for name, value in whole.best_state.items():
        assert torch.equal(value, resumed.best_state[name]), name
