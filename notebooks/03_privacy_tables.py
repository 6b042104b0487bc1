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
# # Privacy risk: membership inference against SGD, SAM and SharpReg
#
# Paper §4, Tables 1 and 2. If SAM's extra accuracy comes from memorizing atypical
# points (chapter 2), its models should leak more membership information. The paper
# trains targets with SGD, SAM (ρ = 0.1) and SharpReg (eq. 6; ρ = 0.01, λ = 1.5, ξ = 0.3),
# picks each by validation accuracy, and attacks them, following SELENA
# {cite:p}`tang2022selena` and Song & Mittal {cite:p}`song2021systematic`:
#
# * **single-query** attacks read the target's output on the example: correctness,
#   confidence in the true class, entropy, modified entropy (each with a global and with
#   per-class thresholds), and a neural-network attack; the best of them is reported;
# * **multi-query** (label-only) attacks query perturbed copies and use only the predicted
#   labels: translations and flips for images, bit flips for binary records, Gaussian noise
#   for continuous features.
#
# Each number is a balanced accuracy on as many evaluation members as non-members (0.5 =
# chance). Under both protocols every threshold is fitted on the attacker-known members and
# the reference non-members and evaluated on the held-out evaluation members and
# non-members, as SELENA's `attack/dsq_attack.py` does. **SELENA's protocol** (comparable
# with the paper) then makes four choices by looking at the evaluation sets, as that code
# does: global or per-class threshold, the NN attack's epoch, the perturbation strength, and
# the best attack. **The honest protocol** makes the same choices on the attacker's own
# data (cross-validation within the attacker-known sets) and evaluates once.
#
# Each dataset's targets train with a named recipe (`recipes`, from `sharpmem_lib.recipes`):
# on the paper profile the CIFAR recipe for WRN-16-8 on CIFAR-10/100 and SELENA's for the FC
# nets on Purchase-100 and Texas-100, the paper's Table 1; the provenance table at the end
# lists every setting of this run.

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
recipes = {"fashion_mnist_cpu": "fashion_mlp"}  # dataset -> training recipe (sharpmem_lib.recipes)
sam_rho = 0.1  # the paper's SAM radius
sharpreg_rho = 0.01  # the paper's SharpReg settings (eq. 6)
sharpreg_lam = 1.5
sharpreg_xi = 0.3
train_seeds = 14  # targets per algorithm (the paper trains one; issue 16: at least 5)
split_seeds = 3  # attack data splits per target (the paper's "5 runs")
which = "best"  # "best": best-validation weights, as the paper; "final": last epoch
boundary_dataset = ""  # image dataset for the boundary-distance attacks ("" to skip them)
boundary_methods = ["hopskipjump", "cw"]  # label-only (black-box) and Carlini-Wagner (white-box)
boundary_points = 50  # examples per attack set (each costs hundreds of queries)
boundary_iters = 0  # attack iterations; 0 for each method's default
lira_dataset = "fashion_mnist_cpu"  # dataset for the LiRA section ("" to skip it)
lira_recipe = "fashion_mlp_lira"  # recipe of LiRA's models ("" for the dataset's in recipes)
lira_fraction = 0.5  # share of the members each LiRA model trains on (the rest: its non-members)
lira_models = 48  # subset-trained models per algorithm (targets and shadows)
lira_targets = 32  # of the others, this many serve in turn as the target (the rest of them as its shadows)
lira_memorization_models = 16  # of which this many only estimate memorization (never target or shadow)
nn_attack = "cpu"  # NN attack: "selena" (SELENA's: 150 epochs, Adam 1e-4, batch 512) or "cpu" (a short variant)
data_dir = ""
results_dir = ""

# %% tags=["remove-cell"]
# Stop on an unknown or bad parameter, or a missing data file, before anything trains.
from sharpmem_lib.parameters import check_notebook_parameters

check_notebook_parameters(globals(), "03_privacy_tables")

# %% tags=["remove-stderr"]
from IPython.display import Markdown, display

from sharpmem_lib.paper import paper_table1
from sharpmem_lib.plots import group_tpr_figure, roc_figure, show_figure
from sharpmem_lib.privacy import (GLOBAL_HEADERS, HEADERS, LIRA_HEADERS, PrivacyConfig, format_table1, power_targets,
                                  privacy_study)
from sharpmem_lib.provenance import provenance_table
from sharpmem_lib.report import (chapter4_setup, glue, lira_gain_views, privacy_sentences, readable_table,
                                 significance_views, target_view, verdict_table, build_setup)

config = PrivacyConfig(
    recipes=recipes, knobs=dict(sam_rho=sam_rho, sharpreg_rho=sharpreg_rho, sharpreg_lam=sharpreg_lam,
                                sharpreg_xi=sharpreg_xi),
    train_seeds=train_seeds, split_seeds=split_seeds, which=which, boundary_dataset=boundary_dataset,
    boundary_methods=boundary_methods, boundary_points=boundary_points, boundary_iters=boundary_iters,
    lira_dataset=lira_dataset, lira_models=lira_models, lira_targets=lira_targets,
    lira_memorization_models=lira_memorization_models, lira_recipe=lira_recipe, lira_fraction=lira_fraction,
    nn_attack=nn_attack)
study = privacy_study(config, paper_table1(), results_dir=results_dir or None, data_dir=data_dir or None)

# %% [markdown]
# ## Table 1
#
# Every target is attacked at its {glue:text}`table1_weights`. Mean over training seeds and
# split seeds; "±" is the standard deviation over the attack data splits (what the paper's ±
# measures), "[± ...]" the standard deviation over
# training seeds, which the paper does not vary. In percent. A target whose training diverged
# is counted in a "diverged targets" column (shown only when one did), left out of the means,
# and its pairs are left out of the paired tests (each verdict says how many).

# %% tags=["remove-input"]
for protocol, title in (("selena", "SELENA's protocol (comparable with the paper)"), ("honest", "Honest protocol")):
    display(Markdown(f"**{title}**"), format_table1(study.tables[protocol]))

# %% [markdown]
# How much membership signal each target offers ({glue:text}`table1_weights`): per target
# (training seed), mean over splits, its generalization gap (train − test accuracy, points) and the honest protocol's
# best single-query attack, as balanced accuracy and AUC (0.5 = no signal). Small gaps and
# AUCs near 0.5 leave the attacks little to separate.

# %% tags=["remove-input"]
display(readable_table(target_view(study.target_table())))

# %% [markdown]
# The power this run has, beside the targets the default profile is sized for, on the first
# dataset; a target this run does not reach is shown as not met. The half-width target is
# that of the 95 % interval; the "detectable" column of this chapter's verdict table (and
# the results page's power column) is the half-width at the level the test is held to after
# Holm's correction, α/m, which is wider:

# %% tags=["remove-input"]
glue("power_targets_table", readable_table(power_targets(study)), display=True)  # the results page shows it too

# %% [markdown]
# And the paper's Table 1, quoted from the paper (its datasets and models are the
# paper-scale ones; this run's are the CPU profile's):

# %% tags=["remove-input"]
display(format_table1(paper_table1()))

# %% [markdown]
# ## Table 2: change against SGD
#
# Percentage change of each mean against SGD, this run (SELENA's protocol) and the paper
# (computed from its Table 1 by the same function; it matches the paper's printed Table 2).
# Below it, per protocol, the mean paired difference against SGD in percentage points and
# its p-value: paired t-tests over training seeds (same seed: same initialisation and data
# order), after averaging over splits (an exact sign-flip test where the differences are all
# equal; no test with fewer than 3 seeds); not yet corrected for multiple comparisons: the
# last section does that, over the chapter's confirmatory tests.

# %% tags=["remove-input"]
display(readable_table(study.table2.rename(columns=HEADERS)))
display(*significance_views(study))
display(Markdown("**The paper's Table 2**"), readable_table(study.paper_table2.rename(columns=HEADERS)))

# %% [markdown]
# ## Which of the paper's directions reproduce
#
# For each algorithm and metric, the sign of the change against SGD in the paper (per
# paper dataset) and in this run (per dataset). "agrees" compares with the paper's sign where
# the paper's sign is the same on all four of its datasets.

# %% tags=["remove-input"]
display(readable_table(study.directions))

# %% [markdown]
# Of the {glue:text}`n_directions` effects whose direction the paper reports consistently,
# {glue:text}`n_agree` the same sign in this run (means under SELENA's protocol, as the
# paper's). Those that do not:
# {glue:text}`disagree_list`. {glue:text}`chance_note` Signs alone overstate what this run shows: of this chapter's
# {glue:text}`n_tests` confirmatory paired tests against SGD, {glue:text}`n_significant` have
# a Holm-adjusted p < 0.05 (smallest adjusted p = {glue:text}`min_p`). Under the honest
# protocol: {glue:text}`resolution_verdict` Unless this run used the paper profile (the
# provenance table at the end names the profile, datasets and recipes), its datasets and models
# are smaller than the paper's CIFAR WideResNets; the paper profile reruns this chapter at the
# paper's scale on a GPU.
#
# Is the paper's premise there to test? {glue:text}`sam_premise` We make the same comparison
# for SharpReg. {glue:text}`sharpreg_gap` Against the paper's
# effect sizes (its Table 1, honest-protocol estimates here), SAM:
# {glue:text}`sam_paper_effects` SharpReg: {glue:text}`sharpreg_paper_effects`
#
# ## Honest versus SELENA's protocol
#
# The same fitted attacks; the protocols differ only in the choices SELENA's code makes on
# the evaluation sets. Also shown: the best attack restricted to global thresholds.

# %% tags=["remove-input"]
display(readable_table(study.protocol_gap()), (100 * study.global_only()).round(2).rename(columns=GLOBAL_HEADERS))

# %% [markdown]
# {glue:text}`protocol_vs_optimizer`
#
# ## Boundary-distance attacks
#
# The label-only attacks of Table 1 count how many perturbed copies keep their label. The
# other label-only family measures how far a point lies from the decision boundary:
# members tend to lie farther. SELENA's code measures the distance with the white-box
# Carlini–Wagner L2 attack (gradients of the model); a real label-only attacker has only
# labels, and uses a decision-based search such as HopSkipJump
# {cite:p}`choquettechoo2021labelonly`. Both come from the adversarial-robustness-toolbox.
# They cost hundreds of queries per point, so they run on one target per algorithm
# (training seed 0, split seed 0) and a subsample of each attack set
# ({glue:text}`boundary_setup`). **Table 1's multi-query column does not include them.**

# %% tags=["remove-input"]
if study.boundary is not None:
    display(readable_table(100 * study.boundary_table()))

# %% [markdown]
# Under the honest protocol, the attack an attacker would pick on its own data (the higher
# cross-validated accuracy on the attacker-known sets) reaches, on the evaluation sets:
# {glue:text}`boundary_best`. SELENA-style, picking the better attack by its accuracy on the
# evaluation sets themselves (optimistic): {glue:text}`boundary_best_selena`. With
# {glue:text}`boundary_setup`, differences of a few points are within sampling noise.
#
# ## Calibrated attacks: LiRA, and who is exposed
#
# The attacks above use one global threshold or one per class. LiRA {cite:p}`carlini2022lira` calibrates
# per example: shadow models that did and did not train on a point give Gaussian models of
# its logit-scaled confidence, and the score is their likelihood ratio. It is judged where
# privacy matters, at low false-positive rates, on log-log ROC curves. We use the
# chapter-2 construction: many models, each trained on a random part of the training set;
# some of them serve in turn as the target, the rest of their pool as its shadows, and
# models outside that pool estimate memorization (the counts are given below the figures). The paper argues that
# SAM memorizes atypical points and so exposes them, but never shows attack success by
# memorization; the last figure does, with the memorization score (eq. 1) of each training
# point estimated from SGD models that are neither targets nor shadows (so the attack is
# not graded on the outcomes that define the groups).

# %% tags=["remove-input"]
if study.lira is not None:
    show_figure(roc_figure(study.lira.curves), "S3.1",
                "LiRA's ROC curves against SGD, SAM and SharpReg (log-log axes; not in the paper), each pooling "
                "all targets' scores. The low false-positive end, on the left, is where a membership attack matters.",
                alt="Log-log ROC curves of LiRA against SGD, SAM and SharpReg, with the chance diagonal")
    display((100 * study.lira.summary()).round(2).rename(columns=LIRA_HEADERS))
    show_figure(group_tpr_figure(study.lira.by_quintile), "S3.2",
                "LiRA's true-positive rate at 1 % FPR per memorization group (1 = most memorized; unmeasured = "
                "score 0, not ranked), mean ± standard deviation over targets (not in the paper).",
                alt="Bars of LiRA's true-positive rate at 1 % FPR per memorization group, one colour per algorithm")
    display(*lira_gain_views(study.lira))

# %% [markdown]
# ({glue:text}`lira_setup`.) {glue:text}`lira_accuracy` At 1 % FPR, LiRA finds {glue:text}`lira_sgd_q1` of the most
# memorized group of SGD's training points against {glue:text}`lira_sgd_q5` of the least
# memorized measured group; for the most memorized group the rate is {glue:text}`lira_sam_q1` under
# SAM and {glue:text}`lira_sharpreg_q1` under SharpReg. Paired by target (model k has the
# same training subset and initialisation under every algorithm), on the most memorized
# group: {glue:text}`lira_verdict` The tables above give the same paired differences for
# every ranked group, so whether the effect is confined to the most memorized points can be
# read off directly.
#
# ## This chapter's tests, corrected for multiple comparisons
#
# {glue:text}`family_note` The family ("confirmatory") is every paired test against SGD
# whose direction the paper reports on all its datasets, under both protocols: the honest
# one (primary: nothing chosen on evaluation data) and SELENA's (comparable with the paper),
# for test accuracy, the best single-query attack and the label-only (multi-query) attack.
# Under the honest protocol, see above; under SELENA's:
# {glue:text}`resolution_verdict_selena` {glue:text}`chance_note` "Exploratory" tests are reported with unadjusted
# p-values and decide nothing: those the paper gives no single direction for ("no paper
# direction"), LiRA's (the paper runs no LiRA) and the protocol gaps. "detectable" is the
# smallest difference each test resolves at the level it is held to (α/m after Holm).

# %% tags=["remove-input"]
display(verdict_table(study.verdicts, study.labels))
for key, value in privacy_sentences(study, chapter4_setup(profile)).items():  # every number the prose quotes
    glue(key, value)  # including the results page's claim_<name>_attack[_selena]_{number,power,status}
glue("build_setup", build_setup())  # the results page's note: this chapter's profile, models and data

# %% [markdown]
# ## Provenance

# %% tags=["remove-input"]
display(provenance_table(profile, config.as_dict()))
