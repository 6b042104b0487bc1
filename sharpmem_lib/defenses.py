"""Membership-inference defenses that SharpReg is compared with (paper §5.2, Fig. 5c).

==========  ==========================================================  ==================
defense     mechanism                                                   where it acts
==========  ==========================================================  ==================
AdvReg      min-max training against an inference model h(f(x), y)      training
            (Nasr, Shokri & Houmansadr 2018, Algorithm 1)
MemGuard    noise on the confidence vector that drives a defender's     inference
            attack classifier to 0.5 and keeps the label (Jia et al.
            2019, phases I and II)
SELENA      Split-AI: K models, each point left out of L of them, a     training
            point answered only by models that never saw it; then
            self-distillation into one model (Tang et al. 2022)
DP-SGD      per-example clipping and Gaussian noise, through Opacus     training
            (Abadi et al. 2016)
==========  ==========================================================  ==================

Early stopping (the best-validation weights every run keeps) and label smoothing
(``TrainConfig.label_smoothing``) are the cheap baselines. The training-time defenses plug
into the cached experiment runner as ``ExperimentConfig(defense=..., defense_kwargs=...)``;
MemGuard post-processes a trained model's outputs (``evaluate_privacy(..., defense=)``).
The defender's own held-out data is the partition's validation set (never used by the
attacker, :mod:`sharpmem_lib.splits`): AdvReg's reference set and MemGuard's non-members.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import shutil
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sharpmem_lib import store
from sharpmem_lib._io import atomic_write, save_npz
from sharpmem_lib.models import MLP
from sharpmem_lib.tensors import as_tensor, cpu_state, one_cpu_thread, seed_everything, to_float
from sharpmem_lib.train import (BestValidation, Regularizer, TrainConfig, TrainResult, _rng_states, _set_rng_states,
                                _to_device, load_checkpoint, precision_context, predict_logits, train_classifier)
from sharpmem_lib.validation import check_choice, check_nonnegative, check_positive

__all__ = ["DEFENSES", "DEFENSE_KWARGS", "check_defense", "AdvRegRegularizer", "MemGuard", "split_ai_assignment",
           "split_ai_soft_labels", "train_advreg", "train_dp_sgd", "train_selena", "train_with_defense"]

DEFENSES = {
    "none": "ordinary training",
    "advreg": "adversarial regularization (Nasr et al. 2018)",
    "selena": "Split-AI + self-distillation (Tang et al. 2022)",
    "dpsgd": "DP-SGD through Opacus (Abadi et al. 2016)",
}
DEFENSE_KWARGS = {
    "none": (),
    "advreg": ("alpha", "k_inference", "hidden"),
    "selena": ("n_models", "n_excluded"),
    "dpsgd": ("noise_multiplier", "max_grad_norm", "delta"),
}


def check_defense(defense: str, kwargs: dict) -> None:
    """Raise ``ValueError`` naming the valid choices for an unknown defense or keyword."""
    check_choice("defense", defense, DEFENSES)
    unknown = sorted(set(kwargs) - set(DEFENSE_KWARGS[defense]))
    if unknown:
        raise ValueError(f"defense_kwargs {unknown} are not valid for defense={defense!r}; "
                         f"valid keywords: {list(DEFENSE_KWARGS[defense])}")
    # values too, so that a bad one fails before any training
    for name in ("alpha",):
        if name in kwargs:
            check_nonnegative(name, kwargs[name])
    for name in ("k_inference", "n_models", "n_excluded"):
        if name in kwargs:
            check_positive(name, kwargs[name], integer=True)
    for name in ("noise_multiplier", "max_grad_norm"):
        if name in kwargs:
            check_positive(name, kwargs[name])
    if "delta" in kwargs and not 0 < kwargs["delta"] < 1:
        raise ValueError(f"delta={kwargs['delta']!r} is not valid; it must be in (0, 1)")
    if defense == "selena":
        defaults = inspect.signature(train_selena).parameters
        k = kwargs.get("n_models", defaults["n_models"].default)
        n_excluded = kwargs.get("n_excluded", defaults["n_excluded"].default)
        if n_excluded >= k:
            raise ValueError(f"n_excluded={n_excluded} is not valid; it must be below n_models={k}")


# ---------------------------------------------------------------------------- AdvReg


def _inference_input(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """What AdvReg's inference model sees: the softmax vector and the one-hot label."""
    probs = logits.float().softmax(1)
    return torch.cat([probs, nn.functional.one_hot(labels, probs.shape[1]).to(probs)], 1)


class AdvRegRegularizer(Regularizer):
    """Nasr et al.'s min-max game as a :class:`~sharpmem_lib.train.Regularizer`.

    Before each classifier step, ``k_inference`` steps of the inference model ``h`` on the
    batch's members (label 1) against as many reference points (label 0), maximising its
    gain; then the classifier minimises ``CE + alpha * log h(f(x), y)`` on the members (the
    log of the attack's confidence that they are members). ``alpha = 0`` is plain training.
    """

    def __init__(self, num_classes: int, X_ref, y_ref, alpha: float = 1.0, k_inference: int = 1,
                 hidden: tuple[int, ...] = (64,), lr: float = 1e-3, seed: int = 0, device="cpu") -> None:
        check_nonnegative("alpha", alpha)
        check_positive("k_inference", k_inference, integer=True)
        self.alpha, self.k = alpha, k_inference
        self.device = torch.device(device)
        self.X_ref = as_tensor(X_ref, None, self.device)
        self.y_ref = as_tensor(y_ref, torch.int64, self.device)
        with torch.random.fork_rng():  # h's initialisation must not shift the classifier's random stream
            torch.manual_seed(seed)
            self.h = MLP(2 * num_classes, 1, hidden).to(self.device)
        self.opt = torch.optim.Adam(self.h.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = {"inference": 0, "classifier": 0}
        self._gain: list[torch.Tensor] = []  # on the device: read once per epoch, not per step

    def before_step(self, model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """``k_inference`` steps of h. The classifier's outputs are taken in eval mode, as an
        attacker queries it: BatchNorm normalises with its running statistics, which do not
        absorb the reference (validation) data, the set that also picks the best epoch."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                member_out = model(xb)
            for _ in range(self.k):
                idx = _to_device(torch.randint(0, len(self.X_ref), (len(xb),), generator=self.generator), self.device)
                with torch.no_grad():
                    ref_out = model(to_float(self.X_ref[idx]))
                scores = self.h(torch.cat([_inference_input(member_out, yb),
                                           _inference_input(ref_out, self.y_ref[idx])]))
                target = torch.cat([torch.ones(len(xb)), torch.zeros(len(idx))]).to(scores)
                loss = nn.functional.binary_cross_entropy_with_logits(scores.squeeze(1), target)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                self.steps["inference"] += 1
                self._gain.append(-loss.detach())
        finally:
            model.train(was_training)
        self.steps["classifier"] += 1

    def loss(self, logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        if self.alpha == 0:
            return logits.new_zeros(())
        # log h(f(x), y) for members; logsigmoid keeps the gradient bounded as h -> 0
        return self.alpha * nn.functional.logsigmoid(self.h(_inference_input(logits, yb))).mean()

    def epoch_record(self) -> dict:
        gain = float(torch.stack(self._gain).mean()) if self._gain else math.nan  # one host sync per epoch
        self._gain = []
        return {"inference_gain": gain, "inference_steps": self.steps["inference"],
                "classifier_steps": self.steps["classifier"]}

    def state_dict(self) -> dict:
        return {"h": self.h.state_dict(), "opt": self.opt.state_dict(), "generator": self.generator.get_state(),
                "steps": dict(self.steps)}

    def load_state_dict(self, state: dict) -> None:
        self.h.load_state_dict(state["h"])
        self.opt.load_state_dict(state["opt"])
        self.generator.set_state(state["generator"])
        self.steps = dict(state["steps"])


def train_advreg(model: nn.Module, X, y, config: TrainConfig, X_ref, y_ref, *, alpha: float = 1.0,
                 k_inference: int = 1, hidden: tuple[int, ...] = (64,), **train_kwargs) -> TrainResult:
    """Train ``model`` with adversarial regularization against members ``(X, y)`` and the
    defender's reference set ``(X_ref, y_ref)``; other keywords go to ``train_classifier``."""
    device = next(model.parameters()).device
    num_classes = int(predict_logits(model, X[:1]).shape[1])
    reg = AdvRegRegularizer(num_classes, X_ref, y_ref, alpha=alpha, k_inference=k_inference, hidden=tuple(hidden),
                            seed=config.seed, device=device)
    return train_classifier(model, X, y, config, regularizer=reg, **train_kwargs)


# ---------------------------------------------------------------------------- SELENA


def split_ai_assignment(n: int, n_models: int, n_excluded: int, seed: int = 0) -> np.ndarray:
    """(n_models, n) bool: ``trained[k, i]`` says whether sub-model k trains on point i.

    Each point is left out of exactly ``n_excluded`` (L) of the ``n_models`` (K) sub-models,
    chosen uniformly at random per point, as SELENA's Split-AI does.
    """
    check_positive("n_models", n_models, integer=True)
    check_positive("n_excluded", n_excluded, integer=True)
    if n_excluded >= n_models:
        raise ValueError(f"n_excluded={n_excluded} is not valid; it must be below n_models={n_models}")
    rng = np.random.default_rng(seed)
    excluded = np.argsort(rng.random((n, n_models)), axis=1)[:, :n_excluded]  # L random models per point
    trained = np.ones((n_models, n), dtype=bool)
    trained[excluded.T, np.arange(n)[None, :]] = False
    return trained


def split_ai_soft_labels(probs: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """Split-AI's answer on each training point: the mean probability vector of the
    sub-models that did *not* train on it. ``probs``: (K, n, classes); ``trained``: (K, n)."""
    probs, trained = np.asarray(probs), np.asarray(trained, dtype=bool)
    if probs.shape[:2] != trained.shape:
        raise ValueError(f"probs has shape {probs.shape} but trained has {trained.shape}")
    if trained.all(axis=0).any():
        raise ValueError("some point was seen by every sub-model; Split-AI has no model to answer it")
    weights = (~trained).astype(probs.dtype)[:, :, None]
    # where() rather than multiplication, so that a seen model's output can never leak in
    return np.where(weights > 0, probs, 0.0).sum(0) / weights.sum(0)


def train_selena(build: Callable[[], nn.Module], X, y, config: TrainConfig, *, n_models: int = 25,
                 n_excluded: int = 10, X_val=None, y_val=None, progress: bool = True, device="cpu",
                 checkpoint_path: str | Path | None = None, on_epoch_end: Callable[[int], None] | None = None,
                 desc: str = "selena") -> TrainResult:
    """SELENA: ``n_models`` sub-models on Split-AI's subsets (each trained with ``config``,
    seeds ``config.seed * 1000 + k``), then a fresh ``build()`` model (seed ``config.seed``)
    distilled on Split-AI's soft labels of the training set. Returns the distilled model's
    run; its history notes the teacher's accuracy on the training set.

    With ``checkpoint_path`` nothing finished is lost on interruption: each sub-model's
    outputs are an entry of the result store (:mod:`sharpmem_lib.store`) rooted at
    ``<checkpoint_path>.split-ai/``, keyed by its training config, its Split-AI rows, a
    fingerprint of the data and the precision; the sub-model in training checkpoints every
    epoch in its entry's ``.partial`` folder; the distillation checkpoints to
    ``checkpoint_path`` itself. A rerun resumes from there, and the sub-models' folder is
    removed once the distillation is done. ``on_epoch_end`` is called after each epoch of the
    distillation."""
    X_t = as_tensor(X, None, torch.device("cpu"))
    y_np = np.asarray(y)
    trained = split_ai_assignment(len(y_np), n_models, n_excluded, seed=config.seed)
    sub_models = None if checkpoint_path is None else Path(f"{checkpoint_path}.split-ai")
    data_id = None if sub_models is None else _fingerprint(X_t.numpy(), y_np)
    probs = []
    for k in tqdm(range(n_models), desc=f"{desc}: Split-AI sub-models", disable=not progress, leave=False):
        sub_config = dataclasses.replace(config, seed=config.seed * 1000 + k)
        rows = np.flatnonzero(trained[k])

        def train_sub_model(checkpoint: Path | None) -> np.ndarray:
            seed_everything(sub_config.seed)
            sub = build().to(device)
            result = train_classifier(sub, X_t[rows], y_np[rows], sub_config, progress=False,
                                      checkpoint_path=checkpoint)
            return predict_logits(result.model, X_t).softmax(1).numpy()

        if sub_models is None:
            probs.append(train_sub_model(None))
        else:
            probs.append(_stored_sub_model(sub_models, k, sub_config, trained[k], data_id, device, train_sub_model))
    soft = split_ai_soft_labels(np.stack(probs), trained).astype(np.float32)
    seed_everything(config.seed)
    student = build().to(device)
    result = train_classifier(student, X_t, soft, config, X_val=X_val, y_val=y_val, progress=progress,
                              checkpoint_path=checkpoint_path, on_epoch_end=on_epoch_end, desc=f"{desc}: distillation")
    teacher_acc = float((soft.argmax(1) == y_np).mean())
    for record in result.history:
        record["split_ai_train_acc"] = teacher_acc
    if sub_models is not None:
        shutil.rmtree(sub_models, ignore_errors=True)  # the distillation's own checkpoint now holds the run
    return result


def _fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 of arrays' dtypes, shapes and bytes: which data a stored sub-model saw."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def _stored_sub_model(root: Path, k: int, sub_config: TrainConfig, rows: np.ndarray, data_id: str, device,
                      train: Callable[[Path | None], np.ndarray]) -> np.ndarray:
    """Sub-model ``k``'s probabilities on every training point, from the store under ``root``
    or trained (checkpointing in the entry's ``.partial`` folder) and stored."""
    from sharpmem_lib.train import training_precision

    def compute(staging: Path, work: Path) -> dict:
        probs = train(work / "checkpoint.pt")
        save_npz(staging / "probs.npz", {"probs": probs})
        return {"shape": list(probs.shape)}

    def load(entry: store.Entry) -> np.ndarray:
        with np.load(entry.file("probs.npz"), allow_pickle=False) as f:
            probs = f["probs"]
        if list(probs.shape) != entry.meta["shape"] or probs.shape[0] != len(rows) or not np.isfinite(probs).all():
            raise ValueError(f"probs.npz holds shape {probs.shape}, expected {entry.meta['shape']}")
        return probs

    config = {"k": k, "train": dataclasses.asdict(sub_config), "data": data_id,
              "rows": hashlib.sha256(np.packbits(rows).tobytes()).hexdigest()}
    return store.get_or_compute("selena-sub-model", json.loads(json.dumps(config)), compute, load, root=root,
                                precision=training_precision(sub_config, device))


# ---------------------------------------------------------------------------- DP-SGD


def train_dp_sgd(model: nn.Module, X, y, config: TrainConfig, *, noise_multiplier: float = 1.0,
                 max_grad_norm: float = 1.0, delta: float = 1e-5, X_val=None, y_val=None, progress: bool = True,
                 checkpoint_path: str | Path | None = None, on_epoch_end: Callable[[int], None] | None = None,
                 desc: str = "dp-sgd") -> TrainResult:
    """DP-SGD with Opacus's ``PrivacyEngine``: Poisson-sampled batches of expected size
    ``config.batch_size``, per-example gradients clipped to ``max_grad_norm``, Gaussian noise
    of ``noise_multiplier * max_grad_norm``, plain SGD with ``config.lr``/``momentum``. Each
    epoch's record holds the privacy spent so far, ``epsilon`` at ``delta`` (RDP accountant).
    BatchNorm layers are replaced by Opacus's validator (GroupNorm) before training.

    With ``checkpoint_path`` the whole state (weights, momentum, the accountant's history, the
    sampler's and the noise's random states) is saved after each epoch and a rerun resumes
    from it exactly; ``on_epoch_end(epoch)`` is called after each checkpoint."""
    try:
        from opacus import PrivacyEngine
        from opacus.validators import ModuleValidator
    except ImportError as err:  # pragma: no cover - opacus is pinned in requirements.txt
        raise ImportError("DP-SGD needs opacus (pip install opacus); see requirements.txt") from err
    if config.algorithm != "sgd" or config.swa:
        raise ValueError(f"train_dp_sgd trains with plain SGD; got {config.describe()}")
    check_positive("noise_multiplier", noise_multiplier)
    check_positive("max_grad_norm", max_grad_norm)
    device = next(model.parameters()).device
    if ModuleValidator.validate(model, strict=False):
        model = ModuleValidator.fix(model).to(device)
    X_f = to_float(as_tensor(X, None, torch.device("cpu")))
    y_t = as_tensor(y, torch.int64, torch.device("cpu"))
    generator = torch.Generator().manual_seed(config.seed)
    # Opacus draws the noise with device= the parameters' device, so its generator lives there
    noise = torch.Generator(device=device).manual_seed(config.seed + 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X_f, y_t), batch_size=config.batch_size,
                                         shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    with warnings.catch_warnings():  # only for this run, not for the whole process
        # Opacus warns that its non-cryptographic RNG is for experiments (it is: seeded, reproducible)
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        engine = PrivacyEngine(accountant="rdp")
        private, optimizer, loader = engine.make_private(module=model, optimizer=optimizer, data_loader=loader,
                                                         noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
                                                         noise_generator=noise)
        torch.manual_seed(config.seed)  # for anything that draws from the global generator
        best = BestValidation(X_val, y_val, device)
        history, start = [], 0
        checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        if checkpoint_path is not None and checkpoint_path.exists():
            state = load_checkpoint(checkpoint_path)  # on the CPU: generators take CPU states only
            model.load_state_dict(state["model"])  # the module inside Opacus's wrapper
            optimizer.original_optimizer.load_state_dict(state["optimizer"])
            engine.accountant.load_state_dict(state["accountant"])
            _set_rng_states({"torch_rng": state["global_rng"], "cuda_rng": state.get("cuda_rng")}, device)
            generator.set_state(state["sampler_rng"])  # Opacus's Poisson sampler takes the loader's generator
            noise.set_state(state["noise_rng"])
            history, start = state["history"], state["epoch"]
            best.load_state_dict(state)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        for epoch in tqdm(range(start, config.epochs), desc=desc, disable=not progress, leave=False,
                          initial=start, total=config.epochs):
            private.train()
            total = torch.zeros((), device=device, dtype=torch.float64)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            seen = 0
            for xb, yb in loader:
                if len(xb) == 0:  # Poisson sampling can draw an empty batch
                    continue
                xb, yb = _to_device(xb, device), _to_device(yb, device)
                optimizer.zero_grad(set_to_none=True)
                with precision_context("fp32", device):  # per-sample gradients in IEEE fp32 (TF32 off on CUDA)
                    logits = private(xb)
                    loss = loss_fn(logits, yb)
                    loss.backward()
                optimizer.step()
                total += loss.detach().double() * len(xb)  # on the device: one host sync per epoch, not per step
                correct += (logits.argmax(1) == yb).sum()
                seen += len(xb)
            mean_loss = total.item() / max(seen, 1)
            correct = int(correct.item())
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"DP-SGD diverged (mean loss {mean_loss}) in epoch {epoch + 1}, "
                                         f"lr={config.lr}")
            record = {"epoch": epoch + 1, "train_loss": mean_loss, "train_acc": correct / max(seen, 1), "lr": config.lr,
                      "epsilon": float(engine.get_epsilon(delta)), "delta": delta}
            best.update(model, epoch + 1, record)
            history.append(record)
            if checkpoint_path is not None:
                state = {"model": cpu_state(model), "optimizer": optimizer.original_optimizer.state_dict(),
                         "accountant": engine.accountant.state_dict(), "global_rng": torch.get_rng_state(),
                         "cuda_rng": _rng_states(device)["cuda_rng"],
                         "sampler_rng": generator.get_state(),
                         "noise_rng": noise.get_state(), "history": history, **best.state_dict(),
                         "epoch": epoch + 1}
                atomic_write(checkpoint_path, lambda tmp: torch.save(state, tmp))
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1)
    model = private.to_standard_module()  # the same parameters, without Opacus's hooks
    return TrainResult(model, history, best.state, best.epoch)


# ---------------------------------------------------------------------------- MemGuard


def _sorted_probs(logits: torch.Tensor) -> torch.Tensor:
    """MemGuard's defense classifier reads the confidence vector sorted in decreasing order."""
    return logits.softmax(1).sort(1, descending=True).values


class MemGuard:
    """MemGuard (Jia et al. 2019), scikit-learn style: ``fit`` the defender's own attack
    classifier on the target's outputs for its members and its reference non-members, then
    ``transform`` output logits.

    Phase I finds, per query, logit noise ``r`` that brings the defense classifier's score on
    ``softmax(z + r)`` to 0.5 with a small L1 change of the confidence vector, keeping the
    predicted label (rows whose label would change get no noise). Phase II adds the noise
    with probability ``min(1, budget / distortion)``, so the expected L1 distortion of a
    query is at most ``budget`` (``budget=None``: always). Labels never change, so label-only
    attacks are unaffected by design.
    """

    def __init__(self, hidden: tuple[int, ...] = (64,), epochs: int = 300, steps: int = 300, lr: float = 0.1,
                 distortion_weight: float = 0.1, budget: float | None = None, seed: int = 0) -> None:
        check_positive("epochs", epochs, integer=True)
        check_positive("steps", steps, integer=True)
        if budget is not None:
            check_nonnegative("budget", budget)
        self.hidden, self.epochs, self.steps, self.lr = tuple(hidden), epochs, steps, lr
        self.distortion_weight, self.budget, self.seed = distortion_weight, budget, seed
        self.classifier: nn.Module | None = None

    def cache_config(self) -> dict:
        """Every setting that determines the defended outputs (JSON data): the key under which
        :func:`~sharpmem_lib.privacy.evaluate_privacy` stores a defended evaluation."""
        return {"defense": "memguard", "hidden": list(self.hidden), "epochs": self.epochs, "steps": self.steps,
                "lr": self.lr, "distortion_weight": self.distortion_weight, "budget": self.budget, "seed": self.seed}

    def fit(self, member_logits: np.ndarray, nonmember_logits: np.ndarray) -> "MemGuard":
        """Train the defense classifier (members 1, non-members 0, balanced by weighting)."""
        with one_cpu_thread():
            return self._fit(member_logits, nonmember_logits)

    def _fit(self, member_logits: np.ndarray, nonmember_logits: np.ndarray) -> "MemGuard":
        z = torch.as_tensor(np.concatenate([member_logits, nonmember_logits]), dtype=torch.float32)
        t = torch.cat([torch.ones(len(member_logits)), torch.zeros(len(nonmember_logits))])
        weight = torch.where(t == 1, 0.5 / len(member_logits), 0.5 / len(nonmember_logits)) * len(t)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.classifier = MLP(z.shape[1], 1, self.hidden)
        opt = torch.optim.Adam(self.classifier.parameters(), lr=1e-3)
        x = _sorted_probs(z)
        for _ in range(self.epochs):  # full batch: the defender's data are small
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.binary_cross_entropy_with_logits(self.classifier(x).squeeze(1), t, weight=weight)
            loss.backward()
            opt.step()
        self.classifier.requires_grad_(False)
        return self

    def score(self, logits: np.ndarray) -> np.ndarray:
        """The defense classifier's membership probability for each row of ``logits``."""
        if self.classifier is None:
            raise RuntimeError("MemGuard is not fitted; call fit(member_logits, nonmember_logits) first")
        with torch.no_grad():
            probs = _sorted_probs(torch.as_tensor(logits, dtype=torch.float32))
            return torch.sigmoid(self.classifier(probs)).squeeze(1).numpy()

    def transform(self, logits: np.ndarray) -> np.ndarray:
        """Defended logits (log-probabilities of the noised confidence vectors)."""
        if self.classifier is None:
            raise RuntimeError("MemGuard is not fitted; call fit(member_logits, nonmember_logits) first")
        with one_cpu_thread():
            return self._transform(logits)

    def _transform(self, logits: np.ndarray) -> np.ndarray:
        z = torch.as_tensor(logits, dtype=torch.float32)
        label = z.argmax(1)
        p0 = z.softmax(1)
        r = torch.zeros_like(z, requires_grad=True)
        opt = torch.optim.Adam([r], lr=self.lr)
        for _ in range(self.steps):  # phase I, all queries at once
            zr = z + r
            s = self.classifier(_sorted_probs(zr)).squeeze(1)  # logit of the defense score; 0 <=> 0.5
            others = zr.masked_fill(nn.functional.one_hot(label, z.shape[1]).bool(), -torch.inf).max(1).values
            keep = torch.relu(others - zr.gather(1, label[:, None]).squeeze(1) + 1e-2)
            distortion = (zr.softmax(1) - p0).abs().sum(1)
            loss = (s.abs() + 10.0 * keep + self.distortion_weight * distortion).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            noised = z + r
            changed = noised.argmax(1) != label
            noised[changed] = z[changed]  # never change a label
            if self.budget is not None:  # phase II
                d = (noised.softmax(1) - p0).abs().sum(1)
                p = torch.where(d > 0, torch.clamp(self.budget / d.clamp_min(1e-12), max=1.0), torch.ones_like(d))
                g = torch.Generator().manual_seed(self.seed)
                apply = torch.rand(len(z), generator=g) < p
                noised[~apply] = z[~apply]
            return noised.log_softmax(1).numpy()


# ---------------------------------------------------------------------------- dispatch


def train_with_defense(defense: str, model: nn.Module, build: Callable[[], nn.Module], X, y, config: TrainConfig,
                       *, X_val, y_val, checkpoint_path=None, progress: bool = True, desc: str | None = None,
                       **kwargs) -> TrainResult:
    """Train ``model`` (or, for SELENA, models from ``build``) with a training-time defense.
    The validation set doubles as the defender's reference data (AdvReg)."""
    if defense == "none":
        return train_classifier(model, X, y, config, X_val=X_val, y_val=y_val, checkpoint_path=checkpoint_path,
                                progress=progress, desc=desc, **kwargs)
    if defense == "advreg":
        return train_advreg(model, X, y, config, X_val, y_val, X_val=X_val, y_val=y_val,
                            checkpoint_path=checkpoint_path, progress=progress, desc=desc, **kwargs)
    if defense == "selena":
        return train_selena(build, X, y, config, X_val=X_val, y_val=y_val, progress=progress,
                            device=next(model.parameters()).device, checkpoint_path=checkpoint_path,
                            desc=desc or "selena", **kwargs)
    if defense == "dpsgd":
        return train_dp_sgd(model, X, y, config, X_val=X_val, y_val=y_val, progress=progress, desc=desc or "dp-sgd",
                            checkpoint_path=checkpoint_path, **kwargs)
    raise ValueError(f"defense={defense!r} is not valid; choose one of {sorted(DEFENSES)}")
