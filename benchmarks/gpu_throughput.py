"""Throughput of the training engine at the paper's scale: WRN-16-8 on CIFAR-100-shaped data.

Runs the library's own code path (``train_classifier``: data on the device, augmentation on
the device, bf16 autocast and channels_last on CUDA, SAM's two passes without host syncs)
on synthetic uint8 images, so it needs no download. Prints, measured in one run:

* images/s for SGD and SAM training steps (with and without ``torch.compile`` if asked),
  and for evaluation (``predict_logits``);
* the model's FLOPs per image (counted by ``torch.utils.flop_counter``) and the model FLOPs
  utilisation (MFU) against two peaks: the dense matmul rate measured here in the training
  precision, and the datasheet peak where the device is known;
* the GPU time the paper profile needs at these rates (the table in the README).

    python benchmarks/gpu_throughput.py                 # on a GPU: full sizes
    python benchmarks/gpu_throughput.py --quick         # tiny sizes, any device; the tests run this
    python benchmarks/gpu_throughput.py --compile       # also measure torch.compile

Figures, not a timed test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import time

import torch

from sharpmem_lib.models import build_model
from sharpmem_lib.tensors import seed_everything, select_device
from sharpmem_lib.train import TrainConfig, predict_logits, train_classifier

# Dense bf16 tensor-core peaks from vendor datasheets (FLOP/s, no sparsity); fp32 for CPUs is
# not listed: the measured matmul rate is the CPU's reference.
DATASHEET_PEAK = {
    "H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12,
    "RTX 4090": 165e12, "RTX 3090": 71e12, "V100": 125e12, "T4": 65e12,
}

# The paper profile's training work (notebooks/params/paper.yaml), in images through a
# training step. A CIFAR target trains on the partition's members: the 50,000 official
# training images (sharpmem_lib.splits), 200 epochs. Purchase/Texas (Table 1's other two
# datasets) are tabular and cheap next to CIFAR, so Table 1 counts the two CIFAR datasets.
PAPER_WORK = {
    # name: (model-equivalents, images per model, fraction of them in two-pass SAM-like steps)
    "Table 1, CIFAR-10/100 x SGD, SAM, SharpReg (1 target each)": (6, 200 * 50_000, 2 / 3),
    "Fig. 4 lambda sweep (6 values; lambda 0 is SGD)": (6, 200 * 50_000, 5 / 6),
    "Fig. 5b xi sweep (6 values of SharpReg)": (6, 200 * 50_000, 1.0),
    "Fig. 5c defenses (SELENA 25 x 60 % + distil, AdvReg ~2x, LS, DP-SGD)": (20, 200 * 50_000, 0.0),
    "Fig. 3 influence, if computed (2,000 models on 70 %)": (2000 * 0.7, 200 * 50_000, 0.0),
}


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int, repeats: int) -> float:
    """Measured dense matmul FLOP/s in ``dtype`` (n x n by n x n)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def forward_flops(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device) -> float:
    """FLOPs of one forward pass per image, counted by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros((2, *shape), device=device)
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    model.train()
    return counter.get_total_flops() / 2


def _model(args, device, shape) -> torch.nn.Module:
    """The benchmarked model, seeded, laid out as the engine runs it on the device."""
    seed_everything(0)
    model = build_model(args.model, shape, args.classes).to(device)
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def train_rate(args, device, X, y, algorithm: str, compile_model: bool) -> float:
    """Images/s of the engine's training loop (one timed epoch after a warm-up epoch)."""
    model = _model(args, device, X.shape[1:])
    config = TrainConfig(algorithm=algorithm, rho=0.1, epochs=1, batch_size=args.batch_size, lr=0.1,
                         weight_decay=5e-4, augment=True)
    warm = args.batch_size * args.warmup
    train_classifier(model, X[:warm], y[:warm], config, progress=False, compile_model=compile_model)
    _sync(device)
    start = time.perf_counter()
    train_classifier(model, X, y, config, progress=False, compile_model=compile_model)
    _sync(device)
    return len(X) / (time.perf_counter() - start)


def eval_rate(args, device, X) -> float:
    model = _model(args, device, X.shape[1:])
    predict_logits(model, X[: args.eval_batch], batch_size=args.eval_batch)
    _sync(device)
    start = time.perf_counter()
    predict_logits(model, X, batch_size=args.eval_batch)
    _sync(device)
    return len(X) / (time.perf_counter() - start)


def paper_hours(sgd_rate: float, sam_rate: float) -> list[tuple[str, float]]:
    """GPU hours of each block of the paper profile at the given training rates."""
    rows = []
    for name, (models, images, two_pass) in PAPER_WORK.items():
        seconds = models * images * ((1 - two_pass) / sgd_rate + two_pass / sam_rate)
        rows.append((name, seconds / 3600))
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes on any device (what the tests run)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--model", default="wrn16_8")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up steps (compilation, cuDNN autotuning)")
    parser.add_argument("--eval-batch", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="also measure with torch.compile")
    parser.add_argument("--assume", type=float, default=None, metavar="IMAGES_PER_S",
                        help="measure nothing: print the paper-profile estimate for this SGD training rate "
                             "(SAM at half of it)")
    args = parser.parse_args(argv)
    if args.assume is not None:
        if not args.assume > 0:
            parser.error(f"--assume={args.assume} is not valid; it must be a positive rate in images/s")
        print(f"GPU time of the paper profile, ESTIMATED for an assumed {args.assume:.0f} images/s (SGD) and "
              f"{args.assume / 2:.0f} (SAM):")
        for label, hours in paper_hours(args.assume, args.assume / 2):
            print(f"  {label:72s} {hours:10.1f} h")
        return {}
    device = select_device(args.device)
    gpu = device.type == "cuda"
    args.batch_size = args.batch_size or (8 if args.quick else 256)
    args.steps = args.steps or (2 if args.quick else 40)
    args.eval_batch = args.eval_batch or (16 if args.quick else 2048)
    args.warmup = 1 if args.quick else args.warmup
    torch.backends.cudnn.benchmark = gpu

    n = args.batch_size * args.steps
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g).to(device)  # data stay on the device
    y = torch.randint(0, args.classes, (n,), generator=g).to(device)

    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    dtype = torch.bfloat16 if gpu else torch.float32
    peak_measured = matmul_rate(device, dtype, 8192 if gpu and not args.quick else 2048, 20 if gpu else 5)
    peak_sheet = next((v for k, v in DATASHEET_PEAK.items() if gpu and k in name), None)
    flops = forward_flops(build_model(args.model, (3, 32, 32), args.classes).to(device), (3, 32, 32), device)

    print(f"device: {name}; torch {torch.__version__}; {args.model}, batch {args.batch_size}, {n} images timed")
    print(f"forward FLOPs per image: {flops / 1e9:.3f} GFLOP (training step: 3x, SAM step: 6x)")
    print(f"measured {str(dtype).replace('torch.', '')} matmul: {peak_measured / 1e12:.2f} TFLOP/s"
          + (f"; datasheet bf16 peak: {peak_sheet / 1e12:.0f} TFLOP/s" if peak_sheet else ""))
    results = {"device": name, "flops_per_image": flops}
    variants = [False, True] if args.compile else [False]
    print(f"{'work':28s} {'images/s':>10s} {'TFLOP/s':>9s} {'MFU (matmul)':>13s} {'MFU (sheet)':>12s}")
    for compile_model in variants:
        for algorithm, passes in (("sgd", 3), ("sam", 6)):
            rate = train_rate(args, device, X, y, algorithm, compile_model)
            achieved = rate * passes * flops
            label = f"train {algorithm.upper()}" + (" + compile" if compile_model else "")
            results[label] = rate
            sheet = f"{100 * achieved / peak_sheet:11.1f}%" if peak_sheet else f"{'n/a':>12s}"
            print(f"{label:28s} {rate:10.0f} {achieved / 1e12:9.2f} {100 * achieved / peak_measured:12.1f}% {sheet}")
    rate = eval_rate(args, device, X)
    results["eval"] = rate
    print(f"{'evaluate (bf16 autocast)' if gpu else 'evaluate':28s} {rate:10.0f} {rate * flops / 1e12:9.2f} "
          f"{100 * rate * flops / peak_measured:12.1f}%")

    note = "" if gpu else " (measured on a CPU: not a GPU figure)"
    print(f"\nTime of the paper profile at these training rates{note}; an estimate: work / measured rate,")
    print("attacks, evaluation and data loading excluded:")
    for label, hours in paper_hours(results["train SGD"], results["train SAM"]):
        print(f"  {label:78s} {hours:10.1f} h")
    return results


if __name__ == "__main__":
    main()
