"""Tensors, devices and seeds: the small helpers every trainer, attack and measurement shares.

Arrays come in as NumPy or torch, images as uint8; models see float32. Runs are seeded once
(:func:`seed_everything`) and placed on a device chosen once (:func:`select_device`).
"""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch
from torch import nn

from sharpmem_lib.validation import check_choice

__all__ = ["DEVICES", "as_tensor", "cpu_state", "one_cpu_thread", "seed_everything", "select_device", "to_float"]

DEVICES = ("auto", "cpu", "cuda", "mps")


def as_tensor(a, dtype: torch.dtype | None, device: torch.device) -> torch.Tensor:
    """``a`` (a NumPy array, a sequence or a tensor) as a tensor on ``device``, converted to
    ``dtype`` unless it is None (then the dtype is kept: uint8 images stay compact)."""
    t = a if torch.is_tensor(a) else torch.as_tensor(np.asarray(a))
    return t.to(device=device, dtype=dtype) if dtype is not None else t.to(device)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> floats in [0, 1]; anything else -> float32."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s state dict on the CPU, detached: a snapshot later steps cannot change."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        torch.manual_seed(seed)
    else:
        # the same for a CPU-only machine, without torch queueing a seed for devices that
        # are absent (it records a stack trace each time: ~0.3 ms, paid per ensemble model)
        torch.default_generator.manual_seed(seed)


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


@contextlib.contextmanager
def one_cpu_thread(device: torch.device | str = "cpu") -> Iterator[None]:
    """Torch on one CPU thread inside, the previous count restored after (nothing changes on a
    GPU). For work made of many small operations (MemGuard's steps, a small MLP's
    Hessian-vector products), which a second thread only slows: on the 2-core machine under
    load, 33 s against 5-7 s per MemGuard fit, 4-11 s against 1.1-1.8 s per sharpness
    measurement. One thread also makes the floats independent of the machine's core count."""
    if torch.device(device).type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
