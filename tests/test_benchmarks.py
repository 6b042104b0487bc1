"""The benchmark scripts run (tiny sizes) and print their figures; no timing is asserted."""

import runpy
import sys
from pathlib import Path

import pytest

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


def test_gpu_check_dry_run_writes_a_report_and_the_table_renders(tmp_path, capsys):
    """The prepared GPU check runs its whole code path on the CPU with tiny sizes (what CI
    can run), writes its JSON report, and gpu_table.py renders the README table from it."""
    check = runpy.run_path(str(BENCH / "gpu_check.py"))
    out = tmp_path / "gpu_check.json"
    report = check["main"](["--dry-run", "--out", str(out)])
    assert report["dry_run"] and not report["measured"]
    assert not report["skipped"], report["skipped"]
    sections = report["sections"]
    # every gpu-marked test runs in the dry run too (CPU against CPU), bar the one that needs a GPU to find
    assert sections["gpu_tests"]["failed"] == {} and len(sections["gpu_tests"]["passed"]) >= 10
    assert sections["gpu_tests"]["skipped"] == ["test_require_gpu_finds_the_gpu"]
    assert {(r["algorithm"], r["compile"]) for r in report["train"]} == {("sgd", False), ("sam", False),
                                                                         ("sgd", True), ("sam", True)}
    assert {"eval", "dp_sgd", "cifar_recipe_epoch", "ensembles", "boundary"} <= set(sections)
    assert set(sections["boundary"]) == {"hopskipjump", "cw"}
    assert sections["boundary"]["cw"]["s_per_forward_equivalent"] > 0
    assert "SUMMARY" in capsys.readouterr().out
    table_module = runpy.run_path(str(BENCH / "gpu_table.py"))
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- gpu-table:start -->\nold\n<!-- gpu-table:end -->\nafter\n")
    table = table_module["main"]([str(out), "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text and table in text
    assert "DRY RUN" in table and "not GPU figures" in table and "LiRA" in table and "DP-SGD" in table
    assert "HopSkipJump" in table and "purchase100" in table and "texas100" in table


def test_gpu_check_counts_wrn_flops_independently():
    """WRN-16-8's forward FLOPs at 32x32 from the architecture by hand: 2 x multiply-adds of
    every convolution and the classifier (BatchNorm, ReLU and pooling are not counted)."""
    module = runpy.run_path(str(BENCH / "gpu_check.py"))
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


def test_power_sizing_quick(capsys, monkeypatch):
    import importlib.util

    import numpy as np
    from scipy import stats as st

    spec = importlib.util.spec_from_file_location("power_sizing", BENCH / "power_sizing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick"])
    out = capsys.readouterr().out
    assert "honest best attack AUC" in out and "seeds_needed" in out and "never_wrong_pilot" in out
    rows, power = result["targets"], result["power"]
    assert len(rows) == 6 and set(power.index) == {"sam"}
    acc = {m: rows[rows.method == m].sort_values("seed").attack_acc.to_numpy() * 100 for m in ("sgd", "sam")}
    diff = acc["sam"] - acc["sgd"]  # by hand: SD of the paired differences, and the smallest n with
    sd = diff.std(ddof=1)           # t_{0.975, n-1} sd / sqrt(n) <= 1 point (n >= 3)
    n = next(k for k in range(3, 100_000) if st.t.ppf(0.975, k - 1) * sd / np.sqrt(k) <= 1.0)
    assert power.loc["sam", "sd_diff_pts"] == pytest.approx(sd)
    assert power.loc["sam", "seeds_needed"] == n
    assert power.loc["sam", "half_width_at_5_seeds"] == pytest.approx(st.t.ppf(0.975, 4) * sd / np.sqrt(5))
    assert 0 <= result["subsets"]["never_wrong_pilot"] <= 1
