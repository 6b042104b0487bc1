"""Loss and gradient of K stacked ReLU MLPs, each on its own mini-batch, in one fused CPU pass.

The Feldman–Zhang estimator of paper §3.2 trains thousands of small MLPs. On a CPU, the
generic ensemble path (``torch.func.vmap`` + autograd) spends most of its time outside the
matrix products: every elementwise step (bias, ReLU, softmax, their backward) streams all K
models' activations through memory, and the batched products of small matrices run well
below the machine's matmul rate. Here the work is reorganised per model instead: one thread
takes model k, gathers its batch, runs the forward pass, the softmax cross-entropy and the
backward pass with its activations in cache, calling BLAS for each product, and writes model
k's gradient. Threads split the models (numba ``prange``), BLAS runs single-threaded inside.

Only the gradient is computed here; the update stays with the one optimizer of the library
(:class:`~sharpmem_lib.optim.SharpnessAware` with ``model_axis=0``), which calls this through
its closure, once for SGD and twice (at ``w`` and ``w + e``) for SAM and SharpReg. The tests
check every gradient against autograd.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import numba
import torch
from numba import njit, prange
from numba.typed import List
from threadpoolctl import threadpool_limits

__all__ = ["StackedMLPGradients", "single_threaded_blas"]


@njit(cache=True, error_model="numpy")
def _one_model(k, X, y, rows, weights, biases, grad_w, grad_b, smoothing, acts, deltas):
    """Model k: forward, softmax cross-entropy, backward; returns (mean loss, correct).
    ``acts`` and ``deltas`` are the calling thread's workspace, reused from model to model.
    The elementwise loops index 2-D arrays directly and select rather than branch, so that
    LLVM vectorises them."""
    B = rows.shape[1]
    L = len(weights)
    C = biases[L - 1].shape[1]
    # forward: acts[l] is the input of layer l; the last entry holds the logits
    x = acts[0]
    for b in range(B):
        r = rows[k, b]
        for j in range(x.shape[1]):
            x[b, j] = X[r, j]
    for layer in range(L):
        z = acts[layer + 1]
        np.dot(acts[layer], weights[layer][k].T, z)
        bias = biases[layer][k]
        for b in range(B):
            if layer == L - 1:
                for j in range(z.shape[1]):
                    z[b, j] += bias[j]
            else:
                for j in range(z.shape[1]):
                    v = z[b, j] + bias[j]
                    z[b, j] = 0 if v < 0 else v  # NaN stays NaN, as in torch.relu
    logits = acts[L]
    # softmax cross-entropy with label smoothing, mean over the batch (torch's
    # F.cross_entropy); delta = d(loss)/d(logits) = (softmax - target) / B
    delta = deltas[L - 1]
    total = 0.0
    hits = 0
    for b in range(B):
        t = y[rows[k, b]]
        m = logits[b, 0]
        arg = 0
        for c in range(1, C):
            if logits[b, c] > m:
                m = logits[b, c]
                arg = c
        if arg == t:
            hits += 1
        s = 0.0
        mean = 0.0
        for c in range(C):
            e = np.exp(logits[b, c] - m)
            delta[b, c] = e
            s += e
            mean += logits[b, c]
        lse = m + np.log(s)
        total += (1.0 - smoothing) * (lse - logits[b, t]) + smoothing * (lse - mean / C)
        scale = 1.0 / (s * B)
        uniform = smoothing / (C * B)
        for c in range(C):
            delta[b, c] = delta[b, c] * scale - uniform
        delta[b, t] -= (1.0 - smoothing) / B
    # backward, last layer first
    for layer in range(L - 1, -1, -1):
        prev, delta = acts[layer], deltas[layer]
        np.dot(delta.T, prev, grad_w[layer][k])
        gb = grad_b[layer][k]
        gb[:] = 0
        for b in range(B):
            for j in range(delta.shape[1]):
                gb[j] += delta[b, j]
        if layer > 0:
            below = deltas[layer - 1]
            np.dot(delta, weights[layer][k], below)
            for b in range(B):
                for j in range(below.shape[1]):  # ReLU'(z) = 0 where the activation is 0
                    below[b, j] = below[b, j] if prev[b, j] > 0 else 0
    return total / B, hits


@njit(parallel=True, cache=True)
def _all_models(X, y, rows, weights, biases, grad_w, grad_b, smoothing, losses, correct, threads):
    K, B = rows.shape
    share = (K + threads - 1) // threads
    for thread in prange(threads):  # each thread takes a contiguous share of the models
        # its workspace, allocated once: activations (input, then each layer's output) and
        # the loss gradient at each layer's output
        acts = [np.empty((B, X.shape[1]), X.dtype)]
        deltas = [np.empty((B, weights[0].shape[1]), X.dtype)]
        for layer in range(len(weights)):
            acts.append(np.empty((B, weights[layer].shape[1]), X.dtype))
            if layer > 0:
                deltas.append(np.empty((B, weights[layer].shape[1]), X.dtype))
        for k in range(thread * share, min(K, (thread + 1) * share)):
            losses[k], correct[k] = _one_model(k, X, y, rows, weights, biases, grad_w, grad_b, smoothing,
                                               acts, deltas)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS runs inside the kernel's threads, so it must not start threads of its own (with
    them, the kernel ran 3x slower on 2 cores)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class StackedMLPGradients:
    """Per-model loss gradients of K stacked ReLU MLPs (``nn.Linear`` layout), each model on
    its own batch of rows of one dataset.

    Parameters
    ----------
    X : (n, ...) CPU tensor, the dataset; flattened to (n, features) and cast to the
        parameters' dtype once, here (uint8 images divided by 255 first, as
        :func:`~sharpmem_lib.tensors.to_float` does for the other trainers).
    y : (n,) integer labels.
    weights, biases : per layer, the stacked (K, out, in) and (K, out) parameters, contiguous
        CPU float32 or float64 tensors, ReLU between layers. They are read in place at each
        call, so updates made by an optimizer are seen.
    label_smoothing : as in ``torch.nn.functional.cross_entropy``.

    Calling it with ``rows`` ((K, B) int64: model k's batch is ``X[rows[k]]``) fills
    ``grad_weights`` and ``grad_biases`` with the gradient of each model's mean cross-entropy
    on its batch (the sum over models has exactly these per-model gradients) and returns
    (mean loss per model, correct predictions per model). Call it inside
    :func:`single_threaded_blas` for speed.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor],
                 label_smoothing: float = 0.0) -> None:
        if len(weights) != len(biases) or not weights:
            raise ValueError(f"got {len(weights)} weights and {len(biases)} biases; one of each per layer")
        dtype = weights[0].dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"parameters have dtype {dtype}; float32 or float64 is supported")
        for t in [*weights, *biases]:
            if t.device.type != "cpu" or t.dtype != dtype or not t.is_contiguous():
                raise ValueError("the stacked parameters must be contiguous CPU tensors of one dtype")
        X = X.detach().cpu()
        if X.dtype == torch.uint8:  # images: x / 255, as tensors.to_float gives every other trainer
            X = X.to(dtype).div_(255.0)  # (in the parameters' dtype: float64 stays exact)
        self.X = X.flatten(1).to(dtype).contiguous()
        widths = [self.X.shape[1]] + [w.shape[1] for w in weights]
        self.n_models = weights[0].shape[0]
        for layer, (w, b) in enumerate(zip(weights, biases)):
            if (w.ndim != 3 or b.ndim != 2 or w.shape[2] != widths[layer] or b.shape[1:] != w.shape[1:2]
                    or w.shape[0] != self.n_models or b.shape[0] != self.n_models):
                raise ValueError(f"layer {layer}: weight {tuple(w.shape)} and bias {tuple(b.shape)} do not chain "
                                 f"(expected ({self.n_models}, out, {widths[layer]}) and ({self.n_models}, out))")
        self.y = y.detach().cpu().to(torch.int64).contiguous()
        classes = biases[-1].shape[1]
        if len(self.y) != len(self.X) or (len(self.y) and not 0 <= int(self.y.min()) <= int(self.y.max()) < classes):
            raise ValueError(f"y must hold {len(self.X)} labels in [0, {classes})")
        self.label_smoothing = float(label_smoothing)
        self.grad_weights = [torch.empty_like(w) for w in weights]
        self.grad_biases = [torch.empty_like(b) for b in biases]
        # numba lists of numpy views: built once, they see every in-place update
        as_list = lambda ts: List([t.detach().numpy() for t in ts])  # noqa: E731
        self._args = (as_list(weights), as_list(biases), as_list(self.grad_weights), as_list(self.grad_biases))
        self._np_dtype = self.X.numpy().dtype

    def __call__(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = rows.detach().cpu().to(torch.int64).contiguous()
        if rows.ndim != 2 or rows.shape[0] != self.n_models or rows.shape[1] == 0:
            raise ValueError(f"rows has shape {tuple(rows.shape)}; expected ({self.n_models}, batch >= 1)")
        low, high = torch.aminmax(rows)
        if not 0 <= int(low) <= int(high) < len(self.X):  # numba does not check
            raise ValueError(f"rows must index the {len(self.X)} rows of X")
        threads = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS, rows.shape[0])  # as torch is told
        if numba.get_num_threads() != threads:
            numba.set_num_threads(threads)
        losses = np.empty(rows.shape[0], dtype=self._np_dtype)
        correct = np.empty(rows.shape[0], dtype=np.int64)
        _all_models(self.X.numpy(), self.y.numpy(), rows.numpy(), *self._args, self.label_smoothing, losses, correct,
                     threads)
        return torch.from_numpy(losses), torch.from_numpy(correct)
