"""Chapter 4's studies (paper §5, Figs. 4 and 5): sharpness as a privacy knob, SharpReg, defenses.

Studies layer: trains (or reads from the store) the targets of each study, attacks them
(:func:`sharpmem_lib.privacy.evaluate_runs`), measures their sharpness
(:func:`sharpmem_lib.sharpness.artifact_sharpness`) and returns results objects; it never
prints. Verdict sentences are :mod:`sharpmem_lib.report`'s, built by the chapter from the
tests collected here (:func:`chapter_tests`).

The studies:

* the λ sweep of eq. 4 (Fig. 4): :func:`lam_runs`;
* the ξ sweep of SharpReg, eq. 6 (Fig. 5b): :func:`xi_runs`;
* SGD, SAM and SharpReg side by side (Fig. 5a and measured sharpness): :func:`method_runs`;
* SharpReg against defenses and baselines (Fig. 5c): :func:`defense_runs`;
* the learning-rate control of issue 18 §6 (:func:`lr_control`, :func:`control_runs`).

**Why a learning-rate control.** SharpReg's update is (1 + λ − ξ) g(w) − λ g(w + ε)
(:func:`sharpmem_lib.optim.coefficients`). Its coefficients sum to 1 − ξ, and as ε → 0 the
update tends to (1 − ξ) g(w): part of what the ξ knob does is scale the learning rate. SGD at
lr × (1 − ξ), everything else equal, is the run that separates the two. (The match is
exact only for plain or momentum SGD without weight decay: the control also scales the weight
decay's step, and Adam ignores a gradient's scale, so with an Adam recipe the control is not
the rescale it is meant to be.)

**Why sharpness per unit training loss.** The top Hessian eigenvalue of the cross-entropy
shrinks with the loss that remains (near a minimum the Hessian is about J^T diag(p(1-p)) J,
and p(1-p) → 0 as the loss → 0), so a method that stops at a higher loss looks "sharper"
without finding a different kind of minimum. Besides λmax the chapter reports and tests
λmax / L(w) (``lambda_max/loss``), and it calls a minimum sharper only on that comparison.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sharpmem_lib.buckets import (MemorizationBuckets, bucket_accuracy_table, ceiling_buckets, memorization_buckets,
                                  pattern_test)
from sharpmem_lib.experiments import Artifact, ExperimentConfig, experiment_config
from sharpmem_lib.privacy import NN_OPTIONS, evaluate_runs, summarize
from sharpmem_lib.recipes import get_recipe
from sharpmem_lib.sharpness import artifact_sharpness
from sharpmem_lib.stats import paired_gain, paired_test, paired_tests_by, trend_test
from sharpmem_lib.subsampling import SubsamplingConfig
from sharpmem_lib.train import TrainConfig
from sharpmem_lib.validation import check_choice, check_nonnegative, check_positive

__all__ = ["MitigationConfig", "Evaluated", "MitigationResults", "lr_control", "lam_runs", "xi_runs", "method_runs",
           "control_runs", "defense_runs", "run_mitigation", "buckets_config", "headline_numbers", "bucket_table",
           "bucket_gain", "sharpness_table", "normalised_sharpness", "control_table", "control_tests",
           "sharpness_tests", "sweep_test",
           "sweep_grids", "defense_summary", "defense_numbers", "xi_outcomes", "chapter_tests", "CONTROL",
           "CONTROL_MEASURES", "TREND_CLAIMS", "FIGURES", "SHARPNESS_COLUMNS", "defense_table"]

CONTROL = "SGD, lr × (1 − ξ)"
"""The method label of the learning-rate control runs."""

CONTROL_MEASURES = {"test_acc": "test accuracy", "single_query": "the honest best single-query attack",
                    "multi_query": "the honest label-only attack", "lambda_max": "λmax",
                    "lambda_max/loss": "λmax / training loss"}
"""Readable names of the ``("lr control", m)`` tests' measures; the last two are raw values."""

SHARPNESS_RHOS = (0.01, 0.1)  # radii of the first-order SAM sharpness the chapter reports
SHARPNESS_COLUMNS = ("lambda_max", "lambda_max/loss", *(f"sam_sharpness@{r:g}" for r in SHARPNESS_RHOS))

_SWEEP = ("Test accuracy (left) and best attack accuracy (right; single- and multi-query, both protocols) against {x}, "
          "{weights} models, mean ± standard deviation over training and split seeds; red crosses mark diverged runs.")
_SWEEP_ALT = ("Two line charts against {x}: test accuracy, and attack accuracy for single- and multi-query attacks "
              "under the honest and SELENA protocols")
_TRADEOFF = ("Test accuracy against best attack accuracy (single-query left, label-only right) for SharpReg and each "
             "defense, {protocol} protocol, mean ± standard deviation; lower right is better {note}.")
_TRADEOFF_ALT = ("Two scatter plots with error bars of attack accuracy against test accuracy, one point per method or "
                 "defense")
FIGURES: dict[str, tuple[str, str]] = {
    "4a": ("(a) Test accuracy per memorization bucket for each λ of eq. 4 (last epoch), mean ± standard deviation over "
           "seeds; (a') each λ's change against λ = 0 per bucket, paired by seed, with 95 % intervals.",
           "Grouped bars of test accuracy in buckets 1 to 5 for each value of lambda, and the changes against "
           "lambda = 0 per bucket with error bars"),
    "4b": (_SWEEP.format(x="λ of eq. 4", weights="last-epoch"), _SWEEP_ALT.format(x="lambda")),
    "4c": (_SWEEP.format(x="λ of eq. 4", weights="early-stopped (best validation)"), _SWEEP_ALT.format(x="lambda")),
    "S4.1": ("Measured sharpness of each trained model (final weights): the top Hessian eigenvalue of the training "
             "loss, the same divided by the training loss it was measured at, and SAM's sharpness at ρ = 0.01 and "
             "0.1; one dot per seed, bars at the mean, log scale (not in the paper).",
             "Four bar charts on log scales, one per sharpness measure, a bar per method with one dot per seed"),
    "5a": ("(a) Test accuracy per memorization bucket for SGD, SAM and SharpReg (eq. 6), best-validation weights, "
           "mean ± standard deviation over seeds; (a') each method's change against SGD per bucket, paired by seed, "
           "with 95 % intervals.",
           "Grouped bars of test accuracy in buckets 1 to 5 for SGD, SAM and SharpReg, and the changes against SGD "
           "per bucket with error bars"),
    "5b": (_SWEEP.format(x="ξ of SharpReg (eq. 6)", weights="last-epoch"), _SWEEP_ALT.format(x="xi")),
    "S4.3": (_SWEEP.format(x="ξ for the learning-rate control, SGD at lr × (1 − ξ) (not in the paper)",
                           weights="last-epoch"),
             _SWEEP_ALT.format(x="xi, for SGD at a learning rate scaled by 1 - xi")),
    "5c": (_TRADEOFF.format(protocol="SELENA's", note="(the paper's protocol)"), _TRADEOFF_ALT),
    "S4.2": (_TRADEOFF.format(protocol="the honest", note="(not in the paper)"), _TRADEOFF_ALT),
}
"""Chapter 4's figures: number -> (caption, alt text), for :func:`sharpmem_lib.plots.show_figure`."""

TREND_CLAIMS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("lam trend", "test_acc"): ("Test accuracy", "λ", "larger λ lowers test accuracy"),
    ("lam trend", "single_query"): ("The best single-query attack (honest protocol)", "λ",
                                    "larger λ lowers attack accuracy"),
    ("lam trend", "multi_query"): ("The label-only attack (honest protocol)", "λ", "larger λ lowers attack accuracy"),
    ("xi trend", "test_acc"): ("Test accuracy", "ξ", "larger ξ costs test accuracy"),
    ("xi trend", "single_query"): ("The best single-query attack (honest protocol)", "ξ",
                                   "larger ξ lowers attack accuracy"),
    ("lam trend", "lambda_max"): ("The top Hessian eigenvalue", "λ", "eq. 4 finds sharper minima as λ grows"),
    ("lam trend", "lambda_max/loss"): ("The top Hessian eigenvalue per unit training loss", "λ",
                                       "eq. 4 finds sharper minima as λ grows"),
}
"""The trend tests of the chapter: (what moves, against which knob, the paper's claim), the
arguments of :func:`sharpmem_lib.report.trend` after the verdict."""


@dataclass(frozen=True)
class MitigationConfig:
    """Everything chapter 4 trains and measures, apart from the buckets' subset models.

    ``recipe`` (:mod:`sharpmem_lib.recipes`) fixes the model and its training; the knobs
    (``sam_rho``, ``sharpreg_rho``, ``sharpreg_lam``, ``sharpreg_xi``) are the recipes'
    knob names, so the SGD and SAM targets are chapter 3's for the same recipe and dataset.
    """

    dataset: str
    recipe: str
    lams: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
    xis: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5)
    sharpreg_rho: float = 0.01
    sharpreg_lam: float = 1.5
    sharpreg_xi: float = 0.3
    sam_rho: float = 0.1
    train_seeds: int = 2
    split_seeds: int = 3
    label_smoothing: float = 0.1
    advreg_alpha: float = 1.0
    selena_models: int = 6
    selena_excluded: int = 3
    dp_noise: float = 1.0
    dp_clip: float = 1.0
    sharpness_iters: int = 50
    lr_controls: bool = True
    nn_attack: str = "cpu"  # privacy.NN_OPTIONS: "selena" (SELENA's 150-epoch NN attack, the paper profile) or "cpu"

    def __post_init__(self) -> None:
        check_choice("nn_attack", self.nn_attack, NN_OPTIONS)
        get_recipe(self.recipe)  # names the valid recipes when it is not one
        object.__setattr__(self, "lams", tuple(float(x) for x in self.lams))
        object.__setattr__(self, "xis", tuple(float(x) for x in self.xis))
        if 0.0 not in self.lams or max(self.lams) <= 0:
            raise ValueError(f"lams={list(self.lams)!r} is not valid: it must contain 0 (SGD, the baseline) and "
                             "at least one λ > 0")
        for i, x in enumerate(self.lams):
            check_nonnegative(f"lams[{i}]", x)
        for i, x in enumerate(self.xis):
            check_nonnegative(f"xis[{i}]", x)
        for name in ("train_seeds", "split_seeds", "sharpness_iters", "selena_models"):
            check_positive(name, getattr(self, name), integer=True)
        for name in ("sharpreg_rho", "sam_rho", "dp_clip"):
            check_positive(name, getattr(self, name))
        for name in ("sharpreg_lam", "sharpreg_xi", "label_smoothing", "advreg_alpha", "dp_noise"):
            check_nonnegative(name, getattr(self, name))
        if not 0 < self.selena_excluded < self.selena_models:
            raise ValueError(f"selena_excluded={self.selena_excluded} is not valid with selena_models="
                             f"{self.selena_models}: SELENA's L must satisfy 0 < L < K")

    def knobs(self) -> dict[str, float]:
        """The algorithm knobs, by the recipes' names."""
        return {"sam_rho": self.sam_rho, "sharpreg_rho": self.sharpreg_rho, "sharpreg_lam": self.sharpreg_lam,
                "sharpreg_xi": self.sharpreg_xi}

    def target(self, method: str, seed: int, *, defense: str = "none", defense_kwargs: dict | None = None,
               **knobs: float) -> ExperimentConfig:
        """The target ``method`` trains with this recipe on this dataset (``knobs`` override
        the chapter's, e.g. ``sharpreg_xi`` in the ξ sweep)."""
        return experiment_config(self.recipe, self.dataset, method, seed, defense=defense,
                                 defense_kwargs=defense_kwargs, **{**self.knobs(), **knobs})

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def lr_control(target: ExperimentConfig) -> ExperimentConfig:
    """The learning-rate control of a SharpReg target (issue 18 §6): plain SGD at
    lr × (1 − ξ), everything else (recipe, schedule, seed, data, defense) identical.

    SharpReg's gradient coefficients (1 + λ − ξ, −λ) sum to 1 − ξ, so without the sharpness
    term it is SGD with its learning rate scaled by 1 − ξ. ``rho``, ``lam`` and ``xi`` go
    back to TrainConfig's defaults, as in every SGD target (so ξ = 0 gives the SGD target
    itself). Raises ``ValueError`` for a target that is not SharpReg or has ξ ≥ 1 (no
    positive learning rate)."""
    train = target.train
    if train.algorithm != "sharpreg":
        raise ValueError(f"lr_control needs a SharpReg target (algorithm='sharpreg'); got "
                         f"algorithm={train.algorithm!r}")
    scale = 1.0 - train.xi
    if scale <= 0:
        raise ValueError(f"xi={train.xi:g} is not valid for a learning-rate control: lr × (1 − ξ) must be positive "
                         "(ξ < 1)")
    default = TrainConfig()
    sgd = replace(train, algorithm="sgd", rho=default.rho, lam=default.lam, xi=default.xi, lr=train.lr * scale)
    return replace(target, train=sgd)


def lam_runs(config: MitigationConfig) -> list[dict]:
    """Fig. 4: eq. 4 at each λ (λ = 0 is the SGD target), every training seed."""
    return [{"config": config.target("sgd", s) if lam == 0 else config.target("sharp", s, sharpreg_lam=lam),
             "method": f"λ = {lam:g}", "lam": lam, "seed": s} for lam in config.lams for s in range(config.train_seeds)]


def xi_runs(config: MitigationConfig) -> list[dict]:
    """Fig. 5b: SharpReg at (ρ, λ) = (``sharpreg_rho``, ``sharpreg_lam``) and each ξ; attacked
    with the final weights only (``whiches``: the chapter shows and tests no other)."""
    return [{"config": config.target("sharpreg", s, sharpreg_xi=xi), "method": f"ξ = {xi:g}", "xi": xi, "seed": s,
             "whiches": ("final",)} for xi in config.xis for s in range(config.train_seeds)]


def method_runs(config: MitigationConfig) -> list[dict]:
    """Fig. 5a and the sharpness comparison: SGD, SAM and SharpReg, every training seed. Fig. 5a
    and the sharpness read the models, not attacks; only SharpReg's final weights are attacked
    (``whiches``), for the learning-rate control's comparison (SGD's final weights are the λ sweep's
    λ = 0 rows; SAM's attack rows were read by nothing)."""
    return [{"config": config.target(m, s), "method": m, "seed": s, "whiches": ("final",) if m == "sharpreg" else ()}
            for m in ("sgd", "sam", "sharpreg") for s in range(config.train_seeds)]


def control_runs(config: MitigationConfig) -> list[dict]:
    """SGD at lr × (1 − ξ) beside SharpReg (:func:`lr_control`): at the chapter's ξ and at
    every ξ of the sweep with 1 − ξ > 0 (ξ = 0 is the SGD target itself). Empty when
    ``config.lr_controls`` is off."""
    if not config.lr_controls:
        return []
    xis = sorted({x for x in (*config.xis, config.sharpreg_xi) if x < 1})
    return [{"config": lr_control(config.target("sharpreg", s, sharpreg_xi=xi)), "method": CONTROL, "xi": xi,
             "seed": s} for xi in xis for s in range(config.train_seeds)]


def defense_runs(config: MitigationConfig) -> list[dict]:
    """Fig. 5c: SGD, SharpReg, label smoothing, AdvReg, SELENA, DP-SGD (trained) and
    MemGuard (an output defense on the SGD target), every training seed; attacked with the
    final weights, and SGD also with its best-validation weights (early stopping), the only
    rows Fig. 5c and the defense tests read (``whiches``)."""
    from sharpmem_lib.defenses import MemGuard

    c, seeds = config, range(config.train_seeds)
    trained = [  # (label, method, recipe knobs, defense, defense kwargs)
        ("SGD", "sgd", {}, "none", {}),
        ("SharpReg", "sharpreg", {}, "none", {}),
        (f"label smoothing {c.label_smoothing:g}", "sgd", {"label_smoothing": c.label_smoothing}, "none", {}),
        (f"AdvReg α={c.advreg_alpha:g}", "sgd", {}, "advreg", {"alpha": c.advreg_alpha}),
        (f"SELENA K={c.selena_models}, L={c.selena_excluded}", "sgd", {}, "selena",
         {"n_models": c.selena_models, "n_excluded": c.selena_excluded}),
        (f"DP-SGD σ={c.dp_noise:g}, C={c.dp_clip:g}", "sgd", {}, "dpsgd",
         {"noise_multiplier": c.dp_noise, "max_grad_norm": c.dp_clip}),
    ]
    runs = [{"config": c.target(method, s, defense=defense, defense_kwargs=dict(kwargs), **knobs), "method": name,
             "seed": s, "whiches": ("final", "best") if name == "SGD" else ("final",)}
            for name, method, knobs, defense, kwargs in trained for s in seeds]
    runs += [{"config": c.target("sgd", s), "method": "MemGuard", "seed": s, "output_defense": lambda: MemGuard(seed=0),
              "whiches": ("final",)} for s in seeds]
    return runs


@dataclass
class Evaluated:
    """One study's targets: the ``runs`` (labels and configs), the attack ``results`` (rows
    of :func:`~sharpmem_lib.privacy.evaluate_runs`, with a ``diverged`` column) and the
    trained ``artifacts`` by position in ``runs`` (diverged runs have none)."""

    runs: list[dict]
    results: pd.DataFrame
    artifacts: dict[int, Artifact]

    def labelled(self) -> dict[tuple[str, int], Artifact]:
        """The artifacts keyed (method, seed)."""
        return {(r["method"], r["seed"]): self.artifacts[i] for i, r in enumerate(self.runs) if i in self.artifacts}


def _evaluate(runs: list[dict], data, config: MitigationConfig, whiches=("final", "best"), **opts) -> Evaluated:
    if not runs:
        return Evaluated([], pd.DataFrame(columns=["method", "seed", "which", "protocol", "diverged"]), {})
    results, artifacts = evaluate_runs(runs, data, list(range(config.split_seeds)), whiches=whiches,
                                       nn=config.nn_attack, **opts)
    return Evaluated(runs, results, artifacts)


@dataclass
class MitigationResults:
    """Chapter 4's studies, evaluated: ``lam`` (Fig. 4), ``xi`` (Fig. 5b), ``methods`` (SGD,
    SAM, SharpReg), ``defenses`` (Fig. 5c), ``controls`` (SGD at lr × (1 − ξ)), the
    memorization ``buckets`` (chapter 2's) and ``sharpness`` (:func:`sharpness_table`)."""

    config: MitigationConfig
    data: Any
    buckets: MemorizationBuckets
    lam: Evaluated
    xi: Evaluated
    methods: Evaluated
    defenses: Evaluated
    controls: Evaluated
    sharpness: pd.DataFrame = field(default_factory=pd.DataFrame)
    buckets_config: SubsamplingConfig | None = None

    @property
    def top_lam(self) -> str:
        return f"λ = {max(self.config.lams):g}"


def buckets_config(dataset: str, recipe: str, n_models: int) -> SubsamplingConfig:
    """The subset models (Feldman & Zhang's estimator, chapter 2) that ``recipe`` trains on
    ``dataset``: ``n_models`` models, each on a random 70 % of the members."""
    r = get_recipe(recipe)
    return SubsamplingConfig(dataset, r.model, r.train, n_models=n_models, model_kwargs=dict(r.model_kwargs))


def run_mitigation(config: MitigationConfig, bucket_recipe: str = "digits_mlp_subset", bucket_models: int = 1000, *,
                   results_dir: str | Path | None = None, data_dir: str | Path | None = None,
                   influence_file: str | Path | None = None, progress: bool = True) -> MitigationResults:
    """Train (or read) and attack every target of chapter 4, measure the sharpness of the
    SGD/SAM/SharpReg targets, of the λ sweep and of the control at the chapter's ξ, and
    compute chapter 2's buckets: from Feldman & Zhang's ``influence_file`` when given, else
    from ``bucket_models`` subset models of ``bucket_recipe`` (:func:`buckets_config`)."""
    from sharpmem_lib.data import load_dataset

    check_positive("bucket_models", bucket_models, integer=True)
    subsets = buckets_config(config.dataset, bucket_recipe, bucket_models)  # checks the recipe before training
    data = load_dataset(config.dataset, data_dir=data_dir)
    opts = dict(results_dir=results_dir, data_dir=data_dir, progress=progress)
    lam, xi = _evaluate(lam_runs(config), data, config, **opts), _evaluate(xi_runs(config), data, config, **opts)
    methods = _evaluate(method_runs(config), data, config, **opts)
    defenses = _evaluate(defense_runs(config), data, config, **opts)
    controls = _evaluate(control_runs(config), data, config, whiches=("final",), **opts)
    mb = memorization_buckets(subsets, results_dir, data_dir=data_dir, influence_file=influence_file,
                              progress=progress)
    res = MitigationResults(config, data, mb, lam, xi, methods, defenses, controls, buckets_config=subsets)
    res.sharpness = sharpness_table(res)
    return res


def normalised_sharpness(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``lambda_max/loss``: the top Hessian eigenvalue divided by the
    training loss it was measured at (both on the same training points and weights), the
    comparison at matched loss the chapter uses before it calls a minimum sharper."""
    if not {"lambda_max", "train_loss"} <= set(table.columns):
        raise ValueError(f"table needs columns 'lambda_max' and 'train_loss'; it has {list(table.columns)}")
    loss = table["train_loss"].astype(float)
    return table.assign(**{"lambda_max/loss": np.where(loss > 0, table["lambda_max"].astype(float) / loss, np.nan)})


def sharpness_table(res: MitigationResults) -> pd.DataFrame:
    """Measured sharpness of the final weights (:func:`~sharpmem_lib.sharpness.artifact_sharpness`),
    one row per (method, seed): SGD, SAM, SharpReg, the control at the chapter's ξ, and every
    λ of the sweep (``lam`` set; λ = 0 is the SGD target). Columns ``train_loss``,
    ``lambda_max``, ``lambda_max/loss`` and ``sam_sharpness@ρ``."""
    xi = res.config.sharpreg_xi
    studies = [(res.methods, lambda r: True), (res.controls, lambda r: r["xi"] == xi), (res.lam, lambda r: True)]
    rows = []
    for ev, keep in studies:
        for i, run in enumerate(ev.runs):
            if i in ev.artifacts and keep(run):
                rows.append({"method": run["method"], "seed": run["seed"], "lam": run.get("lam", np.nan),
                             **artifact_sharpness(ev.artifacts[i], res.data, "final", rhos=SHARPNESS_RHOS,
                                                  iters=res.config.sharpness_iters)})
    columns = ["method", "seed", "lam", "train_loss", "lambda_max", *(f"sam_sharpness@{r:g}" for r in SHARPNESS_RHOS)]
    return normalised_sharpness(pd.DataFrame(rows, columns=columns))


def bucket_table(res: MitigationResults, study: str, which: str) -> pd.DataFrame:
    """Accuracy per (method, seed, bucket) of a study's targets (``"lam"`` or ``"methods"``),
    :func:`~sharpmem_lib.buckets.bucket_accuracy_table` over chapter 2's buckets."""
    ev: Evaluated = getattr(res, study)
    mb = res.buckets
    return bucket_accuracy_table(ev.labelled(), mb.test_ids, np.asarray(res.data.y), mb.bucket, which=which)


def _per_seed(results: pd.DataFrame, by: str, metrics, protocol: str, which: str = "final") -> pd.DataFrame:
    df = results[(results.protocol == protocol) & (results.which == which) & ~results.diverged.astype(bool)]
    return df.groupby([by, "seed"])[list(metrics)].mean().reset_index()


def xi_outcomes(res: MitigationResults) -> dict[str, list[float]]:
    """ξ values whose runs diverged (``diverged``), and those that trained to near-chance
    test accuracy, under 2 / classes (``collapsed``; left out of the ξ trends)."""
    r = res.xi.results
    diverged = r.groupby("xi")["diverged"].any()
    summary = summarize(r, ["xi", "which", "protocol"])
    ok = summary[(summary.which == "final") & (summary.protocol == "honest")].set_index("xi")
    return {"diverged": [float(x) for x in diverged[diverged].index],
            "collapsed": [float(x) for x in ok[ok["test_acc_mean"] < 2.0 / res.data.num_classes].index]}


def control_table(res: MitigationResults, protocol: str = "honest") -> pd.DataFrame:
    """SharpReg against its learning-rate control at every ξ both ran, the chapter's ξ
    included (final weights, mean over training and split seeds, in percent): test accuracy,
    best single-query and label-only attack of each, and SharpReg − control."""
    metrics = ("test_acc", "single_query", "multi_query")
    sr = _per_seed(res.xi.results, "xi", metrics, protocol).groupby("xi")[list(metrics)].mean()
    if res.config.sharpreg_xi not in sr.index:  # the chapter's own ξ, from the SGD/SAM/SharpReg study
        own = _per_seed(res.methods.results, "method", metrics, protocol)
        own = own[own.method == "sharpreg"][list(metrics)].mean()
        sr = pd.concat([sr, own.to_frame(res.config.sharpreg_xi).T]).sort_index()
    ctl = _per_seed(res.controls.results, "xi", metrics, protocol).groupby("xi")[list(metrics)].mean()
    common = sr.index.intersection(ctl.index)
    names = {"test_acc": "test acc", "single_query": "single-query", "multi_query": "label-only"}
    out = pd.DataFrame(index=pd.Index(common, name="ξ"))
    for m, name in names.items():
        out[f"SharpReg {name} (%)"] = (100 * sr.loc[common, m]).round(2)
        out[f"control {name} (%)"] = (100 * ctl.loc[common, m]).round(2)
        out[f"difference {name} (points)"] = (100 * (sr.loc[common, m] - ctl.loc[common, m])).round(2)
    return out


def defense_summary(res: MitigationResults) -> pd.DataFrame:
    """Fig. 5c's points: mean ± std per (method, protocol) of the final weights, plus SGD's
    best-validation weights as "early stopping (SGD)"."""
    d = res.defenses.results
    early = d[(d.method == "SGD") & (d.which == "best")].assign(method="early stopping (SGD)")
    return summarize(pd.concat([d[d.which == "final"], early]), ["method", "protocol"])


def defense_table(summary: pd.DataFrame, protocol: str | None = None) -> pd.DataFrame:
    """:func:`defense_summary` as the chapter shows it: mean test accuracy, best single-query
    and label-only attack per method, in percent. With ``protocol`` (the chapter's use: one
    protocol per table, named in its title) only that protocol's rows; without it one
    column per protocol."""
    names = {"test_acc_mean": "test acc (%)", "single_query_mean": "single-query (%)",
             "multi_query_mean": "label-only (%)"}
    cols = list(names)
    if protocol is not None:
        from sharpmem_lib.validation import check_choice

        check_choice("protocol", protocol, sorted(summary["protocol"].unique()))
        show = summary[summary["protocol"] == protocol].set_index("method")[cols]
        return (100 * show).round(2).rename(columns=names)
    show = summary.set_index(["method", "protocol"])[cols]
    return (100 * show.unstack("protocol")).round(2).rename(columns=names)


def defense_numbers(res: MitigationResults) -> dict[str, float | str]:
    """The numbers chapter 4's Fig. 5c prose states (fractions; methods by name): SGD's and
    SharpReg's attack and test accuracy, the lowest and highest attack (SELENA's protocol),
    the honest range, DP-SGD's attack under both protocols and its ε (mean over seeds)."""
    s = defense_summary(res)
    sel, hon = s[s.protocol == "selena"].set_index("method"), s[s.protocol == "honest"].set_index("method")
    ranked = sel["single_query_mean"].sort_values()
    eps = [a.history[-1]["epsilon"] for i, a in res.defenses.artifacts.items()
           if res.defenses.runs[i]["method"].startswith("DP-SGD") and a.history and "epsilon" in a.history[-1]]
    return {"sgd_attack": sel.loc["SGD", "single_query_mean"],
            "sharpreg_attack": sel.loc["SharpReg", "single_query_mean"],
            "sgd_acc": sel.loc["SGD", "test_acc_mean"], "sharpreg_acc": sel.loc["SharpReg", "test_acc_mean"],
            "lowest_method": ranked.index[0], "lowest_attack": ranked.iloc[0],
            "highest_method": ranked.index[-1], "highest_attack": ranked.iloc[-1],
            "honest_min": hon["single_query_mean"].min(), "honest_max": hon["single_query_mean"].max(),
            "dp_selena": sel.filter(like="DP-SGD", axis=0)["single_query_mean"].mean(),
            "dp_honest": hon.filter(like="DP-SGD", axis=0)["single_query_mean"].mean(),
            "dp_epsilon": float(np.mean(eps)) if eps else float("nan")}


def chapter_tests(res: MitigationResults) -> tuple[dict, dict[Any, int]]:
    """Chapter 4's family of tests and the paper's expected sign of each, for
    :func:`~sharpmem_lib.stats.holm_verdicts`. Keys:

    * ``("lam", b)``: the largest λ − SGD per bucket b (Fig. 4a; paper: −, most in bucket 1;
      0, no paper direction, in the highest bucket, where the paper sees "minimal" change);
    * ``("lam", "pattern")``, ``("sharpreg", "pattern")``: (change in bucket 1) − (change in
      the highest bucket not at the ceiling), paired by seed (:func:`~sharpmem_lib.buckets.pattern_test`;
      −: the loss concentrates in bucket 1);
    * ``("sharpreg", b)``: SharpReg − SGD per bucket (Fig. 5a, best weights; −);
    * ``("lam trend", m)``, ``("xi trend", m)``: Spearman trends within seeds (−; for
      ``lambda_max`` and ``lambda_max/loss`` along λ, +), over runs that trained;
    * ``("sharpness", name)``, ``("sharpness/loss", name)``: SAM (−) and SharpReg (+) − SGD
      in λmax and in λmax / training loss, paired by seed;
    * ``("defense", name)``: each defense − SGD in the honest best single-query attack (−);
    * ``("lr control", m)``: SharpReg − SGD at lr × (1 − ξ) at the chapter's ξ, paired by
      seed (honest protocol, final weights): attacks (−), ``lambda_max`` and
      ``lambda_max/loss`` (+), and ``test_acc`` (0: the paper gives no direction against this
      control).

    Every attack test uses the honest protocol (nothing chosen on evaluation data). Which
    of them decide the paper's claims, and which are exploratory or empty: :func:`chapter_roles`.
    """
    tests: dict = {}
    expected: dict = {}

    def add(key, test, sign):
        tests[key], expected[key] = test, sign

    lam_b, m_b = bucket_table(res, "lam", "final"), bucket_table(res, "methods", "best")
    top = {id(lam_b): int(lam_b["bucket"].max()), id(m_b): int(m_b["bucket"].max())}
    for b, t in paired_tests_by(lam_b, res.top_lam, "λ = 0", "acc", "bucket").items():
        add(("lam", b), t, 0 if b == top[id(lam_b)] else -1)
    for family, table, method, base in (("lam", lam_b, res.top_lam, "λ = 0"), ("sharpreg", m_b, "sharpreg", "sgd")):
        high, t = pattern_test(table, method, base)
        if high is not None:
            add((family, "pattern"), t, -1)
    per_lam = _per_seed(res.lam.results, "lam", ("test_acc", "single_query", "multi_query"), "honest")
    for m in ("test_acc", "single_query", "multi_query"):
        add(("lam trend", m), sweep_test(per_lam, "lam", m), -1)
    for key, (test, sign) in sharpness_tests(res.sharpness).items():
        add(key, test, sign)
    for b, t in paired_tests_by(m_b, "sharpreg", "sgd", "acc", "bucket").items():
        add(("sharpreg", b), t, 0 if b == top[id(m_b)] else -1)
    collapsed = xi_outcomes(res)["collapsed"]
    per_xi = _per_seed(res.xi.results, "xi", ("test_acc", "single_query"), "honest")
    per_xi = per_xi[~per_xi["xi"].isin(collapsed)]
    for m in ("test_acc", "single_query"):
        add(("xi trend", m), sweep_test(per_xi, "xi", m), -1)
    d = res.defenses.results
    honest = d[(d.protocol == "honest") & (d.which == "final")].groupby(["method", "seed"])["single_query"].mean()
    honest = honest.reset_index().assign(what="attack")
    early = d[(d.protocol == "honest") & (d.which == "best") & (d.method == "SGD")]
    early = early.groupby("seed")["single_query"].mean().reset_index().assign(method="early stopping (SGD)",
                                                                              what="attack")
    honest = pd.concat([honest, early], ignore_index=True)
    for name in [n for n in honest["method"].unique() if n != "SGD"]:
        add(("defense", name), paired_tests_by(honest, name, "SGD", "single_query", "what")["attack"], -1)
    if res.config.lr_controls and res.config.sharpreg_xi < 1:
        for m, t in control_tests(res).items():
            add(("lr control", m), t, 0 if m == "test_acc" else -1 if m in ("single_query", "multi_query") else 1)
    return tests, expected


CONFIRMATORY = ("lam trend", "xi trend")
"""Chapter 4's groups whose every test decides one of the paper's claims (Figs. 4b, 5b)."""


def chapter_roles(res: MitigationResults, tests: dict) -> dict[str, list]:
    """Which of :func:`chapter_tests` are exploratory and which empty, for
    :func:`~sharpmem_lib.stats.holm_verdicts` (``**chapter_roles(res, tests)``).

    Confirmatory (the Holm family): the paper's claims, Fig. 4a and 5a in bucket 1 and the
    bucket-1-versus-highest-bucket pattern, the λ and ξ trends of test accuracy and attacks
    (Figs. 4b, 5b), and SharpReg − SGD in the honest attack (Fig. 5c). Exploratory (reported
    unadjusted, labelled so): buckets 2.. (the paper says they "interpolate"), the sharpness
    measurements and trends (the paper assumes them, never measures), the other defenses,
    and the learning-rate control (issue 18 §6, not a claim of the paper). Empty (no test):
    buckets where every run scores 100 % (:func:`~sharpmem_lib.buckets.ceiling_buckets`)."""
    lam_b, m_b = bucket_table(res, "lam", "final"), bucket_table(res, "methods", "best")
    ceiling = {"lam": set(ceiling_buckets(lam_b)), "sharpreg": set(ceiling_buckets(m_b))}
    empty = [k for k in tests if k[0] in ceiling and k[1] in ceiling[k[0]]]

    def confirmatory(k) -> bool:
        if k[0] in ("lam", "sharpreg"):
            return k[1] in (1, "pattern")
        if k[0] in CONFIRMATORY:
            return k[1] in ("test_acc", "single_query", "multi_query")
        return k == ("defense", "SharpReg")

    return {"exploratory": [k for k in tests if not confirmatory(k) and k not in empty], "empty": empty}


def sweep_test(frame: pd.DataFrame, knob: str, metric: str):
    """How ``metric`` moves along the sweep of ``knob`` (columns ``knob``, ``seed``, ``metric``;
    mean over rows of one (setting, seed)). With exactly two settings a rank trend test
    within seeds has 2^seeds arrangements (5 seeds: p ≥ 0.0625, never below 0.05), so the
    two are compared directly: :func:`~sharpmem_lib.stats.paired_test` of high − low, paired
    by seed (its sign is the trend's). With three or more,
    :func:`~sharpmem_lib.stats.trend_test` within seeds, which carries its smallest
    attainable p (``p_min``)."""
    values = sorted(frame[knob].dropna().unique())
    if len(values) == 2:
        wide = frame.pivot_table(index="seed", columns=knob, values=metric, aggfunc="mean", dropna=False)
        return paired_test(wide[values[1]].to_numpy(float), wide[values[0]].to_numpy(float))
    return trend_test(frame[knob], frame[metric], frame["seed"])


def sweep_grids(res: MitigationResults) -> dict[str, list[float]]:
    """The settings each sweep's tests compare, as :func:`chapter_tests` uses them: ``lam``
    (every λ with a run that trained) and ``xi`` (every ξ with a run that trained and did
    not collapse to chance); diverged runs are left out of the tests, so a setting where
    every run diverged is no setting of the comparison."""
    collapsed = set(xi_outcomes(res)["collapsed"])
    trained = {knob: set(_per_seed(r, knob, ("test_acc",), "honest")[knob].astype(float))
               for knob, r in (("lam", res.lam.results), ("xi", res.xi.results))}
    return {"lam": sorted(trained["lam"]), "xi": sorted(trained["xi"] - collapsed)}


def sharpness_tests(sharp: pd.DataFrame) -> dict[tuple[str, str], tuple[Any, int]]:
    """The sharpness part of the chapter's family, with the paper's sign: SAM (−) and
    SharpReg (+) − SGD, paired by seed, in ``lambda_max`` (key ``("sharpness", name)``) and in
    ``lambda_max/loss`` (``("sharpness/loss", name)``), and the Spearman trend of each along λ
    within seeds (``("lam trend", column)``, +). ``sharp``: :func:`sharpness_table`'s rows
    (λ-sweep rows have ``lam`` set, the others NaN)."""
    by_seed = sharp[sharp["lam"].isna()]  # SGD, SAM, SharpReg and the control
    lam_sharp = sharp.dropna(subset=["lam"])
    out = {}
    for column, family in (("lambda_max", "sharpness"), ("lambda_max/loss", "sharpness/loss")):
        for name, sign in (("sam", -1), ("sharpreg", 1)):  # the paper's premise: SAM flatter, SharpReg sharper
            tests = paired_tests_by(by_seed.assign(what=column), name, "sgd", column, "what")
            out[(family, name)] = (tests.get(column, paired_test([])), sign)
        out[("lam trend", column)] = (sweep_test(lam_sharp, "lam", column), 1)
    return out


def control_tests(res: MitigationResults) -> dict[str, Any]:
    """SharpReg − its control at the chapter's ξ, paired by seed: test accuracy and attacks
    (honest protocol, final weights, mean over splits), λmax and λmax / loss."""
    metrics = ("test_acc", "single_query", "multi_query")
    xi = res.config.sharpreg_xi
    sr = _per_seed(res.methods.results, "method", metrics, "honest")
    sr = sr[sr.method == "sharpreg"].set_index("seed")
    ctl = _per_seed(res.controls.results, "xi", metrics, "honest")
    ctl = ctl[np.isclose(ctl["xi"], xi)].set_index("seed")
    sharp = res.sharpness
    s_sr = sharp[sharp.method == "sharpreg"].set_index("seed")
    s_ctl = sharp[sharp.method == CONTROL].set_index("seed")
    out = {}
    for m in metrics:
        common = sr.index.intersection(ctl.index)
        out[m] = paired_test(sr.loc[common, m].to_numpy(float), ctl.loc[common, m].to_numpy(float))
    for m in ("lambda_max", "lambda_max/loss"):
        common = s_sr.index.intersection(s_ctl.index)
        out[m] = paired_test(s_sr.loc[common, m].to_numpy(float), s_ctl.loc[common, m].to_numpy(float))
    return out


def bucket_gain(table: pd.DataFrame, method: str, baseline: str) -> pd.DataFrame:
    """:func:`~sharpmem_lib.stats.paired_gain` of ``method`` − ``baseline`` per bucket."""
    return paired_gain(table, method, baseline, "acc", by="bucket")


def headline_numbers(res: MitigationResults, lam_buckets: pd.DataFrame, method_buckets: pd.DataFrame) -> dict[str, Any]:
    """The numbers chapter 4's prose states, as numbers (fractions, not percent):
    ``lam_bucket1``/``lam_bucket5`` and ``sr_bucket1``/``sr_bucket5`` (the largest λ − SGD,
    SharpReg − SGD in buckets 1 and 5; NaN where a bucket is empty), the gains per bucket
    (``lam_gain``, ``sr_gain``) and the buckets where every run scores 100 % (``lam_ceiling``,
    ``sr_ceiling``), mean ``lmax_<m>`` and
    ``lmax_loss_<m>`` (λmax and λmax / loss) and ``loss_<m>`` (final training loss, the
    sharpness table's) for sgd, sam, sharpreg and ``control``; ``xi_attack_means`` and
    ``control_attack_means`` ({ξ: honest best single-query attack}, :func:`control_table`'s),
    ``xi_test_means`` and ``control_test_means`` (the same for test accuracy); the
    ξ values that diverged or collapsed, the chapter's (ρ, λ, ξ), the largest λ's label
    (``top_lam``), the number of training seeds (``train_seeds``: a sweep's rank trend
    runs over them), and
    :func:`defense_numbers`."""
    c = res.config
    out: dict[str, Any] = {"sharpreg_rho": c.sharpreg_rho, "sharpreg_lam": c.sharpreg_lam, "sharpreg_xi": c.sharpreg_xi,
                           "top_lam": res.top_lam, "train_seeds": c.train_seeds}
    for key, table, method, base in (("lam", lam_buckets, res.top_lam, "λ = 0"), ("sr", method_buckets, "sharpreg",
                                                                                   "sgd")):
        frame = bucket_gain(table, method, base)
        out[f"{key}_gain"] = frame  # per bucket, for the bucket-pattern sentence
        out[f"{key}_ceiling"] = ceiling_buckets(table)  # every run at 100 %
        out[f"{key}_pattern"] = pattern_test(table, method, base)  # (comparison bucket, bucket 1 − it)
        gain = frame.set_index("bucket")["gain"] if len(frame) else pd.Series(dtype=float)
        for b in (1, 5):
            out[f"{key}_bucket{b}"] = float(gain.get(b, np.nan))
    columns = ["lambda_max", "lambda_max/loss"] + (["train_loss"] if "train_loss" in res.sharpness else [])
    means = res.sharpness.groupby("method")[columns].mean()
    for name, method in (("sgd", "sgd"), ("sam", "sam"), ("sharpreg", "sharpreg"), ("control", CONTROL)):
        known = method in means.index
        out[f"lmax_{name}"] = float(means.loc[method, "lambda_max"]) if known else np.nan
        out[f"lmax_loss_{name}"] = float(means.loc[method, "lambda_max/loss"]) if known else np.nan
        out[f"loss_{name}"] = float(means.loc[method, "train_loss"]) if known and "train_loss" in means else np.nan
    try:  # the honest best single-query attack per ξ, SharpReg's and its learning-rate control's
        table = control_table(res)
        out["xi_attack_means"] = {float(x): float(table.loc[x, "SharpReg single-query (%)"]) / 100 for x in table.index}
        out["control_attack_means"] = {float(x): float(table.loc[x, "control single-query (%)"]) / 100
                                       for x in table.index}
        out["xi_test_means"] = {float(x): float(table.loc[x, "SharpReg test acc (%)"]) / 100 for x in table.index}
        out["control_test_means"] = {float(x): float(table.loc[x, "control test acc (%)"]) / 100 for x in table.index}
    except (KeyError, ValueError, AttributeError):  # no control or ξ runs in this study
        out["xi_attack_means"], out["control_attack_means"], out["xi_test_means"], out["control_test_means"] = \
            {}, {}, {}, {}
    out["bucket_source"] = res.buckets.source
    outcomes = xi_outcomes(res)
    out["xi_diverged"], out["xi_collapsed"] = outcomes["diverged"], outcomes["collapsed"]
    out["xi_values"] = sorted(float(x) for x in c.xis)  # the whole ξ grid, for "up to which ξ"
    out["grids"] = sweep_grids(res)  # the settings the sweep tests compare (two: high vs low, not a trend)
    return out | defense_numbers(res)
