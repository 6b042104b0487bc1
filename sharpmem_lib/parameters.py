"""Chapter parameters: every value a notebook accepts is checked before anything trains.

A chapter's parameters come from its parameters cell, a profile (``notebooks/params/*.yaml``)
or ``papermill -p/-y``. :func:`check_parameters` holds each of them to a rule by name
(:data:`RULES`: type, range, choices, emptiness; one rule per knob name across chapters),
then to its chapter's checks of values that only make sense together
(:data:`CHAPTER_CHECKS`, e.g. milestones inside the epochs, λ = 0 among chapter 4's λ),
and checks that every file the chapter reads is there. Errors name the parameter and what
it may be. Each notebook calls :func:`check_notebook_parameters` in the cell after its
parameters; ``make book`` calls :func:`check_parameters` for every chapter before it
executes the first one.
"""

from __future__ import annotations

import ast
import os
from typing import Any, Callable

from sharpmem_lib.validation import (
    check_bool,
    check_choice,
    check_int,
    check_list,
    check_number,
    check_str,
)

__all__ = ["RULES", "COUNT_CAPS", "FLOAT_CAPS", "CHAPTER_CHECKS", "check_parameters", "check_notebook_parameters",
           "injected_parameters", "literal_defaults", "notebook_run", "papermill_options", "papermill_yaml",
           "check_papermill_yaml", "needed_datasets", "needed_files", "rule_for"]

Rule = Callable[[str, Any, dict], None]  # (name, value, every parameter of the chapter)


# ------------------------------------------------------------------------------ rules


def _int(minimum: int | None = None, cap: int | None = None) -> Rule:
    """An integer >= ``minimum``; ``cap``: a count above it is refused as a likely typo."""
    def rule(name, value, _):
        check_int(name, value, minimum)
        if cap is not None and value > cap:
            raise ValueError(f"{name}={value} is not valid; it must be at most {cap:,}, a guard against typos "
                             f"(the paper's scale needs far less; each unit of {name} costs training or evaluation "
                             "time). To run more on purpose, raise its cap in sharpmem_lib.parameters.COUNT_CAPS")
    return rule


# Upper bounds on counts: a typo like n_models=2000000 would start days of training before anyone
# notices. Each cap lies well above the paper profile (notebooks/params/paper.yaml: seeds 300,
# subset models 2,000, LiRA 256 models, 200 epochs, 500 boundary points, grid 300).
COUNT_CAPS = {"seeds": 1_000, "models": 20_000, "targets": 10_000, "epochs": 10_000, "points": 100_000,
              "iters": 100_000, "grid": 5_000, "toy": 1_000_000, "test": 10_000_000, "show": 100}


def _number(minimum=None, maximum=None, open_min=False, open_max=False) -> Rule:
    return lambda name, value, _: check_number(name, value, minimum, maximum, open_min=open_min, open_max=open_max)


# Upper bounds on the real-valued knobs: sam_rho=1e300 (or 1.0e+30 for 1.0e-30) passed the check,
# trained, and diverged with 'try a smaller lr or xi', naming a parameter that was not at fault.
# Each cap lies far above every profile and the paper (lr 0.1, rho 0.1 / 0.01, lambda 1.5 and
# sweeps to 3, xi 0.3 and sweeps to 2.5, weight decay 5e-4, AdvReg alpha 3, DP noise 1 and clip 1)
# and above what these methods are run with anywhere; beyond it a run diverges or does nothing.
FLOAT_CAPS = {"lr": 10.0, "rho": 10.0, "lam": 100.0, "xi": 100.0, "weight_decay": 1.0, "alpha": 100.0,
              "noise": 100.0, "clip": 1_000.0}


def _capped(kind: str, positive: bool = True) -> Rule:
    """A finite number > 0 (``positive``) or >= 0, and at most ``FLOAT_CAPS[kind]``."""
    cap = FLOAT_CAPS[kind]

    def rule(name, value, _):
        check_number(name, value, 0, open_min=positive, cap=cap)
        if value > cap:
            raise ValueError(f"{name}={value!r} is not valid; it must be at most {cap:g} (a guard against typos: "
                             f"every profile and the paper use far less, and such a {name} diverges or does nothing). "
                             f"To go beyond on purpose, raise FLOAT_CAPS[{kind!r}] in sharpmem_lib.parameters")
    return rule


def _capped_list(kind: str, example: str) -> Rule:
    """A non-empty list of distinct numbers >= 0, each at most ``FLOAT_CAPS[kind]``."""
    item = _capped(kind, positive=False)
    return lambda name, value, params: check_list(name, value, lambda n, v: item(n, v, params),
                                                  what=f"numbers >= 0 and <= {FLOAT_CAPS[kind]:g}", example=example,
                                                  unique=True)


def _string(name, value, _):
    check_str(name, value)


def _flag(name, value, _):
    check_bool(name, value)


def _data_dir(params: dict):
    return params.get("data_dir") or None


def _dataset(name, value, params, *, optional: bool = False):
    from sharpmem_lib.data import check_dataset_name

    if optional and value == "":
        return
    check_dataset_name(value, _data_dir(params), parameter=name)


def _trainable_dataset(name, value, params, *, optional: bool = False):
    """A dataset a target model can train on: registered (or a user npz) and partitioned."""
    from sharpmem_lib.splits import partitioned_datasets

    if optional and value == "":
        return
    _dataset(name, value, params)
    check_choice(name, value, partitioned_datasets())


def _datasets(name, value, params):
    check_list(name, value, lambda n, v: _trainable_dataset(n, v, params), what="dataset names",
               example="[digits, longtail]", unique=True)


def _model(name, value, _):
    from sharpmem_lib.models import MODELS

    check_choice(name, value, MODELS)


def _algorithms(name, value, _):
    from sharpmem_lib.optim import ALGORITHMS

    check_list(name, value, lambda n, v: check_choice(n, v, ALGORITHMS), what="algorithm names",
               example="[sgd, sam]", unique=True)


def _widths(name, value, _):
    check_list(name, value, lambda n, v: check_int(n, v, 1), what="layer widths (integers >= 1)", example="[64]")


def _milestones(name, value, _):
    check_list(name, value, lambda n, v: check_int(n, v, 1), what="epochs (integers >= 1)", example="[60, 120, 160]",
               empty=True, unique=True)
    if list(value) != sorted(value):
        raise ValueError(f"{name}={value!r} is not valid; the epochs must be in increasing order")


def _which(name, value, _):
    check_choice(name, value, ["best", "final"])


def _nn_attack(name, value, _):
    from sharpmem_lib.privacy import NN_OPTIONS

    check_choice(name, value, list(NN_OPTIONS))


def _ground_truth(name, value, _):
    check_choice(name, value, ["", "longtail"])  # the only dataset with known subpopulation sizes


def _boundary_methods(name, value, _):
    from sharpmem_lib.attacks.boundary import BOUNDARY_METHODS

    check_list(name, value, lambda n, v: check_choice(name, v, BOUNDARY_METHODS), what="boundary attacks",
               example="[hopskipjump, cw]", empty=True, unique=True)


def _recipe(name, value, _):
    from sharpmem_lib.recipes import RECIPES

    check_str(name, value)
    check_choice(name, value, RECIPES)


def _recipes(name, value, params):
    """A mapping dataset -> recipe name (chapter 3: one target recipe per dataset)."""
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{name}={value!r} is not valid; it must be a non-empty mapping of dataset -> recipe, "
                         "e.g. {digits: digits_mlp, longtail: longtail_mlp} (papermill: -y 'recipes: {...}')")
    for dataset, recipe in value.items():
        _trainable_dataset(f"{name} (dataset)", dataset, params)
        check_str(f"{name}[{dataset!r}]", recipe)
        _recipe(f"{name}[{dataset!r}]", recipe, params)


def _optional_recipe(name, value, params):
    """A recipe name, or "" for the chapter's own recipe (chapter 3's lira_recipe)."""
    check_str(name, value)
    if value:
        _recipe(name, value, params)


def _file(name, value, params):
    check_str(name, value)  # "" for none; the file itself is checked by needed_files


RULES: dict[str, Rule] = {
    "profile": lambda n, v, _: check_str(n, v, empty=False),
    "data_dir": _string,
    "results_dir": _string,
    "dataset": _trainable_dataset,
    "datasets": _datasets,
    "ground_truth_dataset": _ground_truth,
    "boundary_dataset": lambda n, v, p: _trainable_dataset(n, v, p, optional=True),
    "lira_dataset": lambda n, v, p: _trainable_dataset(n, v, p, optional=True),
    "influence_file": _file,
    "model": _model,
    "algorithms": _algorithms,
    "hidden": _widths,
    "seed": _int(0),
    "seeds": _int(1, COUNT_CAPS["seeds"]),
    "seeds_many": _int(1, COUNT_CAPS["seeds"]),
    "train_seeds": _int(1, COUNT_CAPS["seeds"]),
    "split_seeds": _int(1, COUNT_CAPS["seeds"]),
    "epochs": _int(1, COUNT_CAPS["epochs"]),
    "batch_size": _int(1),
    "lr": _capped("lr"),
    "swa_lr": _capped("lr"),
    "swa_start": _number(0, 1, open_max=True),
    "momentum": _number(0, 1, open_max=True),
    "weight_decay": _capped("weight_decay", positive=False),
    "lr_milestones": _milestones,
    "lr_gamma": _number(0, 1, open_min=True),
    "augment": _flag,
    "recipe": _recipe,
    "recipes": _recipes,
    "sam_rho": _capped("rho"),
    "sharpreg_rho": _capped("rho"),
    "sharpreg_lam": _capped("lam", positive=False),
    "sharpreg_xi": _capped("xi", positive=False),
    "lams": _capped_list("lam", "[0.0, 1.0, 2.0]"),
    "xis": _capped_list("xi", "[0.0, 0.3, 1.0]"),
    "n_few": _int(2, COUNT_CAPS["toy"]),
    "n_many": _int(2, COUNT_CAPS["toy"]),
    "n_test": _int(1, COUNT_CAPS["test"]),
    "atypical_weight": _number(0, 1, open_min=True, open_max=True),
    "grid_resolution": _int(2, COUNT_CAPS["grid"]),
    "n_models": _int(2, COUNT_CAPS["models"]),
    "bucket_models": _int(2, COUNT_CAPS["models"]),
    "fraction": _number(0, 1, open_min=True, open_max=True),
    "n_show": _int(1, COUNT_CAPS["show"]),
    "which": _which,
    "boundary_methods": _boundary_methods,
    "nn_attack": _nn_attack,
    "boundary_points": _int(1, COUNT_CAPS["points"]),
    "boundary_iters": _int(0, COUNT_CAPS["iters"]),
    "lira_models": _int(2, COUNT_CAPS["models"]),
    "lira_targets": _int(1, COUNT_CAPS["targets"]),
    "lira_memorization_models": _int(2, COUNT_CAPS["models"]),
    "lira_recipe": _optional_recipe,
    "lira_fraction": _number(0, 1, open_min=True, open_max=True),
    "label_smoothing": _number(0, 1, open_max=True),
    "advreg_alpha": _capped("alpha", positive=False),
    "selena_models": _int(2, COUNT_CAPS["models"]),
    "selena_excluded": _int(1, COUNT_CAPS["models"]),
    "dp_noise": _capped("noise"),
    "dp_clip": _capped("clip"),
    "sharpness_iters": _int(1, COUNT_CAPS["iters"]),
}

# A knob named like one of these follows the same rule (one name per knob across chapters).
SUFFIX_RULES: dict[str, Rule] = {
    "_seeds": _int(1, COUNT_CAPS["seeds"]), "_epochs": _int(1, COUNT_CAPS["epochs"]),
    "_models": _int(2, COUNT_CAPS["models"]), "_iters": _int(0, COUNT_CAPS["iters"]),
    "_points": _int(1, COUNT_CAPS["points"]),
    "_lr": _capped("lr"), "_rho": _capped("rho"), "_hidden": _widths,
    "_dataset": lambda n, v, p: _dataset(n, v, p, optional=True),
    "_file": _file, "_batch_size": _int(1), "_recipe": _recipe,
}


def rule_for(name: str) -> Rule | None:
    """The rule for parameter ``name``: by its name, else by its suffix, else None."""
    if name in RULES:
        return RULES[name]
    return next((rule for suffix, rule in SUFFIX_RULES.items() if name.endswith(suffix)), None)


# ------------------------------------------------------------- values that go together


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _has(p: dict, *names: str) -> bool:
    """Every one of ``names`` is a parameter here (a chapter check applies only then)."""
    return all(n in p for n in names)


def _milestones_inside_epochs(p: dict) -> None:
    if _has(p, "lr_milestones", "epochs"):
        late = [m for m in p["lr_milestones"] if m >= p["epochs"]]
        _need(not late, f"lr_milestones={p['lr_milestones']!r} is not valid with epochs={p['epochs']}: "
                        f"milestone(s) {late} are never reached; each must be < epochs")


def _subsets_fit(p: dict, fraction_key: str, *dataset_keys: str) -> None:
    """``p[fraction_key]`` of each named dataset's members leaves at least one point in and one
    out of every subset (checked from the published partition sizes, before anything trains:
    the library refuses it only when the subset models are about to train)."""
    from sharpmem_lib.ensemble import subset_size
    from sharpmem_lib.splits import published_partition

    fraction = p.get(fraction_key)
    if not isinstance(fraction, float):
        return
    for key in dataset_keys:
        dataset = p.get(key)
        if not (isinstance(dataset, str) and dataset):
            continue
        try:
            n = len(published_partition(dataset).members)
        except Exception:  # noqa: BLE001 - a dataset that is not here is named by the file check
            continue
        try:
            subset_size(n, fraction, fraction_key)
        except ValueError as err:
            raise ValueError(f"{err} (the members of {key}={dataset!r})") from None


def _members(dataset) -> int | None:
    """The number of members of ``dataset``'s partition (published sizes), None if unknown here."""
    from sharpmem_lib.splits import published_partition

    if not (isinstance(dataset, str) and dataset):
        return None
    try:
        return len(published_partition(dataset).members)
    except Exception:  # noqa: BLE001 - a dataset that is not here is named by the file check
        return None


def _enough_models(p: dict, models_key: str, dataset_key: str, fraction: float, *, shadows_of: int = 0,
                   aside: int = 0) -> None:
    """Enough subset models that every member is held out by one and trained on by one, as
    eqs. 1-2 (and LiRA's shadows) need: else the chapter trained all of them, then stopped
    with 'training point(s) were never held out ... train more models'. The masks are the
    ones the chapter will draw (seed 0), so the check is exact; skipped where the chance of
    such a point is below 1e-9. ``shadows_of``: LiRA, where each of the first ``shadows_of``
    models of the pool is a target and the other pool models are its shadows; ``aside``: models
    of ``p[models_key]`` kept out of the pool (LiRA's memorization models)."""
    from sharpmem_lib.ensemble import subset_masks

    k, n = p.get(models_key), _members(p.get(dataset_key))
    k = k - aside if isinstance(k, int) else k
    if not (isinstance(k, int) and k >= 2 and n and isinstance(fraction, float) and 0 < round(fraction * n) < n):
        return
    shadows = k - 1 if shadows_of else k
    if n * (fraction ** shadows + (1 - fraction) ** shadows) < 1e-9:
        return
    masks = subset_masks(n, k, fraction, 0)
    inside = masks.sum(0)
    if shadows_of:  # target t's shadows: the pool without t
        bad = max(int(((inside - masks[t] == 0) | (inside - masks[t] == k - 1)).sum()) for t in range(shadows_of))
    else:
        bad = int(((inside == 0) | (inside == k)).sum())
    if bad:
        need = next(m for m in range(k + 1, 100_000) if n * (fraction ** m + (1 - fraction) ** m) < 0.01)
        pool = f" ({k} for targets and shadows)" if aside else ""
        raise ValueError(f"{models_key}={p[models_key]}{pool} is not valid with {dataset_key}={p.get(dataset_key)!r} "
                         f"({n} members) and a subset fraction of {fraction:g}: {bad} member(s) would be in every "
                         f"{'shadow' if shadows_of else 'subset'} model or in none, so no estimate exists for them "
                         f"(found only after training them all); use about "
                         f"{need + (1 if shadows_of else 0) + aside} or more")


def _chapter1(p: dict) -> None:
    if isinstance(p.get("recipe"), str):  # the toy trains only an SGD-trained MLP: refused here, not in its cell
        from sharpmem_lib.recipes import RECIPES
        from sharpmem_lib.toy import toy_training

        if p["recipe"] in RECIPES:
            toy_training(p["recipe"])
    if _has(p, "n_few", "n_many"):
        _need(p["n_few"] < p["n_many"], f"n_few={p['n_few']} and n_many={p['n_many']} are not valid together: "
              "panel (b) must have fewer training points than panel (c) (n_few < n_many)")


def _chapter2(p: dict) -> None:
    _subsets_fit(p, "fraction", "dataset", "ground_truth_dataset")
    if not p.get("influence_file"):  # Feldman & Zhang's file replaces the subset models
        _enough_models(p, "n_models", "dataset", p.get("fraction", 0.7))
    _enough_models(p, "ground_truth_models", "ground_truth_dataset", p.get("fraction", 0.7))
    if p.get("influence_file"):
        _need(p.get("dataset") == "cifar100", f"influence_file={p['influence_file']!r} is not valid with "
              f"dataset={p.get('dataset')!r}: Feldman & Zhang's published estimates are for cifar100; "
              "use influence_file: \"\" to estimate influence for other datasets")


def _chapter3(p: dict) -> None:
    _subsets_fit(p, "lira_fraction", "lira_dataset")
    if _has(p, "lira_models", "lira_memorization_models", "lira_targets") and all(
            isinstance(p[k], int) for k in ("lira_models", "lira_memorization_models", "lira_targets")):
        pool = p["lira_models"] - p["lira_memorization_models"]  # targets and shadows
        _enough_models(p, "lira_models", "lira_dataset", p.get("lira_fraction", 0.7),
                       shadows_of=max(0, min(p["lira_targets"], pool)), aside=p["lira_memorization_models"])
    for key in ("boundary_dataset", "lira_dataset"):  # attacked targets: one of the chapter's datasets
        if p.get(key) and isinstance(p.get("recipes"), dict):
            check_choice(key, p[key], list(p["recipes"]))
    if p.get("boundary_dataset") and "boundary_methods" in p:
        _need(len(p["boundary_methods"]) > 0, "boundary_methods=[] is not valid with boundary_dataset="
              f"{p['boundary_dataset']!r}: name at least one attack, or set boundary_dataset: \"\" to skip them")
    if _has(p, "lira_targets", "lira_models"):
        _need(p["lira_targets"] <= p["lira_models"], f"lira_targets={p['lira_targets']} is not valid with "
              f"lira_models={p['lira_models']}: the targets are drawn from the models (lira_targets <= lira_models)")
    if p.get("lira_dataset") and isinstance(p.get("lira_targets"), int):
        from sharpmem_lib.attacks.lira import MIN_TARGETS  # what split_models demands, refused here before chapter 0

        _need(p["lira_targets"] >= MIN_TARGETS, f"lira_targets={p['lira_targets']} is not valid with lira_dataset="
              f"{p['lira_dataset']!r}: LiRA needs at least {MIN_TARGETS} targets (paired tests across algorithms); "
              "or set lira_dataset: \"\" to skip LiRA")
    if _has(p, "lira_targets", "lira_models", "lira_memorization_models"):
        pool = p["lira_models"] - p["lira_memorization_models"]
        _need(pool >= max(p["lira_targets"], 3), f"lira_memorization_models={p['lira_memorization_models']} is not "
              f"valid with lira_models={p['lira_models']} and lira_targets={p['lira_targets']}: the memorization "
              "models are kept apart from targets and shadows, so lira_models - lira_memorization_models must be "
              "at least max(lira_targets, 3)")


def _chapter4(p: dict) -> None:
    _milestones_inside_epochs(p)
    if _has(p, "lams"):
        _need(0 in p["lams"] and max(p["lams"]) > 0, f"lams={p['lams']!r} is not valid: it must contain 0 (SGD, "
              "the baseline every λ is compared with) and at least one λ > 0")
    if _has(p, "selena_excluded", "selena_models"):
        _need(p["selena_excluded"] < p["selena_models"], f"selena_excluded={p['selena_excluded']} is not valid "
              f"with selena_models={p['selena_models']}: SELENA's L must be smaller than its K")
    _chapter2(p)
    if not p.get("influence_file"):
        from sharpmem_lib.subsampling import SubsamplingConfig

        _enough_models(p, "bucket_models", "dataset", SubsamplingConfig.__dataclass_fields__["fraction"].default)


IMAGE_MODELS = ("cnn", "wrn16_8")  # models that need (C, H, W) inputs (sharpmem_lib.models)


def _recipe_datasets(p: dict) -> list[tuple[str, str, str]]:
    """(parameter, dataset, recipe) for every recipe the parameters name on a dataset:
    ``recipes`` (dataset -> recipe), ``recipe`` on ``dataset``, ``<role>_recipe`` on
    ``<role>_dataset`` if there is one, else on ``dataset``."""
    uses = []
    for key, value in p.items():
        if key == "recipes" and isinstance(value, dict):
            uses += [(f"recipes[{d!r}]", d, r) for d, r in value.items()]
        elif (key == "recipe" or key.endswith("_recipe")) and isinstance(value, str):
            role = key[: -len("recipe")]
            dataset = p.get(f"{role}dataset", p.get("dataset")) if f"{role}dataset" in p else p.get("dataset")
            uses.append((key, dataset, value))
    return [(k, d, r) for k, d, r in uses if isinstance(d, str) and d]


def _feature_shape(dataset: str, data_dir) -> tuple[int, ...] | None:
    """A dataset's per-example shape: published, else read from a built-in offline dataset
    (synthetic, under a second), else None (not known without reading the data)."""
    from sharpmem_lib.data import DATASETS, load_dataset

    info = DATASETS.get(dataset)
    if info is None:
        return None
    if info.feature_shape is not None:
        return tuple(info.feature_shape)
    if info.builtin and info.offline:
        return tuple(load_dataset(dataset, data_dir).X.shape[1:])
    return None


def _recipes_fit_their_datasets(p: dict) -> None:
    """A recipe whose model needs images, on a dataset of flat feature vectors, is refused
    before anything trains (else the chapter trains its other targets first, then fails)."""
    from sharpmem_lib.recipes import RECIPES

    for key, dataset, recipe in _recipe_datasets(p):
        if recipe not in RECIPES or RECIPES[recipe].model not in IMAGE_MODELS:
            continue
        shape = _feature_shape(dataset, _data_dir(p))
        _need(shape is None or len(shape) == 3, f"{key}={recipe!r} is not valid on dataset {dataset!r}: its model "
              f"{RECIPES[recipe].model!r} needs images (C, H, W), and {dataset!r} has feature vectors of shape "
              f"{shape}; choose a recipe with an 'mlp' or 'fc' model")


CHAPTER_CHECKS: dict[str, Callable[[dict], None]] = {
    "00_data_and_models": _milestones_inside_epochs,
    "01_toy_example": _chapter1,
    "02_memorization_buckets": _chapter2,
    "03_privacy_tables": _chapter3,
    "04_mitigation": _chapter4,
}


# ------------------------------------------------------------------- data it needs


def needed_datasets(params: dict) -> list[str]:
    """The datasets a chapter with these parameters loads (those named by its parameters)."""
    names = []
    for key, value in params.items():
        if key in ("datasets", "recipes") or (key.endswith("dataset") and isinstance(value, str)):
            for name in ([value] if isinstance(value, str) else value):  # recipes: its datasets (keys)
                if name and name not in names:
                    names.append(name)
    return names


def needed_files(params: dict) -> list[str]:
    """What a chapter with these parameters needs and does not find: one message per missing
    dataset or file, naming where it was looked for and where to get it ([] if all there)."""
    from sharpmem_lib.data import (DataDirError, DatasetNotFoundError, DataFileError, check_feldman_zhang_file,
                                   data_dirs, locate_dataset, resolve_data_file)

    data_dir, problems = _data_dir(params), []
    try:  # a data_dir that is not a folder: named, even where no dataset reads it (issue 19)
        data_dirs(data_dir)
    except DataDirError as err:
        problems.append(str(err))
    for name in needed_datasets(params):
        try:
            locate_dataset(name, data_dir)
        except DatasetNotFoundError as err:
            problems.append(str(err))
    for key, value in params.items():
        if key.endswith("_file") and value:
            try:
                path = resolve_data_file(value, data_dir, what=key)
                if key == "influence_file" and params.get("dataset"):
                    check_feldman_zhang_file(path, params["dataset"])
            except FileNotFoundError as err:
                problems.append(f"{err}\nFeldman & Zhang's estimates: https://pluskid.github.io/influence-memorization/"
                                if key == "influence_file" else str(err))
            except DataFileError as err:
                problems.append(str(err))
    return list(dict.fromkeys(problems))  # a missing data_dir is met by every lookup: named once


# ------------------------------------------------------------------------- checks


def check_parameters(chapter: str, params: dict, *, files: bool = True) -> None:
    """Check every parameter of ``chapter`` (a notebook stem) by its rule, then the chapter's
    checks of values that go together, then (``files``) that every dataset and file it reads
    is there. Raises ``ValueError`` (or ``FileNotFoundError``) naming what is wrong."""
    for name, value in params.items():
        rule = rule_for(name)
        if rule is not None:
            rule(name, value, params)
    if chapter in CHAPTER_CHECKS:
        CHAPTER_CHECKS[chapter](params)
    _recipes_fit_their_datasets(params)
    if files:
        problems = needed_files(params)
        if problems:
            raise FileNotFoundError(f"{chapter}: " + "\n\n".join(problems))


_INJECTED_HEADER = "# Parameters"  # papermill's injected-parameters cell starts with this comment


def _assigned(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]


def injected_parameters(history: list[str]) -> tuple[list[str], list[str]] | None:
    """From a kernel's input history (IPython's ``In``): the names papermill injected and the
    names of the parameters cell just before them; None if nothing was injected."""
    for i in range(len(history) - 1, 0, -1):
        if history[i].lstrip().startswith(_INJECTED_HEADER):
            return _assigned(history[i]), _assigned(history[i - 1])
    return None


# papermill's parameter options: short form, long form, how many values each takes. papermill
# applies them in this order (-b, then -f, -y, -p, -r: papermill/cli.py), a later one's key
# replacing an earlier one's without a word.
_PAPERMILL_OPTIONS = {"-b": ("--parameters_base64", 1), "-f": ("--parameters_file", 1),
                      "-y": ("--parameters_yaml", 1), "-p": ("--parameters", 2), "-r": ("--parameters_raw", 2)}
_BY_NAME = {**{short: short for short in _PAPERMILL_OPTIONS},
            **{long: short for short, (long, _) in _PAPERMILL_OPTIONS.items()}}


def papermill_options(argv: list[str]) -> list[tuple[str, list[str]]]:
    """The parameter options of papermill's command line ``argv``, in order: ``(option,
    values)`` with ``option`` the short form (``-b``, ``-f``, ``-y``: one value; ``-p``, ``-r``:
    name and value), also from their long forms and ``--opt=value`` / ``-yvalue`` forms."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        name, _, attached = arg.partition("=") if arg.startswith("--") else (arg[:2], "", arg[2:])
        option = _BY_NAME.get(name)
        if option is not None and (attached or arg == name):
            nargs = _PAPERMILL_OPTIONS[option][1]
            given = [attached] if attached else []
            values = given + argv[i + 1:i + 1 + nargs - len(given)]
            out.append((option, values + [""] * (nargs - len(values))))
            i += 1 + nargs - len(given)
            continue
        i += 1
    return out


def papermill_yaml(argv: list[str]) -> list[tuple[str, str]]:
    """The YAML that papermill's command line ``argv`` passes as parameters: ``("-y", text)``
    for each ``-y``/``--parameters_yaml`` and ``("-f", path)`` for each
    ``-f``/``--parameters_file`` (also in their ``--opt=value`` and ``-yvalue`` forms)."""
    return [(option, values[0]) for option, values in papermill_options(argv) if option in ("-y", "-f")]


def _papermill_value(text: str):
    """A ``-p`` value as papermill reads it (``papermill.cli._resolve_type``)."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_papermill_yaml(argv: list[str]) -> None:
    """Refuse, naming it, a parameter that papermill's command line ``argv`` gives twice with
    different values: papermill keeps the last without a word.

    Within one ``-y``/``-f``/``-b`` YAML document (papermill's plain loader keeps the last of a
    repeated key: ``-y 'lams: [0, 1], lams: [0, 2]'`` runs [0, 2]): re-read with
    :mod:`sharpmem_lib.profiles`' loader. Across options (``-y 'seeds: 3' -y 'seeds: 5'``,
    ``-p lr 0.1 -p lr 0.2``, ``-f p.yaml -p seeds 2``): the same key with another value. The
    same value given twice is harmless and passes. Raises ``ValueError``; nothing to do if
    ``argv`` is not papermill's command line."""
    import base64
    import binascii

    import yaml

    from sharpmem_lib.profiles import _UniqueKeyLoader

    if not any(a == "papermill" or a.endswith("/papermill") for a in argv):
        return
    given: dict[str, list[tuple[str, Any]]] = {}  # key -> (where, value) in papermill's order
    options = papermill_options(argv)
    for option in _PAPERMILL_OPTIONS:  # papermill's order of application
        for values in (v for o, v in options if o == option):
            if option in ("-p", "-r"):
                name, text = values
                where = f"papermill {option} {name} {text}"
                given.setdefault(name, []).append((where, _papermill_value(text) if option == "-p" else text))
                continue
            value = values[0]
            where = f"papermill {option} {value!r}"
            try:
                text = (open(value).read() if option == "-f" else
                        base64.b64decode(value).decode() if option == "-b" else value)
            except (OSError, ValueError, binascii.Error):
                continue  # papermill names a missing file or bad base64 itself
            try:
                document = yaml.load(text, Loader=_UniqueKeyLoader)
            except yaml.constructor.ConstructorError as err:
                raise ValueError(f"{where}: {err.problem}; papermill would keep the last value silently, so give "
                                 "each parameter once") from None
            except yaml.YAMLError:
                continue  # papermill reports its own syntax errors
            for name, v in (document.items() if isinstance(document, dict) else []):
                given.setdefault(str(name), []).append((where, v))
    for name, sources in given.items():
        values = [v for _, v in sources]
        if any(v != values[0] or isinstance(v, bool) != isinstance(values[0], bool) for v in values[1:]):
            listed = "; ".join(f"{where} gives {v!r}" for where, v in sources)
            raise ValueError(f"parameter {name!r} is given {len(sources)} times with different values ({listed}); "
                             f"papermill would keep {values[-1]!r} silently, so give each parameter once")


def _papermill_argv() -> list[str]:
    """The command line of this kernel's parent process (papermill's when papermill runs the
    notebook); empty where /proc is not there (not Linux) or unreadable."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def check_notebook_parameters(namespace: dict, chapter: str) -> dict:
    """Call in a notebook's first code cell after its parameters, with ``globals()``.

    Stops on a key given twice in papermill's ``-y``/``-f`` YAML (:func:`check_papermill_yaml`,
    read from the parent process's command line on Linux), on a parameter papermill injected
    that the parameters cell does not define (papermill itself only warns), then checks
    every parameter's value (:func:`check_parameters`). Returns the parameters checked.
    """
    if "In" in namespace:  # a kernel (papermill, Jupyter): its parent may be papermill's command line
        check_papermill_yaml(_papermill_argv())
    found = injected_parameters(list(namespace.get("In", [])))
    known = None
    if found is not None:
        injected, known = found
        unknown = sorted(set(injected) - set(known))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for notebook {chapter!r}; "
                             f"valid parameters are {sorted(known)}")
    names = known or [n for n in namespace if rule_for(n) is not None and not n.startswith("_")]
    params = {n: namespace[n] for n in names if n in namespace}
    check_parameters(chapter, params)
    global _NOTEBOOK_RUN
    _NOTEBOOK_RUN = {"chapter": chapter, "injected": None if found is None else list(found[0]), "params": params}
    return params


_NOTEBOOK_RUN: dict | None = None  # what the last check_notebook_parameters call saw (one notebook per kernel)


def notebook_run() -> dict | None:
    """What this kernel's :func:`check_notebook_parameters` saw: ``chapter``, ``injected`` (the
    names papermill injected, None when nothing was: a run by hand) and ``params`` (every
    parameter's value); None before it ran. :mod:`sharpmem_lib.provenance` says from it how the
    parameters were given."""
    return None if _NOTEBOOK_RUN is None else dict(_NOTEBOOK_RUN)


def literal_defaults(inspected: dict) -> dict:
    """A notebook's parameter defaults (``papermill.inspect_notebook``'s strings) as values."""
    out = {}
    for name, info in inspected.items():
        try:
            out[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            out[name] = info["default"]
    return out

