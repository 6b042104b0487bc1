"""The subset models behind Feldman & Zhang's estimator (paper §3.2): train them, shard them
over machines, merge the shards, cache the result.

:mod:`sharpmem_lib.memorization` holds the equations (eqs. 1-3) as pure functions of two
arrays: ``masks[m, i]`` (model m trained on point i) and ``correct[m, j]`` (model m
classifies point j correctly). This module produces those arrays: model k of ``n_models``
trains on the random subset ``subset_masks(...)[k]`` with training seed ``seed + k``,
whatever the sharding, so merged shards equal one run.

``python -m sharpmem_lib.subsampling shard|merge`` is the command line for a cluster: one
shard per task (e.g. a SLURM job array), then one merge. Every shard records what defines it
(:class:`ShardInfo`: the run's key, dataset, ``n_models``, ``n_shards``, its index and the
store's cache version), and :func:`merge_runs` refuses shards that do not make up exactly one
run: a mismatch in any of those fields, the same shard twice, or a missing shard, naming the
file and the field.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
from tqdm.auto import tqdm

from sharpmem_lib import store
from sharpmem_lib._io import save_npz
from sharpmem_lib.attacks import logit_confidence
from sharpmem_lib.data import Arrays, dataset_fingerprint, load_dataset
from sharpmem_lib.ensemble import cannot_stack, subset_masks, subset_size, train_ensemble
from sharpmem_lib.experiments import _plain
from sharpmem_lib.memorization import Estimate, influence_scores, memorization_scores
from sharpmem_lib.models import MODELS, build_model
from sharpmem_lib.splits import Partition, make_partition, partitioned_datasets
from sharpmem_lib.store import results_root
from sharpmem_lib.tensors import DEVICES, seed_everything, select_device
from sharpmem_lib.train import TrainConfig, predict_logits, train_classifier, training_precision
from sharpmem_lib.validation import check_choice, check_fraction, check_positive

__all__ = [
    "ShardInfo",
    "check_shard",
    "SubsamplingConfig",
    "SubsamplingJob",
    "SubsamplingRuns",
    "load_shard",
    "main",
    "merge_runs",
    "run_subsampling",
    "run_subsampling_experiment",
    "run_subsampling_shard",
    "subsampling_job",
]

FIELDS = ("model_ids", "masks", "correct_train", "correct_test", "confidence_train")


@dataclass(frozen=True)
class ShardInfo:
    """What defines a shard: the run it belongs to (``key``, a hash of everything that
    determines the models' results, ``dataset``, ``n_models``, the store's ``cache_version``
    of the code that trained it) and its place in that run (shard ``shard`` of ``n_shards``:
    model ids ``shard::n_shards`` of ``range(n_models)``). A merged or unsharded run is
    shard 0 of 1."""

    key: str
    dataset: str
    n_models: int
    n_shards: int
    shard: int
    cache_version: int

    # the order merge_runs checks them in: the most specific explanation of a mismatch first
    # (another dataset, n_models or cache version also changes the key)
    RUN_FIELDS = ("cache_version", "dataset", "n_models", "n_shards", "key")

    def to_json(self) -> str:
        return json.dumps({name: getattr(self, name) for name in self.__dataclass_fields__}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ShardInfo":
        fields = json.loads(text)
        types = {"key": str, "dataset": str, "n_models": int, "n_shards": int, "shard": int, "cache_version": int}
        if not isinstance(fields, dict) or set(fields) != set(types) or any(
                type(fields[name]) is not kind for name, kind in types.items()):
            raise ValueError(f"malformed shard record {text!r}")
        return cls(**fields)


@dataclass
class SubsamplingRuns:
    """What the estimator needs from M subset-trained models: for each model (``model_ids``)
    its training mask, its correctness on every training and every test point, and its
    logit-scaled confidence on every training point (for LiRA, :mod:`sharpmem_lib.attacks`);
    ``info`` says which run and which shard of it these models are."""

    model_ids: np.ndarray
    masks: np.ndarray
    correct_train: np.ndarray
    correct_test: np.ndarray
    confidence_train: np.ndarray
    info: ShardInfo | None = None

    def save(self, path: str | Path) -> None:
        """Write atomically (a temporary file, then a rename), with the shard record."""
        arrays = {name: getattr(self, name) for name in FIELDS}
        if self.info is not None:
            arrays["shard_info"] = np.array(self.info.to_json())
        save_npz(path, arrays, compressed=True)

    @classmethod
    def load(cls, path: str | Path) -> "SubsamplingRuns":
        with np.load(path, allow_pickle=False) as f:
            info = ShardInfo.from_json(str(f["shard_info"])) if "shard_info" in f.files else None
            return cls(*(f[name] for name in FIELDS), info=info)

    def memorization(self) -> Estimate:
        """mem(i) of eq. 1 for every training point."""
        return memorization_scores(self.masks, self.correct_train)

    def influence(self) -> Estimate:
        """infl(i, j) of eq. 2, (test x train)."""
        return influence_scores(self.masks, self.correct_test)


def load_shard(path: str | Path) -> SubsamplingRuns:
    """A shard file, or ``ValueError`` naming the file if it cannot be read."""
    try:
        return SubsamplingRuns.load(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:  # a truncated copy: BadZipFile
        raise ValueError(f"{path}: not a readable shard file ({type(err).__name__}: {err})") from err


def _check_one_run(parts: Sequence[SubsamplingRuns], names: Sequence[str]) -> ShardInfo:
    """Raise ``ValueError`` naming the file and the field unless ``parts`` are every shard of
    one run, once each; return that run's record as one shard (0 of 1)."""
    for part, name in zip(parts, names):
        if part.info is None:
            raise ValueError(f"{name}: no shard record (field 'shard_info'): it was written by an older version "
                             "of sharpmem, which did not record which run a shard belongs to; train it again")
    infos = [p.info for p in parts]
    for field_name in ShardInfo.RUN_FIELDS:
        values = [getattr(info, field_name) for info in infos]
        common = Counter(values).most_common(1)[0][0]
        odd = [f"{name} has {field_name}={v!r}" for name, v in zip(names, values) if v != common]
        if odd:
            raise ValueError(f"shards from different runs: {'; '.join(odd)}, but "
                             f"{values.count(common)} other(s) have {field_name}={common!r}")
    n_shards = infos[0].n_shards
    seen: dict[int, str] = {}
    for info, name in zip(infos, names):
        if info.shard in seen:
            raise ValueError(f"{seen[info.shard]} and {name} are both shard {info.shard} of {n_shards} "
                             "(field 'shard'): a duplicate; the shards overlap")
        seen[info.shard] = name
    missing = sorted(set(range(n_shards)) - set(seen))
    if missing:
        raise ValueError(f"shard(s) {missing} of {n_shards} missing (field 'shard'): got "
                         + ", ".join(f"{name} (shard {info.shard})" for info, name in zip(infos, names)))
    width = Counter(p.masks.shape[1] for p in parts).most_common(1)[0][0]
    for part, info, name in zip(parts, infos, names):
        expected = np.arange(info.n_models)[info.shard :: n_shards]
        if not np.array_equal(part.model_ids, expected):
            raise ValueError(f"{name}: model_ids are not those of shard {info.shard} of {n_shards} "
                             f"of {info.n_models} models")
        if part.masks.shape[1] != width:
            raise ValueError(f"{name}: masks cover {part.masks.shape[1]} training points, the other shards {width}")
    return replace(infos[0], n_shards=1, shard=0)


def merge_runs(parts: Sequence[SubsamplingRuns], names: Sequence[str] | None = None) -> SubsamplingRuns:
    """Concatenate shards in model order, after checking that they are every shard of one
    run, once each (``ValueError`` naming the file, ``names[i]`` for ``parts[i]``, and the
    field otherwise). The result equals the unsharded run, recorded as shard 0 of 1."""
    if not parts:
        raise ValueError("no shards to merge")
    names = [f"part {i}" for i in range(len(parts))] if names is None else [str(n) for n in names]
    if len(names) != len(parts):
        raise ValueError(f"names has {len(names)} entries for {len(parts)} parts")
    info = _check_one_run(parts, names)
    ids = np.concatenate([p.model_ids for p in parts])
    order = np.argsort(ids)
    return SubsamplingRuns(*(np.concatenate([getattr(p, name) for p in parts])[order] for name in FIELDS),
                           info=info)


# ----------------------------------------------------------------- training the models


def _stored_chunk(root: Path, run: str, ids: np.ndarray, masks: np.ndarray, precision: str,
                  train: Callable[[Path | None], SubsamplingRuns]) -> SubsamplingRuns:
    """The results of models ``ids`` (trained on ``masks``) of the run ``run``: an entry of
    the result store under ``root`` (:mod:`sharpmem_lib.store`: checksummed, locked, a
    damaged one reported and retrained), or trained by ``train(checkpoint)`` and stored. A
    model trained one by one checkpoints every epoch in the entry's ``.partial`` folder."""
    config = {"run": run, "first": int(ids[0]), "last": int(ids[-1]), "count": len(ids),
              "ids": hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest(),
              "masks": hashlib.sha256(np.packbits(masks).tobytes() + repr(masks.shape).encode()).hexdigest()}

    def compute(staging: Path, work: Path) -> dict:
        train(work / "checkpoint.pt").save(staging / "chunk.npz")
        return {"models": len(ids)}

    def load(entry: store.Entry) -> SubsamplingRuns:
        saved = SubsamplingRuns.load(entry.file("chunk.npz"))
        if not (np.array_equal(saved.model_ids, ids) and np.array_equal(saved.masks, masks)):
            raise ValueError("chunk.npz holds other models or subsets")
        for name, width in (("correct_train", masks.shape[1]), ("confidence_train", masks.shape[1])):
            if getattr(saved, name).shape != (len(ids), width):
                raise ValueError(f"chunk.npz: {name} has shape {getattr(saved, name).shape}")
        return saved

    return store.get_or_compute("subsampling-chunk", config, compute, load, root=root, precision=precision)


def _outcomes(ids: np.ndarray, masks: np.ndarray, train_logits: np.ndarray, test_logits: np.ndarray,
              y_train: np.ndarray, y_test: np.ndarray) -> SubsamplingRuns:
    """What the estimator keeps of the (models, n, classes) logits of models ``ids``."""
    return SubsamplingRuns(ids, masks, train_logits.argmax(-1) == y_train, test_logits.argmax(-1) == y_test,
                           logit_confidence(train_logits, y_train).astype(np.float32))


def _train_one(build: Callable, X_train, y_train: np.ndarray, X_test, mask: np.ndarray, config: TrainConfig,
               device, checkpoint: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Train one model on the points of ``mask`` with train_classifier; its logits on the
    training and test points, with a leading model axis of length 1."""
    seed_everything(config.seed)
    subset = np.flatnonzero(mask)
    model = train_classifier(build().to(device), X_train[subset], y_train[subset], config,
                             checkpoint_path=checkpoint, progress=False).model
    return predict_logits(model, X_train).numpy()[None], predict_logits(model, X_test).numpy()[None]


def _run_key(config: TrainConfig, n_models: int, fraction: float, seed: int, model, arrays) -> str:
    """A hash of what determines a run's results when no key is given: the settings, the
    model's architecture and the data."""
    h = hashlib.sha256(repr((config, n_models, fraction, seed, repr(model))).encode())
    for a in arrays:
        a = np.ascontiguousarray(a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a))
        h.update(repr((a.dtype.str, a.shape)).encode())
        h.update(a.data)
    return h.hexdigest()[:16]


def run_subsampling(
    build: Callable,
    X_train,
    y_train,
    X_test,
    y_test,
    config: TrainConfig,
    n_models: int,
    *,
    fraction: float = 0.7,
    seed: int = 0,
    shard: int = 0,
    n_shards: int = 1,
    chunk: int = 256,
    device: str = "auto",
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    key: str | None = None,
    dataset: str = "arrays",
) -> SubsamplingRuns:
    """Train the models of shard ``shard`` of ``n_shards`` (model ids ``shard::n_shards`` of
    ``range(n_models)``) and record masks and correctness.

    Model k trains on ``subset_masks(..., seed)[k]`` with training seed ``config.seed + k``,
    whatever the sharding, so merged shards equal one run. Models train on ``device``
    (``auto``: a GPU if there is one), ``chunk`` at a time with
    :func:`~sharpmem_lib.ensemble.train_ensemble` (on the CPU, ReLU MLPs take the fused
    numba kernel); models the ensemble cannot stack (BatchNorm, e.g. WRN-16-8) or augmented
    training go one by one through :func:`~sharpmem_lib.train.train_classifier`, which trains
    the same model from the same seed and subset.

    With ``checkpoint_dir`` an interrupted run loses nothing it finished: each finished
    chunk (or model) is an entry of the result store rooted there (checksummed; a damaged
    one is reported and retrained), the model being trained one by one also checkpoints
    every epoch, and a rerun with the same arguments resumes. The folder can be deleted
    once the returned runs are saved.

    The result records its :class:`ShardInfo`: ``key`` names the run (default: a hash of
    the settings, the model's architecture and the arrays) and ``dataset`` the data, so
    that :func:`merge_runs` can refuse shards of different runs.
    """
    check_shard(shard, n_shards, n_models)
    target = select_device(device)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    ids = np.arange(n_models)[shard::n_shards]
    masks = subset_masks(len(y_train), n_models, fraction, seed)[ids]
    runs = SubsamplingRuns(ids, masks, np.zeros((len(ids), len(y_train)), bool),
                           np.zeros((len(ids), len(y_test)), bool), np.zeros((len(ids), len(y_train)), np.float32))
    probe = build()
    if key is None:
        key = _run_key(config, n_models, fraction, seed, probe, (X_train, y_train, X_test, y_test))
    runs.info = ShardInfo(key, dataset, n_models, n_shards, shard, store.CACHE_VERSION)
    # finished chunks are store entries keyed by the run's key: chunks of other settings, models or data are
    # never reused
    precision = training_precision(config, target)
    one_by_one = cannot_stack(probe, config)
    step = 1 if one_by_one else chunk
    desc = f"subset models (shard {shard}/{n_shards})" + (" one by one" if one_by_one else "")
    for start in tqdm(range(0, len(ids), step), desc=desc, disable=not progress):
        rows = slice(start, min(start + step, len(ids)))

        def train(checkpoint: Path | None, rows: slice = rows) -> SubsamplingRuns:
            seeds = [config.seed + int(k) for k in ids[rows]]
            if one_by_one:
                logits = _train_one(build, X_train, y_train, X_test, masks[rows.start], replace(config, seed=seeds[0]),
                                    target, checkpoint)
            else:
                ensemble = train_ensemble(build, X_train, y_train, masks[rows], config, seeds=seeds, device=target,
                                          progress=False)
                logits = ensemble.logits(X_train).numpy(), ensemble.logits(X_test).numpy()
            return _outcomes(ids[rows], masks[rows], *logits, y_train, y_test)

        if checkpoint_dir is None:
            done = train(None)
        else:
            done = _stored_chunk(Path(checkpoint_dir), key, ids[rows], masks[rows], precision, train)
        runs.correct_train[rows], runs.correct_test[rows] = done.correct_train, done.correct_test
        runs.confidence_train[rows] = done.confidence_train
    return runs


# ----------------------------------------------------------------- on a dataset's partition


@dataclass(frozen=True)
class SubsamplingConfig:
    """Feldman & Zhang's estimator on a dataset: ``n_models`` copies of ``model`` trained
    with ``train`` on random ``fraction`` subsets of the partition's members, evaluated on
    the members and on the held-out non-members (validation excluded). ``device`` is where
    the models train (``auto``: a GPU if there is one); like ExperimentConfig's, it is not
    part of the cache key, but the precision it implies is."""

    dataset: str
    model: str = "mlp"
    train: TrainConfig = field(default_factory=TrainConfig)
    n_models: int = 1000
    fraction: float = 0.7
    seed: int = 0
    model_kwargs: dict = field(default_factory=dict)
    dataset_kwargs: dict = field(default_factory=dict)
    device: str = "auto"

    def __post_init__(self) -> None:
        check_choice("device", self.device, DEVICES)
        check_choice("dataset", self.dataset, partitioned_datasets())  # user datasets included
        check_choice("model", self.model, MODELS)
        check_fraction("fraction", self.fraction)
        if not isinstance(self.n_models, int) or self.n_models < 2:
            raise ValueError(f"n_models={self.n_models!r} is not valid; it must be an integer >= 2")

    def key_config(self) -> dict:
        """What determines the result, as the store keys it: the config without ``device``,
        and a user dataset's content hash (built-in datasets: none, so their keys stay)."""
        content = dataset_fingerprint(self.dataset)
        return {k: v for k, v in _plain(self).items() if k != "device"} | (
            {"dataset_content": content} if content else {})

    def precision(self) -> str:
        """The precision the subset models train in on the device ``device`` resolves to here."""
        return training_precision(self.train, select_device(self.device))

    def key(self, precision: str | None = None) -> str:
        """The run's store key: the config (not ``device``), ``precision`` (default
        :meth:`precision`: shards trained in different precisions are different runs) and
        the store's cache version."""
        return store.entry_key("subsampling", self.key_config(), precision or self.precision())


class SubsamplingJob(NamedTuple):
    """A subsampling config's dataset, its partition, and its model factory."""

    data: Arrays
    partition: Partition
    build: Callable


def subsampling_job(config: SubsamplingConfig, data_dir: str | Path | None = None) -> SubsamplingJob:
    """Load ``config``'s dataset once, for the functions below that take ``job``."""
    data = load_dataset(config.dataset, data_dir=data_dir, **config.dataset_kwargs)
    part = make_partition(config.dataset, data)
    shape = data.X.shape[1:]
    build = lambda: build_model(config.model, shape, data.num_classes, **config.model_kwargs)  # noqa: E731
    return SubsamplingJob(data, part, build)


def run_subsampling_shard(config: SubsamplingConfig, shard: int = 0, n_shards: int = 1, *,
                          data_dir: str | Path | None = None, checkpoint_dir: str | Path | None = None,
                          progress: bool = True, job: SubsamplingJob | None = None,
                          precision: str | None = None) -> SubsamplingRuns:
    """Shard ``shard`` of ``n_shards`` of ``config``'s subset models (see
    :func:`run_subsampling`): trained on the partition's members, evaluated on them and on
    the non-members; recorded under ``config.key(precision)``."""
    data, part, build = job or subsampling_job(config, data_dir)
    train_ids, test_ids = part.members, part.nonmembers
    return run_subsampling(build, data.X[train_ids], data.y[train_ids], data.X[test_ids], data.y[test_ids],
                           config.train, config.n_models, fraction=config.fraction, seed=config.seed,
                           shard=shard, n_shards=n_shards, device=config.device, checkpoint_dir=checkpoint_dir,
                           progress=progress, key=config.key(precision), dataset=config.dataset)


def run_subsampling_experiment(config: SubsamplingConfig, results_dir: str | Path | None = None, *,
                               data_dir: str | Path | None = None, progress: bool = True,
                               job: SubsamplingJob | None = None) -> tuple[SubsamplingRuns, np.ndarray, np.ndarray]:
    """The :class:`SubsamplingRuns` of ``config`` from the result store
    (:mod:`sharpmem_lib.store`, ``<results>/<dataset>/<key>/runs.npz``), trained only if it
    lacks them, with the dataset indices of its training (``train_ids``) and test
    (``test_ids``) points. An interrupted run resumes from its finished chunks, kept in the
    entry's ``.partial`` folder; a damaged entry is reported and recomputed."""
    job = job or subsampling_job(config, data_dir)
    train_ids, test_ids = job.partition.members, job.partition.nonmembers
    precision = config.precision()
    key = config.key(precision)

    def compute(staging: Path, work: Path) -> dict:
        runs = run_subsampling_shard(config, progress=progress, checkpoint_dir=work / "chunks", job=job,
                                     precision=precision)
        runs.save(staging / "runs.npz")
        return {"n_models": config.n_models, "n_train": len(train_ids), "n_test": len(test_ids)}

    def load(entry: store.Entry) -> SubsamplingRuns:
        runs = SubsamplingRuns.load(entry.file("runs.npz"))
        if runs.info is None or runs.info.key != key:
            raise ValueError(f"runs.npz records the run {runs.info and runs.info.key}, not {key}")
        shapes = {"masks": (config.n_models, len(train_ids)), "correct_train": (config.n_models, len(train_ids)),
                  "confidence_train": (config.n_models, len(train_ids)),
                  "correct_test": (config.n_models, len(test_ids))}
        for name, shape in shapes.items():
            if getattr(runs, name).shape != shape:
                raise ValueError(f"runs.npz: {name} has shape {getattr(runs, name).shape}, expected {shape}")
        return runs

    runs = store.get_or_compute("subsampling", config.key_config(), compute, load, root=results_root(results_dir),
                                namespace=config.dataset, precision=precision)
    return runs, train_ids, test_ids


# ----------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m sharpmem_lib.subsampling shard|merge``: run one shard of the subset
    models (e.g. one task of a SLURM job array), or merge shard files into one."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sharpmem_lib.subsampling")
    sub = parser.add_subparsers(dest="command", required=True)
    shard = sub.add_parser("shard", help="train the subset models of one shard and save their results")
    shard.add_argument("--dataset", default="digits")
    shard.add_argument("--model", default="mlp")
    shard.add_argument("--hidden", type=int, nargs="*", default=[64], help="MLP widths")
    shard.add_argument("--n-models", type=int, default=1000)
    shard.add_argument("--fraction", type=float, default=0.7)
    shard.add_argument("--epochs", type=int, default=10)
    shard.add_argument("--lr", type=float, default=0.05)
    shard.add_argument("--batch-size", type=int, default=32)
    shard.add_argument("--seed", type=int, default=0)
    shard.add_argument("--shard", type=int, required=True, help="0-based, e.g. $SLURM_ARRAY_TASK_ID")
    shard.add_argument("--n-shards", type=int, required=True)
    shard.add_argument("--out", type=Path, required=True, help="folder for shard-XXXX-of-YYYY.npz")
    shard.add_argument("--data-dir", default=None)
    shard.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    merge = sub.add_parser("merge", help="merge shard files into one")
    merge.add_argument("files", nargs="+", type=Path)
    merge.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "merge":
        try:
            overwritten = [str(f) for f in args.files if f.resolve() == args.out.resolve()]
            if overwritten:
                raise ValueError(f"--out {args.out} is one of the shard files {overwritten}; merging would "
                                 "overwrite an input (write the merged file elsewhere)")
            if args.out.is_dir() or not args.out.parent.is_dir():  # before reading every shard
                raise ValueError(f"--out {args.out} is not valid: " + ("it is a directory; name the merged file"
                                 if args.out.is_dir() else f"its folder {args.out.parent} does not exist"))
            merged = merge_runs([load_shard(f) for f in args.files], names=[str(f) for f in args.files])
            merged.save(args.out)
        except (ValueError, OSError) as err:  # a bad shard or --out, a missing input, a full disk: named, no traceback
            print(f"merge refused: {err}", file=sys.stderr)
            return 2
        print(f"merged {len(args.files)} shards, {len(merged.model_ids)} models -> {args.out}")
        return 0

    try:
        return _shard_command(args)
    except (ValueError, FileNotFoundError) as err:  # a bad argument or a missing dataset: its message, no traceback
        print(f"shard refused: {err}", file=sys.stderr)
        return 2


def check_shard(shard: int, n_shards: int, n_models: int) -> None:
    """``ValueError`` unless shard ``shard`` of ``n_shards`` of ``n_models`` models holds at
    least one model (shard k holds the ids ``k::n_shards``, so with ``n_shards > n_models``
    some shards would be empty files that merge cannot tell from a lost one)."""
    check_positive("n_models", n_models, integer=True)
    check_positive("n_shards", n_shards, integer=True)
    if n_shards > n_models:
        raise ValueError(f"n_shards={n_shards!r} is not valid with n_models={n_models!r}: shard k trains models "
                         f"k::n_shards, so shards {n_models}..{n_shards - 1} would be empty; choose n_shards <= "
                         f"n_models")
    if isinstance(shard, bool) or not isinstance(shard, (int, np.integer)) or not 0 <= shard < n_shards:
        raise ValueError(f"shard={shard!r} is not valid; choose one of 0..{n_shards - 1}")


def _shard_command(args) -> int:
    check_shard(args.shard, args.n_shards, args.n_models)  # before any folder is made
    kwargs = {"hidden": tuple(args.hidden)} if args.model in ("mlp", "fc") else {}
    config = SubsamplingConfig(args.dataset, args.model,
                               TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size),
                               n_models=args.n_models, fraction=args.fraction, seed=args.seed, model_kwargs=kwargs,
                               device=args.device)
    job = subsampling_job(config, args.data_dir)  # a missing dataset or a --fraction that leaves a subset empty
    subset_size(len(job.partition.members), config.fraction)  # (or full) is refused before --out is made
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"shard-{args.shard:04d}-of-{args.n_shards:04d}.npz"
    parts = path.with_suffix(".parts")  # a requeued task resumes from here
    runs = run_subsampling_shard(config, args.shard, args.n_shards, data_dir=args.data_dir, checkpoint_dir=parts,
                                 job=job)
    runs.save(path)
    shutil.rmtree(parts, ignore_errors=True)
    print(f"shard {args.shard}/{args.n_shards}: {len(runs.model_ids)} models -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
