"""A plain, seeded training loop over in-memory tensors (paper §4).

Batches are drawn by index from tensors that already sit on the device: no DataLoader,
no worker processes, which is what small models on small data need to be fast on a CPU.
Any algorithm of :mod:`sharpmem_lib.optim` can be combined with stochastic weight
averaging (SWA) through :mod:`torch.optim.swa_utils`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn
from tqdm.auto import tqdm

from sharpmem_lib.optim import ALGORITHMS, BASE_OPTIMIZERS, coefficients, make_optimizer
from sharpmem_lib.validation import (
    check_choice,
    check_fraction,
    check_nonnegative,
    check_positive,
)

__all__ = [
    "TrainConfig",
    "TrainResult",
    "DEVICES",
    "accuracy",
    "predict_logits",
    "seed_everything",
    "select_device",
    "train_classifier",
]

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run besides the model and the data.

    ``algorithm``, ``rho``, ``lam``, ``xi`` and ``adaptive`` choose the member of the
    sharpness-aware family (:mod:`sharpmem_lib.optim`); ``swa`` averages the weights of
    the last ``1 - swa_start`` fraction of epochs. Invalid values raise ``ValueError``
    on construction, before anything is trained.
    """

    algorithm: str = "sgd"
    rho: float = 0.1
    lam: float = 0.0
    xi: float = 0.0
    adaptive: bool = False
    base: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 100
    batch_size: int = 64
    seed: int = 0
    swa: bool = False
    swa_start: float = 0.75
    swa_lr: float = 0.05

    def __post_init__(self) -> None:
        check_choice("algorithm", self.algorithm, ALGORITHMS)
        check_choice("base", self.base, BASE_OPTIMIZERS)
        coefficients(self.algorithm, self.lam, self.xi)  # checks lam, xi
        check_nonnegative("rho", self.rho)
        check_positive("lr", self.lr)
        check_nonnegative("momentum", self.momentum)
        check_nonnegative("weight_decay", self.weight_decay)
        check_positive("epochs", self.epochs, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        if self.swa:
            check_fraction("swa_start", self.swa_start)
            check_positive("swa_lr", self.swa_lr)

    def describe(self) -> str:
        """Short human label, e.g. ``sam(rho=0.1)``."""
        if self.algorithm == "sgd":
            label = "sgd"
        elif self.algorithm == "sam":
            label = f"sam(rho={self.rho:g})"
        elif self.algorithm == "sharp":
            label = f"sharp(rho={self.rho:g}, lam={self.lam:g})"
        else:
            label = f"sharpreg(rho={self.rho:g}, lam={self.lam:g}, xi={self.xi:g})"
        return label + ("+swa" if self.swa else "")


@dataclass
class TrainResult:
    """The trained model (the SWA average when ``swa``) and per-epoch history."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def select_device(device: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit name must be available."""
    check_choice("device", device, DEVICES)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but torch sees no CUDA device")
    return torch.device(device)


def _as_tensor(a, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a, dtype=dtype, device=device)


@torch.no_grad()
def predict_logits(model: nn.Module, X, batch_size: int = 4096) -> torch.Tensor:
    """Logits of ``model`` (in eval mode) on every row of ``X``, on the CPU."""
    device = next(model.parameters()).device
    X = _as_tensor(X, torch.float32, device)
    was_training = model.training
    model.eval()
    out = torch.cat([model(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    model.train(was_training)
    return out.float().cpu()


def accuracy(model: nn.Module, X, y) -> float:
    """Fraction of rows of ``X`` whose predicted class equals ``y``."""
    y = _as_tensor(y, torch.int64, torch.device("cpu"))
    return (predict_logits(model, X).argmax(1) == y).float().mean().item()


def train_classifier(
    model: nn.Module,
    X,
    y,
    config: TrainConfig,
    *,
    progress: bool = True,
    desc: str | None = None,
) -> TrainResult:
    """Train ``model`` on ``(X, y)`` with cross-entropy and the configured algorithm.

    The data order is drawn from a generator seeded by ``config.seed``, so a run is a
    deterministic function of (initial weights, data, config) on the CPU. Seed the model's
    initialisation yourself (e.g. ``seed_everything``) before building it.

    Raises ``FloatingPointError`` naming the hyperparameters if the loss diverges.
    """
    device = next(model.parameters()).device
    X = _as_tensor(X, torch.float32, device)
    y = _as_tensor(y, torch.int64, device)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    optimizer = make_optimizer(
        model,
        config.algorithm,
        base=config.base,
        lr=config.lr,
        rho=config.rho,
        lam=config.lam,
        xi=config.xi,
        adaptive=config.adaptive,
        weight_decay=config.weight_decay,
        **({"momentum": config.momentum} if config.base == "sgd" else {}),
    )
    loss_fn = nn.CrossEntropyLoss()
    swa_model = AveragedModel(model) if config.swa else None
    swa_first_epoch = int(math.floor(config.swa_start * config.epochs)) if config.swa else None
    swa_scheduler = SWALR(optimizer, swa_lr=config.swa_lr) if config.swa else None

    generator = torch.Generator().manual_seed(config.seed)
    n = len(X)
    history: list[dict] = []
    model.train()
    epochs = tqdm(range(config.epochs), desc=desc or config.describe(), disable=not progress, leave=False)
    for epoch in epochs:
        order = torch.randperm(n, generator=generator).to(device)
        total_loss, correct = 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            xb, yb = X[idx], y[idx]
            logits_holder: list[torch.Tensor] = []

            def closure() -> torch.Tensor:
                optimizer.zero_grad(set_to_none=True)
                logits = model(xb)
                if not logits_holder:
                    logits_holder.append(logits.detach())
                loss = loss_fn(logits, yb)
                loss.backward()
                return loss

            loss = optimizer.step(closure).detach()
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training diverged (loss={loss.item()}) at epoch {epoch} with "
                    f"{config.describe()}, lr={config.lr}; try a smaller lr or xi"
                )
            total_loss += loss.item() * len(idx)
            correct += (logits_holder[0].argmax(1) == yb).sum().item()
        if swa_model is not None and epoch >= swa_first_epoch:
            swa_model.update_parameters(model)
            swa_scheduler.step()
        history.append({"epoch": epoch + 1, "train_loss": total_loss / n, "train_acc": correct / n})
        epochs.set_postfix(loss=f"{total_loss / n:.3f}", acc=f"{correct / n:.3f}")

    if swa_model is not None:
        # BatchNorm statistics must be recomputed for the averaged weights.
        update_bn([X[i : i + config.batch_size] for i in range(0, n, config.batch_size)], swa_model)
        return TrainResult(swa_model.module, history)
    return TrainResult(model, history)

