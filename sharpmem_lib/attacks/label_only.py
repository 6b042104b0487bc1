"""Label-only multi-query attacks (paper §4; the "multi-query" column of Table 1).

Choquette-Choo et al. 2021 and Li & Zhang 2021, as in SELENA's ``attack/Aug_Attack.py``
(``aug_attack``) and ``attack/binary_flip_noise_attack.py`` (``flip_noise_attack``): query
the target on perturbed copies of an example and keep only the predicted labels; members
stay correctly classified under perturbation more often than non-members.
:func:`robustness_scores` is the one mechanism:

* ``translations``: every shift of up to ``strength`` pixels in each direction, with and
  without a horizontal flip ((2s+1)^2 x 2 queries; s = 4 gives SELENA's 162 on CIFAR);
* ``bitflips``: ``strength`` random features flipped, ``repeats`` times (binary tabular
  data: Purchase-100, Texas-100; SELENA tries 1..``flip_range`` flips, 100 repeats);
* ``noise``: Gaussian noise of standard deviation ``strength``, ``repeats`` times
  (continuous features).

The score is the fraction of queries still classified correctly. Its thresholds, and the
choice of strength, are made by :func:`~sharpmem_lib.attacks.thresholds.threshold_attack`
under each protocol: SELENA's code keeps the flip count with the best evaluation accuracy
(``best_attack_acc = max(best_attack_acc, attack_acc)``), the honest protocol the one with
the best accuracy cross-validated on the attacker's own sets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from sharpmem_lib.attacks.thresholds import PROTOCOLS, AttackSets, threshold_attack
from sharpmem_lib.validation import check_choice

__all__ = ["PERTURBATIONS", "label_only_attack", "label_only_from_scores", "perturbed_queries", "robustness_scores",
           "translate"]

PERTURBATIONS = ("translations", "bitflips", "noise")


def translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift images (N, C, H, W) by (dy, dx) pixels, filling with zeros."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def perturbed_queries(X: torch.Tensor, kind: str, strength: float, repeats: int, seed: int):
    """Yield batches of perturbed copies of ``X`` (floats), one query per yield."""
    check_choice("perturbation", kind, PERTURBATIONS)
    if kind == "translations":
        if X.ndim != 4:
            raise ValueError(f"perturbation='translations' needs images (N, C, H, W); got shape {tuple(X.shape)}")
        s = int(strength)
        for flip in (False, True):
            base = X.flip(-1) if flip else X
            for dy in range(-s, s + 1):
                for dx in range(-s, s + 1):
                    yield translate(base, dy, dx)
        return
    gen = torch.Generator().manual_seed(seed)
    for _ in range(repeats):
        if kind == "noise":
            yield X + strength * torch.randn(X.shape, generator=gen).to(X.device)
        else:  # bitflips: flip `strength` random features of every example
            flat = X.reshape(len(X), -1)
            k = int(strength)
            idx = torch.rand(flat.shape, generator=gen).argsort(1)[:, :k].to(X.device)
            flipped = flat.clone()
            flipped.scatter_(1, idx, 1.0 - flat.gather(1, idx))
            yield flipped.reshape(X.shape)


def robustness_scores(model, X, y, kind: str, strength: float, repeats: int = 10, seed: int = 0,
                      batch_size: int = 4096) -> np.ndarray:
    """Fraction of perturbed queries of each example that ``model`` still labels ``y``."""
    from sharpmem_lib.tensors import to_float
    from sharpmem_lib.train import predict_logits

    X = to_float(torch.as_tensor(np.asarray(X)))
    y = torch.as_tensor(np.asarray(y))
    hits = torch.zeros(len(X))
    n = 0
    for query in perturbed_queries(X, kind, strength, repeats, seed):
        hits += (predict_logits(model, query, batch_size).argmax(1) == y).float()
        n += 1
    return (hits / n).numpy()


def label_only_attack(model, X: AttackSets, y: AttackSets, kind: str, strengths: list[float],
                      protocols: tuple[str, ...] = PROTOCOLS, repeats: int = 10, num_classes: int | None = None,
                      folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """A label-only attack on the four sets (inputs ``X``, labels ``y``), one row per
    (``protocol``, ``threshold``) as :func:`~sharpmem_lib.attacks.thresholds.threshold_attack`
    gives them; ``strength`` is the perturbation strength chosen.

    For each strength the robustness score of every example is computed once; the
    thresholds (global and per class) are fitted on the attacker-known sets, as SELENA's
    ``threshold_based_inference_attack(know_score, ..., ref_score, ..., unknow_score, ...,
    test_score, ...)`` does, and the strength is chosen under each protocol."""
    check_choice("perturbation", kind, PERTURBATIONS)
    for protocol in protocols:
        check_choice("protocol", protocol, PROTOCOLS)
    if not len(strengths):
        raise ValueError("strengths=[] is not valid; give at least one perturbation strength")
    y = y.map(np.asarray)
    if num_classes is None:
        num_classes = int(max(v.max() for _, v in y.items())) + 1
    candidates = {strength: AttackSets(*(robustness_scores(model, getattr(X, k), getattr(y, k), kind, strength,
                                                           repeats, seed) for k, _ in y.items()))
                  for strength in strengths}
    return label_only_from_scores(candidates, y, num_classes, protocols, folds=folds, seed=seed)


def label_only_from_scores(scores: dict[float, AttackSets], y: AttackSets, num_classes: int,
                           protocols: tuple[str, ...] = PROTOCOLS, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """:func:`label_only_attack`'s table from robustness scores already computed (strength ->
    the four sets' scores), e.g. computed once for every point of a dataset when the queries
    do not depend on the seed (``translations``) and taken per attack split."""
    if not scores:
        raise ValueError("scores={} is not valid; give the scores of at least one perturbation strength")
    y = y.map(np.asarray)
    table = threshold_attack(scores, y, num_classes, protocols, folds=folds, seed=seed)
    return table.rename(columns={"candidate": "strength"})
