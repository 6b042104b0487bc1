"""Named recipes and the algorithm table (sharpmem_lib.recipes, experiments.experiment_config)."""

import pytest

from sharpmem_lib.experiments import ExperimentConfig, experiment_config
from sharpmem_lib.recipes import KNOBS, METHODS, RECIPES, Recipe, get_recipe, recipe_settings, train_config
from sharpmem_lib.train import TrainConfig


def test_cifar_recipe_is_the_papers():
    r = get_recipe("cifar_wrn16_8")
    t = r.train
    assert r.model == "wrn16_8" and r.model_kwargs == {}
    assert (t.base, t.lr, t.momentum, t.weight_decay) == ("sgd", 0.1, 0.9, 5e-4)
    assert (t.lr_milestones, t.lr_gamma, t.epochs, t.batch_size, t.augment) == ((60, 120, 160), 0.2, 200, 256, True)
    assert get_recipe("cifar_wrn16_8_noaug").train == TrainConfig(**{**t.__dict__, "augment": False})


@pytest.mark.parametrize("name, epochs, batch", [("purchase_fc", 30, 512), ("texas_fc", 20, 128)])
def test_selena_tabular_recipes(name, epochs, batch):
    # SELENA purchase|texas/Undefend/train.py: optim.Adam(lr=0.001), --classifier_epochs, --batch_size
    r = get_recipe(name)
    assert r.model == "fc" and r.model_kwargs == {}
    assert (r.train.base, r.train.lr, r.train.weight_decay, r.train.epochs, r.train.batch_size) == (
        "adam", 1e-3, 0.0, epochs, batch)
    assert not r.train.augment and r.train.lr_milestones == ()


# The configs the chapters built by hand before recipes (default profile): same keys, same cached results.
OLD_DEFAULT_CONFIGS = [
    ("digits_mlp", "digits", "sgd", 2, ExperimentConfig(
        "digits", "mlp", TrainConfig(epochs=60, lr=0.05, batch_size=32, seed=2, algorithm="sgd"),
        model_kwargs={"hidden": (128,)})),
    ("longtail_mlp", "longtail", "sam", 0, ExperimentConfig(
        "longtail", "mlp", TrainConfig(epochs=60, lr=0.05, batch_size=32, seed=0, algorithm="sam", rho=0.1),
        model_kwargs={"hidden": (128,)})),
    ("digits_mlp", "digits", "sharpreg", 1, ExperimentConfig(
        "digits", "mlp", TrainConfig(epochs=60, lr=0.05, batch_size=32, momentum=0.9, weight_decay=0.0,
                                     lr_milestones=(), augment=False, seed=1, algorithm="sharpreg", rho=0.01,
                                     lam=1.5, xi=0.3), model_kwargs={"hidden": (128,)})),
    ("digits_mlp_buckets", "digits", "swa", 1, ExperimentConfig(
        "digits", "mlp", TrainConfig(epochs=40, batch_size=32, lr=0.05, algorithm="sgd", swa=True, swa_start=0.5,
                                     swa_lr=0.02, seed=1), model_kwargs={"hidden": (64,)})),
    ("digits_mlp_demo", "digits", "sam", 0, ExperimentConfig(
        "digits", "mlp", TrainConfig(algorithm="sam", rho=0.1, epochs=40, batch_size=64, lr=0.05, momentum=0.9,
                                     weight_decay=0.0, lr_milestones=(), lr_gamma=0.2, augment=False, seed=0))),
]
CHAPTER_KNOBS = {"sam_rho": 0.1, "sharpreg_rho": 0.01, "sharpreg_lam": 1.5, "sharpreg_xi": 0.3,
                 "swa_start": 0.5, "swa_lr": 0.02}


@pytest.mark.parametrize("recipe, dataset, method, seed, old", OLD_DEFAULT_CONFIGS,
                         ids=[f"{r}-{m}" for r, _, m, _, _ in OLD_DEFAULT_CONFIGS])
def test_recipes_keep_the_default_profiles_keys(recipe, dataset, method, seed, old):
    new = experiment_config(recipe, dataset, method, seed, **CHAPTER_KNOBS)
    assert new == old
    assert new.key("fp32") == old.key("fp32")


def test_methods_read_only_their_knobs():
    # SGD's key does not depend on SAM's or SharpReg's knobs: chapters with other knobs share it
    base = train_config("digits_mlp", "sgd", 0)
    assert train_config("digits_mlp", "sgd", 0, sam_rho=0.5, sharpreg_rho=0.2, sharpreg_xi=1.0) == base
    assert base.rho == TrainConfig().rho and base.lam == 0 and base.xi == 0 and not base.swa
    sam = train_config("digits_mlp", "sam", 3, sam_rho=0.05, sharpreg_rho=0.2)
    assert (sam.algorithm, sam.rho, sam.lam, sam.xi, sam.seed) == ("sam", 0.05, 0.0, 0.0, 3)
    sharp = train_config("digits_mlp", "sharp", 0, sam_rho=0.05, sharpreg_lam=2.0, sharpreg_xi=0.7)
    assert (sharp.algorithm, sharp.rho, sharp.lam, sharp.xi) == ("sharp", KNOBS["sharpreg_rho"], 2.0, 0.0)
    reg = train_config("digits_mlp", "sharpreg", 0)  # the paper's values by default
    assert (reg.rho, reg.lam, reg.xi) == (0.01, 1.5, 0.3)
    swa = train_config("digits_mlp", "swa", 0, swa_start=0.5)
    assert (swa.algorithm, swa.swa, swa.swa_start, swa.swa_lr) == ("sgd", True, 0.5, KNOBS["swa_lr"])
    ls = train_config("digits_mlp", "sgd", 0, label_smoothing=0.1)
    assert ls.label_smoothing == 0.1 and ls.algorithm == "sgd"


def test_every_method_and_recipe_builds():
    for name in RECIPES:
        for method in METHODS:
            cfg = experiment_config(name, "digits", method, 0)  # configs only: nothing trains
            assert cfg.model == RECIPES[name].model
            assert {k: getattr(cfg.train, k) for k in ("lr", "epochs", "batch_size", "weight_decay", "augment")} == {
                k: getattr(RECIPES[name].train, k) for k in ("lr", "epochs", "batch_size", "weight_decay", "augment")}


def test_bad_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="recipe.*cifar_wrn16_8"):
        get_recipe("cifar_wrn")
    with pytest.raises(ValueError, match="method.*sharpreg"):
        train_config("digits_mlp", "sharp_reg")
    with pytest.raises(ValueError, match=r"unknown knob\(s\) \['rho'\].*sam_rho"):
        train_config("digits_mlp", "sam", rho=0.1)
    with pytest.raises(ValueError, match="sets \\['rho'\\]"):  # a recipe never fixes an algorithm knob
        Recipe("bad", "mlp", TrainConfig(rho=0.5))
    with pytest.raises(ValueError, match="sets \\['seed'\\]"):
        Recipe("bad", "mlp", TrainConfig(seed=3))
    with pytest.raises(ValueError, match=r"milestone\(s\) \[50\] are never reached"):
        Recipe("bad", "mlp", TrainConfig(epochs=40, lr_milestones=(20, 50)))


def test_recipe_settings_list_every_training_field():
    s = recipe_settings("cifar_wrn16_8")
    assert s == {"recipe": "cifar_wrn16_8", "model": "wrn16_8", "model_kwargs": {}, "base": "sgd", "lr": 0.1,
                 "momentum": 0.9, "weight_decay": 5e-4, "epochs": 200, "batch_size": 256,
                 "lr_milestones": [60, 120, 160], "lr_gamma": 0.2, "augment": True}
    assert recipe_settings("digits_mlp")["model_kwargs"] == {"hidden": [128]}


def _chapter_parameters(profile: str, chapter: str) -> dict:
    """A chapter's parameters under a profile, as its kernel sees them (defaults, then the profile)."""
    import papermill

    from sharpmem_lib.parameters import literal_defaults
    from sharpmem_lib.pipeline import plan_notebooks

    (path, params), = plan_notebooks(profile, only=[chapter])
    return {**literal_defaults(papermill.inspect_notebook(path)), **params}


def test_chapter4_trains_chapter3s_targets_on_the_default_profile():
    """Shared by design: chapter 4's SGD, SAM and SharpReg targets are chapter 3's (one key,
    one cached run), because both name the same recipe and the knobs have one name."""
    from sharpmem_lib.privacy import PrivacyConfig
    from sharpmem_lib.recipes import KNOBS

    p3, p4 = _chapter_parameters("default", "03_privacy_tables"), _chapter_parameters("default", "04_mitigation")
    knobs3 = {k: v for k, v in p3.items() if k in KNOBS}
    knobs4 = {k: p4[k] for k in knobs3}
    assert knobs4 == knobs3
    chapter3 = PrivacyConfig(recipes=p3["recipes"], knobs=knobs3, train_seeds=p3["train_seeds"]).targets()
    seeds = range(min(p3["train_seeds"], p4["train_seeds"]))
    assert len(seeds) >= 2
    for method in ("sgd", "sam", "sharpreg"):
        for seed in seeds:
            ours = experiment_config(p4["recipe"], p4["dataset"], method, seed, **knobs4)
            assert ours.key("fp32") == chapter3[(p4["dataset"], method, seed)].key("fp32")


def test_subset_recipe_keeps_chapter2s_subset_models():
    """Chapter 2's subset models (and chapter 4's buckets, which read them) keep their key."""
    from sharpmem_lib.subsampling import SubsamplingConfig

    r = get_recipe("digits_mlp_subset")
    new = SubsamplingConfig("digits", r.model, train_config(r), n_models=1000, fraction=0.7,
                            model_kwargs=dict(r.model_kwargs))
    old = SubsamplingConfig("digits", "mlp", TrainConfig(epochs=10, batch_size=32, lr=0.05), n_models=1000,
                            fraction=0.7, model_kwargs={"hidden": (64,)})
    assert new.key_config() == old.key_config()


def test_paper_chapter0_targets_keep_their_keys():
    old = ExperimentConfig("cifar100", "wrn16_8", TrainConfig(
        algorithm="sam", rho=0.1, epochs=200, batch_size=256, lr=0.1, momentum=0.9, weight_decay=0.0005,
        lr_milestones=(60, 120, 160), lr_gamma=0.2, augment=True, seed=0))
    assert experiment_config("cifar_wrn16_8", "cifar100", "sam", 0, sam_rho=0.1).key("fp32") == old.key("fp32")


def test_fashion_subset_recipe_is_chapter_two_subset_training():
    # chapter 4's buckets (bucket_recipe) reuse chapter 2's cached subset models only if the
    # recipe's TrainConfig is the one chapter 2 builds from subset_epochs/batch_size/subset_lr
    from sharpmem_lib.recipes import train_config
    from sharpmem_lib.train import TrainConfig

    assert train_config("fashion_mlp_subset") == TrainConfig(epochs=3, batch_size=64, lr=0.05)
    assert RECIPES["fashion_mlp_subset"].model_kwargs == {"hidden": (32,)}


def test_fashion_recipes_build_targets_on_the_cpu_split():
    from sharpmem_lib.experiments import experiment_config

    for name, model in (("fashion_mlp", "mlp"), ("fashion_cnn", "cnn")):
        config = experiment_config(name, "fashion_mnist_cpu", "sam", 3, sam_rho=0.1)
        assert config.model == model and config.train.algorithm == "sam" and config.train.seed == 3


def test_toy_recipes_keep_chapter1s_configs():
    """Chapter 1 names a recipe too; its ToyConfig (and cached result) stay as they were."""
    from sharpmem_lib.toy import ToyConfig, toy_training

    assert ToyConfig(**toy_training("toy_mlp")) == ToyConfig(lr=0.05, batch_size=32, epochs=200, hidden=(64, 64))
    assert ToyConfig(**toy_training("toy_mlp_paper")) == ToyConfig(lr=0.05, batch_size=32, epochs=300,
                                                                   hidden=(64, 64))
    assert toy_training("toy_smoke") == {"lr": 0.05, "momentum": 0.9, "batch_size": 32, "epochs": 3, "hidden": (16,)}
    for bad in ("cifar_wrn16_8", "purchase_fc", "digits_mlp_demo"):  # a model, optimizer or setting the toy lacks
        with pytest.raises(ValueError, match=f"recipe='{bad}' is not valid for the toy example"):
            toy_training(bad)


def test_recipe_descriptions_name_the_profile_whose_chapters_they_cite():
    """A recipe's description says what it is; where it names the chapters that use it, it says
    under which profile (a laptop book's chapter 0 trains fashion_cnn, not the default's fashion_mlp),
    or that they are reruns or smoke tests."""
    import re

    for name, recipe in RECIPES.items():
        if re.search(r"chapters? \d", recipe.source):
            assert re.search(r"profile|reruns|smoke", recipe.source), (name, recipe.source)
    assert "the default profile's chapters 0, 2, 3" in RECIPES["fashion_mlp"].source
    assert "the default and paper profiles' chapter 2" in RECIPES["digits_mlp_subset"].source
