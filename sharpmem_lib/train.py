"""The training engine (paper §4): seeded, resumable, validation-selected.

Batches are drawn by index from tensors that already sit on the device: no DataLoader,
no worker processes, which is what small models on small data need to be fast on a CPU,
and what fast CIFAR trainers do on a GPU. Any algorithm of :mod:`sharpmem_lib.optim` can be
combined with stochastic weight averaging (SWA) through :mod:`torch.optim.swa_utils`.

The paper selects the model with the best validation accuracy; the engine keeps both the
final weights and the best-validation weights. With ``checkpoint_path`` it saves its whole
state after every epoch (atomically) and resumes from it, so that a run killed mid-way
ends with exactly the result of an uninterrupted run (on the CPU).
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn
from tqdm.auto import tqdm

from sharpmem_lib._io import atomic_write
from sharpmem_lib.optim import ALGORITHMS, BASE_OPTIMIZERS, coefficients, make_optimizer
# the shared helpers; the private names are this module's own spelling of them
from sharpmem_lib.tensors import DEVICES, seed_everything, select_device
from sharpmem_lib.tensors import as_tensor, cpu_state, to_float
from sharpmem_lib.validation import (
    check_choice,
    check_fraction,
    check_nonnegative,
    check_positive,
)

__all__ = [
    "BestValidation",
    "Regularizer",
    "Schedule",
    "TrainConfig",
    "build_optimizer",
    "divergence_advice",
    "TrainResult",
    "DEVICES",
    "PRECISIONS",
    "accuracy",
    "augment_batch",
    "load_checkpoint",
    "prepare_for_device",
    "precision_context",
    "predict_logits",
    "require_gpu",
    "seed_everything",
    "select_device",
    "train_classifier",
    "training_precision",
]

#: The arithmetic a run trains in (:func:`training_precision` picks one per config and device;
#: it is part of what determines a result, so caches key on it).
PRECISIONS: dict[str, str] = {
    "fp32": "float32 weights and arithmetic everywhere; on CUDA with TF32 off (IEEE float32 matmuls and "
            "convolutions)",
    "bf16-autocast": "float32 weights, forward passes under torch.autocast(bfloat16) (CUDA, single-pass "
                     "algorithms only)",
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run besides the model and the data.

    ``algorithm``, ``rho``, ``lam``, ``xi`` and ``adaptive`` choose the member of the
    sharpness-aware family (:mod:`sharpmem_lib.optim`); ``lr_milestones`` multiply the
    learning rate by ``lr_gamma`` at those epochs (CIFAR recipe: 60/120/160, x0.2);
    ``augment`` applies random crops (padding 4) and horizontal flips to image batches;
    ``swa`` averages the weights of the last ``1 - swa_start`` fraction of epochs;
    ``label_smoothing`` mixes the targets with the uniform distribution (Szegedy et al. 2016),
    a cheap membership-inference defense baseline (paper §2.1).
    Invalid values raise ``ValueError`` on construction, before anything is trained.
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
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.2
    augment: bool = False
    seed: int = 0
    swa: bool = False
    swa_start: float = 0.75
    swa_lr: float = 0.05
    label_smoothing: float = 0.0

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
        object.__setattr__(self, "lr_milestones", tuple(int(m) for m in self.lr_milestones))
        if list(self.lr_milestones) != sorted(set(self.lr_milestones)) or any(m <= 0 for m in self.lr_milestones):
            raise ValueError(f"lr_milestones={self.lr_milestones!r} is not valid; "
                             "it must be increasing positive epochs")
        check_positive("lr_gamma", self.lr_gamma)
        if self.swa:
            check_fraction("swa_start", self.swa_start)
            check_positive("swa_lr", self.swa_lr)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing={self.label_smoothing!r} is not valid; it must be in [0, 1)")

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
        return label + ("+swa" if self.swa else "") + (f"+ls{self.label_smoothing:g}" if self.label_smoothing else "")


@dataclass
class TrainResult:
    """``model``: the final model (the SWA average when ``swa``); ``best_state``: the
    state dict with the best validation accuracy (``None`` without validation data);
    ``history``: one dict per epoch (train loss/accuracy, validation accuracy, lr)."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch: int | None = None

    def best_model(self) -> nn.Module:
        """A copy of the model carrying the best-validation weights."""
        if self.best_state is None:
            raise ValueError("no validation data was given, so there is no best-validation model")
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.best_state)
        return model


def build_optimizer(config: TrainConfig, target, *, model_axis: int | None = None):
    """The configured member of the sharpness-aware family over a module or parameters."""
    momentum = {"momentum": config.momentum} if config.base == "sgd" else {}
    return make_optimizer(target, config.algorithm, base=config.base, lr=config.lr, rho=config.rho, lam=config.lam,
                          xi=config.xi, adaptive=config.adaptive, weight_decay=config.weight_decay,
                          model_axis=model_axis, **momentum)


class Schedule:
    """The learning-rate schedule of a run, stepped once per epoch: LR milestones, and with
    ``config.swa`` from epoch ``floor(swa_start * epochs)`` on SWALR's rate and an equal-weight
    average of the weights after each epoch (:mod:`torch.optim.swa_utils`)."""

    def __init__(self, optimizer, config: TrainConfig, module: nn.Module) -> None:
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.lr_milestones), config.lr_gamma)
        self.swa_model = AveragedModel(module) if config.swa else None
        self.swa_scheduler = SWALR(optimizer, swa_lr=config.swa_lr) if config.swa else None
        self.first_swa_epoch = int(math.floor(config.swa_start * config.epochs)) if config.swa else config.epochs
        self.epochs = config.epochs

    def step(self, epoch: int, module: nn.Module) -> None:
        """End of (0-based) ``epoch``."""
        if self.swa_model is not None and epoch >= self.first_swa_epoch:
            self.swa_model.update_parameters(module)
            self.swa_scheduler.step()
        else:
            self.scheduler.step()

    def averaged_so_far(self, epoch: int) -> nn.Module | None:
        """After (0-based) ``epoch``: the average of the epochs averaged so far, if any."""
        if self.swa_model is None or epoch < self.first_swa_epoch:
            return None
        return self.swa_model.module

    def averaged(self) -> nn.Module | None:
        """The SWA average, if any epoch was averaged."""
        if self.swa_model is None or self.epochs <= self.first_swa_epoch:
            return None
        return self.swa_model.module

    def state_dict(self) -> dict:
        return {"scheduler": self.scheduler.state_dict(),
                "swa_model": self.swa_model.state_dict() if self.swa_model is not None else None,
                "swa_scheduler": self.swa_scheduler.state_dict() if self.swa_scheduler is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        if self.swa_model is not None:
            self.swa_model.load_state_dict(state["swa_model"])
            self.swa_scheduler.load_state_dict(state["swa_scheduler"])


class Regularizer:
    """A term added to the training loss, with its own state (see ``train_classifier``).

    ``before_step(model, xb, yb)`` runs before each optimizer step (e.g. AdvReg's inference
    model update); ``loss(logits, yb)`` is added to the cross-entropy at every loss
    evaluation (both passes of SAM-like algorithms); ``epoch_record()`` adds fields to the
    epoch's history. The base class adds nothing.
    """

    def before_step(self, model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> None:
        pass

    def loss(self, logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return logits.new_zeros(())

    def epoch_record(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def divergence_advice(config: TrainConfig) -> str:
    """What to try after ``config`` diverged: a smaller lr, and the knobs its algorithm reads
    (rho for the two-pass methods, lam and xi where eqs. 4-6 use them), so that the message of a
    SAM run with a huge rho does not point at lr and xi alone."""
    knobs = ["lr"]
    if coefficients(config.algorithm, config.lam, config.xi).needs_second_pass:
        knobs.append("rho")
    if config.algorithm in ("sharp", "sharpreg") and config.lam > 0:
        knobs.append("lam")
    if config.algorithm == "sharpreg" and config.xi > 0:
        knobs.append("xi")
    return "try a smaller " + (knobs[0] if len(knobs) == 1 else f"{', '.join(knobs[:-1])} or {knobs[-1]}")


def training_precision(config: TrainConfig, device: torch.device | str, defense: str = "none") -> str:
    """The precision (a key of :data:`PRECISIONS`) that a run of ``config`` on ``device`` trains in.

    ``bf16-autocast`` only on CUDA and only for single-pass algorithms (SGD, and eq. 4/6 with
    lam = 0): under bf16 the perturbed weights w + e are rounded to bf16, and at the paper's
    rho the perturbation is below bf16's spacing of the weights (WRN-16-8 at initialisation:
    median |e| 7.5e-6 at rho = 0.1, spacing of median |w| about 6e-5), so SAM, eq. 4 and
    SharpReg would mostly see e = 0. They train in ``fp32`` with TF32 off. DP-SGD (Opacus's
    per-sample gradients) trains in ``fp32`` too. Everything on the CPU or MPS is ``fp32``.
    Caches put this in the key: the same config gives different numbers in different
    precisions."""
    device = torch.device(device)
    if device.type != "cuda" or defense == "dpsgd":
        return "fp32"
    return "fp32" if coefficients(config.algorithm, config.lam, config.xi).needs_second_pass else "bf16-autocast"


# The float32-precision switches of torch >= 2.9 (the legacy allow_tf32 flags must not be
# mixed with them: torch raises when it reads flags set through both).
_FP32_SWITCHES = (("cuda", "matmul"), ("cudnn", "conv"), ("cudnn", "rnn"))


@contextlib.contextmanager
def _ieee_fp32() -> Iterator[None]:
    """TF32 off for CUDA matmuls and convolutions inside the block; restored afterwards."""
    targets = [getattr(getattr(torch.backends, a), b, None) for a, b in _FP32_SWITCHES]
    if all(t is not None and hasattr(t, "fp32_precision") for t in targets):
        saved = [t.fp32_precision for t in targets]
        try:
            for t in targets:
                t.fp32_precision = "ieee"
            yield
        finally:
            for t, value in zip(targets, saved):
                t.fp32_precision = value
    else:  # older torch: the legacy flags
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        try:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def precision_context(precision: str, device: torch.device | str):
    """The arithmetic of a whole run (or evaluation) in ``precision``: for ``fp32`` on CUDA,
    TF32 off; nothing else (bf16 autocast wraps the forward passes only, :func:`_autocast`)."""
    check_choice("precision", precision, PRECISIONS)
    if precision == "fp32" and torch.device(device).type == "cuda":
        return _ieee_fp32()
    return contextlib.nullcontext()


def _autocast(device: torch.device, precision: str = "fp32"):
    """bf16 autocast around a forward pass when the run's precision is ``bf16-autocast``."""
    if precision == "bf16-autocast":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def require_gpu(purpose: str = "this profile") -> torch.device:
    """The CUDA device, after checking that torch can really run a kernel on it; otherwise
    ``RuntimeError`` saying why and what to do. A profile that needs a GPU (``paper``) calls
    this before any work, so that it never trains for weeks on a CPU instead."""
    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            why = f"this torch ({torch.__version__}) is a CPU-only build"
        elif torch.cuda.device_count() == 0:
            why = (f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device: no GPU, or an "
                   f"NVIDIA driver too old for CUDA {torch.version.cuda} (check nvidia-smi)")
        else:
            why = f"torch {torch.__version__} (CUDA {torch.version.cuda}) cannot initialise CUDA"
        raise RuntimeError(f"{purpose} needs a CUDA GPU, but {why}. Run it on a GPU machine, install a torch "
                           f"wheel that matches the driver, or choose a CPU profile (smoke, default).")
    try:
        x = torch.ones(8, device="cuda")
        if float((x @ x).item()) != 8.0:
            raise RuntimeError("a test matmul gave a wrong result")
    except RuntimeError as err:
        raise RuntimeError(f"{purpose} needs a usable CUDA GPU, but a test kernel on "
                           f"{torch.cuda.get_device_name(0)} failed: {err}") from err
    return torch.device("cuda")


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` (on the CPU) on ``device``; to CUDA as a non-blocking copy from pinned memory."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def augment_batch(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, per image, on tensors.

    The random numbers come from ``generator`` (on the CPU), so augmentation is part of the
    seeded, resumable state of a run.
    """
    n, _, h, w = x.shape
    shifts = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    if x.device.type == "cuda":  # one asynchronous copy from pinned memory, no host sync
        both = _to_device(torch.cat([shifts, flips[:, None].long()], 1), x.device)
        shifts, flips = both[:, :2], both[:, 2].bool()
    padded = nn.functional.pad(x, (padding, padding, padding, padding))
    rows = (torch.arange(h, device=x.device)[None, :] + shifts[:, :1])  # (n, h)
    cols = (torch.arange(w, device=x.device)[None, :] + shifts[:, 1:])  # (n, w)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    idx_rows = rows[:, None, :, None].expand(n, x.shape[1], h, padded.shape[3])
    out = padded.gather(2, idx_rows)
    idx_cols = cols[:, None, None, :].expand(n, x.shape[1], h, w)
    return out.gather(3, idx_cols)


@torch.no_grad()
def predict_logits(model: nn.Module, X, batch_size: int = 4096) -> torch.Tensor:
    """Logits of ``model`` (in eval mode) on every row of ``X``, as float32 on the CPU.

    Always computed in ``fp32`` (TF32 off on CUDA), whatever the model trained in: stored
    logits feed every attack score, and bf16 logits step by 0.0625 once |z| >= 8."""
    device = next(model.parameters()).device
    X = as_tensor(X, None, device)
    was_training = model.training
    model.eval()
    with precision_context("fp32", device):
        out = torch.cat([model(to_float(X[i : i + batch_size])).float() for i in range(0, len(X), batch_size)])
    model.train(was_training)
    return out.cpu()


def accuracy(model: nn.Module, X, y) -> float:
    """Fraction of rows of ``X`` whose predicted class equals ``y``."""
    y = as_tensor(y, torch.int64, torch.device("cpu"))
    return (predict_logits(model, X).argmax(1) == y).float().mean().item()


class BestValidation:
    """The paper's model selection, as every trainer keeps it: the weights of the epoch with
    the best validation accuracy (ties: the earlier epoch). Without validation data there is
    nothing to keep and :meth:`update` does nothing."""

    def __init__(self, X_val=None, y_val=None, device: torch.device | None = None) -> None:
        self.X = None if X_val is None else as_tensor(X_val, None, device or torch.device("cpu"))
        self.y = None if y_val is None else as_tensor(y_val, torch.int64, torch.device("cpu"))
        self.state: dict[str, torch.Tensor] | None = None
        self.epoch: int | None = None
        self.accuracy = -1.0

    def update(self, model: nn.Module, epoch: int, record: dict, eligible: bool = True) -> None:
        """Add the validation accuracy to the epoch's ``record``; keep the weights if best
        (and ``eligible``: SWA runs choose among averaged weights only)."""
        if self.X is None:
            return
        record["val_acc"] = accuracy(model, self.X, self.y)
        if eligible and record["val_acc"] > self.accuracy:
            self.accuracy, self.epoch, self.state = record["val_acc"], epoch, cpu_state(model)

    def state_dict(self) -> dict:
        """What a checkpoint keeps (the keys every checkpoint has used)."""
        return {"best_state": self.state, "best_epoch": self.epoch, "best_val": self.accuracy}

    def load_state_dict(self, state: dict) -> None:
        self.state, self.epoch, self.accuracy = state["best_state"], state["best_epoch"], state["best_val"]


def _rng_states(device: torch.device) -> dict:
    """The global random states a run draws from: the CPU's, and the CUDA devices' on CUDA
    (dropout on a GPU draws from them). All are CPU byte tensors."""
    states = {"torch_rng": torch.get_rng_state()}
    states["cuda_rng"] = torch.cuda.get_rng_state_all() if device.type == "cuda" else None
    return states


def _set_rng_states(state: dict, device: torch.device) -> None:
    """Restore :func:`_rng_states` (from a checkpoint loaded to the CPU)."""
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def load_checkpoint(path: str | Path) -> dict:
    """A run's checkpoint, every tensor on the CPU: generators take only CPU states, and
    ``load_state_dict`` moves weights and optimizer state to the parameters' devices."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def prepare_for_device(model: nn.Module, X: torch.Tensor | None = None) -> nn.Module:
    """What every training entry point does on CUDA: cuDNN autotuning on, and a model fed
    images (4-D ``X``, or any 4-D weight when ``X`` is None) in channels-last layout, which
    bf16 tensor-core convolutions need. Nothing on other devices. Returns ``model``."""
    device = next(model.parameters()).device
    if device.type != "cuda":
        return model
    torch.backends.cudnn.benchmark = True
    images = X.ndim == 4 if X is not None else any(p.ndim == 4 for p in model.parameters())
    return model.to(memory_format=torch.channels_last) if images else model


def train_classifier(
    model: nn.Module,
    X,
    y,
    config: TrainConfig,
    *,
    X_val=None,
    y_val=None,
    checkpoint_path: str | Path | None = None,
    progress: bool = True,
    desc: str | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    regularizer: "Regularizer | None" = None,
    compile_model: bool = False,
    precision: str | None = None,
) -> TrainResult:
    """Train ``model`` (already on its device) on ``(X, y)`` with cross-entropy.

    ``y`` holds class labels (n,), or class probabilities (n, classes) to distil a teacher's
    soft labels (SELENA's self-distillation, :mod:`sharpmem_lib.defenses`); accuracy is then
    measured against their argmax.

    The data order and augmentation are drawn from a generator seeded by ``config.seed``,
    so a run is a deterministic function of (initial weights, data, config) on the CPU.
    Seed the model's initialisation yourself (e.g. ``seed_everything``) before building it.
    With ``X_val, y_val`` the best-validation weights are kept (ties: the earlier epoch);
    with ``config.swa`` the candidates are the averaged weights of the SWA epochs (BatchNorm
    statistics recomputed for each), and ``model`` of the result is the full average.
    With ``checkpoint_path`` the full state is saved after each epoch and a run resumes
    from an existing checkpoint. ``on_epoch_end(epoch)`` is called after each checkpoint.

    ``regularizer`` (e.g. AdvReg's adversarial term, :mod:`sharpmem_lib.defenses`) adds a
    term to every loss evaluation and may update its own state before each step; its state
    is checkpointed with the run's. ``compile_model`` runs the training forward passes
    through ``torch.compile`` (static shapes; the weights, checkpoints and evaluation are the
    module's own). ``precision`` (a key of :data:`PRECISIONS`) defaults to
    :func:`training_precision`; bf16 with a two-pass algorithm is refused (it erases e).

    Raises ``FloatingPointError`` naming the hyperparameters if the loss diverges.
    """
    device = next(model.parameters()).device
    precision = training_precision(config, device) if precision is None else precision
    check_choice("precision", precision, PRECISIONS)
    if precision == "bf16-autocast" and coefficients(config.algorithm, config.lam, config.xi).needs_second_pass:
        raise ValueError(f"precision='bf16-autocast' is not valid for {config.describe()}: bf16 rounds the perturbed "
                         f"weights w + e to bf16 and erases most of e at this rho; use precision='fp32'")
    X = as_tensor(X, None, device)
    soft = np.ndim(y) == 2 if not torch.is_tensor(y) else y.ndim == 2
    y = as_tensor(y, torch.float32 if soft else torch.int64, device)
    y_label = y.argmax(1) if soft else y
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    best = BestValidation(X_val, y_val, device)
    if config.augment and X.ndim != 4:
        raise ValueError(f"augment=True needs image inputs (N, C, H, W); got shape {tuple(X.shape)}")
    prepare_for_device(model, X)
    channels_last = device.type == "cuda" and X.ndim == 4
    optimizer = build_optimizer(config, model)
    schedule = Schedule(optimizer, config, model)
    # static shapes: the ragged last batch compiles once more instead of making every shape dynamic
    forward = torch.compile(model, dynamic=False) if compile_model else model
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    start_epoch = 0
    checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
    if checkpoint_path is not None and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        _set_rng_states(state, device)
        history, start_epoch = state["history"], state["epoch"]
        best.load_state_dict(state)
        if regularizer is not None:
            regularizer.load_state_dict(state["regularizer"])

    def batches() -> Iterator[list[torch.Tensor]]:  # what update_bn sees: the training inputs, unaugmented
        return ([to_float(X[i : i + config.batch_size])] for i in range(0, n, config.batch_size))

    n = len(X)
    model.train()
    bar = tqdm(range(start_epoch, config.epochs), desc=desc or config.describe(), disable=not progress,
               leave=False, initial=start_epoch, total=config.epochs)
    with precision_context(precision, device):
        for epoch in bar:
            order = _to_device(torch.randperm(n, generator=generator), device)
            total_loss = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            for start in range(0, n, config.batch_size):
                idx = order[start : start + config.batch_size]
                xb, yb = to_float(X[idx]), y[idx]
                if config.augment:
                    xb = augment_batch(xb, generator)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                first_logits: list[torch.Tensor] = []
                if regularizer is not None:
                    regularizer.before_step(model, xb, yb)

                def closure() -> torch.Tensor:
                    optimizer.zero_grad(set_to_none=True)
                    with _autocast(device, precision):
                        logits = forward(xb)
                        loss = loss_fn(logits.float(), yb)
                        if regularizer is not None:
                            loss = loss + regularizer.loss(logits.float(), yb)
                    if not first_logits:
                        first_logits.append(logits.detach())
                    loss.backward()
                    return loss

                loss = optimizer.step(closure).detach()
                total_loss += loss * len(idx)
                correct += (first_logits[0].argmax(1) == y_label[idx]).sum()
            mean_loss = total_loss.item() / n  # one host sync per epoch
            if not math.isfinite(mean_loss):
                raise FloatingPointError(
                    f"training diverged (mean loss {mean_loss}) in epoch {epoch + 1} with "
                    f"{config.describe()}, lr={config.lr}; {divergence_advice(config)}"
                )
            lr_now = optimizer.param_groups[0]["lr"]
            schedule.step(epoch, model)
            record = {"epoch": epoch + 1, "train_loss": mean_loss, "train_acc": correct.item() / n, "lr": lr_now}
            if regularizer is not None:
                record.update(regularizer.epoch_record())
            averaged = schedule.averaged_so_far(epoch)
            if averaged is not None and best.X is not None:
                # SWA's model is the average: validate it (BN statistics recomputed for its weights)
                update_bn(batches(), averaged, device=device)
                best.update(averaged, epoch + 1, record)
            else:
                best.update(model, epoch + 1, record, eligible=schedule.swa_model is None)
            history.append(record)
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k in ("train_loss", "train_acc", "val_acc")})
            if checkpoint_path is not None:
                atomic_write(checkpoint_path, lambda tmp: torch.save({
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(), "generator": generator.get_state(),
                    **_rng_states(device), "history": history, "epoch": epoch + 1,
                    **best.state_dict(),
                    "regularizer": regularizer.state_dict() if regularizer is not None else None,
                }, tmp))
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1)

        averaged = schedule.averaged()
        final = model if averaged is None else averaged
        if averaged is not None:
            # BatchNorm statistics must be recomputed for the averaged weights.
            update_bn(batches(), final, device=device)
    return TrainResult(final, history, best.state, best.epoch)
