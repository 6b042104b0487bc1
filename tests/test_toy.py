"""Chapter 1's experiment: structure of the results and the statistics reported."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sharpmem_lib.report import mean_std_table
from sharpmem_lib.toy import ToyConfig, paired_gain, run_toy_experiment, summarize

TINY = dict(n_few=120, n_many=300, n_test=500, seeds=2, train_steps=30, hidden=(8,), grid_resolution=20)


@pytest.fixture(scope="module")
def result():
    return run_toy_experiment(ToyConfig(**TINY), progress=False)


def test_one_row_per_run_and_a_bayes_reference(result):
    runs = result.runs
    assert len(runs) == 2 * 2 * 3  # samples x seeds x (bayes, sgd, sam)
    assert set(runs["method"]) == {"bayes", "sgd", "sam"}
    assert runs[["test_acc", "atypical_acc"]].apply(lambda c: c.between(0, 1)).all().all()
    # every method of a (sample, seed) saw the same training sample
    assert (runs.groupby(["sample", "seed"])["n_atypical_train"].nunique() == 1).all()
    # the Bayes rule is scored on one fixed test sample: identical across seeds
    bayes = runs[runs.method == "bayes"]
    assert bayes["test_acc"].nunique() == 1
    assert set(result.grids) == {("bayes", "bayes"), ("few", "sgd"), ("few", "sam"), ("many", "sgd"), ("many", "sam")}
    assert result.grids[("few", "sam")].shape == result.grid_x.shape == (20, 20)
    assert len(result.train_sets["few"]) == 120 and len(result.train_sets["many"]) == 300


def test_bayes_scores_match_a_direct_computation(result):
    config = result.config
    test = config.mixture.sample(config.n_test, seed=10_000)
    pred = config.mixture.bayes_predict(test.X)
    row = result.runs[result.runs.method == "bayes"].iloc[0]
    assert row["test_acc"] == pytest.approx((pred == test.y).mean())
    atypical = test.group == 1
    assert row["atypical_acc"] == pytest.approx((pred[atypical] == test.y[atypical]).mean())


def test_same_steps_for_both_sample_sizes():
    cfg = ToyConfig(n_few=400, n_many=4000, batch_size=32, train_steps=2000)
    few, many = cfg.train_config("sgd", 400, 0), cfg.train_config("sgd", 4000, 0)
    assert abs(few.epochs * math.ceil(400 / 32) - many.epochs * math.ceil(4000 / 32)) < 200


def test_paired_gain_matches_scipy():
    rng = np.random.default_rng(0)
    sgd = rng.uniform(0.5, 0.9, 8)
    sam = sgd + rng.normal(0.03, 0.05, 8)
    runs = pd.DataFrame({"sample": "few", "seed": np.tile(np.arange(8), 2),
                         "method": ["sgd"] * 8 + ["sam"] * 8, "atypical_acc": np.r_[sgd, sam]})
    row = paired_gain(runs).iloc[0]
    ref = stats.ttest_rel(sam, sgd)
    ci = ref.confidence_interval(0.95)
    assert row["gain"] == pytest.approx((sam - sgd).mean())
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((ci.low, ci.high))
    assert row["p_value"] == pytest.approx(ref.pvalue)
    assert row["wins"] == (sam > sgd).sum() and row["seeds"] == 8


def test_summary_table_formats_mean_and_std(result):
    table = mean_std_table(summarize(result.runs), ["sample", "method"], {"test_acc": "acc"})
    assert table.shape == (6, 1) and all("±" in v for v in table["acc"])


@pytest.mark.parametrize("kwargs, message", [(dict(algorithms=("adam",)), "algorithms='adam'"),
                                             (dict(seeds=0), "seeds=0"), (dict(rho=-0.1), "rho=-0.1"),
                                             (dict(atypical_weight=0.0), "atypical_weight=0.0")])
def test_bad_parameters_fail_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ToyConfig(**kwargs)


def test_cached_toy_experiment_round_trip(tmp_path, monkeypatch):
    import sharpmem_lib.toy as toy
    from sharpmem_lib.experiments import CorruptArtifactWarning
    from sharpmem_lib.toy import cached_toy_experiment

    config = ToyConfig(**TINY)
    first = cached_toy_experiment(config, tmp_path, progress=False)
    monkeypatch.setattr(toy, "run_toy_experiment", lambda *a, **k: pytest.fail("recomputed a cached result"))
    again = cached_toy_experiment(config, tmp_path, progress=False)
    pd.testing.assert_frame_equal(first.runs, again.runs)
    assert set(first.grids) == set(again.grids)
    for key in first.grids:
        np.testing.assert_array_equal(first.grids[key], again.grids[key])
    np.testing.assert_array_equal(first.train_sets["few"].X, again.train_sets["few"].X)
    monkeypatch.undo()
    (path,) = (tmp_path / "toy2d").glob("*/arrays.npz")  # the store's entry
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(CorruptArtifactWarning, match="recomputing"):
        third = cached_toy_experiment(config, tmp_path, progress=False)
    pd.testing.assert_frame_equal(first.runs, third.runs)
