"""The sharpness-aware optimizer family (paper §2, §5).

Every algorithm in the paper is one mechanism with different gradient coefficients.
With ``g(w)`` the gradient of the training loss and the first-order SAM perturbation

    e = rho * g(w) / ||g(w)||          (joint norm over all parameters)

the update direction handed to the base optimizer is

    a * g(w) + b * g(w + e).

===============  =====================  ===========================================
algorithm        (a, b)                 objective
===============  =====================  ===========================================
``sgd``          (1, 0)                 L(w); no second pass
``sam``          (0, 1)                 max_{e in B(rho)} L(w + e)           (§2)
``sharp``        (1 + lam, -lam)        L - lam [max L(w + e) - L(w)]        (eq. 4)
``sharpreg``     (1 + lam - xi, -lam)   (1 + lam - xi) L - lam max L(w + e)  (eq. 6)
===============  =====================  ===========================================

The first-order approximation of max_{e in B(rho)} L(w + e) is L(w + e) with e as above
(Foret et al. 2020), whose gradient is approximated by g(w + e). ``adaptive=True`` uses
ASAM's scale-invariant ball (Kwon et al. 2021): e = rho * w^2 g / ||w g||.

The API follows davda54/sam: ``first_step`` / ``second_step``, or ``step(closure)``
with a closure that zeroes the gradients, runs forward and backward, and returns the loss.
Stochastic weight averaging (SWA, Izmailov et al. 2018) is orthogonal to this choice and
lives in :mod:`sharpmem_lib.train` through :mod:`torch.optim.swa_utils`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from sharpmem_lib.validation import check_choice, check_nonnegative

__all__ = [
    "ALGORITHMS",
    "BASE_OPTIMIZERS",
    "Coefficients",
    "SharpnessAware",
    "coefficients",
    "frozen_bn_stats",
    "make_optimizer",
]

ALGORITHMS: dict[str, str] = {
    "sgd": "plain gradient step on L(w): coefficients (1, 0)",
    "sam": "sharpness-aware minimization, min max L(w+e): coefficients (0, 1)",
    "sharp": "sharper-minimum objective of eq. 4: coefficients (1+lam, -lam)",
    "sharpreg": "SharpReg, eq. 6: coefficients (1+lam-xi, -lam)",
}

BASE_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


@dataclass(frozen=True)
class Coefficients:
    """Weights of g(w) and g(w + e) in the update direction ``a*g(w) + b*g(w+e)``."""

    a: float
    b: float

    @property
    def needs_second_pass(self) -> bool:
        return self.b != 0.0


def coefficients(algorithm: str, lam: float = 0.0, xi: float = 0.0) -> Coefficients:
    """Gradient coefficients (a, b) of a named algorithm (see the module docstring).

    Parameters
    ----------
    algorithm : one of ``ALGORITHMS``.
    lam : sharpness weight lambda of eqs. 4-6 (ignored by ``sgd`` and ``sam``).
    xi : loss down-weighting xi of eqs. 5-6 (used by ``sharpreg`` only).
    """
    check_choice("algorithm", algorithm, ALGORITHMS)
    check_nonnegative("lam", lam)
    check_nonnegative("xi", xi)
    if algorithm == "sgd":
        return Coefficients(1.0, 0.0)
    if algorithm == "sam":
        return Coefficients(0.0, 1.0)
    if algorithm == "sharp":
        return Coefficients(1.0 + lam, -lam)
    return Coefficients(1.0 + lam - xi, -lam)  # sharpreg, eq. 6


_BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module | None) -> Iterator[None]:
    """Leave BatchNorm running statistics exactly as they were after the block.

    Forward passes inside still normalise with batch statistics (training mode); only the
    running buffers (mean, var, num_batches_tracked) are restored afterwards, so the
    perturbed pass of SAM-like algorithms cannot leak into evaluation-time statistics.
    """
    if model is None:
        yield
        return
    buffers = [b for m in model.modules() if isinstance(m, _BN_TYPES)
               for b in m.buffers(recurse=False) if b is not None]
    # one batched copy each way (torch._foreach_*), not three small kernels per BN layer
    saved = torch._foreach_mul(buffers, 1) if buffers else []  # exact copies (x * 1 == x, -0.0 and NaN kept)
    try:
        yield
    finally:
        if buffers:
            with torch.no_grad():
                torch._foreach_copy_(buffers, saved)


class SharpnessAware(torch.optim.Optimizer):
    """Wrap a base optimizer so that it steps along ``a*g(w) + b*g(w + e)``.

    Parameters
    ----------
    params : parameters (or parameter groups) to optimise.
    base_optimizer : optimizer class, e.g. ``torch.optim.SGD``; built on the same groups.
    rho : radius of the perturbation ball B(rho); must be >= 0.
    a, b : coefficients of g(w) and g(w + e); see :func:`coefficients`.
    adaptive : use ASAM's scale-invariant perturbation.
    model : the module being trained; when given, its BatchNorm running statistics are
        not updated by the perturbed (second) forward pass.
    model_axis : ``None`` for one model. ``0`` when every parameter stacks K independent
        models along its first axis (:mod:`sharpmem_lib.ensemble`): each model then gets its
        own perturbation, e_k = rho g_k / ||g_k||, exactly as if trained alone.
    **base_kwargs : passed to ``base_optimizer`` (lr, momentum, weight_decay, ...).
    """

    def __init__(
        self,
        params: Iterable,
        base_optimizer: type[torch.optim.Optimizer],
        *,
        rho: float = 0.05,
        a: float = 0.0,
        b: float = 1.0,
        adaptive: bool = False,
        model: nn.Module | None = None,
        model_axis: int | None = None,
        **base_kwargs,
    ) -> None:
        check_nonnegative("rho", rho)
        if model_axis not in (None, 0):
            raise ValueError(f"model_axis={model_axis!r} is not valid; choose one of [None, 0]")
        self.model_axis = model_axis
        defaults = dict(rho=rho, a=float(a), b=float(b), adaptive=adaptive, **base_kwargs)
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        # Share groups so that schedulers acting on either object act on both.
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.model = model

    @property
    def needs_second_pass(self) -> bool:
        return any(g["b"] != 0.0 for g in self.param_groups)

    def _with_grads(self, group: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        params = [p for p in group["params"] if p.grad is not None]
        return params, [p.grad for p in params]

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        """L2 norm of the (ASAM-scaled) gradient over every parameter: a scalar, or one
        norm per model (shape (K,)) with ``model_axis=0``."""
        squares = []
        for group in self.param_groups:
            params, grads = self._with_grads(group)
            if not grads:
                continue
            if group["adaptive"]:
                grads = torch._foreach_mul(torch._foreach_abs(params), grads)
            if self.model_axis is None and grads[0].device.type == "cuda":
                # one batched kernel; on the CPU the per-tensor sums below keep results bit for bit
                squares.extend(n.square() for n in torch._foreach_norm(grads))
            elif self.model_axis is None:
                squares.extend(g.pow(2).sum() for g in grads)
            else:  # per model; one model is summed as a row of two, so that K = 1 takes the rows' reduction
                squares.extend(g.pow(2).flatten(1).sum(1) if len(g) > 1 else
                               g.pow(2).flatten(1).expand(2, -1).sum(1)[:1] for g in grads)
        if not squares:
            raise RuntimeError("SharpnessAware.first_step: no parameter has a gradient")
        return torch.stack(squares).sum(0).sqrt()

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Store g(w), then move the weights to w + e (batched ``torch._foreach_*`` ops)."""
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            params, grads = self._with_grads(group)
            if not params:
                continue
            scale = group["rho"] / (grad_norm + 1e-12)
            if self.model_axis is None and not group["adaptive"]:
                es = torch._foreach_mul(grads, scale)
            else:
                views = [scale if self.model_axis is None else scale.view(-1, *([1] * (p.dim() - 1)))
                         for p in params]
                es = [(p.pow(2) if group["adaptive"] else 1.0) * g * s for p, g, s in zip(params, grads, views)]
            # a copy (x * 1 == x exactly): a gradient buffer may be refilled in place by the next
            # pass (sharpmem_lib.mlp_kernel does that), so g(w) cannot be the buffer itself
            g0s = torch._foreach_mul(grads, 1)
            torch._foreach_add_(params, es)
            for p, e, g0 in zip(params, es, g0s):
                state = self.state[p]
                state["e"], state["g0"] = e, g0
        if zero_grad:
            self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Return to w and let the base optimizer step along a*g(w) + b*g(w + e)."""
        for group in self.param_groups:
            a, b = group["a"], group["b"]
            params = [p for p in group["params"] if "e" in self.state[p]]
            if not params:
                continue
            states = [self.state[p] for p in params]
            torch._foreach_sub_(params, [st.pop("e") for st in states])
            g0s = [st.pop("g0") for st in states]
            used = [i for i, p in enumerate(params) if p.grad is not None]
            for i, p in enumerate(params):
                if p.grad is None:  # parameter unused at w + e
                    p.grad = a * g0s[i]
            if used:
                grads = [params[i].grad for i in used]
                torch._foreach_mul_(grads, b)
                torch._foreach_add_(grads, [g0s[i] for i in used], alpha=a)
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """One update. ``closure`` must zero grads, compute the loss, backward, return it.

        Returns the loss at w (the first closure call). With b == 0 (SGD) the closure runs
        once and this is exactly one step of the base optimizer.
        """
        if closure is None:
            raise ValueError(
                "SharpnessAware.step needs a closure (zero_grad, forward, backward, return loss)"
            )
        with torch.enable_grad():
            loss = closure()
        if not self.needs_second_pass:
            self.base_optimizer.step()
            return loss
        self.first_step(zero_grad=True)
        with torch.enable_grad(), frozen_bn_stats(self.model):
            closure()
        self.second_step()
        return loss

    def state_dict(self) -> dict:
        """The base optimizer's state (e.g. momentum buffers): what a resume needs.

        The perturbation lives in ``self.state`` only between the two passes of one step.
        """
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups


def _fused_sgd_applies(params: list) -> bool:
    """Whether torch's fused SGD takes these parameters (tensors; parameter groups are left
    to torch's default)."""
    return bool(params) and all(isinstance(p, torch.Tensor) and p.device.type in ("cpu", "cuda")
                                and p.is_floating_point() for p in params)


def make_optimizer(
    model: nn.Module | Iterable[torch.Tensor],
    algorithm: str = "sgd",
    *,
    base: str = "sgd",
    lr: float = 0.1,
    rho: float = 0.1,
    lam: float = 0.0,
    xi: float = 0.0,
    adaptive: bool = False,
    model_axis: int | None = None,
    **base_kwargs,
) -> SharpnessAware:
    """Build the optimizer for a named algorithm; all arguments are checked first.

    ``model`` is a module (whose BatchNorm statistics the second pass then leaves alone) or
    an iterable of parameters (e.g. stacked ensemble parameters, with ``model_axis=0``).
    With ``base="sgd"`` on CPU or CUDA parameters of one model, torch's fused SGD does the
    update (unless ``fused`` or ``foreach`` is passed), in one pass over parameters, gradients
    and momentum instead of several. Stacked parameters (``model_axis=0``) take foreach SGD
    instead: the fused CPU kernel updates a tensor's last (numel mod vector width) elements
    apart, so model k's update would depend on how many models share the tensor and where k is.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 2)
    >>> opt = make_optimizer(net, "sharpreg", rho=0.01, lam=1.5, xi=0.3, lr=0.1)
    >>> (opt.param_groups[0]["a"], opt.param_groups[0]["b"])
    (2.2, -1.5)
    """
    coef = coefficients(algorithm, lam=lam, xi=xi)
    check_choice("base", base, BASE_OPTIMIZERS)
    check_nonnegative("lr", lr)
    module = model if isinstance(model, nn.Module) else None
    params = list(model.parameters() if module is not None else model)
    if base == "sgd" and "fused" not in base_kwargs and "foreach" not in base_kwargs and _fused_sgd_applies(params):
        # Stacked models (model_axis=0) take foreach SGD: torch's fused CPU kernel treats a tensor's last
        # (numel mod vector width) elements apart, so model k's update would depend on how many models share
        # the tensor and on k's place among them; foreach updates each element the same way wherever it is
        if model_axis is None:
            base_kwargs["fused"] = True
        else:
            base_kwargs["foreach"] = True
    return SharpnessAware(
        params,
        BASE_OPTIMIZERS[base],
        rho=rho,
        a=coef.a,
        b=coef.b,
        adaptive=adaptive,
        model=module,
        model_axis=model_axis,
        lr=lr,
        **base_kwargs,
    )
