"""The subset models behind the estimator: shards that merge to one run, the one-by-one path,
resuming, the command line."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def small_digits():
    """200 digits to train subset models on and 60 to test them on."""
    from sharpmem_lib.data import load_dataset

    d = load_dataset("digits")
    return d.X[:200], d.y[:200], d.X[200:260], d.y[200:260]


def test_shards_merge_to_one_run(tmp_path, small_digits):
    from sharpmem_lib.subsampling import SubsamplingRuns, merge_runs, run_subsampling
    from sharpmem_lib.models import MLP
    from sharpmem_lib.train import TrainConfig

    X, y, Xt, yt = small_digits
    cfg = TrainConfig(epochs=8, batch_size=20, lr=0.1, seed=3)
    build = lambda: MLP(64, 10, (16,))  # noqa: E731
    whole = run_subsampling(build, X, y, Xt, yt, cfg, n_models=7, chunk=3, progress=False)
    for i in range(3):
        run_subsampling(build, X, y, Xt, yt, cfg, n_models=7, shard=i, n_shards=3, chunk=2,
                        progress=False).save(tmp_path / f"shard{i}.npz")
    merged = merge_runs([SubsamplingRuns.load(tmp_path / f"shard{i}.npz") for i in (2, 0, 1)])
    for name in ("model_ids", "masks", "correct_train", "correct_test"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    # the ensemble's float sums depend on how many models share a chunk: equal to rounding
    np.testing.assert_allclose(merged.confidence_train, whole.confidence_train, atol=1e-4)
    assert merged.info == whole.info and (whole.info.shard, whole.info.n_shards) == (0, 1)
    merged.save(tmp_path / "merged.npz")
    assert SubsamplingRuns.load(tmp_path / "merged.npz").info == whole.info
    assert whole.correct_train.mean() > 0.5  # the models learnt something
    with pytest.raises(ValueError, match="overlap"):
        merge_runs([merged, merged])
    with pytest.raises(ValueError, match="shard=3"):
        run_subsampling(build, X, y, Xt, yt, cfg, n_models=7, shard=3, n_shards=3)


def test_models_the_ensemble_cannot_stack_train_one_by_one_to_the_same_result(small_digits):
    """A model with a buffer (as BatchNorm has) cannot be stacked; run_subsampling then
    trains it model by model with train_classifier, from the same seeds and subsets, and
    gets what the ensemble gets for the same model without the buffer."""
    from torch import nn

    from sharpmem_lib.ensemble import cannot_stack
    from sharpmem_lib.subsampling import run_subsampling
    from sharpmem_lib.models import MLP
    from sharpmem_lib.train import TrainConfig

    X, y, Xt, yt = small_digits
    cfg = TrainConfig(epochs=5, batch_size=20, lr=0.1, seed=3)

    def with_buffer() -> nn.Module:
        model = MLP(64, 10, (16,))
        model.register_buffer("unused", torch.zeros(1))  # changes nothing but stackability
        return model

    assert cannot_stack(with_buffer()) and cannot_stack(MLP(64, 10, (16,))) is None
    stacked = run_subsampling(lambda: MLP(64, 10, (16,)), X, y, Xt, yt, cfg, n_models=4, progress=False)
    one_by_one = run_subsampling(with_buffer, X, y, Xt, yt, cfg, n_models=4, progress=False)
    for name in ("masks", "correct_train", "correct_test"):
        np.testing.assert_array_equal(getattr(one_by_one, name), getattr(stacked, name))
    np.testing.assert_allclose(one_by_one.confidence_train, stacked.confidence_train, atol=1e-3)


@pytest.mark.parametrize("stackable", [True, False], ids=["ensemble", "one-by-one"])
def test_interrupted_subsampling_resumes_from_its_finished_parts(tmp_path, stackable, small_digits):
    from torch import nn

    from sharpmem_lib.subsampling import run_subsampling
    from sharpmem_lib.models import MLP
    from sharpmem_lib.train import TrainConfig

    X, y, Xt, yt = small_digits
    cfg = TrainConfig(epochs=3, batch_size=20, lr=0.1, seed=3)
    calls = []

    def build() -> nn.Module:
        calls.append(1)
        if len(calls) == kill_at:
            raise KeyboardInterrupt
        model = MLP(64, 10, (16,))
        if not stackable:
            model.register_buffer("unused", torch.zeros(1))
        return model

    kill_at = None
    whole = run_subsampling(build, X, y, Xt, yt, cfg, n_models=5, chunk=2, progress=False)
    calls.clear()
    # build calls: a probe, then one per model (chunks of 2, 2 and 1 for the ensemble);
    # killed while building model 4 of the ensemble's last chunk, or model 2 one by one
    kill_at = 6 if stackable else 4
    with pytest.raises(KeyboardInterrupt):
        run_subsampling(build, X, y, Xt, yt, cfg, n_models=5, chunk=2, checkpoint_dir=tmp_path, progress=False)
    calls.clear()
    kill_at = None
    resumed = run_subsampling(build, X, y, Xt, yt, cfg, n_models=5, chunk=2, checkpoint_dir=tmp_path,
                              progress=False)
    assert len(calls) == 1 + (1 if stackable else 3)  # the probe, then only the unfinished models
    for name in ("masks", "correct_train", "correct_test", "confidence_train"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name))
    other = run_subsampling(build, X, y, Xt, yt, TrainConfig(epochs=1, batch_size=20, lr=0.1, seed=3), n_models=5,
                            chunk=2, checkpoint_dir=tmp_path, progress=False)  # other settings: no reuse
    assert not np.array_equal(other.confidence_train, whole.confidence_train)


def test_shard_cli_round_trip(tmp_path):
    from sharpmem_lib.subsampling import SubsamplingRuns, main

    common = ["--dataset", "digits", "--hidden", "8", "--n-models", "6", "--epochs", "1", "--n-shards", "2",
              "--out", str(tmp_path / "shards")]
    assert main(["shard", "--shard", "0", *common]) == 0
    assert main(["shard", "--shard", "1", *common]) == 0
    files = sorted((tmp_path / "shards").glob("shard-*.npz"))
    assert [f.name for f in files] == ["shard-0000-of-0002.npz", "shard-0001-of-0002.npz"]
    assert main(["merge", *map(str, files), "--out", str(tmp_path / "all.npz")]) == 0
    merged = SubsamplingRuns.load(tmp_path / "all.npz")
    assert merged.model_ids.tolist() == list(range(6)) and merged.masks.shape == (6, 898)


def test_shards_of_another_model_or_data_do_not_merge(small_digits):
    """Called directly (e.g. from Ray), a run is named by its settings, the model's
    architecture and the data: shards that differ in any of them are refused."""
    from sharpmem_lib.models import MLP
    from sharpmem_lib.subsampling import merge_runs, run_subsampling
    from sharpmem_lib.train import TrainConfig

    X, y, Xt, yt = small_digits
    cfg = TrainConfig(epochs=1, batch_size=20, lr=0.1, seed=3)
    shard0 = run_subsampling(lambda: MLP(64, 10, (16,)), X, y, Xt, yt, cfg, n_models=4, shard=0, n_shards=2,
                             progress=False)
    wider = run_subsampling(lambda: MLP(64, 10, (24,)), X, y, Xt, yt, cfg, n_models=4, shard=1, n_shards=2,
                            progress=False)
    with pytest.raises(ValueError, match=r"b\.npz has key="):
        merge_runs([shard0, wider], names=["a.npz", "b.npz"])
    other_data = run_subsampling(lambda: MLP(64, 10, (16,)), X[::-1].copy(), y[::-1].copy(), Xt, yt, cfg,
                                 n_models=4, shard=1, n_shards=2, progress=False)
    with pytest.raises(ValueError, match=r"b\.npz has key="):
        merge_runs([shard0, other_data], names=["a.npz", "b.npz"])
    same = run_subsampling(lambda: MLP(64, 10, (16,)), X, y, Xt, yt, cfg, n_models=4, shard=1, n_shards=2,
                           progress=False)
    assert merge_runs([shard0, same]).model_ids.tolist() == [0, 1, 2, 3]


def test_finished_parts_of_another_model_are_not_reused(tmp_path, small_digits):
    from sharpmem_lib.models import MLP
    from sharpmem_lib.subsampling import run_subsampling

    from sharpmem_lib.train import TrainConfig

    X, y, Xt, yt = small_digits
    cfg = TrainConfig(epochs=2, batch_size=20, lr=0.1, seed=3)
    run_subsampling(lambda: MLP(64, 10, (16,)), X, y, Xt, yt, cfg, n_models=3, checkpoint_dir=tmp_path,
                    progress=False)
    narrow = lambda: MLP(64, 10, (4,))  # noqa: E731
    resumed = run_subsampling(narrow, X, y, Xt, yt, cfg, n_models=3, checkpoint_dir=tmp_path, progress=False)
    fresh = run_subsampling(narrow, X, y, Xt, yt, cfg, n_models=3, progress=False)
    np.testing.assert_array_equal(resumed.confidence_train, fresh.confidence_train)


SHARD_ARGS = ["--dataset", "digits", "--hidden", "8", "--n-models", "6", "--epochs", "1", "--n-shards", "3"]


def shard_cli(out, shard, *changes):
    """Run ``shard`` of the base 3-shard run through the command line, with ``changes``
    (argument, value) overriding the base arguments; returns the shard file."""
    from sharpmem_lib.subsampling import main

    args = list(SHARD_ARGS)
    for flag, value in changes:
        args[args.index(flag) + 1] = value
    assert main(["shard", "--shard", str(shard), *args, "--out", str(out)]) == 0
    n_shards = int(args[args.index("--n-shards") + 1])
    return out / f"shard-{shard:04d}-of-{n_shards:04d}.npz"


@pytest.fixture(scope="module")
def base_shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    return [shard_cli(out, i) for i in range(3)]


def refused_merge(files, tmp_path, capsys):
    """Merge ``files`` through the command line, expecting a refusal; its message."""
    from sharpmem_lib.subsampling import main

    capsys.readouterr()  # drop what training the shards printed
    code = main(["merge", *map(str, files), "--out", str(tmp_path / "all.npz")])
    message = capsys.readouterr().err
    assert code != 0 and message.startswith("merge refused:"), message
    assert not (tmp_path / "all.npz").exists()
    return message


@pytest.mark.parametrize("field, changes", [
    ("key", [("--epochs", "2")]),  # another training recipe, as in the report
    ("key", [("--hidden", "16")]),  # another architecture
    ("n_models", [("--n-models", "9")]),
    ("dataset", [("--dataset", "longtail")]),
    ("cache_version", []),
], ids=["epochs", "hidden", "n_models", "dataset", "cache_version"])
def test_merge_refuses_a_shard_of_another_run(base_shards, tmp_path, capsys, monkeypatch, field, changes):
    from sharpmem_lib import store

    if field == "cache_version":  # the shard was trained by code with another cache version
        monkeypatch.setattr(store, "CACHE_VERSION", store.CACHE_VERSION + 1)
    odd = shard_cli(tmp_path / "odd", 1, *changes)
    monkeypatch.undo()
    message = refused_merge([base_shards[0], odd, base_shards[2]], tmp_path, capsys)
    assert f"{odd} has {field}=" in message
    assert str(base_shards[0]) not in message  # the odd one out is blamed, not the others


def test_merge_refuses_shards_of_another_sharding(base_shards, tmp_path, capsys):
    odd = shard_cli(tmp_path / "odd", 1, ("--n-shards", "2"))  # same models, split in two
    message = refused_merge([base_shards[0], odd, base_shards[2]], tmp_path, capsys)
    assert f"{odd} has n_shards=2" in message and "n_shards=3" in message


def test_merge_refuses_a_missing_shard(base_shards, tmp_path, capsys):
    message = refused_merge([base_shards[0], base_shards[2]], tmp_path, capsys)
    assert "shard(s) [1] of 3 missing (field 'shard')" in message
    assert str(base_shards[0]) in message and str(base_shards[2]) in message


def test_merge_refuses_a_duplicate_shard(base_shards, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy-of-shard-1.npz"
    shutil.copy(base_shards[1], copy)
    message = refused_merge([*base_shards, copy], tmp_path, capsys)
    assert f"{base_shards[1]} and {copy} are both shard 1 of 3 (field 'shard'): a duplicate" in message


def test_merge_refuses_unrecorded_and_unreadable_files(base_shards, tmp_path, capsys):
    from sharpmem_lib.subsampling import SubsamplingRuns

    old = SubsamplingRuns.load(base_shards[1])
    old.info = None  # as the previous version wrote shard files
    old.save(tmp_path / "old.npz")
    message = refused_merge([base_shards[0], tmp_path / "old.npz", base_shards[2]], tmp_path, capsys)
    assert f"{tmp_path / 'old.npz'}: no shard record (field 'shard_info')" in message
    (tmp_path / "garbled.npz").write_bytes(b"not a zip file")
    message = refused_merge([base_shards[0], tmp_path / "garbled.npz", base_shards[2]], tmp_path, capsys)
    assert f"{tmp_path / 'garbled.npz'}: not a readable shard file" in message


def test_merged_shards_equal_the_unsharded_run(base_shards, tmp_path):
    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.splits import make_partition
    from sharpmem_lib.subsampling import SubsamplingConfig, SubsamplingRuns, main, run_subsampling_shard
    from sharpmem_lib.train import TrainConfig

    assert main(["merge", *map(str, reversed(base_shards)), "--out", str(tmp_path / "all.npz")]) == 0
    merged = SubsamplingRuns.load(tmp_path / "all.npz")
    config = SubsamplingConfig("digits", "mlp", TrainConfig(epochs=1, lr=0.05, batch_size=32), n_models=6,
                               model_kwargs={"hidden": (8,)}, device="auto")
    whole = run_subsampling_shard(config, progress=False)
    for name in ("model_ids", "masks", "correct_train", "correct_test"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    np.testing.assert_allclose(merged.confidence_train, whole.confidence_train, atol=1e-4)
    assert merged.info == whole.info
    assert merged.info.key == config.key() and merged.info.dataset == "digits" and merged.info.n_models == 6
    assert len(make_partition("digits", load_dataset("digits")).members) == merged.masks.shape[1]
