"""The fused numba kernel against autograd: loss, correct counts and every gradient."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from sharpmem_lib.mlp_kernel import StackedMLPGradients, single_threaded_blas
from sharpmem_lib.models import MLP


def stacked(hidden, dtype, n_models=5, features=6, classes=4):
    torch.manual_seed(0)
    modules = [MLP(features, classes, hidden).to(dtype) for _ in range(n_models)]
    params, _ = stack_module_state(modules)
    return modules[0], {n: t.detach().contiguous() for n, t in params.items()}


def kernel_for(X, y, params, smoothing=0.0):
    """The kernel on stacked MLP parameters (MLP order: 0.weight, 0.bias, 2.weight, ...)."""
    names = list(params)
    return StackedMLPGradients(X, y, [params[n] for n in names[0::2]], [params[n] for n in names[1::2]], smoothing)


def autograd_reference(template, params, X, y, rows, smoothing):
    """Each model's mean cross-entropy on X[rows[k]] and its gradient, by autograd."""
    leaves = {n: t.clone().requires_grad_() for n, t in params.items()}

    def loss(p, x, t):
        return F.cross_entropy(functional_call(template, p, (x,)), t, label_smoothing=smoothing)

    per_model = vmap(loss)(leaves, X[rows], y[rows])
    per_model.sum().backward()  # model k's parameters see only model k's loss
    logits = vmap(lambda p, x: functional_call(template, p, (x,)))(leaves, X[rows])
    return per_model.detach(), (logits.argmax(-1) == y[rows]).sum(1), {n: t.grad for n, t in leaves.items()}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("hidden", [(), (16,), (16, 8)], ids=["linear", "one-hidden", "two-hidden"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_gradients_equal_autograd(dtype, hidden, smoothing):
    template, params = stacked(hidden, dtype)
    X = torch.randn(30, 2, 3, dtype=dtype)  # flattened to 6 features, as MLP does
    y = torch.randint(0, 4, (30,))
    rows = torch.randint(0, 30, (5, 7))  # repeated rows within and across models are allowed
    names = list(params)
    kernel = kernel_for(X, y, params, smoothing)
    with single_threaded_blas():
        loss, correct = kernel(rows)
    ref_loss, ref_correct, ref_grads = autograd_reference(template, params, X, y, rows, smoothing)
    tol = {"atol": 1e-12, "rtol": 1e-10} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-4}
    torch.testing.assert_close(loss, ref_loss, **tol)
    assert torch.equal(correct, ref_correct)
    grads = [g for pair in zip(kernel.grad_weights, kernel.grad_biases) for g in pair]
    for name, grad in zip(names, grads):
        torch.testing.assert_close(grad, ref_grads[name], **tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_uint8_images_are_scaled_like_every_other_trainer(dtype):
    # uint8 images (Fashion-MNIST) must enter as x / 255, as tensors.to_float gives train_classifier
    # and the vmap backend; unscaled 0..255 inputs left the numba-trained models at chance
    template, params = stacked((16,), dtype)
    X = torch.randint(0, 256, (30, 1, 2, 3), dtype=torch.uint8)
    y = torch.randint(0, 4, (30,))
    rows = torch.randint(0, 30, (5, 7))
    kernel = kernel_for(X, y, params)
    with single_threaded_blas():
        loss, correct = kernel(rows)
    ref_loss, ref_correct, ref_grads = autograd_reference(template, params, X.to(dtype) / 255, y, rows, 0.0)
    tol = {"atol": 1e-12, "rtol": 1e-10} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-4}
    torch.testing.assert_close(loss, ref_loss, **tol)
    assert torch.equal(correct, ref_correct)
    torch.testing.assert_close(kernel.grad_weights[0], ref_grads[list(params)[0]], **tol)


def test_parameters_are_read_in_place():
    """An optimizer updates the stacked tensors in place; the kernel must see the update."""
    template, params = stacked((8,), torch.float64)
    X, y = torch.randn(20, 6, dtype=torch.float64), torch.randint(0, 4, (20,))
    rows = torch.randint(0, 20, (5, 6))
    kernel = kernel_for(X, y, params)
    kernel(rows)
    with torch.no_grad():
        for t in params.values():
            t.mul_(1.5)
    loss, _ = kernel(rows)
    torch.testing.assert_close(loss, autograd_reference(template, params, X, y, rows, 0.0)[0])


def test_a_diverged_model_stays_nan_and_alone():
    """A NaN weight makes that model's loss and gradients NaN, as autograd does (ReLU keeps
    NaN), so divergence is detected; the other models are untouched."""
    template, params = stacked((8,), torch.float64)
    params["0.weight"][2, 3, 1] = float("nan")
    X, y = torch.randn(20, 6, dtype=torch.float64), torch.randint(0, 4, (20,))
    rows = torch.randint(0, 20, (5, 6))
    kernel = kernel_for(X, y, params)
    loss, _ = kernel(rows)
    ref_loss = autograd_reference(template, params, X, y, rows, 0.0)[0]
    assert torch.isnan(loss[2]) and torch.isnan(ref_loss[2])
    healthy = [0, 1, 3, 4]
    torch.testing.assert_close(loss[healthy], ref_loss[healthy])
    assert torch.isfinite(kernel.grad_weights[0][healthy]).all()


def test_bad_inputs():
    _, params = stacked((8,), torch.float32)
    W, b = [params["0.weight"], params["2.weight"]], [params["0.bias"], params["2.bias"]]
    X, y = torch.randn(20, 6), torch.randint(0, 4, (20,))
    with pytest.raises(ValueError, match="do not chain"):
        StackedMLPGradients(torch.randn(20, 5), y, W, b)
    with pytest.raises(ValueError, match="one of each per layer"):
        StackedMLPGradients(X, y, W, b[:1])
    with pytest.raises(ValueError, match="float32 or float64"):
        StackedMLPGradients(X, y, [w.half() for w in W], [t.half() for t in b])
    with pytest.raises(ValueError, match="contiguous CPU tensors"):
        StackedMLPGradients(X, y, [W[0].transpose(1, 2).contiguous().transpose(1, 2), W[1]], b)
    with pytest.raises(ValueError, match=r"labels in \[0, 4\)"):
        StackedMLPGradients(X, torch.full((20,), 4), W, b)
    kernel = StackedMLPGradients(X, y, W, b)
    with pytest.raises(ValueError, match="must index the 20 rows"):
        kernel(torch.full((5, 3), 20))
    with pytest.raises(ValueError, match=r"expected \(5, batch >= 1\)"):
        kernel(torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"expected \(5, batch >= 1\)"):
        kernel(torch.zeros(5, 0, dtype=torch.int64))
    with pytest.raises(ValueError, match="do not chain"):
        StackedMLPGradients(X, y, [W[0], W[1][:4]], [b[0], b[1][:4]])
    assert np.isfinite(kernel(torch.zeros(5, 3, dtype=torch.int64))[0].numpy()).all()
