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
# synthetic long-tailed data, where every point's subpopulation size is known, something
# the paper could not do. The study is `sharpmem_lib.buckets.run_bucket_study`; every model
# trains with a named recipe (`sharpmem_lib.recipes`).

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
# The notebook's defaults, which are the default profile's values. A book built with another
# profile replaces them: see the next cell ("Parameters of this run") and the provenance table.
profile = "default"  # the profile these defaults are (notebooks/params/default.yaml)
dataset = "fashion_mnist_cpu"  # the dataset whose test points are bucketed
subset_recipe = "fashion_mlp_subset"  # sharpmem_lib.recipes: the subset-trained models of the estimates
n_models = 2000  # subset-trained models for the Feldman-Zhang estimates
fraction = 0.7  # share of the training set each of them sees
recipe = "fashion_mlp"  # the SGD / SAM / SWA target models, trained on the whole training set
sam_rho = 0.1  # SAM radius; the paper uses 0.1
swa_start = 0.5  # SWA averages the last half of the epochs
swa_lr = 0.02
seeds = 14  # target models per method
ground_truth_dataset = "longtail"  # "" to skip the ground-truth check
ground_truth_recipe = "digits_mlp_subset"  # its subset-trained models
ground_truth_models = 1000  # and their number
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
from IPython.display import Markdown, display

from sharpmem_lib.buckets import (FIGURES, BucketStudyConfig, bucket_composition, bucket_family, bucket_numbers,
                                  class_names, difficulty_by_bucket, gain_within_strata, ground_truth_check,
                                  influence_precision, run_bucket_study, subpopulation_table, top1_table)
from sharpmem_lib.plots import (bucket_accuracy_figure, ground_truth_figure, influencers_figure, show_figure,
                                top1_memorization_figure)
from sharpmem_lib.provenance import provenance_table
from sharpmem_lib.report import (bucket_sentences, gain_table, glue, glue_claim, ground_truth_table, readable_table,
                                 strata_view, build_setup)
from sharpmem_lib.stats import holm_verdicts, paired_gain

config = BucketStudyConfig(dataset, subset_recipe, recipe, n_models, fraction, seeds, sam_rho, swa_start, swa_lr,
                           ground_truth_dataset, ground_truth_recipe, ground_truth_models)
study = run_bucket_study(config, results_dir or None, data_dir=data_dir or None,
                         influence_file=influence_file or None)  # trains only what the results cache lacks
mb = study.buckets
verdicts = holm_verdicts(**bucket_family(study))  # the paper's claims form the Holm family; the rest is exploratory
for name, value in (bucket_sentences(bucket_numbers(study), verdicts) | {"build_setup": build_setup()}).items():
    glue(name, value)
glue_claim("sam_bucket1", verdicts[("sam", 1)])  # the results page's verdict table

# %% [markdown]
# ## Influence and memorization estimates
#
# Source of the estimates: {glue:text}`source`.
#
# Each influence estimate (eq. 2) is a difference of two means over models, those that
# trained on the training point and those that did not, so it carries the standard error
# of two binomial proportions. {glue:text}`influence_se` {glue:text}`bucket_noise` Per bucket:

# %% tags=["remove-input"]
display(readable_table(influence_precision(mb).round(4)))

# %% [markdown]
# ## What the buckets hold: classes and difficulty
#
# Test points whose influence estimates are all zero (every subset model classifies them
# alike, whether or not any one training point was in its subset) have no measured
# influence. Eq. 3 would give them log(n_k), n_k being the number of training points of
# their class, so they would fill the top buckets sorted by class. They are kept out of the ranking as a group of
# their own, "unmeasured": {glue:text}`unmeasured_share`.
#
# The classes of a random member set differ in size, and influence spread over many
# training points has an entropy near log(n_k): ranked by eq. 3 itself, the top buckets
# would fill with the largest classes. So entropy is divided by log(n_k), its value when
# influence is spread evenly over the class. Where every class has the same size (as in
# Feldman & Zhang's CIFAR-100 estimates, 500 training points each) this is the paper's
# order exactly. Below, the classes in every bucket, and influence entropy beside a plain
# difficulty proxy, the subset models' accuracy on the point.
# {glue:text}`entropy_difficulty`

# %% tags=["remove-input"]
display(readable_table(bucket_composition(mb.bucket, mb.labels, names=class_names(dataset))))
display(readable_table(difficulty_by_bucket(mb)))

# %% [markdown]
# ## Figure 2: what the buckets hold
#
# Test images (framed) from bucket 1 (red frame) and bucket 5 (blue), each followed by its
# ten most influential training images and their influence; only training images with a
# measured (non-zero) influence are shown. For image datasets only.

# %% tags=["remove-input"]
if study.data.X.ndim == 4:
    rng = np.random.default_rng(0)
    rows = [(int(j), b) for b in (1, 5) for j in rng.choice(mb.test_ids[mb.bucket == b], n_show, replace=False)]
    show_figure(influencers_figure(study.data.X, rows, mb.influence, k=10), "2", *FIGURES["2"])
else:
    print(f"{dataset} is not an image dataset: no Fig. 2")

# %% [markdown]
# ## Figure 3b, 3c: are the top influencers of bucket 1 memorized points?
#
# The paper's quantitative check: the memorization score (eq. 1) of each test point's
# single most influential training point, for the lowest- and highest-entropy buckets.

# %% tags=["remove-input"]
show_figure(top1_memorization_figure(mb.top1, mb.bucket), "3b–c", *FIGURES["3b–c"])
display(top1_table(mb))

# %% [markdown]
# The mean memorization score of the top-1 influencer {glue:text}`top1_verdict`. The
# unmeasured test points have no top influencer and are in no bucket.
#
# ## Figure 3a: accuracy per bucket for SGD, SAM and SWA
#
# Target models train on the whole training set (the partition's members) and are scored,
# with their best-validation weights, on the bucketed test points. Same seed = same
# initialisation and data order for every method, so gains are paired by seed.

# %% tags=["remove-input"]
show_figure(bucket_accuracy_figure(study.table), "3a", *FIGURES["3a"])
# diverged targets are shown with their status; their pairs are left out of the tests, each verdict says how many
display(Markdown("**Targets that diverged** (NaN accuracy)"), study.diverged_table()) if study.diverged else None
for m in ("sam", "swa"):
    g = paired_gain(study.table, m, "sgd", "acc", by="bucket")
    display(Markdown(f"**{m.upper()} − SGD per bucket**"))
    display(gain_table(g, index="bucket", holm={b: verdicts[(m, b)] for b in g["bucket"]}))
if study.strata_table is not None:
    display(Markdown("**SAM − SGD per bucket within difficulty strata** (thirds of the measured test points by "
                     "the subset models' accuracy, 1 = hardest; points per cell in parentheses)"))
    display(strata_view(gain_within_strata(study.strata_table, "sam")))

# %% [markdown]
# **SAM.** {glue:text}`sam_shape` {glue:text}`sam_b5`
#
# **SWA.** {glue:text}`swa_shape` {glue:text}`swa_b5`
#
# **What bucket 5 holds.** {glue:text}`near_unmeasured`
#
# Influence entropy may track difficulty (the correlation above), so a gain in bucket 1 may
# be a gain on hard points.
# The table of SAM − SGD within difficulty strata separates the two: if SAM's gain still
# falls from bucket 1 to bucket 5 among points of equal difficulty, it follows memorization.
#
# The paper's claim is that the gains of flat-minimum methods concentrate in the
# low-entropy buckets. With {glue:text}`n_seeds` seeds per method the intervals above say
# how firmly this run supports or contradicts it; a point estimate alone would not.
# {glue:text}`family_note`

# %% [markdown]
# ## Does influence entropy measure memorization? A check against ground truth
#
# On the synthetic long-tailed data (after Feldman's long-tail model) every
# class is a mixture of subpopulations with Zipf-distributed sizes, and every example
# carries the size of its subpopulation. A point from a rare subpopulation can only be
# classified by memorizing its few relatives, so its influence entropy should be low.

# %% tags=["remove-input"]
if study.ground_truth is not None:  # a check of the metric, not a claim: Spearman over the measured points
    gt, size = study.ground_truth, study.subpop_size
    display(ground_truth_table(ground_truth_check(gt, size)))
    show_figure(ground_truth_figure(gt.entropy[gt.measured], size[gt.measured], gt.bucket[gt.measured]), "S2.1",
                *FIGURES["S2.1"])
    display(subpopulation_table(gt, size))

# %% [markdown]
# On {glue:text}`gt_scope`,
# Spearman's correlation between influence entropy and true subpopulation size is
# {glue:text}`spearman` (p = {glue:text}`spearman_p`); the median subpopulation size is
# {glue:text}`gt_medians`. A positive
# correlation means the metric does what the paper uses it for: low entropy marks points
# from rare subpopulations. The subset models' accuracy on the point (its ease, the opposite
# of difficulty) correlates {glue:text}`gt_difficulty` with subpopulation size. The partial correlation of entropy with
# subpopulation size, difficulty held fixed, says what entropy knows about rarity beyond how
# hard the point is. {glue:text}`gt_partial_verdict`
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
display(provenance_table(profile, {"subsampling": config.subsampling(), "targets (seed 0)": {
    m: cfg.train for (m, seed), cfg in config.targets().items() if seed == 0}, "seeds": seeds,
    "ground truth": config.ground_truth(), "influence_file": influence_file}))
