"""Putting computed numbers into the book: glue and readable tables.

Numbers in chapter prose are never typed: a notebook computes them, ``glue`` records them
in the executed notebook, and the page's ``{glue}`` roles display them.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["glue", "mean_std_table", "pct", "describe_gain", "gain_table"]


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
