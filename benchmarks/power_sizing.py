"""Sizing the default book by statistical power (issue 16), from a pilot run through the library.

Trains a few pilot targets per method with a candidate recipe on a CPU-sized dataset
(``fashion_mnist_cpu`` by default) through :func:`~sharpmem_lib.experiments.run_experiment`,
attacks them with :func:`~sharpmem_lib.privacy.evaluate_privacy` (the honest protocol's best
single-query attack, chosen on the attacker's data), and a few subset models through
:func:`~sharpmem_lib.subsampling.run_subsampling_experiment`. From these it prints:

* the generalization gap and the honest best attack's AUC against SGD targets (target: ≥ 0.60);
* per method, the standard deviation over training seeds of the paired difference
  method − SGD in honest attack accuracy, and the seeds a 95 % interval of half-width
  ≤ 1 point needs (:func:`~sharpmem_lib.stats.seeds_for_half_width`), with the half-width
  the chosen number of seeds gives;
* for the Feldman-Zhang subset models, the share of test points no pilot model got wrong;
  its extrapolation to N models by a power law fitted (log-log) to random sub-ensembles of
  the pilot; and the bound Σ(1 − p)^N / n from each point's pilot error rate p (points the
  pilot never misclassified count as never, so this errs high);
* the seconds each piece costs here, and the projected cost of the chosen sizes.

    python benchmarks/power_sizing.py                       # the fashion_mlp recipe, 3 pilot seeds
    python benchmarks/power_sizing.py --hidden 512 --epochs 60 --seeds 3
    python benchmarks/power_sizing.py --quick               # digits, seconds; a smoke run
    python benchmarks/power_sizing.py --recipe fashion_cnn --width 32 --methods sgd --seeds 1 --subset-models 0 \
        --cheap-label-only                                  # a CNN pilot without the 162-query label-only attack

Figures, not a timed test. Timings depend on the machine's load (print ``uptime`` beside them).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from sharpmem_lib.data import load_dataset
from sharpmem_lib.experiments import experiment_config, run_experiment
from sharpmem_lib.privacy import evaluate_privacy
from sharpmem_lib.recipes import Recipe, get_recipe
from sharpmem_lib.stats import seeds_for_half_width
from sharpmem_lib.subsampling import SubsamplingConfig, run_subsampling_experiment
from sharpmem_lib.train import TrainConfig


def pilot_targets(recipe: Recipe, dataset: str, methods: list[str], seeds: int, results_dir: str,
                  knobs: dict, which: str = "best", label_only: tuple | None = None) -> pd.DataFrame:
    """One row per (method, seed): honest best single-query attack (accuracy, AUC), accuracies, seconds.
    ``label_only``: :func:`~sharpmem_lib.privacy.evaluate_privacy`'s (perturbation, strengths, repeats);
    the single-query columns do not depend on it."""
    data = load_dataset(dataset)
    rows = []
    for method in methods:
        for seed in range(seeds):
            start = time.perf_counter()
            art = run_experiment(experiment_config(recipe, dataset, method, seed, **knobs), results_dir, progress=False)
            trained = time.perf_counter() - start
            start = time.perf_counter()
            res = evaluate_privacy(art, data, [0], label_only=label_only, which=which)
            attacked = time.perf_counter() - start
            honest = res[res.protocol == "honest"].iloc[0]
            rows.append({"method": method, "seed": seed, "train_acc": honest.train_acc, "test_acc": honest.test_acc,
                         "attack_acc": honest.single_query, "attack_auc": honest.single_auc,
                         "attack": honest.best_single_attack, "best_epoch": art.status.get("best_epoch"),
                         "train_s": trained, "attack_s": attacked})
    return pd.DataFrame(rows)


def paired_power(rows: pd.DataFrame, chosen_seeds: int, half_width: float = 1.0) -> pd.DataFrame:
    """Per method: SD over seeds of (method − SGD) honest attack accuracy in points, the
    seeds for a 95 % half-width ≤ ``half_width``, and the half-width ``chosen_seeds`` give."""
    from scipy import stats as st

    acc = rows.pivot(index="seed", columns="method", values="attack_acc") * 100
    out = []
    for method in acc.columns.drop("sgd"):
        diff = acc[method] - acc["sgd"]
        sd = float(diff.std(ddof=1))
        hw = float(st.t.ppf(0.975, chosen_seeds - 1) * sd / math.sqrt(chosen_seeds))
        out.append({"method": method, "pilot_pairs": len(diff), "mean_diff_pts": float(diff.mean()),
                    "sd_diff_pts": sd, "seeds_needed": seeds_for_half_width(sd, half_width),
                    f"half_width_at_{chosen_seeds}_seeds": hw})
    return pd.DataFrame(out).set_index("method")


def pilot_subsets(dataset: str, hidden: tuple[int, ...], epochs: int, batch_size: int, lr: float, n_models: int,
                  chosen_models: int, results_dir: str) -> dict:
    """Pilot subset models: seconds per model, and the share of test points never misclassified
    by the pilot and, extrapolated, by ``chosen_models`` models."""
    config = SubsamplingConfig(dataset, "mlp", TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr),
                               n_models=n_models, model_kwargs={"hidden": tuple(hidden)})
    start = time.perf_counter()
    runs, train_ids, test_ids = run_subsampling_experiment(config, results_dir, progress=False)
    seconds = time.perf_counter() - start
    wrong = 1.0 - runs.correct_test.mean(0)  # per test point: the pilot's error rate
    upper = float(np.mean((1.0 - wrong) ** chosen_models))  # points never wrong in the pilot count as never
    # the never-misclassified share falls like a power of the number of models: fit it on random
    # sub-ensembles of the pilot (n = 10 .. n_models) in log-log and extrapolate to chosen_models
    rng = np.random.default_rng(0)
    sizes = [n for n in (10, 20, 50, 100, 200, 500) if n <= n_models] or [n_models]
    never = [np.mean([np.mean(runs.correct_test[rng.choice(n_models, n, replace=False)].all(0)) for _ in range(20)])
             for n in sizes]
    fitted = float("nan")
    if len(sizes) >= 2 and min(never) > 0:
        slope, intercept = np.polyfit(np.log(sizes), np.log(never), 1)
        fitted = float(np.exp(intercept + slope * np.log(chosen_models)))
    return {"models": n_models, "hidden": list(hidden), "epochs": epochs, "n_train": len(train_ids),
            "n_test": len(test_ids), "seconds": seconds, "s_per_model": seconds / n_models,
            "subset_test_acc": float(runs.correct_test.mean()),
            "never_wrong_pilot": float(np.mean(wrong == 0)),
            f"never_wrong_power_law_at_{chosen_models}": fitted,
            f"never_wrong_upper_bound_at_{chosen_models}": upper,
            f"projected_s_at_{chosen_models}": seconds / n_models * chosen_models}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist_cpu")
    parser.add_argument("--recipe", default="fashion_mlp", help="a recipe name; --hidden/--epochs/... override it")
    parser.add_argument("--hidden", type=int, nargs="+", help="MLP: hidden widths; cnn: one hidden FC width (0: none)")
    parser.add_argument("--width", type=int, help="cnn: SmallCNN's width")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--milestones", type=int, nargs="*", help="epochs where the learning rate drops x lr_gamma")
    parser.add_argument("--methods", nargs="+", default=["sgd", "sam", "sharpreg"])
    parser.add_argument("--seeds", type=int, default=3, help="pilot training seeds per method")
    parser.add_argument("--chosen-seeds", type=int, default=5, help="the book's training seeds")
    parser.add_argument("--subset-models", type=int, default=64, help="pilot subset models (0: skip)")
    parser.add_argument("--chosen-models", type=int, default=2000, help="the book's subset models")
    parser.add_argument("--subset-hidden", type=int, nargs="+", default=[32])
    parser.add_argument("--subset-epochs", type=int, default=2)
    parser.add_argument("--subset-batch-size", type=int, default=64)
    parser.add_argument("--subset-lr", type=float, default=0.05)
    parser.add_argument("--results-dir", default="", help="a results store (default: a fresh temporary one)")
    parser.add_argument("--which", default="best", choices=["best", "final"],
                        help="the checkpoint attacked: best validation accuracy or the last epoch")
    parser.add_argument("--quick", action="store_true", help="digits, tiny sizes: seconds")
    parser.add_argument("--cheap-label-only", action="store_true",
                        help="images: the label-only attack with 0-pixel shifts (2 queries per image, not 162), "
                             "for pilots of the single-query attacks (their figures do not change)")
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.recipe, args.seeds, args.chosen_seeds = "digits", "smoke_mlp", 3, 5
        args.methods = ["sgd", "sam"]
        args.subset_models, args.chosen_models, args.subset_epochs, args.subset_hidden = 8, 100, 1, [8]
    recipe = get_recipe(args.recipe)
    changes = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                                 ("lr_milestones", None if args.milestones is None else tuple(args.milestones)))
               if v is not None}
    model_kwargs = dict(recipe.model_kwargs)
    if args.hidden is not None:
        model_kwargs["hidden"] = int(args.hidden[0]) if recipe.model == "cnn" else tuple(args.hidden)
    if args.width is not None:
        if recipe.model != "cnn":
            parser.error(f"--width is SmallCNN's; recipe {recipe.name!r} builds model {recipe.model!r}")
        model_kwargs["width"] = args.width
    recipe = replace(recipe, name=f"{recipe.name}_pilot" if changes or model_kwargs != recipe.model_kwargs
                     else recipe.name, train=replace(recipe.train, **changes), model_kwargs=model_kwargs)
    label_only = ("translations", [0], 1) if args.cheap_label_only else None
    with tempfile.TemporaryDirectory(prefix="sharpmem-power-") as tmp:
        results_dir = args.results_dir or tmp
        rows = pilot_targets(recipe, args.dataset, args.methods, args.seeds, results_dir, {}, which=args.which,
                            label_only=label_only)
        subsets = (pilot_subsets(args.dataset, tuple(args.subset_hidden), args.subset_epochs, args.subset_batch_size,
                                 args.subset_lr, args.subset_models, args.chosen_models, results_dir)
                   if args.subset_models else None)
    pd.set_option("display.width", 160)
    print(f"load average {os.getloadavg()[0]:.1f}; dataset {args.dataset}; recipe {recipe.model} "
          f"{dict(recipe.model_kwargs)} epochs {recipe.train.epochs} batch {recipe.train.batch_size} "
          f"lr {recipe.train.lr} "
          f"milestones {list(recipe.train.lr_milestones)} x{recipe.train.lr_gamma}; "
          f"{args.seeds} pilot seeds per method")
    print(rows.round(4).to_string(index=False))
    sgd = rows[rows.method == "sgd"]
    gap = float((sgd.train_acc - sgd.test_acc).mean() * 100)
    print(f"SGD targets: train {sgd.train_acc.mean():.1%}, test {sgd.test_acc.mean():.1%}, gap {gap:.1f} points; "
          f"honest best attack AUC {sgd.attack_auc.mean():.3f} (min {sgd.attack_auc.min():.3f}; target >= 0.60), "
          f"accuracy {sgd.attack_acc.mean():.1%}")
    power = paired_power(rows, args.chosen_seeds) if "sgd" in args.methods and len(args.methods) > 1 else None
    if power is not None:
        print("paired differences in honest attack accuracy (points), 95 % CI half-width target <= 1.0:")
        print(power.round(3).to_string())
    per_method = rows.groupby("method").train_s.mean()
    print("seconds per target (training, under this load): " +
          ", ".join(f"{m} {s:.1f}" for m, s in per_method.items()) +
          f"; attack evaluation {rows.attack_s.mean():.1f} per target and split seed")
    print(f"projected Table 1 training at {args.chosen_seeds} seeds: {per_method.sum() * args.chosen_seeds:.0f} s")
    if subsets:
        print("subset models (Feldman-Zhang):", {k: (round(v, 4) if isinstance(v, float) else v)
                                                  for k, v in subsets.items()})
    return {"targets": rows, "power": power, "subsets": subsets, "gap": gap}


if __name__ == "__main__":
    main()
