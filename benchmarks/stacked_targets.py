"""Chapter 3's plain targets trained one by one against stacked as one ensemble per method (issue 16).

Workload: the ``03_privacy_tables`` entry of ``notebooks/params/default.yaml`` (its recipe on
its dataset: fashion_mlp on fashion_mnist_cpu, 784-128-10, 30 epochs; ``train_seeds`` seeds),
for the methods given (default SGD and SAM). For each method it trains the targets twice, into
two empty result folders: one by one (``train_targets(..., stack=False)``: ``run_experiment``
and ``train_classifier`` per target, as ``make book`` did before) and stacked
(``train_targets``: one :func:`~sharpmem_lib.ensemble.train_ensemble` per method through the
numba kernel), in alternating rounds (``--repeats``). It prints the best wall time and CPU
time (all threads) of each, their ratios, and how far the stacked targets
are from the one-by-one ones: the largest logit difference, the share of examples whose
predicted class differs, best epochs, and held-out accuracy. Figures, not a timed test.
Torch's and numba's thread count is the process's (``OMP_NUM_THREADS``; unset: all cores,
what ``make book`` uses); it is printed with the load.

    python benchmarks/stacked_targets.py                      # 6 SGD + 6 SAM fashion_mlp targets
    python benchmarks/stacked_targets.py --methods sgd --seeds 3
    python benchmarks/stacked_targets.py --quick              # seconds: smoke_mlp on digits (the tests)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from sharpmem_lib.data import load_dataset
from sharpmem_lib.experiments import experiment_config, train_targets

BOOK_DEFAULTS = Path(__file__).resolve().parents[1] / "notebooks" / "params" / "default.yaml"


def main(argv=None) -> dict:
    book = yaml.safe_load(BOOK_DEFAULTS.read_text())["03_privacy_tables"]
    (dataset, recipe), = book["recipes"].items()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke_mlp on digits, 2 seeds: seconds")
    parser.add_argument("--dataset", default=dataset)
    parser.add_argument("--recipe", default=recipe)
    parser.add_argument("--seeds", type=int, default=book["train_seeds"])
    parser.add_argument("--methods", nargs="+", default=["sgd", "sam"])
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds; each time is the best of them")
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.recipe, args.seeds, args.repeats = "digits", "smoke_mlp", 2, 1
    knobs = {k: book[k] for k in ("sam_rho", "sharpreg_rho", "sharpreg_lam", "sharpreg_xi")}
    load = os.getloadavg()
    print(f"{args.seeds} seeds x {args.methods} of {args.recipe} on {args.dataset}; torch threads "
          f"{torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start")
    y = np.asarray(load_dataset(args.dataset).y)
    report = {}
    for method in args.methods:
        configs = {s: experiment_config(args.recipe, args.dataset, method, s, **knobs) for s in range(args.seeds)}
        times, cpu, runs = {}, {}, {}
        for _ in range(args.repeats):  # alternating, best of the rounds: the machine is shared
            for way, stack in (("one by one", False), ("stacked", True)):
                with tempfile.TemporaryDirectory() as root:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    arts = train_targets(configs, root, stack=stack, progress=False)
                    wall, used = time.perf_counter() - start, time.process_time() - start_cpu
                    times[way], cpu[way] = min(times.get(way, wall), wall), min(cpu.get(way, used), used)
                    runs[way] = {s: (a.outputs(), a.status["best_epoch"]) if hasattr(a, "outputs") else None
                                 for s, a in arts.items()}
        dlogit, flips, same_best, dacc = 0.0, 0.0, 0, []
        for s in configs:
            single, stacked = runs["one by one"][s], runs["stacked"][s]
            if single is None or stacked is None:
                print(f"  seed {s}: diverged ({'one by one' if single is None else 'stacked'})")
                continue
            held_out = ~single[0]["member"] & ~single[0]["validation"]
            for which in ("final", "best"):
                a, b = single[0][f"logits_{which}"], stacked[0][f"logits_{which}"]
                dlogit = max(dlogit, float(np.abs(a - b).max()))
                flips = max(flips, float((a.argmax(1) != b.argmax(1)).mean()))
                if which == "final":
                    dacc.append(float((b.argmax(1) == y)[held_out].mean() - (a.argmax(1) == y)[held_out].mean()))
            same_best += single[1] == stacked[1]
        ratio = times["one by one"] / times["stacked"]
        print(f"{method}: one by one {times['one by one']:.1f} s ({times['one by one'] / args.seeds:.1f} s/target), "
              f"stacked {times['stacked']:.1f} s ({times['stacked'] / args.seeds:.1f} s/target): {ratio:.2f}x wall; "
              f"CPU time (all threads) {cpu['one by one']:.1f} s vs {cpu['stacked']:.1f} s: "
              f"{cpu['one by one'] / cpu['stacked']:.2f}x")
        print(f"  stacked vs one by one: max |logit difference| {dlogit:.2g}, at most {100 * flips:.3f} % of "
              f"examples change class, same best epoch for {same_best}/{len(configs)} seeds, held-out accuracy "
              f"difference (final) {min(dacc, default=0) * 100:+.3f} to {max(dacc, default=0) * 100:+.3f} points")
        report[method] = {"one_by_one_s": times["one by one"], "stacked_s": times["stacked"], "speedup": ratio,
                          "one_by_one_cpu_s": cpu["one by one"], "stacked_cpu_s": cpu["stacked"],
                          "max_logit_diff": dlogit, "max_flip_share": flips, "same_best_epoch": same_best}
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    total = sum(r["one_by_one_s"] for r in report.values()), sum(r["stacked_s"] for r in report.values())
    print(f"all: one by one {total[0]:.1f} s, stacked {total[1]:.1f} s: {total[0] / total[1]:.2f}x")
    return report


if __name__ == "__main__":
    main()
