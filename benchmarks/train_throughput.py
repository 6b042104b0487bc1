"""Training throughput of the engine on the CPU (examples per second, one process).

Prints, for each workload, examples/s for SGD (one pass) and SAM (two passes) and their
ratio, measured in one run. Figures, not a timed test: a noisy machine changes them.

    python benchmarks/train_throughput.py            # the workloads of the README
    python benchmarks/train_throughput.py --quick    # seconds; what the tests run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sharpmem_lib.data import load_dataset
from sharpmem_lib.models import build_model
from sharpmem_lib.tensors import seed_everything
from sharpmem_lib.train import TrainConfig, train_classifier


def throughput(model_name: str, X: np.ndarray, y: np.ndarray, algorithm: str, epochs: int, batch_size: int) -> float:
    seed_everything(0)
    model = build_model(model_name, X.shape[1:], int(y.max()) + 1)
    config = TrainConfig(algorithm=algorithm, epochs=epochs, batch_size=batch_size, lr=0.05)
    warm_up = TrainConfig(epochs=1, batch_size=batch_size)
    train_classifier(model, X[:batch_size], y[:batch_size], warm_up, progress=False)
    start = time.perf_counter()
    train_classifier(model, X, y, config, progress=False)
    return epochs * len(X) / (time.perf_counter() - start)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the tests")
    args = parser.parse_args(argv)
    digits = load_dataset("digits")
    rng = np.random.default_rng(0)
    n_fashion = 512 if args.quick else 8192
    fashion_like = (rng.integers(0, 256, (n_fashion, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_fashion))
    workloads = [
        ("mlp on digits (1,797 x 64)", "mlp", digits.X, digits.y, 1 if args.quick else 20, 64),
        ("cnn on Fashion-MNIST-sized (28x28)", "cnn", *fashion_like, 1 if args.quick else 2, 128),
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'workload':38s} {'SGD ex/s':>10s} {'SAM ex/s':>10s} {'SAM/SGD time':>13s}")
    rows = []
    for label, model, X, y, epochs, batch in workloads:
        sgd = throughput(model, X, y, "sgd", epochs, batch)
        sam = throughput(model, X, y, "sam", epochs, batch)
        rows.append({"workload": label, "sgd": sgd, "sam": sam})
        print(f"{label:38s} {sgd:10.0f} {sam:10.0f} {sgd / sam:12.2f}x")
    return rows


if __name__ == "__main__":
    main()
