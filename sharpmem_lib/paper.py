"""Numbers reported by the paper, quoted as data for side-by-side comparison.

These are the paper's values (Table 1: mean and standard deviation over 5 attack data
splits, in percent), not results of this repository: the book labels them as quoted.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["paper_table1"]

# dataset, algorithm, test acc, single-query acc, multi-query acc: (mean, std) in percent
_TABLE1 = [
    ("cifar100", "sgd", (79.92, 0.40), (76.68, 0.38), (69.18, 0.14)),
    ("cifar100", "sam", (82.04, 0.32), (79.09, 0.56), (65.41, 0.10)),
    ("cifar100", "sharpreg", (75.86, 0.24), (59.64, 0.69), (60.15, 0.56)),
    ("cifar10", "sgd", (95.88, 0.16), (59.05, 0.30), (56.36, 0.12)),
    ("cifar10", "sam", (96.54, 0.06), (61.32, 0.35), (54.01, 0.07)),
    ("cifar10", "sharpreg", (93.58, 0.29), (53.30, 0.64), (53.68, 0.90)),
    ("purchase100", "sgd", (84.95, 0.38), (66.30, 0.63), (65.27, 0.33)),
    ("purchase100", "sam", (84.83, 0.40), (66.59, 0.86), (65.84, 0.24)),
    ("purchase100", "sharpreg", (81.34, 0.61), (60.51, 1.20), (60.64, 1.07)),
    ("texas100", "sgd", (50.67, 0.40), (64.13, 1.60), (63.61, 1.50)),
    ("texas100", "sam", (51.50, 0.24), (67.39, 1.60), (66.27, 1.60)),
    ("texas100", "sharpreg", (49.78, 0.72), (60.62, 1.10), (59.27, 0.69)),
]


def paper_table1() -> pd.DataFrame:
    """The paper's Table 1 as fractions: columns ``<metric>_mean`` and ``<metric>_std`` for
    ``test_acc``, ``single_query``, ``multi_query``; index (dataset, algorithm)."""
    rows = []
    for dataset, algorithm, *values in _TABLE1:
        row = {"dataset": dataset, "algorithm": algorithm}
        for metric, (mean, std) in zip(("test_acc", "single_query", "multi_query"), values):
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean / 100, std / 100
        rows.append(row)
    return pd.DataFrame(rows).set_index(["dataset", "algorithm"])
