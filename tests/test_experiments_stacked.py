"""Targets that differ only by their seed train as one ensemble (issue 16) and are stored as
ordinary target runs: each equals run_experiment's run of its own config, under its own key."""

import json
import time

import numpy as np
import pytest
import torch

import sharpmem_lib.ensemble as ensemble_module
import sharpmem_lib.experiments as experiments
from sharpmem_lib.experiments import ExperimentConfig, run_experiment, train_targets, try_run_experiment
from sharpmem_lib.store import DivergedError
from sharpmem_lib.train import TrainConfig

# float32 summation order: the kernel's BLAS products against torch's, over 3-4 epochs
ATOL = RTOL = 1e-5

RECIPES = {
    "sgd": TrainConfig(algorithm="sgd", epochs=4, batch_size=64, lr=0.05, momentum=0.9, lr_milestones=(3,)),
    "sam": TrainConfig(algorithm="sam", rho=0.1, epochs=3, batch_size=64, lr=0.05, momentum=0.9),
    "swa+ls": TrainConfig(algorithm="sgd", epochs=4, batch_size=64, lr=0.05, momentum=0.9, swa=True, swa_start=0.5,
                          swa_lr=0.02, label_smoothing=0.1),
}


def configs(train: TrainConfig, seeds=(0, 1, 2)) -> dict:
    return {s: ExperimentConfig("digits", "mlp", TrainConfig(**{**train.__dict__, "seed": s}),
                                model_kwargs={"hidden": (16,)}) for s in seeds}


def spy_on_ensembles(monkeypatch) -> list:
    """Record the seeds of every ensemble train_targets trains."""
    calls = []
    real = ensemble_module.train_ensemble

    def spy(*args, seeds=None, **kwargs):
        calls.append(list(seeds))
        return real(*args, seeds=seeds, **kwargs)

    monkeypatch.setattr(experiments, "train_ensemble", spy)
    return calls


def assert_same_run(stacked, single):
    assert stacked.path.name == single.path.name == single.config.key()  # the store's key, unchanged
    assert stacked.status["best_epoch"] == single.status["best_epoch"]
    assert len(stacked.history) == len(single.history)
    for h, g in zip(stacked.history, single.history):
        assert set(h) == set(g) == {"epoch", "train_loss", "train_acc", "val_acc", "lr"}
        assert (h["epoch"], h["lr"]) == (g["epoch"], g["lr"])
        assert h["train_loss"] == pytest.approx(g["train_loss"], rel=RTOL, abs=ATOL)
        assert h["train_acc"] == pytest.approx(g["train_acc"], abs=1.5 / 898)  # at most one tie flips
        assert h["val_acc"] == pytest.approx(g["val_acc"], abs=1.5 / 179)
    w_stacked = torch.load(stacked.path / "weights.pt", weights_only=True)
    w_single = torch.load(single.path / "weights.pt", weights_only=True)
    for which in ("final", "best"):
        assert w_stacked[which].keys() == w_single[which].keys()
        for name, value in w_single[which].items():
            torch.testing.assert_close(w_stacked[which][name], value, atol=ATOL, rtol=RTOL)
    out_stacked, out_single = stacked.outputs(), single.outputs()
    for key in ("member", "validation"):
        assert np.array_equal(out_stacked[key], out_single[key])
    for key in ("logits_final", "logits_best"):
        np.testing.assert_allclose(out_stacked[key], out_single[key], atol=1e-4, rtol=1e-4)
        assert (out_stacked[key].argmax(1) == out_single[key].argmax(1)).mean() > 0.999
    assert stacked.status["train_accuracy"] == pytest.approx(single.status["train_accuracy"], abs=1.5 / 898)


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_stacked_targets_equal_one_by_one_runs(recipe, tmp_path, monkeypatch):
    calls = spy_on_ensembles(monkeypatch)
    targets = configs(RECIPES[recipe])
    stacked = train_targets(targets, tmp_path / "stacked", progress=False)
    assert calls == [[0, 1, 2]]  # one ensemble for the three seeds
    for seed, config in targets.items():
        assert stacked[seed].status["ensemble_size"] == 3
        single = run_experiment(config, tmp_path / "single", progress=False)
        assert "ensemble_size" not in single.status
        assert_same_run(stacked[seed], single)
    # different seeds are different models (the stacking did not share anything between them)
    assert not np.allclose(stacked[0].outputs()["logits_final"], stacked[1].outputs()["logits_final"])


@pytest.mark.parametrize("algorithm", ["sgd", "sam"])
def test_a_stacked_model_does_not_depend_on_the_stack_it_trained_in(algorithm, tmp_path):
    """Seed 1 trained alone, first of two, or last of four gives the same weights bit for bit:
    torch's fused CPU SGD updated a tensor's last (numel mod vector width) elements apart, and a
    single model's SAM norm took another reduction, so a target's numbers depended on which
    targets were missing with it (hostile tester, session 8)."""
    train = TrainConfig(algorithm=algorithm, rho=0.1, epochs=3, batch_size=64, lr=0.05, momentum=0.9)
    weights = []
    for i, seeds in enumerate([(1,), (1, 0), (3, 2, 0, 1)]):
        root = tmp_path / str(i)
        experiments.train_stacked(configs(train, seeds).values(), root, progress=False)
        art = run_experiment(configs(train, (1,))[1], root, progress=False)
        assert art.status["ensemble_size"] == len(seeds)
        weights.append(torch.load(art.path / "weights.pt", weights_only=True))
    for other in weights[1:]:
        for which in ("final", "best"):
            for name, value in weights[0][which].items():
                assert torch.equal(other[which][name], value), (which, name)


def test_cached_targets_are_read_not_retrained(tmp_path, monkeypatch):
    targets = configs(RECIPES["sgd"], seeds=(0, 1, 2, 3))
    cached = run_experiment(targets[1], tmp_path, progress=False)
    manifest = (cached.path / "manifest.json").read_text()
    calls = spy_on_ensembles(monkeypatch)
    runs = train_targets(targets, tmp_path, progress=False)
    assert calls == [[0, 2, 3]]  # only the missing ones, as one ensemble
    assert runs[1].path == cached.path and (cached.path / "manifest.json").read_text() == manifest
    assert [r.path.name for r in runs.values()] == [c.key() for c in targets.values()]
    # everything is stored now: a second call trains nothing and reads the same entries
    again = train_targets(targets, tmp_path, progress=False)
    assert calls == [[0, 2, 3]] and {k: r.path for k, r in again.items()} == {k: r.path for k, r in runs.items()}
    # a lone missing target trains through the kernel too (MIN_STACK = 1): a stack of one
    lone = configs(RECIPES["sgd"], seeds=(4,))
    run = train_targets(lone, tmp_path, progress=False)[4]
    assert calls == [[0, 2, 3], [4]] and run.status["ensemble_size"] == 1


def test_what_cannot_stack_trains_one_by_one(tmp_path, monkeypatch):
    calls = spy_on_ensembles(monkeypatch)
    defended = {s: ExperimentConfig("digits", "mlp", c.train, model_kwargs=c.model_kwargs, defense="advreg",
                                    defense_kwargs={"alpha": 1.0})
                for s, c in configs(TrainConfig(epochs=3, batch_size=32, lr=0.05, momentum=0.9), seeds=(0, 1)).items()}
    assert "defense='advreg'" in experiments.stack_refusal(defended[0])
    for off in ("0", "false", "Off", " no "):
        monkeypatch.setenv("SHARPMEM_STACK", off)
        assert "SHARPMEM_STACK turns stacking off" in experiments.stack_refusal(configs(TrainConfig())[0])
    monkeypatch.setenv("SHARPMEM_STACK", "1")
    assert experiments.stack_refusal(configs(TrainConfig())[0]) is None
    monkeypatch.delenv("SHARPMEM_STACK")
    assert experiments.stack_refusal(configs(TrainConfig())[0]) is None
    tanh = {s: ExperimentConfig("digits", "mlp", c.train, model_kwargs={"hidden": (8,), "activation": "tanh"})
            for s, c in configs(TrainConfig(epochs=3, batch_size=32, lr=0.05, momentum=0.9), seeds=(0, 1)).items()}
    runs = {**{("advreg", s): r for s, r in train_targets(defended, tmp_path, progress=False).items()},
            **{("tanh", s): r for s, r in train_targets(tanh, tmp_path, progress=False).items()}}
    assert calls == []  # AdvReg has its own trainer; the numba kernel is ReLU-only
    assert not [(k, r) for k, r in runs.items() if isinstance(r, DivergedError)]
    assert all("ensemble_size" not in r.status for r in runs.values())


def test_an_unwritable_results_folder_stops_a_stacked_group_before_it_trains(tmp_path, monkeypatch):
    """A stacked group's models are stored only once all have trained: an unwritable results
    folder is named before the training, not after it (hostile tester, session 8)."""
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking that its results can be written")

    monkeypatch.setattr(experiments, "train_ensemble", no_training)
    blocker = tmp_path / "results" / "digits"
    blocker.parent.mkdir()
    blocker.write_text("a file where the dataset's folder should be")
    with pytest.raises(OSError, match=r"could not write .*digits.*check that it is writable"):
        experiments.train_stacked(configs(TrainConfig(epochs=2, batch_size=64)).values(), tmp_path / "results",
                                  progress=False)


def test_stacked_divergence_is_recorded_as_the_one_by_one_run_records_it(tmp_path, monkeypatch):
    train = TrainConfig(algorithm="sharpreg", lam=1.5, xi=0.3, lr=1e20, epochs=2, batch_size=128)
    targets = configs(train, seeds=(0, 1))
    calls = spy_on_ensembles(monkeypatch)
    stacked = train_targets(targets, tmp_path / "stacked", progress=False)
    assert calls == [[0, 1]]
    for seed, config in targets.items():
        single = try_run_experiment(config, tmp_path / "single", progress=False)
        assert isinstance(stacked[seed], DivergedError) and isinstance(single, DivergedError)
        assert stacked[seed].reason == single.reason and "lr=1e+20" in single.reason
        manifest = json.loads((tmp_path / "stacked" / "digits" / config.key() / "manifest.json").read_text())
        assert manifest["status"] == "diverged" and manifest["files"] == {}


def test_a_diverging_model_does_not_stop_the_others():
    """Per-model divergence in the ensemble: model 1 starts with NaN weights; models 0 and 2
    train exactly as they do without it."""
    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.models import MLP

    d = load_dataset("digits")
    X, y, X_val, y_val = d.X[:300], d.y[:300], d.X[300:400], d.y[300:400]
    config = TrainConfig(epochs=3, batch_size=50, lr=0.05, momentum=0.9, seed=0)
    masks = np.ones((3, 300), bool)
    poisoned = []

    def build():
        model = MLP(64, 10, (16,))
        if len(poisoned) == 1:  # the second model built: seed 1
            with torch.no_grad():
                model[0].weight[0, 0] = float("nan")
        poisoned.append(1)
        return model

    with pytest.raises(FloatingPointError, match="1 of 3 ensemble models diverged"):
        ensemble_module.train_ensemble(build, X, y, masks, config, seeds=[0, 1, 2], backend="numba", progress=False)
    poisoned.clear()
    ens = ensemble_module.train_ensemble(build, X, y, masks, config, seeds=[0, 1, 2], backend="numba",
                                         progress=False, X_val=X_val, y_val=y_val, keep_diverged=True)
    assert ens.diverged[0] is None and ens.diverged[2] is None
    assert ens.diverged[1].startswith("training diverged (mean loss nan) in epoch 1 with sgd, lr=0.05")
    assert ens.histories[1] == [] and ens.best_states[1] is None
    clean = ensemble_module.train_ensemble(lambda: MLP(64, 10, (16,)), X, y, masks[:2], config, seeds=[0, 2],
                                           backend="numba", progress=False, X_val=X_val, y_val=y_val)
    for k, j in ((0, 0), (2, 1)):  # equal up to float32 summation order (K changes the kernel's thread shares)
        assert ens.best_epochs[k] == clean.best_epochs[j]
        for h, g in zip(ens.histories[k], clean.histories[j], strict=True):
            assert h == pytest.approx(g, rel=RTOL, abs=ATOL)
        for name in clean.params:
            torch.testing.assert_close(ens.params[name][k], clean.params[name][j], atol=ATOL, rtol=RTOL)


def test_stacked_targets_benchmark_quick(capsys):
    """benchmarks/stacked_targets.py runs end to end on tiny sizes and finds the two ways equal."""
    import runpy
    from pathlib import Path

    bench = runpy.run_path(str(Path(__file__).resolve().parents[1] / "benchmarks" / "stacked_targets.py"))
    report = bench["main"](["--quick", "--methods", "sgd"])
    assert "one by one" in capsys.readouterr().out
    assert report["sgd"]["max_logit_diff"] < 1e-4 and report["sgd"]["max_flip_share"] == 0
    assert report["sgd"]["same_best_epoch"] == 2 and report["sgd"]["stacked_s"] > 0


# ----------------------------------------------------------------------------- two processes, one group


def _stacked_in_a_process(results: str, markers: str, role: str) -> None:
    """One process (a notebook) that needs the seeds 0-2 of a tiny recipe. Each ensemble it
    trains leaves a file ``<role>-trained``. The first process, once training, waits for the
    second to reach the group; so the second has looked for the targets before any was stored."""
    from pathlib import Path

    import sharpmem_lib.experiments as experiments

    markers = Path(markers)
    real_train, real_group = experiments.train_ensemble, experiments._train_group

    def wait_for(path: Path) -> None:
        for _ in range(1200):  # 120 s at most: a marker the other process writes
            if path.exists():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{path} never appeared")

    def training(*args, seeds=None, **kwargs):
        (markers / f"{role}-trained").write_text(str(list(seeds)))
        if role == "first":
            (markers / "first-training").touch()
            wait_for(markers / "second-in-group")
        return real_train(*args, seeds=seeds, **kwargs)

    def group(*args, **kwargs):
        if role == "second":
            (markers / "second-in-group").touch()  # it found the targets missing
        return real_group(*args, **kwargs)

    experiments.train_ensemble, experiments._train_group = training, group
    train = TrainConfig(epochs=2, batch_size=64, lr=0.05, momentum=0.9)
    targets = {s: ExperimentConfig("digits", "mlp", TrainConfig(**{**train.__dict__, "seed": s}),
                                   model_kwargs={"hidden": (8,)}, device="cpu") for s in (0, 1, 2)}
    runs = experiments.train_targets(targets, results, progress=False)
    assert all(run.status["ensemble_size"] == 3 for run in runs.values())


def test_a_second_process_waits_for_a_stacked_group_then_reads_it(tmp_path):
    """Two notebooks run at once against one results folder both need a stacked group: the
    second waits for the first's lock on the group, then reads its targets instead of training
    them again (hostile tester, session 8: both trained it). The first process trains only
    after the second has found the targets missing, so without the lock both would train."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    markers, results = tmp_path / "markers", tmp_path / "results"
    markers.mkdir()
    first = ctx.Process(target=_stacked_in_a_process, args=(str(results), str(markers), "first"))
    first.start()
    for _ in range(1200):
        if (markers / "first-training").exists() or not first.is_alive():
            break
        time.sleep(0.1)
    assert (markers / "first-training").exists(), "the first process never started training"
    second = ctx.Process(target=_stacked_in_a_process, args=(str(results), str(markers), "second"))
    second.start()
    for process in (first, second):
        process.join(timeout=300)
    assert (first.exitcode, second.exitcode) == (0, 0)
    assert (markers / "second-in-group").exists()  # the second looked before anything was stored
    assert (markers / "first-trained").read_text() == "[0, 1, 2]"
    assert not (markers / "second-trained").exists()  # it waited and read them
    assert not list((results / "digits").glob(".group-*.lock"))  # the lock file is removed after use
