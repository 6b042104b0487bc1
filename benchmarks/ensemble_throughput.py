"""The ensemble trainer on chapter 2's influence workload (digits, or the 784-input
Fashion-MNIST one with ``--dataset fashion_mnist_cpu``), against a per-model loop and against
this machine's own single-precision matmul rate, measured in one run.

Workload: chapter 2's subset models as ``make book`` trains them (the ``02_memorization_buckets``
entry of ``notebooks/params/default.yaml``: number of models, and its ``subset_recipe``'s MLP width,
epochs, batch size and learning rate; 70 % subsets of the partition's members: 898 for digits, 2,500 for
``fashion_mnist_cpu``), ``chunk`` models per ensemble as
:func:`~sharpmem_lib.subsampling.run_subsampling` trains them. Prints models/s and GFLOP/s for the
ensemble trainer with each gradient backend (the fused numba kernel and torch.func.vmap), for
a plain loop of ordinary training runs (``train_classifier``, one model at a time), their
ratios, and the fraction of torch's 1024 x 1024 float32 matmul rate the ensemble reaches; and
the rate of the kernel's matrix products alone on these shapes, which bounds it. Figures, not
a timed test.

FLOPs follow the model-FLOPs convention of MFU figures: 6 per multiply-add per example
(forward 2, backward 4). Neither trainer computes the first layer's input gradient, so the
arithmetic actually done is about 5/6 of that; the ratios between trainers are unaffected.

    python benchmarks/ensemble_throughput.py
    python benchmarks/ensemble_throughput.py --hidden 128 --batch-size 64 --models 512 --epochs 5
    python benchmarks/ensemble_throughput.py --quick   # seconds; what the tests run
    python benchmarks/ensemble_throughput.py --dataset fashion_mnist_cpu --hidden 32 --epochs 5 --batch-size 64
                                                       # the 784-input Fashion-MNIST workload
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from sharpmem_lib.data import load_dataset
from sharpmem_lib.ensemble import subset_masks, train_ensemble
from sharpmem_lib.subsampling import run_subsampling
from sharpmem_lib.models import MLP
from sharpmem_lib.recipes import get_recipe
from sharpmem_lib.splits import make_partition
from sharpmem_lib.tensors import seed_everything
from sharpmem_lib.train import TrainConfig, train_classifier

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script's matmul_rate
from gpu_check import matmul_rate  # noqa: E402

BOOK_DEFAULTS = Path(__file__).resolve().parents[1] / "notebooks" / "params" / "default.yaml"


def products_gflops(models: int, batch: int, widths: list[int], repeats: int = 5) -> float:
    """How fast training could go if the matrix products the numba kernel calls were all it
    did: those products alone (per model, single-threaded BLAS inside numba threads, as in
    the kernel: forward and weight gradient of every layer, input gradient of every layer
    but the first), timed, and expressed in the same model-FLOPs as the trainers (6 per
    multiply-add per example), so it is the ceiling of the ensemble's GFLOP/s on these shapes."""
    from numba import njit, prange
    from threadpoolctl import threadpool_limits

    @njit(parallel=True)
    def products(xs, ws, gs, repeats):
        for k in prange(xs[0].shape[0]):
            for _ in range(repeats):
                for layer in range(len(ws)):
                    np.dot(xs[layer][k], ws[layer][k].T)  # forward
                    np.dot(gs[layer][k].T, xs[layer][k])  # weight gradient
                    if layer > 0:
                        np.dot(gs[layer][k], ws[layer][k])  # input gradient

    from numba.typed import List

    pairs = list(zip(widths, widths[1:]))
    xs = List([np.random.randn(models, batch, a).astype(np.float32) for a, _ in pairs])
    ws = List([np.random.randn(models, b, a).astype(np.float32) for a, b in pairs])
    gs = List([np.random.randn(models, batch, b).astype(np.float32) for _, b in pairs])
    with threadpool_limits(limits=1, user_api="blas"):
        products(xs, ws, gs, 1)  # compile
        start = time.perf_counter()
        products(xs, ws, gs, repeats)
        seconds = time.perf_counter() - start
    return training_flops(batch * models * repeats, widths, 1) / seconds / 1e9


def training_flops(n_examples: int, widths: list[int], passes: int) -> float:
    """6 FLOPs per multiply-add per example and gradient pass (model-FLOPs convention)."""
    macs = sum(a * b for a, b in zip(widths, widths[1:]))
    return 6.0 * macs * n_examples * passes


def main(argv=None) -> dict:
    book = yaml.safe_load(BOOK_DEFAULTS.read_text())["02_memorization_buckets"]
    subset = get_recipe(book["subset_recipe"])  # the subset models' model and training (sharpmem_lib.recipes)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the tests")
    parser.add_argument("--dataset", default=book.get("dataset", "digits"),
                        help="whose partition's members the subset models train on (fashion_mnist_cpu: 784 inputs)")
    parser.add_argument("--models", type=int, default=book["n_models"])
    parser.add_argument("--hidden", type=int, nargs="+", default=list(subset.model_kwargs["hidden"]))
    parser.add_argument("--epochs", type=int, default=subset.train.epochs)
    parser.add_argument("--batch-size", type=int, default=subset.train.batch_size)
    parser.add_argument("--lr", type=float, default=subset.train.lr)
    parser.add_argument("--chunk", type=int, default=inspect.signature(run_subsampling).parameters["chunk"].default,
                        help="models per ensemble (run_subsampling's default)")
    parser.add_argument("--algorithm", default="sgd", help="sgd, sam or sharpreg (two gradient passes)")
    parser.add_argument("--loop-models", type=int, default=16, help="models the per-model loop is timed on")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each figure is the best of them")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.epochs, args.hidden, args.loop_models, args.repeats = 8, 1, [16], 2, 1
    data = load_dataset(args.dataset)
    members = make_partition(args.dataset, data).members
    X, y = data.X[members], data.y[members]
    masks = subset_masks(len(X), args.models, book["fraction"], seed=0)
    config = TrainConfig(algorithm=args.algorithm, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    widths = [int(np.prod(X.shape[1:])), *args.hidden, 10]
    build = lambda: MLP(widths[0], widths[-1], tuple(args.hidden))  # noqa: E731
    passes = 1 if args.algorithm == "sgd" else 2
    flops_per_model = training_flops(int(masks[0].sum()) * args.epochs, widths, passes)

    def ensemble(backend: str) -> None:
        for first in range(0, args.models, args.chunk):  # as run_subsampling trains them
            part = range(first, min(first + args.chunk, args.models))
            train_ensemble(build, X, y, masks[part], config, seeds=list(part), backend=backend, progress=False)

    n_loop = min(args.models, args.loop_models)

    def loop() -> None:
        for k in range(n_loop):
            seed_everything(k)
            subset = np.flatnonzero(masks[k])
            train_classifier(build(), X[subset], y[subset], config, progress=False)

    for backend in ("numba", "vmap"):  # warm-up: numba compiles, torch allocates
        train_ensemble(build, X, y, masks[:2], TrainConfig(epochs=1), backend=backend, progress=False)
    # best of `repeats` rounds for every figure, the rounds interleaved, so that a noisy
    # moment on a shared machine slows one round of everything rather than one figure
    work = {"numba": lambda: ensemble("numba"), "vmap": lambda: ensemble("vmap"), "loop": loop}
    seconds = {name: float("inf") for name in work}
    peak = 0.0
    for _ in range(args.repeats):
        for name, run in work.items():
            start = time.perf_counter()
            run()
            seconds[name] = min(seconds[name], time.perf_counter() - start)
        peak = max(peak, matmul_rate(torch.device("cpu"), torch.float32, 256 if args.quick else 1024, 20) / 1e9)
    seconds["loop"] *= args.models / n_loop
    ceiling = products_gflops(args.models, args.batch_size, widths, 1 if args.quick else 40)
    rate = {k: args.models / s for k, s in seconds.items()}
    gflops = {k: flops_per_model * args.models / s / 1e9 for k, s in seconds.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; workload: {args.models} x MLP "
          f"{'-'.join(map(str, widths))}, {args.algorithm}, {args.epochs} epochs, batch {args.batch_size}, "
          f"on {int(masks[0].sum())} {args.dataset} examples each, {min(args.chunk, args.models)} models per ensemble; "
          f"best of {args.repeats} rounds")
    print(f"ensemble trainer (numba kernel): {rate['numba']:9.1f} models/s  {gflops['numba']:7.2f} GFLOP/s")
    print(f"ensemble trainer (torch vmap)  : {rate['vmap']:9.1f} models/s  {gflops['vmap']:7.2f} GFLOP/s")
    print(f"per-model loop                 : {rate['loop']:9.1f} models/s  {gflops['loop']:7.2f} GFLOP/s "
          f"(timed on {n_loop} models)")
    print(f"torch matmul                   : {peak:9.1f} GFLOP/s (float32, {256 if args.quick else 1024}^2)")
    print(f"the kernel's products alone    : {ceiling:9.1f} GFLOP/s ({ceiling / peak:.0%} of matmul: the ceiling on "
          f"these shapes, per-model BLAS calls on operands in cache and nothing else)")
    print(f"ensemble / loop: {seconds['loop'] / seconds['numba']:5.1f}x "
          f"(vmap: {seconds['loop'] / seconds['vmap']:.1f}x)"
          f"    ensemble / matmul: {gflops['numba'] / peak:6.1%} (vmap: {gflops['vmap'] / peak:.1%})")
    return {"ensemble_models_s": rate["numba"], "vmap_models_s": rate["vmap"], "loop_models_s": rate["loop"],
            "speedup": seconds["loop"] / seconds["numba"], "matmul_gflops": peak,
            "fraction_of_matmul": gflops["numba"] / peak, "products_gflops": ceiling}


if __name__ == "__main__":
    main()
