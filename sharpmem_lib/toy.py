"""The toy construction of §3.1 (Fig. 1): does SAM generalise better on atypical points?

Two training samples are drawn from one :class:`~sharpmem_lib.data.ToyMixture`: a *few*
sample, where the atypical red cluster has only a handful of points, and a *many* sample,
where it is well populated. SGD and SAM train the same MLP on each, over many seeds; every
model and the Bayes rule are scored on one large test sample, overall and on its atypical
points, and on whether the model's red region *captures* the atypical island
(:func:`island_coverage`).

Design (issue 18 §8):

- **Same number of epochs for both samples** (``epochs``), not the same number of steps:
  with equal steps the large sample saw each point a tenth as often as the small one
  (2,000 steps were 154 epochs on 400 points, 16 on 4,000), so its panel was under-trained.
- **Seeds sized by power**: the paired difference SAM − SGD on the atypical points has a
  seed-to-seed SD of about 12 points with few atypical points (most runs capture the island,
  a few miss it) and 6-8 with many (a 100-seed pilot and the 30-seed default run at 200
  epochs), so ±2.5-point 95 % intervals (enough to resolve a 5-point difference) need about
  92 and 25-37 seeds (:func:`power_table` reports what a run achieved and what it would
  need). ``seeds`` and ``seeds_many`` set the two panels.
- All seeds of a (sample, algorithm) train at once as one ensemble
  (:func:`~sharpmem_lib.ensemble.train_ensemble`, the same models as one-by-one training);
  model k starts from the weights ``seed_everything(k)`` gives, for SGD and SAM alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats as _st
from tqdm.auto import tqdm

from sharpmem_lib import store
from sharpmem_lib.data import RED, Arrays, ToyMixture
from sharpmem_lib.ensemble import train_ensemble
from sharpmem_lib.experiments import _plain
from sharpmem_lib.store import results_root
from sharpmem_lib.models import MLP
from sharpmem_lib.optim import ALGORITHMS
from sharpmem_lib.train import TrainConfig, predict_logits
from sharpmem_lib.stats import paired_gain, paired_test, seeds_for_half_width  # paired_gain: chapter 1 imports it here
from sharpmem_lib.validation import check_choice, check_fraction, check_nonnegative, check_positive

__all__ = ["ToyConfig", "ToyResult", "toy_training", "cached_toy_experiment", "run_toy_experiment", "summarize",
           "paired_gain", "island_mask", "island_coverage", "capture_table", "power_table", "ATYPICAL", "CAPTURE",
           "NEAR_BAYES"]

ATYPICAL = 1  # ToyMixture group id of the atypical red cluster
SAMPLES = ("few", "many")
#: A model *captures* the atypical island when it labels red at least this share of the
#: island's test points (:func:`island_coverage`); below it, it misses most of the island.
CAPTURE = 0.5
#: A run is *close to the Bayes rule* when its accuracy on the atypical test points is within
#: this many (fractional) points of the Bayes rule's.
NEAR_BAYES = 0.05


@dataclass(frozen=True)
class ToyConfig:
    """Parameters of the Fig. 1 experiment; validated on construction.

    ``n_few`` and ``n_many`` are total training-set sizes (both classes); the atypical
    cluster receives about ``n * red_prior * atypical_weight`` of them. ``seeds`` and
    ``seeds_many`` are the independent repetitions (sample, initialisation, data order) of
    the few and the many panel; both train for ``epochs`` passes over their sample.
    """

    n_few: int = 400
    n_many: int = 2000
    n_test: int = 20000
    seeds: int = 100
    seeds_many: int = 40
    algorithms: tuple[str, ...] = ("sgd", "sam")
    rho: float = 0.1
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 32
    epochs: int = 200
    hidden: tuple[int, ...] = (64, 64)
    atypical_weight: float = 0.05
    atypical_mean: tuple[float, float] = (2.0, 2.5)
    atypical_std: float = 0.3
    grid_resolution: int = 200

    def __post_init__(self) -> None:
        for name in ("n_few", "n_many", "n_test", "seeds", "seeds_many", "batch_size", "epochs", "grid_resolution"):
            check_positive(name, getattr(self, name), integer=True)
        if self.n_few >= self.n_many:
            raise ValueError(f"n_few={self.n_few} and n_many={self.n_many} are not valid together: panel (b) must "
                             "have fewer training points than panel (c) (n_few < n_many)")
        if not self.algorithms:
            raise ValueError(f"algorithms=() is empty; choose from {list(ALGORITHMS)}")
        for algorithm in self.algorithms:
            check_choice("algorithms", algorithm, ALGORITHMS)
        check_nonnegative("rho", self.rho)
        check_positive("lr", self.lr)
        object.__setattr__(self, "algorithms", tuple(self.algorithms))
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "atypical_mean", tuple(self.atypical_mean))
        _ = self.mixture  # validates the mixture parameters

    @property
    def mixture(self) -> ToyMixture:
        return ToyMixture(
            atypical_mean=self.atypical_mean,
            atypical_std=self.atypical_std,
            atypical_weight=self.atypical_weight,
        )

    def n_train(self, sample: str) -> int:
        check_choice("sample", sample, SAMPLES)
        return self.n_few if sample == "few" else self.n_many

    def n_seeds(self, sample: str) -> int:
        check_choice("sample", sample, SAMPLES)
        return self.seeds if sample == "few" else self.seeds_many

    def train_config(self, algorithm: str, seed: int = 0) -> TrainConfig:
        """The same number of epochs for every sample size (so the large sample takes
        ``n_many / n_few`` times as many steps)."""
        return TrainConfig(algorithm=algorithm, rho=self.rho, lr=self.lr, momentum=self.momentum,
                           batch_size=self.batch_size, epochs=self.epochs, seed=seed)

    def as_dict(self) -> dict:
        return asdict(self)


def toy_training(recipe) -> dict:
    """ToyConfig's training fields (``lr``, ``momentum``, ``batch_size``, ``epochs``,
    ``hidden``) from a recipe of :mod:`sharpmem_lib.recipes`, so that chapter 1 names a
    recipe like every chapter. The toy trains an MLP with plain SGD-family steps and nothing
    else (:meth:`ToyConfig.train_config`), so a recipe with another model or optimizer,
    weight decay, a schedule or augmentation is refused rather than silently ignored."""
    from sharpmem_lib.recipes import get_recipe

    r = get_recipe(recipe)
    t = r.train
    extra = {k: v for k, v in (("model", r.model != "mlp"), ("base", t.base != "sgd"), ("weight_decay", t.weight_decay),
                               ("lr_milestones", t.lr_milestones), ("augment", t.augment)) if v}
    if extra or "hidden" not in r.model_kwargs:
        raise ValueError(f"recipe={r.name!r} is not valid for the toy example: it needs an MLP with 'hidden' widths "
                         f"trained with SGD and no {sorted(extra) or 'other settings'}")
    return {"lr": t.lr, "momentum": t.momentum, "batch_size": t.batch_size, "epochs": t.epochs,
            "hidden": tuple(r.model_kwargs["hidden"])}


@dataclass
class ToyResult:
    """Per-run scores plus what Fig. 1 draws.

    ``runs``: one row per (sample, seed, method) with ``test_acc`` (all test points),
    ``atypical_acc`` (test points from the atypical cluster), ``island_coverage`` and
    ``captured`` (:func:`island_coverage`, :data:`CAPTURE`), the model's final
    ``train_loss``/``train_acc`` on its own sample, and ``epochs``/``steps``; method ``bayes``
    is the Bayes optimal rule on the same test sample. ``train_sets`` and ``grids`` hold the
    first seed's training samples and each method's predicted label on a square grid
    (``grid_x``, ``grid_y``) for the decision-boundary panels.
    """

    config: ToyConfig
    runs: pd.DataFrame
    train_sets: dict[str, Arrays]
    grid_x: np.ndarray
    grid_y: np.ndarray
    grids: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)


def _grid(config: ToyConfig) -> tuple[np.ndarray, np.ndarray]:
    xs = np.linspace(-5.0, 5.0, config.grid_resolution)
    ys = np.linspace(-4.0, 5.0, config.grid_resolution)
    return np.meshgrid(xs, ys)


def island_mask(test: Arrays, bayes_pred: np.ndarray) -> np.ndarray:
    """The atypical island as test points: those drawn from the atypical red cluster that
    the Bayes rule labels red (the part of the cluster a perfect learner would claim)."""
    bayes_pred = np.asarray(bayes_pred)
    if bayes_pred.shape != test.y.shape:
        raise ValueError(f"bayes_pred has shape {bayes_pred.shape}; expected one label per test point {test.y.shape}")
    return (test.group == ATYPICAL) & (bayes_pred == RED)


def island_coverage(pred: np.ndarray, island: np.ndarray) -> float:
    """Share of the island (:func:`island_mask`) that a model labels red; the model
    *captures* the island when this is at least :data:`CAPTURE`."""
    pred, island = np.asarray(pred), np.asarray(island, dtype=bool)
    if pred.shape != island.shape:
        raise ValueError(f"pred has shape {pred.shape}, island {island.shape}; expected one label per test point")
    if not island.any():
        raise ValueError("the island holds no test point; increase n_test")
    return float((pred[island] == RED).mean())


def _scores(pred: np.ndarray, test: Arrays, island: np.ndarray) -> dict:
    correct = pred == test.y
    coverage = island_coverage(pred, island)
    return {"test_acc": float(correct.mean()), "atypical_acc": float(correct[test.group == ATYPICAL].mean()),
            "island_coverage": coverage, "captured": bool(coverage >= CAPTURE)}


def _training_sample(config: ToyConfig, sample: str, seed: int) -> Arrays:
    # Seeds 0..S-1 for "few"; a shifted range keeps the "many" samples independent.
    return config.mixture.sample(config.n_train(sample), seed=seed if sample == "few" else 1_000 + seed)


def _train_all_seeds(config: ToyConfig, algorithm: str, samples: list[Arrays]):
    """One ensemble: model k trains on ``samples[k]`` from ``seed_everything(k)``'s weights."""
    n = len(samples[0])
    X = np.concatenate([s.X for s in samples])
    y = np.concatenate([s.y for s in samples])
    masks = np.kron(np.eye(len(samples), dtype=bool), np.ones((1, n), dtype=bool))  # model k: rows k*n .. (k+1)*n
    return train_ensemble(lambda: MLP(2, 2, hidden=config.hidden), X, y, masks, config.train_config(algorithm),
                          seeds=list(range(len(samples))), device="cpu", progress=False)


def run_toy_experiment(config: ToyConfig, *, progress: bool = True) -> ToyResult:
    """Train every (sample size, seed, algorithm) and score it; see :class:`ToyResult`."""
    mixture = config.mixture
    test = mixture.sample(config.n_test, seed=10_000)  # disjoint from the training seeds
    bayes_test = mixture.bayes_predict(test.X)
    island = island_mask(test, bayes_test)
    bayes_scores = _scores(bayes_test, test, island)
    gx, gy = _grid(config)
    grid_points = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)

    rows: list[dict] = []
    train_sets: dict[str, Arrays] = {}
    grids: dict[tuple[str, str], np.ndarray] = {
        ("bayes", "bayes"): mixture.bayes_predict(grid_points).reshape(gx.shape)}
    bar = tqdm([(s, a) for s in SAMPLES for a in config.algorithms], desc="toy ensembles", disable=not progress)
    for sample, algorithm in bar:
        samples = [_training_sample(config, sample, seed) for seed in range(config.n_seeds(sample))]
        train_sets[sample] = samples[0]
        n_train = config.n_train(sample)
        steps = config.epochs * -(-n_train // config.batch_size)
        common = {"sample": sample, "n_train": n_train, "epochs": config.epochs, "steps": steps}
        if algorithm == config.algorithms[0]:
            rows += [{**common, "seed": seed, "method": "bayes", "n_atypical_train": int((s.group == ATYPICAL).sum()),
                      **bayes_scores} for seed, s in enumerate(samples)]
        ensemble = _train_all_seeds(config, algorithm, samples)
        for seed, train in enumerate(samples):
            model = ensemble.model(seed)
            pred = predict_logits(model, test.X).argmax(1).numpy()
            logits = predict_logits(model, train.X)
            rows.append({**common, "seed": seed, "method": algorithm,
                         "n_atypical_train": int((train.group == ATYPICAL).sum()), **_scores(pred, test, island),
                         "train_loss": float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(train.y))),
                         "train_acc": float((logits.argmax(1).numpy() == train.y).mean())})
            if seed == 0:
                grids[(sample, algorithm)] = predict_logits(model, grid_points).argmax(1).numpy().reshape(gx.shape)
    runs = pd.DataFrame(rows)
    methods = ("bayes", *config.algorithms)  # rows in (sample, seed, method) order
    order = np.lexsort((runs["method"].map(methods.index), runs["seed"], runs["sample"].map(SAMPLES.index)))
    runs = runs.iloc[order].reset_index(drop=True)
    return ToyResult(config, runs, train_sets, gx, gy, grids)


def _to_arrays(result: ToyResult) -> dict[str, np.ndarray]:
    arrays = {f"runs__{c}": result.runs[c].to_numpy() for c in result.runs.columns}
    arrays["runs__sample"] = arrays["runs__sample"].astype(str)
    arrays["runs__method"] = arrays["runs__method"].astype(str)
    for sample, data in result.train_sets.items():
        arrays.update({f"train__{sample}__X": data.X, f"train__{sample}__y": data.y,
                       f"train__{sample}__group": data.group})
    arrays.update({f"grid__{a}__{b}": g for (a, b), g in result.grids.items()})
    arrays.update(grid_x=result.grid_x, grid_y=result.grid_y)
    return arrays


def _from_arrays(config: ToyConfig, f: dict[str, np.ndarray]) -> ToyResult:
    runs = pd.DataFrame({k[len("runs__"):]: f[k] for k in f if k.startswith("runs__")})
    train = {s: Arrays(f[f"train__{s}__X"], f[f"train__{s}__y"], f[f"train__{s}__group"]) for s in SAMPLES}
    grids = {tuple(k.split("__")[1:]): f[k] for k in f if k.startswith("grid__")}
    return ToyResult(config, runs, train, f["grid_x"], f["grid_y"], grids)


def cached_toy_experiment(config: ToyConfig, results_dir: str | Path | None = None, *,
                          progress: bool = True) -> ToyResult:
    """:func:`run_toy_experiment`, kept in the result store (:mod:`sharpmem_lib.store`) under
    ``<results>/toy2d/``, keyed by ``config``, the precision (``fp32``: the toy MLPs train on
    the CPU) and the cache version; a malformed entry is reported and recomputed."""
    arrays = store.cached_arrays("toy", _plain(config),
                                 lambda: _to_arrays(run_toy_experiment(config, progress=progress)),
                                 root=results_root(results_dir), namespace="toy2d", precision="fp32")
    return _from_arrays(config, arrays)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds per (sample, method)."""
    metrics = [m for m in ("test_acc", "atypical_acc", "island_coverage", "n_atypical_train", "train_loss", "train_acc")
               if m in runs]
    table = runs.groupby(["sample", "method"], sort=False)[metrics].agg(["mean", "std"])
    table.columns = [f"{m}_{s}" for m, s in table.columns]
    return table.reset_index()


def capture_table(runs: pd.DataFrame, near: float = NEAR_BAYES) -> pd.DataFrame:
    """How often each method's boundary captures the atypical island, and how often its
    atypical accuracy comes within ``near`` of the Bayes rule's, per (sample, method).

    Columns: ``runs``, ``captured`` (count), ``capture_rate`` with its exact 95 %
    Clopper-Pearson interval ``capture_low``/``capture_high`` (``scipy.stats.binomtest``),
    ``missed`` (= runs − captured), ``near_bayes`` (count with
    ``atypical_acc ≥ bayes − near``), ``bayes_atypical_acc`` and ``median_atypical_acc``.
    """
    check_fraction("near", near)
    out = []
    for (sample, method), df in runs[runs["method"] != "bayes"].groupby(["sample", "method"], sort=False):
        bayes = runs.loc[(runs["sample"] == sample) & (runs["method"] == "bayes"), "atypical_acc"]
        if bayes.empty:
            raise ValueError(f"runs has no 'bayes' row for sample {sample!r}; it is the reference for near_bayes")
        n, k = len(df), int(df["captured"].astype(bool).sum())
        ci = _st.binomtest(k, n).proportion_ci(0.95, method="exact")
        ref = float(bayes.iloc[0])
        out.append({"sample": sample, "method": method, "runs": n, "captured": k, "capture_rate": k / n,
                    "capture_low": float(ci.low), "capture_high": float(ci.high), "missed": n - k,
                    "near_bayes": int((df["atypical_acc"] >= ref - near - 1e-12).sum()),
                    "bayes_atypical_acc": ref, "median_atypical_acc": float(df["atypical_acc"].median())})
    return pd.DataFrame(out)


def power_table(runs: pd.DataFrame, method: str = "sam", baseline: str = "sgd", metric: str = "atypical_acc",
                half_width: float = 0.025, confidence: float = 0.95) -> pd.DataFrame:
    """What each sample's seeds resolve: per sample, the SD of the paired differences
    ``method − baseline`` in ``metric``, the 95 % interval's half-width achieved with this
    many seeds, and the seeds a half-width of ``half_width`` would need at that SD
    (:func:`~sharpmem_lib.stats.seeds_for_half_width`; ±2.5 points resolves a 5-point
    difference)."""
    check_positive("half_width", half_width)
    out = []
    for sample, df in runs.groupby("sample", sort=False):
        wide = df.pivot(index="seed", columns="method", values=metric)
        if method not in wide or baseline not in wide:
            continue
        d = (wide[method] - wide[baseline]).dropna().to_numpy(float)
        t = paired_test(d, confidence=confidence)
        sd = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
        achieved = (t.ci_high - t.ci_low) / 2 if np.isfinite(t.ci_low) else float("nan")
        out.append({"sample": sample, "seeds": len(d), "sd": sd, "half_width": achieved, "target": half_width,
                    "seeds_needed": seeds_for_half_width(sd, half_width, confidence) if np.isfinite(sd) else None})
    return pd.DataFrame(out)
