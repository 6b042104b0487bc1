"""Membership-inference partitions (paper §4, App. B), after Tang et al. (SELENA).

A partition cuts a dataset into disjoint index sets:

* ``members``: the target model's training set;
* ``validation``: for early stopping (the paper selects the best-validation model); never
  trained on and never given to the attacker;
* ``nonmembers``: everything else; and, per *split seed*, the attacker's knowledge:
  ``attack_members`` (half of the members), ``eval_members`` (the other half),
  ``attack_nonmembers`` (SELENA's "reference" set) and ``eval_nonmembers``.

The members, validation and non-member pool depend only on the dataset (a fixed seed, as
SELENA fixes its permutation), so one trained target model serves every split seed: the
"5 runs with different attack data splits" of the paper's Table 1 are 5 split seeds over
the same target. Training seeds are a separate source of variance.

SELENA's partitions, and ours (``SPLITS``; CPU datasets scaled down in the same shape):

=================  ===========================  ===========  =================  ==========
dataset            members                      validation   reference          eval non-m.
=================  ===========================  ===========  =================  ==========
cifar10, cifar100  official train (50,000)      1,000 test   half of the rest   the rest
fashion_mnist      official train (60,000)      1,000 test   half of the rest   the rest
fashion_mnist_cpu  2,500 of 7,000 (500 known)   500          2,000              2,000
purchase100        10 % (19,732)                5,000        15 % (29,598)      the rest
texas100           10,000                       2,000        30 % (20,199)      the rest
digits             50 %                         10 %         half of the rest   the rest
longtail           50 %                         10 %         half of the rest   the rest
=================  ===========================  ===========  =================  ==========

SELENA has no validation set (it keeps the checkpoint with the best *test* accuracy, which
its README admits is biased); ours is carved from the non-members before the reference set.

A dataset of the user's (:func:`sharpmem_lib.data.register_dataset`, or ``<name>.npz`` in a
data directory) is cut by :func:`split_spec`: its official training split as members when
it marks an official test split, else like ``digits``; :func:`register_split` sets another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sharpmem_lib.data import DATASETS, Arrays, load_dataset
from sharpmem_lib.validation import check_choice

__all__ = ["SplitSpec", "SPLITS", "Partition", "make_partition", "partitioned_datasets", "published_partition",
           "register_split", "split_spec", "split_table"]

POOL_SEED = 0  # fixes members / validation / non-member pool, like SELENA's saved permutation


@dataclass(frozen=True)
class SplitSpec:
    """How a dataset is cut. Sizes are counts (int) or fractions of the whole pool (float);
    ``members="official_train"`` uses the dataset's own training split; ``validation`` is
    taken from the non-members (the official test split when there is one); ``reference``
    of ``"half"`` gives half of the remaining non-members to the attacker;
    ``attack_members`` is the share of the members the attacker knows (SELENA's half; a CPU
    split can give the attacker fewer, so that more members are left to evaluate on)."""

    members: int | float | str
    validation: int | float
    reference: int | float | str
    attack_members: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.attack_members < 1:
            raise ValueError(f"attack_members={self.attack_members!r} is not valid; it must lie strictly between 0 "
                             "and 1 (the attacker's share of the members)")


SPLITS: dict[str, SplitSpec] = {
    "cifar10": SplitSpec("official_train", 1_000, "half"),
    "cifar100": SplitSpec("official_train", 1_000, "half"),
    "fashion_mnist": SplitSpec("official_train", 1_000, "half"),
    # CPU-sized (the default book): 2,500 members, the attacker knows 500 of them, so that
    # 2,000 members + 2,000 non-members are evaluated (issue 16's power targets)
    "fashion_mnist_cpu": SplitSpec(2_500, 500, 2_000, attack_members=0.2),
    "purchase100": SplitSpec(0.10, 5_000, 0.15),
    "texas100": SplitSpec(10_000, 2_000, 0.30),
    "digits": SplitSpec(0.50, 0.10, "half"),
    "longtail": SplitSpec(0.50, 0.10, "half"),
}


@dataclass(frozen=True)
class Partition:
    """Disjoint index arrays into a dataset; see the module docstring."""

    dataset: str
    split_seed: int
    members: np.ndarray
    validation: np.ndarray
    nonmembers: np.ndarray
    attack_members: np.ndarray
    eval_members: np.ndarray
    attack_nonmembers: np.ndarray
    eval_nonmembers: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in
                ("members", "validation", "attack_members", "eval_members", "attack_nonmembers", "eval_nonmembers")}


def _count(size: int | float, n: int) -> int:
    return int(size * n) if isinstance(size, float) else int(size)


def partitioned_datasets() -> list[str]:
    """Datasets a target model can be trained on: every registered one with a split (all
    but ``toy2d``, whose chapter draws its own samples), the user's included."""
    return [d for d, info in DATASETS.items() if d in SPLITS or not info.builtin]


def register_split(name: str, spec: SplitSpec) -> None:
    """Cut a user dataset by ``spec`` instead of :func:`split_spec`'s default."""
    check_choice("dataset", name, [d for d, info in DATASETS.items() if not info.builtin])
    if not isinstance(spec, SplitSpec):
        raise ValueError(f"spec={spec!r} is not valid; it must be a SplitSpec")
    SPLITS[name] = spec


def split_spec(name: str, data: Arrays) -> SplitSpec:
    """How dataset ``name`` is cut: :data:`SPLITS` for the built-ins (and registered
    splits); for a user dataset, its official training split as members with a tenth of its
    official test split for validation when it has one, else 50 % / 10 % / half like digits."""
    check_choice("dataset", name, partitioned_datasets())
    if name in SPLITS:
        return SPLITS[name]
    if data.official_test.any():
        return SplitSpec("official_train", max(1, int(data.official_test.sum()) // 10), "half")
    return SplitSpec(0.50, 0.10, "half")


def make_partition(name: str, data: Arrays, split_seed: int = 0) -> Partition:
    """The partition of dataset ``name`` (whose arrays are ``data``) for ``split_seed``.

    A deterministic function of (dataset, split seed); members, validation and the
    non-member pool do not depend on the split seed.
    """
    spec = split_spec(name, data)
    n = len(data)
    pool_rng = np.random.default_rng(POOL_SEED)
    if spec.members == "official_train":
        if not data.official_test.any():
            raise ValueError(f"dataset {name!r} has no official test split to hold out")
        members = np.flatnonzero(~data.official_test)
        rest = pool_rng.permutation(np.flatnonzero(data.official_test))
    else:
        order = pool_rng.permutation(n)
        n_members = _count(spec.members, n)
        members, rest = np.sort(order[:n_members]), order[n_members:]
    if len(members) < 2:
        raise ValueError(f"dataset {name!r}: {len(members)} member(s) out of {n} examples; too few to train and attack")
    n_val = _count(spec.validation, n)
    if n_val < 1:  # training keeps the best-validation weights: an empty validation set fails deep in torch
        raise ValueError(f"dataset {name!r}: {n} examples leave no validation example ({spec.validation!r} of "
                         f"{n}); too few to train and attack")
    if n_val >= len(rest):
        raise ValueError(f"dataset {name!r}: validation ({n_val}) leaves no non-members out of {len(rest)}")
    validation, nonmembers = np.sort(rest[:n_val]), rest[n_val:]

    rng = np.random.default_rng([split_seed, 1000])  # SELENA splits members with seed 1000
    shuffled_members = rng.permutation(members)
    half = int(len(members) * spec.attack_members)  # len // 2 for SELENA's half
    if not 0 < half < len(members):
        raise ValueError(f"dataset {name!r}: {len(members)} members cannot be split into the attacker's and the "
                         "evaluated members (each needs at least one); too few to train and attack")
    shuffled_non = rng.permutation(nonmembers)
    n_ref = len(nonmembers) // 2 if spec.reference == "half" else _count(spec.reference, n)
    if not 0 < n_ref < len(nonmembers):
        raise ValueError(f"dataset {name!r}: reference size {n_ref} does not fit {len(nonmembers)} non-members")
    return Partition(
        dataset=name,
        split_seed=split_seed,
        members=members,
        validation=validation,
        nonmembers=np.sort(nonmembers),
        attack_members=np.sort(shuffled_members[:half]),
        eval_members=np.sort(shuffled_members[half:]),
        attack_nonmembers=np.sort(shuffled_non[:n_ref]),
        eval_nonmembers=np.sort(shuffled_non[n_ref:]),
    )


def split_table(partitions: list[Partition]) -> pd.DataFrame:
    """Sizes of each partition's sets, one row per dataset (for the book)."""
    return pd.DataFrame([{"dataset": p.dataset, **p.sizes()} for p in partitions]).set_index("dataset")


def published_partition(name: str, split_seed: int = 0) -> Partition:
    """The partition of a dataset, computed without its files where it needs a download:
    from its published size (offline datasets are simply loaded)."""
    check_choice("dataset", name, partitioned_datasets())
    info = DATASETS[name]
    if info.offline:
        return make_partition(name, load_dataset(name), split_seed)
    n, n_test = info.published_size
    shape_only = Arrays(np.zeros((n, 0), np.uint8), np.zeros(n, np.int64),
                        official_test=np.r_[np.zeros(n - n_test, bool), np.ones(n_test, bool)])
    return make_partition(name, shape_only, split_seed)
