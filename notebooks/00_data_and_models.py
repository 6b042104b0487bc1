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
# # Data, partitions, models and the training engine
#
# Every chapter trains target models on some dataset and then analyses or attacks them.
# This chapter lays out what they share: the datasets, how each is cut into members and
# non-members for membership inference (paper §4, following SELENA, {cite:t}`tang2022selena`),
# the architectures, and the training engine, shown at work on one small problem.

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
dataset = "fashion_mnist_cpu"  # the demo's dataset (see the table below)
algorithms = ["sgd", "sam"]  # trained side by side
recipe = "fashion_mlp"  # model and training settings (sharpmem_lib.recipes; the paper's: cifar_wrn16_8)
sam_rho = 0.1  # SAM radius
seed = 0
data_dir = ""  # where downloaded datasets live (empty: $SHARPMEM_DATA, else ~/.cache/sharpmem)
results_dir = ""  # the results cache (empty: $SHARPMEM_RESULTS, else ./results)

# %% tags=["remove-cell"]
# Stop on an unknown or bad parameter, or a missing data file, before anything trains.
from sharpmem_lib.parameters import check_notebook_parameters

check_notebook_parameters(globals(), "00_data_and_models")

# %% tags=["hide-input", "remove-stderr"]
import pandas as pd
from IPython.display import display

from sharpmem_lib.data import dataset_table
from sharpmem_lib.experiments import accuracy_table, experiment_config, train_targets
from sharpmem_lib.models import model_table
from sharpmem_lib.plots import show_figure, training_curves
from sharpmem_lib.provenance import provenance_table
from sharpmem_lib.recipes import recipe_settings, recipe_table
from sharpmem_lib.report import attacker_members, build_setup, glue, readable_table
from sharpmem_lib.splits import SPLITS, published_partition, split_table

pd.set_option("display.max_colwidth", None)

# Build (and so check) every configuration before anything trains.
configs = {algorithm: experiment_config(recipe, dataset, algorithm, seed, sam_rho=sam_rho) for algorithm in algorithms}

# %% [markdown]
# ## Datasets
#
# `toy2d`, `digits` and `longtail` need nothing but this repository. The default profile's
# `fashion_mnist_cpu`, a fixed 7,000-image sample of Fashion-MNIST, is read from Debian's
# `dataset-fashion-mnist` files (`make book` installs them, or downloads Zalando's, md5-checked,
# before anything runs). The others are read from their published files (`sharpmem_lib.data` documents
# the formats); without them, loading stops with the paths it tried and where to get the
# data.

# %% tags=["remove-input"]
display(dataset_table())

# %% [markdown]
# ## Membership partitions
#
# Each dataset is cut into disjoint sets: the target's training set (members), a
# validation set for early stopping, and non-members. The attacker knows
# {glue:text}`attacker_members`, and a "reference" share of the non-members; the rest is what attacks are
# evaluated on. Members, validation and the non-member pool are fixed per dataset; a
# *split seed* redraws only the attacker's share, so one trained target serves the
# paper's "5 runs with different attack data splits". Sizes, computed by
# `sharpmem_lib.splits` (from the published dataset sizes where the files are not here):

# %% tags=["remove-input"]
parts = [published_partition(name) for name in SPLITS]
partitions = split_table(parts)
glue("attacker_members", attacker_members(parts))  # the methods page quotes it
glue("build_setup", build_setup())  # the results page's note: this chapter's profile, models and data
display(readable_table(partitions))
glue("partitions", partitions, display=False)  # shown again in the methods chapter

# %% [markdown]
# SELENA's code keeps the epoch with the best *test* accuracy, which its README admits is
# optimistic; our validation set is held out from everything else instead.
#
# ## Models
#
# WRN-16-8 is the real one: depth 16 = 2 pre-activation blocks in each of 3 stages, widths
# 128/256/512 (a popular SAM repository's "WRN 16-8" has 22 layers). For Purchase-100 and
# Texas-100 the paper writes layer sizes [1024, 512, 256, 100]; the SELENA code it extends
# uses in → 1024 → 512 → 256 → 128 → 100 with Tanh, and so do we (the widths are a
# parameter of `FCNet`). Parameter counts, computed by building each model:

# %% tags=["remove-input"]
display(model_table())

# %% [markdown]
# ## Training recipes
#
# A chapter never restates training settings: it names a *recipe* (`sharpmem_lib.recipes`),
# which fixes the model and everything about its training except the algorithm, plus its own
# algorithm knobs (`sam_rho`, `sharpreg_rho`, `sharpreg_lam`, `sharpreg_xi`: one name each in
# every chapter). Two chapters that train the same recipe, dataset, algorithm and seed share one
# cached target. `python -m sharpmem_lib.pipeline plan --profile paper` lists what each chapter
# trains with which recipe. The recipes, with where their values come from:

# %% tags=["remove-input"]
display(readable_table(recipe_table()))

# %% [markdown]
# ## The engine at work
#
# Each algorithm below trains the recipe's model on the members of the chosen dataset. After
# every epoch the engine checkpoints its whole state (weights, optimizer, RNG) atomically,
# so a killed run resumes to the identical result; it keeps the final and the
# best-validation weights and stores both models' logits on every example in a results
# folder keyed by a hash of the configuration. Running this chapter again costs nothing
# until the configuration changes.

# %% tags=["hide-input", "remove-stderr"]
artifacts = train_targets({c.train.describe(): c for c in configs.values()}, results_dir or None,  # a diverged run
                          data_dir=data_dir or None)  # is kept as its error: shown below with its status

# %% tags=["remove-input"]
show_figure(training_curves({label: a.history for label, a in artifacts.items() if hasattr(a, "history")}), "S0.1",
            "Training loss (log scale), training accuracy and validation accuracy per epoch for each algorithm; "
            "the dot marks the epoch whose weights are kept (best validation accuracy).",
            alt="Three line charts against epoch, training loss, training accuracy and validation accuracy, one line "
                "per algorithm")
display(accuracy_table(artifacts, data_dir=data_dir or None).style.format(
    "{:.1%}", subset=["train acc", "validation acc", "held-out acc"]))

# %% [markdown]
# "held-out" is every non-member (attacker-known and evaluation), the analogue of a test
# set. The gap between train and held-out accuracy is what membership inference feeds on;
# chapter 3 measures it with attacks.
#
# ## Provenance

# %% tags=["remove-input"]
display(provenance_table(profile, {"dataset": dataset, "recipe": recipe_settings(recipe),
                                   **{f"train ({k})": v.train for k, v in configs.items()}}))
