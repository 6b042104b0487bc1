"""The benchmark scripts run (tiny sizes) and print their figures; no timing is asserted."""

import runpy
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_train_throughput_quick(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train_throughput.py", "--quick"])
    runpy.run_path(str(BENCH / "train_throughput.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "mlp on digits" in out and "cnn on Fashion-MNIST-sized" in out and "SAM ex/s" in out


def test_ensemble_throughput_quick(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ensemble_throughput.py", "--quick"])
    runpy.run_path(str(BENCH / "ensemble_throughput.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "numba kernel" in out and "torch vmap" in out and "per-model loop" in out and "torch matmul" in out \
        and "products alone" in out


def test_gpu_throughput_quick_runs_on_the_cpu(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gpu_throughput.py", "--quick", "--device", "cpu"])
    runpy.run_path(str(BENCH / "gpu_throughput.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "forward FLOPs per image" in out and "train SAM" in out and "evaluate" in out and "Table 1" in out


def test_gpu_throughput_counts_wrn_flops_independently(monkeypatch):
    """WRN-16-8's forward FLOPs at 32x32 from the architecture by hand: 2 x multiply-adds of
    every convolution and the classifier (BatchNorm, ReLU and pooling are not counted)."""
    module = runpy.run_path(str(BENCH / "gpu_throughput.py"))
    import torch

    from sharpmem_lib.models import build_model

    widths, n = [16, 128, 256, 512], 2  # depth 16: (16 - 4) / 6 = 2 blocks per group, widen 8
    macs = 32 * 32 * 3 * 16 * 9  # stem
    size, c_in = 32, 16
    for group, c_out in enumerate(widths[1:]):
        for block in range(n):
            stride = 2 if (group > 0 and block == 0) else 1
            size_out = size // stride
            macs += size_out**2 * c_in * c_out * 9 + size_out**2 * c_out * c_out * 9
            if c_in != c_out:
                macs += size_out**2 * c_in * c_out  # 1x1 shortcut
            size, c_in = size_out, c_out
    macs += 512 * 100
    flops = module["forward_flops"](build_model("wrn16_8", (3, 32, 32), 100), (3, 32, 32), torch.device("cpu"))
    assert flops == 2 * macs
