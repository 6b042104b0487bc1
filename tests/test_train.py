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


# --------------------------------------------------------------- SWA: the averaged model


def test_swa_evaluates_and_selects_only_averaged_weights(toy):
    """Issue 18 §2. The best-validation model of an SWA run is torch.optim.swa_utils'
    AveragedModel over the SWA epochs up to the chosen epoch (BatchNorm statistics recomputed
    by update_bn on the training inputs), built here independently from per-epoch snapshots
    of the raw weights; the result's model is the average over all SWA epochs. (The old
    engine kept a raw, un-averaged snapshot as the best model.)"""
    from torch.optim.swa_utils import AveragedModel, update_bn

    from sharpmem_lib.train import predict_logits

    train, test = toy
    seed_everything(3)
    model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    config = TrainConfig(algorithm="sgd", epochs=8, batch_size=40, lr=0.1, swa=True, swa_start=0.5, swa_lr=0.05)
    snapshots = []
    result = train_classifier(model, train.X, train.y, config, X_val=test.X[:300], y_val=test.y[:300],
                              on_epoch_end=lambda e: snapshots.append(
                                  {k: v.detach().clone() for k, v in model.state_dict().items()}),
                              progress=False)
    first_swa = 4  # floor(0.5 * 8): epochs 5..8 (1-based) are averaged
    assert result.best_epoch is not None and result.best_epoch > first_swa
    X = torch.as_tensor(train.X, dtype=torch.float32)
    batches = [[X[i : i + config.batch_size]] for i in range(0, len(X), config.batch_size)]

    def reference(last_epoch):
        raw = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
        averaged = AveragedModel(raw)
        for state in snapshots[first_swa:last_epoch]:
            raw.load_state_dict(state)
            averaged.update_parameters(raw)
        update_bn(batches, averaged.module)
        return predict_logits(averaged.module, test.X)

    torch.testing.assert_close(predict_logits(result.best_model(), test.X), reference(result.best_epoch),
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(predict_logits(result.model, test.X), reference(config.epochs), atol=1e-5, rtol=1e-5)
    assert [h["epoch"] for h in result.history if "val_acc" in h] == list(range(1, 9))


# --------------------------------------------------------------- devices and precision


def test_training_precision_keeps_the_perturbation_in_fp32():
    from sharpmem_lib.train import PRECISIONS, training_precision

    cuda, cpu = torch.device("cuda"), torch.device("cpu")  # a device object needs no GPU
    assert training_precision(TrainConfig(algorithm="sgd"), cuda) == "bf16-autocast"
    assert training_precision(TrainConfig(algorithm="sharp", lam=0.0), cuda) == "bf16-autocast"  # that is SGD
    for algorithm in ("sam", "sharp", "sharpreg"):
        assert training_precision(TrainConfig(algorithm=algorithm, lam=1.5, xi=0.3), cuda) == "fp32"
    assert training_precision(TrainConfig(algorithm="sgd"), cuda, defense="dpsgd") == "fp32"
    assert training_precision(TrainConfig(algorithm="sgd"), cpu) == "fp32"
    assert training_precision(TrainConfig(algorithm="sgd"), "mps") == "fp32"
    assert set(PRECISIONS) == {"fp32", "bf16-autocast"}


def applied_perturbation(precision, rho):
    """SAM's first step on a layer with WRN-like weights (std 0.02), then the perturbation
    the layer's matmul really applies under ``precision``: its output on the identity, at
    w + e minus at w. Returns (applied, e)."""
    from sharpmem_lib.optim import make_optimizer
    from sharpmem_lib.train import _autocast

    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(64, 64, bias=False)
    with torch.no_grad():
        layer.weight.copy_(0.02 * torch.randn(64, 64, generator=g))
    opt = make_optimizer(layer, "sam", rho=rho, lr=0.1)
    x, y = torch.randn(256, 64, generator=g), torch.randint(0, 64, (256,), generator=g)
    nn.functional.cross_entropy(layer(x), y).backward()
    eye = torch.eye(64)
    device = torch.device("cpu")
    with torch.no_grad(), _autocast(device, precision):
        at_w = layer(eye).float()
        opt.first_step(zero_grad=True)
        at_w_e = layer(eye).float()
    e = opt.state[layer.weight]["e"]
    return (at_w_e - at_w).T, e  # row i of layer(eye) is column i of the weight


@pytest.mark.parametrize("rho", [0.1, 0.01])
def test_bf16_erases_the_perturbation_and_the_engine_trains_sam_in_fp32(toy, rho):
    """Issue 17 §3, measured: under bf16 autocast (here the CPU's; CUDA's rounds the same
    way) the perturbation the matmul applies is mostly lost at the paper's rho; in fp32, the
    precision training_precision gives SAM on any device, it is e. The engine refuses bf16
    for two-pass algorithms."""
    from sharpmem_lib.train import training_precision

    applied, e = applied_perturbation("bf16-autocast", rho)
    assert ((applied - e).norm() / e.norm()).item() > 0.5
    precision = training_precision(TrainConfig(algorithm="sam", rho=rho), torch.device("cuda"))
    applied, e = applied_perturbation(precision, rho)
    assert ((applied - e).norm() / e.norm()).item() < 1e-3
    train, _ = toy
    with pytest.raises(ValueError, match="precision='bf16-autocast' is not valid for sam"):
        train_classifier(MLP(2, 2, (8,)), train.X, train.y, TrainConfig(algorithm="sam", epochs=1),
                         precision="bf16-autocast", progress=False)


def test_bf16_sgd_trains_and_logits_stay_fp32(toy):
    """bf16 autocast (the CPU's stands in for CUDA's) trains SGD; the logits the engine
    returns are computed in fp32 whatever the training precision."""
    from sharpmem_lib.train import predict_logits

    train, test = toy
    seed_everything(0)
    result = train_classifier(MLP(2, 2, (16,)), train.X, train.y, TrainConfig(epochs=5, batch_size=50, lr=0.1),
                              precision="bf16-autocast", progress=False)
    assert accuracy(result.model, test.X, test.y) > 0.8
    logits = predict_logits(result.model, test.X)
    assert logits.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(logits, result.model(torch.as_tensor(test.X, dtype=torch.float32)))
    with pytest.raises(ValueError, match="precision='fp16' is not valid"):
        train_classifier(MLP(2, 2), train.X, train.y, TrainConfig(epochs=1), precision="fp16", progress=False)


def test_checkpoint_rng_states_include_cuda_and_load_to_the_cpu(toy, tmp_path, monkeypatch):
    """Issue 17 §1. A checkpoint is read onto the CPU (a CPU generator accepts only a CPU
    state; load_state_dict moves weights to the parameters' devices), and on CUDA the CUDA
    generators' states are saved and restored too (simulated: torch's CUDA RNG calls are
    patched, as this machine may have no GPU)."""
    from sharpmem_lib import train as train_module

    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k.get("map_location")) or real_load(*a, **k))
    train, _ = toy
    config = TrainConfig(epochs=2, batch_size=100)
    seed_everything(0)
    train_classifier(MLP(2, 2, (4,)), train.X, train.y, config, checkpoint_path=tmp_path / "c.pt", progress=False)
    seed_everything(0)
    train_classifier(MLP(2, 2, (4,)), train.X, train.y, TrainConfig(epochs=3, batch_size=100),
                     checkpoint_path=tmp_path / "c.pt", progress=False)
    assert loads == ["cpu"]
    state = train_module.load_checkpoint(tmp_path / "c.pt")
    assert all(t.device.type == "cpu" for t in [state["generator"], state["torch_rng"]])
    assert state["cuda_rng"] is None  # a CPU run has none

    cuda_states = [torch.arange(4, dtype=torch.uint8), torch.arange(4, 8, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: cuda_states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    saved = train_module._rng_states(torch.device("cuda"))
    assert saved["cuda_rng"] is cuda_states
    train_module._set_rng_states(saved, torch.device("cuda"))
    assert restored == [cuda_states]


def test_require_gpu_names_the_reason(monkeypatch):
    from sharpmem_lib.train import require_gpu

    # tests/conftest.py already makes torch.cuda.is_available() False here
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(RuntimeError, match=r"profile paper needs a CUDA GPU, but this torch .* is a CPU-only build"):
        require_gpu("profile paper")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(RuntimeError, match=r"sees no CUDA device: no GPU, or an NVIDIA driver too old for CUDA 13.0"):
        require_gpu("profile paper")


def test_cuda_entry_points_use_channels_last_and_autotuning(monkeypatch):
    """prepare_for_device, called by train_classifier: on the CPU nothing changes."""
    from sharpmem_lib.models import SmallCNN
    from sharpmem_lib.train import prepare_for_device

    model = SmallCNN(1, 10)
    before = model.features[0].weight.stride()
    assert prepare_for_device(model, torch.zeros(2, 1, 8, 8)) is model
    assert model.features[0].weight.stride() == before
