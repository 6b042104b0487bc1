"""Chapter 1's experiment: structure of the results and the statistics reported."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from sharpmem_lib.data import BLUE, RED, Arrays
from sharpmem_lib.report import capture_view, island_sentence, mean_std_table, power_sentence
from sharpmem_lib.toy import (CAPTURE, NEAR_BAYES, ToyConfig, capture_table, island_coverage, island_mask, paired_gain,
                              power_table, run_toy_experiment, summarize)

TINY = dict(n_few=120, n_many=300, n_test=500, seeds=3, seeds_many=2, epochs=3, hidden=(8,), grid_resolution=20)


@pytest.fixture(scope="module")
def result():
    return run_toy_experiment(ToyConfig(**TINY), progress=False)


def test_one_row_per_run_and_a_bayes_reference(result):
    runs = result.runs
    assert len(runs) == (3 + 2) * 3  # (few seeds + many seeds) x (bayes, sgd, sam)
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


def test_both_samples_train_the_same_number_of_epochs(result):
    """Issue 18 §8: equal steps gave the large sample a tenth of the epochs (16 against 154)."""
    runs = result.runs[result.runs.method != "bayes"]
    assert (runs["epochs"] == result.config.epochs).all()
    for sample, n in (("few", 120), ("many", 300)):
        steps = runs.loc[runs["sample"] == sample, "steps"]
        assert (steps == result.config.epochs * math.ceil(n / result.config.batch_size)).all()
    cfg = ToyConfig(n_few=400, n_many=4000, batch_size=32, epochs=150)
    assert cfg.train_config("sgd").epochs == cfg.train_config("sam", seed=3).epochs == 150


def test_each_panel_has_its_own_number_of_seeds(result):
    runs = result.runs
    assert sorted(runs.loc[runs["sample"] == "few", "seed"].unique()) == [0, 1, 2]
    assert sorted(runs.loc[runs["sample"] == "many", "seed"].unique()) == [0, 1]
    assert ToyConfig().seeds >= 90 and ToyConfig().seeds_many >= 25  # sized by power (module docstring)


def test_a_run_equals_training_that_model_alone(result):
    """Every seed of the ensemble is the model train_classifier gives on that seed's sample
    from seed_everything(seed)'s initial weights: the same for SGD and SAM of a seed."""
    from sharpmem_lib.models import MLP
    from sharpmem_lib.tensors import seed_everything
    from sharpmem_lib.toy import _training_sample
    from sharpmem_lib.train import predict_logits, train_classifier

    config = result.config
    test = config.mixture.sample(config.n_test, seed=10_000)
    for sample, seed, algorithm in (("few", 2, "sam"), ("many", 1, "sgd")):
        train = _training_sample(config, sample, seed)
        seed_everything(seed)
        alone = train_classifier(MLP(2, 2, hidden=config.hidden), train.X, train.y,
                                 config.train_config(algorithm, seed=seed), progress=False)
        logits = predict_logits(alone.model, train.X)
        row = result.runs.set_index(["sample", "seed", "method"]).loc[(sample, seed, algorithm)]
        assert row["train_loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(
            logits, torch.as_tensor(train.y))), rel=1e-4)
        pred = predict_logits(alone.model, test.X).argmax(1).numpy()
        assert row["test_acc"] == pytest.approx((pred == test.y).mean(), abs=2 / config.n_test)


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
                                             (dict(atypical_weight=0.0), "atypical_weight=0.0"),
                                             (dict(seeds_many=0), "seeds_many=0"), (dict(epochs=0), "epochs=0"),
                                             (dict(n_few=500, n_many=400), "n_few=500 and n_many=400")])
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


# ---------------------------------------------------------------- capturing the atypical island


def _hand_test_set():
    # groups: 0 typical red, 1 atypical red, 2 blue; the Bayes rule calls atypical points 2 and 4 red
    group = np.array([0, 1, 1, 1, 1, 2, 1])
    y = np.where(group == 2, BLUE, RED)
    bayes = np.array([RED, BLUE, RED, BLUE, RED, BLUE, RED])
    return Arrays(np.zeros((7, 2), np.float32), y, group), bayes


def test_island_is_the_atypical_points_the_bayes_rule_calls_red():
    test, bayes = _hand_test_set()
    np.testing.assert_array_equal(island_mask(test, bayes), [False, False, True, False, True, False, True])
    with pytest.raises(ValueError, match="bayes_pred has shape"):
        island_mask(test, bayes[:3])


@pytest.mark.parametrize("pred, coverage", [([RED] * 7, 1.0), ([BLUE] * 7, 0.0),
                                            ([BLUE, RED, RED, RED, BLUE, RED, BLUE], 1 / 3),
                                            ([BLUE, BLUE, RED, BLUE, RED, BLUE, BLUE], 2 / 3)])
def test_island_coverage_by_hand(pred, coverage):
    test, bayes = _hand_test_set()
    assert island_coverage(np.array(pred), island_mask(test, bayes)) == pytest.approx(coverage)


def test_island_coverage_rejects_an_empty_island_and_mismatched_shapes():
    with pytest.raises(ValueError, match="no test point"):
        island_coverage(np.array([RED, RED]), np.array([False, False]))
    with pytest.raises(ValueError, match="pred has shape"):
        island_coverage(np.array([RED]), np.array([True, False]))


def test_runs_record_coverage_and_capture(result):
    runs = result.runs
    assert (runs["captured"] == (runs["island_coverage"] >= CAPTURE)).all()
    assert (runs.loc[runs.method == "bayes", "island_coverage"] == 1.0).all()  # the island is what Bayes calls red
    # the coverage of the Bayes rule's own predictions, recomputed here
    test = result.config.mixture.sample(result.config.n_test, seed=10_000)
    bayes = result.config.mixture.bayes_predict(test.X)
    assert ((test.group == 1) & (bayes == RED)).sum() > 0


def _runs(few_sgd, few_sam, bayes=0.9, captured=None):
    rows = [dict(sample="few", seed=i, method="bayes", atypical_acc=bayes, captured=True) for i in range(len(few_sgd))]
    for method, accs in (("sgd", few_sgd), ("sam", few_sam)):
        rows += [dict(sample="few", seed=i, method=method, atypical_acc=a,
                      captured=(a >= 0.5) if captured is None else captured[i]) for i, a in enumerate(accs)]
    return pd.DataFrame(rows)


def test_capture_table_counts_and_an_exact_interval():
    runs = _runs([0.88, 0.2, 0.86, 0.91, 0.84, 0.0, 0.7, 0.9], [0.9, 0.89, 0.87, 0.95, 0.3, 0.86, 0.86, 0.8])
    table = capture_table(runs).set_index("method")
    sgd = table.loc["sgd"]
    assert (sgd["runs"], sgd["captured"], sgd["missed"]) == (8, 6, 2)
    assert sgd["near_bayes"] == 4  # 0.88, 0.86, 0.91, 0.9 are within 5 points of 0.9; 0.84 is not
    assert table.loc["sam", "near_bayes"] == 6 and table.loc["sam", "captured"] == 7
    # Clopper-Pearson by its beta-quantile formula
    assert sgd["capture_low"] == pytest.approx(stats.beta.ppf(0.025, 6, 3))
    assert sgd["capture_high"] == pytest.approx(stats.beta.ppf(0.975, 7, 2))
    assert sgd["median_atypical_acc"] == pytest.approx(np.median([0.88, 0.2, 0.86, 0.91, 0.84, 0.0, 0.7, 0.9]))
    with pytest.raises(ValueError, match="no 'bayes' row"):
        capture_table(runs[runs.method != "bayes"])


def test_power_table_reports_the_interval_and_the_seeds_needed():
    rng = np.random.default_rng(1)
    sgd = rng.uniform(0.6, 0.9, 12)
    sam = sgd + rng.normal(0.02, 0.1, 12)
    row = power_table(_runs(sgd, sam), half_width=0.025).iloc[0]
    d = sam - sgd
    ci = stats.ttest_rel(sam, sgd).confidence_interval(0.95)
    assert row["seeds"] == 12 and row["sd"] == pytest.approx(d.std(ddof=1))
    assert row["half_width"] == pytest.approx((ci.high - ci.low) / 2)
    n = row["seeds_needed"]
    assert stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n) <= 0.025
    assert stats.t.ppf(0.975, n - 2) * d.std(ddof=1) / math.sqrt(n - 1) > 0.025


@pytest.mark.parametrize("sgd, sam, start, misses", [
    ([0.9] * 9 + [0.1], [0.88] * 10, "Most of the 20 runs come within 5 points", "a few miss"),
    ([0.9] * 5 + [0.1] * 5, [0.9] * 5 + [0.1] * 5, "Half of the 20 runs", "half miss"),
    ([0.9] * 10, [0.9] * 10, "All of the 20 runs", "none miss"),
    ([0.6] * 10, [0.1] * 2 + [0.6] * 8, "None of the 20 runs", "a few miss"),
    ([0.1] * 4 + [0.6] * 6, [0.1] * 4 + [0.6] * 6, "None of the 20 runs", "some miss"),
])
def test_island_sentence_counts_instead_of_typing_most(sgd, sam, start, misses):
    sentence = island_sentence(capture_table(_runs(sgd, sam)), "few", NEAR_BAYES, CAPTURE)
    assert sentence.startswith(start) and misses in sentence
    assert "90.0 %" in sentence and "SGD: " in sentence and "SAM: " in sentence
    with pytest.raises(ValueError, match="sample='many'"):
        island_sentence(capture_table(_runs(sgd, sam)), "many", NEAR_BAYES, CAPTURE)


def test_power_sentence_says_whether_the_run_resolves_the_target():
    enough = pd.Series(dict(sample="few", seeds=100, sd=0.12, half_width=0.0238, target=0.025, seeds_needed=92))
    short = enough.copy()
    short["seeds"] = 20
    assert "±2.4 points" in power_sentence(enough) and "resolve a 5-point difference" in power_sentence(enough)
    assert "so this run resolves it" in power_sentence(enough)
    assert "more than this run has" in power_sentence(short)
    assert "no interval" in power_sentence(enough.copy().replace(0.0238, float("nan")))


def test_capture_view_formats_counts(result):
    view = capture_view(capture_table(result.runs))
    assert view.index.names == ["sample", "method"] and len(view) == 4
    assert all(" / " in v for v in view["island captured"])
