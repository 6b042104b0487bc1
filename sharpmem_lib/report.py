"""Putting computed numbers into the book: glue and readable tables.

Numbers in chapter prose are never typed: a notebook computes them, ``glue`` records them
in the executed notebook, and the page's ``{glue}`` roles display them.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats

__all__ = ["glue", "mean_std_table", "pct", "describe_gain", "gain_table", "paired_gain", "bucket_pattern",
           "method_label", "top1_trend", "trend"]


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` for the book's ``{glue}`` roles (myst-nb); a no-op without myst-nb,
    e.g. in Colab, where the value is simply shown in the notebook instead."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - exercised only outside the book toolchain
        return
    _glue(name, value, display=display)


def pct(x: float, digits: int = 1) -> str:
    """0.9234 -> '92.3 %'."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f} %"


def mean_std_table(summary: pd.DataFrame, index: list[str], metrics: dict[str, str], digits: int = 1) -> pd.DataFrame:
    """Format ``<metric>_mean``/``<metric>_std`` columns as 'mean ± std' percentages.

    ``metrics`` maps a metric name to its display header.
    """
    out = summary[index].copy()
    for metric, header in metrics.items():
        mean, std = summary[f"{metric}_mean"], summary[f"{metric}_std"].fillna(0.0)
        out[header] = [f"{100 * m:.{digits}f} ± {100 * s:.{digits}f}" for m, s in zip(mean, std)]
    return out.set_index(index)


def describe_gain(row: pd.Series | dict, method: str, baseline: str, what: str) -> str:
    """One honest sentence about a paired gain (see ``toy.paired_gain``)."""
    gain, lo, hi = row["gain"], row["ci95_low"], row["ci95_high"]
    counts = f"{method.upper()} was better on {row['wins']} of {row['seeds']} seeds"
    if math.isnan(lo):
        why = "one seed" if row["seeds"] < 2 else "the paired differences do not vary across seeds"
        return (f"{method.upper()} − {baseline.upper()} on {what}: {100 * gain:+.1f} points "
                f"({counts}; no interval: {why}).")
    ci = f"95 % CI [{100 * lo:+.1f}, {100 * hi:+.1f}], paired t-test p = {row['p_value']:.3g}"
    if lo > 0:
        verdict = f"{method.upper()} beats {baseline.upper()}"
    elif hi < 0:
        verdict = f"{method.upper()} is worse than {baseline.upper()}"
    else:
        verdict = f"{method.upper()} and {baseline.upper()} are not distinguishable"
    return f"{verdict} on {what}: {100 * gain:+.1f} points ({ci}; {counts})."


def gain_table(gains: pd.DataFrame, index: str = "sample") -> pd.DataFrame:
    """Readable version of a paired-gain frame: percentage points, interval, p-value, wins."""
    out = pd.DataFrame(index=gains[index])
    out["gain (points)"] = [f"{100 * g:+.1f}" for g in gains["gain"]]
    out["95 % CI"] = [f"[{100 * lo:+.1f}, {100 * hi:+.1f}]" if not math.isnan(lo) else "n/a"
                      for lo, hi in zip(gains["ci95_low"], gains["ci95_high"])]
    out["p (paired t)"] = [f"{p:.3g}" if not math.isnan(p) else "n/a" for p in gains["p_value"]]
    out["wins / seeds"] = [f"{w} / {n}" for w, n in zip(gains["wins"], gains["seeds"])]
    return out


def paired_gain(runs: pd.DataFrame, method: str = "sam", baseline: str = "sgd",
                metric: str = "atypical_acc", by: str = "sample") -> pd.DataFrame:
    """Gain of ``method`` over ``baseline`` in ``metric`` per value of ``by``, paired by seed
    (same data and initial weights for both methods of a seed).

    ``runs`` has one row per (``by``, ``seed``, ``method``). Returns mean gain, a 95 %
    t-interval, the paired t-test p-value and the number of seeds on which ``method`` won.
    """
    out = []
    for group, df in runs.groupby(by, sort=False):
        wide = df.pivot(index="seed", columns="method", values=metric)
        if method not in wide or baseline not in wide:
            continue
        diff = (wide[method] - wide[baseline]).to_numpy()
        n = len(diff)
        mean = float(diff.mean())
        if n > 1 and diff.std(ddof=1) > 0:
            half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n))
            p = float(stats.ttest_rel(wide[method], wide[baseline]).pvalue)
        else:
            half, p = float("nan"), float("nan")
        out.append({by: group, "metric": metric, "gain": mean, "ci95_low": mean - half,
                    "ci95_high": mean + half, "p_value": p, "wins": int((diff > 0).sum()),
                    "ties": int((diff == 0).sum()), "seeds": n})
    return pd.DataFrame(out)


_LABELS = {"sgd": "SGD", "sam": "SAM", "swa": "SWA", "sharp": "eq. 4", "sharpreg": "SharpReg"}


def method_label(method) -> str:
    """The paper's name of an algorithm (SGD, SAM, SharpReg); any other label (e.g.
    'λ = 0.5') as given."""
    return _LABELS.get(str(method), str(method))


def bucket_pattern(gains: pd.DataFrame, method: str, low: int = 1, high: int = 5, expect: str = "gain") -> str:
    """Does ``method``'s change against the baseline concentrate in bucket ``low`` rather
    than ``high``, as the paper says? ``expect="gain"`` (Fig. 3a: SAM gains most in bucket 1)
    or ``"loss"`` (Figs. 4a, 5a: sharper minima lose most in bucket 1). One sentence, from
    ``paired_gain(..., by="bucket")``, that separates point estimates from what the
    intervals support."""
    if expect not in ("gain", "loss"):
        raise ValueError(f"expect={expect!r} is not valid; choose 'gain' or 'loss'")
    g = gains.set_index("bucket")
    lo_row, hi_row = g.loc[low], g.loc[high]
    sign = 1 if expect == "gain" else -1
    larger = sign * lo_row["gain"] > sign * hi_row["gain"]
    significant = bool(lo_row["ci95_low"] > 0) if expect == "gain" else bool(lo_row["ci95_high"] < 0)
    name = method_label(method)
    if larger and significant:
        return (f"{name}'s {expect} is larger in bucket {low} than in bucket {high} and its interval in bucket "
                f"{low} excludes zero: the paper's pattern.")
    if larger:
        return (f"{name}'s point estimate shows a larger {expect} in bucket {low} than in bucket {high}, the "
                f"direction of the paper's pattern, but its interval in bucket {low} includes zero: not "
                "established at this scale.")
    return f"{name}'s {expect} is not larger in bucket {low} than in bucket {high}: the paper's pattern does not appear."


def top1_trend(means: list[float]) -> str:
    """Compare the mean top-1-influencer memorization of bucket 1 with the highest bucket
    where it is defined (NaN: no test point of that bucket has a positive influence)."""
    defined = [b for b, m in enumerate(means, start=1) if not math.isnan(m)]
    if not defined or defined[0] != 1 or len(defined) < 2:
        return "cannot be compared across buckets (too few buckets with a positive influence)"
    top = defined[-1]
    where = "bucket 5" if top == 5 else f"bucket {top}, the highest bucket where it is defined"
    direction = "falls" if means[0] > means[top - 1] else "does not fall"
    paper = "as in the paper" if direction == "falls" else "unlike the paper"
    return f"{direction} from {means[0]:.2f} in bucket 1 to {means[top - 1]:.2f} in {where}, {paper}"


def trend(x, y, what: str, against: str, alpha: float = 0.05) -> str:
    """One sentence on whether ``y`` ('what') moves monotonically with ``x`` ('against'):
    Spearman's rank correlation over the runs, with its p-value. NaNs are left out."""
    import numpy as np

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return f"{what}: too few distinct runs to tell a trend with {against} (n = {len(x)})."
    rho, p = stats.spearmanr(x, y)
    stat = f"Spearman ρ = {rho:+.2f}, p = {p:.2g}, n = {len(x)} runs"
    if p >= alpha:
        return f"{what} shows no significant monotone trend with {against} ({stat})."
    return f"{what} {'rises' if rho > 0 else 'falls'} as {against} grows ({stat})."
