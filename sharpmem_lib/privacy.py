"""Privacy risk of trained targets (paper §4, Tables 1 and 2).

:func:`evaluate_privacy` attacks one cached target model under several attack data splits
(split seeds; the target is the same for all of them, see :mod:`sharpmem_lib.splits`):
test accuracy, the best single-query attack and the label-only multi-query attack, under
both evaluation protocols. :func:`table1` aggregates over split seeds *and* over training
seeds, reporting the two spreads separately (the paper varies only the split); :func:`table2`
gives the percentage change against SGD, as the paper's Table 2 does.

Chapter 3 is one call: :class:`PrivacyConfig` (a recipe per dataset, :mod:`sharpmem_lib.recipes`;
the algorithm knobs; seeds; boundary and LiRA settings) -> :func:`privacy_study` ->
:class:`PrivacyStudy` (Tables 1 and 2, paired tests, directions, the protocol gap, the
boundary-distance attacks, :class:`LiraStudy`, and the chapter's Holm family). Its sentences
are :func:`sharpmem_lib.report.privacy_sentences`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

import numpy as np
import pandas as pd

from sharpmem_lib.attacks import (PERTURBATIONS, PROTOCOLS, attack_sets, choose, label_only_attack,
                                  label_only_from_scores, robustness_scores, run_attacks, split_models)
from sharpmem_lib.splits import make_partition, published_partition
from sharpmem_lib.stats import PairedTest, paired_test
from sharpmem_lib.tensors import select_device
from sharpmem_lib.validation import check_choice, check_fraction, check_positive

__all__ = ["boundary_attack", "default_label_only", "evaluate_privacy", "evaluate_runs", "summarize", "table1",
           "table2", "significance", "paired_tests", "paper_directions", "format_table1",
           "directions", "PrivacyConfig", "PrivacyStudy", "LiraStudy", "privacy_study", "lira_study",
           "POWER_TARGETS", "power_targets", "chance_datasets"]

METRICS = ("test_acc", "single_query", "multi_query")

NN_OPTIONS = {
    "selena": {},  # SELENA's InferenceAttack_HZ, 150 epochs, Adam 1e-4, batch 512 (attacks.nn_attack's defaults)
    "cpu": {"scale": 0.125, "batch_size": 64, "lr": 1e-3, "epochs": 30, "init_std": None},
}
"""Settings of the NN attack: SELENA's network and training, or a narrower network with
PyTorch's initialisation and smaller batches, which learns from a few hundred attacker
examples in seconds (SELENA's initialisation needs thousands of steps to move at all)."""


def default_label_only(X: np.ndarray) -> tuple[str, list[float], int]:
    """(perturbation, strengths, repeats) suited to a dataset's features: translations of
    up to 4 pixels (1 for 8x8 images) with flips for images; 1..30 bit flips for binary
    features (SELENA); Gaussian noise otherwise."""
    if X.ndim == 4:
        return "translations", [4 if X.shape[-1] >= 28 else 1], 1
    values = np.unique(X[: min(len(X), 1000)])
    if set(values.tolist()) <= {0.0, 1.0}:
        return "bitflips", [1, 2, 5, 10, 20, 30], 20
    return "noise", [0.1, 0.3, 1.0], 20


def evaluate_privacy(artifact, data, split_seeds: list[int], label_only: tuple[str, list[float], int] | None = None,
                     which: str = "best", output_defense=None, nn: str = "cpu") -> pd.DataFrame:
    """One row per (split seed, protocol): test and train accuracy, best single-query attack
    (balanced accuracy, AUC, TPR at 1 % FPR, which attack), its best global-threshold
    attack (``single_query_global``), label-only attack accuracy (best, and best with a
    global threshold), under the protocols of :mod:`sharpmem_lib.attacks.thresholds`.
    ``nn``: the NN attack's settings, a key of :data:`NN_OPTIONS`.

    ``output_defense``: an inference-time defense such as
    :class:`~sharpmem_lib.defenses.MemGuard` (``fit(member_logits, nonmember_logits)``,
    ``transform(logits)``). It is fitted on the target's members and the defender's held-out
    validation set, and every output the attacker sees is transformed; label-only attacks
    query the model's labels, which such a defense keeps, so they are unaffected. A defense
    with ``cache_config()`` (its settings as JSON data, e.g. MemGuard's) has its rows kept in
    the target's folder under those settings, like the undefended rows; others are evaluated
    on every call. Nothing is fitted or queried when every split's rows are in the store.
    """
    check_choice("which", which, ["best", "final"])
    check_choice("nn", nn, NN_OPTIONS)
    kind, strengths, repeats = label_only or default_label_only(data.X)
    check_choice("perturbation", kind, PERTURBATIONS)
    outputs = artifact.outputs()
    plain = outputs[f"logits_{which}"]
    correct = plain.argmax(1) == data.y  # the defense keeps every label (checked when it is fitted)
    held_out = ~outputs["member"] & ~outputs["validation"]
    lazy: dict = {}  # fitted only when a split is not in the store: a warm build neither fits nor queries

    def defended_logits() -> np.ndarray:
        if "logits" not in lazy:
            logits = plain
            if output_defense is not None:
                output_defense.fit(plain[outputs["member"]], plain[outputs["validation"]])
                logits = output_defense.transform(plain)
                if (logits.argmax(1) != plain.argmax(1)).any():
                    raise RuntimeError("the output defense changed predicted labels; accuracy would no longer be "
                                       "the model's")
            lazy["logits"] = logits
        return lazy["logits"]

    def target_model():
        if "model" not in lazy:  # label-only queries run where the GPU is
            lazy["model"] = artifact.model(which).to(select_device("auto"))
        return lazy["model"]
    # translations are the same queries in every split: each point is scored once, when a split first needs it
    scored = {s: np.full(len(data.y), np.nan) for s in strengths}

    def split_rows(split_seed: int) -> list[dict]:
        part = make_partition(artifact.config.dataset, data, split_seed)
        sets = attack_sets(part, seed=split_seed)
        labels = sets.take(data.y)
        single = run_attacks(sets.take(defended_logits()), labels, seed=split_seed, num_classes=data.num_classes,
                             nn_options=NN_OPTIONS[nn])
        if kind == "translations":
            used = np.unique(np.concatenate([np.asarray(v) for _, v in sets.items()]))
            for strength, values in scored.items():
                todo = used[np.isnan(values[used])]
                if len(todo):
                    values[todo] = robustness_scores(target_model(), data.X[todo], data.y[todo], kind, strength,
                                                     repeats)
            multi = label_only_from_scores({s: sets.take(v) for s, v in scored.items()}, labels, data.num_classes,
                                           seed=split_seed)
        else:  # random queries drawn per split seed
            multi = label_only_attack(target_model(), sets.take(data.X), labels, kind, strengths, repeats=repeats,
                                      seed=split_seed, num_classes=data.num_classes)
        rows = []
        for protocol in PROTOCOLS:
            best = single.loc[(protocol, "best")]
            global_rows = single.loc[protocol].drop(index="best")
            global_rows = global_rows[[a == "correctness" or a.endswith("_global") for a in global_rows.index]]
            best_global = global_rows.loc[choose(global_rows, protocol)]
            rows.append({
                "split_seed": split_seed, "protocol": protocol,
                "test_acc": float(correct[held_out].mean()), "train_acc": float(correct[outputs["member"]].mean()),
                "single_query": float(best["balanced_acc"]), "single_auc": float(best["auc"]),
                "single_tpr@1%fpr": float(best["tpr@1%fpr"]),
                "best_single_attack": str(best["chosen"]),
                "single_query_global": float(best_global["balanced_acc"]),
                "multi_query": float(multi.loc[(protocol, "best"), "balanced_acc"]),
                "multi_query_global": float(multi.loc[(protocol, "global"), "balanced_acc"]),
                "multi_strength": _plain(multi.loc[(protocol, "best"), "strength"]),
                "multi_threshold": _plain(multi.loc[(protocol, "best"), "chosen_threshold"]),
            })
        return rows

    # an output defense that states its settings (cache_config) is cached under them; one that does not is
    # evaluated every time
    defense_config = None if output_defense is None else getattr(output_defense, "cache_config", lambda: None)()
    rows = []
    for split_seed in split_seeds:
        if output_defense is None or defense_config is not None:  # kept in the target's folder: a warm build
            name = (f"privacy-v1-{which}-split{split_seed}-nn_{nn}-{kind}-{'_'.join(f'{s:g}' for s in strengths)}"
                    f"-r{repeats}.json")
            if defense_config is not None:
                blob = json.dumps(defense_config, sort_keys=True, allow_nan=False)
                name = name.replace(".json", f"-defense_{hashlib.sha256(blob.encode()).hexdigest()[:16]}.json")
            rows += artifact.cached_json(name, lambda seed=split_seed: split_rows(seed))
        else:
            rows += split_rows(split_seed)
    return pd.DataFrame(rows)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (JSON-able)."""
    return value.item() if isinstance(value, np.generic) else value


def table1(results: pd.DataFrame, protocol: str = "honest") -> pd.DataFrame:
    """Mean and two spreads per (dataset, algorithm) for each metric of ``METRICS``.

    ``results``: rows of :func:`evaluate_privacy` with ``dataset``, ``algorithm`` and
    ``train_seed`` columns added. ``<m>_std_split``: standard deviation over split seeds,
    averaged over training seeds (the paper's ±); ``<m>_std_train``: standard deviation over
    training seeds of the split-averaged value. ``diverged`` (with a ``status`` column in
    ``results``): the training seeds whose target diverged, left out of the means.
    """
    check_choice("protocol", protocol, sorted(results["protocol"].unique()))
    df = results[results["protocol"] == protocol]
    keys = ["dataset", "algorithm"]
    per_seed = df.groupby(keys + ["train_seed"], sort=False)[list(METRICS)]
    means, split_std = per_seed.mean(), per_seed.std(ddof=1)
    out = means.groupby(level=keys, sort=False).mean().add_suffix("_mean")
    out = out.join(split_std.groupby(level=keys, sort=False).mean().add_suffix("_std_split"))
    out = out.join(means.groupby(level=keys, sort=False).std(ddof=1).add_suffix("_std_train"))
    if "status" in df:
        bad = df[df["status"].astype(str).str.startswith("diverged")]
        out["diverged"] = bad.groupby(keys)["train_seed"].nunique().reindex(out.index, fill_value=0).astype(int)
    return out


def table2(t1: pd.DataFrame, baseline: str = "sgd") -> pd.DataFrame:
    """Percentage change of each metric's mean against ``baseline`` (the paper's Table 2)."""
    rows = []
    for (dataset, algorithm), row in t1.iterrows():
        base = t1.loc[(dataset, baseline)]
        rows.append({"dataset": dataset, "algorithm": algorithm,
                     **{m: 100 * (row[f"{m}_mean"] - base[f"{m}_mean"]) / base[f"{m}_mean"] for m in METRICS}})
    return pd.DataFrame(rows).set_index(["dataset", "algorithm"])


def paired_tests(results: pd.DataFrame, protocol: str = "honest", baseline: str = "sgd",
                 metrics: tuple[str, ...] = METRICS) -> dict[tuple[str, str, str], PairedTest]:
    """:func:`~sharpmem_lib.stats.paired_test` of each algorithm against ``baseline``, keyed
    (dataset, algorithm, metric): pairs are training seeds (same seed: same initialisation
    and data order), each averaged over split seeds first. Fewer than 3 common seeds give an
    insufficient result (no p-value)."""
    df = results[results["protocol"] == protocol]
    per_seed = df.groupby(["dataset", "algorithm", "train_seed"])[list(metrics)].mean()
    out = {}
    for dataset in per_seed.index.get_level_values("dataset").unique():
        base = per_seed.loc[(dataset, baseline)]
        for algorithm in per_seed.loc[dataset].index.get_level_values("algorithm").unique():
            if algorithm == baseline:
                continue
            other = per_seed.loc[(dataset, algorithm)]
            common = base.index.intersection(other.index)
            for m in metrics:
                out[(dataset, algorithm, m)] = paired_test(other.loc[common, m].to_numpy(float),
                                                           base.loc[common, m].to_numpy(float))
    return out


def significance(results: pd.DataFrame, protocol: str = "honest", baseline: str = "sgd") -> pd.DataFrame:
    """:func:`paired_tests` as a table, one row per (dataset, algorithm): for each metric the
    mean paired difference (``<m>_diff``), the test used (``<m>_test``) and its unadjusted
    p-value (``<m>_p``; NaN with fewer than 3 training seeds)."""
    rows: dict = {}
    for (dataset, algorithm, m), t in paired_tests(results, protocol, baseline).items():
        row = rows.setdefault((dataset, algorithm), {"dataset": dataset, "algorithm": algorithm, "train_seeds": t.n})
        row.update({f"{m}_diff": t.estimate, f"{m}_test": t.method, f"{m}_p": t.p_value})
    return pd.DataFrame(list(rows.values())).set_index(["dataset", "algorithm"])


def paper_directions(paper_t2: pd.DataFrame) -> dict[tuple[str, str], int]:
    """The paper's sign (+1/−1) of each (algorithm, metric) change against SGD in its Table 2,
    where it is the same on all of the paper's datasets; left out where the signs differ."""
    out = {}
    for algorithm in [a for a in paper_t2.index.get_level_values("algorithm").unique() if a != "sgd"]:
        for m in METRICS:
            signs = set(np.sign(paper_t2.xs(algorithm, level="algorithm")[m]).tolist())
            if len(signs) == 1 and signs != {0.0}:
                out[(algorithm, m)] = int(signs.pop())
    return out


HEADERS = {"test_acc": "test acc (%)", "single_query": "single-query attack (%)",
           "multi_query": "multi-query attack (%)"}


def chance_datasets(targets: pd.DataFrame, tol: float = 0.02) -> dict[str, tuple[float, float]]:
    """Datasets whose honest best single-query attack has no membership signal: the mean AUC
    against SGD's targets is within ``tol`` of 0.5 (chance). ``targets``: one row per target,
    :meth:`PrivacyStudy.target_table` (index (dataset, algorithm, train_seed), column
    ``single_auc``). Returns dataset -> (lowest, highest) AUC over that dataset's targets of
    every algorithm. A fixed rule, not a choice of the Holm family: such rows stay in it, and
    their signs are no evidence either way."""
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    auc = targets["single_auc"]
    out = {}
    for dataset, rows in auc.groupby(level="dataset", sort=False):
        sgd = rows[rows.index.get_level_values("algorithm") == "sgd"]
        if len(sgd) and abs(float(sgd.mean()) - 0.5) <= tol:
            out[dataset] = (float(rows.min()), float(rows.max()))
    return out


def format_table1(t1: pd.DataFrame) -> pd.DataFrame:
    """'mean ± split-std' in percent, with the training-seed std in brackets where known.

    Test accuracy has no split spread (the target and its test set do not depend on the
    attack split), so only its training-seed spread is shown."""
    out = pd.DataFrame(index=t1.index)
    for m, header in HEADERS.items():
        cells = []
        for _, row in t1.iterrows():
            cell = f"{100 * row[f'{m}_mean']:.2f}"
            if not (m == "test_acc" and f"{m}_std_split" in row):
                spread = row.get(f"{m}_std_split", row.get(f"{m}_std", float("nan")))
                # one attack split (or seed) has no standard deviation: not a spread of 0.00
                alone = "one attack split" if f"{m}_std_split" in row else "n = 1"
                cell += f" ± {100 * spread:.2f}" if np.isfinite(spread) else f" ({alone}, no spread)"
            if f"{m}_std_train" in row and np.isfinite(row[f"{m}_std_train"]):
                cell += f" [± {100 * row[f'{m}_std_train']:.2f}]"
            cells.append(cell)
        out[header] = cells
    if "diverged" in t1 and t1["diverged"].any():  # targets left out of the means: shown, not hidden
        out["diverged targets"] = t1["diverged"]
    return out


def directions(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Sign of each change against SGD (Table 2) in our run and in the paper, per algorithm:
    the paper's signs per dataset, ours per dataset, and whether ours agree with the sign the
    paper reports on every one of its datasets (None where the paper's signs disagree)."""
    rows = []
    sign = lambda v: "+" if v > 0 else ("−" if v < 0 else "0")  # noqa: E731
    for algorithm in [a for a in ours.index.get_level_values("algorithm").unique() if a != "sgd"]:
        for m, header in HEADERS.items():
            paper_signs = {d: sign(paper.loc[(d, algorithm), m]) for d in paper.index.get_level_values(0).unique()}
            consistent = set(paper_signs.values())
            our_signs = {d: sign(ours.loc[(d, algorithm), m]) for d in ours.index.get_level_values(0).unique()}
            paper_sign = consistent.pop() if len(consistent) == 1 else None
            rows.append({"algorithm": algorithm, "metric": header,
                         "paper": " ".join(f"{d}:{s}" for d, s in paper_signs.items()),
                         "this run": " ".join(f"{d}:{s}" for d, s in our_signs.items()),
                         "agrees": None if paper_sign is None else all(s == paper_sign for s in our_signs.values())})
    return pd.DataFrame(rows).set_index(["algorithm", "metric"])


def evaluate_runs(runs: list[dict], data, split_seeds: list[int], whiches: tuple[str, ...] = ("final", "best"),
                  results_dir=None, data_dir=None, progress: bool = True, nn: str = "cpu") -> tuple[pd.DataFrame, dict]:
    """Train (or load) and attack many targets: the sweeps and defense comparisons of §5.

    Each entry of ``runs`` holds a ``config`` (:class:`~sharpmem_lib.experiments.ExperimentConfig`),
    optionally an ``output_defense`` factory (e.g. ``MemGuard``; called once per evaluation),
    optionally ``whiches`` (the weight choices to attack for that run, overriding ``whiches``:
    a study attacks only the weights it shows; ``()`` trains or loads the run, attacks nothing),
    and any label fields (``method``, ``lam``, ``seed``, ...), which are copied into every row.
    Returns the rows of :func:`evaluate_privacy` for each run and each weight choice in
    ``whiches``, with a ``diverged`` column (True, and NaN metrics, for a run whose training
    diverged: it is reported, not dropped), and the artifacts by position in ``runs``.
    ``nn``: the NN attack's settings, a key of :data:`NN_OPTIONS`.
    """
    from tqdm.auto import tqdm

    from sharpmem_lib.experiments import run_experiment, train_stacked

    for which in [*whiches, *(w for run in runs for w in run.get("whiches", ()))]:
        check_choice("which", which, ["best", "final"])
    check_choice("nn", nn, NN_OPTIONS)
    # missing targets that differ only by their seed train as one ensemble each; run_experiment reads them
    train_stacked([run["config"] for run in runs], results_dir, data_dir=data_dir, progress=progress)
    frames, artifacts = [], {}
    for i, run in enumerate(tqdm(runs, desc="targets", disable=not progress, leave=False)):
        labels = {k: v for k, v in run.items() if k not in ("config", "output_defense", "whiches")}
        run_whiches = tuple(run.get("whiches", whiches))
        try:
            artifact = run_experiment(run["config"], results_dir, data_dir=data_dir, progress=False)
        except FloatingPointError as err:
            frames.append(pd.DataFrame([{**labels, "which": w, "protocol": p, "diverged": True, "error": str(err)}
                                        for w in run_whiches or whiches for p in PROTOCOLS]))
            continue
        artifacts[i] = artifact
        for which in run_whiches:
            defense = run.get("output_defense")
            rows = evaluate_privacy(artifact, data, split_seeds, which=which,
                                    output_defense=defense() if defense is not None else None, nn=nn)
            frames.append(rows.assign(**labels, which=which, diverged=False))
    if not frames:  # every run attacked nothing (whiches=()) and none diverged
        return pd.DataFrame(columns=["which", "protocol", "diverged"]), artifacts
    return pd.concat(frames, ignore_index=True), artifacts


def summarize(results: pd.DataFrame, by: list[str], metrics: tuple[str, ...] = METRICS) -> pd.DataFrame:
    """Mean and standard deviation of each metric over training seeds and split seeds, per
    group ``by`` (e.g. ``["lam", "which", "protocol"]``); ``diverged`` counts the runs that
    diverged in the group (their metrics are NaN and do not enter the means)."""
    grouped = results.groupby(by, sort=False, dropna=False)
    out = grouped[list(metrics)].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    seeds = "seed" if "seed" in results else None

    def diverged(g):  # how many seeds (or whether the run) diverged
        return g.loc[g["diverged"], seeds].nunique() if seeds else int(g["diverged"].any())

    out["diverged"] = grouped.apply(diverged, include_groups=False) if "diverged" in results else 0
    return out.reset_index()


def boundary_attack(artifact, data, split_seed: int = 0, method: str = "hopskipjump", max_points: int = 50,
                    which: str = "best", max_iter: int | None = None) -> pd.DataFrame:
    """The boundary-distance label-only attack (:func:`~sharpmem_lib.attacks.boundary_distance_attack`)
    on a cached target, one row per (protocol, threshold kind: global, class, best); cached as JSON in the
    artifact's folder, since each example costs hundreds of model queries."""
    from sharpmem_lib.attacks import BOUNDARY_METHODS, boundary_distance_attack

    check_choice("method", method, BOUNDARY_METHODS)
    check_choice("which", which, ["best", "final"])

    def compute() -> list[dict]:
        sets = attack_sets(make_partition(artifact.config.dataset, data, split_seed), seed=split_seed)
        table = boundary_distance_attack(artifact.model(which).to(select_device("auto")), sets.take(data.X),
                                         sets.take(data.y), method, max_points=max_points, seed=split_seed,
                                         max_iter=max_iter)
        return table.reset_index().to_dict(orient="records")

    # v2: thresholds fitted on the attacker-known sets under both protocols, rows per threshold kind
    name = f"boundary-v2-{method}-{which}-split{split_seed}-n{max_points}-it{max_iter or 0}.json"
    return pd.DataFrame(artifact.cached_json(name, compute)).set_index(["protocol", "threshold"])


# ------------------------------------------------------------------ chapter 3's study


GLOBAL_HEADERS = {"single_query": "single-query, best (%)",
                  "single_query_global": "single-query, global thresholds only (%)",
                  "multi_query": "multi-query, best (%)",
                  "multi_query_global": "multi-query, global threshold only (%)"}
LIRA_HEADERS = {"auc": "AUC (%)", "tpr@0.1%fpr": "TPR @ 0.1 % FPR (%)", "tpr@0fp": "TPR @ zero false positives (%)",
                "tpr@1%fpr": "TPR @ 1 % FPR (%)"}
PROTOCOL_NAMES = {"honest": "honest protocol", "selena": "SELENA's protocol"}
LIRA_EXPECTED = {"sam": 1, "sharpreg": -1}  # the paper: SAM exposes memorized points more than SGD, SharpReg less


@dataclass(frozen=True)
class PrivacyConfig:
    """Chapter 3 (paper §4, Tables 1 and 2): which targets to train and how to attack them.

    ``recipes`` maps each dataset to its training recipe (:mod:`sharpmem_lib.recipes`);
    each of ``methods`` (keys of :data:`~sharpmem_lib.recipes.METHODS`, SGD first: the
    baseline) trains ``train_seeds`` targets per dataset with the algorithm ``knobs``
    (``sam_rho``, ``sharpreg_rho``, ...), each attacked under ``split_seeds`` attack splits
    using its ``which`` weights. The boundary-distance attacks run on ``boundary_dataset``
    ('' skips them) against training seed 0 and split seed 0; LiRA on ``lira_dataset`` ('' skips it)
    with ``lira_models`` subset-trained models per method (:func:`lira_study`), each trained with
    ``lira_recipe`` ('' for the dataset's recipe in ``recipes``) on a random ``lira_fraction`` of
    the members, so each target has the other ``1 - lira_fraction`` of them as non-members
    (Carlini et al. train each shadow on half). ``nn_attack``: the NN attack's settings (a key
    of :data:`NN_OPTIONS`): ``"selena"`` is SELENA's (150 epochs, Adam 1e-4, batch 512; the
    paper profile's), ``"cpu"`` the short CPU variant. Every value is checked on
    construction, before anything trains."""

    recipes: Mapping[str, str]
    methods: tuple[str, ...] = ("sgd", "sam", "sharpreg")
    knobs: Mapping[str, float] = field(default_factory=dict)
    train_seeds: int = 3
    split_seeds: int = 5
    which: str = "best"
    boundary_dataset: str = ""
    boundary_methods: tuple[str, ...] = ("hopskipjump", "cw")
    boundary_points: int = 50
    boundary_iters: int = 0
    lira_dataset: str = ""
    lira_models: int = 128
    lira_targets: int = 32
    lira_memorization_models: int = 48
    lira_recipe: str = ""
    lira_fraction: float = 0.7
    nn_attack: str = "cpu"

    def __post_init__(self) -> None:
        from sharpmem_lib.attacks import BOUNDARY_METHODS
        from sharpmem_lib.recipes import METHODS, check_knobs, get_recipe

        if not isinstance(self.recipes, Mapping) or not self.recipes:
            raise ValueError(f"recipes={self.recipes!r} is not valid; it must map each dataset to a recipe")
        for recipe in self.recipes.values():
            get_recipe(recipe)
        object.__setattr__(self, "recipes", dict(self.recipes))
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "boundary_methods", tuple(self.boundary_methods))
        object.__setattr__(self, "knobs", dict(self.knobs))
        for method in self.methods:
            check_choice("methods", method, METHODS)
        if not self.methods or self.methods[0] != "sgd":
            raise ValueError(f"methods={list(self.methods)!r} is not valid; SGD, the baseline, must come first")
        check_knobs(self.knobs)
        check_choice("which", self.which, ["best", "final"])
        check_choice("nn_attack", self.nn_attack, NN_OPTIONS)
        for name in ("train_seeds", "split_seeds", "boundary_points", "lira_models", "lira_targets"):
            check_positive(name, getattr(self, name), integer=True)
        for name in ("boundary_dataset", "lira_dataset"):
            if getattr(self, name):
                check_choice(name, getattr(self, name), list(self.recipes))
        for method in self.boundary_methods:
            check_choice("boundary_methods", method, BOUNDARY_METHODS)
        if self.lira_recipe:
            get_recipe(self.lira_recipe)
        check_fraction("lira_fraction", self.lira_fraction)
        if self.lira_dataset:
            split_models(self.lira_models, self.lira_targets, self.lira_memorization_models)  # checks the counts

    def targets(self) -> dict[tuple[str, str, int], Any]:
        """(dataset, method, training seed) -> the target's ExperimentConfig."""
        from sharpmem_lib.experiments import experiment_config

        return {(d, m, s): experiment_config(r, d, m, s, **self.knobs)
                for d, r in self.recipes.items() for m in self.methods for s in range(self.train_seeds)}

    def lira_config(self, method: str):
        """The SubsamplingConfig of LiRA's models for ``method`` (``lira_recipe``, else the dataset's
        recipe, on ``lira_dataset``; ``lira_fraction`` of the members each; seed 0)."""
        from sharpmem_lib.recipes import get_recipe, train_config
        from sharpmem_lib.subsampling import SubsamplingConfig

        r = get_recipe(self.lira_recipe or self.recipes[self.lira_dataset])
        return SubsamplingConfig(self.lira_dataset, r.model, train_config(r, method, 0, **self.knobs),
                                 n_models=self.lira_models, fraction=self.lira_fraction,
                                 model_kwargs=dict(r.model_kwargs))

    def as_dict(self) -> dict:
        """Everything that defines the study, with each recipe's full settings (provenance)."""
        from sharpmem_lib.recipes import recipe_settings

        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        out["recipes"] = {d: recipe_settings(r) for d, r in self.recipes.items()}
        return out


@dataclass
class LiraStudy:
    """LiRA against each method's subset-trained models (:func:`lira_study`)."""

    dataset: str
    split: Any  # attacks.LiraModels
    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # method label -> (member, scores), for the ROC figure
    per_target: pd.DataFrame  # lira_evaluation's rows with an 'algorithm' column
    by_quintile: pd.DataFrame  # algorithm, target, quintile (1 = most memorized; 0 = unmeasured), tpr at 1 % FPR
    groups: np.ndarray | None = None  # memorization group of each training point (attacks.memorization_groups)
    accuracy: pd.DataFrame | None = None  # per (algorithm, target): train_acc on its subset, test_acc held out

    @property
    def group_sizes(self) -> dict[int, int]:
        """{group: training points}: group 0 has no measured memorization (no estimate, or a
        score of exactly 0), groups 1.. rank the others (1 = most memorized)."""
        from sharpmem_lib.attacks import group_sizes

        return {} if self.groups is None else group_sizes(self.groups)

    @property
    def n_ranked(self) -> int:
        """The number of ranked memorization groups (5 unless fewer points have a non-zero score);
        group ``n_ranked`` is the least memorized measured one."""
        return int(self.by_quintile["quintile"].max())

    @property
    def low_metric(self) -> str:
        """TPR at 0.1 % FPR where every target has >= 1,000 non-members, else at zero false positives."""
        from sharpmem_lib.attacks import low_fpr_metric

        return low_fpr_metric(int(self.per_target["n_nonmembers"].min()))

    def summary(self) -> pd.DataFrame:
        """Mean and standard deviation over targets of AUC, the low-FPR TPR and TPR at 1 % FPR, per method."""
        return self.per_target.groupby("algorithm", sort=False)[["auc", self.low_metric, "tpr@1%fpr"]].agg(
            ["mean", "std"])

    def quintile_means(self) -> pd.Series:
        """Mean TPR at 1 % FPR per (algorithm, quintile)."""
        return self.by_quintile.groupby(["algorithm", "quintile"])["tpr"].mean()

    def _paired(self) -> pd.DataFrame:  # targets are paired across methods: same subset and initialisation
        ranked = self.by_quintile[self.by_quintile["quintile"] != 0]  # group 0: no measured memorization
        return ranked.rename(columns={"algorithm": "method", "target": "seed"})

    def gains(self, method: str, baseline: str = "sgd") -> pd.DataFrame:
        """:func:`~sharpmem_lib.stats.paired_gain` of ``method`` over ``baseline`` per ranked
        memorization group (group 0, no measured memorization, is left out), paired by target."""
        from sharpmem_lib.stats import paired_gain

        return paired_gain(self._paired(), method, baseline, "tpr", by="quintile")

    def tests(self, method: str, baseline: str = "sgd") -> dict:
        """The paired tests behind :meth:`gains`, keyed by quintile."""
        from sharpmem_lib.stats import paired_tests_by

        return paired_tests_by(self._paired(), method, baseline, "tpr", "quintile")


def lira_study(config: PrivacyConfig, results_dir=None, data_dir=None) -> LiraStudy:
    """LiRA on ``config.lira_dataset`` (Carlini et al. 2022): for each method, ``lira_models``
    models on random 70 % subsets (:func:`~sharpmem_lib.subsampling.run_subsampling_experiment`,
    cached); each of ``lira_targets`` of them is in turn the target and the rest of its pool
    its shadows; ``lira_memorization_models`` further models (never target nor shadow)
    estimate each training point's memorization (eq. 1) under SGD, whose quintiles among the
    points with a non-zero score group the attack's true positives (group 0: no measured
    memorization; fewer than five groups where too few points have a non-zero score)."""
    from sharpmem_lib.attacks import lira_evaluation, memorization_groups
    from sharpmem_lib.subsampling import run_subsampling_experiment

    split = split_models(config.lira_models, config.lira_targets, config.lira_memorization_models)
    curves, summaries, rows, quintile, accuracy = {}, [], [], None, []
    for name in config.methods:  # SGD first: its memorization models define the quintiles
        runs, _, _ = run_subsampling_experiment(config.lira_config(name), results_dir=results_dir, data_dir=data_dir)
        if quintile is None:  # 1 = most memorized fifth
            quintile = memorization_groups(runs.masks, runs.correct_train, split.memorization)
        per_target, scores, member = lira_evaluation(runs.confidence_train, runs.masks, split, group=quintile)
        curves[name.upper()] = (member, scores)
        for t in split.targets:  # how overfit the targets are: accuracy on their own subset and on held-out points
            trained = np.asarray(runs.masks[t], bool)
            accuracy.append({"algorithm": name, "target": int(t),
                             "train_acc": float(np.asarray(runs.correct_train[t], float)[trained].mean()),
                             "test_acc": float(np.asarray(runs.correct_test[t], float).mean())})
        summaries.append(per_target.assign(algorithm=name))
        rows += [{"algorithm": name, "target": t, "quintile": q,
                  "tpr": per_target[f"tpr@1%fpr_g{q}"].get(t, np.nan) if f"tpr@1%fpr_g{q}" in per_target else np.nan}
                 for q in range(int(quintile.max()) + 1) for t in per_target.index]
    return LiraStudy(config.lira_dataset, split, curves, pd.concat(summaries), pd.DataFrame(rows), quintile,
                     pd.DataFrame(accuracy))


@dataclass
class PrivacyStudy:
    """Chapter 3's results (:func:`privacy_study`): ``results`` holds one row per (dataset,
    method, training seed, split seed, protocol) of :func:`evaluate_privacy`; ``paper`` is the
    paper's Table 1 (:func:`sharpmem_lib.paper.paper_table1`), the reference for directions
    and expected signs; ``boundary`` the boundary-distance rows (or None); ``lira`` the
    :class:`LiraStudy` (or None)."""

    config: PrivacyConfig
    results: pd.DataFrame
    paper: pd.DataFrame
    boundary: pd.DataFrame | None = None
    lira: LiraStudy | None = None

    @property
    def diverged(self) -> dict:
        """(dataset, algorithm, training seed) -> reason, for each target that diverged: its
        rows in ``results`` have NaN metrics and a ``diverged: ...`` status, and its pairs are
        left out of the paired tests (counted in each verdict)."""
        if "status" not in self.results:
            return {}
        bad = self.results[self.results["status"].astype(str).str.startswith("diverged")]
        return {(r.dataset, r.algorithm, int(r.train_seed)): r.status.removeprefix("diverged: ")
                for r in bad.drop_duplicates(["dataset", "algorithm", "train_seed"]).itertuples()}

    # Tables 1 and 2 -----------------------------------------------------------------
    @cached_property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Table 1 (:func:`table1`) under each protocol."""
        return {p: table1(self.results, p) for p in ("honest", "selena")}

    @property
    def table2(self) -> pd.DataFrame:
        """This run's Table 2 under SELENA's protocol (comparable with the paper's)."""
        return table2(self.tables["selena"])

    @property
    def paper_table2(self) -> pd.DataFrame:
        return table2(self.paper)

    @property
    def paper_sign(self) -> dict[tuple[str, str], int]:
        """The paper's sign per (algorithm, metric), where it is the same on all its datasets."""
        return paper_directions(self.paper_table2)

    @property
    def significance(self) -> pd.DataFrame:
        return significance(self.results, "selena")

    @property
    def directions(self) -> pd.DataFrame:
        return directions(self.table2, self.paper_table2)

    # protocols -------------------------------------------------------------------------
    def protocol_gap(self) -> pd.DataFrame:
        """SELENA's protocol minus the honest one, best attack, in percentage points."""
        cols = [f"{m}_mean" for m in ("single_query", "multi_query")]
        gap = (self.tables["selena"][cols] - self.tables["honest"][cols]) * 100
        gap.columns = ["single-query: SELENA − honest (points)", "multi-query: SELENA − honest (points)"]
        return gap

    def global_only(self) -> pd.DataFrame:
        """Mean best attack and best global-threshold attack per (protocol, dataset, algorithm)."""
        return self.results.groupby(["protocol", "dataset", "algorithm"], sort=False)[list(GLOBAL_HEADERS)].mean()

    def optimizer_effect(self) -> float:
        """The largest |method − SGD| in the best single-query attack under the honest protocol (points)."""
        means = self.tables["honest"]["single_query_mean"]
        return max(abs(means[(d, a)] - means[(d, "sgd")]) * 100 for d, a in means.index if a != "sgd")

    def boundary_table(self) -> pd.DataFrame | None:
        """Balanced accuracy and AUC of the best-threshold boundary attacks, per (algorithm, attack) and protocol."""
        if self.boundary is None:
            return None
        best = self.boundary[self.boundary.threshold == "best"]
        return best.pivot_table(index=["algorithm", "attack"], columns="protocol", values=["balanced_acc", "auc"],
                                sort=False)

    # the chapter's family of tests ----------------------------------------------------
    def target_table(self) -> pd.DataFrame:
        """Per target (dataset, algorithm, training seed), means over split seeds: train and
        test accuracy, the generalization gap (train − test), and the honest protocol's best
        single-query attack (balanced accuracy and AUC): how much membership signal each
        target offers, nothing chosen on evaluation data."""
        h = self.results[self.results["protocol"] == "honest"]
        out = h.groupby(["dataset", "algorithm", "train_seed"], sort=False)[
            ["train_acc", "test_acc", "single_query", "single_auc"]].mean()
        out.insert(2, "gap", out["train_acc"] - out["test_acc"])
        return out

    def protocol_gap_tests(self, metric: str = "single_query") -> dict[tuple[str, str], PairedTest]:
        """SELENA's protocol − the honest one in ``metric``, paired by training seed (each
        target's split-averaged value under both protocols), per (dataset, algorithm)."""
        per = self.results.groupby(["dataset", "algorithm", "train_seed", "protocol"])[metric].mean().unstack()
        return {(d, a): paired_test(g["selena"].to_numpy(float), g["honest"].to_numpy(float))
                for (d, a), g in per.groupby(level=["dataset", "algorithm"], sort=False)}

    # the chapter's family of tests ----------------------------------------------------
    @cached_property
    def family(self) -> tuple[dict, dict, dict]:
        """(tests, expected signs, labels). Keys ('table2', dataset, algorithm, metric,
        protocol) for Table 2's paired tests under each protocol, the honest one (primary:
        nothing chosen on evaluation data) and SELENA's (comparable with the paper), for test
        accuracy, the best single-query attack and the label-only (multi-query) attack;
        expected: the paper's sign, 0 where its sign varies across its datasets (no paper
        direction: exploratory). ('lira', method, group) for LiRA's per-group tests (SAM +1,
        SharpReg −1), exploratory (the paper runs no LiRA); ('gap', dataset, algorithm):
        SELENA − honest, exploratory (0: a property of the protocols, not a claim)."""
        from sharpmem_lib.recipes import METHODS

        def method_label(m: str) -> str:
            return METHODS[m].label

        tests, expected, labels = {}, {}, {}
        sign = self.paper_sign
        for protocol in ("honest", "selena"):
            for (d, a, m), t in paired_tests(self.results, protocol).items():
                key = ("table2", d, a, m, protocol)
                tests[key], expected[key] = t, sign.get((a, m), 0)
                labels[key] = f"{method_label(a)} − SGD in {HEADERS[m]} on {d}, {PROTOCOL_NAMES[protocol]}"
        for (d, a), t in self.protocol_gap_tests().items():
            tests[("gap", d, a)], expected[("gap", d, a)] = t, 0
            labels[("gap", d, a)] = (f"SELENA's − the honest protocol, best single-query attack, {method_label(a)} "
                                     f"on {d}")
        if self.lira is not None:
            for name, s in LIRA_EXPECTED.items():
                if name not in self.config.methods:
                    continue
                for q, t in self.lira.tests(name).items():
                    tests[("lira", name, q)], expected[("lira", name, q)] = t, s
                    labels[("lira", name, q)] = (f"LiRA TPR at 1 % FPR, {method_label(name)} − SGD, "
                                                 f"memorization group {q}")
        return tests, expected, labels

    @property
    def exploratory(self) -> list:
        """The family's exploratory tests (reported unadjusted): LiRA's (the paper runs no
        LiRA) and the protocol gaps; tests with no paper direction are exploratory too."""
        return [k for k in self.family[0] if k[0] in ("lira", "gap")]

    @cached_property
    def verdicts(self) -> dict:
        """Every test of :meth:`family`; the confirmatory ones (Table 2's tests with a paper
        direction, both protocols) Holm-adjusted together (:func:`~sharpmem_lib.stats.holm_verdicts`)."""
        from sharpmem_lib.stats import holm_verdicts

        tests, expected, _ = self.family
        return holm_verdicts(tests, expected, exploratory=self.exploratory)

    @property
    def labels(self) -> dict:
        return self.family[2]

    @property
    def no_direction(self) -> list:
        """Table 2's tests whose direction the paper does not report consistently."""
        return [k for k in self.family[0] if k[0] == "table2" and (k[2], k[3]) not in self.paper_sign]


def privacy_study(config: PrivacyConfig, paper: pd.DataFrame, results_dir=None, data_dir=None,
                  nn: str | None = None) -> PrivacyStudy:
    """Train (or read from the store) and attack every target of ``config``: Table 1's rows
    (:func:`evaluate_privacy` per target and split seed), the boundary-distance attacks
    (:func:`boundary_attack`) and LiRA (:func:`lira_study`). ``paper``: the paper's Table 1."""
    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.experiments import train_targets

    nn = config.nn_attack if nn is None else nn  # the paper profile: SELENA's NN attack (nn_attack: selena)
    check_choice("nn", nn, NN_OPTIONS)
    targets, opts = config.targets(), dict(data_dir=data_dir)
    frames, loaded, arts = [], {}, {}
    for d in config.recipes:
        loaded[d] = load_dataset(d, data_dir=data_dir)
        # the dataset's missing targets that differ only by their seed train as one ensemble each
        trained = train_targets({k: c for k, c in targets.items() if k[0] == d}, results_dir, **opts)
        for (_, method, seed), art in trained.items():
            arts[(d, method, seed)] = art
            labels = dict(dataset=d, algorithm=method, train_seed=seed)
            if hasattr(art, "reason"):  # diverged: shown with NaN metrics, left out of the paired tests
                frames.append(pd.DataFrame([{"split_seed": s, "protocol": p, **labels,
                                             "status": f"diverged: {art.reason}"}
                                            for s in range(config.split_seeds) for p in PROTOCOLS]))
                continue
            rows = evaluate_privacy(art, loaded[d], list(range(config.split_seeds)), which=config.which, nn=nn)
            frames.append(rows.assign(**labels, status="complete"))
    boundary = None
    if config.boundary_dataset:
        rows = []
        for method in config.methods:
            art = arts[(config.boundary_dataset, method, 0)]
            if hasattr(art, "reason"):  # its target diverged: no boundary attack (the status table says why)
                continue
            for attack in config.boundary_methods:
                t = boundary_attack(art, loaded[config.boundary_dataset], 0, attack, config.boundary_points,
                                    config.which, config.boundary_iters or None)
                rows += [{"algorithm": method, "attack": attack, "protocol": p, "threshold": k,
                          **t.loc[(p, k)].to_dict()} for p, k in t.index]
        boundary = pd.DataFrame(rows) if rows else None
    lira = lira_study(config, results_dir, data_dir) if config.lira_dataset else None
    return PrivacyStudy(config, pd.concat(frames, ignore_index=True), paper, boundary, lira)


POWER_TARGETS = {"auc": 0.60, "half_width": 1.0, "seeds": 5, "evaluated": 2_000, "lira_targets": 32,
                 "lira_nonmembers": 1_000}
"""Issue 16's statistical-power targets for the default book (chapter 3's share of them)."""


def power_targets(study: PrivacyStudy, targets: Mapping[str, float] = POWER_TARGETS) -> pd.DataFrame:
    """Each power target of chapter 3 beside the value this run measured, on the first
    dataset of ``study.config.recipes``: the honest protocol's best single-query attack AUC
    against SGD (mean over training and split seeds), the 95 % CI half-width of each
    method's paired difference to SGD in honest attack accuracy (points, :func:`paired_tests`),
    the training seeds, the evaluation members and non-members per split, and LiRA's targets
    and non-members per target (the fewest). ``met``: whether the value reaches its target."""
    from sharpmem_lib.recipes import METHODS

    c = study.config
    dataset = next(iter(c.recipes))
    honest = study.results[(study.results["protocol"] == "honest") & (study.results["dataset"] == dataset)]
    rows = [("honest best single-query attack AUC against SGD", f">= {targets['auc']:.2f}",
             float(honest.loc[honest["algorithm"] == "sgd", "single_auc"].mean()), lambda v: v >= targets["auc"])]
    tests = paired_tests(study.results, "honest", metrics=("single_query",))
    for method in c.methods[1:]:
        t = tests.get((dataset, method, "single_query"))
        half = 100 * (t.ci_high - t.ci_low) / 2 if t is not None else float("nan")
        rows.append((f"95 % CI half-width, {METHODS[method].label} − SGD honest attack accuracy (points)",
                     f"<= {targets['half_width']:.1f}", half, lambda v: v <= targets["half_width"]))
    rows.append(("training seeds per method", f">= {targets['seeds']}", c.train_seeds,
                 lambda v: v >= targets["seeds"]))
    sizes = attack_sets(published_partition(dataset), seed=0).sizes()
    evaluated = min(sizes["eval_member"], sizes["eval_nonmember"])
    rows.append(("evaluation members = non-members per split", f">= {targets['evaluated']:,}", evaluated,
                 lambda v: v >= targets["evaluated"]))
    if study.lira is not None:
        rows.append(("LiRA targets per algorithm", f">= {targets['lira_targets']}", len(study.lira.split.targets),
                     lambda v: v >= targets["lira_targets"]))
        rows.append(("LiRA non-members per target (fewest)", f">= {targets['lira_nonmembers']:,}",
                     int(study.lira.per_target["n_nonmembers"].min()), lambda v: v >= targets["lira_nonmembers"]))
    # object dtype: counts stay integers; fractions and points rounded for reading (the test reads them as numbers)
    return pd.DataFrame([{"quantity": q, "target": t,
                          "measured": round(v, 3) if isinstance(v, float) else int(v),
                          "met": bool(ok(v)) if v == v else False} for q, t, v, ok in rows],
                        dtype=object).set_index("quantity")
