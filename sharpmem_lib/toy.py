"""The toy construction of §3.1 (Fig. 1): does SAM generalise better on atypical points?

Two training samples are drawn from one :class:`~sharpmem_lib.data.ToyMixture`: a *few*
sample, where the atypical red cluster has only a handful of points, and a *many* sample,
where it is well populated. SGD and SAM train the same MLP on each, over several seeds,
with the same number of optimisation steps; every model and the Bayes rule are scored on
one large test sample, overall and on its atypical points.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sharpmem_lib import store
from sharpmem_lib.data import Arrays, ToyMixture
from sharpmem_lib.experiments import _plain
from sharpmem_lib.store import results_root
from sharpmem_lib.models import MLP
from sharpmem_lib.optim import ALGORITHMS
from sharpmem_lib.tensors import seed_everything
from sharpmem_lib.train import TrainConfig, predict_logits, train_classifier
from sharpmem_lib.stats import paired_gain  # re-exported: chapter 1 imports it from here
from sharpmem_lib.validation import check_choice, check_nonnegative, check_positive

__all__ = ["ToyConfig", "ToyResult", "cached_toy_experiment", "run_toy_experiment", "summarize", "paired_gain",
           "ATYPICAL"]

ATYPICAL = 1  # ToyMixture group id of the atypical red cluster
SAMPLES = ("few", "many")


@dataclass(frozen=True)
class ToyConfig:
    """Parameters of the Fig. 1 experiment; validated on construction.

    ``n_few`` and ``n_many`` are total training-set sizes (both classes); the atypical
    cluster receives about ``n * red_prior * atypical_weight`` of them.
    """

    n_few: int = 400
    n_many: int = 4000
    n_test: int = 20000
    seeds: int = 10
    algorithms: tuple[str, ...] = ("sgd", "sam")
    rho: float = 0.1
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 32
    train_steps: int = 2000
    hidden: tuple[int, ...] = (64, 64)
    atypical_weight: float = 0.05
    atypical_mean: tuple[float, float] = (2.0, 2.5)
    atypical_std: float = 0.3
    grid_resolution: int = 200

    def __post_init__(self) -> None:
        for name in ("n_few", "n_many", "n_test", "seeds", "batch_size", "train_steps", "grid_resolution"):
            check_positive(name, getattr(self, name), integer=True)
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

    def train_config(self, algorithm: str, n_train: int, seed: int) -> TrainConfig:
        """Same number of optimisation steps for every sample size."""
        steps_per_epoch = math.ceil(n_train / self.batch_size)
        return TrainConfig(
            algorithm=algorithm,
            rho=self.rho,
            lr=self.lr,
            momentum=self.momentum,
            batch_size=self.batch_size,
            epochs=max(1, round(self.train_steps / steps_per_epoch)),
            seed=seed,
        )

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ToyResult:
    """Per-run scores plus what Fig. 1 draws.

    ``runs``: one row per (sample, seed, method) with ``test_acc`` (all test points) and
    ``atypical_acc`` (test points from the atypical cluster); method ``bayes`` is the
    Bayes optimal rule on the same test sample. ``train_sets`` and ``grids`` hold the
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


def _scores(pred: np.ndarray, test: Arrays) -> dict[str, float]:
    correct = pred == test.y
    return {
        "test_acc": float(correct.mean()),
        "atypical_acc": float(correct[test.group == ATYPICAL].mean()),
    }


def run_toy_experiment(config: ToyConfig, *, progress: bool = True) -> ToyResult:
    """Train every (sample size, seed, algorithm) and score it; see :class:`ToyResult`."""
    mixture = config.mixture
    test = mixture.sample(config.n_test, seed=10_000)  # disjoint from training seeds 0..seeds-1
    gx, gy = _grid(config)
    grid_points = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)

    rows: list[dict] = []
    train_sets: dict[str, Arrays] = {}
    grids: dict[tuple[str, str], np.ndarray] = {
        ("bayes", "bayes"): mixture.bayes_predict(grid_points).reshape(gx.shape)}
    bayes_scores = _scores(mixture.bayes_predict(test.X), test)
    jobs = [(s, seed, a) for s in SAMPLES for seed in range(config.seeds) for a in config.algorithms]
    bar = tqdm(jobs, desc="toy runs", disable=not progress)
    for sample, seed, algorithm in bar:
        n_train = config.n_few if sample == "few" else config.n_many
        # Seeds 0..S-1 for "few"; a shifted range keeps the "many" samples independent.
        data_seed = seed if sample == "few" else 1_000 + seed
        train = mixture.sample(n_train, seed=data_seed)
        n_atypical = int((train.group == ATYPICAL).sum())
        if algorithm == config.algorithms[0]:
            rows.append({"sample": sample, "seed": seed, "method": "bayes", "n_train": n_train,
                         "n_atypical_train": n_atypical, **bayes_scores})
        if seed == 0:
            train_sets[sample] = train
        seed_everything(seed)  # same initial weights for every algorithm
        model = MLP(2, 2, hidden=config.hidden)
        result = train_classifier(model, train.X, train.y, config.train_config(algorithm, n_train, seed), progress=False)
        pred = predict_logits(result.model, test.X).argmax(1).numpy()
        rows.append({"sample": sample, "seed": seed, "method": algorithm, "n_train": n_train,
                     "n_atypical_train": n_atypical, **_scores(pred, test),
                     "final_train_loss": result.history[-1]["train_loss"]})
        if seed == 0:
            grids[(sample, algorithm)] = predict_logits(result.model, grid_points).argmax(1).numpy().reshape(gx.shape)
    return ToyResult(config, pd.DataFrame(rows), train_sets, gx, gy, grids)


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
    metrics = ["test_acc", "atypical_acc", "n_atypical_train"]
    table = runs.groupby(["sample", "method"], sort=False)[metrics].agg(["mean", "std"])
    table.columns = [f"{m}_{s}" for m, s in table.columns]
    return table.reset_index()

