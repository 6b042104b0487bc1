"""Datasets by name (paper §3.1, §4, App. B).

This first version holds the toy construction of §3.1 (Fig. 1); the image and tabular
datasets of §4 join the same registry with the training engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from sharpmem_lib.validation import check_choice, check_fraction, check_positive

__all__ = ["Arrays", "DatasetInfo", "DATASETS", "ToyMixture", "load_dataset", "RED", "BLUE"]

RED, BLUE = 0, 1


@dataclass(frozen=True)
class Arrays:
    """A labelled sample: features ``X`` (n, d) float32, labels ``y`` (n,) int64, and
    ``group`` (n,) int64, a ground-truth subpopulation id where the dataset has one
    (for ``toy2d``: 0 typical red, 1 atypical red, 2 blue)."""

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def _log_gauss(x: np.ndarray, mean: np.ndarray, std: float) -> np.ndarray:
    """Log density of an isotropic 2-D Gaussian N(mean, std^2 I) at the rows of ``x``."""
    d = x.shape[-1]
    sq = ((x - mean) ** 2).sum(-1)
    return -0.5 * sq / std**2 - d * np.log(std) - 0.5 * d * np.log(2 * np.pi)


@dataclass(frozen=True)
class ToyMixture:
    """The two-class 2-D distribution of Fig. 1.

    The red class is a mixture of a large *typical* Gaussian cluster and a small *atypical*
    one (weight ``atypical_weight`` of the red mass) that sits inside the blue class's
    territory; the blue class is one Gaussian. All densities are explicit, so the Bayes
    optimal rule, argmax_c P(c) p(x | c), is exact.
    """

    typical_mean: tuple[float, float] = (-1.5, 0.0)
    typical_std: float = 1.0
    atypical_mean: tuple[float, float] = (2.5, 1.5)
    atypical_std: float = 0.35
    atypical_weight: float = 0.05
    blue_mean: tuple[float, float] = (1.5, 0.0)
    blue_std: float = 1.0
    red_prior: float = 0.5

    def __post_init__(self) -> None:
        check_fraction("atypical_weight", self.atypical_weight)
        check_fraction("red_prior", self.red_prior)
        for name in ("typical_std", "atypical_std", "blue_std"):
            check_positive(name, getattr(self, name))

    def class_log_density(self, x: np.ndarray) -> np.ndarray:
        """log p(x | c) for c = red, blue; shape (n, 2)."""
        x = np.asarray(x, dtype=np.float64)
        w = self.atypical_weight
        red = np.logaddexp(
            np.log1p(-w) + _log_gauss(x, np.array(self.typical_mean), self.typical_std),
            np.log(w) + _log_gauss(x, np.array(self.atypical_mean), self.atypical_std),
        )
        blue = _log_gauss(x, np.array(self.blue_mean), self.blue_std)
        return np.stack([red, blue], axis=-1)

    def log_posterior_ratio(self, x: np.ndarray) -> np.ndarray:
        """log P(red | x) - log P(blue | x); the Bayes boundary is its zero level set."""
        logp = self.class_log_density(x)
        return logp[..., RED] - logp[..., BLUE] + np.log(self.red_prior) - np.log1p(-self.red_prior)

    def bayes_predict(self, x: np.ndarray) -> np.ndarray:
        """The Bayes optimal label for each row of ``x``."""
        return np.where(self.log_posterior_ratio(x) >= 0, RED, BLUE).astype(np.int64)

    def sample(self, n: int, seed: int) -> Arrays:
        """Draw ``n`` i.i.d. labelled points (labels from the prior, then the components)."""
        check_positive("n", n, integer=True)
        rng = np.random.default_rng(seed)
        y = np.where(rng.random(n) < self.red_prior, RED, BLUE)
        atypical = (y == RED) & (rng.random(n) < self.atypical_weight)
        group = np.where(y == BLUE, 2, atypical.astype(np.int64))
        means = np.array([self.typical_mean, self.atypical_mean, self.blue_mean])
        stds = np.array([self.typical_std, self.atypical_std, self.blue_std])
        X = means[group] + stds[group, None] * rng.standard_normal((n, 2))
        return Arrays(X.astype(np.float32), y.astype(np.int64), group.astype(np.int64))


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: what a dataset is, where it comes from, and how to load it."""

    name: str
    num_classes: int
    description: str
    source: str
    loader: Callable[..., Arrays] = field(repr=False)


def _load_toy2d(n: int = 400, seed: int = 0, **mixture_kwargs) -> Arrays:
    return ToyMixture(**mixture_kwargs).sample(n, seed)


DATASETS: dict[str, DatasetInfo] = {
    "toy2d": DatasetInfo(
        name="toy2d",
        num_classes=2,
        description="Fig. 1's 2-D problem: red = typical + small atypical cluster, blue = one cluster",
        source="synthetic (sharpmem_lib.data.ToyMixture)",
        loader=_load_toy2d,
    ),
}


def load_dataset(name: str, **kwargs) -> Arrays:
    """Load a registered dataset by name; ``kwargs`` go to its loader."""
    check_choice("dataset", name, DATASETS)
    return DATASETS[name].loader(**kwargs)
