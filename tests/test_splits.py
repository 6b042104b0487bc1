"""Partitions: disjoint, the sizes of the table, deterministic, split seeds vary only the attacker's view."""

import numpy as np
import pytest

from sharpmem_lib.data import Arrays, load_dataset
from sharpmem_lib.splits import SPLITS, make_partition, split_table

SETS = ("validation", "attack_members", "eval_members", "attack_nonmembers", "eval_nonmembers")


def fake(n, n_test=0):
    """Arrays of the right length; the partition looks only at length and the official split."""
    return Arrays(np.zeros((n, 1), np.float32), np.zeros(n, np.int64),
                  official_test=np.r_[np.zeros(n - n_test, bool), np.ones(n_test, bool)])


SHAPES = {"cifar10": (60_000, 10_000), "cifar100": (60_000, 10_000), "fashion_mnist": (70_000, 10_000),
          "purchase100": (197_324, 0), "texas100": (67_330, 0), "digits": (1_797, 0), "longtail": (3_020, 0),
          "fashion_mnist_cpu": (7_000, 0)}


@pytest.mark.parametrize("name", list(SPLITS))
def test_sets_are_disjoint_and_cover_the_dataset(name):
    n, n_test = SHAPES[name]
    part = make_partition(name, fake(n, n_test), split_seed=3)
    sets = [getattr(part, s) for s in SETS]
    union = np.concatenate(sets)
    assert len(union) == len(np.unique(union)) == n  # disjoint, and everything is somewhere
    np.testing.assert_array_equal(np.sort(np.r_[part.attack_members, part.eval_members]), part.members)
    np.testing.assert_array_equal(np.sort(np.r_[part.attack_nonmembers, part.eval_nonmembers]), part.nonmembers)
    share = SPLITS[name].attack_members  # SELENA's half, or a CPU split's smaller share
    assert abs(len(part.attack_members) - share * len(part.members)) <= 1


def test_sizes_follow_selena():
    purchase = make_partition("purchase100", fake(197_324)).sizes()
    assert purchase["members"] == 19_732 and purchase["attack_nonmembers"] == 29_598
    assert purchase["validation"] == 5_000 and purchase["eval_nonmembers"] == 197_324 - 19_732 - 29_598 - 5_000
    texas = make_partition("texas100", fake(67_330)).sizes()
    assert texas["members"] == 10_000 and texas["attack_nonmembers"] == 20_199 and texas["validation"] == 2_000
    cifar = make_partition("cifar100", fake(60_000, 10_000))
    assert cifar.sizes() == {"members": 50_000, "validation": 1_000, "attack_members": 25_000,
                             "eval_members": 25_000, "attack_nonmembers": 4_500, "eval_nonmembers": 4_500}
    np.testing.assert_array_equal(cifar.members, np.arange(50_000))  # all official training images


def test_cpu_fashion_split_evaluates_2000_members_and_2000_nonmembers():
    # issue 16: evaluation sets of >= 2,000 members + 2,000 non-members from 2,500 members,
    # the attacker knowing a fifth of them
    part = make_partition("fashion_mnist_cpu", fake(7_000), split_seed=2)
    assert part.sizes() == {"members": 2_500, "validation": 500, "attack_members": 500, "eval_members": 2_000,
                            "attack_nonmembers": 2_000, "eval_nonmembers": 2_000}


def test_selena_half_unchanged_for_odd_member_counts():
    # the attacker's share as a field must not move SELENA's floor(n / 2) by one anywhere
    for n in (897, 899, 1_797, 3_021):
        part = make_partition("digits", fake(n))
        assert len(part.attack_members) == len(part.members) // 2


def test_attack_members_share_must_lie_in_0_1():
    from sharpmem_lib.splits import SplitSpec
    for bad in (0, 1, 1.5, -0.2):
        with pytest.raises(ValueError, match=r"attack_members=.* strictly between 0 and 1"):
            SplitSpec(100, 10, "half", attack_members=bad)


def test_deterministic_and_split_seed_changes_only_the_attackers_view():
    data = load_dataset("digits")
    a, b, c = make_partition("digits", data, 0), make_partition("digits", data, 0), make_partition("digits", data, 1)
    for s in ("members", "validation", *SETS):
        np.testing.assert_array_equal(getattr(a, s), getattr(b, s))
    # the target's training data does not depend on the split seed: one model serves all splits
    np.testing.assert_array_equal(a.members, c.members)
    np.testing.assert_array_equal(a.validation, c.validation)
    assert not np.array_equal(a.attack_members, c.attack_members)
    assert not np.array_equal(a.attack_nonmembers, c.attack_nonmembers)


def test_bad_input():
    with pytest.raises(ValueError, match=r"dataset='toy2d' is not valid; choose one of \[[^]]*'cifar10'") as err:
        make_partition("toy2d", fake(100))
    assert "'toy2d'" not in str(err.value).split("choose one of")[1]
    with pytest.raises(ValueError, match="no official test split"):
        make_partition("cifar10", fake(100))


def test_split_table():
    table = split_table([make_partition("digits", load_dataset("digits"))])
    assert table.loc["digits", "members"] == 898 and table.loc["digits", "validation"] == 179


def test_published_partition_matches_the_fake_sized_one():
    from sharpmem_lib.splits import published_partition
    for name in ("purchase100", "cifar10", "digits"):
        part = published_partition(name)
        n, n_test = SHAPES[name]
        assert part.sizes() == make_partition(name, fake(n, n_test)).sizes()
