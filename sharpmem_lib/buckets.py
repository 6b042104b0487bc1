"""Chapter 2's analysis (paper §3.2, Figs. 2, 3): memorization buckets of a dataset's held-out
test points, and each model's accuracy per bucket.

The equations (influence entropy, eq. 3; equal-count buckets) are in
:mod:`sharpmem_lib.memorization`; the subset models they are estimated from come from
:mod:`sharpmem_lib.subsampling`, or from Feldman & Zhang's published CIFAR-100 file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sharpmem_lib.data import check_feldman_zhang_file, resolve_data_file
from sharpmem_lib.experiments import Artifact
from sharpmem_lib.memorization import SameClassInfluence, accuracy_by_bucket, buckets, load_feldman_zhang
from sharpmem_lib.subsampling import SubsamplingConfig, run_subsampling_experiment, subsampling_job
from sharpmem_lib.validation import check_choice

__all__ = ["MemorizationBuckets", "bucket_accuracy_table", "memorization_buckets"]


@dataclass
class MemorizationBuckets:
    """Influence entropy (eq. 3) and buckets of a dataset's held-out test points.

    ``test_ids``: dataset indices (the partition's non-members, validation excluded);
    ``entropy``, ``bucket`` (1 = lowest entropy = most memorization), ``top1`` (memorization
    score of each test point's top-1 influencer) align with them; ``influence`` is the
    :class:`~sharpmem_lib.memorization.SameClassInfluence` they come from; ``source`` says
    whose estimates these are.
    """

    test_ids: np.ndarray
    entropy: np.ndarray
    bucket: np.ndarray
    top1: np.ndarray
    influence: SameClassInfluence
    source: str


def memorization_buckets(config: SubsamplingConfig, results_dir: str | Path | None = None, *,
                         data_dir: str | Path | None = None, influence_file: str | Path | None = None,
                         progress: bool = True) -> MemorizationBuckets:
    """The buckets of chapter 2 (Figs. 2, 3): from Feldman & Zhang's published file when
    ``influence_file`` is given (CIFAR-100; a relative path is looked up in the data
    directories, and a file for another dataset is rejected), else from ``config``'s cached
    subset models."""
    if influence_file:
        influence_path = resolve_data_file(influence_file, data_dir, what="influence_file")
    job = subsampling_job(config, data_dir)
    data, partition = job.data, job.partition
    if influence_file:
        check_feldman_zhang_file(influence_path, config.dataset, data)
        offset = int((~data.official_test).sum())
        influence, _ = load_feldman_zhang(influence_path, test_id_offset=offset)
        source = f"Feldman & Zhang's published estimates ({influence_file})"
    else:
        runs, train_ids, test_ids = run_subsampling_experiment(config, results_dir, progress=progress, job=job)
        influence = SameClassInfluence.from_dense(runs.influence().value, data.y[test_ids], data.y[train_ids],
                                                  test_ids, train_ids, train_mem=runs.memorization().value)
        source = (f"our estimates from {config.n_models} {config.model} models, each trained on "
                  f"{config.fraction:.0%} of the {len(train_ids)} training points of {config.dataset}")
    test_ids, entropy = influence.entropy()
    held_out = np.isin(test_ids, partition.validation, invert=True)  # never score on the validation set
    test_ids, entropy = test_ids[held_out], entropy[held_out]
    return MemorizationBuckets(test_ids, entropy, buckets(entropy), influence.top1_memorization(test_ids),
                               influence, source)


def bucket_accuracy_table(artifacts: dict[tuple[str, int], Artifact], test_ids: np.ndarray, labels: np.ndarray,
                          bucket: np.ndarray, which: str = "best"):
    """Accuracy of each (method, seed) model on the test points of each bucket.

    ``test_ids`` are dataset indices, ``labels`` the dataset's labels, ``bucket`` the bucket
    of each test id. Returns one row per (method, seed, bucket) with column ``acc``.
    """
    import pandas as pd

    check_choice("which", which, ["best", "final"])
    rows = []
    for (method, seed), art in artifacts.items():
        correct = art.outputs()[f"logits_{which}"][test_ids].argmax(1) == labels[test_ids]
        for b, acc in enumerate(accuracy_by_bucket(correct, bucket)[0], start=1):
            rows.append({"method": method, "seed": seed, "bucket": b, "acc": float(acc)})
    return pd.DataFrame(rows)
