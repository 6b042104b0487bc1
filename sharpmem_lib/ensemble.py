"""Train K small models at once (paper §3.2): the subset-trained models behind Feldman &
Zhang's memorization and influence estimates, and shadow models for calibrated attacks.

The K models share an architecture. Their parameters are stacked along a leading axis and
one forward pass runs all of them with :func:`torch.func.vmap` over
:func:`torch.func.functional_call` (batched matrix products instead of K small ones). Each
model keeps what it would have alone: its own initialisation, its own training subset, its
own data order (all from its own seed), and its own SAM perturbation: the optimizer is
:class:`~sharpmem_lib.optim.SharpnessAware` with ``model_axis=0``. So training model k in
the ensemble gives the same model as :func:`~sharpmem_lib.train.train_classifier` on its
subset with its seed (the tests check this), only faster.

On a CPU, ReLU MLPs (the Feldman–Zhang workload) take a second way to the same per-model
gradients, :mod:`sharpmem_lib.mlp_kernel`: a numba kernel that works through the models one
per thread with each model's activations in cache. The optimizer, the data order and the
tests are shared; only the closure that fills the gradients differs. On chapter 2's
workload it trains about three times as fast as vmap (``benchmarks/ensemble_throughput.py``).

Chapter targets that differ only by their seed train here too
(:func:`sharpmem_lib.experiments.train_stacked`): with validation data each model keeps its own
per-epoch history, best-validation weights and epoch, as ``train_classifier`` does.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from sharpmem_lib.tensors import as_tensor, seed_everything, to_float
from sharpmem_lib.train import (PRECISIONS, BestValidation, Schedule, TrainConfig, _autocast, build_optimizer,
                                coefficients, divergence_advice, precision_context, training_precision)
from sharpmem_lib.validation import check_choice, check_fraction, check_positive

__all__ = ["BACKENDS", "Ensemble", "cannot_stack", "initial_parameters", "subset_masks", "subset_size",
           "train_ensemble"]

#: How the per-model gradients are computed. "vmap": torch.func.vmap + autograd, any
#: parameter-only module, any device. "numba": the fused CPU kernel of
#: :mod:`sharpmem_lib.mlp_kernel` for ReLU MLPs (the Feldman–Zhang workload), about three times
#: as fast on a CPU. "auto": "numba" where it applies, else "vmap".
BACKENDS = ("auto", "vmap", "numba")


def subset_size(n_train: int, fraction: float, name: str = "fraction") -> int:
    """``round(fraction * n_train)``, the points in each subset; ``ValueError`` naming ``name``
    unless it leaves at least one point in and one out of every subset (an empty subset
    trained into "diverged, try a smaller lr"; a full one holds no point out of any model, so
    there is no estimate of eqs. 1-2 and no LiRA non-member)."""
    size = round(fraction * n_train)
    if not 0 < size < n_train:
        raise ValueError(f"{name}={fraction!r} is not valid for {n_train} training points: each subset would "
                         f"hold {size} of them; choose a value that leaves at least one point in and one out "
                         f"of each subset ({1 / n_train:.3g} <= {name} <= {(n_train - 1) / n_train:.6g} here)")
    return size


def subset_masks(n_train: int, n_models: int, fraction: float = 0.7, seed: int = 0) -> np.ndarray:
    """(n_models, n_train) bool: model k trains on a uniformly random subset of exactly
    ``round(fraction * n_train)`` points, drawn from seed ``(seed, k)``."""
    check_positive("n_train", n_train, integer=True)
    check_positive("n_models", n_models, integer=True)
    check_fraction("fraction", fraction)
    size = subset_size(n_train, fraction)
    masks = np.zeros((n_models, n_train), dtype=bool)
    for k in range(n_models):
        masks[k, np.random.default_rng([seed, k]).choice(n_train, size, replace=False)] = True
    return masks


def cannot_stack(model: nn.Module, config: TrainConfig | None = None) -> str | None:
    """None if :func:`train_ensemble` can train copies of ``model`` with ``config``, else why
    not (BatchNorm's running statistics and other buffers are per-model state the stacked
    parameters do not hold; augmentation is not implemented here). Such models train one by
    one instead (:func:`sharpmem_lib.subsampling.run_subsampling` does this)."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return "the ensemble trainer does not support BatchNorm layers"
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        return f"the ensemble trainer supports parameter-only models; found buffers {buffers}"
    if config is not None and config.augment:
        return "augment=True is not supported by the ensemble trainer"
    return None


def _kernel_applies(template: nn.Module, device: torch.device) -> str | None:
    """None if the numba kernel computes this model's gradients exactly, else why not."""
    from sharpmem_lib.models import MLP

    if device.type != "cpu":
        return f"it runs on the CPU only, not on {device}"
    layers = list(template) if isinstance(template, MLP) else []
    if (type(template) is not MLP or not all(isinstance(m, nn.Linear) for m in layers[0::2])
            or not all(type(m) is nn.ReLU for m in layers[1::2])):
        return f"it supports sharpmem_lib.models.MLP with ReLU activations only, not {type(template).__name__}"
    try:
        import numba  # noqa: F401
    except ImportError:
        return "numba is not installed (pip install numba)"
    return None


def initial_parameters(build: Callable[[], nn.Module], seeds: list[int],
                       first: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Model k's parameters as ``build()`` returns them after ``seed_everything(seeds[k])``,
    stacked along a leading model axis (name -> (K, ...) tensor). ``first``: the model
    already built from ``seeds[0]``, if any.

    Building a module costs about 0.1 ms, as much as a few training steps of a small MLP in
    the ensemble. So when every parameter belongs to a layer with ``reset_parameters`` (as
    in ``nn.Linear``) and re-running those on one module, after seeding, gives exactly what
    ``build()`` gives (checked on ``seeds[1]``), that module is re-initialised for each seed
    instead of building a new one. Otherwise every model is built.
    """
    def built(seed: int) -> nn.Module:
        seed_everything(seed)
        return build()

    first = built(seeds[0]) if first is None else first
    stacked = {name: torch.empty((len(seeds), *p.shape), dtype=p.dtype) for name, p in first.named_parameters()}

    def put(k: int, module: nn.Module) -> None:
        with torch.no_grad():
            for name, p in module.named_parameters():
                stacked[name][k] = p

    put(0, first)
    if len(seeds) == 1:
        return stacked
    reusable = copy.deepcopy(first)
    layers = [m for m in reusable.modules() if hasattr(m, "reset_parameters") and next(m.parameters(False), None)
              is not None]
    owned = sum(1 for m in layers for _ in m.parameters(False))

    def reset(seed: int) -> nn.Module:
        seed_everything(seed)
        for m in layers:  # in registration order, as built
            m.reset_parameters()
        return reusable

    second = built(seeds[1])
    put(1, second)
    same = owned == len(stacked) and all(torch.equal(p, q) for p, q in zip(second.parameters(),
                                                                            reset(seeds[1]).parameters()))
    make = reset if same else built
    for k in range(2, len(seeds)):
        put(k, make(seeds[k]))
    return stacked


class _Stack(nn.Module):
    """The stacked parameters as one module, so that torch.optim.swa_utils can average them."""

    def __init__(self, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.names = list(params)
        self.tensors = nn.ParameterList([nn.Parameter(params[n]) for n in self.names])

    def as_dict(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.tensors))


@dataclass
class Ensemble:
    """K trained models: ``template`` (the architecture, on the meta device) and ``params``
    (name -> tensor with a leading model axis; the SWA average when ``config.swa``).

    ``history``: one record per epoch, the models' mean training loss and accuracy.
    ``histories[k]``: model k's own records, as :func:`~sharpmem_lib.train.train_classifier`
    writes them (``epoch``, ``train_loss``, ``train_acc``, ``lr``, and ``val_acc`` with
    validation data). With validation data, ``best_states[k]`` and ``best_epochs[k]`` are
    model k's best-validation weights and epoch (else None). ``diverged[k]`` is None, or
    why model k stopped (``keep_diverged=True``: train_classifier's error message)."""

    template: nn.Module
    params: dict[str, torch.Tensor]
    history: list[dict] = field(default_factory=list)
    histories: list[list[dict]] = field(default_factory=list)
    best_states: list[dict[str, torch.Tensor] | None] = field(default_factory=list)
    best_epochs: list[int | None] = field(default_factory=list)
    diverged: list[str | None] = field(default_factory=list)

    @property
    def n_models(self) -> int:
        return next(iter(self.params.values())).shape[0]

    @torch.no_grad()
    def logits(self, X, batch_size: int = 2048) -> torch.Tensor:
        """Every model's logits on every row of ``X``: (K, n, classes), float32 on the CPU."""
        device = next(iter(self.params.values())).device
        X = as_tensor(X, None, device)
        run = vmap(lambda p, x: functional_call(self.template, p, (x,)), in_dims=(0, None))
        with precision_context("fp32", device):  # as predict_logits: stored logits are IEEE fp32
            return torch.cat([run(self.params, to_float(X[i : i + batch_size]))
                              for i in range(0, len(X), batch_size)], dim=1).float().cpu()

    def model(self, k: int) -> nn.Module:
        """Model ``k`` as an ordinary module (on the CPU)."""
        module = copy.deepcopy(self.template).to_empty(device="cpu")
        module.load_state_dict({n: t[k].detach().cpu() for n, t in self.params.items()}, strict=True)
        return module


def train_ensemble(
    build: Callable[[], nn.Module],
    X,
    y,
    masks: np.ndarray,
    config: TrainConfig,
    *,
    seeds: list[int] | None = None,
    device: torch.device | str = "cpu",
    backend: str = "auto",
    progress: bool = True,
    desc: str = "ensemble",
    precision: str | None = None,
    X_val=None,
    y_val=None,
    keep_diverged: bool = False,
) -> Ensemble:
    """Train one model per row of ``masks`` on the rows of ``(X, y)`` it selects.

    ``build()`` returns a fresh model; model k is built after ``seed_everything(seeds[k])``
    and its data order is drawn from a generator seeded with ``seeds[k]`` (default:
    ``config.seed + k``). Every mask must select the same number of points (as
    :func:`subset_masks` does), so that one batch holds a slice of each model's data.
    Models with BatchNorm or other buffers are not supported (see :func:`cannot_stack`).
    ``backend`` chooses how the per-model gradients are computed, one of :data:`BACKENDS`;
    the optimizer, the data order and so the trained models are the same with either (up to
    floating-point summation order). ``precision`` defaults to
    :func:`~sharpmem_lib.train.training_precision`, the one ``train_classifier`` uses for the
    same config and device, so that stacked and one-by-one models of a study agree.

    With ``X_val, y_val`` every model selects its own best-validation weights after each
    epoch exactly as ``train_classifier`` does (:class:`~sharpmem_lib.train.BestValidation`
    on an ordinary module carrying model k's weights, so the same accuracy computation; SWA
    runs choose among the averaged weights only). A model whose mean training loss turns
    non-finite raises ``FloatingPointError`` (default), or with ``keep_diverged=True`` is
    recorded in ``diverged`` with ``train_classifier``'s message and left out of the history
    from that epoch on, while the others train on: every update is per model, so a NaN in
    one model never reaches another.
    """
    check_choice("backend", backend, BACKENDS)
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 2 or masks.shape[0] == 0:
        raise ValueError(f"masks has shape {masks.shape}; expected (n_models >= 1, n_train)")
    n_models = masks.shape[0]
    sizes = masks.sum(1)
    if (sizes != sizes[0]).any():
        raise ValueError("every model's subset must have the same size (see subset_masks)")
    seeds = [config.seed + k for k in range(n_models)] if seeds is None else list(seeds)
    if len(seeds) != n_models:
        raise ValueError(f"seeds has {len(seeds)} entries for {n_models} models")
    device = torch.device(device)
    precision = training_precision(config, device) if precision is None else precision
    check_choice("precision", precision, PRECISIONS)
    if precision == "bf16-autocast" and coefficients(config.algorithm, config.lam, config.xi).needs_second_pass:
        raise ValueError(f"precision='bf16-autocast' is not valid for {config.describe()}: bf16 erases the "
                         f"perturbation e; use precision='fp32'")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    seed_everything(seeds[0])
    first = build()  # check it before building the other K - 1
    unstackable, no_kernel = cannot_stack(first, config), _kernel_applies(first, device)
    if unstackable:
        raise ValueError(unstackable)
    if backend == "numba" and no_kernel:
        raise ValueError(f"backend='numba' is not available here: {no_kernel}; use backend='vmap'")
    use_kernel = backend == "numba" or (backend == "auto" and no_kernel is None)
    stack = _Stack({n: t.to(device) for n, t in initial_parameters(build, seeds, first).items()})
    template = first.to("meta")

    optimizer = build_optimizer(config, stack.parameters(), model_axis=0)
    schedule = Schedule(optimizer, config, stack)

    X = as_tensor(X, None, device)
    y = as_tensor(y, torch.int64, device)
    subsets = torch.as_tensor(np.stack([np.flatnonzero(m) for m in masks]), device=device)  # (K, n_sub)
    n_sub = subsets.shape[1]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    forward = vmap(lambda p, x: functional_call(template, p, (x,)))
    loss_fn = nn.CrossEntropyLoss(reduction="none", label_smoothing=config.label_smoothing)
    if use_kernel and precision != "fp32":
        raise ValueError(f"precision={precision!r} is not available with the numba kernel (fp32 only)")
    blas = precision_context(precision, device)
    if use_kernel:
        from sharpmem_lib.mlp_kernel import StackedMLPGradients, single_threaded_blas

        blas = single_threaded_blas()  # the kernel calls BLAS from its own threads (fp32, CPU only)
        tensors = stack.as_dict()  # MLP order: 0.weight, 0.bias, 2.weight, 2.bias, ...
        gradients = StackedMLPGradients(X, y, [t.detach() for t in list(tensors.values())[0::2]],
                                        [t.detach() for t in list(tensors.values())[1::2]], config.label_smoothing)
        # each parameter's .grad is the kernel's gradient buffer, which it refills in place
        param_grads = list(zip(stack.parameters(),
                               [g for pair in zip(gradients.grad_weights, gradients.grad_biases) for g in pair]))
    history: list[dict] = []
    histories: list[list[dict]] = [[] for _ in range(n_models)]
    diverged: list[str | None] = [None] * n_models
    bests = None if X_val is None else [BestValidation(X_val, y_val, device) for _ in range(n_models)]
    probe = copy.deepcopy(template).to_empty(device=device) if bests is not None else None  # model k's weights, in turn
    bar = tqdm(range(config.epochs), desc=desc, disable=not progress, leave=False)
    with blas:
        for epoch in bar:
            orders = torch.stack([torch.randperm(n_sub, generator=g) for g in generators]).to(device)
            rows = subsets.gather(1, orders)  # (K, n_sub): each model's data in its own order
            total_loss = torch.zeros(n_models, device=device)
            correct = torch.zeros(n_models, device=device)
            for start in range(0, n_sub, config.batch_size):
                idx = rows[:, start : start + config.batch_size]
                first: list[torch.Tensor] = []

                def kernel_closure() -> torch.Tensor:
                    loss, hits = gradients(idx)
                    for p, g in param_grads:
                        p.grad = g
                    if not first:
                        first.extend([loss, hits])
                    return loss.sum()

                def closure() -> torch.Tensor:
                    xb, yb = to_float(X[idx]), y[idx]  # (K, B, ...), (K, B)
                    optimizer.zero_grad(set_to_none=True)
                    with _autocast(device, precision):
                        logits = forward(stack.as_dict(), xb).float()
                    per_model = loss_fn(logits.flatten(0, 1), yb.flatten()).view(yb.shape).mean(1)
                    if not first:
                        first.extend([per_model.detach(), (logits.detach().argmax(-1) == yb).sum(1)])
                    per_model.sum().backward()  # model k's gradient is that of its own mean loss
                    return per_model.sum()

                optimizer.step(kernel_closure if use_kernel else closure)
                total_loss += first[0] * idx.shape[1]
                correct += first[1]
            mean_loss = (total_loss / n_sub).cpu()
            totals, hits = total_loss.cpu().tolist(), correct.cpu().tolist()
            alive = [k for k in range(n_models) if diverged[k] is None]
            bad = [k for k in alive if not math.isfinite(totals[k] / n_sub)]
            if bad and not keep_diverged:
                raise FloatingPointError(f"{len(bad)} of {n_models} ensemble models diverged in epoch {epoch + 1} with "
                                         f"{config.describe()}, lr={config.lr}; {divergence_advice(config)}")
            for k in bad:  # train_classifier's message, as its run would have raised it
                diverged[k] = (f"training diverged (mean loss {totals[k] / n_sub}) in epoch {epoch + 1} with "
                               f"{config.describe()}, lr={config.lr}; {divergence_advice(config)}")
            alive = [k for k in alive if diverged[k] is None]
            lr_now = optimizer.param_groups[0]["lr"]
            schedule.step(epoch, stack)
            # as train_classifier: the loss as a Python float of the float32 sum, over n
            records = {k: {"epoch": epoch + 1, "train_loss": totals[k] / n_sub, "train_acc": int(hits[k]) / n_sub,
                           "lr": lr_now} for k in alive}
            if bests is not None:
                averaged = schedule.averaged_so_far(epoch)
                source = (stack if averaged is None else averaged).as_dict()
                for k in alive:
                    with torch.no_grad():
                        for name, p in probe.named_parameters():
                            p.copy_(source[name][k])
                    # SWA runs validate (and may keep) only the averaged weights, as train_classifier
                    bests[k].update(probe, epoch + 1, records[k],
                                    eligible=averaged is not None or schedule.swa_model is None)
            for k in alive:
                histories[k].append(records[k])
            history.append({"epoch": epoch + 1, "train_loss": float(mean_loss[alive].mean()) if alive else math.nan,
                            "train_acc": float((correct.cpu()[alive] / n_sub).mean()) if alive else math.nan})
            bar.set_postfix(loss=f"{history[-1]['train_loss']:.3f}", acc=f"{history[-1]['train_acc']:.3f}")

    averaged = schedule.averaged()
    final = stack if averaged is None else averaged
    return Ensemble(template, {n: t.detach() for n, t in final.as_dict().items()}, history, histories,
                    [b.state for b in bests] if bests is not None else [None] * n_models,
                    [b.epoch for b in bests] if bests is not None else [None] * n_models, diverged)
