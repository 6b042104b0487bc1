"""Measured sharpness against closed forms (a quadratic) and a dense autograd Hessian."""

import math

import pytest
import torch
from torch import nn

from sharpmem_lib.sharpness import hessian_top_eigenvalue, model_loss, model_sharpness, sam_sharpness


pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py: 1e-6 comparisons test the algebra


def quadratic(eigenvalues, seed=0):
    """L(w) = 1/2 (w - c)^T A (w - c) over two parameter tensors, A = Q diag(eigenvalues) Q^T."""
    g = torch.Generator().manual_seed(seed)
    d = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    A = q @ torch.diag(torch.tensor(eigenvalues)) @ q.T
    c = torch.randn(d, generator=g)

    def loss(p):
        w = torch.cat([p["a"], p["b"].flatten()])
        return 0.5 * (w - c) @ A @ (w - c)

    params = {"a": torch.randn(2, generator=g), "b": torch.randn(2, 2, generator=g)}
    return loss, params, A, c


def test_top_eigenvalue_of_a_quadratic():
    loss, params, A, _ = quadratic([7.0, 3.0, 1.0, 0.5, -0.2, 0.1])
    assert hessian_top_eigenvalue(loss, params, iters=500, tol=1e-12) == pytest.approx(7.0, rel=1e-6)


def test_largest_magnitude_eigenvalue_keeps_its_sign():
    loss, params, _, _ = quadratic([-9.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    assert hessian_top_eigenvalue(loss, params, iters=500, tol=1e-12) == pytest.approx(-9.0, rel=1e-6)


def test_sam_sharpness_of_a_quadratic_by_hand():
    # g = A(w - c), e = rho g/|g|: L(w+e) - L(w) = rho |g| + rho^2/2 g^T A g / |g|^2.
    loss, params, A, c = quadratic([4.0, 2.0, 1.0, 1.0, 0.5, 0.1])
    rho = 0.3
    w = torch.cat([params["a"], params["b"].flatten()])
    g = A @ (w - c)
    expected = rho * g.norm() + 0.5 * rho**2 * (g @ A @ g) / (g @ g)
    assert sam_sharpness(loss, params, rho) == pytest.approx(float(expected), rel=1e-10)
    assert sam_sharpness(loss, params, 0.0) == 0.0


def test_sam_sharpness_is_zero_at_a_stationary_point():
    loss, params, _, c = quadratic([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    at_min = {"a": c[:2].clone(), "b": c[2:].reshape(2, 2).clone()}
    assert sam_sharpness(loss, at_min, 0.1) == 0.0


def test_model_eigenvalue_matches_dense_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))
    X, y = torch.randn(32, 3), torch.randint(0, 3, (32,))
    loss, params = model_loss(model, X, y)
    names = list(params)
    shapes = [params[n].shape for n in names]
    flat = torch.cat([params[n].flatten() for n in names])

    def flat_loss(v):
        parts, i = {}, 0
        for n, s in zip(names, shapes):
            k = math.prod(s)
            parts[n] = v[i : i + k].view(s)
            i += k
        return loss(parts)

    H = torch.autograd.functional.hessian(flat_loss, flat)
    eig = torch.linalg.eigvalsh(H)
    top = eig[eig.abs().argmax()]
    assert hessian_top_eigenvalue(loss, params, iters=2000, tol=1e-12) == pytest.approx(float(top), rel=1e-5)
    summary = model_sharpness(model, X, y, rhos=(0.05,), iters=2000)
    assert summary["train_loss"] == pytest.approx(float(nn.functional.cross_entropy(model(X), y).detach()))
    assert summary["sam_sharpness@0.05"] > 0  # the first-order ascent step increases the loss


def test_bad_arguments_are_named():
    loss, params, _, _ = quadratic([1.0] * 6)
    with pytest.raises(ValueError, match="iters"):
        hessian_top_eigenvalue(loss, params, iters=0)
    with pytest.raises(ValueError, match="rho"):
        sam_sharpness(loss, params, -1.0)


def test_batched_measures_equal_the_full_batch_ones():
    """The loss is a mean, so per-batch HVPs and gradients, weighted by batch size, must
    give exactly the full-batch numbers (uneven last batch included)."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 3))
    X, y = torch.randn(50, 3), torch.randint(0, 3, (50,))
    full = model_sharpness(model, X, y, rhos=(0.05,), iters=300, batch_size=None)
    batched = model_sharpness(model, X, y, rhos=(0.05,), iters=300, batch_size=16)
    for key in full:
        assert batched[key] == pytest.approx(full[key], rel=1e-8, abs=1e-12), key
    loss, _ = model_loss(model, X, y, batch_size=16)
    assert [round(w * 50) for w, _ in loss] == [16, 16, 16, 2]


def test_model_sharpness_runs_on_one_cpu_thread_and_restores_the_count(monkeypatch):
    """On a CPU the measurement runs on one thread (a second one only slowed the small
    products; it also made the value depend on the core count); the values are those of the
    unrestricted run up to rounding, and the caller's thread count comes back."""
    import contextlib

    from sharpmem_lib import sharpness

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    X, y = torch.randn(40, 6), torch.randint(0, 3, (40,))
    seen = []
    real = sharpness.hessian_top_eigenvalue
    monkeypatch.setattr(sharpness, "hessian_top_eigenvalue",
                        lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fast = model_sharpness(model, X, y, iters=30, batch_size=16)
        assert seen == [1] and torch.get_num_threads() == 2
        monkeypatch.setattr(sharpness, "one_cpu_thread", lambda device: contextlib.nullcontext())
        old = model_sharpness(model, X, y, iters=30, batch_size=16)
        assert seen[-1] == 2
    finally:
        torch.set_num_threads(previous)
    assert fast.keys() == old.keys()
    for key in fast:
        assert fast[key] == pytest.approx(old[key], rel=1e-9, abs=1e-12), key
