"""The toy distribution of Fig. 1 against scipy's densities and sampling statistics."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from sharpmem_lib.data import BLUE, DATASETS, RED, ToyMixture, load_dataset


def brute_force_bayes(mix: ToyMixture, x: np.ndarray) -> np.ndarray:
    """argmax_c P(c) p(x|c) with densities from scipy, written independently of ToyMixture."""
    red = (1 - mix.atypical_weight) * multivariate_normal(mix.typical_mean, mix.typical_std**2).pdf(x) \
        + mix.atypical_weight * multivariate_normal(mix.atypical_mean, mix.atypical_std**2).pdf(x)
    blue = multivariate_normal(mix.blue_mean, mix.blue_std**2).pdf(x)
    return np.where(mix.red_prior * red >= (1 - mix.red_prior) * blue, RED, BLUE)


@pytest.mark.parametrize("mix", [ToyMixture(), ToyMixture(atypical_mean=(2.0, 2.5), atypical_std=0.3, red_prior=0.4)])
def test_bayes_rule_matches_scipy_densities(mix):
    x = np.random.default_rng(0).uniform(-5, 5, size=(5000, 2))
    assert np.array_equal(mix.bayes_predict(x), brute_force_bayes(mix, x))


def test_class_densities_integrate_to_one():
    mix = ToyMixture()
    xs = np.linspace(-10, 10, 801)
    gx, gy = np.meshgrid(xs, xs)
    dens = np.exp(mix.class_log_density(np.stack([gx.ravel(), gy.ravel()], 1)))
    cell = (xs[1] - xs[0]) ** 2
    np.testing.assert_allclose(dens.sum(0) * cell, [1.0, 1.0], atol=1e-4)


def test_sample_frequencies_follow_the_mixture():
    mix = ToyMixture(atypical_weight=0.1, red_prior=0.3)
    data = mix.sample(200_000, seed=1)
    n = len(data)
    red = data.y == RED
    # 5 binomial standard deviations
    assert abs(red.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / n)
    share = (data.group[red] == 1).mean()
    assert abs(share - 0.1) < 5 * np.sqrt(0.1 * 0.9 / red.sum())
    atypical = data.X[data.group == 1]
    np.testing.assert_allclose(atypical.mean(0), mix.atypical_mean, atol=0.02)
    np.testing.assert_allclose(atypical.std(0), mix.atypical_std, rtol=0.05)
    assert set(np.unique(data.group[data.y == BLUE])) == {2}


def test_sampling_is_deterministic_per_seed():
    a, b, c = (ToyMixture().sample(100, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    assert a.X.dtype == np.float32 and a.y.dtype == np.int64


def test_registry_and_bad_names():
    assert "toy2d" in DATASETS
    assert len(load_dataset("toy2d", n=50, seed=0)) == 50
    with pytest.raises(ValueError, match=r"dataset='cifar1000' is not valid; choose one of \['toy2d'"):
        load_dataset("cifar1000")
    with pytest.raises(ValueError, match="atypical_weight=1.5"):
        ToyMixture(atypical_weight=1.5)
    with pytest.raises(ValueError, match="n=0"):
        ToyMixture().sample(0, seed=0)
