"""Named training recipes and the one table of algorithm knobs.

A *recipe* fixes everything about training a model except the algorithm: the architecture
(``model`` and ``model_kwargs``) and the :class:`~sharpmem_lib.train.TrainConfig` fields
that are not the algorithm's (optimizer, learning rate and its schedule, weight decay,
epochs, batch size, augmentation), in the spirit of airbench's single ``hyp`` dictionary
(Jordan 2024, ``airbench94.py``). Chapters and profiles name a recipe (or a dataset ->
recipe mapping) plus only their own knobs, so no chapter restates training settings and
two chapters that train the same (recipe, dataset, algorithm, seed) share one cached target
by construction: the store keys the resulting config, not the chapter that asked for it.

The *algorithm table* :data:`METHODS` maps each method name a chapter uses (``sgd``,
``sam``, ``sharp``, ``sharpreg``, ``swa``) to the optimizer algorithm and to the knobs it
reads, with one name per knob across every chapter (:data:`KNOBS`): ``sam_rho`` is SAM's
radius, ``sharpreg_rho``/``sharpreg_lam``/``sharpreg_xi`` are eq. 4's and eq. 6's (paper
§5, footnote 4: rho = 0.01, lambda = 1.5, xi = 0.3), ``swa_start``/``swa_lr`` SWA's.
:func:`train_config` builds the TrainConfig of (recipe, method, seed, knobs);
:func:`sharpmem_lib.experiments.experiment_config` wraps it into a target's ExperimentConfig.

Where the paper-scale values come from:

* ``cifar_wrn16_8``: the paper's App. C / SELENA's CIFAR-100 recipe: WRN-16-8, SGD lr 0.1,
  momentum 0.9, weight decay 5e-4, lr x0.2 at epochs 60/120/160, 200 epochs, batch 256,
  random crop + flip.
* ``purchase_fc``: SELENA's ``purchase/Undefend/train.py`` (``main``): Adam lr 0.001 (no
  weight decay), ``--classifier_epochs 30``, ``--batch_size 512``; the network of
  ``models/purchase.py`` (:class:`~sharpmem_lib.models.FCNet`'s default).
* ``texas_fc``: SELENA's ``texas/Undefend/train.py`` (``main``): Adam lr 0.001,
  ``--classifier_epochs 20``, ``--batch_size 128``; ``models/texas.py``'s network.

The CPU recipes carry the values the default and smoke profiles used before recipes
existed, so their cached results keep their keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from sharpmem_lib.models import MODELS
from sharpmem_lib.train import TrainConfig
from sharpmem_lib.validation import check_choice

__all__ = ["Recipe", "Method", "RECIPES", "METHODS", "KNOBS", "get_recipe", "train_config", "recipe_settings",
           "check_knobs", "recipe_table"]

# TrainConfig fields that belong to the algorithm (set from METHODS and knobs), or to one run.
ALGORITHM_FIELDS = ("algorithm", "rho", "lam", "xi", "adaptive", "swa", "swa_start", "swa_lr", "label_smoothing")
RUN_FIELDS = ("seed",)


@dataclass(frozen=True)
class Recipe:
    """A model and everything about its training except the algorithm and the seed.

    ``train`` is a TrainConfig whose algorithm fields are TrainConfig's defaults (plain
    SGD steps, seed 0); :func:`train_config` sets them. ``source`` says where the values
    come from."""

    name: str
    model: str
    train: TrainConfig
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        check_choice("model", self.model, MODELS)
        default = TrainConfig()
        changed = [f for f in ALGORITHM_FIELDS + RUN_FIELDS if getattr(self.train, f) != getattr(default, f)]
        if changed:
            raise ValueError(f"recipe {self.name!r} sets {changed}; a recipe fixes the training settings minus the "
                             "algorithm and the seed (set those with train_config)")
        late = [m for m in self.train.lr_milestones if m >= self.train.epochs]
        if late:
            raise ValueError(f"recipe {self.name!r}: lr_milestones {list(self.train.lr_milestones)} are not valid with "
                             f"epochs={self.train.epochs}: milestone(s) {late} are never reached")
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))


def _mlp(name: str, hidden: tuple[int, ...] | None, source: str, **train) -> Recipe:
    return Recipe(name, "mlp", TrainConfig(momentum=0.9, weight_decay=0.0, **train),
                  {} if hidden is None else {"hidden": tuple(hidden)}, source)


_CIFAR = TrainConfig(lr=0.1, momentum=0.9, weight_decay=5e-4, epochs=200, batch_size=256,
                     lr_milestones=(60, 120, 160), lr_gamma=0.2, augment=True)

RECIPES: dict[str, Recipe] = {r.name: r for r in [
    # paper scale (GPU)
    Recipe("cifar_wrn16_8", "wrn16_8", _CIFAR, {},
           "paper App. C / SELENA's CIFAR-100 recipe: SGD 0.1, momentum 0.9, wd 5e-4, x0.2 at 60/120/160, "
           "200 epochs, batch 256, random crop + flip"),
    Recipe("cifar_wrn16_8_noaug", "wrn16_8", replace(_CIFAR, augment=False), {},
           "cifar_wrn16_8 without augmentation (paper §3.2, footnote 2: the memorization experiments use none)"),
    Recipe("purchase_fc", "fc", TrainConfig(base="adam", lr=1e-3, momentum=0.0, weight_decay=0.0, epochs=30,
                                            batch_size=512), {},
           "SELENA purchase/Undefend/train.py: Adam 1e-3, 30 epochs, batch 512; models/purchase.py's network"),
    Recipe("texas_fc", "fc", TrainConfig(base="adam", lr=1e-3, momentum=0.0, weight_decay=0.0, epochs=20,
                                         batch_size=128), {},
           "SELENA texas/Undefend/train.py: Adam 1e-3, 20 epochs, batch 128; models/texas.py's network"),
    # CPU on digits and longtail (the default profile's datasets before Fashion-MNIST; reruns and the laptop
    # profile name them): the values the chapters used before recipes, so cached results stay valid
    _mlp("digits_mlp", (128,), "CPU: chapter 3's digits targets (laptop profile; reruns naming digits)", lr=0.05,
         epochs=60, batch_size=32),
    _mlp("longtail_mlp", (128,), "CPU: targets on longtail (digits_mlp's settings), for reruns that name it",
         lr=0.05, epochs=60, batch_size=32),
    _mlp("digits_mlp_buckets", (64,), "CPU: chapter 2's SGD/SAM/SWA targets on digits (reruns with dataset digits)",
         lr=0.05, epochs=40, batch_size=32),
    _mlp("digits_mlp_subset", (64,), "CPU: subset models (Feldman-Zhang estimates) on digits or longtail, one "
         "hidden layer of 64, 10 epochs (the default and paper profiles' chapter 2 longtail ground-truth check)",
         lr=0.05, epochs=10, batch_size=32),
    _mlp("digits_mlp_demo", None, "CPU: chapter 0's demo on digits (MLP's default widths; the default profile's "
         "chapter 0 uses fashion_mlp)", lr=0.05, epochs=40, batch_size=64),
    # CPU (default profile) on Fashion-MNIST (fashion_mnist_cpu's 2,500 members): an over-parameterised MLP
    # trained to ~100 % training accuracy, so that targets overfit (issue 16; benchmarks/power_sizing.py)
    # (pilots, benchmarks/power_sizing.py, SGD, final weights unless said, OMP_NUM_THREADS=1, load 1-5: the honest
    # best-attack AUC plateaus at 0.56-0.58 for every MLP tried, so the cheapest recipe on the plateau is chosen:
    # this one, 784-128-10, 30 epochs, x0.2 at 20: train 95.0 %, test 82.9 %, gap 12.0 points, AUC 0.564
    # (3 seeds: 0.561-0.566), 4-10 s per SGD target; paired SD of honest attack accuracy over 3 seeds:
    # SAM - SGD 0.84 points (6 seeds for a 95 % half-width <= 1), SharpReg - SGD 0.18 (3 seeds).
    # Others: 20 epochs x0.2 at 15: gap 10.3, AUC 0.560; 784-256-10 50 epochs x0.2 at 35: gap 13-14, AUC
    # 0.565-0.568, 9.5 s; 60 epochs x0.2 at 30/45: AUC 0.568; 100 epochs no drop: gap 14.7, AUC 0.576 (best-
    # validation weights at epoch 24: 0.557); 784-512-10 80 epochs x0.2 at 40/60: gap 16.1, AUC 0.577, 10.8 s;
    # 784-512-512-10 60 epochs: gap 15.4, AUC 0.574, 13.3 s;
    # fashion_cnn 30 epochs: train 77.8 %, test 73.7 %, AUC 0.528, 68 s training, 29 min per attack split at load 7.5)
    _mlp("fashion_mlp", (128,), "CPU: MLP targets on fashion_mnist_cpu (the default profile's chapters 0, 2, 3 "
         "and 4, the laptop's 2 and 4), sized by benchmarks/power_sizing.py: 784-128-10, lr 0.05 x0.2 at epoch 20 "
         "of 30, batch 32", lr=0.05, epochs=30,
         batch_size=32, lr_milestones=(20,)),
    # (pilot of 16 subset models on 50 % of the 2,500 members: SGD 0.43 s/model, 85 % accuracy on its own training
    # points vs 79 % on the held-out ones; SAM 1.2 s/model; 784-64-10 for 12 epochs: 89 % vs 81 %, 0.8 and 4.1 s)
    _mlp("fashion_mlp_lira", (32,), "CPU: LiRA models on fashion_mnist_cpu (targets and shadows, 3 algorithms; "
         "the default and laptop profiles' chapter 3): 784-32-10, 8 epochs, x0.2 at 5, batch 32, so that 3 x 48 of "
         "them fit the default book",
         lr=0.05, epochs=8, batch_size=32, lr_milestones=(5,)),
    # (pilot of 100 models: 2 epochs leave 26 % of test points never misclassified, 13.5 % extrapolated to 2,000
    # models; 5 epochs 36 % and 23 %). Measured at 2,000 models (H5, chapter 2's default: n_models 2000, also chapter
    # 4's bucket_recipe/bucket_models), share of the 4,000 test points with no measured influence / subset models'
    # test accuracy / mean memorization score / CPU s on 1 thread: 2 epochs 10.1 % / 71.7 % / 0.018 / 44 s;
    # 3 epochs 16.6 % / 74.4 % / 0.027 / ~55 s; 5 epochs 21.2 % (misses issue 16's <= 20 %) / 76.9 % / 0.041 / 69 s.
    # 3 epochs: the most memorization that keeps the unmeasured share under 20 %.
    _mlp("fashion_mlp_subset", (32,), "CPU: subset models (Feldman-Zhang estimates) on fashion_mnist_cpu or longtail "
         "(the default profile's chapters 2 and 4; the laptop's also its ground-truth check): 784-32-10, 3 epochs, "
         "so that 2,000 of them fit and most test points are sometimes misclassified", lr=0.05, epochs=3,
         batch_size=64),
    # laptop profile (~90 min): the paper's models are convolutional; a small CNN on the same split.
    # Pilots (benchmarks/power_sizing.py --recipe fashion_cnn, SGD, seed 0 unless said, best-validation weights
    # (chapter 3's `which: best`) with the final weights' figures after a slash, OMP_NUM_THREADS=1, load 4.7-8.7
    # on 2 shared cores; train % / test % / gap points / honest best-attack AUC):
    #   old SmallCNN (3 convs, global average pool), lr 0.05, 30 epochs: 77.8 / 73.7 / 4.1 / 0.528
    #   SmallCNN (conv-pool x 2, linear head) width 16, lr 0.05, 20 epochs, x0.2 at 15: 92.7 / 83.6 / 9.1 / 0.536
    #     (final 95.2 / 84.5 / 10.7 / 0.545): lr 0.05 with momentum 0.9 is unstable here (training accuracy dips)
    #   width 16, lr 0.01, 25 epochs, x0.2 at 15 (this recipe): 99.5 / 86.2 / 13.3 / 0.568 (final 99.9 / 85.8 /
    #     14.1 / 0.570); seeds 0-1 again: AUC 0.567, 0.565 (mentr); ~16 CPU-s per SGD target, SAM ~28
    #   width 16, 40 epochs, x0.2 at 20/30: best epoch 16, 98.6 / 85.6 / 13.1 / 0.568 (final 100 / 85.8 / 14.2 / 0.576)
    #   width 32, 25 epochs, x0.2 at 15: 100 / 86.6 / 13.4 / 0.577 (final 0.576), ~2.5x the cost of width 16
    #   (hidden FC 128 or Adam 1e-3 trained no faster than lr 0.01 in 20-epoch runs: 97-99 % training accuracy)
    # So a CNN that fits its 2,500 members (gap 13-14 points) plateaus at AUC 0.565-0.577, like every MLP above:
    # issue 16's 0.60 is not reached at this data size. SAM (rho 0.1) at these settings: train 93-95 %, test 85 %,
    # honest attack accuracy 3.7 points below SGD's (2 seeds; paired SD 2.0 points: too few pairs to size seeds).
    # Cost per target beside training: the label-only attack's 162 translated queries of each of 6,500 images
    # (scored once per target, privacy.evaluate_privacy): 231 CPU-s through this CNN with label_only's batches of
    # 4,096 images, 78 with batches of 512 (the same scores); one whole evaluation through the old CNN took ~400.
    Recipe("fashion_cnn", "cnn", TrainConfig(lr=0.01, momentum=0.9, weight_decay=0.0, epochs=25, batch_size=64,
                                             lr_milestones=(15,)),
           {"width": 16}, "CPU: a small CNN (the laptop profile's chapters 0 and 3): SmallCNN width 16 (conv-pool "
           "x 2, linear head) on fashion_mnist_cpu, lr 0.01 x0.2 at epoch 15 of 25, batch 64"),
    # chapter 1's toy example (Fig. 1; the paper gives no settings): a 2-64-64-2 MLP on the 2-D mixture
    _mlp("toy_mlp", (64, 64), "chapter 1's toy example (Fig. 1 gives no settings; the default and laptop "
         "profiles): 200 epochs", lr=0.05,
         epochs=200, batch_size=32),
    _mlp("toy_mlp_paper", (64, 64), "chapter 1's toy example on the paper profile: 300 epochs", lr=0.05,
         epochs=300, batch_size=32),
    _mlp("toy_smoke", (16,), "smoke tests of chapter 1: seconds, not results", lr=0.05, epochs=3, batch_size=32),
    # smoke profile: seconds, not results
    _mlp("smoke_mlp", (16,), "smoke tests: seconds per chapter, not results", lr=0.05, epochs=2, batch_size=32),
]}


@dataclass(frozen=True)
class Method:
    """One row of the algorithm table: the optimizer ``algorithm`` (:data:`sharpmem_lib.optim.ALGORITHMS`),
    TrainConfig fields it fixes, and ``knobs``: TrainConfig field -> knob name."""

    algorithm: str
    knobs: Mapping[str, str] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""  # the paper's name of the method


METHODS: dict[str, Method] = {
    "sgd": Method("sgd", label="SGD"),
    "sam": Method("sam", {"rho": "sam_rho"}, label="SAM"),
    "sharp": Method("sharp", {"rho": "sharpreg_rho", "lam": "sharpreg_lam"}, label="eq. 4"),  # xi = 0
    "sharpreg": Method("sharpreg", {"rho": "sharpreg_rho", "lam": "sharpreg_lam", "xi": "sharpreg_xi"},
                       label="SharpReg"),  # eq. 6
    "swa": Method("sgd", {"swa_start": "swa_start", "swa_lr": "swa_lr"}, {"swa": True}, label="SWA"),
}
"""The algorithm table: each method a chapter trains, and the knobs it reads."""

KNOBS: dict[str, float] = {
    "sam_rho": 0.1,  # paper: rho = 0.1 for SAM throughout
    "sharpreg_rho": 0.01,  # paper §5, footnote 4: eq. 4 and SharpReg at rho = 0.01
    "sharpreg_lam": 1.5,  # Fig. 5: (lambda, xi) = (1.5, 0.3)
    "sharpreg_xi": 0.3,
    "swa_start": 0.75,  # TrainConfig's SWA defaults
    "swa_lr": 0.05,
    "label_smoothing": 0.0,  # any method: a defense baseline (paper §2.1)
}
"""Every algorithm knob, one name across all chapters, with the paper's value as default."""

_ANY_METHOD = {"label_smoothing": "label_smoothing"}  # knobs every method reads


def get_recipe(name: str | Recipe) -> Recipe:
    """The recipe called ``name`` (a :class:`Recipe` is returned as it is)."""
    if isinstance(name, Recipe):
        return name
    check_choice("recipe", name, RECIPES)
    return RECIPES[name]


def check_knobs(knobs: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` on a knob name that is not in :data:`KNOBS`."""
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise ValueError(f"unknown knob(s) {unknown}; valid knobs are {sorted(KNOBS)}")


def train_config(recipe: str | Recipe, method: str = "sgd", seed: int = 0, **knobs: float) -> TrainConfig:
    """The TrainConfig of ``recipe`` trained with ``method`` (a key of :data:`METHODS`) and ``seed``.

    ``knobs`` (names of :data:`KNOBS`, defaults the paper's) set only the fields ``method``
    reads: SGD keeps TrainConfig's defaults for ``rho``/``lam``/``xi`` whatever ``sam_rho``
    says, so one set of chapter knobs builds every method and an SGD target's key does
    not depend on the knobs of the other methods."""
    r = get_recipe(recipe)
    check_choice("method", method, METHODS)
    check_knobs(knobs)
    m = METHODS[method]
    values = {**KNOBS, **knobs}
    reads = {**m.knobs, **_ANY_METHOD}
    set_fields = {f: values[k] for f, k in reads.items() if k in knobs or f in m.knobs}
    return replace(r.train, algorithm=m.algorithm, seed=seed, **m.fixed, **set_fields)


def recipe_settings(recipe: str | Recipe) -> dict[str, Any]:
    """A recipe's full settings as one flat dict: model, model kwargs and every training
    field it fixes (for plans and provenance tables)."""
    r = get_recipe(recipe)
    train = {f.name: getattr(r.train, f.name) for f in fields(TrainConfig)
             if f.name not in ALGORITHM_FIELDS + RUN_FIELDS}
    train["lr_milestones"] = list(train["lr_milestones"])
    return {"recipe": r.name, "model": r.model, "model_kwargs": {k: list(v) if isinstance(v, tuple) else v
                                                                  for k, v in r.model_kwargs.items()}, **train}


def recipe_table():
    """Every recipe's settings and source, one row per recipe (a DataFrame)."""
    import pandas as pd

    return pd.DataFrame([{**recipe_settings(r), "source": r.source} for r in RECIPES.values()]).set_index("recipe")
