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
