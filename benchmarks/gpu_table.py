"""The README's GPU table: the paper profile's real plan, priced at rates from gpu_check's JSON.

    python benchmarks/gpu_table.py benchmarks/results/gpu_check.json            # print the table
    python benchmarks/gpu_table.py benchmarks/results/gpu_check.json --readme README.md   # rewrite its GPU table
    python benchmarks/gpu_table.py --assume-sgd 40000 --assume-sam 4000          # estimates, no JSON

Every model the paper profile (notebooks/params/paper.yaml) trains is a row, counted once
where two chapters share a cached run: the chapter 0/4 recipe targets, chapter 2's targets,
Table 1's targets, chapter 4's lambda and xi sweeps and its defenses (SELENA's 25 sub-models
and distillation, AdvReg, label smoothing, DP-SGD priced at its own measured fp32 per-sample
rate), the boundary attacks (HopSkipJump and Carlini-Wagner, one example at a time), and,
priced separately, LiRA's shadow models at the paper's count and the influence estimates if
recomputed. Rows say which rates they use: "measured" (straight from the JSON), "from measured
rates" (work / measured images/s), or "assumed" (a factor we have not measured, stated).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MARK_START, MARK_END = "<!-- gpu-table:start -->", "<!-- gpu-table:end -->"

# Dense bf16 tensor-core peaks with fp32 accumulation, no sparsity (vendor datasheets), FLOP/s.
# Ordered: the first pattern that matches the device name wins (H100 NVL before H100, L40S
# before L40 before L4). None: the GPU has no bf16 tensor cores (V100, T4: fp16 only).
DATASHEET_BF16 = [
    (r"H200 NVL", 836e12), (r"H200", 989e12),
    (r"H100 NVL", 835e12), (r"H100 PCIe", 756e12), (r"H100", 989e12),  # plain "H100 80GB HBM3" is SXM
    (r"A100", 312e12), (r"L40S", 362e12), (r"L40\b", 181e12), (r"L4\b", 121e12),
    (r"A10G", 70e12), (r"A10\b", 125e12),
    (r"RTX 4090", 82.6e12), (r"RTX 3090", 35.6e12),  # GeForce: half rate with fp32 accumulation
    (r"V100", None), (r"T4\b", None),
]


def datasheet_bf16_peak(name: str) -> float | None:
    """The datasheet's dense bf16 peak of the GPU called ``name`` (torch's device name), or
    None where unknown or without bf16 tensor cores."""
    for pattern, peak in DATASHEET_BF16:
        if re.search(pattern, name):
            return peak
    return None


EPOCHS, MEMBERS = 200, 50_000  # the CIFAR recipe; members: CIFAR's official training set (sharpmem_lib.splits)


@dataclass(frozen=True)
class Work:
    """``models`` trainings of ``images`` images each, at the rate of ``rate``:
    sgd (bf16), twopass (SAM/eq. 4/SharpReg, fp32), dpsgd (fp32 per-sample), or an attack."""

    block: str
    what: str
    models: float
    images: float
    rate: str
    factor: float = 1.0  # assumed multiple of the rate's cost (stated in ``what``)
    optional: bool = False


def paper_plan() -> list[Work]:
    """What notebooks/params/paper.yaml trains, counted by distinct cached run."""
    n = EPOCHS * MEMBERS
    return [
        Work("Ch. 0/4 recipe targets", "SGD (CIFAR-100, augmentation; chapter 4's SGD and SAM targets are these)",
             1, n, "sgd"),
        Work("Ch. 0/4 recipe targets", "SAM rho 0.1", 1, n, "twopass"),
        Work("Ch. 2 targets", "SGD, SWA x 5 seeds (no augmentation)", 10, n, "sgd"),
        Work("Ch. 2 targets", "SAM x 5 seeds", 5, n, "twopass"),
        Work("Ch. 3 Table 1 targets", "SGD on CIFAR-10 and CIFAR-100", 2, n, "sgd"),
        Work("Ch. 3 Table 1 targets", "SAM, SharpReg on CIFAR-10 and CIFAR-100", 4, n, "twopass"),
        Work("Ch. 4 lambda sweep", "eq. 4 at lambda 0 (one pass)", 1, n, "sgd"),
        Work("Ch. 4 lambda sweep", "eq. 4 at lambda 0.5, 1, 1.5, 2, 3", 5, n, "twopass"),
        Work("Ch. 4 xi sweep", "SharpReg at 6 values of xi (xi 0.3 is the SharpReg target)", 6, n, "twopass"),
        Work("Ch. 4 defenses", "label smoothing", 1, n, "sgd"),
        Work("Ch. 4 defenses", "AdvReg (k = 1: two extra forward passes per step, assumed 5/3 of SGD)", 1, n, "sgd",
             factor=5 / 3),
        Work("Ch. 4 defenses", "SELENA: 25 sub-models on 60 % of the members", 25 * 0.6, n, "sgd"),
        Work("Ch. 4 defenses", "SELENA: distillation", 1, n, "sgd"),
        Work("Ch. 4 defenses", "DP-SGD (Opacus, fp32 per-sample gradients)", 1, n, "dpsgd"),
        Work("Ch. 3 boundary attacks", "HopSkipJump: 3 targets x 4 sets x 500 examples, one at a time; assumed "
             "25,000 batched queries + 1,500 sequential calls each", 3 * 4 * 500, 1, "hsj"),
        Work("Ch. 3 boundary attacks", "Carlini-Wagner: 3 x 4 x 500 examples, one at a time; assumed 1,000 "
             "steps of forward + backward each", 3 * 4 * 500, 1, "cw"),
        Work("Option: LiRA at the paper's count", "3 algorithms x 256 models on 70 % of the members (1/3 SGD)",
             256, 0.7 * n, "sgd", optional=True),
        Work("Option: LiRA at the paper's count", "SAM and SharpReg shadow models", 512, 0.7 * n, "twopass",
             optional=True),
        Work("Option: influence estimates recomputed", "2,000 WRN-16-8 on 70 % (chapter 2 reads Feldman-Zhang's "
             "file instead)", 2000, 0.7 * n, "sgd", optional=True),
    ]


def rates_from_report(report: dict) -> dict:
    """images/s (and seconds per query) the plan is priced at, from a gpu_check JSON."""
    train = {(r["algorithm"], r["compile"]): r for r in report.get("train", [])}
    s = report["sections"]
    rates = {"sgd": train[("sgd", False)]["images_per_s"], "twopass": train[("sam", False)]["images_per_s"]}
    if "dp_sgd" in s:
        rates["dpsgd"] = s["dp_sgd"]["images_per_s"]
    if "eval" in s:
        rates["eval"] = s["eval"]["images_per_s"]
        rates["latency"] = s["eval"]["single_image_latency_s"]
    return rates


def hours(work: Work, rates: dict) -> float | None:
    if work.rate == "hsj":
        if "eval" not in rates:
            return None
        return work.models * (25_000 / rates["eval"] + 1_500 * rates["latency"]) / 3600
    if work.rate == "cw":
        return None if "latency" not in rates else work.models * 1_000 * 3 * rates["latency"] / 3600
    if work.rate not in rates:
        return None
    return work.models * work.images * work.factor / rates[work.rate] / 3600


def render(rates: dict, report: dict | None) -> str:
    measured = report is not None and report.get("measured", False)
    source = ("from measured rates" if measured else "ESTIMATE from assumed rates" if report is None
              else "from a dry run's CPU rates: not GPU figures")
    lines = []
    if report is not None:
        d = report["device"]
        peak = datasheet_bf16_peak(d.get("name", ""))
        lines.append(f"Measured on {d.get('name')} (torch {d.get('torch')}, CUDA {d.get('cuda')}) "
                     f"on {report.get('created_utc', '?')}" + ("" if measured else " -- a DRY RUN, not GPU figures")
                     + ".")
        lines.append("")
        lines.append("| measurement (WRN-16-8, batch 256, synthetic CIFAR-shaped data) | value | |")
        lines.append("|---|---|---|")
        s = report["sections"]
        if "matmul" in s:
            sheet = f"; datasheet dense bf16 {peak / 1e12:.0f}" if peak else ""
            lines.append(f"| matmul bf16 / fp32 (IEEE), TFLOP/s | {s['matmul']['bf16'] / 1e12:.0f} / "
                         f"{s['matmul']['fp32'] / 1e12:.1f}{sheet} | measured |")
        for r in report.get("train", []):
            syncs = "n/a" if r["host_syncs_per_step"] is None else f"{r['host_syncs_per_step']:.2f}"
            mem = "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f} GiB"
            lines.append(f"| train {r['algorithm'].upper()}{' + torch.compile' if r['compile'] else ''} "
                         f"({r['precision']}), images/s | {r['images_per_s']:,.0f} (MFU "
                         f"{100 * r['mfu_vs_measured_matmul_of_its_precision']:.0f} % of its precision's matmul, "
                         f"{100 * r['mfu_vs_measured_bf16_matmul']:.0f} % of bf16; peak {mem}; host syncs/step "
                         f"{syncs}) | measured |")
        for name, label in (("eval", "evaluate (fp32), images/s"), ("dp_sgd", "DP-SGD (fp32 per-sample), images/s"),
                            ("cifar_recipe_epoch", "CIFAR recipe short epoch, images/s")):
            if name in s:
                lines.append(f"| {label} | {s[name]['images_per_s']:,.0f} | measured |")
        for name, r in s.get("ensembles", {}).items():
            lines.append(f"| {name.replace('_', ' ')}: model-epochs/s ({r['images_per_model']:,} images each) | "
                         f"{r['model_epochs_per_s']:.2f} | measured |")
        failed = s.get("gpu_tests", {}).get("failed")
        if "gpu_tests" in s and "passed" in s["gpu_tests"]:
            lines.append(f"| gpu-marked tests | {len(s['gpu_tests']['passed'])} passed, {len(failed)} failed | "
                         f"measured |")
        lines.append("")
    lines.append("| block of the paper profile | what | GPU hours | |")
    lines.append("|---|---|---:|---|")
    total = optional = 0.0
    for work in paper_plan():
        h = hours(work, rates)
        cell = "n/a" if h is None else f"{h:,.1f}"
        kind = "assumed factor, " + source if work.factor != 1.0 or work.rate in ("hsj", "cw") else source
        lines.append(f"| {work.block} | {work.what} | {cell} | {kind} |")
        if h is not None:
            if work.optional:
                optional += h
            else:
                total += h
    lines.append(f"| **paper profile** (without the options) | | **{total:,.1f}** | {source} |")
    lines.append(f"| options together | | {optional:,.1f} | {source} |")
    return "\n".join(lines)


def update_readme(path: Path, table: str) -> None:
    text = path.read_text()
    if MARK_START not in text or MARK_END not in text:
        raise ValueError(f"{path} has no {MARK_START} ... {MARK_END} block to replace")
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    path.write_text(f"{head}{MARK_START}\n{table}\n{MARK_END}{tail}")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="?", type=Path, help="a gpu_check JSON report")
    parser.add_argument("--assume-sgd", type=float, help="no report: SGD images/s (bf16)")
    parser.add_argument("--assume-sam", type=float, help="no report: SAM images/s (fp32)")
    parser.add_argument("--assume-dpsgd", type=float, help="no report: DP-SGD images/s")
    parser.add_argument("--assume-eval", type=float, help="no report: evaluation images/s (fp32)")
    parser.add_argument("--assume-latency", type=float, help="no report: seconds per one-image forward pass")
    parser.add_argument("--readme", type=Path, help="rewrite the table between the gpu-table markers")
    args = parser.parse_args(argv)
    if args.report is not None:
        report = json.loads(args.report.read_text())
        rates = rates_from_report(report)
    elif args.assume_sgd and args.assume_sam:
        report = None
        rates = {"sgd": args.assume_sgd, "twopass": args.assume_sam}
        if args.assume_dpsgd:
            rates["dpsgd"] = args.assume_dpsgd
        if args.assume_eval and args.assume_latency:
            rates["eval"], rates["latency"] = args.assume_eval, args.assume_latency
    else:
        parser.error("give a gpu_check JSON report, or --assume-sgd and --assume-sam")
    table = render(rates, report)
    if args.readme:
        update_readme(args.readme, table)
    print(table)
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
