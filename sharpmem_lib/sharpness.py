"""Measured sharpness of a trained model (paper §5, which assumes it rather than measuring it).

Two numbers per model, both on the full training loss ``L(w)``:

* the largest Hessian eigenvalue ``lambda_max(H(w))``, by power iteration on exact
  Hessian-vector products (forward-over-reverse with :func:`torch.func.jvp` of
  :func:`torch.func.grad`), never forming ``H``;
* the first-order SAM sharpness ``max_{||e|| <= rho} L(w + e) - L(w)`` with the maximiser
  approximated as SAM does, ``e = rho g / ||g||`` (Foret et al. 2020; the bracket of eq. 4).

SAM should land flatter than SGD (smaller values), the sharpness objective of eq. 4 and
SharpReg sharper. The functions take a loss over a dict of parameters, so the tests can
check them on a quadratic whose Hessian is known.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, jvp

from sharpmem_lib.tensors import as_tensor, one_cpu_thread, select_device, to_float
from sharpmem_lib.validation import check_nonnegative, check_positive

__all__ = ["artifact_sharpness", "hessian_top_eigenvalue", "model_loss", "model_sharpness", "sam_sharpness"]

Params = dict[str, torch.Tensor]
LossFn = Callable[[Params], torch.Tensor]
# A loss, or a weighted sum of per-batch losses (weights summing to 1: a mean over batches),
# so that Hessian-vector products over a large training set never hold all of its activations.
Loss = LossFn | list[tuple[float, LossFn]]


def _terms(loss: Loss) -> list[tuple[float, LossFn]]:
    return [(1.0, loss)] if callable(loss) else list(loss)


def _value(loss: Loss, params: Params) -> float:
    return sum(w * float(f(params)) for w, f in _terms(loss))


def _weighted_sum(loss: Loss, per_term: Callable[[LossFn], Params]) -> Params:
    """sum_i w_i per_term(f_i) over the loss's (weight, batch loss) terms."""
    total: Params = {}
    for w, f in _terms(loss):
        for k, t in per_term(f).items():
            total[k] = total[k] + w * t if k in total else w * t
    return total


def _grad(loss: Loss, params: Params) -> Params:
    return _weighted_sum(loss, lambda f: grad(f)(params))


def _hvp(loss: Loss, params: Params, v: Params) -> Params:
    """Exact Hessian-vector product, forward-over-reverse, summed over the batches."""
    return _weighted_sum(loss, lambda f: jvp(grad(f), (params,), (v,))[1])


def _dot(a: Params, b: Params) -> torch.Tensor:
    return sum((a[k] * b[k]).sum() for k in a)


def _norm(a: Params) -> torch.Tensor:
    return _dot(a, a).sqrt()


def hessian_top_eigenvalue(loss: Loss, params: Params, iters: int = 50, tol: float = 1e-4,
                           seed: int = 0) -> float:
    """The eigenvalue of largest magnitude of the Hessian of ``loss`` at ``params``.

    ``loss``: a function of the parameters, or a list of ``(weight, batch_loss)`` whose
    weighted sum is the loss (see :func:`model_loss`).

    Power iteration ``v <- Hv / ||Hv||`` from a seeded random start, stopping when the
    Rayleigh quotient ``v^T H v`` changes by less than ``tol`` (relative) or after ``iters``
    products. At a minimum this is the top curvature ``lambda_max``, the usual sharpness
    measure (Keskar et al. 2017); near a saddle it may be a negative eigenvalue, which the
    sign then shows.
    """
    check_positive("iters", iters, integer=True)
    check_nonnegative("tol", tol)
    params = {k: v.detach() for k, v in params.items()}
    g = torch.Generator().manual_seed(seed)
    v = {k: torch.randn(p.shape, generator=g).to(p) for k, p in params.items()}
    norm = _norm(v)
    v = {k: t / norm for k, t in v.items()}
    eigenvalue = 0.0
    for i in range(iters):
        hv = _hvp(loss, params, v)
        new = float(_dot(v, hv))  # Rayleigh quotient; ||v|| = 1
        norm = _norm(hv)
        if float(norm) == 0.0:
            return 0.0
        v = {k: t / norm for k, t in hv.items()}
        if i > 0 and abs(new - eigenvalue) <= tol * max(abs(new), 1e-12):
            return new
        eigenvalue = new
    return eigenvalue


def sam_sharpness(loss: Loss, params: Params, rho: float) -> float:
    """``L(w + e) - L(w)`` with SAM's first-order maximiser ``e = rho g / ||g||`` (eq. 4's
    bracket). Zero at a point with zero gradient (the first-order maximiser is undefined)."""
    check_nonnegative("rho", rho)
    params = {k: v.detach() for k, v in params.items()}
    g = _grad(loss, params)
    norm = _norm(g)
    base = _value(loss, params)
    if float(norm) == 0.0:
        return 0.0
    perturbed = {k: p + rho * g[k] / norm for k, p in params.items()}
    return _value(loss, perturbed) - base


def model_loss(model: nn.Module, X, y, batch_size: int | None = None) -> tuple[Loss, Params]:
    """The mean cross-entropy of ``model`` (eval mode: BatchNorm uses its running statistics)
    on ``(X, y)`` as a function of its parameters, and the current parameters. With
    ``batch_size``, a list of ``(weight, batch_loss)`` terms whose weighted sum is that mean."""
    model.eval()
    first = next(model.parameters())
    X = to_float(as_tensor(X, None, first.device)).to(first.dtype)
    y = as_tensor(y, torch.int64, first.device)
    buffers = dict(model.named_buffers())
    params = {k: v.detach() for k, v in model.named_parameters()}

    def batch_loss(xb: torch.Tensor, yb: torch.Tensor) -> LossFn:
        return lambda p: nn.functional.cross_entropy(functional_call(model, {**p, **buffers}, (xb,)), yb)

    if batch_size is None or batch_size >= len(X):
        return batch_loss(X, y), params
    check_positive("batch_size", batch_size, integer=True)
    return [(len(X[i : i + batch_size]) / len(X), batch_loss(X[i : i + batch_size], y[i : i + batch_size]))
            for i in range(0, len(X), batch_size)], params


def model_sharpness(model: nn.Module, X, y, rhos: tuple[float, ...] = (0.01, 0.1), iters: int = 50,
                    batch_size: int | None = 1024) -> dict[str, float]:
    """Training loss, ``lambda_max`` and SAM sharpness at each radius in ``rhos`` of ``model``
    on ``(X, y)`` (typically its whole training set), on the model's device, in batches of
    ``batch_size`` (``None``: one batch); on a CPU, on one thread."""
    loss, params = model_loss(model, X, y, batch_size)
    with one_cpu_thread(next(model.parameters()).device):
        out = {"train_loss": _value(loss, params), "lambda_max": hessian_top_eigenvalue(loss, params, iters=iters)}
        for rho in rhos:
            out[f"sam_sharpness@{rho:g}"] = sam_sharpness(loss, params, rho)
    return out


def artifact_sharpness(artifact, data, which: str = "final", rhos: tuple[float, ...] = (0.01, 0.1),
                       iters: int = 50, max_points: int | None = 5000, seed: int = 0, device: str = "auto",
                       batch_size: int | None = 1024) -> dict[str, float]:
    """:func:`model_sharpness` of a cached target (:class:`~sharpmem_lib.experiments.Artifact`)
    on its training set (the partition's members), with its ``which`` weights.

    ``max_points``: measure on a seeded random subset of at most this many training points
    (Hessian-vector products on all 50,000 CIFAR images are costly); ``None`` for all.
    Runs on ``device`` (``auto``: the GPU when there is one). The result is kept in the
    artifact's folder, so a rerun (or a second sweep over the same target) reads it back."""

    def compute() -> dict[str, float]:
        members = np.flatnonzero(artifact.outputs()["member"])
        if max_points is not None and len(members) > max_points:
            members = np.sort(np.random.default_rng(seed).choice(members, max_points, replace=False))
        model = artifact.model(which).to(select_device(device))
        return model_sharpness(model, data.X[members], data.y[members], rhos=rhos, iters=iters, batch_size=batch_size)

    rho_names = "-".join(f"{rho:g}" for rho in rhos)
    # "-t1": measured on one CPU thread (model_sharpness), not the machine's thread count: values cached before
    # differ in the 7th digit, and are not read back
    name = f"sharpness-{which}-rho{rho_names}-it{iters}-n{max_points or 0}-seed{seed}-b{batch_size or 0}-t1.json"
    return artifact.cached_json(name, compute, device=device)
