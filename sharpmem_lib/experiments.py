"""Cached experiment artifacts: a config in, a folder of results out.

``run_experiment(config)`` trains a target model on the members of its dataset's partition
(:mod:`sharpmem_lib.splits`), selecting the best epoch on the validation set, and stores
under ``<results>/<dataset>/<key>/``, ``key`` a hash of the config and library version:

* ``config.json``: the config;
* ``weights.pt``: final and best-validation state dicts;
* ``outputs.npz``: logits of both models on *every* example of the dataset (so any later
  attack or analysis needs no retraining), plus the partition's member/validation masks;
* ``history.json``: per-epoch loss and accuracies;
* ``status.json``, written last: ``complete`` with a SHA-256 of each file, or ``diverged``
  with the error. A folder without it holds a run in progress (``checkpoint.pt``), which
  the next call resumes.

Every file is written to a temporary name and renamed, so a crash never leaves a
half-written file under a final name; a file whose checksum no longer matches is reported
with a warning and the run recomputed, never silently used. Notebooks ask for results;
they train only when the cache lacks them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import sharpmem_lib
from sharpmem_lib._io import atomic_write, save_npz
from sharpmem_lib.data import DATASETS, load_dataset
from sharpmem_lib.defenses import check_defense, train_with_defense
from sharpmem_lib.models import MODELS, build_model
from sharpmem_lib.splits import SPLITS, make_partition
from sharpmem_lib.train import DEVICES, TrainConfig, predict_logits, seed_everything, select_device
from sharpmem_lib.validation import check_choice

__all__ = ["ExperimentConfig", "Artifact", "CorruptArtifactWarning", "accuracy_table", "results_root",
           "run_experiment"]

FILES = ("config.json", "weights.pt", "outputs.npz", "history.json")
PARTITIONED = [d for d in DATASETS if d in SPLITS]  # datasets a target model can be trained on


class CorruptArtifactWarning(UserWarning):
    """A cached artifact failed its checksum or could not be read, and is recomputed."""


@dataclass(frozen=True)
class ExperimentConfig:
    """One target model: dataset, architecture, training recipe (``train``), and optionally
    a training-time membership-inference defense (``defense`` with ``defense_kwargs``, see
    :mod:`sharpmem_lib.defenses`).

    ``train.seed`` seeds the initialisation, data order and augmentation. ``device`` is not
    part of the cache key (the same config computed on a GPU serves a CPU reader).
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
        check_choice("dataset", self.dataset, PARTITIONED)
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

    def key(self) -> str:
        """Hash of everything that determines the result (not ``device``), and of the version."""
        return _key({k: v for k, v in self.to_dict().items() if k != "device"})


@dataclass
class Artifact:
    """A completed run, read back from its folder."""

    config: ExperimentConfig
    path: Path
    history: list[dict]
    status: dict

    def outputs(self) -> dict[str, np.ndarray]:
        """``logits_final``, ``logits_best`` (n, classes) on every example; ``member``,
        ``validation`` masks."""
        with np.load(self.path / "outputs.npz") as f:
            return {k: f[k] for k in f.files}

    def cached_json(self, name: str, compute: Callable[[], Any]) -> Any:
        """A result derived from this run (an expensive attack, a sharpness measure), kept as
        JSON in the run's folder under ``name``: computed once, recomputed if unreadable."""
        path = self.path / name
        if path.exists():
            try:
                return json.loads(path.read_text())
            except ValueError:
                path.unlink()
        value = compute()
        atomic_write(path, lambda p: p.write_text(json.dumps(value)))
        return value

    def model(self, which: str = "best") -> torch.nn.Module:
        """The trained model with its ``best`` (validation) or ``final`` weights, on the CPU."""
        check_choice("which", which, ["best", "final"])
        weights = torch.load(self.path / "weights.pt", map_location="cpu", weights_only=True)
        data_shape, num_classes = tuple(self.status["input_shape"]), self.status["num_classes"]
        model = build_model(self.config.model, data_shape, num_classes, **self.config.model_kwargs)
        model.load_state_dict(weights[which])
        return model


def _plain(config) -> dict:
    """A config dataclass as JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(asdict(config)))


def _key(content: dict) -> str:
    """Cache key: a hash of a config's content and of the library version."""
    blob = json.dumps({"config": content, "version": sharpmem_lib.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def results_root(results_dir: str | Path | None = None) -> Path:
    """``results_dir``, else ``$SHARPMEM_RESULTS``, else ``./results``."""
    return Path(results_dir or os.environ.get("SHARPMEM_RESULTS") or "results")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True)))


def _load_complete(config: ExperimentConfig, folder: Path) -> Artifact | None:
    """The artifact if ``folder`` holds a complete, intact run; ``None`` to (re)compute.

    Raises the recorded ``FloatingPointError`` for a run that diverged.
    """
    status_path = folder / "status.json"
    if not status_path.exists():
        return None
    try:
        status = json.loads(status_path.read_text())
        if status["status"] == "diverged":
            raise FloatingPointError(f"recorded in {folder}: {status['error']}")
        bad = [name for name in FILES if _sha256(folder / name) != status["sha256"][name]]
        if bad:
            raise ValueError(f"checksum mismatch in {bad}")
        history = json.loads((folder / "history.json").read_text())
    except FloatingPointError:
        raise
    except (OSError, ValueError, KeyError) as err:
        warnings.warn(f"cached artifact {folder} is corrupt ({err}); recomputing it", CorruptArtifactWarning,
                      stacklevel=3)
        shutil.rmtree(folder)
        return None
    return Artifact(config, folder, history, status)


def run_experiment(
    config: ExperimentConfig,
    results_dir: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    progress: bool = True,
    retry_diverged: bool = False,
    on_epoch_end: Callable[[int], None] | None = None,
) -> Artifact:
    """Return the cached artifact of ``config``, training (or resuming) only if needed.

    Raises ``FloatingPointError`` if the run diverges (now or in a recorded earlier
    attempt; ``retry_diverged=True`` trains again).
    """
    folder = results_root(results_dir) / config.dataset / config.key()
    if retry_diverged and (folder / "status.json").exists():
        if json.loads((folder / "status.json").read_text()).get("status") == "diverged":
            shutil.rmtree(folder)
    artifact = _load_complete(config, folder)
    if artifact is not None:
        return artifact

    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "config.json", config.to_dict())
    data = load_dataset(config.dataset, data_dir=data_dir, **config.dataset_kwargs)
    part = make_partition(config.dataset, data)
    device = select_device(config.device)
    seed_everything(config.train.seed)
    build = lambda: build_model(config.model, data.X.shape[1:], data.num_classes, **config.model_kwargs)  # noqa: E731
    model = build().to(device)
    if device.type == "cuda" and data.X.ndim == 4:
        model = model.to(memory_format=torch.channels_last)

    checkpoint = folder / "checkpoint.pt"
    if checkpoint.exists():
        try:
            torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated or garbled: start over rather than trust it
            warnings.warn(f"checkpoint {checkpoint} is unreadable ({err}); restarting the run",
                          CorruptArtifactWarning, stacklevel=2)
            checkpoint.unlink()
    start = time.perf_counter()
    try:
        extra = {"on_epoch_end": on_epoch_end}
        if config.defense in ("none", "advreg") and os.environ.get("SHARPMEM_COMPILE") == "1":
            extra["compile_model"] = True  # opt-in: see benchmarks/gpu_throughput.py for whether it helps
        result = train_with_defense(
            config.defense, model, build, data.X[part.members], data.y[part.members], config.train,
            X_val=data.X[part.validation], y_val=data.y[part.validation],
            checkpoint_path=checkpoint,
            progress=progress, desc=f"{config.dataset}/{config.model} {config.describe()}",
            **extra, **config.defense_kwargs,
        )
    except FloatingPointError as err:
        _write_json(folder / "status.json", {"status": "diverged", "error": str(err),
                                             "library_version": sharpmem_lib.__version__})
        checkpoint.unlink(missing_ok=True)
        raise

    weights = {"final": {k: v.cpu() for k, v in result.model.state_dict().items()}, "best": result.best_state}
    atomic_write(folder / "weights.pt", lambda p: torch.save(weights, p))
    best = result.best_model()
    member = np.zeros(len(data), bool)
    member[part.members] = True
    validation = np.zeros(len(data), bool)
    validation[part.validation] = True
    outputs = {"logits_final": predict_logits(result.model, data.X).numpy(),
               "logits_best": predict_logits(best, data.X).numpy(), "member": member, "validation": validation}
    save_npz(folder / "outputs.npz", outputs)
    _write_json(folder / "history.json", result.history)
    status = {
        "status": "complete", "sha256": {name: _sha256(folder / name) for name in FILES},
        "best_epoch": result.best_epoch, "wall_time_s": time.perf_counter() - start, "device": str(device),
        "library_version": sharpmem_lib.__version__, "torch": torch.__version__,
        "input_shape": list(data.X.shape[1:]), "num_classes": data.num_classes,
    }
    _write_json(folder / "status.json", status)
    checkpoint.unlink(missing_ok=True)
    return Artifact(config, folder, result.history, status)


def accuracy_table(artifacts: dict[str, Artifact], data_dir: str | Path | None = None):
    """Accuracy of each run's final and best-validation model on the members (train), the
    validation set, and the non-members (held out), one row per (run, model)."""
    import pandas as pd

    rows = []
    labels: dict[str, np.ndarray] = {}
    for label, art in artifacts.items():
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
                         "epoch": art.status["best_epoch"] if which == "best" else len(art.history)})
    return pd.DataFrame(rows).set_index(["run", "weights"])
