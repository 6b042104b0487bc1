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
    assert "ensemble trainer" in out and "per-model loop" in out and "torch matmul" in out
