"""Cached, resumable experiments: kill and resume, corrupt caches, divergence, determinism."""

import json

import numpy as np
import pytest
import torch

import sharpmem_lib.experiments as experiments
from sharpmem_lib.experiments import CorruptArtifactWarning, ExperimentConfig, run_experiment
from sharpmem_lib.train import TrainConfig, augment_batch

CFG = ExperimentConfig("digits", "mlp", TrainConfig(algorithm="sam", epochs=4, batch_size=128, lr=0.05,
                                                    lr_milestones=(2,), lr_gamma=0.5), model_kwargs={"hidden": (32,)})


class Killed(Exception):
    pass


def kill_after(epoch):
    def hook(e):
        if e == epoch:
            raise Killed

    return hook


def weights(artifact, which="final"):
    return torch.load(artifact.path / "weights.pt", weights_only=True)[which]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run."""
    return run_experiment(CFG, tmp_path_factory.mktemp("ref"), progress=False)


def test_artifact_contents(reference):
    out = reference.outputs()
    assert out["logits_final"].shape == (1797, 10) and out["logits_best"].shape == (1797, 10)
    assert out["member"].sum() == 898 and out["validation"].sum() == 179
    assert not (out["member"] & out["validation"]).any()
    assert [h["epoch"] for h in reference.history] == [1, 2, 3, 4]
    assert [h["lr"] for h in reference.history] == pytest.approx([0.05, 0.05, 0.025, 0.025])
    best = max(reference.history, key=lambda h: h["val_acc"])
    assert reference.status["best_epoch"] == best["epoch"]
    # stored logits are the stored weights' logits
    model = reference.model("best")
    from sharpmem_lib.data import load_dataset
    logits = model(torch.as_tensor(load_dataset("digits").X)).detach().numpy()
    np.testing.assert_allclose(logits, out["logits_best"], atol=1e-5)
    manifest = json.loads((reference.path / "manifest.json").read_text())
    assert manifest["config"]["train"]["algorithm"] == "sam" and manifest["config"]["dataset"] == "digits"
    assert manifest["status"] == "complete" and manifest["precision"] == "fp32"
    assert sorted(manifest["files"]) == ["history.json", "outputs.npz", "weights.pt"]


def test_same_config_gives_bitwise_identical_outputs(reference, tmp_path):
    again = run_experiment(CFG, tmp_path, progress=False)
    for key, value in reference.outputs().items():
        assert np.array_equal(value, again.outputs()[key]), key


def test_killed_run_resumes_to_the_same_result(reference, tmp_path):
    with pytest.raises(Killed):
        run_experiment(CFG, tmp_path, progress=False, on_epoch_end=kill_after(2))
    folder = tmp_path / "digits" / CFG.key()
    partial = folder.with_name(folder.name + ".partial")
    assert (partial / "checkpoint.pt").exists() and not folder.exists()
    epochs_run = []
    resumed = run_experiment(CFG, tmp_path, progress=False, on_epoch_end=epochs_run.append)
    assert epochs_run == [3, 4]  # continued, did not restart
    for which in ("final", "best"):
        for k, v in weights(reference, which).items():
            assert torch.equal(v, weights(resumed, which)[k]), (which, k)
    assert resumed.history == reference.history
    assert not partial.exists() and sorted(p.name for p in folder.parent.iterdir()) == [folder.name]


def test_cache_hit_does_not_train(reference, monkeypatch, tmp_path):
    monkeypatch.setattr(experiments, "train_with_defense", lambda *a, **k: pytest.fail("retrained a cached run"))
    assert run_experiment(CFG, reference.path.parents[1], progress=False).path == reference.path
    # the patched name is the one a run trains through (else the check above would be vacuous)
    with pytest.raises(pytest.fail.Exception, match="retrained"):
        run_experiment(CFG, tmp_path, progress=False)


@pytest.mark.parametrize("victim", ["outputs.npz", "weights.pt", "history.json", "manifest.json"])
def test_corrupt_artifact_is_detected_and_recomputed(reference, tmp_path, victim):
    first = run_experiment(CFG, tmp_path, progress=False)
    path = first.path / victim
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # truncate
    with pytest.warns(CorruptArtifactWarning, match="recomputing"):
        second = run_experiment(CFG, tmp_path, progress=False)
    for key, value in reference.outputs().items():
        assert np.array_equal(value, second.outputs()[key])


def test_unreadable_checkpoint_restarts(reference, tmp_path):
    with pytest.raises(Killed):
        run_experiment(CFG, tmp_path, progress=False, on_epoch_end=kill_after(1))
    (tmp_path / "digits" / f"{CFG.key()}.partial" / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.warns(CorruptArtifactWarning, match="unreadable"):
        run = run_experiment(CFG, tmp_path, progress=False)
    assert np.array_equal(run.outputs()["logits_final"], reference.outputs()["logits_final"])


def test_divergence_is_raised_recorded_and_not_retrained(tmp_path, monkeypatch):
    cfg = ExperimentConfig("digits", "mlp", TrainConfig(algorithm="sharpreg", lam=1.5, xi=0.3, lr=1e20, epochs=2))
    with pytest.raises(FloatingPointError, match=r"sharpreg\(rho=0.1, lam=1.5, xi=0.3\), lr=1e\+20"):
        run_experiment(cfg, tmp_path, progress=False)
    manifest = json.loads((tmp_path / "digits" / cfg.key() / "manifest.json").read_text())
    assert manifest["status"] == "diverged" and "lr=1e+20" in manifest["meta"]["error"]
    assert manifest["files"] == {} and not (tmp_path / "digits" / f"{cfg.key()}.partial").exists()
    monkeypatch.setattr(experiments, "train_with_defense", lambda *a, **k: pytest.fail("retrained a diverged run"))
    with pytest.raises(FloatingPointError, match="recorded in"):
        run_experiment(cfg, tmp_path, progress=False)


def test_cache_key_tracks_what_matters():
    other_seed = ExperimentConfig("digits", "mlp", TrainConfig(algorithm="sam", seed=1))
    assert ExperimentConfig("digits", "mlp", TrainConfig(algorithm="sam")).key() != other_seed.key()
    on_cpu, auto = ExperimentConfig("digits", "mlp", device="cpu"), ExperimentConfig("digits", "mlp", device="auto")
    assert on_cpu.key() == auto.key()  # here auto is the CPU: same precision, same entry
    assert auto.key("fp32") != auto.key("bf16-autocast")  # issue 17 §4: the precision is in the key


@pytest.mark.parametrize("kwargs, message", [(dict(dataset="toy2d", model="mlp"), "dataset='toy2d'"),
                                             (dict(dataset="digits", model="vgg"), "model='vgg'"),
                                             (dict(dataset="digits", model="mlp", device="tpu"), "device='tpu'")])
def test_bad_config_is_rejected_up_front(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig(**kwargs)


def test_augmentation_matches_a_brute_force_crop_and_flip():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    out = augment_batch(x, torch.Generator().manual_seed(4), padding=2)
    gen = torch.Generator().manual_seed(4)  # replay the same draws
    shifts = torch.randint(0, 5, (2, 2), generator=gen)
    flips = torch.rand(2, generator=gen) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        r, c = shifts[i].tolist()
        expected = padded[i, :, r : r + 5, c : c + 6]
        if flips[i]:
            expected = expected.flip(-1)
        assert torch.equal(out[i], expected)


def test_derived_results_are_computed_once_and_recomputed_when_unreadable(tmp_path):
    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.sharpness import artifact_sharpness

    artifact = run_experiment(CFG, tmp_path, progress=False)
    calls = []
    compute = lambda: calls.append(1) or {"value": 1.5, "nan": float("nan")}  # noqa: E731
    first = artifact.cached_json("derived.json", compute)
    assert artifact.cached_json("derived.json", compute)["value"] == first["value"] == 1.5 and len(calls) == 1
    derived = next((artifact.path / "derived").iterdir())
    assert json.loads((derived / "manifest.json").read_text())["config"]["name"] == "derived.json"
    (derived / "value.json").write_text("{truncated")
    with pytest.warns(CorruptArtifactWarning, match="checksum"):
        assert artifact.cached_json("derived.json", compute)["value"] == 1.5 and len(calls) == 2
    # a real derived result: the second call reads the first one's numbers back
    data = load_dataset(CFG.dataset)
    measured = artifact_sharpness(artifact, data, iters=5, max_points=100, device="cpu")
    assert artifact_sharpness(artifact, data, iters=5, max_points=100, device="cpu") == measured
    derived = (artifact.path / "derived").iterdir()
    names = [json.loads((p / "manifest.json").read_text())["config"]["name"] for p in derived]
    assert sorted(n.split("-")[0] for n in names) == ["derived.json", "sharpness"]


def test_a_finite_but_exploding_run_is_recorded_as_diverged(tmp_path, monkeypatch):
    """Issue 18 §7: SharpReg at xi = 1.5 climbs the loss to about 1e6 without a NaN; it used
    to be cached as complete. Now it is recorded like a NaN run and raised on every call."""
    from sharpmem_lib.store import DivergedError

    cfg = ExperimentConfig("digits", "mlp", TrainConfig(algorithm="sharpreg", rho=0.01, lam=1.5, xi=1.5, lr=0.05,
                                                        epochs=4, batch_size=64), model_kwargs={"hidden": (32,)})
    with pytest.raises(DivergedError, match="exceeds the first epoch's"):
        run_experiment(cfg, tmp_path, progress=False)
    manifest = json.loads((tmp_path / "digits" / cfg.key() / "manifest.json").read_text())
    assert manifest["status"] == "diverged" and "xi=1.5" in manifest["meta"]["error"]
    monkeypatch.setattr(experiments, "train_with_defense", lambda *a, **k: pytest.fail("retrained a diverged run"))
    with pytest.raises(FloatingPointError, match="recorded in"):  # callers catching FloatingPointError still do
        run_experiment(cfg, tmp_path, progress=False)


def test_divergence_rule_by_hand():
    from sharpmem_lib.experiments import divergence

    falling = [{"train_loss": 2.3}, {"train_loss": 0.4}]
    assert divergence(falling, train_accuracy=0.9, chance=0.1, n_train=900) is None
    assert "exceeds the first epoch's" in divergence([{"train_loss": 2.3}, {"train_loss": 2.31}], 0.9, 0.1, 900)
    assert "final training loss inf" in divergence([{"train_loss": 2.3}, {"train_loss": float("inf")}], 0.9, 0.1, 900)
    # at chance: not above 0.1 + 3 * sqrt(0.1 * 0.9 / 900) = 0.13 (by hand)
    assert "at chance" in divergence(falling, train_accuracy=0.13, chance=0.1, n_train=900)
    assert divergence(falling, train_accuracy=0.131, chance=0.1, n_train=900) is None
    # chance is the majority class's share, not 1 / classes
    assert "at chance" in divergence(falling, train_accuracy=0.5, chance=0.5, n_train=100)
    assert divergence([{"train_loss": 2.3}], train_accuracy=0.9, chance=0.1, n_train=900) is None  # one epoch


def test_a_run_at_chance_accuracy_is_recorded_as_diverged(tmp_path, monkeypatch):
    """A model that predicts one class for everything (finite, falling loss) is at chance."""
    from sharpmem_lib.store import DivergedError
    from sharpmem_lib.train import TrainResult

    def constant_model(defense, model, build, X, y, config, **kwargs):
        for p in model.parameters():
            torch.nn.init.zeros_(p)
        return TrainResult(model, [{"epoch": 1, "train_loss": 2.3}, {"epoch": 2, "train_loss": 2.2}],
                           {k: v.clone() for k, v in model.state_dict().items()}, 1)

    monkeypatch.setattr(experiments, "train_with_defense", constant_model)
    cfg = ExperimentConfig("digits", "mlp", TrainConfig(epochs=2), model_kwargs={"hidden": (8,)})
    with pytest.raises(DivergedError, match="at chance"):
        run_experiment(cfg, tmp_path, progress=False)
    assert json.loads((tmp_path / "digits" / cfg.key() / "manifest.json").read_text())["status"] == "diverged"


def test_a_diverged_run_is_shown_beside_completed_ones(reference, tmp_path):
    from sharpmem_lib.experiments import accuracy_table, try_run_experiment

    cfg = ExperimentConfig("digits", "mlp", TrainConfig(algorithm="sharpreg", lam=1.5, xi=0.3, lr=1e20, epochs=2))
    diverged = try_run_experiment(cfg, tmp_path, progress=False)
    assert isinstance(diverged, FloatingPointError) and "lr=1e+20" in diverged.reason
    assert try_run_experiment(CFG, reference.path.parents[1], progress=False).path == reference.path
    table = accuracy_table({"sam": reference, "exploded": diverged})
    assert (table.loc["sam", "status"] == "complete").all() and table.loc["sam", "train acc"].gt(0.2).all()
    assert table.loc["exploded", "status"].str.startswith("diverged: ").all()
    assert table.loc["exploded", "train acc"].isna().all()
