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
# # Where SAM's accuracy comes from: memorization buckets
#
# Paper §3.2 (Figs. 2 and 3). The paper sorts test points by how much memorization they
# need, and asks on which of them SAM (and SWA) beat SGD. The measure is *influence
# entropy* (eq. 3): the entropy of the absolute influence of every same-class training point
# on the test point. Low entropy means a few training points carry the prediction; test
# points are cut into 5 equal buckets, bucket 1 = lowest entropy = most memorization.
# (The caption of the paper's Fig. 2 says the reverse; its text and Fig. 3 use this order.)
#
# The paper took Feldman & Zhang's published CIFAR-100 influence estimates, which took
# thousands of trained models. We *compute* the estimates (eqs. 1-2) for any dataset:
# many small models, each trained on a random 70 % of the training set, all trained at once
# by `sharpmem_lib.ensemble`. And we check the metric against ground truth on the
# synthetic `longtail` data, where every point's subpopulation size is known, something
# the paper could not do.

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
dataset = "digits"  # the dataset whose test points are bucketed
model = "mlp"
hidden = [64]  # MLP widths (ignored by other models)
n_models = 1000  # subset-trained models for the Feldman-Zhang estimates
fraction = 0.7  # share of the training set each of them sees
subset_epochs = 10
subset_lr = 0.05
batch_size = 32
target_epochs = 40  # SGD / SAM / SWA target models, trained on the whole training set
target_lr = 0.05
sam_rho = 0.1  # SAM radius; the paper uses 0.1
swa_start = 0.5  # SWA averages the last half of the epochs
swa_lr = 0.02
seeds = 3  # target models per method
ground_truth_dataset = "longtail"  # "" to skip the ground-truth check
influence_file = ""  # Feldman & Zhang's cifar100_infl_matrix.npz, to use their estimates for cifar100
n_show = 3  # test images per bucket in Fig. 2
data_dir = ""
results_dir = ""

# %% tags=["remove-cell"]
# Stop on an unknown or bad parameter, or a missing data file, before anything trains.
from sharpmem_lib.parameters import check_notebook_parameters

check_notebook_parameters(globals(), "02_memorization_buckets")

# %% tags=["hide-input", "remove-stderr"]
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from sharpmem_lib.data import load_dataset
from sharpmem_lib.buckets import (bucket_accuracy_table, bucket_composition, difficulty_by_bucket, difficulty_strata,
                                  entropy_difficulty, gain_within_strata, ground_truth_check, memorization_buckets,
                                  pattern_test)
from sharpmem_lib.experiments import ExperimentConfig, run_experiment
from sharpmem_lib.memorization import mean_by_bucket
from sharpmem_lib.plots import (bucket_accuracy_figure, ground_truth_figure, influencers_figure, show_figure,
                                top1_memorization_figure)
from sharpmem_lib.provenance import provenance_table
from sharpmem_lib.report import glue_claim, readable_table, readable_value
from sharpmem_lib.report import (at_ceiling, bucket_pattern, describe_gain, family_note, gain_table, glue,
                                 top1_trend)
from sharpmem_lib.stats import holm_verdicts, paired_gain, paired_tests_by, trend_test
from sharpmem_lib.subsampling import SubsamplingConfig
from sharpmem_lib.train import TrainConfig

model_kwargs = {"hidden": tuple(hidden)} if model in ("mlp", "fc") else {}
subsampling = SubsamplingConfig(
    dataset, model, TrainConfig(epochs=subset_epochs, batch_size=batch_size, lr=subset_lr),
    n_models=n_models, fraction=fraction, model_kwargs=model_kwargs)
target_train = dict(epochs=target_epochs, batch_size=batch_size, lr=target_lr)
methods = {
    "sgd": dict(algorithm="sgd"),
    "sam": dict(algorithm="sam", rho=sam_rho),
    "swa": dict(algorithm="sgd", swa=True, swa_start=swa_start, swa_lr=swa_lr),
}
targets = {(name, seed): ExperimentConfig(dataset, model, TrainConfig(**target_train, **kw, seed=seed),
                                          model_kwargs=model_kwargs)
           for name, kw in methods.items() for seed in range(seeds)}
ground_truth = (SubsamplingConfig(ground_truth_dataset, "mlp", subsampling.train, n_models=n_models,
                                  fraction=fraction, model_kwargs={"hidden": tuple(hidden)})
                if ground_truth_dataset else None)
opts = dict(results_dir=results_dir or None, data_dir=data_dir or None)

# %% [markdown]
# ## Influence and memorization estimates

# %% tags=["hide-input", "remove-stderr"]
data = load_dataset(dataset, data_dir=data_dir or None)
mb = memorization_buckets(subsampling, **opts, influence_file=influence_file or None)
test_ids, entropy, bucket, top1, influence, source = (mb.test_ids, mb.entropy, mb.bucket, mb.top1, mb.influence,
                                                      mb.source)
glue("source", source)

# %% [markdown]
# Source of the estimates: {glue:text}`source`.
#
# ## What the buckets hold: classes and difficulty
#
# Test points whose influence estimates are all zero (every subset model classifies them
# alike, whether or not any one training point was in its subset) have no measured
# influence. Eq. 3 would give them log(n_k), the size of their class, so they would fill
# the top buckets sorted by class label. They are kept out of the ranking as a group of
# their own, "unmeasured": {glue:text}`n_unmeasured` of {glue:text}`n_test` test points
# here. Below, the classes in every bucket, and influence entropy beside a plain
# difficulty proxy, the subset models' accuracy on the point.
# {glue:text}`entropy_difficulty`

# %% tags=["remove-input"]
display(readable_table(bucket_composition(bucket, mb.labels)))
display(readable_table(difficulty_by_bucket(mb)))
ed = entropy_difficulty(mb)
glue("entropy_difficulty", f"Spearman's ρ between influence entropy and the subset models' accuracy over the {ed.n} "
     f"measured test points: {ed.estimate:.2f} (p = {ed.p_value:.1g})." if ed.n and ed.estimate == ed.estimate else
     "The difficulty proxy is not available for these estimates (they hold no per-model correctness).")
glue("n_unmeasured", str(mb.n_unmeasured))
glue("n_test", str(len(test_ids)))

# %% [markdown]
# ## Figure 2: what the buckets hold
#
# Test images (framed) from bucket 1 (red frame) and bucket 5 (blue), each followed by its
# ten most influential training images and their influence; only training images with a
# measured (non-zero) influence are shown. For image datasets only.

# %% tags=["remove-input"]
if data.X.ndim == 4:
    rng = np.random.default_rng(0)
    rows = [(int(j), b) for b in (1, 5) for j in rng.choice(test_ids[bucket == b], n_show, replace=False)]
    show_figure(influencers_figure(data.X, rows, influence, k=10), "2",
                "Test images from bucket 1 (red frame, lowest influence entropy) and bucket 5 (blue frame), each "
                "followed by its most influential training images of the same class, titled with their influence.",
                alt="Grid of small images: each row a framed test image followed by its most influential training "
                    "images and their influence values")
else:
    print(f"{dataset} is not an image dataset: no Fig. 2")

# %% [markdown]
# ## Figure 3b, 3c: the top influencers of bucket 1 are memorized points
#
# The paper's quantitative check: the memorization score (eq. 1) of each test point's
# single most influential training point, for the lowest- and highest-entropy buckets.

# %% tags=["remove-input"]
show_figure(top1_memorization_figure(top1, bucket), "3b–c",
            "Memorization score (eq. 1) of each test point's most influential training point, (b) in bucket 1 "
            "and (c) in bucket 5; the dashed line is the mean.",
            alt="Two histograms of the memorization score of the top-1 influencer, for bucket 1 and for bucket 5")
measured = mb.measured
means = mean_by_bucket(top1, bucket)
display(pd.DataFrame({"bucket": range(1, 6), "mean top-1 memorization": np.round(means, 3),
                      "test points": np.bincount(bucket)[1:],
                      "with a measured influence": [int(measured[bucket == b].sum()) for b in range(1, 6)]}
                     ).set_index("bucket"))
top1_test = trend_test(bucket, top1)  # the paper: top-1 memorization falls with the bucket (NaN left out)

# %% [markdown]
# The mean memorization score of the top-1 influencer {glue:text}`top1_verdict`. The
# unmeasured test points have no top influencer and are in no bucket.
#
# ## Figure 3a: accuracy per bucket for SGD, SAM and SWA
#
# Target models train on the whole training set (the partition's members) and are scored,
# with their best-validation weights, on the bucketed test points. Same seed = same
# initialisation and data order for every method, so gains are paired by seed.

# %% tags=["hide-input", "remove-stderr"]
artifacts = {key: run_experiment(cfg, **opts) for key, cfg in targets.items()}
table = bucket_accuracy_table(artifacts, test_ids, data.y, bucket)

# %% tags=["remove-input"]
show_figure(bucket_accuracy_figure(table), "3a",
            "(a) Test accuracy per memorization bucket for SGD, SAM and SWA, mean ± standard deviation over seeds "
            "(bucket 1 = lowest influence entropy = most memorization); (a') each method's gain over SGD per "
            "bucket, paired by seed, with 95 % intervals.",
            alt="Grouped bars of test accuracy in buckets 1 to 5 for SGD, SAM and SWA, and the gains over SGD per "
                "bucket with error bars")
# the chapter's family, Holm-adjusted together: SAM/SWA − SGD per bucket (the paper: higher), and top-1 memorization
tests = {(m, b): t for m in ("sam", "swa") for b, t in paired_tests_by(table, m, "sgd", "acc", "bucket").items()}
verdicts = holm_verdicts({**tests, "top1": top1_test}, {**{k: 1 for k in tests}, "top1": -1})
glue_claim("sam_bucket1", verdicts[("sam", 1)])  # the results page's verdict table
glue("top1_verdict", top1_trend(verdicts["top1"], means))
glue("family_note", family_note(verdicts["top1"].family_size))
for m in ("sam", "swa"):
    g = paired_gain(table, m, "sgd", "acc", by="bucket")
    display(Markdown(f"**{m.upper()} − SGD per bucket**"))
    display(gain_table(g, index="bucket", holm={b: verdicts[(m, b)] for b in g["bucket"]}))
    glue(f"{m}_b1", describe_gain(verdicts[(m, 1)], m, "sgd", "bucket 1"))
    glue(f"{m}_b5", describe_gain(verdicts[(m, 5)], m, "sgd", "bucket 5"))
    glue(f"{m}_shape", bucket_pattern(g, verdicts[(m, 1)], m, at_ceiling=at_ceiling(table)))
    high, pt = pattern_test(table, m)  # gain in bucket 1 minus gain in the highest bucket below the ceiling
    glue(f"{m}_pattern", "every bucket above 1 is at the 100 % ceiling, so there is nothing to compare with"
         if high is None else f"{100 * pt.estimate:+.1f} points against bucket {high}, " + (
             f"no interval ({pt.note})" if pt.ci_low != pt.ci_low else f"95 % CI [{100 * pt.ci_low:+.1f}, "
             f"{100 * pt.ci_high:+.1f}], p = {pt.p_value:.2g} ({pt.n} seeds, not Holm-adjusted)"))
strata = difficulty_strata(mb.subset_acc, mb.measured)
if (strata > 0).any():
    strat = gain_within_strata(bucket_accuracy_table(artifacts, test_ids, data.y, bucket, stratum=strata), "sam")
    display(Markdown("**SAM − SGD per bucket within difficulty strata** (thirds of the measured test points by "
                     "the subset models' accuracy, 1 = hardest; points per cell in parentheses)"))
    display(strat.assign(cell=[f"{100 * g:+.1f} " + (f"[{100 * lo:+.1f}, {100 * hi:+.1f}]" if lo == lo else "(no CI)")
                               + f" ({n})" for g, lo, hi, n in
                               zip(strat["gain"], strat["ci95_low"], strat["ci95_high"], strat["points"])])
            .pivot(index="stratum", columns="bucket", values="cell"))

# %% [markdown]
# **SAM.** {glue:text}`sam_b1` {glue:text}`sam_b5` {glue:text}`sam_shape`
# Gain in bucket 1 minus gain in the comparison bucket: {glue:text}`sam_pattern`.
#
# **SWA.** {glue:text}`swa_b1` {glue:text}`swa_b5` {glue:text}`swa_shape`
# Gain in bucket 1 minus gain in the comparison bucket: {glue:text}`swa_pattern`.
#
# Influence entropy tracks difficulty, so a gain in bucket 1 may be a gain on hard points.
# The table of SAM − SGD within difficulty strata separates the two: if SAM's gain still
# falls from bucket 1 to bucket 5 among points of equal difficulty, it follows memorization.
#
# The paper's claim is that the gains of flat-minimum methods concentrate in the
# low-entropy buckets. With {glue:text}`n_seeds` seeds per method the intervals above say
# how firmly this run supports or contradicts it; a point estimate alone would not.
# {glue:text}`family_note`

# %% tags=["remove-cell"]
glue("n_seeds", str(seeds))

# %% [markdown]
# ## Does influence entropy measure memorization? A check against ground truth
#
# On `longtail` (`sharpmem_lib.data.longtail`, after Feldman's long-tail model) every
# class is a mixture of subpopulations with Zipf-distributed sizes, and every example
# carries the size of its subpopulation. A point from a rare subpopulation can only be
# classified by memorizing its few relatives, so its influence entropy should be low.

# %% tags=["hide-input", "remove-stderr"]
if ground_truth is not None:
    lt = load_dataset(ground_truth_dataset)
    lt_mb = memorization_buckets(ground_truth, **opts)
    lt_ids, lt_entropy, lt_bucket = lt_mb.test_ids, lt_mb.entropy, lt_mb.bucket
    lt_size = lt.meta["subpop_size"][lt_ids]

# %% tags=["remove-input"]
if ground_truth is not None:
    check = ground_truth_check(lt_mb, lt_size)  # Spearman over measured points; a check of the metric, not a claim
    rho_s, p_s = check["entropy"].estimate, check["entropy"].p_value
    display(pd.DataFrame({k: {"Spearman's ρ with subpopulation size": round(c.estimate, 2), "p": readable_value(c.p_value, 1),
                              "test points": c.n} for k, c in check.items()}).T.pipe(readable_table))
    m = lt_mb.measured
    show_figure(ground_truth_figure(lt_entropy[m], lt_size[m], lt_bucket[m]), "S2.1",
                "Influence entropy against the true size of each test point's subpopulation on the synthetic "
                "long-tail data (left), and subpopulation sizes per entropy bucket (right): a check the paper "
                "could not make.",
                alt="Scatter of influence entropy against subpopulation size (log axis), and box plots of "
                    "subpopulation size in buckets 1 to 5")
    display(pd.DataFrame({"bucket": range(1, 6),
                          "median subpopulation size": [float(np.median(lt_size[lt_bucket == b])) for b in range(1, 6)],
                          "share from subpopulations of size <= 5":
                              [float(np.mean(lt_size[lt_bucket == b] <= 5)) for b in range(1, 6)]})
            .set_index("bucket").round(2))
    glue("spearman", f"{rho_s:.2f}")
    glue("spearman_p", f"{p_s:.1g}")
    glue("gt_difficulty", f"{check['difficulty'].estimate:.2f}")
    partial = check["entropy | difficulty"]
    glue("gt_partial", f"{partial.estimate:.2f} (p = {partial.p_value:.1g})")
    glue("gt_unmeasured", str(lt_mb.n_unmeasured))
    glue("median_b1", f"{np.median(lt_size[lt_bucket == 1]):.0f}")
    glue("median_b5", f"{np.median(lt_size[lt_bucket == 5]):.0f}")
else:  # the chapter's prose and the results page paste these
    for key in ("spearman", "spearman_p", "median_b1", "median_b5", "gt_difficulty", "gt_partial", "gt_unmeasured"):
        glue(key, "n/a (skipped: ground_truth_dataset is empty)")

# %% [markdown]
# Over the measured test points ({glue:text}`gt_unmeasured` are unmeasured and left out),
# Spearman's correlation between influence entropy and true subpopulation size is
# {glue:text}`spearman` (p = {glue:text}`spearman_p`); the median subpopulation size is
# {glue:text}`median_b1` in bucket 1 and {glue:text}`median_b5` in bucket 5. A positive
# correlation means the metric does what the paper uses it for: low entropy marks points
# from rare subpopulations. Plain difficulty (the subset models' accuracy) correlates
# {glue:text}`gt_difficulty` with subpopulation size; entropy's partial correlation with it,
# difficulty held fixed, is {glue:text}`gt_partial`: what entropy knows about rarity beyond
# how hard the point is.
#
# ## Running the estimates at scale
#
# The subset models split into shards, each a deterministic function of (shard, number
# of shards): `sharpmem_lib.subsampling.run_subsampling(..., shard=i, n_shards=N)` writes
# one file per shard and `merge_runs` joins them into exactly the single-run result. The
# README shows a SLURM job array doing this.
#
# ## Provenance

# %% tags=["remove-input"]
display(provenance_table(profile, {"subsampling": subsampling,
                                   "targets (seed 0)": {m: cfg.train for (m, seed), cfg in targets.items()
                                                        if seed == 0},
                                   "seeds": seeds, "ground truth": ground_truth, "influence_file": influence_file}))
