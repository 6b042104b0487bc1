"""sharpmem_lib.stats against independent references: brute-force enumeration, scipy, Holm by hand."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from sharpmem_lib import stats


def brute_sign_flip(d):
    """Exact sign-flip p in rational arithmetic (no tolerance needed)."""
    d = [Fraction(x).limit_denominator(10**6) for x in d]
    observed = abs(sum(d))
    patterns = list(itertools.product((1, -1), repeat=len(d)))
    return Fraction(sum(abs(sum(s * abs(x) for s, x in zip(signs, d))) >= observed for signs in patterns),
                    len(patterns))


@pytest.mark.parametrize("d", [[0.02, -0.01, 0.03, 0.05], [0.1, 0.1, 0.1], [0.0, 0.0, 0.0, 0.0],
                               [0.01, 0.0, 0.02, 0.02, -0.01, 0.03], [0.3, -0.3, 0.3, -0.3, 0.6]])
def test_sign_flip_test_matches_brute_force_enumeration(d):
    assert stats.sign_flip_test(d) == pytest.approx(float(brute_sign_flip(d)))


def test_sign_flip_test_matches_scipy_permutation_test():
    d = np.array([0.021, -0.004, 0.013, 0.03, 0.008, -0.011, 0.017])
    ref = st.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=10**6)
    assert stats.sign_flip_test(d) == pytest.approx(ref.pvalue)


def test_sign_test_against_binomial_by_hand():
    # 5 positive, 1 negative, 1 zero (dropped): p = 2 * P(B(6, 1/2) <= 1) = 2 * 7/64
    assert stats.sign_test([0.1, 0.2, 0.1, 0.3, 0.05, -0.1, 0.0]) == pytest.approx(14 / 64)
    assert stats.sign_test([0.0, 0.0, 0.0]) == 1.0


def _residue_runs(seeds):
    """SAM loses exactly 10 of 720 test points (1.39 points) on every seed; float subtraction
    leaves ~1e-17 of residue between the seeds' differences."""
    correct = np.array([400, 404, 437, 457, 491])[:seeds]
    sgd, sam = correct / 720, (correct - 10) / 720
    assert np.std(sam - sgd) > 0  # the residue that fooled the old t-test
    return pd.DataFrame({"sample": "few", "seed": np.tile(np.arange(seeds), 2),
                         "method": ["sgd"] * seeds + ["sam"] * seeds, "acc": np.r_[sgd, sam]})


def test_two_seeds_with_identical_losses_are_insufficient_not_a_zero_width_interval():
    """Regression (issue 18 §4): two seeds losing exactly the same points gave the 95 % CI
    [-1.39, -1.39] with p ~ 0."""
    row = stats.paired_gain(_residue_runs(2), "sam", "sgd", "acc").iloc[0]
    assert row["test"] == "none" and row["seeds"] == 2
    assert math.isnan(row["ci95_low"]) and math.isnan(row["ci95_high"]) and math.isnan(row["p_value"])
    assert row["gain"] == pytest.approx(-10 / 720)


@pytest.mark.parametrize("seeds", [3, 4, 5])
def test_identical_differences_go_to_the_exact_test_and_get_no_interval(seeds):
    row = stats.paired_gain(_residue_runs(seeds), "sam", "sgd", "acc").iloc[0]
    assert row["test"] == "exact sign-flip"
    assert row["p_value"] == pytest.approx(2.0 ** (1 - seeds))  # only the all-minus and all-plus patterns
    assert math.isnan(row["ci95_low"]) and math.isnan(row["ci95_high"])
    assert row["wins"] == 0 and row["ties"] == 0


def test_no_interval_is_ever_narrower_than_the_spread_allows():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(3, 9))
        d = np.round(rng.normal(0, 0.02, n), 3) + rng.choice([0, 1e-17, -1e-17], n)
        t = stats.paired_test(d)
        if t.method == "t":
            assert t.ci_high - t.ci_low > 0.5 * np.ptp(d) / math.sqrt(n)  # t_(0.975) > 2 for n <= 9
        else:
            assert np.isnan(t.ci_low) and t.method == "exact sign-flip"


def test_paired_test_matches_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.5, 0.9, 8)
    a = b + rng.normal(0.03, 0.05, 8)
    t = stats.paired_test(a, b)
    ref = st.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert t.method == "t" and t.n == 8
    assert t.estimate == pytest.approx((a - b).mean())
    assert (t.ci_low, t.ci_high) == pytest.approx((ci.low, ci.high))
    assert t.p_value == pytest.approx(ref.pvalue)
    assert t.p_exact == pytest.approx(float(brute_sign_flip(a - b)), abs=1e-12)
    assert t.wins == int((a > b).sum())


def test_paired_test_leaves_out_missing_pairs_and_validates():
    t = stats.paired_test([0.1, np.nan, 0.3, 0.2], [0.0, 0.1, 0.1, 0.3])
    assert t.n == 3
    with pytest.raises(ValueError, match="confidence"):
        stats.paired_test([1, 2, 3], confidence=95)
    with pytest.raises(ValueError, match="min_n"):
        stats.paired_test([1, 2, 3], min_n=1)


def test_paired_gain_pairs_only_common_seeds():
    runs = pd.DataFrame({"bucket": 1, "seed": [0, 1, 2, 3, 0, 1, 2], "method": ["sgd"] * 4 + ["sam"] * 3,
                         "acc": [0.5, 0.6, 0.7, 0.8, 0.55, 0.62, 0.71]})
    row = stats.paired_gain(runs, "sam", "sgd", "acc", by="bucket").iloc[0]
    assert row["seeds"] == 3 and row["gain"] == pytest.approx(np.mean([0.05, 0.02, 0.01]))


def test_holm_by_hand():
    p = [0.01, 0.04, 0.03, np.nan, 0.5]
    # m = 4 finite: 0.01*4 = 0.04; 0.03*3 = 0.09; 0.04*2 = 0.08 -> running max 0.09; 0.5*1 = 0.5
    np.testing.assert_allclose(stats.holm(p), [0.04, 0.09, 0.09, np.nan, 0.5])
    np.testing.assert_allclose(stats.holm([0.3, 0.6]), [0.6, 0.6])
    assert stats.holm([0.9, 0.8]).max() == 1.0 or np.allclose(stats.holm([0.9, 0.8]), [0.9, 0.9])
    assert stats.holm([0.6, 0.7, 0.01]).tolist() == pytest.approx([1.0, 1.0, 0.03])
    assert np.isnan(stats.holm([np.nan])).all()
    with pytest.raises(ValueError, match="p_values"):
        stats.holm([0.2, 1.5])


def brute_trend_p(x, y, blocks):
    rho = st.spearmanr(x, y).statistic
    groups = [np.flatnonzero(np.asarray(blocks) == b) for b in np.unique(blocks)]
    hits = total = 0
    for combo in itertools.product(*(itertools.permutations(g) for g in groups)):
        idx = np.arange(len(x))
        for g, perm in zip(groups, combo):
            idx[g] = perm
        total += 1
        hits += abs(st.spearmanr(x, np.asarray(y)[idx]).statistic) >= abs(rho) - 1e-12
    return rho, hits / total


def test_trend_test_exact_within_blocks_matches_brute_force():
    x = [0, 1, 2, 3, 0, 1, 2, 3]
    y = [0.90, 0.88, 0.89, 0.80, 0.91, 0.87, 0.85, 0.84]  # a tie in the ranks of x, falling y
    blocks = [0, 0, 0, 0, 1, 1, 1, 1]
    t = stats.trend_test(x, y, blocks)
    rho, p = brute_trend_p(x, y, blocks)
    assert t.method == "exact permutation" and t.resamples == 24 * 24 and t.blocks
    assert t.estimate == pytest.approx(rho) and t.p_value == pytest.approx(p)


def test_trend_test_exact_without_blocks_matches_brute_force():
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    y = np.array([0.52, 0.55, 0.53, 0.60, 0.58, 0.61])
    t = stats.trend_test(x, y)
    rho, p = brute_trend_p(x, y, np.zeros(6))
    assert t.method == "exact permutation" and t.resamples == 720
    assert t.estimate == pytest.approx(rho) and t.p_value == pytest.approx(p)


def test_trend_test_monte_carlo_is_seeded_and_close_to_exact():
    rng = np.random.default_rng(3)
    x = np.repeat(np.arange(4), 3).astype(float)
    y = 0.01 * x + rng.normal(0, 0.02, 12)
    blocks = np.tile(np.arange(3), 4)
    exact = stats.trend_test(x, y, blocks)  # (4!)^3 = 13,824 arrangements
    mc = stats.trend_test(x, y, blocks, max_exact=100, n_resamples=20_000, seed=5)
    assert mc.method == "Monte Carlo permutation" and mc == stats.trend_test(x, y, blocks, max_exact=100,
                                                                           n_resamples=20_000, seed=5)
    assert mc.p_value == pytest.approx(exact.p_value, abs=0.015)


def test_trend_test_insufficient_and_bad_input():
    assert stats.trend_test([1, 2], [3, 4]).method == "none"
    assert "no variation in y" in stats.trend_test([1, 2, 3, 4], [5, 5, 5, 5 + 1e-17]).note
    with pytest.raises(ValueError, match="shapes"):
        stats.trend_test([1, 2, 3], [1, 2])


def test_correlation_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    c = stats.correlation(x, y, "pearson")
    assert (c.estimate, c.p_value) == pytest.approx(tuple(st.pearsonr(x, y)))
    s = stats.correlation(x, y)
    assert (s.estimate, s.p_value) == pytest.approx((st.spearmanr(x, y).statistic, st.spearmanr(x, y).pvalue))
    with pytest.raises(ValueError, match="method='kendall'"):
        stats.correlation(x, y, "kendall")


def test_partial_correlation_equals_the_closed_form_and_removes_a_common_cause():
    rng = np.random.default_rng(1)
    z = rng.normal(size=300)  # difficulty, driving both
    x = z + 0.5 * rng.normal(size=300)
    y = z + 0.5 * rng.normal(size=300)
    for method, f in (("pearson", lambda a: a), ("spearman", st.rankdata)):
        r = lambda a, b: np.corrcoef(f(a), f(b))[0, 1]  # noqa: E731
        closed = (r(x, y) - r(x, z) * r(y, z)) / math.sqrt((1 - r(x, z) ** 2) * (1 - r(y, z) ** 2))
        pc = stats.partial_correlation(x, y, z, method)
        assert pc.estimate == pytest.approx(closed) and pc.controls == 1 and pc.n == 300
        tstat = closed * math.sqrt(297 / (1 - closed**2))
        assert pc.p_value == pytest.approx(2 * st.t.sf(abs(tstat), 297))
    assert stats.correlation(x, y).estimate > 0.7 and abs(stats.partial_correlation(x, y, z).estimate) < 0.15


@pytest.mark.parametrize("estimate, p_adj, n, expected, outcome", [
    (0.02, 0.01, 5, 1, "reproduced"), (-0.02, 0.01, 5, 1, "opposite"), (0.02, 0.2, 5, 1, "not resolved"),
    (0.02, 0.01, 2, 1, "insufficient"), (-0.02, 0.001, 5, -1, "reproduced"), (0.02, float("nan"), 5, 1, "insufficient"),
    (0.02, 0.05, 5, 1, "not resolved")])
def test_verdict_four_outcomes(estimate, p_adj, n, expected, outcome):
    v = stats.verdict(estimate, (estimate - 0.01, estimate + 0.01), p_adj, expected, n)
    assert v.outcome == outcome and v.outcome in stats.OUTCOMES
    assert v.agrees == (outcome == "reproduced")


def test_verdict_rejects_bad_input():
    with pytest.raises(ValueError, match="expected_sign=0"):
        stats.verdict(0.1, (0, 0.2), 0.01, 0, 5)
    with pytest.raises(ValueError, match="alpha"):
        stats.verdict(0.1, (0, 0.2), 0.01, 1, 5, alpha=5)


def test_holm_verdicts_adjust_over_the_family_only():
    rng = np.random.default_rng(0)
    strong = stats.paired_test(0.03 + rng.normal(0, 0.005, 6))
    weak = stats.paired_test(0.004 + rng.normal(0, 0.01, 6))
    too_few = stats.paired_test([0.1, 0.1])
    v = stats.holm_verdicts({"a": strong, "b": weak, "c": too_few}, {"a": 1, "b": 1, "c": 1})
    assert v["c"].outcome == "insufficient" and v["a"].family_size == 2
    np.testing.assert_allclose([v["a"].p_adjusted, v["b"].p_adjusted], stats.holm([strong.p_value, weak.p_value]))
    assert v["a"].outcome == "reproduced"
    with pytest.raises(ValueError, match="expected has no sign"):
        stats.holm_verdicts({"a": strong}, {})


@pytest.mark.parametrize("sd, half_width", [(0.12, 0.025), (0.06, 0.025), (0.2, 0.01), (0.01, 0.05), (0.0, 0.01)])
def test_seeds_for_half_width_is_the_fewest_seeds_whose_interval_is_that_narrow(sd, half_width):
    n = stats.seeds_for_half_width(sd, half_width)

    def achieved(k):  # the half-width paired_test reports for k differences with exactly this SD
        z = np.random.default_rng(k).normal(size=k)
        t = stats.paired_test(0.3 + sd * (z - z.mean()) / z.std(ddof=1))
        return (t.ci_high - t.ci_low) / 2 if np.isfinite(t.ci_low) else 0.0  # constant: no interval

    assert n >= stats.MIN_N
    assert achieved(n) <= half_width + 1e-12
    if n > stats.MIN_N:
        assert achieved(n - 1) > half_width


def test_seeds_for_half_width_rejects_bad_input():
    with pytest.raises(ValueError, match="half_width=0"):
        stats.seeds_for_half_width(0.1, 0)
    with pytest.raises(ValueError, match="sd=nan"):
        stats.seeds_for_half_width(float("nan"), 0.1)


# ------------------------------------------------------------------ power and families (referee findings 3, 9)


def test_half_width_after_holm_is_the_t_interval_at_alpha_over_m_and_guarantees_resolution():
    rng = np.random.default_rng(3)
    samples = {k: 0.01 * k + rng.normal(0, 0.01, 5) for k in range(4)}
    tests = {k: stats.paired_test(d) for k, d in samples.items()}
    v = stats.holm_verdicts(tests, {k: 1 for k in tests})
    for k, d in samples.items():  # by hand: t quantile at 1 - (0.05/4)/2, sd/sqrt(n)
        by_hand = st.t.ppf(1 - 0.05 / 4 / 2, 4) * np.std(d, ddof=1) / math.sqrt(5)
        assert v[k].half_width == pytest.approx(by_hand) and v[k].level == pytest.approx(0.05 / 4)
        if abs(v[k].estimate) > v[k].half_width:  # the guarantee: larger than the half-width means resolved
            assert v[k].p_adjusted < 0.05
    # the 95 % half-width a single test would have is narrower
    assert v[1].half_width > (tests[1].ci_high - tests[1].ci_low) / 2


def test_exploratory_and_empty_tests_stay_out_of_the_holm_family():
    rng = np.random.default_rng(0)
    a = stats.paired_test(0.03 + rng.normal(0, 0.01, 5))
    b = stats.paired_test(0.02 + rng.normal(0, 0.01, 5))
    ceiling = stats.paired_test([0.0] * 5)  # every run at 100 %: all differences 0, exact p = 1
    v = stats.holm_verdicts({"a": a, "b": b, "c": ceiling, "d": a}, {"a": 1, "b": 0, "c": 1, "d": -1},
                            exploratory=["d"], empty=["c"])
    assert v["a"].family_size == 1 and v["a"].p_adjusted == pytest.approx(a.p_value)  # alone in the family
    assert v["b"].outcome == stats.NO_DIRECTION and v["b"].role == "exploratory" and v["b"].expected_sign == 0
    assert v["c"].role == "empty" and v["c"].outcome == "insufficient" and math.isnan(v["c"].p_adjusted)
    assert "ceiling" in v["c"].note
    assert v["d"].role == "exploratory" and v["d"].p_adjusted == v["d"].p_value and "not Holm-adjusted" in v["d"].note
    with pytest.raises(ValueError, match="expected signs"):
        stats.holm_verdicts({"a": a}, {"a": 2})


def test_difference_test_is_welch_on_two_independent_estimates():
    rng = np.random.default_rng(1)
    x, y = 0.05 + rng.normal(0, 0.02, 8), 0.01 + rng.normal(0, 0.04, 5)
    t = stats.difference_test(stats.paired_test(x), stats.paired_test(y))
    ref = st.ttest_ind(x, y, equal_var=False)
    assert t.p_value == pytest.approx(ref.pvalue) and t.estimate == pytest.approx(x.mean() - y.mean())
    ci = ref.confidence_interval(0.95)
    assert (t.ci_low, t.ci_high) == pytest.approx((ci.low, ci.high))
    assert stats.difference_test(stats.paired_test(x), stats.paired_test([0.1, 0.2])).method == "none"


def _brute_min_p(x, blocks):
    """The smallest trend_test p over every assignment of distinct outcomes to the points."""
    import itertools as it

    from sharpmem_lib.stats import trend_test
    return min(trend_test(x, np.array(perm, float), blocks).p_value for perm in it.permutations(range(len(x))))


@pytest.mark.parametrize("x, blocks", [
    ([0.0, 1.0, 2.0, 0.0, 1.0, 2.0], [0, 0, 0, 1, 1, 1]),  # 3 settings x 2 seeds: 2 / 36
    ([0.0, 1.5] * 3, [0, 0, 1, 1, 2, 2]),  # 2 settings x 3 seeds: 2 / 8
    ([0.0, 1.0, 2.0, 3.0], None),  # unblocked: 2 / 24
    ([0.0, 0.0, 1.0, 1.0], None),  # ties: 2 / 6
])
def test_smallest_attainable_p_matches_brute_force_enumeration(x, blocks):
    from sharpmem_lib.stats import smallest_attainable_p
    assert smallest_attainable_p(x, blocks) == pytest.approx(_brute_min_p(np.array(x), blocks))


def test_two_settings_and_five_seeds_cannot_reach_005():
    """Chapter 4's default sweep: 2 grid values x 5 seeds, 32 arrangements, p >= 2/32."""
    from sharpmem_lib.stats import smallest_attainable_p, trend_test
    x, seeds = np.repeat([0.0, 1.5], 5), np.tile(np.arange(5), 2)
    assert smallest_attainable_p(x, seeds) == pytest.approx(0.0625)
    best = trend_test(x, x + 10 * seeds, seeds)  # the most extreme outcome possible
    assert best.p_value == pytest.approx(0.0625) and best.p_min == pytest.approx(0.0625)


def test_smallest_attainable_p_of_hundreds_of_points_does_not_overflow():
    """Chapter 2's top-1 trend runs over hundreds of test points: 400! overflowed a float
    (OverflowError in the smoke book)."""
    from sharpmem_lib.stats import smallest_attainable_p, trend_test
    x = np.arange(400, dtype=float)
    assert smallest_attainable_p(x) == 0.0  # 2 / 400! underflows to zero: no floor
    assert smallest_attainable_p(np.repeat([0.0, 1.0], 200)) == pytest.approx(2 / __import__("math").comb(400, 200))
    t = trend_test(np.repeat(np.arange(5.0), 80), np.arange(400.0))
    assert t.p_value < 0.05


def test_smallest_attainable_p_is_a_lower_bound_without_symmetry():
    from sharpmem_lib.stats import smallest_attainable_p
    x = np.array([0.0, 0.0, 1.0, 2.0, 5.0])
    assert smallest_attainable_p(x) <= _brute_min_p(x, None) + 1e-12


def test_holm_verdicts_carry_a_trends_smallest_attainable_p():
    from sharpmem_lib.stats import holm_verdicts, trend_test
    x, seeds = np.repeat([0.0, 1.0, 2.0], 3), np.tile(np.arange(3), 3)
    v = holm_verdicts({"t": trend_test(x, -x + 0.1 * seeds, seeds)}, {"t": -1})["t"]
    assert v.p_min == pytest.approx(2 / 216)


def test_partial_correlation_with_too_few_degrees_of_freedom_is_nan_with_a_reason():
    # 4 points in order, one control: df = 1; the t approximation gave p ~ 6e-151 for a rank correlation
    pc = stats.partial_correlation([1, 2, 3, 4], [2, 4, 6, 8.1], [4, 1, 3, 2])
    assert math.isnan(pc.estimate) and math.isnan(pc.p_value)
    assert "1 degrees of freedom" in pc.note and "at least 7" in pc.note
    # a control that is constant or repeated removes nothing and takes no degree of freedom
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=40), rng.normal(size=40), rng.normal(size=40)
    for method in ("pearson", "spearman"):
        one = stats.partial_correlation(x, y, z, method)
        twice = stats.partial_correlation(x, y, np.column_stack([z, z, np.ones(40)]), method)
        assert twice.controls == one.controls == 1 and twice.p_value == pytest.approx(one.p_value)
        assert twice.estimate == pytest.approx(one.estimate) and one.note == ""
    # Pearson at df = 1 is exact under normality (as scipy.stats.pearsonr at n = 3): kept
    assert np.isfinite(stats.partial_correlation([1, 2, 3, 4.5], [1, 2, 3.3, 4], [1, 3, 2, 4], "pearson").p_value)


@pytest.mark.parametrize("x, y, z, match", [
    (np.arange(5.0), np.arange(5.0), 3.0, "z must be 1-D"),
    (np.arange(5.0), np.arange(5.0), np.ones((5, 1, 1)), "z must be 1-D"),
    (np.arange(5.0), np.arange(5.0), np.ones((5, 0)), "at least one column"),
    (np.ones((5, 2)), np.arange(5.0), np.arange(5.0), "x and y must be 1-D"),
])
def test_partial_correlation_names_a_bad_shape(x, y, z, match):
    with pytest.raises(ValueError, match=match):
        stats.partial_correlation(x, y, z)
