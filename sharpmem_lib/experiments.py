"""Cached experiment artifacts: a config in, a verified entry of the result store out.

``run_experiment(config)`` trains a target model on the members of its dataset's partition
(:mod:`sharpmem_lib.splits`), selecting the best epoch on the validation set, and keeps the
result as an entry of :mod:`sharpmem_lib.store` under ``<results>/<dataset>/<key>/``,
``key`` a hash of the config (not ``device``), the precision the run trains in
(:func:`~sharpmem_lib.train.training_precision`: a GPU's bf16 run is another number than a
CPU's fp32 run) and the store's ``CACHE_VERSION``:

* ``weights.pt``: final and best-validation state dicts;
* ``outputs.npz``: logits of both models on *every* example of the dataset (so any later
  attack or analysis needs no retraining), plus the partition's member/validation masks;
* ``history.json``: per-epoch loss and accuracies;
* ``manifest.json`` (the store's, written last): the config, a SHA-256 of each file, the
  cache version, the git commit that trained it, and the run's metadata.

A run in progress checkpoints to ``<key>.partial/checkpoint.pt``, which the next call
resumes. A run that diverges (non-finite loss, a final training loss above its first
epoch's, or final training accuracy at chance: :func:`divergence`) is recorded as
``diverged`` and raises :class:`~sharpmem_lib.store.DivergedError` (a ``FloatingPointError``)
now and on every later call. Every entry is verified on every read; anything unreadable
or malformed is reported with a warning and recomputed, never used. Notebooks ask for
results; they train only when the store lacks them.

A chapter asks for its targets together (:func:`train_targets`): the missing ones that differ
only by their seed then train as one ensemble on the CPU (:func:`train_stacked`, the numba
kernel of :mod:`sharpmem_lib.mlp_kernel`, issue 16) and are stored one entry per target, under
the same keys and with the same files as :func:`run_experiment` writes.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

import sharpmem_lib
from sharpmem_lib import store
from sharpmem_lib._io import atomic_write, from_json, named_os_error, save_npz, to_json
from sharpmem_lib.data import DATASETS, dataset_fingerprint, load_dataset
from sharpmem_lib.defenses import check_defense, train_with_defense
from sharpmem_lib.ensemble import _kernel_applies, cannot_stack, train_ensemble
from sharpmem_lib.models import MODELS, build_model
from sharpmem_lib.recipes import Recipe, get_recipe, train_config
from sharpmem_lib.splits import SPLITS, make_partition, partitioned_datasets
from sharpmem_lib.store import CorruptArtifactWarning, DivergedError, results_root
from sharpmem_lib.tensors import DEVICES, seed_everything, select_device
from sharpmem_lib.train import TrainConfig, predict_logits, training_precision
from sharpmem_lib.validation import check_choice

__all__ = ["ExperimentConfig", "Artifact", "CorruptArtifactWarning", "DivergedError", "accuracy_table", "divergence",
           "derived_precision", "diverged_runs", "diverged_table", "experiment_config", "results_root",
           "run_experiment", "stack_refusal", "train_stacked", "train_targets", "try_run_experiment"]

FILES = ("weights.pt", "outputs.npz", "history.json")
OUTPUTS = ("logits_final", "logits_best", "member", "validation")
KIND = "target-run"
PARTITIONED = [d for d in DATASETS if d in SPLITS]  # datasets a target model can be trained on


@dataclass(frozen=True)
class ExperimentConfig:
    """One target model: dataset, architecture, training recipe (``train``), and optionally
    a training-time membership-inference defense (``defense`` with ``defense_kwargs``, see
    :mod:`sharpmem_lib.defenses`).

    ``train.seed`` seeds the initialisation, data order and augmentation. ``device`` is not
    part of the cache key, but the precision it implies is (:meth:`precision`): a CPU and a
    GPU share an entry only where they compute in the same precision.
    """

    dataset: str
    model: str
    train: TrainConfig = field(default_factory=TrainConfig)
    model_kwargs: dict = field(default_factory=dict)
    dataset_kwargs: dict = field(default_factory=dict)
    device: str = "auto"
    defense: str = "none"
    defense_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, partitioned_datasets())  # user datasets included
        check_choice("model", self.model, MODELS)
        check_choice("device", self.device, DEVICES)
        check_defense(self.defense, self.defense_kwargs)
        if not isinstance(self.train, TrainConfig):
            raise ValueError(f"train={self.train!r} is not valid; it must be a TrainConfig")

    def to_dict(self) -> dict:
        return _plain(self)

    def describe(self) -> str:
        """Short label: the training recipe, and the defense if any."""
        label = self.train.describe()
        if self.defense != "none":
            label += f"+{self.defense}" + "".join(f",{k}={v}" for k, v in sorted(self.defense_kwargs.items()))
        return label

    def key_config(self) -> dict:
        """What determines the result, as the store keys it: the config without ``device``,
        and a user dataset's content hash (built-in datasets: none, so their keys stay)."""
        content = dataset_fingerprint(self.dataset)
        return {k: v for k, v in self.to_dict().items() if k != "device"} | (
            {"dataset_content": content} if content else {})

    def precision(self) -> str:
        """The precision this config trains in on the device ``device`` resolves to here."""
        return training_precision(self.train, select_device(self.device), self.defense)

    def key(self, precision: str | None = None) -> str:
        """The store key: config (not ``device``), ``precision`` (default :meth:`precision`)
        and the store's cache version."""
        return store.entry_key(KIND, self.key_config(), precision or self.precision())


def experiment_config(recipe: str | Recipe, dataset: str, method: str = "sgd", seed: int = 0, *,
                      defense: str = "none", defense_kwargs: dict | None = None, device: str = "auto",
                      **knobs: float) -> ExperimentConfig:
    """The target that ``recipe`` (:mod:`sharpmem_lib.recipes`) trains on ``dataset`` with
    ``method`` (a key of :data:`~sharpmem_lib.recipes.METHODS`) and ``seed``; ``knobs`` are
    the algorithm knobs (``sam_rho``, ``sharpreg_rho``, ...), of which ``method`` reads its
    own. Every chapter builds its targets here, so equal (recipe settings, dataset, method,
    seed, knobs read) give one config and one cached run."""
    r = get_recipe(recipe)
    return ExperimentConfig(dataset, r.model, train_config(r, method, seed, **knobs), model_kwargs=dict(r.model_kwargs),
                            device=device, defense=defense, defense_kwargs=defense_kwargs or {})


@dataclass
class Artifact:
    """A completed run, read back from its verified store entry. ``status`` holds the run's
    metadata (``best_epoch``, ``input_shape``, ``num_classes``, ``precision``, ...) and the
    entry's provenance (``commit``, ``dirty``, ``cache_version``)."""

    config: ExperimentConfig
    path: Path
    history: list[dict]
    status: dict

    def outputs(self) -> dict[str, np.ndarray]:
        """``logits_final``, ``logits_best`` (n, classes) on every example; ``member``,
        ``validation`` masks."""
        with np.load(self.path / "outputs.npz", allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    def cached_json(self, name: str, compute: Callable[[], Any], *, device: str = "auto") -> Any:
        """A result derived from this run (an expensive attack, a sharpness measure), kept as
        a JSON entry of the store inside the run's folder (``derived/``), keyed by ``name``
        and the precision of the ``device`` it is computed on (:func:`derived_precision`):
        computed once, verified on every read, recomputed (with a warning) if malformed."""
        return store.cached_json("derived", {"run": self.path.name, "name": name}, compute, root=self.path,
                                 namespace="derived", precision=derived_precision(device))

    def model(self, which: str = "best") -> torch.nn.Module:
        """The trained model with its ``best`` (validation) or ``final`` weights, on the CPU."""
        check_choice("which", which, ["best", "final"])
        weights = torch.load(self.path / "weights.pt", map_location="cpu", weights_only=True)
        data_shape, num_classes = tuple(self.status["input_shape"]), self.status["num_classes"]
        model = build_model(self.config.model, data_shape, num_classes, **self.config.model_kwargs)
        model.load_state_dict(weights[which])
        return model


def derived_precision(device: str = "auto") -> str:
    """The precision a derivation (attack, sharpness) runs in on ``device``, for its cache
    key: ``fp32`` on the CPU; ``fp32-<device type>`` elsewhere (float32 under torch's default
    math settings there, where cuDNN may use TF32: not the same numbers as the CPU's)."""
    kind = select_device(device).type
    return "fp32" if kind == "cpu" else f"fp32-{kind}"


def _plain(config) -> dict:
    """A config dataclass as JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(asdict(config)))


def _key(content: dict, kind: str = "config", precision: str = "fp32") -> str:
    """A store key for ``content`` (see :func:`sharpmem_lib.store.entry_key`)."""
    return store.entry_key(kind, content, precision)


def divergence(history: list[dict], train_accuracy: float, chance: float, n_train: int) -> str | None:
    """Why a finished run counts as diverged, or ``None`` if it does not (issue 18 §7).

    A run diverged if its training loss ended non-finite or above where it started (the
    last epoch's mean training loss exceeds the first epoch's, the earliest loss a run
    records), or if its final model's accuracy on its own training set is at chance: not
    above ``chance`` (the majority class's share of the ``n_train`` training labels) by
    more than three binomial standard errors. Such runs are recorded like a NaN run.
    """
    losses = [h["train_loss"] for h in history]
    if losses and not math.isfinite(losses[-1]):
        return f"training diverged: final training loss {losses[-1]}"
    if len(losses) > 1 and losses[-1] > losses[0]:
        return (f"training diverged: the final training loss {losses[-1]:.4g} exceeds the first epoch's "
                f"{losses[0]:.4g}")
    margin = 3.0 * math.sqrt(chance * (1.0 - chance) / max(n_train, 1))
    if not train_accuracy > chance + margin:
        return (f"training diverged: the final model's training accuracy {train_accuracy:.3f} is at chance "
                f"(majority class {chance:.3f} of {n_train} training points, +3 s.e. = {chance + margin:.3f})")
    return None


def _write_json(path: Path, obj) -> None:
    text = to_json(obj, indent=2, sort_keys=True)  # strict JSON (a NaN validation accuracy is written explicitly)
    atomic_write(path, lambda p: p.write_text(text))


def _load_artifact(config: ExperimentConfig, entry: store.Entry) -> Artifact:
    """The artifact of a store entry, after checking every file's format (the store has
    checked the checksums): raises on anything malformed, so the store recomputes it."""
    history = from_json(entry.file("history.json").read_text())
    if not isinstance(history, list) or not all(isinstance(h, dict) and "train_loss" in h for h in history):
        raise ValueError("history.json is not a list of epoch records")
    with np.load(entry.file("outputs.npz"), allow_pickle=False) as f:
        outputs = {k: f[k] for k in OUTPUTS}
    n, classes = outputs["logits_final"].shape
    if (outputs["logits_best"].shape != (n, classes) or outputs["member"].shape != (n,)
            or outputs["validation"].shape != (n,) or outputs["member"].dtype != bool):
        raise ValueError(f"outputs.npz has inconsistent shapes {[v.shape for v in outputs.values()]}")
    weights = torch.load(entry.file("weights.pt"), map_location="cpu", weights_only=True)
    if not isinstance(weights, dict) or not {"final", "best"} <= set(weights):
        raise ValueError("weights.pt does not hold the 'final' and 'best' state dicts")
    meta = entry.meta
    if meta.get("num_classes") != classes or not isinstance(meta.get("input_shape"), list):
        raise ValueError(f"the manifest's metadata {meta} does not match outputs.npz")
    status = {**meta, "status": "complete", **{k: entry.manifest[k] for k in ("commit", "dirty", "cache_version")}}
    return Artifact(config, entry.path, history, status)


def _write_run(staging: Path, config: ExperimentConfig, data, part, final: torch.nn.Module,
               best: Callable[[], torch.nn.Module], best_state: dict, best_epoch: int | None, history: list[dict],
               wall_time_s: float, device: torch.device, precision: str, **meta) -> dict:
    """Write a finished run's files into ``staging`` and return its manifest metadata, or
    raise :class:`DivergedError` if it diverged (:func:`divergence`). One writer for the
    one-by-one and the stacked trainers, so that their entries hold the same things.
    ``best()`` returns the best-validation model (called only for a run that did not diverge)."""
    member = np.zeros(len(data), bool)
    member[part.members] = True
    validation = np.zeros(len(data), bool)
    validation[part.validation] = True
    logits_final = predict_logits(final, data.X).numpy()
    y_members = np.asarray(data.y)[part.members]
    chance = float(np.bincount(y_members).max() / len(y_members))
    train_accuracy = float((logits_final[part.members].argmax(1) == y_members).mean())
    reason = divergence(history, train_accuracy, chance, len(y_members))
    if reason is not None:
        raise DivergedError(f"{reason}; {config.describe()}, lr={config.train.lr}")
    weights = {"final": {k: v.cpu() for k, v in final.state_dict().items()}, "best": best_state}
    atomic_write(staging / "weights.pt", lambda p: torch.save(weights, p))
    outputs = {"logits_final": logits_final, "logits_best": predict_logits(best(), data.X).numpy(),
               "member": member, "validation": validation}
    save_npz(staging / "outputs.npz", outputs)
    _write_json(staging / "history.json", history)
    return {"best_epoch": best_epoch, "wall_time_s": wall_time_s, "device": str(device),
            "precision": precision, "torch": torch.__version__, "library_version": sharpmem_lib.__version__,
            "input_shape": list(data.X.shape[1:]), "num_classes": data.num_classes,
            "train_accuracy": train_accuracy, **meta}


def run_experiment(
    config: ExperimentConfig,
    results_dir: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    progress: bool = True,
    retry_diverged: bool = False,
    on_epoch_end: Callable[[int], None] | None = None,
) -> Artifact:
    """Return the stored artifact of ``config``, training (or resuming) only if needed.

    Raises :class:`~sharpmem_lib.store.DivergedError` (a ``FloatingPointError``) if the run
    diverges (:func:`divergence`), now or in a recorded earlier attempt
    (``retry_diverged=True`` trains again). A second process asking for the same run while
    it trains waits for it, then reads it.
    """
    device = select_device(config.device)
    precision = training_precision(config.train, device, config.defense)

    def compute(staging: Path, work: Path) -> dict:
        data = load_dataset(config.dataset, data_dir=data_dir, **config.dataset_kwargs)
        part = make_partition(config.dataset, data)
        seed_everything(config.train.seed)
        build = lambda: build_model(config.model, data.X.shape[1:], data.num_classes, **config.model_kwargs)  # noqa: E731
        model = build().to(device)
        checkpoint = work / "checkpoint.pt"
        if checkpoint.exists():
            try:
                torch.load(checkpoint, map_location="cpu", weights_only=True)
            except Exception as err:  # truncated or garbled: start over rather than trust it
                warnings.warn(f"checkpoint {checkpoint} is unreadable ({err}); restarting the run",
                              CorruptArtifactWarning, stacklevel=4)
                checkpoint.unlink()
        start = time.perf_counter()
        extra = {"on_epoch_end": on_epoch_end}
        if config.defense in ("none", "advreg") and os.environ.get("SHARPMEM_COMPILE") == "1":
            extra["compile_model"] = True  # opt-in: benchmarks/gpu_check.py measures whether it helps
        result = train_with_defense(
            config.defense, model, build, data.X[part.members], data.y[part.members], config.train,
            X_val=data.X[part.validation], y_val=data.y[part.validation],
            checkpoint_path=checkpoint,
            progress=progress, desc=f"{config.dataset}/{config.model} {config.describe()}",
            **extra, **config.defense_kwargs,
        )
        return _write_run(staging, config, data, part, result.model, result.best_model, result.best_state,
                          result.best_epoch, result.history, time.perf_counter() - start, device, precision)

    return store.get_or_compute(KIND, config.key_config(), compute, lambda entry: _load_artifact(config, entry),
                                root=results_root(results_dir), namespace=config.dataset, precision=precision,
                                retry_diverged=retry_diverged)


def try_run_experiment(config: ExperimentConfig, results_dir: str | Path | None = None,
                       **kwargs) -> Artifact | DivergedError:
    """:func:`run_experiment`, but a diverged run is returned (its
    :class:`~sharpmem_lib.store.DivergedError`, with ``reason``) instead of raised, so that a
    chapter can show it beside the runs that completed (e.g. :func:`accuracy_table`)."""
    try:
        return run_experiment(config, results_dir, **kwargs)
    except DivergedError as err:
        return err


#: The fewest missing targets of one recipe (equal but for the seed) that :func:`train_stacked`
#: trains as one ensemble. 1: a lone stackable target also trains through the kernel, since a
#: stacked model's numbers do not depend on the stack it is in (foreach SGD and per-row norms,
#: :func:`~sharpmem_lib.optim.make_optimizer`), so every stackable target is a function of its
#: config alone, whichever chapter or rerun trains it.
MIN_STACK = 1


def stack_refusal(config: ExperimentConfig) -> str | None:
    """None if ``config``'s target may train stacked with targets that differ from it only by
    the seed (:func:`train_stacked`), else why it trains one by one. The architecture is
    checked later, on the built model (a ReLU MLP without buffers: the numba kernel of
    :mod:`sharpmem_lib.mlp_kernel`)."""
    if os.environ.get("SHARPMEM_STACK", "").strip().lower() in ("0", "false", "off", "no"):
        return "SHARPMEM_STACK turns stacking off"
    if config.defense != "none":
        return f"defense={config.defense!r} trains through its own trainer"
    device = select_device(config.device)
    if device.type != "cpu":
        return f"on {device} targets train one by one (the stacked path is the CPU's numba kernel)"
    if os.environ.get("SHARPMEM_COMPILE") == "1":
        return "SHARPMEM_COMPILE=1 asks for torch.compile'd one-by-one runs"
    if config.train.augment:
        return "augment=True is not supported by the ensemble trainer"
    return None


def _group_key(config: ExperimentConfig) -> str:
    """What targets trained as one ensemble share: the whole key config but the seed."""
    content = config.key_config()
    content["train"] = {k: v for k, v in content["train"].items() if k != "seed"}
    return json.dumps(content, sort_keys=True)


def train_stacked(configs: Iterable[ExperimentConfig], results_dir: str | Path | None = None, *,
                  data_dir: str | Path | None = None, progress: bool = True, retry_diverged: bool = False,
                  on_epoch_end: Callable[[int], None] | None = None) -> list[list[ExperimentConfig]]:
    """Train the targets of ``configs`` that the store lacks, those that differ only by their
    seed as one ensemble (:func:`~sharpmem_lib.ensemble.train_ensemble`, the numba kernel),
    and store each as its own ordinary target run under its own key (:meth:`ExperimentConfig.key`),
    so that :func:`run_experiment` then reads it like a run it trained itself.

    Model k of the ensemble is the run ``train_classifier`` makes of its config: the same
    initialisation, data order, optimizer, SWA average, per-epoch history, best-validation
    weights and epoch, divergence rule (:func:`divergence`; a model whose loss turns
    non-finite is recorded as diverged with ``train_classifier``'s message, the others train
    on), and the same files written by the same code. Its arithmetic differs only in float32
    summation order (the kernel's BLAS products against torch's): on short runs the stored
    numbers agree to about 1e-5 (tests/test_experiments_stacked.py). Long runs amplify such
    rounding differences, as they amplify any: on fashion_mlp (30 epochs) one ulp added to one
    initial weight of an ordinary one-by-one run moves its weights by up to 0.8 and changes
    the class of 4.6 % of the examples, and the stacked run of that seed differs from the
    one-by-one run by as much (10 % of the examples at most, held-out accuracy within about
    2 points over 6 SGD and 6 SAM seeds: ``benchmarks/stacked_targets.py``). So a stacked
    target is a run of the same seeded procedure, not the one-by-one run's numbers. Its
    numbers do not depend on which targets were missing with it: model k of a stack of one,
    two or four is the same bit for bit (foreach SGD, per-row norms; tested), so a target is
    a function of its config whichever chapter trains it. ``SHARPMEM_STACK=0`` turns stacking
    off (every target one by one, with checkpoints).

    Only what may stack is stacked (:func:`stack_refusal`: no defense, the CPU, no
    augmentation; a ReLU MLP without buffers; at least :data:`MIN_STACK` missing targets of
    one recipe). Targets with an interrupted one-by-one run (a ``.partial`` checkpoint) are
    left to resume it; ``on_epoch_end`` (a per-run hook) turns stacking off. Returns the
    groups trained; everything else is left for :func:`run_experiment`.
    """
    if on_epoch_end is not None:
        return []
    root = results_root(results_dir)
    groups: dict[str, dict[str, ExperimentConfig]] = {}
    for config in configs:
        if stack_refusal(config) is not None:
            continue
        if not _needs_training(config, root):
            continue  # stored (run_experiment reads and verifies it), or an interrupted run to resume
        groups.setdefault(_group_key(config), {})[config.key()] = config
    trained = []
    for members in groups.values():
        batch = list(members.values())
        if len(batch) >= MIN_STACK:
            done = _train_group(batch, root, data_dir, progress, retry_diverged)
            if done:
                trained.append(done)
    return trained


def _needs_training(config: ExperimentConfig, root: Path) -> bool:
    """Neither stored (a manifest: :func:`run_experiment` reads and verifies it) nor an
    interrupted one-by-one run (a ``.partial`` checkpoint: left to resume)."""
    key = config.key()
    folder = root / config.dataset / key
    return not ((folder / store.MANIFEST).exists() or folder.with_name(f"{key}.partial").exists())


def _check_writable(folder: Path) -> None:
    """Raise a named ``OSError`` unless files can be created in ``folder`` (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as err:
        raise named_os_error(err, folder) from err


def _train_group(configs: list[ExperimentConfig], root: Path, data_dir, progress: bool,
                 retry_diverged: bool) -> list[ExperimentConfig]:
    """Train ``configs`` (equal but for the seed) as one ensemble and store each model; returns
    the configs it trained: none if the model cannot take the numba kernel, or if another
    process stored them all meanwhile.

    The group holds the store's lock ``.group-<hash>.lock`` (:func:`sharpmem_lib.store.lock`)
    from before its training until its last model is stored, and looks again, under the lock,
    at which of its targets are still missing: a second process (two notebooks against one
    results folder) that needs the same group waits, then trains only what is still missing
    (nothing, usually) and reads the rest. A model's numbers do not depend on the stack it
    trains in (tested), so a smaller stack gives the same models.
    """
    first = configs[0]
    data = load_dataset(first.dataset, data_dir=data_dir, **first.dataset_kwargs)
    part = make_partition(first.dataset, data)
    build = lambda: build_model(first.model, data.X.shape[1:], data.num_classes, **first.model_kwargs)  # noqa: E731
    device = torch.device("cpu")
    probe = build()
    if cannot_stack(probe, first.train) or _kernel_applies(probe, device):
        return []
    precision = training_precision(first.train, device, first.defense)
    _check_writable(root / first.dataset)  # its models are stored only once all have trained: fail first
    group = "group-" + store.entry_key("target-group", json.loads(_group_key(first)), precision)
    with store.lock(group, root=root, namespace=first.dataset):
        configs = [c for c in configs if _needs_training(c, root)]  # another process may have stored them
        if configs:
            _train_and_store(configs, root, data, part, build, device, precision, progress, retry_diverged)
    return configs


def _train_and_store(configs: list[ExperimentConfig], root: Path, data, part, build: Callable[[], torch.nn.Module],
                     device: torch.device, precision: str, progress: bool, retry_diverged: bool) -> None:
    """:func:`_train_group`'s work under its lock: one ensemble, then one store entry per model."""
    first = configs[0]
    y_members = data.y[part.members]
    start = time.perf_counter()
    ensemble = train_ensemble(build, data.X[part.members], y_members, np.ones((len(configs), len(y_members)), bool),
                              first.train, seeds=[c.train.seed for c in configs], device=device, backend="numba",
                              progress=progress, precision=precision, X_val=data.X[part.validation],
                              y_val=data.y[part.validation], keep_diverged=True,
                              desc=f"{first.dataset}/{first.model} {first.describe()} x{len(configs)} seeds")
    wall = (time.perf_counter() - start) / len(configs)  # the ensemble's time, shared equally
    for k, config in enumerate(configs):
        def compute(staging: Path, work: Path, k: int = k, config: ExperimentConfig = config) -> dict:
            if ensemble.diverged[k] is not None:
                raise FloatingPointError(ensemble.diverged[k])  # recorded as train_classifier's run would be

            def best() -> torch.nn.Module:
                model = ensemble.model(k)
                model.load_state_dict(ensemble.best_states[k])
                return model

            return _write_run(staging, config, data, part, ensemble.model(k), best, ensemble.best_states[k],
                              ensemble.best_epochs[k], ensemble.histories[k], wall, device, precision,
                              ensemble_size=len(configs))

        try:  # another process may have stored it meanwhile: then that entry is kept
            store.get_or_compute(KIND, config.key_config(), compute,
                                 lambda entry, config=config: _load_artifact(config, entry), root=root,
                                 namespace=config.dataset, precision=precision, retry_diverged=retry_diverged)
        except DivergedError:
            pass  # recorded; the caller reads it back as any diverged run


def train_targets(configs: Mapping[Any, ExperimentConfig], results_dir: str | Path | None = None, *,
                  stack: bool = True, **kwargs) -> dict[Any, Artifact | DivergedError]:
    """Every target of a chapter, key -> its :class:`Artifact` or, for a run that diverged,
    its :class:`~sharpmem_lib.store.DivergedError` (:func:`try_run_experiment`): one diverged
    target never stops a chapter; it is shown with its status and left out of the paired
    tests (:func:`diverged_runs`). Missing targets that differ only by their seed train as
    one ensemble first (:func:`train_stacked`; ``stack=False``: all one by one); the store
    keys are the same either way."""
    if stack:
        train_stacked(configs.values(), results_dir, **kwargs)
    return {key: try_run_experiment(config, results_dir, **kwargs) for key, config in configs.items()}


def diverged_runs(runs: Mapping[Any, Artifact | DivergedError]) -> dict[Any, str]:
    """key -> the reason, for each run of ``runs`` (:func:`train_targets`) that diverged."""
    return {key: run.reason for key, run in runs.items() if isinstance(run, DivergedError)}


def diverged_table(runs: Mapping[Any, Artifact | DivergedError]):
    """The runs of ``runs`` that diverged, one row each (``run``, ``status``: ``diverged:
    <reason>``), for a chapter to show beside its results; empty when none did."""
    import pandas as pd

    return pd.DataFrame([{"run": str(key), "status": f"diverged: {reason}"}
                         for key, reason in diverged_runs(runs).items()], columns=["run", "status"]).set_index("run")


def accuracy_table(artifacts: dict[str, Artifact | DivergedError], data_dir: str | Path | None = None):
    """Accuracy of each run's final and best-validation model on the members (train), the
    validation set, and the non-members (held out), one row per (run, model); ``status``
    says ``complete``, or ``diverged: <reason>`` for a run given as its
    :class:`~sharpmem_lib.store.DivergedError` (see :func:`try_run_experiment`; NaN
    accuracies: it is shown, not dropped)."""
    import pandas as pd

    rows = []
    labels: dict[str, np.ndarray] = {}
    for label, art in artifacts.items():
        if isinstance(art, DivergedError):
            rows += [{"run": label, "weights": which, "train acc": np.nan, "validation acc": np.nan,
                      "held-out acc": np.nan, "epoch": None, "status": f"diverged: {art.reason}"}
                     for which in ("final", "best")]
            continue
        key = json.dumps([art.config.dataset, art.config.dataset_kwargs], sort_keys=True)
        if key not in labels:
            labels[key] = load_dataset(art.config.dataset, data_dir=data_dir, **art.config.dataset_kwargs).y
        y, out = labels[key], art.outputs()
        held_out = ~out["member"] & ~out["validation"]
        for which in ("final", "best"):
            correct = out[f"logits_{which}"].argmax(1) == y
            rows.append({"run": label, "weights": which, "train acc": correct[out["member"]].mean(),
                         "validation acc": correct[out["validation"]].mean(),
                         "held-out acc": correct[held_out].mean(),
                         "epoch": art.status["best_epoch"] if which == "best" else len(art.history),
                         "status": "complete"})
    return pd.DataFrame(rows).set_index(["run", "weights"])
