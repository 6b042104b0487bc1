"""The ensemble trainer on the digits influence workload, against a per-model loop and
against this machine's own single-precision matmul rate, measured in one run.

Workload: K MLPs (64 -> hidden -> 10) each trained on a random 70 % of the 898 digits
members, as Feldman & Zhang's estimator needs. Prints models/s and achieved GFLOP/s for
the ensemble and for a plain loop of ordinary training runs, their ratio, and the
fraction of torch's matmul GFLOP/s the ensemble reaches. Figures, not a timed test.

    python benchmarks/ensemble_throughput.py
    python benchmarks/ensemble_throughput.py --quick   # seconds; what the tests run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sharpmem_lib.data import load_dataset
from sharpmem_lib.ensemble import subset_masks, train_ensemble
from sharpmem_lib.models import MLP
from sharpmem_lib.splits import make_partition
from sharpmem_lib.train import TrainConfig, seed_everything, train_classifier


def matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def batched_gemm_gflops(models: int, batch: int, widths: list[int], repeats: int = 10) -> float:
    """The rate of exactly the batched products one training step of the ensemble needs
    (forward, input gradient and weight gradient of every layer, all models at once): the
    ceiling for this workload's shapes, which small per-model matrices keep well below the
    large-matmul rate."""
    products = []
    for a, b in zip(widths, widths[1:]):
        x, w, g = torch.randn(models, batch, a), torch.randn(models, a, b), torch.randn(models, batch, b)
        products += [(lambda x=x, w=w: torch.bmm(x, w)), (lambda g=g, w=w: torch.bmm(g, w.transpose(1, 2))),
                     (lambda x=x, g=g: torch.bmm(x.transpose(1, 2), g))]
    flops = 3 * 2 * models * batch * sum(a * b for a, b in zip(widths, widths[1:]))
    for f in products:
        f()
    start = time.perf_counter()
    for _ in range(repeats):
        for f in products:
            f()
    return flops * repeats / (time.perf_counter() - start) / 1e9


def training_flops(n_examples: int, widths: list[int], passes: int) -> float:
    """Forward (2 per multiply-add) + backward (twice the forward) per example and pass."""
    macs = sum(a * b for a, b in zip(widths, widths[1:]))
    return 6.0 * macs * n_examples * passes


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the tests")
    parser.add_argument("--models", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--algorithm", default="sgd")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.epochs, args.hidden = 8, 1, 16
    data = load_dataset("digits")
    members = make_partition("digits", data).members
    X, y = data.X[members], data.y[members]
    masks = subset_masks(len(X), args.models, 0.7, seed=0)
    config = TrainConfig(algorithm=args.algorithm, epochs=args.epochs, batch_size=64, lr=0.05)
    build = lambda: MLP(64, 10, (args.hidden,))  # noqa: E731
    passes = 1 if args.algorithm == "sgd" else 2
    flops_per_model = training_flops(int(masks[0].sum()) * args.epochs, [64, args.hidden, 10], passes)

    train_ensemble(build, X, y, masks[:2], TrainConfig(epochs=1), progress=False)  # warm-up
    start = time.perf_counter()
    train_ensemble(build, X, y, masks, config, progress=False)
    ensemble_s = time.perf_counter() - start

    n_loop = min(args.models, 2 if args.quick else 16)
    start = time.perf_counter()
    for k in range(n_loop):
        seed_everything(k)
        subset = np.flatnonzero(masks[k])
        train_classifier(build(), X[subset], y[subset], config, progress=False)
    loop_s = (time.perf_counter() - start) / n_loop * args.models

    peak = matmul_gflops(256 if args.quick else 1024)
    ceiling = batched_gemm_gflops(args.models, config.batch_size, [64, args.hidden, 10], 2 if args.quick else 10)
    ens_gflops = flops_per_model * args.models / ensemble_s / 1e9
    loop_gflops = flops_per_model * args.models / loop_s / 1e9
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; workload: {args.models} x MLP "
          f"64-{args.hidden}-10, {args.algorithm}, {args.epochs} epochs on {int(masks[0].sum())} digits each")
    print(f"ensemble trainer : {args.models / ensemble_s:9.1f} models/s  {ens_gflops:7.2f} GFLOP/s")
    print(f"per-model loop   : {args.models / loop_s:9.1f} models/s  {loop_gflops:7.2f} GFLOP/s "
          f"(timed on {n_loop} models)")
    print(f"torch matmul     : {peak:9.1f} GFLOP/s (1024 x 1024 float32)")
    print(f"batched products : {ceiling:9.1f} GFLOP/s (this workload's forward and backward bmm shapes alone)")
    print(f"ensemble / loop  : {loop_s / ensemble_s:9.1f}x      ensemble / matmul: {ens_gflops / peak:6.1%}"
          f"      ensemble / batched products: {ens_gflops / ceiling:6.1%}")
    return {"ensemble_models_s": args.models / ensemble_s, "loop_models_s": args.models / loop_s,
            "speedup": loop_s / ensemble_s, "matmul_gflops": peak, "fraction_of_matmul": ens_gflops / peak,
            "batched_gemm_gflops": ceiling}


if __name__ == "__main__":
    main()
