"""What the engine promises on a CUDA GPU (issue 17), checked against the CPU with tolerances.

On a GPU a run is not bitwise reproducible (cuDNN autotuning picks kernels by timing, and
reductions run in another order than on the CPU), so these tests compare within tolerances:
fp32 steps on CUDA against the same steps on the CPU, stacked (vmap) models against separate
ones, a resumed run against an uninterrupted one. They are marked ``gpu`` and skipped without
CUDA; ``benchmarks/gpu_check.py`` runs them on a GPU (and with ``--dry-run`` on the CPU,
comparing the CPU with itself, through ``SHARPMEM_GPU_TESTS_ON_CPU=1``).
"""

import dataclasses
import os

import numpy as np
import pytest
import torch
from torch import nn

from sharpmem_lib.ensemble import subset_masks, train_ensemble
from sharpmem_lib.models import MLP, SmallCNN
from sharpmem_lib.tensors import seed_everything
from sharpmem_lib.train import (TrainConfig, _autocast, precision_context, predict_logits, prepare_for_device,
                                require_gpu, train_classifier, training_precision)

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    if os.environ.get("SHARPMEM_GPU_TESTS_ON_CPU") == "1":
        return torch.device("cpu")
    pytest.skip("needs a CUDA GPU")


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 256, (192, 1, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (192,), generator=g)
    return X, y


def cnn_run(device, images, config, precision=None):
    X, y = images
    seed_everything(0)
    model = SmallCNN(1, 10, width=8).to(device)
    result = train_classifier(model, X, y, config, progress=False, precision=precision)
    return predict_logits(result.model, X)


CONFIGS = {
    "sgd": TrainConfig(algorithm="sgd", epochs=2, batch_size=32, lr=0.05, augment=True, seed=1),
    "sam": TrainConfig(algorithm="sam", rho=0.1, epochs=2, batch_size=32, lr=0.05, augment=True, seed=1),
    "sharpreg": TrainConfig(algorithm="sharpreg", rho=0.01, lam=1.5, xi=0.3, epochs=2, batch_size=32, lr=0.05,
                            augment=True, seed=1),
}


@pytest.mark.parametrize("algorithm", list(CONFIGS))
def test_fp32_steps_on_cuda_match_the_cpu(device, images, algorithm):
    """12 steps of a BatchNorm CNN with augmentation, in IEEE fp32 on both devices."""
    on_device = cnn_run(device, images, CONFIGS[algorithm], precision="fp32")
    on_cpu = cnn_run(torch.device("cpu"), images, CONFIGS[algorithm], precision="fp32")
    torch.testing.assert_close(on_device, on_cpu, rtol=1e-3, atol=1e-3)


def test_default_precision_on_cuda_stays_close_to_the_cpu(device, images):
    """SGD's default on CUDA is bf16 autocast: the same model up to bf16 rounding."""
    config = CONFIGS["sgd"]
    on_device = cnn_run(device, images, config)
    on_cpu = cnn_run(torch.device("cpu"), images, config)
    assert (on_device.argmax(1) == on_cpu.argmax(1)).float().mean() >= 0.9
    assert (on_device - on_cpu).abs().max() < 0.25 * on_cpu.abs().max()


def test_the_perturbation_is_applied_in_full_on_cuda(device):
    """SAM's perturbation as the layer's matmul applies it, under the precision the engine
    picks for SAM on this device (fp32, TF32 off): equal to e up to fp32 rounding."""
    from sharpmem_lib.optim import make_optimizer

    config = TrainConfig(algorithm="sam", rho=0.01)
    precision = training_precision(config, device)
    assert precision == "fp32"
    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(64, 64, bias=False).to(device)
    with torch.no_grad():
        layer.weight.copy_(0.02 * torch.randn(64, 64, generator=g))
    opt = make_optimizer(layer, "sam", rho=config.rho, lr=0.1)
    x, y = torch.randn(256, 64, generator=g).to(device), torch.randint(0, 64, (256,), generator=g).to(device)
    with precision_context(precision, device):
        nn.functional.cross_entropy(layer(x), y).backward()
        eye = torch.eye(64, device=device)
        with torch.no_grad(), _autocast(device, precision):
            at_w = layer(eye).float()
            opt.first_step(zero_grad=True)
            at_w_e = layer(eye).float()
    e = opt.state[layer.weight]["e"]
    assert ((at_w_e - at_w).T - e).norm() / e.norm() < 1e-3


@pytest.mark.parametrize("algorithm", ["sgd", "sam"])
def test_vmap_ensemble_on_cuda_equals_separate_models(device, algorithm):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(300, 20, generator=g), torch.randint(0, 5, (300,), generator=g)
    config = TrainConfig(algorithm=algorithm, rho=0.05, epochs=3, batch_size=50, lr=0.05, seed=3)
    masks = subset_masks(len(X), 3, 0.7, seed=1)

    def build():
        return MLP(20, 5, (32,))

    for precision in ("fp32", training_precision(config, device)):
        ensemble = train_ensemble(build, X, y, masks, config, device=device, backend="vmap", progress=False,
                                  precision=precision)
        logits = ensemble.logits(X)
        for k in range(3):
            seed_everything(config.seed + k)
            rows = np.flatnonzero(masks[k])
            single = train_classifier(build().to(device), X[rows], y[rows],
                                      dataclasses.replace(config, seed=config.seed + k),
                                      progress=False, precision=precision).model
            reference = predict_logits(single, X)
            if precision == "fp32":
                torch.testing.assert_close(logits[k], reference, rtol=1e-4, atol=1e-4)
            else:  # bf16: the batched and the single matmuls round differently
                assert (logits[k].argmax(1) == reference.argmax(1)).float().mean() >= 0.95


def _killed_and_resumed(tmp_path, run):
    class Killed(Exception):
        pass

    def kill(epoch):
        if epoch == 2:
            raise Killed

    whole = run(tmp_path / "whole.pt", None)
    with pytest.raises(Killed):
        run(tmp_path / "killed.pt", kill)
    return whole, run(tmp_path / "killed.pt", None)


def test_resume_on_cuda_equals_an_uninterrupted_run(device, images, tmp_path):
    """A CNN with dropout (drawn from the CUDA generator, whose state the checkpoint keeps),
    SAM and augmentation, killed after epoch 2 of 4 and resumed: the old engine crashed here
    (a CUDA generator state handed to a CPU generator)."""
    X, y = images
    config = dataclasses.replace(CONFIGS["sam"], epochs=4)

    def run(path, on_epoch_end):
        seed_everything(0)
        model = nn.Sequential(SmallCNN(1, 16, width=8), nn.Dropout(0.3), nn.Linear(16, 10)).to(device)
        result = train_classifier(model, X, y, config, X_val=X[:64], y_val=y[:64], checkpoint_path=path,
                                  on_epoch_end=on_epoch_end, progress=False)
        return result

    whole, resumed = _killed_and_resumed(tmp_path, run)
    assert resumed.best_epoch == whole.best_epoch
    for (name, p), q in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]


def test_dp_sgd_steps_and_resumes_on_cuda(device, tmp_path):
    """DP-SGD on CUDA: the noise generator on the device (the old code crashed at the first
    step), the privacy spent equal to the CPU's (same Poisson batches), a resumed run within
    tolerance of an uninterrupted one."""
    from sharpmem_lib.defenses import train_dp_sgd

    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(400, 10, generator=g), torch.randint(0, 3, (400,), generator=g)
    config = TrainConfig(epochs=3, batch_size=50, lr=0.1)

    def run(path, on_epoch_end, where=device):
        seed_everything(0)
        return train_dp_sgd(MLP(10, 3, (16,)).to(where), X, y, config, checkpoint_path=path,
                            on_epoch_end=on_epoch_end, progress=False)

    whole, resumed = _killed_and_resumed(tmp_path, run)
    assert np.isfinite([h["train_loss"] for h in whole.history]).all()
    for p, q in zip(whole.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)
    on_cpu = run(tmp_path / "cpu.pt", None, torch.device("cpu"))
    assert [h["epsilon"] for h in whole.history] == pytest.approx([h["epsilon"] for h in on_cpu.history])


def test_evaluation_is_fp32_and_matches_the_cpu(device, images):
    X, _ = images
    seed_everything(0)
    model = SmallCNN(1, 10, width=8)
    on_cpu = predict_logits(model, X)
    on_device = predict_logits(prepare_for_device(model.to(device), X), X)
    assert on_device.dtype == torch.float32
    torch.testing.assert_close(on_device, on_cpu, rtol=1e-4, atol=1e-4)
    if device.type == "cuda":
        assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert torch.backends.cudnn.benchmark


def test_require_gpu_finds_the_gpu(device):
    if device.type != "cuda":
        pytest.skip("the dry run has no GPU to find")
    assert require_gpu("the gpu tests") == torch.device("cuda")
