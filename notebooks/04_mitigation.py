# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Mitigation: sharpness as a privacy knob, SharpReg, and defenses side by side
#
# Paper §5, Figs. 4 and 5. If flat minima (SAM) memorize more and leak more, the paper
# asks, do *sharper* minima memorize less? It trains with the sharpness objective
#
# $$\min_w\; L(w) - \lambda \Big[\max_{\|\epsilon\| \le \rho} L(w+\epsilon) - L(w)\Big] \qquad (4)$$
#
# whose weight λ turns the knob (λ = 0 is SGD), and proposes SharpReg, which also keeps the
# training loss away from zero:
#
# $$\min_w\; (1 + \lambda - \xi)\, L(w) - \lambda \max_{\|\epsilon\| \le \rho} L(w+\epsilon). \qquad (6)$$
#
# Both are the optimizer of `sharpmem_lib.optim` with gradient coefficients
# (1 + λ, −λ) and (1 + λ − ξ, −λ) on (g(w), g(w + ε)). This chapter sweeps λ and ξ,
# compares SharpReg with the defenses the paper compares it with (AdvReg
# {cite:p}`nasr2018advreg`, MemGuard {cite:p}`jia2019memguard`, SELENA
# {cite:p}`tang2022selena`) and with cheap baselines (early stopping, label smoothing,
# DP-SGD {cite:p}`abadi2016dpsgd` through Opacus), and measures what the paper only
# assumes: whether these models really sit in sharper or flatter minima.
#
# Attack accuracies are the best single-query and the label-only attack of chapter 3 under
# both evaluation protocols (honest, and SELENA's, which is comparable with the paper).

# %% tags=["remove-cell"]
# Colab, Binder or a fresh kernel: install sharpmem from its repository when it is missing.
# Training then uses the GPU whenever torch sees one (sharpmem_lib.train.select_device).
import importlib.util
import subprocess
import sys

REPOSITORY = "https://github.com/sharpmem/sharpmem"  # _config.yml's repository.url, written here by `make sync`
if importlib.util.find_spec("sharpmem_lib") is None:
    if REPOSITORY == "https://github.com/sharpmem/sharpmem":
        raise RuntimeError("REPOSITORY is still the placeholder github.com/sharpmem/sharpmem, where nothing is "
                           "published: set repository.url in _config.yml to your clone or fork and run `make sync` "
                           "(or edit REPOSITORY in this cell)")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    f"sharpmem[defenses,attacks] @ git+{REPOSITORY}@main"], check=True)

# %% tags=["parameters"]
profile = "default"  # which notebooks/params/<profile>.yaml produced this run
dataset = "digits"
model = "mlp"
hidden = [128]  # MLP widths (as chapter 3, whose cached targets are reused)
epochs = 60
lr = 0.05
batch_size = 32
momentum = 0.9
weight_decay = 0.0
lr_milestones = []
augment = False
sharpreg_rho = 0.01  # the paper's radius for eq. 4 and SharpReg (its footnote 4)
lams = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]  # Fig. 4 (lambda 0 is SGD)
sharpreg_lam = 1.5  # Fig. 5, as the paper: (rho, lambda, xi) of (0.01, 1.5, 0.3)
sharpreg_xi = 0.3
xis = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5]  # Fig. 5b; too large a xi breaks training (see text)
sam_rho = 0.1
train_seeds = 2  # targets per setting (the paper trains one)
split_seeds = 3  # attack data splits per target
label_smoothing = 0.1
advreg_alpha = 1.0  # weight of the inference model's gain (Nasr et al.'s lambda)
selena_models = 6  # SELENA's K (the paper's code: 25)
selena_excluded = 3  # SELENA's L (the paper's code: 10)
dp_noise = 1.0  # DP-SGD noise multiplier
dp_clip = 1.0  # DP-SGD per-example clipping norm
bucket_hidden = [64]  # chapter 2's subset models (cached there), for the buckets
bucket_models = 1000
bucket_epochs = 10
bucket_lr = 0.05
influence_file = ""  # Feldman & Zhang's file, for cifar100 (see chapter 2)
sharpness_iters = 50  # power iterations for the top Hessian eigenvalue
data_dir = ""
results_dir = ""

# %% tags=["remove-cell"]
# Stop on an unknown or bad parameter, or a missing data file, before anything trains.
from sharpmem_lib.parameters import check_notebook_parameters

check_notebook_parameters(globals(), "04_mitigation")

# %% tags=["hide-input", "remove-stderr"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from sharpmem_lib.data import load_dataset
from sharpmem_lib.defenses import MemGuard
from sharpmem_lib.buckets import bucket_accuracy_table, memorization_buckets
from sharpmem_lib.experiments import ExperimentConfig
from sharpmem_lib.plots import bucket_accuracy_figure, sharpness_figure, show_figure, sweep_figure, tradeoff_figure
from sharpmem_lib.privacy import evaluate_runs, summarize
from sharpmem_lib.provenance import provenance_table
from sharpmem_lib.report import glue_claim
from sharpmem_lib.report import (at_ceiling, bucket_pattern, defense_verdict, dp_gap_note, family_note, glue,
                                 sharpness_verdict, sharpness_word, trend, verdict_table)
from sharpmem_lib.stats import holm_verdicts, paired_gain, paired_tests_by, trend_test
from sharpmem_lib.sharpness import artifact_sharpness
from sharpmem_lib.subsampling import SubsamplingConfig
from sharpmem_lib.train import TrainConfig
from sharpmem_lib.validation import check_positive

recipe = dict(epochs=epochs, lr=lr, batch_size=batch_size, momentum=momentum, weight_decay=weight_decay,
              lr_milestones=tuple(lr_milestones), augment=augment)
model_kwargs = {"hidden": tuple(hidden)} if model in ("mlp", "fc") else {}


def target(seed: int, defense: str = "none", defense_kwargs: dict | None = None, **train) -> ExperimentConfig:
    return ExperimentConfig(dataset, model, TrainConfig(**recipe, **train, seed=seed), model_kwargs=model_kwargs,
                            defense=defense, defense_kwargs=defense_kwargs or {})


sgd, sam = dict(algorithm="sgd"), dict(algorithm="sam", rho=sam_rho)
sharpreg = dict(algorithm="sharpreg", rho=sharpreg_rho, lam=sharpreg_lam, xi=sharpreg_xi)
seeds = range(train_seeds)
lam_runs = [{"config": target(s, **(sgd if lam == 0 else dict(algorithm="sharp", rho=sharpreg_rho, lam=lam))),
             "method": f"λ = {lam:g}", "lam": lam, "seed": s} for lam in lams for s in seeds]
xi_runs = [{"config": target(s, algorithm="sharpreg", rho=sharpreg_rho, lam=sharpreg_lam, xi=xi),
            "method": f"ξ = {xi:g}", "xi": xi, "seed": s} for xi in xis for s in seeds]
method_runs = [{"config": target(s, **kw), "method": name, "seed": s}
               for name, kw in (("sgd", sgd), ("sam", sam), ("sharpreg", sharpreg)) for s in seeds]
defense_runs = [
    *({"config": target(s, **sgd), "method": "SGD", "seed": s} for s in seeds),
    *({"config": target(s, **sharpreg), "method": "SharpReg", "seed": s} for s in seeds),
    *({"config": target(s, **sgd, label_smoothing=label_smoothing), "method": f"label smoothing {label_smoothing:g}",
       "seed": s} for s in seeds),
    *({"config": target(s, "advreg", {"alpha": advreg_alpha}, **sgd), "method": f"AdvReg α={advreg_alpha:g}",
       "seed": s} for s in seeds),
    *({"config": target(s, "selena", {"n_models": selena_models, "n_excluded": selena_excluded}, **sgd),
       "method": f"SELENA K={selena_models}, L={selena_excluded}", "seed": s} for s in seeds),
    *({"config": target(s, "dpsgd", {"noise_multiplier": dp_noise, "max_grad_norm": dp_clip}, **sgd),
       "method": f"DP-SGD σ={dp_noise:g}, C={dp_clip:g}", "seed": s} for s in seeds),
    *({"config": target(s, **sgd), "method": "MemGuard", "seed": s, "output_defense": lambda: MemGuard(seed=0)}
      for s in seeds),
]
buckets_config = SubsamplingConfig(dataset, model,
                                   TrainConfig(epochs=bucket_epochs, batch_size=batch_size, lr=bucket_lr),
                                   n_models=bucket_models, model_kwargs={"hidden": tuple(bucket_hidden)})
opts = dict(results_dir=results_dir or None, data_dir=data_dir or None)
for name, value in (("train_seeds", train_seeds), ("split_seeds", split_seeds), ("sharpness_iters", sharpness_iters)):
    check_positive(name, value, integer=True)  # before anything trains

# %% tags=["hide-input", "remove-stderr"]
data = load_dataset(dataset, data_dir=data_dir or None)
splits = list(range(split_seeds))
lam_results, lam_arts = evaluate_runs(lam_runs, data, splits, **opts)
xi_results, xi_arts = evaluate_runs(xi_runs, data, splits, **opts)
method_results, method_arts = evaluate_runs(method_runs, data, splits, **opts)
defense_results, defense_arts = evaluate_runs(defense_runs, data, splits, **opts)
mb = memorization_buckets(buckets_config, **opts, influence_file=influence_file or None)


def bucket_table(runs, artifacts, which):
    arts = {(run["method"], run["seed"]): artifacts[i] for i, run in enumerate(runs) if i in artifacts}
    return bucket_accuracy_table(arts, mb.test_ids, data.y, mb.bucket, which=which)


glue("bucket_source", mb.source)

# %% [markdown]
# Buckets come from chapter 2's influence estimates ({glue:text}`bucket_source`).
#
# ## Figure 4a: sharper minima, per memorization bucket
#
# Test accuracy per bucket (bucket 1 = lowest influence entropy = test points that lean on
# memorized training points), for each λ of eq. 4 at ρ = 0.01, final weights. The paper
# sees accuracy drop with λ mostly in the low buckets: sharper minima memorize less.

# %% tags=["remove-input"]
lam_buckets = bucket_table(lam_runs, lam_arts, "final")
show_figure(bucket_accuracy_figure(lam_buckets, baseline="λ = 0"), "4a",
            "(a) Test accuracy per memorization bucket for each λ of eq. 4 (last epoch), mean ± standard deviation "
            "over seeds; (a') each λ's change against λ = 0 per bucket, paired by seed, with 95 % intervals.",
            alt="Grouped bars of test accuracy in buckets 1 to 5 for each value of lambda, and the changes against "
                "lambda = 0 per bucket with error bars")
top_lam = f"λ = {max(lams):g}"
lam_gain = paired_gain(lam_buckets, top_lam, "λ = 0", "acc", by="bucket")
# the chapter's family of tests with the paper's expected signs; Holm-adjusted together in the last section
family = {("lam", b): t for b, t in paired_tests_by(lam_buckets, top_lam, "λ = 0", "acc", "bucket").items()}
expected = {k: -1 for k in family}  # sharper minima lose accuracy
glue("lam_bucket1", f"{100 * lam_gain.set_index('bucket').loc[1, 'gain']:+.1f}")
glue("lam_bucket5", f"{100 * lam_gain.set_index('bucket').loc[5, 'gain']:+.1f}")

# %% [markdown]
# With the largest λ, the change against SGD is {glue:text}`lam_bucket1` points in bucket 1
# and {glue:text}`lam_bucket5` in bucket 5. {glue:text}`lam_bucket_pattern`
#
# ## Figures 4b, 4c: λ as a knob, without and with early stopping
#
# Test accuracy and best attack accuracy against λ, for the last epoch's weights (4b) and
# for the best-validation weights (4c).

# %% tags=["remove-input"]
lam_summary = summarize(lam_results, ["lam", "which", "protocol"])
for which, panel in (("final", "Fig. 4b (last epoch):"), ("best", "Fig. 4c (early stopping):")):
    show_figure(sweep_figure(lam_summary[lam_summary.which == which], "lam", "λ (eq. 4), ρ = %g" % sharpreg_rho,
                             title=panel), "4b" if which == "final" else "4c",
                f"Test accuracy (left) and best attack accuracy (right; single- and multi-query, both protocols) "
                f"against λ of eq. 4, {'last-epoch' if which == 'final' else 'early-stopped (best validation)'} "
                "models, mean ± standard deviation over training and split seeds; red crosses mark diverged runs.",
                alt="Two line charts against lambda: test accuracy, and attack accuracy for single- and multi-query "
                    "attacks under the honest and SELENA protocols")
per_run = lam_results[(lam_results.protocol == "selena") & (lam_results.which == "final")]
per_run = per_run.groupby(["lam", "seed"])[["test_acc", "single_query", "multi_query"]].mean().reset_index()
for m in ("test_acc", "single_query", "multi_query"):  # the paper: all fall as λ grows; permuted within seeds
    family[("lam trend", m)], expected[("lam trend", m)] = trend_test(per_run["lam"], per_run[m], per_run["seed"]), -1

# %% [markdown]
# The paper: larger λ lowers test accuracy and attack accuracy together. Here, last epoch:
# {glue:text}`lam_test_trend` {glue:text}`lam_attack_trend` {glue:text}`lam_label_trend`
#
# ## Is the minimum actually sharper? Measured sharpness
#
# The paper takes for granted that eq. 4 finds sharper minima and SAM flatter ones. We
# measure, for each final model, the top eigenvalue of the Hessian of the training loss
# {cite:p}`keskar2017large`
# (power iteration on Hessian-vector products) and the first-order SAM sharpness
# max‖ε‖≤ρ L(w + ε) − L(w), the bracket of eq. 4, at ρ = 0.01 and 0.1.

# %% tags=["hide-input", "remove-stderr"]
sharp_rows = []
for runs, arts in ((method_runs, method_arts), (lam_runs, lam_arts)):
    for i, run in enumerate(runs):
        if i in arts:
            sharp_rows.append({"method": run["method"], "seed": run["seed"], "lam": run.get("lam", np.nan),
                               **artifact_sharpness(arts[i], data, "final", rhos=(0.01, 0.1), iters=sharpness_iters)})
sharp = pd.DataFrame(sharp_rows)

# %% tags=["remove-input"]
show_figure(sharpness_figure(sharp.drop_duplicates(["method", "seed"]), columns=("lambda_max", "sam_sharpness@0.01",
                                                                                        "sam_sharpness@0.1")), "S4.1",
            "Measured sharpness of each method's trained model: the top Hessian eigenvalue of the training loss and "
            "SAM's sharpness at ρ = 0.01 and 0.1, one dot per seed, bars at the mean, log scale (not in the paper).",
            alt="Three bar charts on log scales, one per sharpness measure, a bar per method with one dot per seed")
display(sharp.groupby("method", sort=False)[["train_loss", "lambda_max", "sam_sharpness@0.01", "sam_sharpness@0.1"]]
        .mean().style.format("{:.4g}"))
m = sharp.groupby("method")["lambda_max"].mean()
glue("lmax_sgd", f"{m['sgd']:.3g}")
glue("lmax_sam", f"{m['sam']:.3g}")
glue("lmax_sharpreg", f"{m['sharpreg']:.3g}")
lam_sharp = sharp.dropna(subset=["lam"])
by_seed = sharp.drop_duplicates(["method", "seed"]).assign(what="lambda_max")
for name, sign in (("sam", -1), ("sharpreg", 1)):  # the paper's premise: SAM flatter, SharpReg sharper
    family[("sharpness", name)] = paired_tests_by(by_seed, name, "sgd", "lambda_max", "what")["lambda_max"]
    expected[("sharpness", name)] = sign
family[("lam trend", "lambda_max")] = trend_test(lam_sharp["lam"], lam_sharp["lambda_max"], lam_sharp["seed"])
expected[("lam trend", "lambda_max")] = 1

# %% [markdown]
# Top Hessian eigenvalue, mean over seeds: SGD {glue:text}`lmax_sgd`, SAM
# {glue:text}`lmax_sam` ({glue:text}`sam_flatter` than SGD), SharpReg
# {glue:text}`lmax_sharpreg` ({glue:text}`sharpreg_sharper` than SGD).
# {glue:text}`sam_sharpness_verdict` {glue:text}`sharpreg_sharpness_verdict`
# {glue:text}`lam_sharpness_trend` Sharpness measured by the top eigenvalue depends on the
# parametrization {cite:p}`dinh2017sharp`, and near-zero training loss makes every measure small,
# so these numbers say where each optimizer stopped, not how it generalizes.
#
# ## Figure 5a: SharpReg per bucket
#
# SGD, SAM and SharpReg (eq. 6) per bucket, best-validation weights as in chapter 3's
# Table 1. SharpReg runs at (ρ, λ, ξ) = {glue:text}`sr_params`. We keep the paper's values
# rather than tune them here: tuning on these data would need a protocol of its own, and
# the sweeps of Figs. 4 and 5b show how the results move with λ and ξ.

# %% tags=["remove-input"]
glue("sr_params", f"({sharpreg_rho:g}, {sharpreg_lam:g}, {sharpreg_xi:g})")
m_buckets = bucket_table(method_runs, method_arts, "best")
show_figure(bucket_accuracy_figure(m_buckets), "5a",
            "(a) Test accuracy per memorization bucket for SGD and SharpReg (eq. 6), mean ± standard deviation over "
            "seeds; (a') SharpReg's change against SGD per bucket, paired by seed, with 95 % intervals.",
            alt="Grouped bars of test accuracy in buckets 1 to 5 for SGD and SharpReg, and SharpReg's change per "
                "bucket with error bars")
sr_gain = paired_gain(m_buckets, "sharpreg", "sgd", "acc", by="bucket").set_index("bucket")
glue("sr_bucket1", f"{100 * sr_gain.loc[1, 'gain']:+.1f}")
glue("sr_bucket5", f"{100 * sr_gain.loc[5, 'gain']:+.1f}")
for b, t in paired_tests_by(m_buckets, "sharpreg", "sgd", "acc", "bucket").items():
    family[("sharpreg", b)], expected[("sharpreg", b)] = t, -1  # the paper: SharpReg loses, most in bucket 1

# %% [markdown]
# SharpReg − SGD: {glue:text}`sr_bucket1` points in bucket 1, {glue:text}`sr_bucket5` in
# bucket 5. The paper: the loss concentrates in the low buckets. Here:
# {glue:text}`sr_bucket_pattern`
#
# ## Figure 5b: the ξ knob
#
# SharpReg at (ρ, λ) = (0.01, {glue:text}`sr_lam`) against ξ, last-epoch weights. The
# update direction is (1 + λ − ξ) g(w) − λ g(w + ε), whose coefficients sum to 1 − ξ: at
# ξ = 1 only the sharpness term's gradient is left, and beyond it the step climbs the
# loss. The paper warns that too large a ξ breaks training. Runs that diverge are marked in
# the figure; none is dropped.

# %% tags=["remove-input"]
glue("sr_lam", f"{sharpreg_lam:g}")
xi_summary = summarize(xi_results, ["xi", "which", "protocol"])
show_figure(sweep_figure(xi_summary[xi_summary.which == "final"], "xi",
                         "ξ (eq. 6), ρ = %g, λ = %g" % (sharpreg_rho, sharpreg_lam), title="Fig. 5b:"), "5b",
            "Test accuracy (left) and best attack accuracy (right) against ξ of SharpReg (eq. 6), last-epoch models, "
            "mean ± standard deviation over training and split seeds; red crosses mark diverged runs.",
            alt="Two line charts against xi: test accuracy, and attack accuracy for single- and multi-query attacks "
                "under both protocols")
diverged = xi_results.groupby("xi")["diverged"].any()
glue("xi_diverged", ", ".join(f"{x:g}" for x in diverged[diverged].index) or "none")
xi_ok = xi_summary[(xi_summary.which == "final") & (xi_summary.protocol == "honest")].set_index("xi")
collapsed = xi_ok[xi_ok["test_acc_mean"] < 2.0 / data.num_classes].index
glue("xi_collapsed", ", ".join(f"{x:g}" for x in collapsed) or "none")
per_xi = xi_results[(xi_results.protocol == "selena") & (xi_results.which == "final") & ~xi_results.diverged]
per_xi = (per_xi[~per_xi["xi"].isin(collapsed)].groupby(["xi", "seed"])[["test_acc", "single_query"]]
          .mean().reset_index())
for m in ("test_acc", "single_query"):  # the paper: larger ξ trades test accuracy for a weaker attack
    family[("xi trend", m)], expected[("xi trend", m)] = trend_test(per_xi["xi"], per_xi[m], per_xi["seed"]), -1

# %% [markdown]
# Diverged (non-finite loss) at ξ = {glue:text}`xi_diverged`; collapsed to near-chance
# accuracy without diverging at ξ = {glue:text}`xi_collapsed`. Over the settings that
# trained: {glue:text}`xi_test_trend` {glue:text}`xi_attack_trend`
#
# ## Figure 5c: SharpReg against defenses
#
# Each point: test accuracy against the best attack accuracy, mean ± std over training and
# split seeds, last-epoch weights, except "early stopping" (SGD's best-validation weights).
# Lower right is better. The defenses' settings are in the parameters cell; MemGuard keeps
# every label by construction, so the label-only attack sees the undefended SGD model.

# %% tags=["remove-input"]
early = defense_results[(defense_results.method == "SGD") & (defense_results.which == "best")]
table = pd.concat([defense_results[defense_results.which == "final"], early.assign(method="early stopping (SGD)")])
d_summary = summarize(table, ["method", "protocol"])
for protocol in ("honest", "selena"):
    show_figure(tradeoff_figure(d_summary, protocol=protocol), "5c" if protocol == "selena" else "S4.2",
                f"Test accuracy against best attack accuracy (single-query left, label-only right) for SharpReg and "
                f"each defense, {protocol} protocol, mean ± standard deviation; lower right is better"
                + (" (the paper's protocol)." if protocol == "selena" else " (not in the paper)."),
                alt="Two scatter plots with error bars of attack accuracy against test accuracy, one point per method "
                    "or defense")
show = d_summary.set_index(["method", "protocol"])[["test_acc_mean", "single_query_mean", "multi_query_mean"]]
display((100 * show.unstack("protocol")).round(2).rename(columns={
    "test_acc_mean": "test acc (%)", "single_query_mean": "single-query (%)", "multi_query_mean": "label-only (%)"}))
eps = [h["epsilon"] for i, r in enumerate(defense_runs) if r["method"].startswith("DP-SGD") and i in defense_arts
       for h in defense_arts[i].history[-1:]]
glue("dp_epsilon", f"{np.mean(eps):.3g}" if eps else "n/a")
ds = d_summary[d_summary.protocol == "selena"].set_index("method")
ranked = ds.sort_values("single_query_mean")
glue("lowest_attack", f"{ranked.index[0]} ({100 * ranked['single_query_mean'].iloc[0]:.1f} %)")
glue("sgd_attack", f"{100 * ds.loc['SGD', 'single_query_mean']:.1f} %")
glue("sharpreg_attack", f"{100 * ds.loc['SharpReg', 'single_query_mean']:.1f} %")
glue("sgd_acc", f"{100 * ds.loc['SGD', 'test_acc_mean']:.1f} %")
glue("sharpreg_acc", f"{100 * ds.loc['SharpReg', 'test_acc_mean']:.1f} %")
glue("highest_attack", f"{ranked.index[-1]} ({100 * ranked['single_query_mean'].iloc[-1]:.1f} %)")
dh = d_summary[d_summary.protocol == "honest"]
glue("honest_range", f"{100 * dh['single_query_mean'].min():.1f} % and {100 * dh['single_query_mean'].max():.1f} %")
dp_selena = ds.filter(like="DP-SGD", axis=0)["single_query_mean"].mean()
dp_honest = dh.set_index("method").filter(like="DP-SGD", axis=0)["single_query_mean"].mean()
glue("dp_selena", f"{100 * dp_selena:.1f} %")
glue("dp_honest", f"{100 * dp_honest:.1f} %")
glue("dp_gap_note", dp_gap_note(dp_selena, dp_honest))
# pairwise against SGD, paired by seed: honest best single-query attack (the paper: a defense lowers it)
honest = table[table.protocol == "honest"].groupby(["method", "seed"])["single_query"].mean().reset_index()
for name in [n for n in honest["method"].unique() if n != "SGD"]:
    family[("defense", name)] = paired_tests_by(honest.assign(what="attack"), name, "SGD", "single_query",
                                                "what")["attack"]
    expected[("defense", name)] = -1

# %% [markdown]
# Under SELENA's protocol the best single-query attack reaches {glue:text}`sgd_attack`
# against SGD (test accuracy {glue:text}`sgd_acc`) and {glue:text}`sharpreg_attack` against
# SharpReg (test accuracy {glue:text}`sharpreg_acc`); the lowest attack accuracy belongs to
# {glue:text}`lowest_attack`, the highest to {glue:text}`highest_attack`. DP-SGD's models
# spend ε = {glue:text}`dp_epsilon` (δ = 1e-5, RDP accountant); against them SELENA's
# protocol credits the best single-query attack with {glue:text}`dp_selena`, the honest
# protocol with {glue:text}`dp_honest`. {glue:text}`dp_gap_note` Under the honest protocol
# every method's best single-query attack lies between {glue:text}`honest_range`.
# {glue:text}`defense_verdict`
#
# ## This chapter's tests, corrected for multiple comparisons
#
# {glue:text}`family_note`

# %% tags=["remove-input"]
verdicts = holm_verdicts(family, expected)
glue_claim("lam_attack", verdicts[("lam trend", "single_query")])  # the results page's verdict table
glue("family_note", family_note(max(v.family_size for v in verdicts.values())))
at_top = at_ceiling(lam_buckets)
glue("lam_bucket_pattern", bucket_pattern(lam_gain, verdicts[("lam", 1)], top_lam, expect="loss", at_ceiling=at_top))
glue("sr_bucket_pattern", bucket_pattern(sr_gain.reset_index(), verdicts[("sharpreg", 1)], "sharpreg", expect="loss",
                                         at_ceiling=at_ceiling(m_buckets)))
for knob, m, what, claim in (
        ("lam", "test_acc", "Test accuracy", "larger λ lowers test accuracy"),
        ("lam", "single_query", "The best single-query attack (SELENA's protocol)", "larger λ lowers attack accuracy"),
        ("lam", "multi_query", "The label-only attack", "larger λ lowers attack accuracy"),
        ("xi", "test_acc", "Test accuracy", "larger ξ costs test accuracy"),
        ("xi", "single_query", "The best single-query attack", "larger ξ lowers attack accuracy")):
    key = {"test_acc": "test", "single_query": "attack", "multi_query": "label"}[m]
    glue(f"{knob}_{key}_trend", trend(verdicts[(f"{knob} trend", m)], what, "λ" if knob == "lam" else "ξ", claim))
glue("lam_sharpness_trend", trend(verdicts[("lam trend", "lambda_max")], "The top Hessian eigenvalue", "λ",
                                  "eq. 4 finds sharper minima as λ grows"))
for name, key in (("sam", "sam_flatter"), ("sharpreg", "sharpreg_sharper")):
    glue(key, sharpness_word(verdicts[("sharpness", name)]))
    glue(f"{name}_sharpness_verdict", sharpness_verdict(verdicts[("sharpness", name)], name))
glue("defense_verdict", defense_verdict({k[1]: v for k, v in verdicts.items() if k[0] == "defense"}))
display(verdict_table(verdicts, {k: f"{k[0]}: {k[1]}" for k in verdicts},
                      raw=[k for k in verdicts if k[0] == "sharpness"]))

# %% [markdown]
# ## Provenance

# %% tags=["remove-input"]
display(provenance_table(profile, {"dataset": dataset, "model": model, "hidden": hidden, "recipe": recipe,
                                   "sharpreg_rho": sharpreg_rho, "lams": lams, "xis": xis, "sharpreg": sharpreg,
                                   "sam_rho": sam_rho,
                                   "train_seeds": train_seeds, "split_seeds": split_seeds,
                                   "defenses": {"label_smoothing": label_smoothing, "advreg_alpha": advreg_alpha,
                                                "selena": [selena_models, selena_excluded],
                                                "dpsgd": [dp_noise, dp_clip]},
                                   "buckets": buckets_config.key()}))
