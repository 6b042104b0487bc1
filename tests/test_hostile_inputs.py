"""Hostile inputs found by a second fault-finding pass (after issue 19): user datasets that
loaded but could not be learned from, partitions with empty parts, an npz that is there but
not a dataset, a chapter-1 recipe the toy example refuses only when it runs."""

from __future__ import annotations

import re

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
    manifest["files"] = {}  # ... vouched for by a manifest with no checksums (and its own checksum resealed)
    manifest["manifest_sha256"] = store._manifest_digest(manifest)
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
    assert not any("nan points" in str(v) for v in sentences.values())  # 'no estimate', not '+nan points'


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
    t = tests[("table2", "digits", "sam", "single_query", "selena")]
    assert t.n == 0 and t.dropped == 3
    v = study.verdicts[("table2", "digits", "sam", "single_query", "selena")]
    assert v.outcome == "insufficient" and "3 pairs left out: a member diverged" in evidence(v, "targets")
    from sharpmem_lib.report import verdict_table

    table = verdict_table(study.verdicts)  # the chapter's status table says it too
    assert table["status"].str.contains("3 pairs left out: a member diverged").any()


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


# ------------------------------------------------------------------ issue 19 leftovers (session 7)

@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n", "---\n"])
def test_an_empty_profile_is_refused_naming_the_file(tmp_path, text):
    from sharpmem_lib.profiles import load_profile

    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "mine.yaml").write_text(text)
    (tmp_path / "01_toy_example.ipynb").write_text("{}")
    with pytest.raises(ValueError, match=r"mine\.yaml: the profile is empty.*01_toy_example"):
        load_profile("mine", tmp_path / "params")


def test_a_profile_that_sets_no_parameter_is_refused(tmp_path):  # fixed: ran every chapter on its defaults
    from sharpmem_lib.profiles import load_profile

    (tmp_path / "params").mkdir()
    for stem in ("01_toy_example", "02_memorization_buckets"):
        (tmp_path / f"{stem}.ipynb").write_text("{}")
    (tmp_path / "params" / "bare.yaml").write_text("01_toy_example:\n02_memorization_buckets: {}\n")
    with pytest.raises(ValueError, match=r"bare\.yaml: the profile sets no parameter for any notebook"):
        load_profile("bare", tmp_path / "params")
    (tmp_path / "params" / "one.yaml").write_text("01_toy_example:\n02_memorization_buckets: {seeds: 3}\n")
    assert load_profile("one", tmp_path / "params") == {"01_toy_example": {}, "02_memorization_buckets": {"seeds": 3}}


@pytest.mark.parametrize("where", ["argument", "environment", "a file"])
def test_a_data_dir_that_is_not_a_directory_is_refused_naming_it(tmp_path, monkeypatch, where):
    from sharpmem_lib.data import DataDirError, check_dataset_name, load_dataset
    from sharpmem_lib.parameters import check_parameters

    monkeypatch.delenv("SHARPMEM_DATA", raising=False)
    missing = tmp_path / "no-such-dir"
    if where == "a file":
        missing.write_text("not a folder")
    name = "SHARPMEM_DATA" if where == "environment" else "data_dir"
    if where == "environment":
        monkeypatch.setenv("SHARPMEM_DATA", str(missing))
    data_dir = None if where == "environment" else missing
    match = f"{name}='{missing}' is not valid: {missing} " + ("is a file" if where == "a file" else "does not exist")
    with pytest.raises(DataDirError, match=match):
        load_dataset("purchase100", data_dir=data_dir)
    with pytest.raises(DataDirError, match=match):  # not 'dataset='mine' is not valid; choose one of ...'
        check_dataset_name("mine", data_dir)
    check_dataset_name("digits", data_dir)  # a built-in that reads no file: the name is valid
    # the chapter's check with files (its first cell, `pipeline check`), before anything trains: the
    # data_dir is named even for digits, which reads no file from it
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        check_parameters("00_data_and_models", {"dataset": "digits", "data_dir": str(data_dir or "")}, files=True)
    # the plan's value check (files=False) lets it pass: `make book` creates it to fetch Fashion-MNIST into
    check_parameters("00_data_and_models", {"dataset": "digits", "data_dir": str(data_dir or "")}, files=False)


def test_shard_command_refuses_more_shards_than_models(tmp_path, capsys):
    from sharpmem_lib.subsampling import check_shard, main

    code = main(["shard", "--shard", "4", "--n-shards", "5", "--n-models", "3", "--epochs", "1",
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "n_shards=5 is not valid with n_models=3" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # no folder, no empty shard file
    check_shard(2, 3, 3)
    with pytest.raises(ValueError, match="shard=True is not valid"):
        check_shard(True, 3, 3)


@pytest.mark.parametrize("value", [float("nan"), [1.0, float("inf")], {"a": {"b": -float("inf")}}, {"auc": np.nan}])
def test_the_store_writes_non_finite_numbers_as_strict_json_and_reads_them_back(tmp_path, value):
    import json
    import math

    from sharpmem_lib import store

    def same(a, b):
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and math.isnan(a) else a == b

    first = store.cached_json("hostile", {"v": repr(value)}, lambda: value, root=tmp_path)
    again = store.cached_json("hostile", {"v": repr(value)}, lambda: pytest.fail("recomputed"), root=tmp_path)
    assert same(first, value) and same(again, value)
    (entry,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    for f in ("value.json", "manifest.json"):  # strict JSON: no NaN / Infinity tokens
        json.loads((entry / f).read_text(), parse_constant=lambda c: pytest.fail(f"{f} holds {c}"))


def test_the_store_refuses_a_non_finite_configuration(tmp_path):
    from sharpmem_lib import store

    with pytest.raises(ValueError, match="holds a NaN or infinite number"):
        store.cached_json("hostile", {"lr": float("nan")}, lambda: 1, root=tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_run_history_with_a_nan_is_stored_as_strict_json(tmp_path):
    import json

    from sharpmem_lib._io import from_json, to_json

    text = to_json([{"epoch": 1, "val_acc": float("nan"), "train_loss": float("inf")}])
    json.loads(text, parse_constant=lambda c: pytest.fail(c))
    back = from_json(text)
    assert np.isnan(back[0]["val_acc"]) and back[0]["train_loss"] == float("inf")
    with pytest.raises(ValueError, match="__nonfinite__"):
        to_json({"__nonfinite__": "nan", "x": 1})  # a user dict that would read back as a float


@pytest.mark.parametrize("fpr", [1.5, 1.0, -0.1, float("nan"), "0.01"])
def test_tpr_at_fpr_refuses_a_rate_outside_0_1(fpr):
    from sharpmem_lib.attacks.thresholds import tpr_at_fpr

    with pytest.raises(ValueError, match=r"fpr=.* is not valid; choose a false-positive rate in \[0, 1\)"):
        tpr_at_fpr(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.8, 0.3]), fpr)


def test_tpr_at_fpr_needs_members_and_non_members():
    from sharpmem_lib.attacks.thresholds import tpr_at_fpr

    assert tpr_at_fpr(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.8, 0.3]), 0.0) == 1.0
    with pytest.raises(ValueError, match="4 members and 0 non-members"):
        tpr_at_fpr(np.ones(4, bool), np.arange(4.0), 0.01)


@pytest.mark.parametrize("member, nonmember, match", [
    (np.array([]), np.array([0.1, 0.2]), "0 member and 2 non-member"),
    (np.array([0.5, 0.7]), np.array([]), "2 member and 0 non-member"),
    (np.array([]), np.array([]), "0 member and 0 non-member"),
])
def test_a_threshold_needs_members_and_non_members(member, nonmember, match):
    from sharpmem_lib.attacks.thresholds import fit_threshold, fit_thresholds

    with pytest.raises(ValueError, match=match):
        fit_threshold(member, nonmember)
    with pytest.raises(ValueError, match=match):
        fit_thresholds(member, np.zeros(len(member), int), nonmember, np.zeros(len(nonmember), int), 2, True)
    # a class with no fitting example inside non-empty fitting sets still gets the global threshold
    t = fit_thresholds(np.array([0.9, 0.8]), np.array([0, 0]), np.array([0.1, 0.2]), np.array([0, 0]), 2, True)
    assert t[1] == t[0] == fit_threshold(np.array([0.9, 0.8]), np.array([0.1, 0.2]))


@pytest.mark.parametrize("labels, match", [
    (np.array([0, 1, 3]), r"labels holds \[3\], outside 0..2 \(3 classes\)"),
    (np.array([0, -1, 2]), r"labels holds \[-1\], outside 0..2"),
    (np.array([0, 1]), r"labels has shape \(2,\); expected \(3,\)"),
    (np.array([0.0, 1.0, 2.0]), "labels has dtype float64"),
])
def test_attack_scores_name_labels_out_of_range(labels, match):
    from sharpmem_lib.attacks.single_query import attack_scores
    from sharpmem_lib.attacks.thresholds import fit_thresholds

    probs = np.full((3, 3), 1 / 3)
    for attack in ("correctness", "confidence", "entropy", "mentr"):
        with pytest.raises(ValueError, match=match):
            attack_scores(probs, labels, attack)
    if len(labels) == 3 and labels.dtype.kind == "i":
        with pytest.raises(ValueError, match=match.replace("labels", "member_labels")):
            fit_thresholds(np.ones(3), labels, np.zeros(2), np.array([0, 1]), 3, True)


def test_influence_entropy_takes_magnitudes_and_refuses_what_has_no_entropy():
    from scipy.stats import entropy as scipy_entropy

    from sharpmem_lib.memorization import influence_entropy

    w = np.array([[0.5, -0.3], [-0.25, 0.0], [0.25, 0.3]])  # a negative influence counts by its magnitude (eq. 3)
    np.testing.assert_allclose(influence_entropy(w, axis=0), [scipy_entropy([0.5, 0.25, 0.25]),
                                                              scipy_entropy([0.5, 0.0, 0.5])])
    np.testing.assert_allclose(influence_entropy(-w, axis=0), influence_entropy(w, axis=0))
    np.testing.assert_allclose(influence_entropy(np.zeros((4, 1))), [np.log(4)])  # nothing measured: evenly spread
    bad = [(np.array([[0.5], [np.nan], [0.1]]), "1 NaN or infinite"),   # used to give log(3), the maximum
           (np.array([[np.inf], [0.1]]), "NaN or infinite"),
           (np.array(0.5), "axis=0 is not valid"), (np.ones((2, 3)), None), (np.zeros((0, 3)), "no training point"),
           (np.array([[1 + 1j], [0.5]]), "complex"), (np.array([["a"], ["b"]]), "dtype")]
    for weights, match in bad:
        if match is None:
            with pytest.raises(ValueError, match="axis=2 is not valid"):
                influence_entropy(weights, axis=2)
            continue
        with pytest.raises(ValueError, match=match):
            influence_entropy(weights, axis=0)


# ------------------------------------------------------------------ session 7's own hostile sweep
# Cases invented for the six classes of issue 19. Those marked "fixed" failed before this session
# (traceback, wrong message, or silently accepted); the others held and stay as regressions.

def _shard_args(tmp_path, n_models=4):
    return ["--dataset", "digits", "--hidden", "8", "--n-models", str(n_models), "--epochs", "1", "--n-shards", "2"]


def test_merge_names_a_bad_out_or_a_missing_input_without_a_traceback(tmp_path, capsys):  # fixed
    from sharpmem_lib.subsampling import main

    out = tmp_path / "shards"
    for shard in (0, 1):
        assert main(["shard", "--shard", str(shard), *_shard_args(tmp_path), "--out", str(out)]) == 0
    first, second = sorted(out.glob("*.npz"))
    capsys.readouterr()
    cases = [([str(first), str(second), "--out", str(tmp_path / "no-dir" / "all.npz")], "does not exist"),
             ([str(first), str(second), "--out", str(out)], "it is a directory"),
             ([str(first), str(tmp_path / "gone.npz"), "--out", str(tmp_path / "all.npz")], "gone.npz: not a readable"),
             ([str(first), "--out", str(tmp_path / "all.npz")], r"shard\(s\) \[1\] of 2 missing"),
             ([str(first), str(first), "--out", str(tmp_path / "all.npz")], "a duplicate")]
    for argv, match in cases:
        assert main(["merge", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("merge refused:") and re.search(match, err), err
    assert not (tmp_path / "all.npz").exists() and not (tmp_path / "no-dir").exists()


@pytest.mark.parametrize("extra, match", [(["--fraction", "1.5"], "fraction=1.5"), (["--epochs", "0"], "epochs=0"),
                                          (["--lr", "nan"], "lr=nan"), (["--dataset", "digitz"], "dataset='digitz'"),
                                          (["--n-models", "0"], "n_models=0"), (["--shard", "-1"], "shard=-1"),
                                          (["--fraction", "0.0001"], "each subset would hold 0"),  # trained, 'diverged'
                                          (["--dataset", "cifar10", "--data-dir", "{empty}"], "'cifar10' not found")])
def test_shard_command_refuses_bad_values_before_making_a_folder(tmp_path, capsys, monkeypatch, extra, match):
    from sharpmem_lib.subsampling import main

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/sharpmem: cifar10 is missing on every machine
    monkeypatch.delenv("SHARPMEM_DATA", raising=False)
    (tmp_path / "empty").mkdir()
    extra = [e.format(empty=tmp_path / "empty") for e in extra]
    argv = ["shard", "--shard", "0", "--n-shards", "1", "--n-models", "2", "--epochs", "1", *extra,
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("shard refused:") and match in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("chapter, params, match", [
    ("01_toy_example", {"seeds": True}, "seeds=True"), ("01_toy_example", {"seeds": 3.0}, "seeds=3.0"),
    ("01_toy_example", {"recipe": None}, "recipe=None"),
    ("02_memorization_buckets", {"sam_rho": float("nan")}, "sam_rho=nan"),
    ("02_memorization_buckets", {"sam_rho": float("inf")}, "sam_rho=inf"),
    ("02_memorization_buckets", {"fraction": float("nan")}, "fraction=nan"),
    ("02_memorization_buckets", {"n_models": 1}, "n_models=1"), ("02_memorization_buckets", {"seeds": -2}, "seeds=-2"),
    ("03_privacy_tables", {"recipes": {"digits": ""}}, r"recipes\['digits'\]=''"),
    ("03_privacy_tables", {"sharpreg_xi": -1.0}, "sharpreg_xi=-1.0"),
    ("04_mitigation", {"xis": [float("nan")]}, r"xis\[0\]=nan"),
    ("00_data_and_models", {"results_dir": 5}, "results_dir=5"), ("00_data_and_models", {"dataset": ""}, "dataset=''"),
])
def test_papermill_values_of_the_wrong_type_or_range_are_refused(chapter, params, match):
    from sharpmem_lib.parameters import check_parameters

    with pytest.raises(ValueError, match=match + " is not valid"):
        check_parameters(chapter, params, files=False)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("name, arrays, match", [
    ("bigx", {"X": np.full((4, 2), 1e301), "y": np.array([0, 1, 0, 1])}, "beyond float32's range"),  # fixed
    ("nanx", {"X": np.array([[np.nan, 1.0], [1, 2], [3, 4], [5, 6]]), "y": np.array([0, 1, 0, 1])}, "non-finite"),
    ("booly", {"X": np.ones((4, 2)), "y": np.array([True, False, True, False])}, "dtype bool"),
    ("stry", {"X": np.ones((4, 2)), "y": np.array(["a", "b", "a", "b"])}, "dtype <U1"),
    ("ycol", {"X": np.ones((4, 2)), "y": np.array([[0], [1], [0], [1]])}, r"shape \(4, 1\)"),
    ("short", {"X": np.ones((5, 2)), "y": np.array([0, 1, 0, 1])}, "5 rows but there are 4 labels"),
    ("objx", {"X": np.array([[1, "a"]] * 4, dtype=object), "y": np.array([0, 1, 0, 1])}, "not a readable .npz"),
])
def test_a_user_npz_is_refused_naming_the_file_and_the_fault(tmp_path, name, arrays, match):
    path = _npz(tmp_path / f"{name}.npz", **arrays)
    with pytest.raises(DataFileError, match=re.escape(str(path)) + ".*" + match):
        data.load_npz_dataset(path)


@pytest.mark.parametrize("stem", ["Mine", "2cool", "my-data"])
def test_a_dataset_npz_with_a_name_no_dataset_can_have_says_so(tmp_path, stem):  # fixed: said "not a dataset"
    _npz(tmp_path / f"{stem}.npz", X=_X(6), y=np.arange(6) % 2)
    with pytest.raises(DataFileError, match=f"holds a dataset, but '{stem}' is not a valid dataset name"):
        data.check_dataset_name(stem, tmp_path)


def test_cached_json_stores_numpy_scalars_and_names_arrays(tmp_path):  # fixed: TypeError after the compute
    from sharpmem_lib import store

    value = {"auc": np.float32(0.75), "n": np.int64(3), "ok": np.bool_(True)}
    first = store.cached_json("hostile", {"k": 1}, lambda: value, root=tmp_path)
    again = store.cached_json("hostile", {"k": 1}, lambda: pytest.fail("recomputed"), root=tmp_path)
    assert first == again == {"auc": 0.75, "n": 3, "ok": True}
    with pytest.raises(TypeError, match=r"numpy array \(shape \(3,\)\).*cached_arrays"):
        store.cached_json("hostile", {"k": 2}, lambda: np.arange(3), root=tmp_path)
    assert sorted(p.name.startswith(".") for p in tmp_path.iterdir() if p.is_dir()) == [False]  # nothing left


def test_a_configuration_that_is_not_json_data_is_refused_before_computing(tmp_path):  # fixed: raw TypeError
    from sharpmem_lib import store

    for config in ({(1, 2): 1}, {"s": {1, 2}}):
        with pytest.raises(ValueError, match="is not valid for the store.*JSON data"):
            store.cached_json("hostile", config, lambda: pytest.fail("computed"), root=tmp_path)


@pytest.mark.parametrize("damage", ["manifest is a list", "entry is a file", "value of another type"])
def test_a_damaged_json_entry_is_recomputed(tmp_path, damage):
    import json
    import shutil
    import warnings

    from sharpmem_lib import store

    store.cached_json("hostile", {"k": 1}, lambda: [1, 2], root=tmp_path)
    (entry,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    if damage == "manifest is a list":
        (entry / "manifest.json").write_text("[]")
    elif damage == "entry is a file":
        shutil.rmtree(entry)
        entry.write_text("a file where the entry's folder was")
    else:  # a valid entry, resealed, whose value is a dict
        (entry / "value.json").write_text(json.dumps({"a": 1}))
        manifest = json.loads((entry / "manifest.json").read_text())
        manifest["files"]["value.json"] = store._sha256(entry / "value.json")
        (entry / "manifest.json").write_text(json.dumps(manifest))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert store.cached_json("hostile", {"k": 1}, lambda: [3], root=tmp_path) == [3]


def test_a_writer_killed_while_holding_the_lock_blocks_no_one(tmp_path):
    """kill -9 of a process in the middle of a computation (holding the key's lock, its
    staging folder half written): the next process gets the lock at once, computes, and
    leaves no staging folder behind."""
    import signal
    import subprocess
    import sys
    import time

    from sharpmem_lib import store

    code = ("import time, sys; from pathlib import Path; from sharpmem_lib import store\n"
            "def slow():\n    Path(sys.argv[1], 'started').write_text('1'); time.sleep(60); return 1\n"
            "store.cached_json('hostile', {'k': 9}, slow, root=Path(sys.argv[1]) / 'r')\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)])
    try:
        deadline = time.time() + 60
        while not (tmp_path / "started").exists():
            assert time.time() < deadline and proc.poll() is None, "the writer did not start"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    start = time.perf_counter()
    assert store.cached_json("hostile", {"k": 9}, lambda: 2, root=tmp_path / "r") == 2
    assert time.perf_counter() - start < 10
    assert not [p for p in (tmp_path / "r").iterdir() if ".staging" in p.name]


# ------------------------------------------------------------------ third pass (new parameters, degenerate arrays)


@pytest.mark.parametrize("n_train, fraction, held", [(898, 1e-4, 0), (898, 0.9999, 898), (3, 0.1, 0)])
def test_a_subset_fraction_that_leaves_no_point_in_or_out_is_refused(n_train, fraction, held):
    """fraction 1e-4 of digits' 898 members trained 0-point subsets, recorded in the store as
    'diverged in epoch 1, try a smaller lr'; 0.9999 gave every model every point, so no
    estimate and no LiRA non-member (fixed: refused before training)."""
    from sharpmem_lib.ensemble import subset_masks

    with pytest.raises(ValueError, match=rf"fraction={fraction!r} is not valid for {n_train} training points: "
                                         rf"each subset would hold {held} of them"):
        subset_masks(n_train, 4, fraction)
    assert subset_masks(898, 2, 0.5).sum(1).tolist() == [449, 449]


@pytest.mark.parametrize("chapter, params, match", [
    ("03_privacy_tables", {"recipes": {"digits": "smoke_mlp"}, "lira_dataset": "digits", "lira_fraction": 1e-6},
     r"lira_fraction=1e-06 is not valid for 898 .* lira_dataset='digits'"),
    ("03_privacy_tables", {"recipes": {"fashion_mnist_cpu": "fashion_mlp"}, "lira_dataset": "fashion_mnist_cpu",
                           "lira_fraction": 0.9999}, r"lira_fraction=0.9999 is not valid for 2500 "),  # no file read
    ("02_memorization_buckets", {"dataset": "digits", "fraction": 0.9999, "ground_truth_dataset": ""},
     r"fraction=0.9999 is not valid for 898 .* dataset='digits'"),
])
def test_a_subset_fraction_is_checked_against_the_members_before_anything_trains(chapter, params, match):
    """Chapter 3 trained every Table-1 target before LiRA's models met the empty subsets."""
    from sharpmem_lib.parameters import check_parameters

    with pytest.raises(ValueError, match=match):
        check_parameters(chapter, params, files=False)
    check_parameters(chapter, {**params, **{k: 0.5 for k in ("lira_fraction", "fraction") if k in params}},
                     files=False)


def test_relative_data_and_results_variables_are_made_absolute_for_the_kernels(tmp_path, monkeypatch):
    """papermill starts the kernels in notebooks/: SHARPMEM_DATA=mydata passed `pipeline check`
    from the repository root, then each chapter refused it ('mydata does not exist'), and
    SHARPMEM_RESULTS=res cached into notebooks/res (fixed: made absolute before execution)."""
    from sharpmem_lib import pipeline

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHARPMEM_DATA", "mydata")
    monkeypatch.setenv("SHARPMEM_RESULTS", str(tmp_path / "abs"))
    pipeline._absolute_env()
    assert pipeline.os.environ["SHARPMEM_DATA"] == str(tmp_path.resolve() / "mydata")
    assert pipeline.os.environ["SHARPMEM_RESULTS"] == str(tmp_path / "abs")
    monkeypatch.setenv("SHARPMEM_RESULTS", "")  # set but empty: the kernels used notebooks/results, a cold cache
    pipeline._absolute_env()
    assert "SHARPMEM_RESULTS" not in pipeline.os.environ


def test_sign_tests_refuse_nan_differences():
    """sign_flip_test([1, nan, 2]) gave p = 0.0, sign_test dropped the NaN silently."""
    from sharpmem_lib import stats

    for test in (stats.sign_flip_test, stats.sign_test):
        with pytest.raises(ValueError, match="1 of the 3 differences are NaN or infinite"):
            test([1.0, float("nan"), 2.0])
    assert stats.paired_test([1.0, float("nan"), 2.0, 3.0], [0.0, 0.0, 1.0, 1.0]).dropped == 1  # still left out


def test_spearman_on_few_points_has_an_exact_p_and_mismatched_lengths_are_named():
    """Three points in order gave Spearman p = 0.0 (t approximation with rho = 1): the exact
    two-sided p is 2 / 3! = 1/3 (by enumeration); lengths 3 and 2 gave numpy's broadcast error."""
    import itertools
    import math

    from scipy import stats as st

    from sharpmem_lib import stats

    c = stats.correlation([1.0, 2.0, 3.0], [10.0, 20.0, 30.0])
    assert (c.estimate, c.p_value) == (pytest.approx(1.0), pytest.approx(1 / 3))
    x, y = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0]), np.array([2.0, 7.0, 1.0, 8.0, 2.5, 8.5])
    rho = st.spearmanr(x, y).statistic
    null = [st.spearmanr(x, np.array(p)).statistic for p in itertools.permutations(y)]
    brute = np.mean(np.abs(null) >= abs(rho) - 1e-12)
    c = stats.correlation(x, y)
    assert c.estimate == pytest.approx(rho) and c.p_value == pytest.approx(brute) and len(null) == math.factorial(6)
    big = np.arange(20.0)
    assert stats.correlation(big, big ** 2).p_value == pytest.approx(st.spearmanr(big, big ** 2).pvalue)
    with pytest.raises(ValueError, match=r"shapes \(3,\) and \(2,\)"):
        stats.correlation([1, 2, 3], [1, 2])


def test_holm_verdicts_of_no_test_is_no_verdict():
    from sharpmem_lib.stats import holm_verdicts

    assert holm_verdicts({}, {}) == {}  # was numpy's TypeError on an empty mask


@pytest.mark.parametrize("y_true, scores, match", [
    ([2, 2, 0, 0], [0.5, 0.4, 0.2, 0.1], r"membership \(bool, or 0/1\); got values \[0, 2\]"),  # class labels
    ([1, 1, 0, 0], [0.5, float("nan"), 0.2, 0.1], "1 NaN or infinite"),
    ([1, 1, 0, 0], [0.5, 0.2, 0.1], r"shapes \(4,\) and \(3,\)"),
])
def test_membership_metrics_refuse_labels_scores_of_another_length_and_nan(y_true, scores, match):
    """Labels {0, 2} were cast to bool (TPR 1.0 returned); NaN and length faults surfaced as
    scikit-learn's messages naming neither argument."""
    from sharpmem_lib.attacks.thresholds import membership_metrics, tpr_at_fpr

    with pytest.raises(ValueError, match=match):
        tpr_at_fpr(np.array(y_true), np.array(scores), 0.01)
    with pytest.raises(ValueError, match=match):
        membership_metrics(np.array(y_true), np.array(scores), np.array(y_true[: len(scores)], bool))


def test_lira_confidence_names_labels_out_of_range_and_a_single_class():
    from sharpmem_lib.attacks.lira import logit_confidence

    with pytest.raises(ValueError, match=r"labels holds \[5\], outside 0..2"):
        logit_confidence(np.zeros((2, 3)), np.array([0, 5]))  # was IndexError
    with pytest.raises(ValueError, match="at least 2 classes"):
        logit_confidence(np.zeros((2, 1)), np.array([0, 0]))  # was NaN with a RuntimeWarning
    assert logit_confidence(np.zeros((2, 2)), np.array([0, 1])) == pytest.approx([0.0, 0.0])


def test_accuracy_by_bucket_names_a_bucket_array_of_another_length():
    from sharpmem_lib.memorization import accuracy_by_bucket

    with pytest.raises(ValueError, match="one bucket per point"):
        accuracy_by_bucket(np.ones(4, bool), np.array([1, 2, 3]))  # was a bare IndexError


def test_a_user_npz_named_like_a_builtin_dataset_is_refused_not_ignored(tmp_path):
    """A user's digits.npz in data_dir was silently ignored: dataset: digits loaded the
    built-in 8x8 digits, and the chapter ran on other data than the user meant."""
    from sharpmem_lib.parameters import check_parameters

    np.savez(tmp_path / "digits.npz", X=_X(30), y=np.arange(30) % 3)
    with pytest.raises(DataFileError, match=r"digits.npz: holds a dataset named like the built-in dataset 'digits'"):
        data.load_dataset("digits", tmp_path)
    with pytest.raises(DataFileError, match="rename it"):
        check_parameters("00_data_and_models", {"dataset": "digits", "data_dir": str(tmp_path)}, files=False)
    (tmp_path / "digits.npz").rename(tmp_path / "my_digits.npz")
    assert data.load_dataset("digits", tmp_path).X.shape == (1797, 1, 8, 8)
    assert data.load_dataset("my_digits", tmp_path).X.shape == (30, 5)


@pytest.mark.parametrize("chapter, params, match", [
    ("02_memorization_buckets", {"dataset": "digits", "fraction": 0.7, "n_models": 10, "ground_truth_dataset": ""},
     r"n_models=10 is not valid with dataset='digits' \(898 members\) .*: 17 member\(s\) would be in every subset"),
    ("02_memorization_buckets", {"dataset": "digits", "n_models": 40, "ground_truth_dataset": "longtail",
                                 "ground_truth_models": 12}, "ground_truth_models=12 is not valid"),
    ("04_mitigation", {"dataset": "digits", "bucket_models": 10}, "bucket_models=10 is not valid"),
    ("03_privacy_tables", {"recipes": {"digits": "smoke_mlp"}, "lira_dataset": "digits", "lira_fraction": 0.8,
                           "lira_models": 48, "lira_targets": 32, "lira_memorization_models": 16},
     r"lira_models=48 \(32 for targets and shadows\) is not valid .* every shadow model or in none"),
])
def test_too_few_subset_models_for_an_estimate_of_every_member_are_refused_before_training(chapter, params, match):
    """n_models: 10 on digits trained all ten subset models, then stopped with '17 training
    point(s) were never held out or never trained on: train more models'; LiRA at
    lira_fraction 0.8 with 32 pool models trained 3 x 48 models, then stopped in lira_scores
    ('every example needs shadow models that held it out'). The masks are the chapters' own
    (seed 0), so the count is exact; the numbers the message suggests pass."""
    from sharpmem_lib.attacks.lira import lira_evaluation
    from sharpmem_lib.ensemble import subset_masks
    from sharpmem_lib.memorization import memorization_scores
    from sharpmem_lib.parameters import check_parameters

    with pytest.raises(ValueError, match=match) as err:
        check_parameters(chapter, params, files=False)
    suggested = int(re.search(r"use about (\d+) or more", str(err.value)).group(1))
    key = re.match(r"(\w+)=", str(err.value)).group(1)
    check_parameters(chapter, {**params, key: suggested}, files=False)
    if chapter == "02_memorization_buckets" and key == "n_models":  # what the chapter would have met
        with pytest.raises(ValueError, match="17 training point"):
            memorization_scores(subset_masks(898, 10, 0.7, 0), np.ones((10, 898), bool))
    if chapter == "03_privacy_tables":
        with pytest.raises(ValueError, match="every example needs shadow models"):
            lira_evaluation(np.zeros((32, 898)), subset_masks(898, 48, 0.8, 0)[:32], range(32))


def test_a_family_without_tests_gives_an_empty_verdict_table():
    from sharpmem_lib.report import mitigation_table, verdict_table
    from sharpmem_lib.stats import holm_verdicts

    for table in (verdict_table(holm_verdicts({}, {})), mitigation_table({})):  # was KeyError: 'claim'
        assert table.empty and table.index.name == "claim" and "status" in table.columns


def test_lira_targets_below_the_minimum_are_refused_by_the_check_not_in_chapter_3():
    """lira_targets: 5 passed `pipeline check`; PrivacyConfig then refused 'n_targets=5' in
    chapter 3's cell, after make book had run chapters 0-2."""
    from sharpmem_lib.parameters import check_parameters

    p = {"recipes": {"digits": "smoke_mlp"}, "lira_dataset": "digits", "lira_models": 48, "lira_targets": 5,
         "lira_memorization_models": 16}
    with pytest.raises(ValueError, match=r"lira_targets=5 is not valid with lira_dataset='digits': .* at least 32"):
        check_parameters("03_privacy_tables", p, files=False)
    check_parameters("03_privacy_tables", {**p, "lira_dataset": ""}, files=False)  # LiRA skipped: no constraint


@pytest.mark.parametrize("probs", [np.array([[3.0, 5.0], [-1.0, 0.5]]),  # logits passed for probabilities
                                   np.array([[float("nan"), 0.5], [0.5, 0.5]]),  # a NaN row counted as 'correct'
                                   np.array([[0.7, 0.7], [0.5, 0.5]])])  # not summing to 1
def test_attack_scores_refuse_what_is_not_a_probability_vector(probs):
    from sharpmem_lib.attacks.single_query import attack_scores, probabilities

    for attack in ("correctness", "confidence", "entropy", "mentr"):
        with pytest.raises(ValueError, match=r"probs row 0 is .*not a probability vector.*probabilities\(logits\)"):
            attack_scores(probs, np.array([0, 0]), attack)
    z = np.random.default_rng(0).normal(size=(50, 10)).astype(np.float32)
    p32 = probabilities(z).astype(np.float32)  # float32 rounding passes
    assert attack_scores(p32, np.zeros(50, int), "confidence") == pytest.approx(p32[:, 0])


def test_a_folder_in_place_of_a_fashion_mnist_file_is_named(tmp_path):
    from sharpmem_lib.data import FASHION_FILES

    folder = tmp_path / "fashion_mnist"
    folder.mkdir()
    for stem, _, _ in FASHION_FILES.values():
        (folder / (stem + ".gz")).write_bytes(b"")
    (folder / "train-images-idx3-ubyte.gz").unlink()
    (folder / "train-images-idx3-ubyte.gz").mkdir()  # was a bare IsADirectoryError
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte.gz: is a directory"):
        data.load_dataset("fashion_mnist", tmp_path)


def test_a_one_seed_summary_shows_no_fake_spread():
    """Hostile tester, session 8: a summary over one seed printed '± 0.0' (pandas' NaN standard
    deviation of one value, filled with 0), claiming a spread of zero; Table 1 with one attack
    split printed '± nan'."""
    import pandas as pd

    from sharpmem_lib.privacy import format_table1, table1
    from sharpmem_lib.report import mean_std_table

    summary = pd.DataFrame({"method": ["sgd", "sam", "swa"], "acc_mean": [0.9, 0.85, float("nan")],
                            "acc_std": [0.02, float("nan"), float("nan")]})
    cells = list(mean_std_table(summary, ["method"], {"acc": "acc (%)"})["acc (%)"])
    assert cells == ["90.0 ± 2.0", "85.0 (n = 1, no spread)", "n/a"]
    rows = [{"dataset": "d", "algorithm": a, "train_seed": t, "split_seed": 0, "protocol": "honest", "test_acc": 0.9,
             "single_query": 0.6 + 0.01 * t, "multi_query": 0.55} for a in ("sgd", "sam") for t in (0, 1)]
    cell = format_table1(table1(pd.DataFrame(rows))).iloc[0, 1]  # one split: no split spread; two training seeds
    assert cell == "60.50 (one attack split, no spread) [± 0.71]"


def test_boolean_bucket_ids_are_refused():
    """Hostile tester, session 8: a bool array (a mask such as bucket == 1) passed as bucket ids
    read as buckets 0 (unmeasured) and 1; every bucket function now names it."""
    from sharpmem_lib.buckets import bucket_accuracy_table, bucket_composition
    from sharpmem_lib.memorization import accuracy_by_bucket, mean_by_bucket

    mask = np.array([True, False, True, True])
    message = r"bucket holds booleans \(dtype bool\); it must hold integer bucket ids, 0 \(unmeasured\) or 1..5"
    with pytest.raises(ValueError, match=message):
        accuracy_by_bucket(np.ones((2, 4), bool), mask)
    with pytest.raises(ValueError, match=message):
        mean_by_bucket(np.ones(4), mask)
    with pytest.raises(ValueError, match=message):
        bucket_composition(mask, np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=message):
        bucket_accuracy_table({}, np.arange(4), np.zeros(4, int), mask)
    with pytest.raises(ValueError, match=r"bucket holds id\(s\) 7 outside the valid range"):  # checked there too now
        bucket_accuracy_table({}, np.arange(4), np.zeros(4, int), np.array([0, 1, 7, 2]))
    assert list(bucket_composition(np.array([0, 1, 1, 5]), np.array([0, 1, 0, 1]))["total"]) == [1, 2, 0, 0, 0, 1]


def test_a_diverged_run_points_at_the_knobs_its_algorithm_reads():
    """Hostile tester, session 8: a SAM run with a huge rho diverged with 'try a smaller lr or xi'
    (SAM has no xi; its rho was at fault). The advice names lr and the knobs the algorithm reads."""
    import torch

    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.models import MLP
    from sharpmem_lib.train import TrainConfig, divergence_advice, train_classifier

    assert divergence_advice(TrainConfig()) == "try a smaller lr"
    assert divergence_advice(TrainConfig(algorithm="sam")) == "try a smaller lr or rho"
    assert divergence_advice(TrainConfig(algorithm="sharpreg", lam=1.5, xi=0.3)) == "try a smaller lr, rho, lam or xi"
    assert divergence_advice(TrainConfig(algorithm="sharp", lam=1.0)) == "try a smaller lr, rho or lam"
    d = load_dataset("digits")
    torch.manual_seed(0)
    with pytest.raises(FloatingPointError, match=r"diverged .* with sam\(rho=1e\+30\), lr=0.05; try a smaller lr or "
                                                 r"rho$"):
        train_classifier(MLP(64, 10, (8,)), d.X[:200], d.y[:200],
                         TrainConfig(algorithm="sam", rho=1e30, epochs=1, batch_size=100, lr=0.05), progress=False)
