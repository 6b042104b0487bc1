"""The prepared GPU check (issue 17): one command, at most ~8 minutes on one GPU, a JSON report.

    python benchmarks/gpu_check.py                       # on a GPU; writes benchmarks/results/gpu_check.json
    python benchmarks/gpu_check.py --dry-run             # the same code on the CPU, tiny sizes (CI runs this)
    python benchmarks/gpu_table.py benchmarks/results/gpu_check.json   # the README's GPU table from it

What it measures, on synthetic inputs only (no download), through the library's real code:

1. the ``gpu``-marked tests (tests/test_gpu.py: CUDA vs CPU steps for SGD, SAM, SharpReg;
   vmap ensembles vs separate models; resume; DP-SGD), as a pytest run in a subprocess;
2. the dense matmul rate in bf16 and in IEEE fp32 (TF32 off), the references for MFU;
3. WRN-16-8 on CIFAR-shaped batches through ``train_classifier``: images/s for SGD (bf16
   autocast, the engine's choice on CUDA) and SAM (fp32, TF32 off: bf16 would erase its
   perturbation), with and without ``torch.compile``; MFU against the measured matmul rate of
   the precision the run uses and against bf16; peak memory; host syncs per step (CUDA's sync
   debug mode counts them); evaluation images/s (fp32) and one image's latency;
4. DP-SGD steps (Opacus, per-sample gradients, fp32) on WRN-16-8 (GroupNorm);
5. one short epoch of the CIFAR recipe (SGD 0.1, momentum 0.9, wd 5e-4, batch 256,
   augmentation, validation and a checkpoint every epoch) on synthetic images;
6. the ensemble trainer's models/s: FC nets stacked with vmap (``train_ensemble``) and the
   small CNN (BatchNorm, so one by one through ``train_classifier``, as run_subsampling does);
7. the boundary-distance attacks' seconds per example (ART's HopSkipJump one example at a
   time; Carlini-Wagner on one batch), which gpu_table.py prices chapter 3's attacks with.

On a machine of your own with an NVIDIA GPU: ``pip install -r requirements.txt`` (PyPI's
torch wheel carries CUDA), then the first command above. On a machine with its own CUDA
torch but no network (this project's lent GPU: ``python3`` there holds torch), carry the two
pure-Python wheels the image lacks, fetched where pip works::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 -d .whl opacus==1.6.0 adversarial-robustness-toolbox==1.20.1
    # there, in one command (carry: .whl), with time left for one rerun:
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
        && PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out $OUT/gpu_check.json

then copy the JSON to benchmarks/results/gpu_check.json, run gpu_table.py on it with
``--readme README.md``, and commit both.

Every section has a time budget; a section that runs out is recorded as skipped, with why.
Nothing here asserts a speed; the tests assert correctness.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sharpmem_lib.models import build_model  # noqa: E402
from sharpmem_lib.tensors import seed_everything  # noqa: E402
from sharpmem_lib.train import (TrainConfig, precision_context, predict_logits, train_classifier,  # noqa: E402
                                training_precision)

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu_check.json"


@dataclasses.dataclass
class Sizes:
    """Everything that differs between the GPU run and the dry run."""

    batch: int
    train_steps: int  # timed steps per training measurement
    warmup_steps: int
    eval_images: int
    matmul_n: int
    matmul_repeats: int
    recipe_images: int  # the CIFAR recipe's short epoch
    dp_steps: int
    dp_batch: int
    ens_models: int
    ens_images: int
    cnn_models: int
    cnn_images: int
    image: int  # side of the square inputs
    wrn: dict  # WRN kwargs (the dry run shrinks it)
    tests_k: str | None  # pytest -k for the gpu tests (None: all)
    hsj_examples: int = 4  # HopSkipJump: examples (one at a time, as ART runs them)
    hsj_iters: int = 10  # its iterations (boundary.py's default)
    cw_batch: int = 64  # Carlini-Wagner: one batch of this many examples, labels over 100 classes
    cw_iters: int = 2  # its iterations per binary-search step (boundary.py: 10 steps)


GPU = Sizes(batch=256, train_steps=60, warmup_steps=5, eval_images=10_240, matmul_n=8192, matmul_repeats=20,
            recipe_images=12_800, dp_steps=8, dp_batch=128, ens_models=64, ens_images=2_000, cnn_models=4,
            cnn_images=5_000, image=32, wrn={}, tests_k=None)
DRY = Sizes(batch=8, train_steps=2, warmup_steps=1, eval_images=16, matmul_n=256, matmul_repeats=2,
            recipe_images=24, dp_steps=2, dp_batch=8, ens_models=4, ens_images=64, cnn_models=1, cnn_images=32,
            image=16, wrn={"depth": 10, "widen_factor": 1}, tests_k=None, hsj_examples=1, hsj_iters=1,
            cw_batch=4, cw_iters=1)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def device_info(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "device_type": device.type}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, capability=f"{props.major}.{props.minor}", memory_gib=props.total_memory / 2**30,
                    multiprocessors=props.multi_processor_count)
        with contextlib.suppress(Exception):
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip()
    else:
        info.update(name=f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    return info


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int, repeats: int) -> float:
    """Measured dense matmul FLOP/s, n x n by n x n, in ``dtype`` (fp32: IEEE, TF32 off)."""
    with precision_context("fp32", device):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(3):
            a @ b
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def forward_flops(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device) -> float:
    """FLOPs of one forward pass per image, counted by torch's FLOP counter (checked against
    a count by hand in tests/test_benchmarks.py)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros((2, *shape), device=device)
    was = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    model.train(was)
    return counter.get_total_flops() / 2


def synthetic_images(n: int, side: int, classes: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g).to(device)
    y = torch.randint(0, classes, (n,), generator=g).to(device)
    return X, y


def wrn(sizes: Sizes, device: torch.device, classes: int = 100) -> torch.nn.Module:
    seed_everything(0)
    return build_model("wrn16_8", (3, sizes.image, sizes.image), classes, **sizes.wrn).to(device)


@contextlib.contextmanager
def count_syncs(device: torch.device):
    """Counts the host syncs CUDA's sync debug mode reports inside the block (a list of one
    int, filled at exit); nothing to count on the CPU (None)."""
    out: list = [None]
    if device.type != "cuda":
        yield out
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield out
        finally:
            torch.cuda.set_sync_debug_mode(0)
    out[0] = sum("synchroniz" in str(w.message) for w in caught)


def train_measurement(sizes: Sizes, device: torch.device, algorithm: str, compile_model: bool,
                      flops: float, peaks: dict) -> dict:
    """One warm-up epoch (compilation, cuDNN autotuning), then one timed epoch of
    ``train_steps`` full batches, through ``train_classifier``."""
    config = TrainConfig(algorithm=algorithm, rho=0.1, epochs=1, batch_size=sizes.batch, lr=0.1, momentum=0.9,
                         weight_decay=5e-4, augment=True)
    precision = training_precision(config, device)
    X, y = synthetic_images(sizes.batch * sizes.train_steps, sizes.image, 100, device)
    model = wrn(sizes, device)
    warm = sizes.batch * sizes.warmup_steps
    start = time.perf_counter()
    train_classifier(model, X[:warm], y[:warm], config, progress=False, compile_model=compile_model)
    sync(device)
    warmup_s = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with count_syncs(device) as syncs:
        start = time.perf_counter()
        train_classifier(model, X, y, config, progress=False, compile_model=compile_model)
        sync(device)
        elapsed = time.perf_counter() - start
    rate = len(X) / elapsed
    passes = 6 if algorithm != "sgd" else 3  # forward + backward = 3 forwards; SAM-like: two of them
    achieved = rate * passes * flops
    reference = peaks["bf16"] if precision == "bf16-autocast" else peaks["fp32"]
    return {"algorithm": algorithm, "compile": compile_model, "precision": precision, "images_per_s": rate,
            "tflops": achieved / 1e12, "mfu_vs_measured_matmul_of_its_precision": achieved / reference,
            "mfu_vs_measured_bf16_matmul": achieved / peaks["bf16"], "warmup_s": warmup_s, "timed_s": elapsed,
            "steps": sizes.train_steps, "batch": sizes.batch,
            "host_syncs_per_step": None if syncs[0] is None else syncs[0] / sizes.train_steps,
            "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def eval_measurement(sizes: Sizes, device: torch.device, flops: float) -> dict:
    X, _ = synthetic_images(sizes.eval_images, sizes.image, 100, device)
    model = wrn(sizes, device)
    predict_logits(model, X[:1024], batch_size=1024)
    sync(device)
    start = time.perf_counter()
    predict_logits(model, X, batch_size=1024)
    sync(device)
    rate = len(X) / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(20):
        predict_logits(model, X[i % len(X) :][:1])
    sync(device)
    return {"images_per_s": rate, "tflops": rate * flops / 1e12, "precision": "fp32",
            "single_image_latency_s": (time.perf_counter() - start) / 20}


def dp_sgd_measurement(sizes: Sizes, device: torch.device) -> dict:
    """DP-SGD through Opacus on WRN-16-8 (BatchNorm replaced by GroupNorm): fp32 per-sample
    gradients; Poisson batches of expected size ``dp_batch``."""
    from sharpmem_lib.defenses import train_dp_sgd

    n = sizes.dp_batch * sizes.dp_steps
    X, y = synthetic_images(n, sizes.image, 100, torch.device("cpu"))
    config = TrainConfig(epochs=1, batch_size=sizes.dp_batch, lr=0.1)
    train_dp_sgd(wrn(sizes, device), X[: 2 * sizes.dp_batch], y[: 2 * sizes.dp_batch], config, progress=False)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    train_dp_sgd(wrn(sizes, device), X, y, config, progress=False)
    sync(device)
    elapsed = time.perf_counter() - start
    return {"images_per_s": n / elapsed, "batch": sizes.dp_batch, "precision": "fp32",
            "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def recipe_epoch(sizes: Sizes, device: torch.device) -> dict:
    """One short epoch of the CIFAR recipe with everything a real run does per epoch."""
    X, y = synthetic_images(sizes.recipe_images + 1000, sizes.image, 100, device, seed=1)
    config = TrainConfig(algorithm="sgd", epochs=1, batch_size=sizes.batch, lr=0.1, momentum=0.9, weight_decay=5e-4,
                         lr_milestones=(60, 120, 160), lr_gamma=0.2, augment=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = wrn(sizes, device)
        start = time.perf_counter()
        result = train_classifier(model, X[1000:], y[1000:], config, X_val=X[:1000], y_val=y[:1000],
                                  checkpoint_path=Path(tmp) / "c.pt", progress=False)
        sync(device)
        elapsed = time.perf_counter() - start
    return {"images": sizes.recipe_images, "wall_s": elapsed, "images_per_s": sizes.recipe_images / elapsed,
            "train_loss": result.history[-1]["train_loss"], "precision": training_precision(config, device),
            "includes": "first-call cuDNN autotuning, validation on 1,000 images, a checkpoint"}


def ensemble_measurement(sizes: Sizes, device: torch.device) -> dict:
    from sharpmem_lib.ensemble import subset_masks, train_ensemble
    from sharpmem_lib.models import FCNet, SmallCNN

    out = {}
    g = torch.Generator().manual_seed(0)
    X = torch.randn(sizes.ens_images, 600, generator=g)
    y = torch.randint(0, 100, (sizes.ens_images,), generator=g)
    config = TrainConfig(algorithm="sgd", epochs=1, batch_size=128, lr=0.05)
    masks = subset_masks(len(X), sizes.ens_models, 0.7, seed=0)
    build = lambda: FCNet(600, 100)  # noqa: E731
    train_ensemble(build, X, y, masks[:2], config, device=device, backend="vmap", progress=False)  # warm-up
    sync(device)
    start = time.perf_counter()
    train_ensemble(build, X, y, masks, config, device=device, backend="vmap", progress=False)
    sync(device)
    elapsed = time.perf_counter() - start
    out["fc_vmap"] = {"models": sizes.ens_models, "images_per_model": int(masks[0].sum()), "epochs": 1,
                      "model_epochs_per_s": sizes.ens_models / elapsed, "precision": training_precision(config, device)}
    Xc = torch.randint(0, 256, (sizes.cnn_images, 1, 28, 28), dtype=torch.uint8, generator=g).to(device)
    yc = torch.randint(0, 10, (sizes.cnn_images,), generator=g).to(device)
    seed_everything(0)
    train_classifier(SmallCNN(1, 10).to(device), Xc[:256], yc[:256], config, progress=False)  # warm-up
    sync(device)
    start = time.perf_counter()
    for k in range(sizes.cnn_models):
        seed_everything(k)
        train_classifier(SmallCNN(1, 10).to(device), Xc, yc, config, progress=False)
    sync(device)
    elapsed = time.perf_counter() - start
    out["cnn_one_by_one"] = {"models": sizes.cnn_models, "images_per_model": sizes.cnn_images, "epochs": 1,
                             "model_epochs_per_s": sizes.cnn_models / elapsed,
                             "precision": training_precision(config, device)}
    return out


def boundary_measurement(sizes: Sizes, device: torch.device) -> dict:
    """Seconds per example of the boundary-distance attacks through the library's
    ``boundary_distances`` (ART) on WRN-16-8: HopSkipJump on a few examples (ART attacks them
    one at a time), Carlini-Wagner on one batch. CW's cost per example grows with the number
    of distinct labels in its batch (ART's class_gradient runs one backward per distinct
    label), so the report also gives seconds per forward-equivalent under gpu_table.py's cost
    model, ``10 x iters x (2 (1 + 2 distinct) + 10)`` forwards per example."""
    import numpy as np

    from sharpmem_lib.attacks.boundary import boundary_distances

    n = max(sizes.hsj_examples, sizes.cw_batch)
    X, y = synthetic_images(n, sizes.image, 100, torch.device("cpu"), seed=2)
    X, y = X.numpy(), y.numpy()
    model = wrn(sizes, device).eval()
    out = {}
    start = time.perf_counter()
    boundary_distances(model, X[: sizes.hsj_examples], y[: sizes.hsj_examples], "hopskipjump",
                       max_iter=sizes.hsj_iters)
    sync(device)
    elapsed = time.perf_counter() - start
    out["hopskipjump"] = {"examples": sizes.hsj_examples, "iters": sizes.hsj_iters,
                          "s_per_example": elapsed / sizes.hsj_examples}
    start = time.perf_counter()
    boundary_distances(model, X[: sizes.cw_batch], y[: sizes.cw_batch], "cw", max_iter=sizes.cw_iters)
    sync(device)
    elapsed = time.perf_counter() - start
    distinct = len(np.unique(y[: sizes.cw_batch]))
    forwards = sizes.cw_batch * 10 * sizes.cw_iters * (2 * (1 + 2 * distinct) + 10)
    out["cw"] = {"examples": sizes.cw_batch, "iters": sizes.cw_iters, "distinct_labels": distinct,
                 "s_per_example": elapsed / sizes.cw_batch, "s_per_forward_equivalent": elapsed / forwards}
    return out


def gpu_tests(sizes: Sizes, device: torch.device, timeout: float) -> dict:
    """tests/test_gpu.py in a subprocess (its own CUDA context), summarised from JUnit XML."""
    env = dict(os.environ)
    if device.type != "cuda":
        env["SHARPMEM_GPU_TESTS_ON_CPU"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_gpu.py"), "-q", "-p", "no:cacheprovider",
               f"--junitxml={xml}"] + (["-k", sizes.tests_k] if sizes.tests_k else [])
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": "timed out", "timeout_s": timeout}
        result = {"returncode": proc.returncode, "wall_s": time.perf_counter() - start, "passed": [], "failed": {},
                  "skipped": []}
        if not xml.exists():
            result["output_tail"] = (proc.stdout + proc.stderr)[-3000:]
            return result
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = case.get("name")
            bad = case.find("failure") if case.find("failure") is not None else case.find("error")
            if bad is not None:
                result["failed"][name] = (bad.get("message") or "")[:500]
            elif case.find("skipped") is not None:
                result["skipped"].append(name)
            else:
                result["passed"].append(name)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="the same code on the CPU with tiny sizes")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON report (default {DEFAULT_OUT}; dry run: none)")
    parser.add_argument("--budget", type=float, default=None, help="seconds for the whole check (default 450)")
    parser.add_argument("--no-tests", action="store_true", help="skip the gpu-marked tests")
    args = parser.parse_args(argv)
    if args.dry_run:
        device, sizes = torch.device("cpu"), DRY
    else:
        from sharpmem_lib.train import require_gpu

        device, sizes = require_gpu("benchmarks/gpu_check.py (use --dry-run on a CPU)"), GPU
    budget = args.budget or (450.0 if not args.dry_run else 600.0)
    real_compile = torch.compile
    if args.dry_run:
        # inductor's code generation takes minutes on a CPU; the dry run traces with dynamo and
        # runs eagerly, so the compiled path of train_classifier is still exercised
        import functools

        torch.compile = functools.partial(real_compile, backend="eager")
    try:
        return _run(args, device, sizes, budget)
    finally:
        torch.compile = real_compile


def _run(args, device: torch.device, sizes: Sizes, budget: float) -> dict:
    t0 = time.perf_counter()

    def left() -> float:
        return budget - (time.perf_counter() - t0)

    report: dict = {"kind": "sharpmem gpu_check", "dry_run": args.dry_run, "measured": not args.dry_run,
                    "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": device_info(device),
                    "sizes": dataclasses.asdict(sizes), "sections": {}, "skipped": {}}
    print(f"gpu_check on {report['device']['name']} (torch {torch.__version__}, CUDA {torch.version.cuda})"
          + (" -- DRY RUN on the CPU: not GPU figures" if args.dry_run else ""), flush=True)

    def section(name: str, need_s: float, fn):
        if left() < need_s:
            report["skipped"][name] = f"time budget: {left():.0f} s left, {need_s:.0f} s needed"
            print(f"  {name}: skipped ({report['skipped'][name]})", flush=True)
            return None
        start = time.perf_counter()
        try:
            value = fn()
        except Exception as err:  # a section's failure is a finding, not the end of the check
            report["skipped"][name] = f"{type(err).__name__}: {err}"[:800]
            print(f"  {name}: FAILED {report['skipped'][name]}", flush=True)
            return None
        report["sections"][name] = value
        print(f"  {name}: done in {time.perf_counter() - start:.1f} s", flush=True)
        return value

    dry = args.dry_run
    if not args.no_tests:
        section("gpu_tests", 60 if not dry else 0, lambda: gpu_tests(sizes, device, timeout=min(200.0, left() - 150)
                                                                     if not dry else 300.0))
    peaks = section("matmul", 5, lambda: {"bf16": matmul_rate(device, torch.bfloat16, sizes.matmul_n,
                                                               sizes.matmul_repeats),
                                          "fp32": matmul_rate(device, torch.float32, sizes.matmul_n,
                                                              sizes.matmul_repeats)})
    flops = forward_flops(wrn(sizes, device), (3, sizes.image, sizes.image), device)
    report["wrn_forward_flops_per_image"] = flops
    report["train"] = []

    def train(compile_model: bool) -> None:
        for algorithm in ("sgd", "sam"):
            need = (20 if algorithm == "sgd" else 40) + (150 if compile_model else 0)
            r = section(f"train_{algorithm}{'_compile' if compile_model else ''}", need if not dry else 0,
                        lambda: train_measurement(sizes, device, algorithm, compile_model, flops, peaks))
            if r:
                report["train"].append(r)

    if peaks:
        train(compile_model=False)
    section("eval", 10 if not dry else 0, lambda: eval_measurement(sizes, device, flops))
    section("dp_sgd", 30 if not dry else 0, lambda: dp_sgd_measurement(sizes, device))
    section("cifar_recipe_epoch", 40 if not dry else 0, lambda: recipe_epoch(sizes, device))
    section("ensembles", 40 if not dry else 0, lambda: ensemble_measurement(sizes, device))
    section("boundary", 60 if not dry else 0, lambda: boundary_measurement(sizes, device))
    if peaks:  # last: compilation takes the longest and its first minutes measure nothing
        train(compile_model=True)
    report["wall_s"] = time.perf_counter() - t0
    print_summary(report)
    out = args.out if args.out is not None else (None if dry else DEFAULT_OUT)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=str))
        print(f"report: {out}")
    return report


def print_summary(report: dict) -> None:
    s = report["sections"]
    print(f"\nSUMMARY ({'dry run, CPU' if report['dry_run'] else report['device']['name']}), "
          f"{report['wall_s']:.0f} s")
    tests = s.get("gpu_tests")
    if tests and "passed" in tests:
        print(f"  gpu tests: {len(tests['passed'])} passed, {len(tests['failed'])} failed, "
              f"{len(tests['skipped'])} skipped" + (f"; FAILED: {sorted(tests['failed'])}" if tests["failed"] else ""))
    if "matmul" in s:
        print(f"  matmul: bf16 {s['matmul']['bf16'] / 1e12:.1f} TFLOP/s, fp32 (IEEE) {s['matmul']['fp32'] / 1e12:.1f}")
    print(f"  WRN forward: {report['wrn_forward_flops_per_image'] / 1e9:.3f} GFLOP/image")
    for r in report.get("train", []):
        syncs = "n/a" if r["host_syncs_per_step"] is None else f"{r['host_syncs_per_step']:.2f}"
        mem = "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f} GiB"
        print(f"  train {r['algorithm'].upper():4s}{' +compile' if r['compile'] else '         '} ({r['precision']}): "
              f"{r['images_per_s']:9.0f} img/s, MFU {100 * r['mfu_vs_measured_matmul_of_its_precision']:5.1f} % of "
              f"its precision's matmul ({100 * r['mfu_vs_measured_bf16_matmul']:5.1f} % of bf16), peak {mem}, "
              f"host syncs/step {syncs}")
    sgd = next((r for r in report.get("train", []) if r["algorithm"] == "sgd" and not r["compile"]), None)
    sam = next((r for r in report.get("train", []) if r["algorithm"] == "sam" and not r["compile"]), None)
    if sgd and sam:
        print(f"  SAM / SGD images/s: {sam['images_per_s'] / sgd['images_per_s']:.2f}")
    for name in ("eval", "dp_sgd", "cifar_recipe_epoch"):
        if name in s:
            print(f"  {name}: {s[name]['images_per_s']:.0f} img/s")
    for name, r in s.get("ensembles", {}).items():
        print(f"  {name}: {r['model_epochs_per_s']:.2f} model-epochs/s ({r['images_per_model']} images per model)")
    for name, r in s.get("boundary", {}).items():
        print(f"  {name}: {r['s_per_example']:.3f} s per example ({r['examples']} examples, {r['iters']} iterations)")
    for name, why in report["skipped"].items():
        print(f"  skipped {name}: {why}")


if __name__ == "__main__":
    main()
