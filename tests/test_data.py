"""The toy distribution of Fig. 1 against scipy's densities and sampling statistics."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from sharpmem_lib.data import BLUE, DATASETS, RED, ToyMixture, load_dataset


def brute_force_bayes(mix: ToyMixture, x: np.ndarray) -> np.ndarray:
    """argmax_c P(c) p(x|c) with densities from scipy, written independently of ToyMixture."""
    red = (1 - mix.atypical_weight) * multivariate_normal(mix.typical_mean, mix.typical_std**2).pdf(x) \
        + mix.atypical_weight * multivariate_normal(mix.atypical_mean, mix.atypical_std**2).pdf(x)
    blue = multivariate_normal(mix.blue_mean, mix.blue_std**2).pdf(x)
    return np.where(mix.red_prior * red >= (1 - mix.red_prior) * blue, RED, BLUE)


@pytest.mark.parametrize("mix", [ToyMixture(), ToyMixture(atypical_mean=(2.0, 2.5), atypical_std=0.3, red_prior=0.4)])
def test_bayes_rule_matches_scipy_densities(mix):
    x = np.random.default_rng(0).uniform(-5, 5, size=(5000, 2))
    assert np.array_equal(mix.bayes_predict(x), brute_force_bayes(mix, x))


def test_class_densities_integrate_to_one():
    mix = ToyMixture()
    xs = np.linspace(-10, 10, 801)
    gx, gy = np.meshgrid(xs, xs)
    dens = np.exp(mix.class_log_density(np.stack([gx.ravel(), gy.ravel()], 1)))
    cell = (xs[1] - xs[0]) ** 2
    np.testing.assert_allclose(dens.sum(0) * cell, [1.0, 1.0], atol=1e-4)


def test_sample_frequencies_follow_the_mixture():
    mix = ToyMixture(atypical_weight=0.1, red_prior=0.3)
    data = mix.sample(200_000, seed=1)
    n = len(data)
    red = data.y == RED
    # 5 binomial standard deviations
    assert abs(red.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / n)
    share = (data.group[red] == 1).mean()
    assert abs(share - 0.1) < 5 * np.sqrt(0.1 * 0.9 / red.sum())
    atypical = data.X[data.group == 1]
    np.testing.assert_allclose(atypical.mean(0), mix.atypical_mean, atol=0.02)
    np.testing.assert_allclose(atypical.std(0), mix.atypical_std, rtol=0.05)
    assert set(np.unique(data.group[data.y == BLUE])) == {2}


def test_sampling_is_deterministic_per_seed():
    a, b, c = (ToyMixture().sample(100, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    assert a.X.dtype == np.float32 and a.y.dtype == np.int64


def test_registry_and_bad_names():
    assert "toy2d" in DATASETS
    assert len(load_dataset("toy2d", n=50, seed=0)) == 50
    with pytest.raises(ValueError, match=r"dataset='cifar1000' is not valid; choose one of \['toy2d'"):
        load_dataset("cifar1000")
    with pytest.raises(ValueError, match="atypical_weight=1.5"):
        ToyMixture(atypical_weight=1.5)
    with pytest.raises(ValueError, match="n=0"):
        ToyMixture().sample(0, seed=0)


# ------------------------------------------------------------------ bring your own data


@pytest.fixture
def user_data(monkeypatch, tmp_path):
    """A data directory of the test's own, and a registry restored afterwards."""
    from sharpmem_lib import data as data_module
    from sharpmem_lib.splits import SPLITS

    monkeypatch.delenv("SHARPMEM_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(data_module, "DATASETS", dict(data_module.DATASETS))
    import sharpmem_lib.splits as splits_module

    monkeypatch.setattr(splits_module, "DATASETS", data_module.DATASETS)
    monkeypatch.setattr(splits_module, "SPLITS", dict(SPLITS))
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def blobs(n=120, classes=3, seed=0):
    """Three well-separated classes of 1x4x4 'images': a dataset the test makes itself."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = (rng.normal(0, 0.3, (n, 1, 4, 4)) + y[:, None, None, None]).astype(np.float32)
    return X, y


def test_npz_dataset_loads_by_name_with_official_split(user_data):
    from sharpmem_lib.data import available_datasets
    from sharpmem_lib.splits import make_partition

    X, y = blobs()
    official = np.arange(len(y)) >= 100
    np.savez(user_data / "my_blobs.npz", X=X, y=y, official_test=official)
    assert "my_blobs" in available_datasets(user_data)
    data = load_dataset("my_blobs", data_dir=user_data)
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.y, y)
    assert data.y.dtype == np.int64 and data.num_classes == 3
    np.testing.assert_array_equal(data.official_test, official)
    part = make_partition("my_blobs", data, split_seed=1)
    np.testing.assert_array_equal(part.members, np.arange(100))  # the official training split
    assert len(part.validation) == 2 and len(part.attack_nonmembers) == 9 and len(part.eval_nonmembers) == 9


def test_npz_dataset_without_official_split_is_cut_like_digits(user_data):
    from sharpmem_lib.splits import make_partition

    X, y = blobs(n=200)
    np.savez(user_data / "flat.npz", X=X.reshape(200, -1), y=y)
    data = load_dataset("flat", data_dir=user_data)
    part = make_partition("flat", data)
    assert part.sizes() == {"members": 100, "validation": 20, "attack_members": 50, "eval_members": 50,
                            "attack_nonmembers": 40, "eval_nonmembers": 40}


def test_npz_found_through_sharpmem_data(user_data, monkeypatch):
    X, y = blobs()
    np.savez(user_data / "envdata.npz", X=X, y=y)
    monkeypatch.setenv("SHARPMEM_DATA", str(user_data))
    assert len(load_dataset("envdata")) == len(y)


@pytest.mark.parametrize("arrays, message", [
    (dict(X=np.zeros((6, 4)), y=np.eye(3)[[0, 1, 2, 0, 1, 2]]), r"labels are one-hot"),
    (dict(X=np.zeros((6, 4)), y=np.array([1, 2, 3, 1, 2, 3])), r"no example has label 0.*1-based"),
    (dict(X=np.zeros((6, 4)), y=np.array([0, 1, -2, 0, 1, 2])), r"row 2 has -2"),
    (dict(X=np.zeros((6, 4, 4)), y=np.zeros(6, int)), r"images need a channel axis"),
    (dict(X=np.full((6, 4), np.inf), y=np.zeros(6, int)), r"non-finite values"),
    (dict(X=np.zeros((6, 4)), y=np.zeros(6, int), labels=np.zeros(6)), r"unknown key\(s\) \['labels'\]"),
    (dict(X=np.zeros((6, 4)), y=np.arange(6) % 2, official_test=np.ones(6, bool)), r"every example as test"),
    (dict(X=np.zeros((6, 4)), y=np.arange(6) % 2, official_test=np.zeros(6)), r"official_test must be a \(n,\) bool"),
])
def test_bad_npz_dataset_names_the_file_and_fault(user_data, arrays, message):
    from sharpmem_lib.data import DataFileError

    np.savez(user_data / "bad.npz", **arrays)
    with pytest.raises(DataFileError, match=message) as err:
        load_dataset("bad", data_dir=user_data)
    assert str(user_data / "bad.npz") in str(err.value)


def test_unknown_name_lists_user_datasets(user_data):
    X, y = blobs()
    np.savez(user_data / "mine.npz", X=X, y=y)
    np.savez(user_data / "not_a_dataset.npz", weights=np.zeros(3))  # e.g. an influence file: not listed
    with pytest.raises(ValueError, match=r"dataset='mien' is not valid; choose one of \[.*'digits'.*'mine'\]") as err:
        load_dataset("mien", data_dir=user_data)
    assert "not_a_dataset" not in str(err.value)


def test_register_dataset_with_a_loader(user_data):
    from sharpmem_lib.data import DataFileError, register_dataset
    from sharpmem_lib.splits import make_partition, published_partition

    X, y = blobs()
    register_dataset("py_blobs", lambda data_dir=None: (X, y), num_classes=3, feature_shape=(1, 4, 4))
    data = load_dataset("py_blobs")
    np.testing.assert_array_equal(data.y, y)
    assert make_partition("py_blobs", data).sizes()["members"] == 60
    assert published_partition("py_blobs").sizes() == make_partition("py_blobs", data).sizes()
    # the loader's result is checked like a built-in file's
    register_dataset("py_bad", lambda data_dir=None: (X, y + 1), num_classes=3)
    with pytest.raises(DataFileError, match=r"dataset 'py_bad' .*labels must be 0..2; .*1-based"):
        load_dataset("py_bad")
    register_dataset("py_shape", lambda data_dir=None: (X, y), feature_shape=(16,))
    with pytest.raises(DataFileError, match=r"expected \(16,\)"):
        load_dataset("py_shape")
    register_dataset("py_none", lambda data_dir=None: None)
    with pytest.raises(DataFileError, match=r"returned NoneType; expected Arrays or \(X, y\)"):
        load_dataset("py_none")


def test_register_dataset_bad_input(user_data):
    from sharpmem_lib.data import register_dataset

    loader = lambda data_dir=None: blobs()  # noqa: E731
    with pytest.raises(ValueError, match=r"name='cifar10' is a built-in dataset"):
        register_dataset("cifar10", loader)
    with pytest.raises(ValueError, match=r"name='My Data' is not valid"):
        register_dataset("My Data", loader)
    with pytest.raises(ValueError, match=r"loader=3 is not valid"):
        register_dataset("three", 3)
    register_dataset("twice", loader)
    with pytest.raises(ValueError, match=r"already registered; pass replace=True"):
        register_dataset("twice", loader)
    register_dataset("twice", loader, replace=True)
    with pytest.raises(ValueError, match=r"num_classes=0"):
        register_dataset("zero", loader, num_classes=0)


def test_a_target_model_trains_on_a_user_dataset(user_data, tmp_path):
    """The engine, not only the loader: a chapter's target config accepts the name and trains."""
    from sharpmem_lib.experiments import ExperimentConfig, run_experiment
    from sharpmem_lib.train import TrainConfig

    X, y = blobs()
    np.savez(user_data / "trainable.npz", X=X, y=y)
    load_dataset("trainable", data_dir=user_data)  # registers the name, as a chapter's parameter check does
    config = ExperimentConfig("trainable", "mlp", TrainConfig(epochs=20, lr=0.1, batch_size=16),
                              model_kwargs={"hidden": (8,)})
    art = run_experiment(config, tmp_path / "results", data_dir=user_data, progress=False)
    out = art.outputs()
    member = out["member"]
    acc = (out["logits_final"].argmax(1)[member] == y[member]).mean()
    assert acc > 0.9  # three separated blobs: learnt


def test_cache_keys_follow_a_user_datasets_content(user_data):
    """Results of a user's dataset are keyed by its content: new data under the same name
    trains anew; built-in datasets' keys carry no such field (their cached results stay)."""
    from sharpmem_lib.data import dataset_fingerprint, register_dataset
    from sharpmem_lib.experiments import ExperimentConfig
    from sharpmem_lib.subsampling import SubsamplingConfig

    X, y = blobs()
    np.savez(user_data / "mine.npz", X=X, y=y)
    load_dataset("mine", data_dir=user_data)
    def keys():
        return (ExperimentConfig("mine", "mlp").key(precision="fp32"),
                SubsamplingConfig("mine", "mlp").key(precision="fp32"))

    first = keys()
    assert dataset_fingerprint("mine") is not None
    np.savez(user_data / "mine.npz", X=X, y=(y + 1) % 3)  # same name, other labels
    load_dataset("mine", data_dir=user_data)
    second = keys()
    assert first[0] != second[0] and first[1] != second[1]
    register_dataset("py_mine", lambda data_dir=None: (X, y))
    a = dataset_fingerprint("py_mine")
    register_dataset("py_mine", lambda data_dir=None: (X, (y + 1) % 3), replace=True)
    assert dataset_fingerprint("py_mine") != a
    assert dataset_fingerprint("digits") is None
    assert "dataset_content" not in ExperimentConfig("digits", "mlp").key_config()
