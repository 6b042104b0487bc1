"""Hostile inputs found by a second fault-finding pass (after issue 19): user datasets that
loaded but could not be learned from, partitions with empty parts, an npz that is there but
not a dataset, a chapter-1 recipe the toy example refuses only when it runs."""

from __future__ import annotations

import numpy as np
import pytest

from sharpmem_lib import data, splits
from sharpmem_lib.data import DataFileError, check_xy


def _X(n: int, d: int = 5) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("X, y, match", [
    (_X(30), np.zeros(30, int), "at least 2 classes"),                          # one class only
    (_X(30), np.r_[np.arange(29) % 3, 10 ** 6], r"no example has class"),        # sparse labels: 1M outputs
    (_X(30), np.where(np.arange(30) % 3 == 1, 2, np.arange(30) % 3), r"class\(es\) \[1\]"),  # a gap
    (_X(30).astype(np.complex64), np.arange(30) % 3, "real numbers"),             # imaginary part dropped
    (np.zeros((30, 0), np.float32), np.arange(30) % 3, "no features"),
])
def test_user_arrays_that_cannot_be_learned_from_are_refused(X, y, match):
    with pytest.raises(DataFileError, match=match):
        check_xy(X, y, "user.npz")


def test_declared_classes_may_be_absent_from_the_data():
    X, y = check_xy(_X(30), np.arange(30) % 2 * 2, "user.npz", num_classes=3)  # class 1 absent, C declared
    assert y.max() == 2


def test_a_dataset_too_small_for_a_validation_set_is_refused_before_training():
    arrays = data.Arrays(_X(4), np.array([0, 1, 0, 1]))
    name = "hostile_tiny"
    data.register_dataset(name, lambda data_dir=None: arrays, replace=True)
    try:
        with pytest.raises(ValueError, match="no validation example"):
            splits.make_partition(name, arrays, 0)
    finally:
        data.unregister_dataset(name)


@pytest.mark.parametrize("content, match", [
    (b"PK\x03\x04 not really a zip", "not a readable .npz"),
    (None, r"holds \['features', 'labels'\], not a dataset"),
])
def test_an_npz_that_is_there_but_no_dataset_is_named(tmp_path, content, match):
    path = tmp_path / "mine.npz"
    if content is None:
        np.savez(path, features=_X(10), labels=np.arange(10) % 2)
    else:
        path.write_bytes(content)
    with pytest.raises(DataFileError, match=match):
        data.check_dataset_name("mine", tmp_path)
    with pytest.raises(DataFileError, match=str(path)):
        data.load_dataset("mine", tmp_path)


def test_a_chapter1_recipe_the_toy_refuses_is_refused_by_the_check():
    from sharpmem_lib.parameters import check_parameters

    with pytest.raises(ValueError, match="not valid for the toy example"):
        check_parameters("01_toy_example", {"recipe": "cifar_wrn16_8"}, files=False)
    check_parameters("01_toy_example", {"recipe": "toy_smoke"}, files=False)


@pytest.mark.parametrize("chapter, params, key", [
    ("03_privacy_tables", {"recipes": {"digits": "smoke_mlp", "longtail": "cifar_wrn16_8"}}, r"recipes\['longtail'\]"),
    ("04_mitigation", {"dataset": "longtail", "recipe": "fashion_cnn"}, "recipe="),
    ("02_memorization_buckets", {"dataset": "digits", "recipe": "smoke_mlp", "ground_truth_dataset": "longtail",
                                 "ground_truth_recipe": "fashion_cnn"}, "ground_truth_recipe="),
])
def test_an_image_model_recipe_on_feature_vectors_is_refused_before_training(chapter, params, key):
    from sharpmem_lib.parameters import check_parameters

    with pytest.raises(ValueError, match=key + ".*needs images"):
        check_parameters(chapter, params, files=False)


def test_image_model_recipes_on_image_datasets_pass():
    from sharpmem_lib.parameters import check_parameters

    check_parameters("03_privacy_tables", {"recipes": {"digits": "fashion_cnn", "cifar10": "cifar_wrn16_8"}},
                     files=False)


def test_merge_names_a_truncated_shard_and_never_overwrites_an_input(tmp_path, capsys):
    from sharpmem_lib.subsampling import main

    out = tmp_path / "shards"
    args = ["--dataset", "digits", "--hidden", "8", "--n-models", "4", "--epochs", "1", "--n-shards", "2"]
    for shard in (0, 1):
        assert main(["shard", "--shard", str(shard), *args, "--out", str(out)]) == 0
    first, second = sorted(out.glob("*.npz"))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(first.read_bytes()[:300])  # a copy cut short
    capsys.readouterr()
    assert main(["merge", str(truncated), str(second), "--out", str(tmp_path / "all.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("merge refused:") and str(truncated) in err and "BadZipFile" in err
    before = first.read_bytes()
    assert main(["merge", str(first), str(second), "--out", str(first)]) == 2
    assert "overwrite an input" in capsys.readouterr().err and first.read_bytes() == before


def test_shard_command_refuses_a_bad_argument_without_a_traceback(tmp_path, capsys):
    from sharpmem_lib.subsampling import main

    code = main(["shard", "--shard", "3", "--n-shards", "3", "--n-models", "6", "--epochs", "1",
                 "--out", str(tmp_path)])
    assert code == 2 and "shard=3 is not valid" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_an_entry_whose_manifest_drops_a_files_checksum_is_recomputed(tmp_path):
    import json
    import warnings

    from sharpmem_lib import store

    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(5.0)}

    store.cached_arrays("hostile", {"n": 1}, compute, root=tmp_path)
    (entry,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    np.savez(entry / "arrays.npz", a=np.full(5, 7.0))  # a foreign file of the same name, dtype and shape
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["files"] = {}  # ... vouched for by a manifest with no checksums
    (entry / "manifest.json").write_text(json.dumps(manifest))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = store.cached_arrays("hostile", {"n": 1}, compute, root=tmp_path)
    assert len(calls) == 2 and np.array_equal(value["a"], np.arange(5.0))
    assert any("no checksum" in str(w.message) for w in caught)


def test_a_killed_writers_staging_folder_is_removed_by_the_next_computation(tmp_path):
    from sharpmem_lib import store

    store.cached_json("hostile", {"n": 0}, lambda: 0, root=tmp_path)  # another key's entry stays untouched
    key = store.entry_key("hostile", {"n": 1}, "fp32")
    stale = tmp_path / f".{key}.staging-killed"  # what kill -9 during a computation leaves
    stale.mkdir()
    (stale / "weights.pt").write_bytes(b"half a model")
    other = tmp_path / ".0123456789abcdef.staging-alive"  # another key's: may belong to a live writer
    other.mkdir()
    assert store.cached_json("hostile", {"n": 1}, lambda: [1, 2], root=tmp_path) == [1, 2]
    assert not stale.exists() and other.exists()


@pytest.mark.parametrize("a, b", [([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0]), (np.ones((3, 2)), np.zeros((3, 2))),
                                  ([1.0, 2.0, 3.0], np.zeros((3, 1)))])
def test_paired_test_refuses_samples_that_are_not_paired(a, b):
    from sharpmem_lib.stats import paired_test

    with pytest.raises(ValueError, match="1-D paired samples of one length"):
        paired_test(a, b)


def test_buckets_refuse_a_nan_entropy_and_estimates_refuse_non_boolean_masks():
    from sharpmem_lib import memorization as mz

    with pytest.raises(ValueError, match="entropy is NaN"):
        mz.buckets(np.array([0.1, np.nan, 0.3, 0.5, 0.9, 0.2]), 5)
    assert list(mz.buckets(np.array([0.1, np.nan, 0.3, 0.5, 0.9, 0.2]), 5,
                           measured=np.array([1, 0, 1, 1, 1, 1], bool))) == [1, 0, 3, 4, 5, 2]
    masks = np.random.default_rng(0).random((10, 6)) > 0.5
    with pytest.raises(ValueError, match="masks must hold booleans"):
        mz.memorization_scores(masks * 0.5, np.ones((10, 6), bool))
    same = mz.memorization_scores(masks.astype(int), np.ones((10, 6), int))  # 0/1 integers are fine
    assert np.array_equal(same.value, mz.memorization_scores(masks, np.ones((10, 6), bool)).value)


# ------------------------------------------------------------------ divergence in every chapter
# SAM with rho = 1e6 ends at chance accuracy on digits in 0.2 s (smoke_mlp), SharpReg with xi = 1.5
# climbs the loss to ~1e7: both are recorded as diverged by the engine. Chapters 0, 2 and 3 used to
# stop on the DivergedError; now they show the target with its status and leave its pairs out.

def test_chapter0_trains_through_a_diverged_run_and_shows_it(tmp_path):
    from sharpmem_lib.experiments import accuracy_table, diverged_runs, experiment_config, train_targets

    configs = {"SGD": experiment_config("smoke_mlp", "digits", "sgd", 0),
               "SAM": experiment_config("smoke_mlp", "digits", "sam", 0, sam_rho=1e6)}
    runs = train_targets(configs, tmp_path, progress=False)
    assert list(diverged_runs(runs)) == ["SAM"] and "at chance" in diverged_runs(runs)["SAM"]
    table = accuracy_table(runs)
    assert (table.loc["SGD", "status"] == "complete").all() and table.loc["SGD", "train acc"].gt(0.5).all()
    assert table.loc["SAM", "status"].str.startswith("diverged: ").all() and table.loc["SAM", "train acc"].isna().all()
    again = train_targets(configs, tmp_path, progress=False)  # read back from the store's record, not retrained
    assert diverged_runs(again) == diverged_runs(runs)


def test_chapter2_study_shows_diverged_targets_and_drops_their_pairs(tmp_path):
    from sharpmem_lib.buckets import BucketStudyConfig, bucket_numbers, bucket_tests, run_bucket_study
    from sharpmem_lib.report import bucket_sentences
    from sharpmem_lib.stats import holm_verdicts

    config = BucketStudyConfig("digits", "smoke_mlp", "smoke_mlp", n_models=20, seeds=3, sam_rho=1e6,
                               ground_truth_dataset="")
    study = run_bucket_study(config, tmp_path, progress=False)  # raised DivergedError before
    assert set(study.diverged) == {("sam", s) for s in range(3)}
    assert list(study.diverged_table().index) == [str(("sam", s)) for s in range(3)]
    sam = study.table[study.table.method == "sam"]
    assert sam["acc"].isna().all() and sam["status"].str.startswith("diverged: ").all()
    assert (study.table[study.table.method != "sam"]["status"] == "complete").all()
    tests, _ = bucket_tests(study)
    verdicts = holm_verdicts(*bucket_tests(study))
    for b in range(1, 6):
        assert tests[("sam", b)].n == 0 and tests[("sam", b)].dropped == 3  # every pair has a diverged member
        assert verdicts[("sam", b)].outcome == "insufficient" and verdicts[("sam", b)].dropped == 3
        if tests[("swa", b)].n:  # SWA's pairs are intact
            assert tests[("swa", b)].dropped == 0
    sentences = bucket_sentences(bucket_numbers(study), verdicts)
    assert any("3 pairs left out: a member diverged" in str(v) for v in sentences.values())


def test_chapter3_study_shows_diverged_targets_and_drops_their_pairs(tmp_path, monkeypatch):
    import pandas as pd

    from sharpmem_lib import privacy
    from sharpmem_lib.paper import paper_table1
    from sharpmem_lib.report import evidence

    def fake_evaluate(artifact, data, split_seeds, which="best", nn="cpu"):  # the attacks have their own tests
        return pd.DataFrame([{"split_seed": s, "protocol": p, "test_acc": 0.8, "single_query": 0.6 + 0.01 * s,
                              "multi_query": 0.55, "single_query_global": 0.58, "multi_query_global": 0.5}
                             for s in split_seeds for p in ("honest", "selena")])

    monkeypatch.setattr(privacy, "evaluate_privacy", fake_evaluate)
    config = privacy.PrivacyConfig({"digits": "smoke_mlp"}, methods=("sgd", "sam"), knobs={"sam_rho": 1e6},
                                   train_seeds=3, split_seeds=2)
    study = privacy.privacy_study(config, paper_table1(), results_dir=tmp_path)  # raised DivergedError before
    assert set(study.diverged) == {("digits", "sam", s) for s in range(3)}
    bad = study.results[study.results.algorithm == "sam"]
    assert len(bad) == 3 * 2 * 2 and bad["single_query"].isna().all() and bad["status"].str.startswith("diverged").all()
    t1 = study.tables["selena"]
    assert t1.loc[("digits", "sam"), "diverged"] == 3 and t1.loc[("digits", "sgd"), "diverged"] == 0
    assert "diverged targets" in privacy.format_table1(t1)
    tests, _, _ = study.family
    t = tests[("table2", "digits", "sam", "single_query")]
    assert t.n == 0 and t.dropped == 3
    v = study.verdicts[("table2", "digits", "sam", "single_query")]
    assert v.outcome == "insufficient" and "3 pairs left out: a member diverged" in evidence(v, "targets")


def test_a_pair_with_one_diverged_member_is_dropped_and_counted():
    from sharpmem_lib.stats import holm_verdicts, paired_test

    t = paired_test([0.9, np.nan, 0.8, 0.85, 0.7], [0.8, 0.8, np.nan, 0.8, 0.6])
    assert t.n == 3 and t.dropped == 2
    assert t.estimate == pytest.approx(np.mean([0.1, 0.05, 0.1]))
    assert holm_verdicts({"x": t}, {"x": 1})["x"].dropped == 2


def test_an_npz_dataset_found_in_one_directory_is_not_valid_in_another(tmp_path):
    """A <name>.npz registered from directory A (available_datasets) stayed valid for every
    later check in the process, whatever the data directory: a junk mine.npz in B, or none
    in C, passed check_dataset_name (test isolation: test_parameters' mine.npz leaked into
    test_an_npz_that_is_there_but_no_dataset_is_named)."""
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()
    np.savez(a / "mine.npz", X=_X(12), y=np.arange(12) % 2)
    data.check_dataset_name("mine", a)
    (b / "mine.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataFileError, match=f"{b / 'mine.npz'}: not a readable .npz"):
        data.check_dataset_name("mine", b)
    with pytest.raises(ValueError, match="dataset='mine' is not valid"):
        data.check_dataset_name("mine", c)
    data.check_dataset_name("mine", a)  # still valid where it is
