"""Chapter 2's analysis: buckets of the held-out test points and accuracy per bucket, against
values recomputed by hand from the subset models."""

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
    computed here from the cached runs by a plain loop."""
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
        assert mb.entropy[n] == pytest.approx(expected)
        mem = runs.memorization().value
        top = same[np.lexsort((train_ids[same], -infl))[0]]
        assert (np.isnan(mb.top1[n]) if infl.max() <= 0 else mb.top1[n] == pytest.approx(mem[top]))
    np.testing.assert_array_equal(mb.bucket, buckets(mb.entropy))
    assert "40 mlp models" in mb.source


def test_buckets_come_from_the_cache_the_second_time(digits_buckets, monkeypatch):
    import sharpmem_lib.subsampling as subsampling

    config, results, mb = digits_buckets

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(subsampling, "run_subsampling", no_training)
    again = memorization_buckets(config, results, progress=False)
    np.testing.assert_array_equal(again.entropy, mb.entropy)
    np.testing.assert_array_equal(again.bucket, mb.bucket)
