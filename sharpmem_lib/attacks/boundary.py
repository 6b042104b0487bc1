"""The boundary-distance label-only attack (Choquette-Choo et al. 2021; Li & Zhang 2021).

A member tends to lie farther from the decision boundary than a non-member. The distance
is found by an untargeted adversarial attack from the adversarial-robustness-toolbox:
HopSkipJump (labels only) or Carlini-Wagner L2 (white-box), SELENA's choice in
``attack/CW_Attack.py`` (``cw_attack``, ``get_optimal_perturb``). The distances are then a
threshold attack like any other (:func:`~sharpmem_lib.attacks.thresholds.threshold_attack`):
``cw_attack`` fits ``threshold_based_inference_attack`` on the attacker-known sets' distances
and evaluates on the evaluation sets', reporting ``max(global, class)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from sharpmem_lib.attacks.thresholds import PROTOCOLS, SETS, AttackSets, threshold_attack
from sharpmem_lib.validation import check_choice

__all__ = ["BOUNDARY_METHODS", "boundary_distance_attack", "boundary_distances"]

BOUNDARY_METHODS = {
    "hopskipjump": "black-box, labels only: HopSkipJump (Chen et al. 2020), as ART's LabelOnlyDecisionBoundary",
    "cw": "white-box: Carlini-Wagner L2, as SELENA's attack/CW_Attack.py",
}


class _Float32(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.float())


def boundary_distances(model, X, y, method: str = "hopskipjump", max_iter: int | None = None, seed: int = 0,
                       batch_size: int = 256) -> np.ndarray:
    """L2 distance from each example to the model's decision boundary, found by an untargeted
    adversarial attack from the adversarial-robustness-toolbox (ART): ``hopskipjump``
    (label-only queries, the realistic attacker of Choquette-Choo et al. 2021 / Li & Zhang
    2021) or ``cw`` (Carlini-Wagner L2 with gradients, SELENA's choice). Examples the model
    already misclassifies get distance 0; an attack that fails to cross the boundary leaves
    the example in place, distance 0 as well (ART's convention). Inputs are scaled as the
    model sees them (uint8 images to [0, 1])."""
    check_choice("method", method, BOUNDARY_METHODS)
    from art.attacks.evasion import CarliniL2Method, HopSkipJump
    from art.estimators.classification import PyTorchClassifier

    from sharpmem_lib.tensors import to_float
    from sharpmem_lib.train import predict_logits

    x = to_float(torch.as_tensor(np.asarray(X))).numpy()
    y = np.asarray(y)
    num_classes = int(predict_logits(model, x[:1]).shape[1])
    # images live in [0, 1] (uint8 ones once scaled); other features are unbounded for ART's
    # purposes, so the box is the data's range, widened
    if x.ndim == 4 and x.min() >= 0 and x.max() <= 1:
        clip = (0.0, 1.0)
    else:
        lo, hi = float(x.min()), float(x.max())
        clip = (lo - (hi - lo), hi + (hi - lo))
    on_gpu = next(model.parameters()).is_cuda
    model = _Float32(model.eval())  # HopSkipJump queries in float64
    classifier = PyTorchClassifier(model, loss=torch.nn.CrossEntropyLoss(), input_shape=x.shape[1:],
                                   nb_classes=num_classes, clip_values=clip, device_type="gpu" if on_gpu else "cpu")
    np.random.seed(seed)  # HopSkipJump draws its random directions from NumPy's global generator
    if method == "hopskipjump":
        attack = HopSkipJump(classifier, targeted=False, norm=2, max_iter=max_iter or 10, max_eval=1000,
                             init_eval=100, batch_size=batch_size, verbose=False)
        x_adv = attack.generate(x=x)
    else:
        # initial_const 1: ART's default 0.01 leaves most points unperturbed within the search budget
        attack = CarliniL2Method(classifier, targeted=False, max_iter=max_iter or 100, binary_search_steps=10,
                                 learning_rate=0.01, initial_const=1.0, batch_size=batch_size, verbose=False)
        x_adv = attack.generate(x=x, y=np.eye(num_classes)[y])
    distance = np.linalg.norm((x_adv - x).reshape(len(x), -1), axis=1)
    pred = predict_logits(model.model, x).argmax(1).numpy()
    distance[pred != y] = 0.0
    return distance


def boundary_distance_attack(model, X: AttackSets, y: AttackSets, method: str = "hopskipjump",
                             protocols: tuple[str, ...] = PROTOCOLS, max_points: int | None = 200, seed: int = 0,
                             max_iter: int | None = None, folds: int = 5) -> pd.DataFrame:
    """The boundary-distance attack on the four sets (inputs ``X``, labels ``y``), one row
    per (``protocol``, ``threshold``) as
    :func:`~sharpmem_lib.attacks.thresholds.threshold_attack` gives them. ``max_points``
    caps each set (seeded subsample, the evaluation sets kept balanced) because these
    attacks cost hundreds of queries per example; ``n_eval`` is the number of evaluation
    points.

    Departure from SELENA's ``get_optimal_perturb``: examples the target misclassifies get
    distance 0 and stay aligned with their labels (SELENA's function reorders the distances,
    correctly classified first, while ``cw_attack`` keeps the original label order)."""
    check_choice("method", method, BOUNDARY_METHODS)
    for protocol in protocols:
        check_choice("protocol", protocol, PROTOCOLS)
    rng = np.random.default_rng(seed)
    y = y.map(np.asarray)
    keep = {k: (np.sort(rng.choice(len(v), max_points, replace=False))
                if max_points is not None and len(v) > max_points else np.arange(len(v))) for k, v in y.items()}
    n_eval = min(len(keep["eval_member"]), len(keep["eval_nonmember"]))
    keep["eval_member"], keep["eval_nonmember"] = keep["eval_member"][:n_eval], keep["eval_nonmember"][:n_eval]
    Xs = AttackSets(*(np.asarray(getattr(X, k))[keep[k]] for k in SETS))
    ys = AttackSets(*(getattr(y, k)[keep[k]] for k in SETS))
    num_classes = int(max(v.max() for _, v in ys.items())) + 1
    # one call for all four sets: the attacks run in batches, so one call costs little more than one set
    flat = boundary_distances(model, Xs.concat(), ys.concat(), method, max_iter=max_iter, seed=seed)
    distances = AttackSets.concat_split(flat, ys)
    table = threshold_attack({method: distances}, ys, num_classes, protocols, folds=folds, seed=seed)
    return table.rename(columns={"candidate": "method"}).assign(n_eval=2 * n_eval)
