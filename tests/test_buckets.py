"""Chapter 2's analysis: buckets of the held-out test points and accuracy per bucket, against
values recomputed by hand from the subset models."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from sharpmem_lib.buckets import bucket_accuracy_table, memorization_buckets


class StoredRun:
    """What bucket_accuracy_table reads of an artifact: its stored logits."""

    def __init__(self, best: np.ndarray, final: np.ndarray) -> None:
        self._outputs = {"logits_best": best, "logits_final": final}

    def outputs(self) -> dict:
        return self._outputs


def test_bucket_accuracy_table_by_hand():
    labels = np.array([0, 1, 1, 0, 2, 2, 1, 0])  # dataset labels; test points are ids 2..7
    test_ids = np.array([2, 3, 4, 5, 6, 7])
    bucket = np.array([1, 1, 2, 3, 4, 5])  # of each test id

    def logits_predicting(classes):
        out = np.zeros((8, 3))
        out[np.arange(8), classes] = 1.0
        return out

    right = labels.copy()
    wrong_in_1 = labels.copy()
    wrong_in_1[2] = 0  # test id 2 (bucket 1) misclassified
    artifacts = {("sgd", 0): StoredRun(logits_predicting(right), logits_predicting(wrong_in_1)),
                 ("sam", 0): StoredRun(logits_predicting(wrong_in_1), logits_predicting(right))}
    best = bucket_accuracy_table(artifacts, test_ids, labels, bucket)
    table = {(r.method, r.seed, r.bucket): r.acc for r in best.itertuples()}
    assert table[("sgd", 0, 1)] == 1.0 and table[("sam", 0, 1)] == 0.5
    assert all(table[(m, 0, b)] == 1.0 for m in ("sgd", "sam") for b in (2, 3, 4, 5))
    assert len(best) == 10
    final = bucket_accuracy_table(artifacts, test_ids, labels, bucket, which="final")
    assert final.set_index(["method", "bucket"]).loc[("sgd", 1), "acc"] == 0.5
    with pytest.raises(ValueError, match="which='last'"):
        bucket_accuracy_table(artifacts, test_ids, labels, bucket, which="last")


@pytest.fixture(scope="module")
def digits_buckets(tmp_path_factory):
    from sharpmem_lib.subsampling import SubsamplingConfig
    from sharpmem_lib.train import TrainConfig

    config = SubsamplingConfig("digits", "mlp", TrainConfig(epochs=2, lr=0.1, batch_size=32), n_models=40,
                               model_kwargs={"hidden": (8,)})
    results = tmp_path_factory.mktemp("results")
    return config, results, memorization_buckets(config, results, progress=False)


def test_buckets_recomputed_from_the_subset_models(digits_buckets):
    """Each test point's entropy is eq. 3 over |infl| of its own class's training points,
    divided by log(n_k) (n_k = their number), computed here from the cached runs by a plain
    loop; with it, each point's largest influence and its binomial standard error."""
    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.memorization import buckets
    from sharpmem_lib.splits import make_partition
    from sharpmem_lib.subsampling import run_subsampling_experiment

    config, results, mb = digits_buckets
    data = load_dataset("digits")
    part = make_partition("digits", data)
    runs, train_ids, test_ids = run_subsampling_experiment(config, results, progress=False)
    np.testing.assert_array_equal(mb.test_ids, np.sort(test_ids))
    assert not np.isin(mb.test_ids, part.validation).any() and not np.isin(mb.test_ids, part.members).any()
    position = {j: n for n, j in enumerate(test_ids)}
    masks, correct = runs.masks, runs.correct_test
    for n in range(0, len(mb.test_ids), 37):  # a spread of test points
        j = mb.test_ids[n]
        same = np.flatnonzero(data.y[train_ids] == data.y[j])
        c = correct[:, position[j]]
        infl = np.array([c[masks[:, i]].mean() - c[~masks[:, i]].mean() for i in same])
        expected = scipy_entropy(np.abs(infl)) if np.abs(infl).sum() > 0 else np.log(len(same))
        assert mb.entropy[n] == pytest.approx(expected / np.log(len(same)))
        # the standard error of eq. 2 at the largest influence: two binomial proportions
        top = int(np.argmax(infl))
        p_in, p_out = c[masks[:, same[top]]].mean(), c[~masks[:, same[top]]].mean()
        n_in, n_out = masks[:, same[top]].sum(), (~masks[:, same[top]]).sum()
        if mb.measured[n]:
            assert mb.top1_influence[n] == pytest.approx(infl[top])
            assert mb.top1_se[n] == pytest.approx(np.sqrt(p_in * (1 - p_in) / n_in + p_out * (1 - p_out) / n_out))
        else:
            assert np.isnan(mb.top1_influence[n]) and np.isnan(mb.top1_se[n])
        mem = runs.memorization().value
        top = same[np.lexsort((train_ids[same], -infl))[0]]
        assert (np.isnan(mb.top1[n]) if infl.max() <= 0 else mb.top1[n] == pytest.approx(mem[top]))
        # issue 18 §5: a point with all-zero influence is unmeasured, outside buckets 1-5
        assert mb.measured[n] == bool(np.any(infl != 0)) and (mb.bucket[n] == 0) == (not mb.measured[n])
        assert mb.labels[n] == data.y[j] and mb.subset_acc[n] == pytest.approx(c.mean())  # the difficulty proxy
    np.testing.assert_array_equal(mb.bucket, buckets(mb.entropy, measured=mb.measured))
    assert "40 MLP models" in mb.source


def test_buckets_come_from_the_cache_the_second_time(digits_buckets, monkeypatch):
    import sharpmem_lib.subsampling as subsampling

    config, results, mb = digits_buckets

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(subsampling, "run_subsampling", no_training)
    again = memorization_buckets(config, results, progress=False)
    np.testing.assert_array_equal(again.entropy, mb.entropy)
    np.testing.assert_array_equal(again.bucket, mb.bucket)


# ------------------------------------------------------------ issue 18 §5: what the buckets measure


def test_unmeasured_points_stay_out_of_the_top_buckets(digits_buckets):
    """Before, the all-zero points got log(n_k) and filled buckets 2-5 sorted by class."""
    _, _, mb = digits_buckets
    assert mb.n_unmeasured == int((~mb.measured).sum()) > 0  # 40 tiny models: many points never vary
    assert set(np.unique(mb.bucket[~mb.measured])) == {0}
    counts = np.bincount(mb.bucket[mb.measured])[1:]
    assert counts.sum() == mb.measured.sum() and counts.max() - counts.min() <= 1
    # the measured points are ranked by entropy among themselves
    for b in range(1, 5):
        assert mb.entropy[mb.bucket == b].max() <= mb.entropy[mb.bucket == b + 1].min()
    # the unmeasured are those every subset model classifies alike: accuracy 0 or 1
    assert set(np.unique(mb.subset_acc[~mb.measured])) <= {0.0, 1.0}


def test_bucket_composition_by_hand():
    from sharpmem_lib.buckets import bucket_composition

    bucket = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    labels = np.array([3, 5, 3, 3, 5, 7, 7, 3])
    table = bucket_composition(bucket, labels, n_buckets=2)
    assert table.index.tolist() == ["unmeasured", 1, 2]
    assert table.loc["unmeasured"].tolist() == [2, 1, 0, 3]  # classes 3, 5, 7, total
    assert table.loc[1].tolist() == [2, 0, 0, 2] and table.loc[2].tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="one entry per test point"):
        bucket_composition(bucket, labels[:3])


def _stored(correct_by_method_seed, labels):
    """Artifacts whose logits classify point i correctly iff correct[i]."""
    out = {}
    for key, correct in correct_by_method_seed.items():
        logits = np.zeros((len(labels), 2))
        logits[np.arange(len(labels)), np.where(correct, labels, 1 - labels)] = 1.0
        out[key] = StoredRun(logits, logits)
    return out


def test_gain_within_strata_by_hand():
    from sharpmem_lib.buckets import gain_within_strata

    labels = np.zeros(8, int)
    ids = np.arange(8)
    bucket = np.array([1, 1, 2, 2, 1, 1, 2, 2])
    stratum = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    rng = np.random.default_rng(0)
    correct = {(m, s): rng.random(8) < 0.5 for m in ("sgd", "sam") for s in range(4)}
    table = bucket_accuracy_table(_stored(correct, labels), ids, labels, bucket, stratum=stratum, n_buckets=2)
    assert set(table.columns) >= {"stratum", "bucket", "acc", "points"} and len(table) == 2 * 4 * 2 * 2
    gains = gain_within_strata(table, "sam").set_index(["stratum", "bucket"])
    for st in (1, 2):
        for b in (1, 2):
            cell = (stratum == st) & (bucket == b)
            d = [correct[("sam", s)][cell].mean() - correct[("sgd", s)][cell].mean() for s in range(4)]
            assert gains.loc[(st, b), "gain"] == pytest.approx(np.mean(d))
            assert gains.loc[(st, b), "points"] == 2 and gains.loc[(st, b), "seeds"] == 4
    with pytest.raises(ValueError, match="no 'stratum' column"):
        gain_within_strata(table.drop(columns="stratum"), "sam")


def test_difficulty_strata_are_equal_count_hardest_first():
    from sharpmem_lib.buckets import difficulty_strata

    acc = np.array([0.9, 0.1, 0.5, 1.0, 0.3, 0.7, np.nan, 0.2])
    measured = np.array([True, True, True, False, True, True, True, True])
    strata = difficulty_strata(acc, measured, n_strata=3)
    assert strata[3] == 0 and strata[6] == 0  # unmeasured; no accuracy known
    assert strata.tolist() == [3, 1, 2, 0, 2, 3, 0, 1]  # 0.1, 0.2 | 0.3, 0.5 | 0.7, 0.9


def test_ceiling_and_the_comparison_bucket():
    import pandas as pd
    from sharpmem_lib.buckets import ceiling_buckets, comparison_bucket, pattern_test
    from sharpmem_lib.stats import paired_test

    rows = []
    acc = {("sgd", 1): [0.5, 0.6, 0.55], ("sam", 1): [0.6, 0.65, 0.7], ("sgd", 2): [0.8, 0.9, 0.85],
           ("sam", 2): [0.82, 0.88, 0.9], ("sgd", 3): [1.0, 0.95, 1.0], ("sam", 3): [1.0, 1.0, 1.0]}
    for (m, b), values in acc.items():
        rows += [dict(method=m, seed=s, bucket=b, acc=v) for s, v in enumerate(values)]
    rows += [dict(method=m, seed=s, bucket=b, acc=1.0) for m in ("sgd", "sam") for s in range(3) for b in (4, 5)]
    table = pd.DataFrame(rows)
    assert ceiling_buckets(table) == [4, 5]  # bucket 3 is not: one SGD seed misses
    assert comparison_bucket(table) == 3
    high, test = pattern_test(table, "sam")
    g1 = np.subtract(acc[("sam", 1)], acc[("sgd", 1)])
    g3 = np.subtract(acc[("sam", 3)], acc[("sgd", 3)])
    assert high == 3 and test == paired_test(g1, g3)
    everything = table.assign(acc=np.where(table["bucket"] > 1, 1.0, table["acc"]))
    assert comparison_bucket(everything) is None and pattern_test(everything, "sam") == (None, None)


def test_ground_truth_check_separates_entropy_from_difficulty():
    """Sizes that depend on difficulty only: entropy correlates with them through difficulty,
    and the partial correlation given difficulty is near zero."""
    from sharpmem_lib.buckets import MemorizationBuckets, entropy_difficulty, ground_truth_check
    from sharpmem_lib.stats import correlation, partial_correlation

    rng = np.random.default_rng(1)
    n = 600
    acc = rng.random(n)
    entropy = acc + rng.normal(0, 0.1, n)
    size = np.exp(3 * acc + rng.normal(0, 0.3, n))
    measured = rng.random(n) > 0.2
    mb = MemorizationBuckets(np.arange(n), entropy, np.zeros(n, int), np.full(n, np.nan), None, "test",
                             measured, np.zeros(n, int), acc)
    check = ground_truth_check(mb, size)
    assert check["entropy"] == correlation(entropy[measured], size[measured])
    assert check["difficulty"].estimate > check["entropy"].estimate > 0.5
    assert check["entropy | difficulty"] == partial_correlation(entropy[measured], size[measured], acc[measured])
    assert abs(check["entropy | difficulty"].estimate) < 0.1
    assert entropy_difficulty(mb).estimate > 0.9 and entropy_difficulty(mb).n == measured.sum()
    with pytest.raises(ValueError, match="size has shape"):
        ground_truth_check(mb, size[:5])


def test_bucket_study_keeps_the_default_profiles_cached_keys():
    """Chapter 2's models from recipes are the ones its notebook built by hand (default profile)."""
    from sharpmem_lib.buckets import BucketStudyConfig
    from sharpmem_lib.experiments import ExperimentConfig
    from sharpmem_lib.subsampling import SubsamplingConfig
    from sharpmem_lib.train import TrainConfig

    config = BucketStudyConfig("digits", "digits_mlp_subset", "digits_mlp_buckets", n_models=1000, fraction=0.7,
                               seeds=3, sam_rho=0.1, swa_start=0.5, swa_lr=0.02)
    subsets = SubsamplingConfig("digits", "mlp", TrainConfig(epochs=10, batch_size=32, lr=0.05), n_models=1000,
                                fraction=0.7, model_kwargs={"hidden": (64,)})
    assert config.subsampling().key() == subsets.key()
    assert config.ground_truth().key() == replace(subsets, dataset="longtail").key()
    assert replace(config, ground_truth_dataset="").ground_truth() is None
    # the ground-truth check has its own number of models (default 1,000: the digits default's)
    fashion = BucketStudyConfig("fashion_mnist_cpu", "fashion_mlp_subset", "fashion_mlp", n_models=2000)
    assert fashion.subsampling().n_models == 2000 and fashion.ground_truth().n_models == 1000
    assert fashion.ground_truth().key() == replace(subsets, dataset="longtail").key()
    assert replace(fashion, ground_truth_models=300).ground_truth().n_models == 300
    with pytest.raises(ValueError, match="ground_truth_models"):
        BucketStudyConfig("digits", "digits_mlp_subset", "digits_mlp_buckets", ground_truth_models=0)
    methods = {"sgd": dict(algorithm="sgd"), "sam": dict(algorithm="sam", rho=0.1),
               "swa": dict(algorithm="sgd", swa=True, swa_start=0.5, swa_lr=0.02)}
    old = {(m, s): ExperimentConfig("digits", "mlp", TrainConfig(epochs=40, batch_size=32, lr=0.05, **kw, seed=s),
                                    model_kwargs={"hidden": (64,)}) for m, kw in methods.items() for s in range(3)}
    new = config.targets()
    assert set(new) == set(old) and all(new[k].key() == old[k].key() for k in old)
    with pytest.raises(ValueError, match="recipe"):
        BucketStudyConfig("digits", "digits_mlp_subsets", "digits_mlp_buckets")


def test_bucket_family_holds_only_the_paper_claims_and_no_ceiling_bucket():
    """Referee findings 3, 4 and 9 (chapter 2): bucket 5 has no paper direction (the paper sees
    'minimal' gain there), buckets 2.. are exploratory, a bucket where every run scores 100 % is
    empty, and the bucket-1-versus-highest-open-bucket pattern test is in the Holm family."""
    from types import SimpleNamespace

    import pandas as pd

    from sharpmem_lib.buckets import bucket_family
    from sharpmem_lib.stats import NO_DIRECTION, holm_verdicts

    rng = np.random.default_rng(0)
    rows = [{"method": m, "seed": s, "bucket": b,
             "acc": 1.0 if b == 5 else 0.5 + 0.1 * b + (0.05 if m != "sgd" and b == 1 else 0) + rng.normal(0, 0.01)}
            for m in ("sgd", "sam", "swa") for s in range(5) for b in range(1, 6)]
    study = SimpleNamespace(table=pd.DataFrame(rows),
                            buckets=SimpleNamespace(bucket=np.repeat(np.arange(1, 6), 4),
                                                    top1=np.repeat(np.linspace(0.5, 0.1, 5), 4)))
    family = bucket_family(study)
    assert family["expected"][("sam", 5)] == 0 and family["expected"][("sam", "pattern")] == 1
    assert ("sam", 5) in family["empty"] and ("sam", 3) in family["exploratory"]
    v = holm_verdicts(**family)
    confirm = {k for k, x in v.items() if x.role == "confirmatory"}
    # the top-1 trend's test points share the subset models: its p is optimistic, so it decides nothing
    assert confirm == {("sam", 1), ("swa", 1), ("sam", "pattern"), ("swa", "pattern")}
    assert v["top1"].role == "exploratory" and v["top1"].family_size == 1
    assert v[("sam", 5)].role == "empty" and v[("sam", 1)].family_size == 4
    assert v[("sam", "pattern")].outcome == "reproduced"  # bucket 1 vs bucket 4 (5 is at the ceiling)
    study.table.loc[study.table.bucket == 5, "acc"] = 0.9  # off the ceiling: bucket 5 has no paper direction
    assert holm_verdicts(**bucket_family(study))[("sam", 5)].outcome in (NO_DIRECTION, "insufficient")
