"""The README's GPU table: every model the paper profile trains, priced per model on one GPU.

    python benchmarks/gpu_table.py                                   # assumed rates, an H100 SXM
    python benchmarks/gpu_table.py --gpu "NVIDIA L40S"               # assumed rates, another GPU (exact name)
    python benchmarks/gpu_table.py benchmarks/results/gpu_check.json # rates measured by gpu_check.py
    python benchmarks/gpu_table.py ... --readme README.md            # rewrite the README's marked block
    python benchmarks/gpu_table.py --profile default                 # another profile's plan

**The plan is generated, not written by hand.** :func:`paper_plan` reads the profile through
``sharpmem_lib.pipeline.plan_notebooks`` (the parameters each notebook runs with, checked) and
builds the configs each chapter's study builds from them, with the studies' own functions:
chapter 0's ``experiment_config`` per algorithm; chapter 2's ``BucketStudyConfig.targets()``,
``.subsampling()`` and ``.ground_truth()``; chapter 3's ``PrivacyConfig.targets()`` (every
dataset with its recipe: WRN-16-8 on CIFAR, the FC nets on Purchase-100 and Texas-100), its
boundary attacks and ``lira_config``; chapter 4's ``lam_runs``, ``xi_runs``, ``method_runs``,
``defense_runs`` (SELENA, AdvReg, DP-SGD, label smoothing) and ``control_runs``. A model two
chapters share (one cache key) is priced once, where it is first trained. Change a seed count
in the profile and the table follows.

**Pricing, per model.** Training costs forward-pass equivalents per image (SGD 3; SAM, eq. 4
and SharpReg 6; AdvReg 3 plus 1 + k fp32 forwards), in the precision the engine trains it
in (``sharpmem_lib.train.training_precision`` on CUDA: bf16 autocast for single-pass
algorithms, fp32 with TF32 off for the two-pass ones and DP-SGD), at an achieved FLOP/s per
precision, with a floor of a fixed time per optimizer step (small FC nets are launch-bound,
not FLOP-bound). DP-SGD (Opacus per-sample gradients, fp32) runs at a fraction of fp32 SGD's
rate. Each target also evaluates its validation set every epoch and every example twice
(final and best weights), in fp32. HopSkipJump (ART's ``HopSkipJump.generate`` loops over the
examples one at a time) costs sequential one-image queries plus its batched gradient
estimates per example; Carlini-Wagner (ART's ``CarliniL2Method``, batches of 256) costs, per
example and iteration, two class-gradient calls, each one forward and one backward per
*distinct label in the batch* (ART's ``PyTorchClassifier.class_gradient``), plus its line search:
an upper bound, since it assumes every iteration runs for every example.

**Rates** come from ``benchmarks/gpu_check.py``'s JSON when given ("measured": images/s of
WRN-16-8 turned into FLOP/s per precision, so they price every model), else from assumptions
stated in the table: a fraction (MFU) of the GPU's datasheet dense peaks (bf16 with fp32
accumulation, no sparsity; IEEE fp32), the GPU named exactly (:func:`identify_gpu`: no
substring matching, so H100 SXM / PCIe / NVL and L4 / L40 / L40S are told apart).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MARK_START, MARK_END = "<!-- gpu-table:start -->", "<!-- gpu-table:end -->"
GOAL_HOURS = 12.0  # issue 17: Tables 1-2 and Figs. 2-5, no influence recomputation, LiRA at a stated count


@dataclasses.dataclass(frozen=True)
class Gpu:
    """A GPU model and its datasheet peaks, FLOP/s: dense bf16 tensor cores with fp32
    accumulation (no sparsity; None: no bf16 tensor cores) and IEEE fp32 (no TF32)."""

    label: str
    bf16: float | None
    fp32: float
    names: tuple[str, ...]  # torch.cuda.get_device_name() of its variants, exactly


# Vendor datasheets (NVIDIA H100, H200, A100, L4, L40, L40S, A10, V100, T4, Ada RTX 4090 whitepaper).
GPUS = [
    Gpu("H100 SXM", 989e12, 67e12, ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB")),
    Gpu("H100 PCIe", 756e12, 51e12, ("NVIDIA H100 PCIe",)),
    Gpu("H100 NVL", 835e12, 60e12, ("NVIDIA H100 NVL",)),
    Gpu("H200 SXM", 989e12, 67e12, ("NVIDIA H200",)),
    Gpu("H200 NVL", 835e12, 60e12, ("NVIDIA H200 NVL",)),
    Gpu("A100", 312e12, 19.5e12, ("NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB",
                                  "NVIDIA A100 80GB PCIe")),
    Gpu("L4", 121e12, 30.3e12, ("NVIDIA L4",)),
    Gpu("L40", 181e12, 90.5e12, ("NVIDIA L40",)),
    Gpu("L40S", 362e12, 91.6e12, ("NVIDIA L40S",)),
    Gpu("A10", 125e12, 31.2e12, ("NVIDIA A10",)),
    Gpu("RTX 4090", 82.6e12, 82.6e12, ("NVIDIA GeForce RTX 4090",)),  # GeForce: half-rate bf16 with fp32 accum.
    Gpu("V100 SXM2", None, 15.7e12, ("Tesla V100-SXM2-16GB", "Tesla V100-SXM2-32GB")),  # fp16 tensor cores only
    Gpu("V100 PCIe", None, 14e12, ("Tesla V100-PCIE-16GB", "Tesla V100-PCIE-32GB")),
    Gpu("T4", None, 8.1e12, ("Tesla T4",)),
]
DEFAULT_GPU = "NVIDIA H100 80GB HBM3"


def _normal(name: str) -> str:
    return " ".join(name.split()).casefold()


def identify_gpu(name: str) -> Gpu | None:
    """The GPU whose torch device name is exactly ``name`` (case and spacing aside), or None.
    No substring or prefix matching: "NVIDIA L4" is not an L40, "NVIDIA H100 NVL" not an SXM."""
    return next((g for g in GPUS if _normal(name) in {_normal(n) for n in g.names}), None)


def datasheet_bf16_peak(name: str) -> float | None:
    """The datasheet's dense bf16 peak of the GPU called ``name``, or None (unknown, or no bf16)."""
    gpu = identify_gpu(name)
    return None if gpu is None else gpu.bf16


# ----------------------------------------------------------------------------- assumptions

ASSUMED = {
    "mfu_bf16": 0.40,  # training in bf16 autocast: issue 17's goal for SGD on WRN-16-8, not a measurement
    "mfu_fp32": 0.60,  # IEEE fp32 (CUDA cores, TF32 off): training and evaluation
    "dpsgd_vs_fp32_sgd": 1 / 3,  # Opacus per-sample gradients (GroupNorm WRN) against plain fp32 SGD
    "step_s": 0.002,  # floor per optimizer step of one pass (eager PyTorch's launches; two passes: twice)
    "query_s": 0.003,  # one single-image query through ART's PyTorchClassifier (numpy <-> GPU copies, eager)
}
ASSUMED_WHY = {
    "mfu_bf16": "bf16 training at {mfu_bf16:.0%} of the datasheet dense bf16 peak (issue 17's goal for SGD)",
    "mfu_fp32": "fp32 (TF32 off) at {mfu_fp32:.0%} of the datasheet fp32 peak",
    "dpsgd_vs_fp32_sgd": "DP-SGD (Opacus, per-sample gradients) at {dpsgd_vs_fp32_sgd:.2f} of fp32 SGD's images/s",
    "step_s": "at least {step_s_ms:.0f} ms per optimizer step and pass (launch-bound small models)",
    "query_s": "{query_s_ms:.0f} ms per one-image query (HopSkipJump's sequential queries)",
}

# ART 1.20.1's HopSkipJump (hop_skip_jump.py) as boundary.py calls it: max_iter 10, init_eval 100,
# max_eval 1000; per iteration one gradient estimate of min(100 sqrt(i + 1), 1000) points (batched),
# a binary search (single queries down to its L2 threshold) and a geometric step
# search (a few single queries); the initialisation draws random images and binary-searches them.
# Counted (PyTorchClassifier.predict wrapped) on 6 random CIFAR-shaped examples against a randomly
# initialised WRN-10-1: 932 one-image queries (155 per example) and 13,482 images in 64 batched calls.
HSJ_BATCHED = sum(min(int(100 * math.sqrt(i + 1)), 1000) for i in range(10))  # 2,243 per example
HSJ_SEQUENTIAL = 155  # one-image queries per example, counted as above (a trained target may need more)
# ART's CarliniL2Method as boundary.py calls it: binary_search_steps 10, max_iter 100, batch 256,
# line search up to 5 halvings + 5 doublings (one forward each); not counted: an upper bound.
CW = {"search_steps": 10, "iters": 100, "batch": 256, "line_search": 10}


@dataclasses.dataclass(frozen=True)
class Rates:
    """Achieved FLOP/s per precision (training) and for fp32 evaluation, DP-SGD's fraction of
    fp32 training, the per-step floor and one query's latency; ``source`` says where each is from."""

    bf16: float
    fp32: float
    eval_fp32: float
    dpsgd: float
    step_s: float
    query_s: float
    source: dict
    measured: bool = False
    gpu: str = ""
    hsj_s: float | None = None  # measured seconds per HopSkipJump example at hsj_iters iterations
    hsj_iters: int = 10
    cw_forward_s: float | None = None  # measured seconds per forward-equivalent of Carlini-Wagner's cost model


def assumed_rates(gpu_name: str = DEFAULT_GPU, **override: float) -> Rates:
    gpu = identify_gpu(gpu_name)
    if gpu is None:
        known = sorted(n for g in GPUS for n in g.names)
        raise ValueError(f"gpu={gpu_name!r} is not a GPU with datasheet peaks here; give torch's exact device name, "
                         f"one of {known}")
    a = {**ASSUMED, **override}
    bf16_peak = gpu.bf16 if gpu.bf16 is not None else gpu.fp32  # no bf16 tensor cores: autocast runs at fp32 speed
    fmt = {**a, "step_s_ms": 1e3 * a["step_s"], "query_s_ms": 1e3 * a["query_s"]}
    source = {k: "assumed: " + ASSUMED_WHY[k].format(**fmt) for k in ASSUMED}
    source["eval"] = "assumed: fp32 evaluation at {mfu_fp32:.0%} of the datasheet fp32 peak".format(**fmt)
    source["peaks"] = (f"{gpu.label} datasheet: dense bf16 {gpu.bf16 / 1e12:.0f} TFLOP/s, " if gpu.bf16 else
                       f"{gpu.label} datasheet: no bf16 tensor cores (priced at fp32), ") + \
        f"IEEE fp32 {gpu.fp32 / 1e12:.1f} TFLOP/s"
    return Rates(a["mfu_bf16"] * bf16_peak, a["mfu_fp32"] * gpu.fp32, a["mfu_fp32"] * gpu.fp32,
                 a["dpsgd_vs_fp32_sgd"], a["step_s"], a["query_s"], source, False, gpu.label)


def rates_from_report(report: dict) -> Rates:
    """Rates from a gpu_check JSON: WRN-16-8's measured images/s times its FLOPs per image
    (3 forward-equivalents for SGD, 6 for SAM) give the achieved FLOP/s of each precision."""
    flops = report["wrn_forward_flops_per_image"]
    train = {(r["algorithm"], r["compile"]): r for r in report.get("train", [])}
    s = report["sections"]
    where = "measured" if report.get("measured") else "DRY RUN on the CPU (not GPU figures)"
    name = report["device"].get("name", "?")
    fallback = assumed_rates(name) if identify_gpu(name) else assumed_rates()
    source = dict(fallback.source)
    values = dataclasses.asdict(fallback)
    if ("sgd", False) in train:
        values["bf16"] = train[("sgd", False)]["images_per_s"] * 3 * flops
        source["mfu_bf16"] = f"{where}: SGD {train[('sgd', False)]['images_per_s']:,.0f} images/s"
    if ("sam", False) in train:
        values["fp32"] = train[("sam", False)]["images_per_s"] * 6 * flops
        source["mfu_fp32"] = f"{where}: SAM (fp32) {train[('sam', False)]['images_per_s']:,.0f} images/s"
    if "eval" in s:
        values["eval_fp32"] = s["eval"]["images_per_s"] * flops
        source["eval"] = f"{where}: evaluation {s['eval']['images_per_s']:,.0f} images/s"
        values["query_s"] = s["eval"]["single_image_latency_s"]
        source["query_s"] = f"{where}: one-image query {1e3 * values['query_s']:.1f} ms (predict_logits)"
    if "dp_sgd" in s:
        values["dpsgd"] = s["dp_sgd"]["images_per_s"] * 3 * flops / values["fp32"]
        source["dpsgd_vs_fp32_sgd"] = f"{where}: DP-SGD {s['dp_sgd']['images_per_s']:,.0f} images/s"
    if "boundary" in s:
        hsj, cw = s["boundary"]["hopskipjump"], s["boundary"]["cw"]
        values.update(hsj_s=hsj["s_per_example"], hsj_iters=hsj["iters"], cw_forward_s=cw["s_per_forward_equivalent"])
        source["boundary"] = (f"{where}: HopSkipJump {hsj['s_per_example']:.2f} s per example; Carlini-Wagner "
                              f"{cw['s_per_example']:.2f} s per example at {cw['iters']} iterations and "
                              f"{cw['distinct_labels']} distinct labels in its batch")
    gpu = identify_gpu(name)
    source["peaks"] = (f"{gpu.label} datasheet: dense bf16 {gpu.bf16 / 1e12:.0f} TFLOP/s, IEEE fp32 "
                       f"{gpu.fp32 / 1e12:.1f} TFLOP/s" if gpu and gpu.bf16 else
                       f"{name}: no datasheet peaks here (rates not covered by the report are the H100 SXM's "
                       "assumptions)" if gpu is None else fallback.source["peaks"])
    values.update(source=source, measured=bool(report.get("measured")), gpu=name)
    return Rates(**values)


# ----------------------------------------------------------------------------- the plan


@dataclasses.dataclass
class Job:
    """``n_models`` alike trainings (or an attack on ``n_examples`` examples).

    kind: ``train``, ``hsj`` or ``cw``. For ``train``: ``images`` trained on per model (epochs x
    set size), ``steps`` optimizer steps, ``passes`` forward-equivalents per image in
    ``precision``, ``extra_fp32`` further fp32 forwards per image (AdvReg), ``eval_images``
    fp32 forwards per model. ``flops``: one forward pass of one example. ``option``: priced
    apart (``lira``, ``influence``); ``cpu``: CPU-sized, not priced on the GPU."""

    block: str
    what: str
    kind: str
    flops: float
    n_models: int = 1
    images: float = 0
    steps: float = 0
    passes: int = 3
    precision: str = "bf16-autocast"
    extra_fp32: int = 0
    eval_images: float = 0
    dpsgd: bool = False
    n_examples: int = 0
    classes: int = 0
    iters: int = 0
    option: str | None = None
    cpu: bool = False
    shared: list = dataclasses.field(default_factory=list)  # later blocks that reuse this cached model


@functools.lru_cache(maxsize=None)
def forward_flops(model: str, dataset: str, kwargs: str) -> float:
    """FLOPs of one forward pass of one example (torch's FLOP counter on the real model)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sharpmem_lib.models import build_model

    shape, classes = _shape(dataset)
    net = build_model(model, shape, classes, **json.loads(kwargs)).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros((2, *shape)))
    return counter.get_total_flops() / 2


@functools.lru_cache(maxsize=None)
def _shape(dataset: str) -> tuple[tuple[int, ...], int]:
    """(one example's shape, classes): from the registry, or by loading an offline dataset."""
    from sharpmem_lib.data import DATASETS, load_dataset

    info = DATASETS[dataset]
    if info.feature_shape is not None and info.num_classes is not None:
        return tuple(info.feature_shape), info.num_classes
    data = load_dataset(dataset)
    return tuple(data.X.shape[1:]), int(max(data.y)) + 1


@functools.lru_cache(maxsize=None)
def _sizes(dataset: str) -> tuple[int, int, int]:
    """(members, validation, every example) of the dataset's partition, from its published size."""
    from sharpmem_lib.splits import published_partition

    p = published_partition(dataset)
    return len(p.members), len(p.validation), len(p.members) + len(p.validation) + len(p.nonmembers)


def _train_job(block: str, what: str, dataset: str, model: str, model_kwargs: dict, train, defense: str = "none",
               defense_kwargs: dict | None = None, fraction: float = 1.0, n_models: int = 1,
               evaluate: str = "target") -> Job:
    """One training run of ``train`` (a TrainConfig) on ``fraction`` of the members."""
    from sharpmem_lib.optim import coefficients
    from sharpmem_lib.train import training_precision

    members, validation, total = _sizes(dataset)
    n = int(round(fraction * members))
    flops = forward_flops(model, dataset, json.dumps(model_kwargs, sort_keys=True))
    two = coefficients(train.algorithm, train.lam, train.xi).needs_second_pass
    precision = training_precision(train, "cuda", defense)
    steps = train.epochs * math.ceil(n / train.batch_size)
    job = Job(block, what, "train", flops, n_models, train.epochs * n, steps, 6 if two else 3, precision,
              dpsgd=defense == "dpsgd",
              eval_images=(train.epochs * validation + 2 * total) if evaluate == "target" else total - validation)
    if defense == "advreg":  # AdvReg's before_step: members' and k reference batches' forwards, fp32 (eval mode)
        job.extra_fp32 = 1 + int((defense_kwargs or {}).get("k_inference", 1))
    return job


def _experiment_jobs(block: str, what: str, cfg) -> list[Job]:
    """An ExperimentConfig as jobs: SELENA is K sub-models on (K - L) / K of the members, each
    predicting every member once, then the distillation; anything else one job."""
    if cfg.defense == "selena":
        k = int(cfg.defense_kwargs.get("n_models", 25))
        excluded = int(cfg.defense_kwargs.get("n_excluded", 10))
        members = _sizes(cfg.dataset)[0]
        sub = _train_job(block, f"{what}: {k} Split-AI sub-models on {k - excluded}/{k} of the members",
                         cfg.dataset, cfg.model, cfg.model_kwargs, cfg.train, fraction=(k - excluded) / k,
                         n_models=k, evaluate="none")
        sub.eval_images = members
        return [sub, _train_job(block, f"{what}: distillation", cfg.dataset, cfg.model, cfg.model_kwargs, cfg.train)]
    return [_train_job(block, what, cfg.dataset, cfg.model, cfg.model_kwargs, cfg.train, cfg.defense,
                       cfg.defense_kwargs)]


def _subsampling_job(block: str, what: str, sub, option: str | None = None) -> Job:
    job = _train_job(block, what, sub.dataset, sub.model, sub.model_kwargs, sub.train, fraction=sub.fraction,
                     n_models=sub.n_models, evaluate="subsets")
    job.option = option
    return job


def _fields(cls, params: dict) -> dict:
    return {f.name: params[f.name] for f in dataclasses.fields(cls) if f.name in params}


def _method(cfg) -> str:
    t = cfg.train
    label = {"sgd": "SGD", "sam": f"SAM rho {t.rho:g}", "sharp": f"eq. 4 lambda {t.lam:g}",
             "sharpreg": f"SharpReg xi {t.xi:g}"}.get(t.algorithm, t.algorithm)
    if t.swa:
        label = "SWA"
    if t.label_smoothing:
        label += f", label smoothing {t.label_smoothing:g}"
    return label


@functools.lru_cache(maxsize=8)
def _chapter_parameters(profile: str, repo_root: Path, stamp: tuple) -> dict[str, dict]:
    import papermill

    from sharpmem_lib.parameters import literal_defaults
    from sharpmem_lib.pipeline import plan_notebooks

    return {path.stem: {**literal_defaults(papermill.inspect_notebook(path)), **params}
            for path, params in plan_notebooks(profile, repo_root)}


def chapter_parameters(profile: str = "paper", repo_root: Path = ROOT) -> dict[str, dict]:
    """Each notebook's parameters under ``profile``: its defaults, then the profile's (checked).
    Cached while the notebooks and profiles are unchanged (their modification times)."""
    files = sorted((Path(repo_root) / "notebooks").glob("*.ipynb")) + sorted(
        (Path(repo_root) / "notebooks" / "params").glob("*.yaml"))
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
    return {k: dict(v) for k, v in _chapter_parameters(profile, Path(repo_root), stamp).items()}


def paper_plan(profile: str = "paper", repo_root: Path = ROOT, overrides: dict | None = None) -> list[Job]:
    """Every model the notebooks train under ``profile``, as the chapters' studies build them.
    A model two chapters share (the same cache key) is counted once, where first trained.
    ``overrides``: {notebook stem: {parameter: value}} on top of the profile (what-if prices)."""
    from sharpmem_lib.buckets import BucketStudyConfig
    from sharpmem_lib.experiments import experiment_config
    from sharpmem_lib.mitigation import (MitigationConfig, buckets_config, control_runs, defense_runs, lam_runs,
                                         method_runs, xi_runs)
    from sharpmem_lib.privacy import PrivacyConfig

    params = chapter_parameters(profile, repo_root)
    for chapter, values in (overrides or {}).items():
        params[chapter] = {**params[chapter], **values}
    jobs: list[Job] = []
    seen: dict = {}

    def add(block: str, what: str, cfg, option: str | None = None) -> None:
        key = json.dumps(cfg.key_config(), sort_keys=True, default=str)
        if key in seen:
            first = seen[key]
            if block != first.block and block.split(" ")[1] not in first.shared:
                first.shared.append(block.split(" ")[1])  # the chapter number
            return
        new = _subsampling_job(block, what, cfg, option) if hasattr(cfg, "n_models") else _experiment_jobs(block, what,
                                                                                                          cfg)
        new = new if isinstance(new, list) else [new]
        seen[key] = new[-1]
        jobs.extend(new)

    for chapter, p in params.items():
        if chapter.startswith("00"):
            for a in p["algorithms"]:
                cfg = experiment_config(p["recipe"], p["dataset"], a, p["seed"], sam_rho=p["sam_rho"])
                add("Ch. 0 targets", f"{_method(cfg)} on {cfg.dataset}", cfg)
        elif chapter.startswith("01"):
            jobs.append(Job("Ch. 1 toy example", f"2-D MLPs ({p['recipe']}): {p['seeds']} + {p['seeds_many']} seeds "
                            "per method", "train", 0.0, n_models=0, cpu=True))
        elif chapter.startswith("02"):
            c = BucketStudyConfig(**_fields(BucketStudyConfig, p))
            for cfg in c.targets().values():
                add("Ch. 2 targets", f"{_method(cfg)} on {cfg.dataset}", cfg)
            option = "influence" if p.get("influence_file") else None
            add("Ch. 2 subset models", f"{c.n_models} x {c.subset_recipe} on {c.fraction:.0%} of {c.dataset}'s "
                "members (Feldman-Zhang estimates)", c.subsampling(), option)
            if c.ground_truth() is not None:
                gt = c.ground_truth()
                before = len(jobs)
                add("Ch. 2 ground truth", f"{gt.n_models} x {c.ground_truth_recipe} on {gt.dataset}", gt)
                for job in jobs[before:]:
                    job.cpu = gt.model == "mlp"
        elif chapter.startswith("03"):
            c = PrivacyConfig(**_fields(PrivacyConfig, p))
            for (d, _, _), cfg in c.targets().items():
                add("Ch. 3 targets (Tables 1-2)", f"{_method(cfg)} on {d} ({c.recipes[d]})", cfg)
            if c.boundary_dataset:
                members, _, _ = _sizes(c.boundary_dataset)
                from sharpmem_lib.splits import published_partition

                sizes = published_partition(c.boundary_dataset).sizes()
                per_set = [min(c.boundary_points, sizes[k]) for k in ("attack_members", "attack_nonmembers")]
                n_eval = min(c.boundary_points, sizes["eval_members"], sizes["eval_nonmembers"])
                n = sum(per_set) + 2 * n_eval
                target = c.targets()[(c.boundary_dataset, "sgd", 0)]
                flops = forward_flops(target.model, target.dataset, json.dumps(target.model_kwargs, sort_keys=True))
                classes = _shape(target.dataset)[1]
                for attack in c.boundary_methods:
                    iters = c.boundary_iters or (10 if attack == "hopskipjump" else CW["iters"])
                    name = "HopSkipJump" if attack == "hopskipjump" else "Carlini-Wagner"
                    jobs.append(Job("Ch. 3 boundary attacks",
                                    f"{name}: {len(c.methods)} targets x {n:,} examples ({c.boundary_dataset})",
                                    "hsj" if attack == "hopskipjump" else "cw", flops, n_examples=len(c.methods) * n,
                                    classes=classes, iters=iters))
            if c.lira_dataset:
                for m in c.methods:
                    sub = c.lira_config(m)
                    label = _method(experiment_config(c.recipes[c.lira_dataset], c.lira_dataset, m, 0, **c.knobs))
                    add("LiRA", f"{sub.n_models} x {label} on {sub.fraction:.0%} of {sub.dataset}'s members", sub,
                        "lira")
        elif chapter.startswith("04"):
            c = MitigationConfig(**_fields(MitigationConfig, p))
            studies = (("Ch. 4 lambda sweep (Fig. 4)", lam_runs(c)), ("Ch. 4 xi sweep (Fig. 5b)", xi_runs(c)),
                       ("Ch. 4 methods (Fig. 5a)", method_runs(c)), ("Ch. 4 defenses (Fig. 5c)", defense_runs(c)),
                       ("Ch. 4 lr controls", control_runs(c)))
            for block, runs in studies:
                for run in runs:
                    cfg = run["config"]
                    label = {"lambda": "eq. 4, ", "xi": "SharpReg, "}.get(block.split(" ")[2], "") + run["method"]
                    if run["method"] in ("sgd", "sam", "sharpreg"):
                        label = _method(cfg)
                    add(block, label + (" (fp32, per-sample gradients)" if cfg.defense == "dpsgd" else ""), cfg)
            bucket_recipe = p.get("bucket_recipe")
            if bucket_recipe:
                option = "influence" if p.get("influence_file") else None
                sub = buckets_config(c.dataset, bucket_recipe, int(p.get("bucket_models", 1000)))
                add("Ch. 4 subset models", f"{sub.n_models} x {bucket_recipe} (buckets)", sub, option)
    return jobs


# ----------------------------------------------------------------------------- pricing


def _expected_distinct(classes: int, batch: int) -> float:
    """Expected number of distinct labels among ``batch`` uniform draws from ``classes``."""
    return classes * (1 - (1 - 1 / classes) ** batch)


def hours(job: Job, rates: Rates) -> float | None:
    """GPU-hours of ``job`` at ``rates`` (None: CPU-sized, not priced on the GPU)."""
    if job.cpu:
        return None
    eval_s = job.flops / rates.eval_fp32  # seconds per fp32 forward of one example
    if job.kind == "hsj":
        if rates.hsj_s is not None:  # measured on WRN-16-8; iterations scale it
            return job.n_examples * rates.hsj_s * job.iters / rates.hsj_iters / 3600
        per = HSJ_SEQUENTIAL * rates.query_s + HSJ_BATCHED * eval_s
        return job.n_examples * per / 3600
    if job.kind == "cw":
        batch = min(CW["batch"], job.n_examples)
        distinct = _expected_distinct(job.classes, batch)
        # per example and iteration: two class_gradient calls (a forward and `distinct` backwards
        # of ~2 forwards each), then the line search's forwards
        forwards = 2 * (1 + 2 * distinct) + CW["line_search"]
        per_forward = rates.cw_forward_s if rates.cw_forward_s is not None else eval_s
        return job.n_examples * CW["search_steps"] * job.iters * forwards * per_forward / 3600
    rate = rates.bf16 if job.precision == "bf16-autocast" else rates.fp32
    if job.dpsgd:
        rate *= rates.dpsgd
    flop_s = job.images * job.passes * job.flops / rate
    floor_s = job.steps * rates.step_s * job.passes / 3
    train_s = max(flop_s, floor_s) + job.images * job.extra_fp32 * eval_s
    return job.n_models * (train_s + job.eval_images * eval_s) / 3600


def _kind(job: Job) -> str:
    if job.kind != "train":
        return {"hsj": "HopSkipJump (one example at a time)", "cw": "Carlini-Wagner (upper bound)"}[job.kind]
    if job.dpsgd:
        return "DP-SGD (fp32, per-sample gradients)"
    return "two-pass (fp32)" if job.passes == 6 else "one-pass (bf16)" if job.precision == "bf16-autocast" else \
        "one-pass (fp32)"


@dataclasses.dataclass
class Priced:
    rows: list  # (block, what, models, hours or None, option, shared)
    main: float
    lira: float
    influence: float
    by_kind: dict
    lira_models: int


def price(plan: list[Job], rates: Rates) -> Priced:
    """Rows grouped by (block, what), with totals: the plan without options, LiRA, influence."""
    grouped: dict = {}
    totals = defaultdict(float)
    by_kind = defaultdict(float)
    lira_models = 0
    for job in plan:
        h = hours(job, rates)
        key = (job.block, job.what, job.option)
        models, hsum, cpu, shared = grouped.get(key, (0, 0.0, False, []))
        grouped[key] = (models + (job.n_models if job.kind == "train" else 0), hsum + (h or 0.0), cpu or job.cpu,
                        sorted(set(shared) | set(job.shared)))
        if h is not None:
            totals[job.option or "main"] += h
            if job.option is None:
                by_kind[_kind(job)] += h
        if job.option == "lira":
            lira_models += job.n_models
    rows = [(b, w, m, None if cpu else h, o, sh) for (b, w, o), (m, h, cpu, sh) in grouped.items()]
    return Priced(rows, totals["main"], totals["lira"], totals["influence"], dict(by_kind), lira_models)


# ----------------------------------------------------------------------------- rendering


def _h(x: float | None) -> str:
    return "CPU-sized, not priced" if x is None else f"{x:.3f}" if x < 0.1 else f"{x:,.2f}" if x < 10 else f"{x:,.1f}"


def what_ifs(profile: str, rates: Rates, repo_root: Path = ROOT) -> list[tuple[str, float]]:
    """The plan's total without LiRA under a few changed parameters (levers, not the plan)."""
    params = chapter_parameters(profile, repo_root)
    out = []
    ch3 = next((c for c in params if c.startswith("03")), None)
    ch4 = next((c for c in params if c.startswith("04")), None)
    if ch3 and ch4:
        now = {int(params[ch3].get("train_seeds", 1)), int(params[ch4].get("train_seeds", 1))}
        for seeds, why in ((3, " (the fewest paired tests allow)"), (1, " (the paper's; no paired test possible)")):
            if now != {seeds}:
                out.append((f"chapters 3 and 4 at {seeds} training seed{'s' if seeds > 1 else ''}{why}",
                            {ch3: {"train_seeds": seeds}, ch4: {"train_seeds": seeds}}))
    if ch3 and "cw" in params[ch3].get("boundary_methods", []):
        out.append(("without the Carlini-Wagner boundary attack (HopSkipJump kept)",
                    {ch3: {"boundary_methods": [m for m in params[ch3]["boundary_methods"] if m != "cw"]}}))
    return [(label, price(paper_plan(profile, repo_root, o), rates).main) for label, o in out]


def render(rates: Rates, report: dict | None = None, profile: str = "paper", repo_root: Path = ROOT) -> str:
    """The README block: rates with their sources, one row per block of alike models, totals."""
    plan = paper_plan(profile, repo_root)
    p = price(plan, rates)
    status = "measured" if rates.measured else "assumed" if report is None else "dry run (CPU, not GPU figures)"
    lines = [f"Generated by `python benchmarks/gpu_table.py{'' if report is None else ' <gpu_check.json>'} --readme "
             f"README.md` from the `{profile}` profile's notebooks and parameters (`python -m sharpmem_lib.pipeline "
             f"plan --profile {profile}`): every model it trains, built by the chapters' own config functions, "
             f"priced per model on one {rates.gpu}. Rates: **{status}**.", ""]
    if report is not None:
        d = report["device"]
        lines += [f"gpu_check report: {d.get('name')} (torch {d.get('torch')}, CUDA {d.get('cuda')}), "
                  f"{report.get('created_utc', '?')}" + ("" if report.get("measured") else
                                                          " -- a DRY RUN on the CPU: not GPU figures") + ".", ""]
        lines += _measurement_rows(report)
    lines += ["| rate | value | source |", "|---|---|---|"]
    lines.append(f"| datasheet peaks | | {rates.source.get('peaks', 'n/a')} |")
    for name, value, key in (("bf16 training", f"{rates.bf16 / 1e12:,.3g} TFLOP/s", "mfu_bf16"),
                             ("fp32 training (TF32 off)", f"{rates.fp32 / 1e12:,.3g} TFLOP/s", "mfu_fp32"),
                             ("fp32 evaluation", f"{rates.eval_fp32 / 1e12:,.3g} TFLOP/s", "eval"),
                             ("DP-SGD / fp32 SGD images/s", f"{rates.dpsgd:.2f}", "dpsgd_vs_fp32_sgd"),
                             ("floor per optimizer step", f"{1e3 * rates.step_s:.1f} ms", "step_s"),
                             ("one-image query", f"{1e3 * rates.query_s:.1f} ms", "query_s")):
        lines.append(f"| {name} | {value} | {rates.source[key]} |")
    if "boundary" in rates.source:
        lines.append(f"| boundary attacks | | {rates.source['boundary']} |")
    lines += ["", "| block | what (reused by later chapters from the cache) | models | GPU-hours |",
              "|---|---|---:|---:|"]

    def what(w: str, shared: list) -> str:
        return w + (f" (also Ch. {', '.join(shared)})" if shared else "")

    for block, w, models, h, option, shared in p.rows:
        if option is None:
            lines.append(f"| {block} | {what(w, shared)} | {models or ''} | {_h(h)} |")
    lines.append(f"| **the {profile} profile without LiRA** | | | **{p.main:,.1f}** |")
    for block, w, models, h, option, _ in p.rows:
        if option == "lira":
            lines.append(f"| {block} (priced apart) | {w} | {models:,} | {_h(h)} |")
    lines.append(f"| **LiRA at the profile's count ({p.lira_models:,} models)** | | | **{p.lira:,.1f}** |")
    for block, w, models, h, option, _ in p.rows:
        if option == "influence":
            lines.append(f"| {block}, if recomputed (priced apart; the profile reads Feldman-Zhang's file) | {w} | "
                         f"{models:,} | {_h(h)} |")
    total = p.main + p.lira
    per_lira = p.lira / p.lira_models if p.lira_models else 0.0
    verdict = "within" if total <= GOAL_HOURS else "**over**"
    lines += ["", "Where the hours go (without LiRA): " + "; ".join(
        f"{k} {v:,.1f} h" for k, v in sorted(p.by_kind.items(), key=lambda kv: -kv[1])) + ".", "",
        f"**Total: {p.main:,.1f} GPU-hours without LiRA, {total:,.1f} with LiRA at {p.lira_models:,} models** "
        f"({per_lira:.3f} h a model on average): {verdict} issue 17's goal of {GOAL_HOURS:g} GPU-hours "
        "(Tables 1-2 and Figs. 2-5, influence estimates not recomputed, LiRA at a stated count)."]
    levers = what_ifs(profile, rates, repo_root)
    if levers:
        lines += ["", "The same rates with one parameter changed (not the plan): " + "; ".join(
            f"{label}: {h:,.1f} h without LiRA" for label, h in levers) + "."]
    return "\n".join(lines)



def _measurement_rows(report: dict) -> list[str]:
    s = report["sections"]
    d = report["device"]
    gpu = identify_gpu(d.get("name", ""))
    lines = ["| measurement (synthetic data) | value | |", "|---|---|---|"]
    if "matmul" in s:
        sheet = f"; datasheet dense bf16 {gpu.bf16 / 1e12:.0f}" if gpu and gpu.bf16 else ""
        lines.append(f"| matmul bf16 / fp32 (IEEE), TFLOP/s | {s['matmul']['bf16'] / 1e12:.1f} / "
                     f"{s['matmul']['fp32'] / 1e12:.1f}{sheet} | measured |")
    for r in report.get("train", []):
        syncs = "n/a" if r["host_syncs_per_step"] is None else f"{r['host_syncs_per_step']:.2f}"
        mem = "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f} GiB"
        lines.append(f"| WRN-16-8 train {r['algorithm'].upper()}{' + torch.compile' if r['compile'] else ''} "
                     f"({r['precision']}), images/s | {r['images_per_s']:,.0f} (MFU "
                     f"{100 * r['mfu_vs_measured_matmul_of_its_precision']:.0f} % of its precision's matmul, "
                     f"{100 * r['mfu_vs_measured_bf16_matmul']:.0f} % of bf16; peak {mem}; host syncs/step "
                     f"{syncs}) | measured |")
    for name, label in (("eval", "WRN-16-8 evaluate (fp32), images/s"),
                        ("dp_sgd", "WRN-16-8 DP-SGD (fp32 per-sample), images/s"),
                        ("cifar_recipe_epoch", "CIFAR recipe short epoch, images/s"),
                        ("fc_train", "Purchase-100 FC net, train_classifier, steps/s")):
        if name in s:
            value = s[name].get("images_per_s", s[name].get("steps_per_s"))
            lines.append(f"| {label} | {value:,.0f} | measured |")
    for name, r in s.get("ensembles", {}).items():
        lines.append(f"| {name.replace('_', ' ')}: model-epochs/s ({r['images_per_model']:,} images each) | "
                     f"{r['model_epochs_per_s']:.2f} | measured |")
    for name, r in s.get("boundary", {}).items():
        lines.append(f"| {name}: seconds per example ({r['examples']} examples, {r['iters']} iterations) | "
                     f"{r['s_per_example']:.2f} | measured |")
    tests = s.get("gpu_tests", {})
    if "passed" in tests:
        lines.append(f"| gpu-marked tests | {len(tests['passed'])} passed, {len(tests['failed'])} failed | measured |")
    return lines + [""]


def update_readme(path: Path, table: str) -> None:
    text = path.read_text()
    if MARK_START not in text or MARK_END not in text:
        raise ValueError(f"{path} has no {MARK_START} ... {MARK_END} block to replace")
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    path.write_text(f"{head}{MARK_START}\n{table}\n{MARK_END}{tail}")


def readme_block(path: Path) -> str:
    """The text between the README's gpu-table markers."""
    text = path.read_text()
    return text.split(MARK_START, 1)[1].split(MARK_END, 1)[0].strip("\n")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="?", type=Path, help="a gpu_check JSON report (else: assumed rates)")
    parser.add_argument("--gpu", default=DEFAULT_GPU, help=f"without a report: torch's exact device name "
                        f"(default {DEFAULT_GPU!r}, an H100 SXM)")
    parser.add_argument("--profile", default="paper", help="the profile whose plan is priced (default paper)")
    parser.add_argument("--readme", type=Path, help="rewrite the block between the gpu-table markers")
    args = parser.parse_args(argv)
    if args.report is not None:
        report = json.loads(args.report.read_text())
        rates = rates_from_report(report)
    else:
        report = None
        try:
            rates = assumed_rates(args.gpu)
        except ValueError as err:
            parser.error(str(err))
    table = render(rates, report, args.profile)
    if args.readme:
        update_readme(args.readme, table)
    print(table)
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
