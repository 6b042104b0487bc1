"""The batched ensemble trainer against K ordinary training runs."""

import numpy as np
import pytest
import torch
from torch import nn

from sharpmem_lib.data import load_dataset
from sharpmem_lib.ensemble import initial_parameters, subset_masks, train_ensemble
from sharpmem_lib.models import MLP
from sharpmem_lib.tensors import seed_everything
from sharpmem_lib.train import TrainConfig, predict_logits, train_classifier


@pytest.fixture(scope="module")
def digits():
    d = load_dataset("digits")
    return d.X[:400], d.y[:400], d.X[400:700]


def build():
    return MLP(64, 10, (16,))


@pytest.mark.parametrize("config", [
    TrainConfig(algorithm="sgd", epochs=3, batch_size=50, lr=0.05, weight_decay=1e-3, seed=7),
    TrainConfig(algorithm="sam", rho=0.05, epochs=3, batch_size=50, lr=0.05, seed=7),
    TrainConfig(algorithm="sharpreg", rho=0.05, lam=1.5, xi=0.3, epochs=3, batch_size=50, lr=0.05, seed=7),
    TrainConfig(algorithm="sam", rho=0.05, epochs=4, batch_size=50, lr=0.05, swa=True, swa_start=0.5, seed=7),
    TrainConfig(algorithm="sgd", epochs=3, batch_size=50, lr=0.05, label_smoothing=0.1, seed=7),
], ids=["sgd", "sam", "sharpreg", "sam+swa", "label-smoothing"])
@pytest.mark.parametrize("backend", ["vmap", "numba"])
def test_ensemble_equals_separate_runs(digits, config, backend):
    X, y, X_test = digits
    masks = subset_masks(len(X), 3, 0.7, seed=1)
    ensemble = train_ensemble(build, X, y, masks, config, backend=backend, progress=False)
    logits = ensemble.logits(X_test)
    assert logits.shape == (3, len(X_test), 10)
    for k in range(3):
        seed_everything(config.seed + k)
        subset = np.flatnonzero(masks[k])
        single = train_classifier(build(), X[subset], y[subset],
                                  TrainConfig(**{**config.__dict__, "seed": config.seed + k}), progress=False).model
        reference = predict_logits(single, X_test)
        torch.testing.assert_close(logits[k], reference, atol=1e-5, rtol=1e-5)
        assert torch.equal(logits[k].argmax(1), reference.argmax(1))
        torch.testing.assert_close(predict_logits(ensemble.model(k), X_test), reference, atol=1e-5, rtol=1e-5)


class _HalvedMLP(MLP):
    """Its initialisation is not the layers' reset_parameters: the reuse shortcut must notice."""

    def __init__(self):
        super().__init__(64, 10, (16,))
        with torch.no_grad():
            self[0].weight.mul_(0.5)


class _DrawsFirst(nn.Module):
    """Draws from the RNG before its layers: reset_parameters alone would not reproduce it."""

    def __init__(self):
        super().__init__()
        self.noise = nn.Parameter(torch.randn(3))
        self.layer = nn.Linear(4, 2)


@pytest.mark.parametrize("make", [build, _HalvedMLP, _DrawsFirst], ids=["mlp", "custom-init", "extra-draws"])
def test_initial_parameters_equal_building_each_model(make):
    seeds = [5, 9, 2, 11]
    built = []
    stacked = initial_parameters(lambda: built.append(1) or make(), seeds)
    # a plain MLP is built twice (the first model, and the check of the shortcut), then reused
    assert len(built) == (2 if make is build else len(seeds))
    for k, seed in enumerate(seeds):
        seed_everything(seed)
        for name, p in make().named_parameters():
            assert torch.equal(stacked[name][k], p.detach()), (name, k)
    one = initial_parameters(make, [3])
    assert all(t.shape[0] == 1 for t in one.values())


def test_subset_masks():
    masks = subset_masks(100, 50, 0.7, seed=3)
    assert masks.shape == (50, 100) and (masks.sum(1) == 70).all()
    assert np.array_equal(masks, subset_masks(100, 50, 0.7, seed=3))
    # each point is in ~70 % of the models
    assert abs(masks.mean(0).mean() - 0.7) < 1e-9 and masks.mean(0).min() > 0.35
    with pytest.raises(ValueError, match="fraction=1.2"):
        subset_masks(10, 2, 1.2)


def test_bad_inputs(digits):
    X, y, _ = digits
    cfg = TrainConfig(epochs=1)
    with pytest.raises(ValueError, match="same size"):
        train_ensemble(build, X, y, np.array([[True] * 10 + [False] * 390, [True] * 20 + [False] * 380]), cfg)
    with pytest.raises(ValueError, match="BatchNorm"):
        train_ensemble(lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 10)),
                       X, y, subset_masks(len(X), 2), cfg)
    for backend in ("vmap", "numba"):
        with pytest.raises(FloatingPointError, match="ensemble models diverged"):
            train_ensemble(build, X, y, subset_masks(len(X), 2), TrainConfig(lr=1e20, epochs=2), backend=backend,
                           progress=False)
    with pytest.raises(ValueError, match="n_models >= 1"):
        train_ensemble(build, X, y, np.zeros((0, len(X)), bool), cfg)
    with pytest.raises(ValueError, match="backend='jax' is not valid.*'vmap'"):
        train_ensemble(build, X, y, subset_masks(len(X), 2), cfg, backend="jax")
    with pytest.raises(ValueError, match="backend='numba' is not available here.*ReLU"):
        train_ensemble(lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), X, y, subset_masks(len(X), 2), cfg,
                       backend="numba")
    with pytest.raises(ValueError, match="backend='numba' is not available here.*ReLU"):
        train_ensemble(lambda: MLP(64, 10, (8,), activation="tanh"), X, y, subset_masks(len(X), 2), cfg,
                       backend="numba")


def test_auto_backend_uses_the_kernel_for_relu_mlps_only(digits, monkeypatch):
    """backend='auto' takes the numba kernel for a ReLU MLP on the CPU and vmap otherwise."""
    import sharpmem_lib.mlp_kernel as kernel

    calls = []
    original = kernel.StackedMLPGradients.__call__
    monkeypatch.setattr(kernel.StackedMLPGradients, "__call__",
                        lambda self, rows: calls.append(1) or original(self, rows))
    X, y, _ = digits
    train_ensemble(build, X, y, subset_masks(len(X), 2), TrainConfig(epochs=1), progress=False)
    assert calls
    calls.clear()
    train_ensemble(lambda: MLP(64, 10, (8,), activation="tanh"), X, y, subset_masks(len(X), 2), TrainConfig(epochs=1),
                   progress=False)
    assert not calls
