"""The statistics the book uses: paired tests by seed, exact tests, Holm, trends, verdicts.

Equations layer: numpy and scipy (pandas only to pivot a runs frame in :func:`paired_gain`);
no I/O, no training. The rules (DESIGN.md, "Statistics the book uses"):

- **Paired designs.** Same seed = same initialisation and data order across methods, so a
  method is compared with its baseline through the per-seed differences.
- **n ≥ 3 or no interval.** With fewer pairs a result is ``insufficient``: no interval, no p.
- **Exact tests where values tie.** Differences that are all equal (after removing
  floating-point residue, see :func:`constant`) make the t statistic 0/0; float residue made it
  a zero-width interval with p ≈ 0 from two seeds. They go to the exact sign-flip
  permutation test (:func:`sign_flip_test`), which gives p = 2^(1-n) for n equal non-zero
  differences, and no interval is reported (a zero-width one would claim more than the data
  allow).
- **Holm inside each chapter's family** (:func:`holm`).
- **A verdict** is one of ``OUTCOMES``, computed by :func:`verdict` from the paper's
  expected sign and the Holm-adjusted p-value.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, replace
from typing import Mapping

import numpy as np
from scipy import stats as _st

__all__ = ["smallest_attainable_p",
           "ALPHA", "MIN_N", "EXACT_MAX_N", "OUTCOMES", "PairedTest", "TrendTest", "Correlation", "Verdict",
           "constant", "sign_flip_test", "sign_test", "paired_test", "paired_gain", "paired_tests_by", "holm",
           "trend_test", "correlation", "partial_correlation", "verdict", "holm_verdicts", "family_table",
           "seeds_for_half_width", "NO_DIRECTION", "ROLES", "detectable_difference", "difference_test",
           "EXACT_SPEARMAN_N"]

ALPHA = 0.05
MIN_N = 3  # fewer pairs: "insufficient", no interval
EXACT_MAX_N = 20  # the exact sign-flip test enumerates 2^n sign patterns up to here
OUTCOMES = ("reproduced", "opposite", "not resolved", "insufficient")
NO_DIRECTION = "no paper direction"  # the status of a test whose direction the paper does not give: no verdict
ROLES = ("confirmatory", "exploratory", "empty")
"""A test's place in a chapter: *confirmatory* tests decide the paper's claims and form the
Holm family; *exploratory* ones are reported unadjusted and labelled so; *empty* ones (every
run at the 100 % ceiling: no method can differ) are not tests at all and count nowhere."""
LARGE_N = 500  # unblocked trends over more points use the t approximation
RTOL, ATOL = 1e-9, 1e-12  # differences closer than this are equal (float residue, not data)

NAN = float("nan")


def _tolerance(d: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> float:
    return atol + rtol * float(np.max(np.abs(d))) if len(d) else atol


def constant(d, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """True when the values are all equal up to floating-point residue
    (spread ≤ ``atol + rtol · max|d|``): two seeds that each lose exactly 2 points of
    accuracy differ by ~1e-17, which is not variation."""
    d = np.asarray(d, float)
    return len(d) > 0 and float(np.ptp(d)) <= _tolerance(d, rtol, atol)


def _snap(d: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> np.ndarray:
    """Values within the tolerance of zero become zero; all-equal values become one value."""
    tol = _tolerance(d, rtol, atol)
    d = np.where(np.abs(d) <= tol, 0.0, d)
    return np.full_like(d, float(np.mean(d))) if constant(d, rtol, atol) else d


def _finite_differences(d, caller: str) -> np.ndarray:
    """``d`` as a 1-D float array; ``ValueError`` for a NaN or infinite difference (a NaN made
    the sign-flip p 0.0, and was dropped by the sign test without a word; :func:`paired_test`
    leaves such pairs out and counts them)."""
    d = np.atleast_1d(np.asarray(d, float))
    if d.ndim != 1:
        raise ValueError(f"{caller}: d must be 1-D differences; got shape {d.shape}")
    bad = int((~np.isfinite(d)).sum())
    if bad:
        raise ValueError(f"{caller}: {bad} of the {len(d)} differences are NaN or infinite; leave those pairs out "
                         "first (paired_test does, and counts them)")
    return d


def sign_flip_test(d) -> float:
    """Exact two-sided paired permutation (sign-flip) test of mean(d) = 0.

    Under the null each difference is symmetric about 0, so all 2^n sign patterns of
    |d| are equally likely; p is the share of them whose |mean| is at least the observed
    one (the observed pattern included). This is the Fisher-Pitman test that
    ``scipy.stats.permutation_test(..., permutation_type="samples")`` computes for one
    sample of differences; here all 2^n patterns are enumerated (n ≤ ``EXACT_MAX_N``).
    Ties and constant differences need no special case: n equal non-zero differences give
    p = 2 / 2^n, all zeros give p = 1.
    """
    d = _snap(_finite_differences(d, "sign_flip_test"))
    n = len(d)
    if n == 0:
        return NAN
    if n > EXACT_MAX_N:
        raise ValueError(f"n={n} differences: the exact sign-flip test enumerates 2^n patterns; "
                         f"use n <= {EXACT_MAX_N}")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))  # (2^n, n)
    means = np.abs(signs @ np.abs(d)) / n
    observed = abs(float(d.mean()))
    # compare with a tolerance so that equal sums reached in another order count as ties
    return float(np.mean(means >= observed - _tolerance(d) * n))


def sign_test(d) -> float:
    """Exact two-sided sign test: zero differences are dropped, the signs of the rest are
    Binomial(m, 1/2) under the null (``scipy.stats.binomtest``). 1.0 when every
    difference is zero."""
    d = _snap(_finite_differences(d, "sign_test"))
    pos, neg = int((d > 0).sum()), int((d < 0).sum())
    if pos + neg == 0:
        return 1.0
    return float(_st.binomtest(pos, pos + neg, 0.5).pvalue)


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison, ``a − b`` per pair (seed).

    ``estimate``: mean difference. ``ci_low``/``ci_high``: the t-interval at ``confidence``
    when the differences vary; NaN when they are constant (see the module docstring) or
    n < ``MIN_N``. ``p_value``: two-sided, from ``method`` ("t": Student's paired t-test as
    ``scipy.stats.ttest_rel``; "exact sign-flip": :func:`sign_flip_test`; "none").
    ``p_exact``: the exact sign-flip p-value for comparison, whenever n ≤ ``EXACT_MAX_N``.
    ``note``: why there is no interval, if there is none. ``dropped``: pairs left out
    because a side was NaN (a diverged run's metrics are NaN: such a pair is not compared).
    """

    n: int
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    p_exact: float
    method: str
    wins: int
    ties: int
    losses: int
    confidence: float = 0.95
    note: str = ""
    dropped: int = 0
    se: float = NAN  # standard error of the estimate (NaN without an interval)
    df: float = NAN  # degrees of freedom of its t-interval

    @property
    def sufficient(self) -> bool:
        return self.method != "none"

    def as_dict(self) -> dict:
        return asdict(self)


def detectable_difference(se: float, df: float, level: float = ALPHA) -> float:
    """The smallest |difference| a two-sided t-test at ``level`` resolves: the half-width
    ``t_{1 − level/2, df} · se`` of the (1 − ``level``) interval. With ``level`` = α/m (Holm's
    first step for a family of m tests) every estimate larger than this is resolved by Holm,
    whatever the other tests give (its p < α/m, so its adjusted p < α). NaN without an
    interval (``se`` or ``df`` not finite, or ``se`` = 0)."""
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is not valid; choose a value in (0, 1)")
    if not (math.isfinite(se) and math.isfinite(df)) or se <= 0 or df <= 0:
        return NAN
    return float(_st.t.ppf(1 - level / 2, df) * se)


def difference_test(a, b, *, confidence: float = 0.95, min_n: int = MIN_N) -> PairedTest:
    """Welch's test of ``a.estimate − b.estimate`` for two *independent* estimates (each a
    :class:`PairedTest` or :class:`Verdict` with ``se`` and ``df``): se = √(se_a² + se_b²),
    Welch–Satterthwaite df = se⁴ / (se_a⁴/df_a + se_b⁴/df_b), two-sided t p-value and interval
    (as ``scipy.stats.ttest_ind(..., equal_var=False)`` on the two samples of differences).
    E.g. chapter 1: does SAM's gain shrink from the sample with few atypical points to the one
    with many (different samples, so not paired)? ``n`` is the smaller of the two; either
    side with fewer than ``min_n`` pairs or without a standard error gives ``method="none"``."""
    n = int(min(a.n, b.n))
    est = float(a.estimate - b.estimate)
    common = dict(n=n, wins=0, ties=0, losses=0, confidence=confidence, p_exact=NAN)
    sa, sb = float(getattr(a, "se", NAN)), float(getattr(b, "se", NAN))
    da, db = float(getattr(a, "df", NAN)), float(getattr(b, "df", NAN))
    if n < min_n or not all(math.isfinite(x) for x in (sa, sb, da, db, est)) or sa + sb <= 0:
        return PairedTest(estimate=est, ci_low=NAN, ci_high=NAN, p_value=NAN, method="none",
                          note="one side has no interval (too few pairs, or no variation)", **common)
    se = math.sqrt(sa ** 2 + sb ** 2)
    df = se ** 4 / ((sa ** 4 / da if sa > 0 else 0.0) + (sb ** 4 / db if sb > 0 else 0.0))
    h = detectable_difference(se, df, 1 - confidence)
    p = float(2 * _st.t.sf(abs(est) / se, df))
    return PairedTest(estimate=est, ci_low=est - h, ci_high=est + h, p_value=p, method="Welch t", se=se, df=df,
                      **common)


def paired_test(a, b=None, *, confidence: float = 0.95, min_n: int = MIN_N) -> PairedTest:
    """Paired test of ``a − b`` (or of the differences ``a`` when ``b`` is None); pairs with
    a NaN on either side are left out.

    - n < ``min_n``: ``method="none"``, no interval, no p-value.
    - differences constant up to float residue (:func:`constant`): the exact sign-flip
      test; no interval.
    - otherwise Student's t on the differences (``scipy.stats.ttest_rel``, and its
      ``confidence_interval``), with the exact sign-flip p beside it.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} is not valid; choose a value in (0, 1)")
    if min_n < 2:
        raise ValueError(f"min_n={min_n!r} is not valid; choose an integer >= 2")
    a = np.asarray(a, float)
    if a.ndim > 1 or (b is not None and (np.ndim(b) > 1 or np.shape(b) != a.shape)):
        raise ValueError(f"a and b must be 1-D paired samples of one length; got shapes {a.shape} and "
                         f"{None if b is None else np.shape(b)}")  # numpy would broadcast or flatten them
    d = a - (0.0 if b is None else np.asarray(b, float))
    d = np.atleast_1d(d)
    dropped = int((~np.isfinite(d)).sum())  # pairs with a NaN side (a diverged run): counted, not compared
    d = d[np.isfinite(d)]
    n = len(d)
    d = _snap(d) if n else d
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    common = dict(n=n, wins=wins, ties=n - wins - losses, losses=losses, confidence=confidence, dropped=dropped)
    estimate = float(d.mean()) if n else NAN
    if n < min_n:
        return PairedTest(estimate=estimate, ci_low=NAN, ci_high=NAN, p_value=NAN, p_exact=NAN, method="none",
                          note=f"{n} pair{'s' if n != 1 else ''}; at least {min_n} are needed", **common)
    p_exact = sign_flip_test(d) if n <= EXACT_MAX_N else NAN
    if constant(d):
        if n > EXACT_MAX_N:
            p_exact = 1.0 if estimate == 0 else 2.0 ** (1 - n)  # the same count, without enumerating
        return PairedTest(estimate=estimate, ci_low=NAN, ci_high=NAN, p_value=p_exact, p_exact=p_exact,
                          method="exact sign-flip",
                          note=f"all {n} differences are equal: exact test, no interval", **common)
    res = _st.ttest_1samp(d, 0.0)
    ci = res.confidence_interval(confidence)
    return PairedTest(estimate=estimate, ci_low=float(ci.low), ci_high=float(ci.high), p_value=float(res.pvalue),
                      p_exact=p_exact, method="t", se=float(np.std(d, ddof=1) / math.sqrt(n)), df=float(n - 1),
                      **common)


def paired_gain(runs, method: str = "sam", baseline: str = "sgd", metric: str = "atypical_acc",
                by: str = "sample", *, confidence: float = 0.95, min_n: int = MIN_N):
    """:func:`paired_test` of ``method`` − ``baseline`` in ``metric`` for each value of ``by``,
    paired by seed. ``runs``: a DataFrame with one row per (``by``, ``seed``, ``method``).

    Returns a DataFrame, one row per group: ``gain`` (mean difference), ``ci95_low``,
    ``ci95_high``, ``p_value``, ``p_exact``, ``test``, ``wins``, ``ties``, ``seeds``, ``note``.
    Only seeds run by both methods are paired.
    """
    import pandas as pd

    tests = paired_tests_by(runs, method, baseline, metric, by, confidence=confidence, min_n=min_n)
    return pd.DataFrame([{by: group, "metric": metric, "gain": t.estimate, "ci95_low": t.ci_low, "ci95_high": t.ci_high,
                          "p_value": t.p_value, "p_exact": t.p_exact, "test": t.method, "wins": t.wins,
                          "ties": t.ties, "seeds": t.n, "note": t.note} for group, t in tests.items()])


def paired_tests_by(runs, method: str, baseline: str, metric: str, by: str, *, confidence: float = 0.95,
                    min_n: int = MIN_N) -> dict:
    """The tests behind :func:`paired_gain`, as {value of ``by``: :class:`PairedTest`}, to be
    put in a chapter's family (:func:`holm_verdicts`)."""
    out = {}
    for group, df in runs.groupby(by, sort=False):
        wide = df.pivot(index="seed", columns="method", values=metric)
        if method not in wide or baseline not in wide:
            continue
        out[group] = paired_test(wide[method].to_numpy(float), wide[baseline].to_numpy(float),
                                 confidence=confidence, min_n=min_n)
    return out


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), the family being the finite entries:
    sort ascending, p_(i) · (m − i + 1) for i = 1..m, running maximum, capped at 1. NaN
    stays NaN and does not count in m. Same numbers as
    ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``."""
    p = np.asarray(p_values, float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"p_values must lie in [0, 1]; got {p[(p < 0) | (p > 1)].tolist()}")
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adjusted, 1.0)
    return out


@dataclass(frozen=True)
class TrendTest:
    """Spearman's ρ between a setting (λ, ξ, bucket) and an outcome, with a permutation p.

    ``method``: "exact permutation" (all arrangements enumerated), "Monte Carlo permutation"
    or "none" (fewer than ``MIN_N`` points, or no variation in x or y). ``blocks``: whether
    outcomes were permuted only within blocks (seeds), keeping the paired design.
    ``ci_low``/``ci_high`` are NaN: a trend is judged by its p-value.
    """

    n: int
    estimate: float
    p_value: float
    method: str
    resamples: int
    blocks: bool = False
    note: str = ""
    ci_low: float = NAN
    ci_high: float = NAN
    p_min: float = NAN  # the smallest p this design can give (smallest_attainable_p); NaN for "none"

    @property
    def sufficient(self) -> bool:
        return self.method != "none"


def smallest_attainable_p(x, blocks=None) -> float:
    """The smallest two-sided p-value :func:`trend_test` can return for settings ``x`` (and
    ``blocks``), whatever the outcomes: a property of the design, to print beside a trend's p.

    Within each block, outcomes are permuted over the positions; arrangements that differ
    only by swapping positions with tied x give the same ρ, so a block of k points with tie
    counts m_1, m_2, ... has k! / (m_1! m_2! ...) distinct classes, and the design has C, the
    product over blocks. The observed class always counts, so p ≥ 1 / C. When every block's
    centred x-ranks are symmetric (a balanced sweep: every seed run at every setting, as
    chapter 4's), reversing the arrangement in every block negates ρ, so the observed class
    and its mirror both count and p ≥ 2 / C, reached by outcomes sorted alike in every
    block: then 2 / C is exact. Otherwise 1 / C, a lower bound. E.g. 2 settings × 5 seeds:
    C = 2⁵ = 32, p ≥ 0.0625. Ranks are global, as in :func:`trend_test`; NaN x are left out."""
    x = np.asarray(x, float)
    b = np.zeros(len(x), int) if blocks is None else np.unique(np.asarray(blocks), return_inverse=True)[1]
    if x.ndim != 1 or len(b) != len(x):
        raise ValueError(f"x must be 1-D with one block per point; got shape {x.shape} and {len(b)} blocks")
    ok = np.isfinite(x)
    x, b = x[ok], b[ok]
    if len(x) == 0 or constant(x):
        return 1.0
    c = _st.rankdata(x) - (len(x) + 1) / 2
    log_classes, mirror = 0.0, True  # in logs: hundreds of points overflow a float (chapter 2's top-1 trend)
    for k in np.unique(b):
        xb, cb = x[b == k], np.sort(c[b == k])
        log_classes += math.lgamma(len(xb) + 1) - sum(math.lgamma(m + 1) for m in np.unique(xb, return_counts=True)[1])
        mirror &= bool(np.allclose(cb, -cb[::-1]))
    return float(min(1.0, math.exp(math.log(2.0 if mirror else 1.0) - log_classes)))


def _rank_corr(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Pearson correlation of rank vectors; ``ry`` may be (k, n), one arrangement a row."""
    rx = rx - rx.mean()
    ry = ry - ry.mean(axis=-1, keepdims=True)
    return (ry @ rx) / np.sqrt((rx @ rx) * np.sum(ry * ry, axis=-1))


def trend_test(x, y, blocks=None, *, max_exact: int = 50_000, n_resamples: int = 19_999, seed: int = 0,
               min_n: int = MIN_N) -> TrendTest:
    """Monotone trend of ``y`` with ``x``: Spearman's ρ (average ranks for ties, as
    ``scipy.stats.spearmanr``) and a two-sided permutation p-value.

    Under the null, y is exchangeable with respect to x, within each block when ``blocks``
    (e.g. the seed of each run of a λ sweep: every seed is run at every λ, so permuting
    within seeds keeps the pairing). Every arrangement is enumerated when there are at most
    ``max_exact`` of them (exact p, as ``scipy.stats.permutation_test(...,
    permutation_type="pairings")`` does for small n); otherwise ``n_resamples`` random ones
    (seeded) give p = (1 + #{|ρ*| ≥ |ρ|}) / (1 + n_resamples). Without blocks and with more
    than ``LARGE_N`` points, the t approximation of ``scipy.stats.spearmanr``. NaN pairs are
    left out.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of one length; got shapes {x.shape} and {y.shape}")
    b = np.zeros(len(x), int) if blocks is None else np.unique(np.asarray(blocks), return_inverse=True)[1]
    if len(b) != len(x):
        raise ValueError(f"blocks has {len(b)} entries for {len(x)} points")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, b = x[ok], y[ok], b[ok]
    n = len(x)
    if n < min_n or constant(x) or constant(y):
        why = f"n = {n} < {min_n}" if n < min_n else "no variation in " + ("x" if constant(x) else "y")
        return TrendTest(n=n, estimate=NAN, p_value=NAN, method="none", resamples=0, blocks=blocks is not None,
                         note=why)
    rx, ry = _st.rankdata(x), _st.rankdata(y)
    rho = float(_rank_corr(rx, ry[None])[0])
    groups = [np.flatnonzero(b == k) for k in np.unique(b)]
    total = math.prod(math.factorial(len(g)) for g in groups)
    if total <= max_exact:
        per_block = [list(itertools.permutations(g)) for g in groups]
        arrangements = np.empty((total, n), int)
        for row, combo in enumerate(itertools.product(*per_block)):
            for g, perm in zip(groups, combo):
                arrangements[row, g] = perm
        null = _rank_corr(rx, ry[arrangements])
        p = float(np.mean(np.abs(null) >= abs(rho) - 1e-12))
        method, resamples = "exact permutation", total
    elif blocks is None and n > LARGE_N:
        # the t approximation of scipy.stats.spearmanr is accurate here, and resampling costly
        p = float(_st.spearmanr(x, y).pvalue)
        method, resamples = "asymptotic (t approximation)", 0
    else:
        rng = np.random.default_rng(seed)
        hits, done = 0, 0
        while done < n_resamples:  # in chunks: memory stays ~chunk x n
            k = min(2_000, n_resamples - done)
            arrangements = np.tile(np.arange(n), (k, 1))
            for g in groups:
                arrangements[:, g] = rng.permuted(np.tile(g, (k, 1)), axis=1)
            hits += int(np.sum(np.abs(_rank_corr(rx, ry[arrangements])) >= abs(rho) - 1e-12))
            done += k
        p = float((1 + hits) / (1 + n_resamples))
        method, resamples = "Monte Carlo permutation", n_resamples
    floor = smallest_attainable_p(x, b)
    if method == "Monte Carlo permutation":
        floor = max(floor, 1 / (1 + n_resamples))
    return TrendTest(n=n, estimate=rho, p_value=min(p, 1.0), method=method, resamples=resamples,
                     blocks=blocks is not None, p_min=floor)


@dataclass(frozen=True)
class Correlation:
    """A (partial) correlation: ``estimate``, two-sided ``p_value``, ``n``, ``method``
    ("pearson"/"spearman") and ``controls`` (number of variables partialled out)."""

    n: int
    estimate: float
    p_value: float
    method: str
    controls: int = 0
    note: str = ""  # why estimate / p_value are NaN (too few points, too few degrees of freedom), else ""


_CORR_METHODS = ("spearman", "pearson")
EXACT_SPEARMAN_N = 9  # below this many points (8! = 40,320 orders) Spearman's p is enumerated


def _check_method(method: str) -> None:
    if method not in _CORR_METHODS:
        raise ValueError(f"method={method!r} is not valid; choose from {list(_CORR_METHODS)}")


def correlation(x, y, method: str = "spearman") -> Correlation:
    """Pearson's r or Spearman's ρ with its two-sided p (``scipy.stats.pearsonr`` /
    ``scipy.stats.spearmanr``, t approximation); NaN pairs left out, NaN below 3 points.
    Spearman's p is exact below :data:`EXACT_SPEARMAN_N` points (every permutation, as
    :func:`trend_test`): there the t approximation gives p = 0 for 3 points in order."""
    _check_method(method)
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:  # numpy would broadcast them
        raise ValueError(f"x and y must be 1-D of one length; got shapes {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or constant(x) or constant(y):
        return Correlation(len(x), NAN, NAN, method)
    if method == "spearman" and len(x) < EXACT_SPEARMAN_N:
        exact = trend_test(x, y)
        return Correlation(len(x), exact.estimate, exact.p_value, method)
    res = _st.spearmanr(x, y) if method == "spearman" else _st.pearsonr(x, y)
    return Correlation(len(x), float(res.statistic), float(res.pvalue), method)


PARTIAL_SPEARMAN_MIN_DF = EXACT_SPEARMAN_N - 2  # below it a rank correlation's t approximation is unusable


def partial_correlation(x, y, z, method: str = "spearman") -> Correlation:
    """Correlation of ``x`` and ``y`` with ``z`` (one variable, or columns of a 2-D array)
    partialled out: both are regressed on z (with an intercept) by least squares and the
    residuals correlated; for "spearman" all variables are ranked first. p from Student's
    t with n − 2 − k degrees of freedom for k controls, as ``pingouin.partial_corr``, where
    k is the rank of the controls (a constant or repeated control column removes nothing,
    so it takes no degree of freedom). For one control this equals
    (r_xy − r_xz r_yz) / √((1 − r_xz²)(1 − r_yz²)).

    Too few points give NaN with the reason in ``note``, not a p-value: fewer than one
    degree of freedom, and for "spearman" fewer than :data:`PARTIAL_SPEARMAN_MIN_DF` (no exact
    test exists for a partial rank correlation, and its t approximation gives p ≈ 1e-150 for
    4 points in order with one control, the trap :func:`correlation` avoids by enumerating).

    Used to ask whether influence entropy tracks memorization beyond plain difficulty.
    """
    _check_method(method)
    x, y, z = np.asarray(x, float), np.asarray(y, float), np.asarray(z, float)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"x and y must be 1-D; got shapes {x.shape} and {y.shape}")
    z = z[:, None] if z.ndim == 1 else z
    if z.ndim != 2 or z.shape[1] == 0:
        raise ValueError(f"z must be 1-D (one control) or 2-D (points x controls, at least one column); got shape "
                         f"{np.shape(z)}")
    if not (len(x) == len(y) == len(z)):
        raise ValueError(f"x, y and z must have one length; got {len(x)}, {len(y)}, {len(z)}")
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z).all(axis=1)
    x, y, z = x[ok], y[ok], z[ok]
    n = len(x)
    if method == "spearman" and n:
        x, y = _st.rankdata(x), _st.rankdata(y)
        z = np.column_stack([_st.rankdata(c) for c in z.T])
    design = np.column_stack([np.ones(n), z])
    k = int(np.linalg.matrix_rank(design)) - 1 if n else z.shape[1]  # controls that remove something
    df = n - 2 - k
    need = 1 if method == "pearson" else PARTIAL_SPEARMAN_MIN_DF
    if df < need:
        controls = f"{k} control{'s' if k != 1 else ''}" + (f" (the rank of the {z.shape[1]} columns of z)"
                                                            if k != z.shape[1] else "")
        return Correlation(n, NAN, NAN, method, k, note=(
            f"too few points: {n} with {controls} leave n − 2 − k = {df} degrees of freedom; "
            f"a partial {method} correlation needs at least {need} ({need + 2 + k} points)"))
    if constant(x) or constant(y):
        return Correlation(n, NAN, NAN, method, k, note="x or y is constant: no correlation is defined")
    rx = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    ry = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    if constant(rx) or constant(ry):
        return Correlation(n, NAN, NAN, method, k, note="the controls explain x or y completely: nothing is left "
                                                         "to correlate")
    r = float(np.clip(np.corrcoef(rx, ry)[0, 1], -1.0, 1.0))
    t = r * math.sqrt(df / max(1e-300, 1.0 - r * r))
    return Correlation(n, r, float(2 * _st.t.sf(abs(t), df)), method, k)


@dataclass(frozen=True)
class Verdict:
    """What a test says about one of the paper's claims, with the numbers behind it.

    ``outcome``: one of ``OUTCOMES``, or ``NO_DIRECTION`` for a test the paper gives no
    direction for. ``expected_sign``: the paper's direction (+1 / −1; 0: none).
    ``p_adjusted``: Holm-adjusted within the chapter's family of ``family_size`` tests
    (the raw p for an exploratory test). ``role``: one of ``ROLES``. ``level``: the level
    each test is held to, α/m for a confirmatory test (Holm's first step), α for an
    exploratory one; ``half_width``: the smallest difference the design resolves at that
    level (:func:`detectable_difference`; NaN without an interval). ``se``/``df``: the
    estimate's standard error and degrees of freedom.
    """

    outcome: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    n: int
    expected_sign: int
    alpha: float = ALPHA
    method: str = ""
    family_size: int = 1
    note: str = ""
    dropped: int = 0
    role: str = "confirmatory"
    level: float = NAN
    half_width: float = NAN
    se: float = NAN
    df: float = NAN
    p_min: float = NAN  # a trend test's smallest attainable p (smallest_attainable_p); NaN for other tests

    @property
    def agrees(self) -> bool:
        return self.outcome == "reproduced"

    def as_dict(self) -> dict:
        return asdict(self)


def verdict(estimate: float, ci: tuple[float, float], p_adjusted: float, expected_sign: int, n: int, *,
            min_n: int = MIN_N, alpha: float = ALPHA, p_value: float | None = None, method: str = "",
            family_size: int = 1, note: str = "", dropped: int = 0, role: str = "confirmatory",
            level: float = NAN, half_width: float = NAN, se: float = NAN, df: float = NAN) -> Verdict:
    """The one rule for every verdict in the book.

    - ``insufficient``: n < ``min_n``, or no finite estimate or p-value;
    - ``reproduced``: Holm-adjusted p < ``alpha`` and the estimate has the paper's sign;
    - ``opposite``: Holm-adjusted p < ``alpha`` and the estimate has the other sign;
    - ``not resolved``: otherwise.

    ``dropped``: pairs the test left out because a side diverged (NaN), for the sentence.
    """
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign={expected_sign!r} is not valid; choose +1 or -1 (the paper's direction)")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is not valid; choose a value in (0, 1)")
    lo, hi = (NAN, NAN) if ci is None else (float(ci[0]), float(ci[1]))
    estimate, p_adjusted = float(estimate), float(p_adjusted)
    if n < min_n or not math.isfinite(estimate) or not math.isfinite(p_adjusted):
        outcome = "insufficient"
    elif p_adjusted < alpha and estimate != 0:
        outcome = "reproduced" if np.sign(estimate) == expected_sign else "opposite"
    else:
        outcome = "not resolved"
    if role not in ROLES:
        raise ValueError(f"role={role!r} is not valid; choose from {list(ROLES)}")
    return Verdict(outcome, estimate, lo, hi, NAN if p_value is None else float(p_value), p_adjusted, int(n),
                   int(expected_sign), alpha, method, family_size, note, int(dropped), role, float(level),
                   float(half_width), float(se), float(df))


def holm_verdicts(tests: Mapping[str, PairedTest | TrendTest | Correlation], expected: Mapping[str, int], *,
                  alpha: float = ALPHA, min_n: int = MIN_N, exploratory=(), empty=()) -> dict[str, Verdict]:
    """Verdicts for a chapter's tests: the confirmatory ones Holm-adjusted together.

    ``tests``: name -> a test result (anything with ``n``, ``estimate``, ``p_value``;
    intervals are taken from ``ci_low``/``ci_high`` when present). ``expected``: name ->
    the paper's sign for that test, 0 where the paper gives no direction.

    - **confirmatory** (the default): the tests that decide the paper's claims; Holm over
      those with a p-value (insufficient ones do not count); held to level α/m.
    - **exploratory**: names in ``exploratory`` and every test with expected sign 0; reported
      with their raw p (``p_adjusted`` = raw p, ``family_size`` 1, held to α), outcome
      ``NO_DIRECTION`` where the sign is 0. They never enlarge the family.
    - **empty**: names in ``empty`` (e.g. buckets where every run scores 100 %): no test at
      all, outcome ``insufficient``, no p-value, not in the family.

    Every verdict carries ``half_width``: the smallest difference its design resolves at
    the level it is held to (:func:`detectable_difference`).
    """
    missing = sorted(set(tests) - set(expected))
    if missing:
        raise ValueError(f"expected has no sign for {missing}")
    if not tests:  # no test, no verdict (numpy's empty array made Holm's mask fail with a TypeError)
        return {}
    bad = sorted(str(k) for k in expected if expected[k] not in (1, -1, 0))
    if bad:
        raise ValueError(f"expected signs must be +1, -1 or 0 (no paper direction); bad for {bad}")
    exploratory, empty = set(exploratory), set(empty)
    names = list(tests)
    role = {k: "empty" if k in empty else "exploratory" if (k in exploratory or expected[k] == 0) else "confirmatory"
            for k in names}
    raw = np.array([t.p_value if t.n >= min_n else NAN for t in (tests[k] for k in names)], float)
    confirm = np.array([role[k] == "confirmatory" for k in names])
    adjusted = holm(np.where(confirm, raw, NAN))
    size = int((np.isfinite(raw) & confirm).sum())
    out = {}
    for name, p_raw, p_adj in zip(names, raw, adjusted):
        t, r = tests[name], role[name]
        ci = (getattr(t, "ci_low", NAN), getattr(t, "ci_high", NAN))
        se, df = float(getattr(t, "se", NAN)), float(getattr(t, "df", NAN))
        common = dict(min_n=min_n, alpha=alpha, method=getattr(t, "method", ""), role=r, se=se, df=df,
                      dropped=int(getattr(t, "dropped", 0)))
        if r == "empty":
            out[name] = verdict(NAN, (NAN, NAN), NAN, expected[name] or 1, t.n, p_value=NAN, family_size=0,
                                note="empty: every run scores 100 % here (the ceiling), so no method can differ",
                                **common)
            out[name] = Verdict(**{**out[name].as_dict(), "expected_sign": int(expected[name]),
                                   "estimate": float(t.estimate)})
            continue
        level = alpha / max(size, 1) if r == "confirmatory" else alpha
        hw = detectable_difference(se, df, level)
        note = getattr(t, "note", "")
        if r == "exploratory":
            note = "exploratory: not Holm-adjusted" + (f"; {note}" if note else "")
        if expected[name] == 0:
            v = verdict(t.estimate, ci, p_raw, 1, t.n, p_value=p_raw, family_size=1, note=note, level=level,
                        half_width=hw, **common)
            outcome = v.outcome if v.outcome == "insufficient" else NO_DIRECTION
            out[name] = Verdict(**{**v.as_dict(), "outcome": outcome, "expected_sign": 0})
            continue
        out[name] = verdict(t.estimate, ci, p_adj if r == "confirmatory" else p_raw, expected[name], t.n,
                            p_value=p_raw, family_size=size if r == "confirmatory" else 1, note=note, level=level,
                            half_width=hw, **common)
    return {k: replace(v, p_min=float(getattr(tests[k], "p_min", NAN))) for k, v in out.items()}


def family_table(verdicts: Mapping[str, Verdict]):
    """The family as a DataFrame (one row per test), for display beside the prose."""
    import pandas as pd

    rows = [{"test": k, **v.as_dict()} for k, v in verdicts.items()]
    return pd.DataFrame(rows).set_index("test")



def seeds_for_half_width(sd: float, half_width: float, confidence: float = 0.95, min_n: int = MIN_N,
                         max_n: int = 1_000_000) -> int:
    """The fewest pairs n (≥ ``min_n``) whose t-interval of a mean difference, with the
    differences' standard deviation ``sd``, has half-width ``t_{(1+c)/2, n−1} · sd / √n`` of at
    most ``half_width``: how many seeds a paired comparison needs to resolve a difference of
    2 × ``half_width`` (a power calculation from a pilot's SD; the interval :func:`paired_test`
    reports)."""
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd={sd!r} is not valid; it must be a finite number >= 0")
    if not (math.isfinite(half_width) and half_width > 0):
        raise ValueError(f"half_width={half_width!r} is not valid; it must be a finite number > 0")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} is not valid; choose a value in (0, 1)")
    q = (1 + confidence) / 2
    # t > z, so the normal-theory n is a lower bound; the half-width falls with n from there
    n = max(min_n, math.ceil((_st.norm.ppf(q) * sd / half_width) ** 2))
    while _st.t.ppf(q, n - 1) * sd / math.sqrt(n) > half_width:
        n += 1
        if n > max_n:
            raise ValueError(f"more than max_n={max_n} pairs needed for half_width={half_width!r} at sd={sd!r}")
    return n
