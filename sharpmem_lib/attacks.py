"""Membership inference attacks (paper §2.1, §4) and their metrics.

Direct single-query attacks, as in the code the paper extends (SELENA's
``attack/dsq_attack.py``, after Song & Mittal 2021, "Systematic evaluation of privacy
risks"). Each turns the target's output on an example into a membership score:

==================  =================================================  ==================
attack              score (higher = "member")                          threshold
==================  =================================================  ==================
``correctness``     1 if the predicted label is right                  none (score > 0.5)
``confidence``      p_y, the probability of the true label             per class
``entropy``         -H(p), minus the prediction entropy                per class
``mentr``           -Mentr(p, y), minus Song & Mittal's modified entropy  per class
``nn``              an MLP classifier on (p, one-hot y)                0.5
==================  =================================================  ==================

The attacker fits what it fits (thresholds, the NN) on *attacker-known* members and
non-members, then the attack is evaluated once on disjoint, balanced evaluation sets: the
``honest`` protocol. SELENA's code instead picks the thresholds on the evaluation sets
themselves (``selena`` protocol), which is optimistic; both are reported.

Label-only multi-query attacks (Choquette-Choo et al. 2021; Li & Zhang 2021; SELENA's
``Aug_Attack.py`` and ``binary_flip_noise_attack.py``) query the target on perturbed copies
of an example and use only the predicted labels: members stay correctly classified under
perturbation more often than non-members. :func:`robustness_scores` is the one mechanism:

* ``translations``: every shift of up to ``strength`` pixels in each direction, with and
  without a horizontal flip ((2s+1)^2 x 2 queries; s = 4 gives SELENA's 162 on CIFAR);
* ``bitflips``: ``strength`` random features flipped, ``repeats`` times (binary tabular
  data: Purchase-100, Texas-100; SELENA tries 1..30 flips, 100 repeats);
* ``noise``: Gaussian noise of standard deviation ``strength``, ``repeats`` times
  (continuous features).

The score is the fraction of queries still classified correctly; thresholds are per class as
above, and the perturbation strength is chosen on the fitting data. The boundary-distance
attack (:func:`boundary_distance_attack`) scores an example by its L2 distance to the
decision boundary, found label-only (HopSkipJump) or white-box (Carlini-Wagner, SELENA's
choice); its thresholds are fitted the same way.

LiRA (Carlini et al. 2022, "Membership inference attacks from first principles") calibrates
per example: shadow models that did and did not train on it give Gaussian models of its
logit-scaled confidence, and the score is a likelihood ratio (online) or the one-sided
out-distribution test (offline). :func:`lira_leave_one_out` evaluates it the standard way,
with one subset-trained model of chapter 2 as target and the others as shadows.

Metrics: balanced accuracy, ROC AUC and TPR at a fixed low FPR (Carlini et al. 2022), the
last two from scikit-learn's ``roc_curve``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from sharpmem_lib.validation import check_choice

__all__ = [
    "BOUNDARY_METHODS",
    "METRIC_ATTACKS",
    "boundary_distance_attack",
    "boundary_distances",
    "PROTOCOLS",
    "AttackData",
    "attack_scores",
    "PERTURBATIONS",
    "SETS",
    "attack_data",
    "attack_sets",
    "label_only_attack",
    "lira_evaluation",
    "lira_leave_one_out",
    "tpr_by_group",
    "lira_scores",
    "logit_confidence",
    "perturbed_queries",
    "robustness_scores",
    "balanced",
    "balanced_accuracy",
    "fit_class_thresholds",
    "membership_metrics",
    "nn_attack",
    "run_attacks",
    "tpr_at_fpr",
]

METRIC_ATTACKS = ("correctness", "confidence", "entropy", "mentr")
PERTURBATIONS = ("translations", "bitflips", "noise")
PROTOCOLS = ("honest", "selena")
_EPS = 1e-30


def _probabilities(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def attack_scores(probs: np.ndarray, labels: np.ndarray, attack: str) -> np.ndarray:
    """Membership score of each example under a metric attack (higher = more likely member)."""
    check_choice("attack", attack, METRIC_ATTACKS)
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    rows = np.arange(len(y))
    if attack == "correctness":
        return (p.argmax(1) == y).astype(np.float64)
    if attack == "confidence":
        return p[rows, y]
    if attack == "entropy":
        return (p * np.log(np.maximum(p, _EPS))).sum(1)  # = -H(p)
    # modified entropy (Song & Mittal 2021, eq. 6): -(1-p_y) log p_y - sum_{i!=y} p_i log(1-p_i)
    p_y = p[rows, y]
    log_1mp = np.log(np.maximum(1 - p, _EPS))
    others = (p * log_1mp).sum(1) - p_y * log_1mp[rows, y]
    mentr = -(1 - p_y) * np.log(np.maximum(p_y, _EPS)) - others
    return -mentr


def _best_threshold(member: np.ndarray, nonmember: np.ndarray) -> float:
    """The threshold t maximising balanced accuracy of "score >= t means member".

    Candidates are midpoints between neighbouring observed scores (and one beyond each
    end), so that among equally good splits the threshold keeps a margin on both sides.
    """
    if len(member) == 0 or len(nonmember) == 0:
        return np.inf
    values = np.unique(np.r_[member, nonmember])
    candidates = np.r_[values[0] - 1.0, (values[:-1] + values[1:]) / 2, values[-1] + 1.0]
    tpr = 1 - np.searchsorted(np.sort(member), candidates, side="left") / len(member)
    tnr = np.searchsorted(np.sort(nonmember), candidates, side="left") / len(nonmember)
    best = int(np.argmax(tpr + tnr))
    return float(candidates[best])


def fit_class_thresholds(member_scores: np.ndarray, member_labels: np.ndarray, nonmember_scores: np.ndarray,
                         nonmember_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class thresholds, each maximising balanced accuracy on that class's examples."""
    return np.array([_best_threshold(member_scores[member_labels == c], nonmember_scores[nonmember_labels == c])
                     for c in range(num_classes)])


def tpr_at_fpr(y_true: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Largest true-positive rate whose false-positive rate is at most ``fpr`` (ROC curve)."""
    fprs, tprs, _ = roc_curve(y_true, scores)
    return float(tprs[fprs <= fpr].max(initial=0.0))


def balanced_accuracy(member_predicted: np.ndarray, nonmember_predicted: np.ndarray) -> float:
    """Mean of the true-positive rate on members and the true-negative rate on non-members,
    from the "member" predictions made for each group."""
    member_predicted = np.asarray(member_predicted, dtype=bool)
    nonmember_predicted = np.asarray(nonmember_predicted, dtype=bool)
    return float((member_predicted.mean() + (~nonmember_predicted).mean()) / 2)


def membership_metrics(y_true: np.ndarray, scores: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Balanced accuracy of hard ``predictions``, and AUC and TPR at 0.1 % / 1 % FPR of ``scores``."""
    y_true = np.asarray(y_true, dtype=bool)
    predictions = np.asarray(predictions, dtype=bool)
    return {"balanced_acc": balanced_accuracy(predictions[y_true], predictions[~y_true]),
            "auc": float(roc_auc_score(y_true, scores)),
            "tpr@0.1%fpr": tpr_at_fpr(y_true, scores, 0.001), "tpr@1%fpr": tpr_at_fpr(y_true, scores, 0.01)}


def balanced(members: np.ndarray, nonmembers: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Subsample the larger index set so that both have the same size (seeded)."""
    n = min(len(members), len(nonmembers))
    rng = np.random.default_rng(seed)
    return (np.sort(rng.choice(members, n, replace=False)), np.sort(rng.choice(nonmembers, n, replace=False)))


@dataclass(frozen=True)
class AttackData:
    """The target's outputs on the four attack sets, as logits, with labels."""

    attack_member_logits: np.ndarray
    attack_member_labels: np.ndarray
    attack_nonmember_logits: np.ndarray
    attack_nonmember_labels: np.ndarray
    eval_member_logits: np.ndarray
    eval_member_labels: np.ndarray
    eval_nonmember_logits: np.ndarray
    eval_nonmember_labels: np.ndarray

    @property
    def num_classes(self) -> int:
        return self.attack_member_logits.shape[1]


def nn_attack(data: AttackData, seed: int = 0, hidden: tuple[int, ...] = (64,)) -> tuple[np.ndarray, float]:
    """The NN attack: an MLP on the output probabilities and the one-hot label, trained on
    80 % of the attacker-known examples. Returns its scores on the evaluation sets (members
    first) and its balanced accuracy on the other 20 % of the attacker's data, which is
    what the honest protocol may use to compare it with other attacks."""
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    def features(logits, labels):
        return np.hstack([_probabilities(logits), np.eye(data.num_classes)[labels]])

    X = np.vstack([features(data.attack_member_logits, data.attack_member_labels),
                   features(data.attack_nonmember_logits, data.attack_nonmember_labels)])
    y = np.r_[np.ones(len(data.attack_member_labels)), np.zeros(len(data.attack_nonmember_labels))]
    X_fit, X_held, y_fit, y_held = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
    clf = MLPClassifier(hidden_layer_sizes=hidden, max_iter=500, random_state=seed, early_stopping=True)
    clf.fit(X_fit, y_fit)
    held = clf.predict(X_held).astype(bool)
    held_acc = balanced_accuracy(held[y_held == 1], held[y_held == 0])
    scores = np.r_[clf.predict_proba(features(data.eval_member_logits, data.eval_member_labels))[:, 1],
                   clf.predict_proba(features(data.eval_nonmember_logits, data.eval_nonmember_labels))[:, 1]]
    return scores, held_acc


def run_attacks(data: AttackData, protocols: tuple[str, ...] = PROTOCOLS,
                attacks: tuple[str, ...] = METRIC_ATTACKS + ("nn",), seed: int = 0) -> pd.DataFrame:
    """Every single-query attack's metrics on the evaluation sets under each protocol, one
    row per (protocol, attack), plus a ``best`` row per protocol.

    ``honest``: thresholds and the NN are fitted on the attacker-known sets only, and the
    ``best`` attack is the one most accurate *on the attacker's data* (``fit_acc``: the
    fitted thresholds' balanced accuracy on the attack sets; the NN's on a held-out 20 %).
    ``selena``: thresholds are fitted, and the best attack picked, on the evaluation sets
    themselves, as SELENA's code does. ``best`` rows name the attack chosen in ``chosen``;
    their metrics are the paper's "best attack accuracy".
    """
    for protocol in protocols:
        check_choice("protocol", protocol, PROTOCOLS)
    for attack in attacks:
        check_choice("attacks", attack, METRIC_ATTACKS + ("nn",))
    p = {k: _probabilities(getattr(data, f"{k}_logits")) for k in
         ("attack_member", "attack_nonmember", "eval_member", "eval_nonmember")}
    y_eval = np.r_[np.ones(len(data.eval_member_labels), bool), np.zeros(len(data.eval_nonmember_labels), bool)]
    eval_labels = np.r_[data.eval_member_labels, data.eval_nonmember_labels]
    n_mem = len(data.eval_member_labels)
    fit_labels_mem, fit_labels_non = data.attack_member_labels, data.attack_nonmember_labels

    rows = []
    for attack in attacks:
        if attack == "nn":
            scores, nn_held_acc = nn_attack(data, seed)
        else:
            scores = np.r_[attack_scores(p["eval_member"], data.eval_member_labels, attack),
                           attack_scores(p["eval_nonmember"], data.eval_nonmember_labels, attack)]
            fit_mem = attack_scores(p["attack_member"], fit_labels_mem, attack)
            fit_non = attack_scores(p["attack_nonmember"], fit_labels_non, attack)
        for protocol in protocols:
            if attack == "nn":
                predictions, fit_acc = scores >= 0.5, nn_held_acc
            elif attack == "correctness":
                predictions, fit_acc = scores > 0.5, balanced_accuracy(fit_mem > 0.5, fit_non > 0.5)
            else:
                if protocol == "honest":
                    thresholds = fit_class_thresholds(fit_mem, fit_labels_mem, fit_non, fit_labels_non,
                                                      data.num_classes)
                else:
                    thresholds = fit_class_thresholds(scores[:n_mem], data.eval_member_labels, scores[n_mem:],
                                                      data.eval_nonmember_labels, data.num_classes)
                predictions = scores >= thresholds[eval_labels]
                fit_acc = balanced_accuracy(fit_mem >= thresholds[fit_labels_mem], fit_non >= thresholds[fit_labels_non])
            rows.append({"protocol": protocol, "attack": attack, **membership_metrics(y_eval, scores, predictions),
                         "fit_acc": fit_acc})
    table = pd.DataFrame(rows)
    best_rows = []
    for protocol, group in table.groupby("protocol", sort=False):
        criterion = "fit_acc" if protocol == "honest" else "balanced_acc"
        chosen = group.loc[group[criterion].idxmax()]
        best_rows.append({**chosen.to_dict(), "attack": "best", "chosen": chosen["attack"]})
    return pd.concat([table, pd.DataFrame(best_rows)]).set_index(["protocol", "attack"])


SETS = ("attack_member", "attack_nonmember", "eval_member", "eval_nonmember")


def attack_sets(partition, seed: int = 0) -> dict[str, np.ndarray]:
    """Dataset indices of the four attack sets of a :class:`~sharpmem_lib.splits.Partition`.

    The evaluation sets are balanced (equal numbers of members and non-members, drawn with
    ``seed``); the attacker-known sets are used whole.
    """
    eval_mem, eval_non = balanced(partition.eval_members, partition.eval_nonmembers, seed)
    return {"attack_member": partition.attack_members, "attack_nonmember": partition.attack_nonmembers,
            "eval_member": eval_mem, "eval_nonmember": eval_non}


def attack_data(logits: np.ndarray, labels: np.ndarray, sets: dict[str, np.ndarray]) -> AttackData:
    """The target's logits and labels on the four attack sets (see :func:`attack_sets`)."""
    return AttackData(*(a for name in SETS for a in (logits[sets[name]], labels[sets[name]])))


# ------------------------------------------------------------------ label-only attacks


def _translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
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
                    yield _translate(base, dy, dx)
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
    from sharpmem_lib.train import _to_float, predict_logits

    X = _to_float(torch.as_tensor(np.asarray(X)))
    y = torch.as_tensor(np.asarray(y))
    hits = torch.zeros(len(X))
    n = 0
    for query in perturbed_queries(X, kind, strength, repeats, seed):
        hits += (predict_logits(model, query, batch_size).argmax(1) == y).float()
        n += 1
    return (hits / n).numpy()


def label_only_attack(model, X: dict[str, np.ndarray], y: dict[str, np.ndarray], kind: str,
                      strengths: list[float], protocols: tuple[str, ...] = PROTOCOLS, repeats: int = 10,
                      seed: int = 0) -> pd.DataFrame:
    """A label-only attack on the four sets (keys of :data:`SETS`), one row per protocol.

    For each perturbation strength the robustness score of every example is computed once;
    per-class thresholds and the strength are then chosen on the attacker-known sets
    (``honest``) or on the evaluation sets (``selena``). Rows hold the evaluation metrics and
    the chosen strength."""
    for protocol in protocols:
        check_choice("protocol", protocol, PROTOCOLS)
    num_classes = int(max(v.max() for v in y.values())) + 1
    scores = {strength: {k: robustness_scores(model, X[k], y[k], kind, strength, repeats, seed) for k in SETS}
              for strength in strengths}
    rows = []
    for protocol in protocols:
        strength, metrics = _fitted_thresholds_attack(scores, y, protocol, num_classes)
        rows.append({"protocol": protocol, **metrics, "strength": strength})
    return pd.DataFrame(rows).set_index("protocol")


def _fitted_thresholds_attack(candidates: dict, y: dict[str, np.ndarray], protocol: str,
                              num_classes: int) -> tuple[object, dict[str, float]]:
    """The label-only attacks' threshold fitting. ``candidates`` maps each candidate score
    (one per perturbation strength, say) to its values on the four sets (keys of
    :data:`SETS`), ``y`` the sets' labels. Per-class thresholds are fitted on each
    candidate, on the attacker-known sets (``honest``) or on the evaluation sets
    (``selena``); the candidate whose thresholds separate those sets best is kept (ties: the
    first). Returns its key and its metrics on the evaluation sets."""
    mem, non = ("attack_member", "attack_nonmember") if protocol == "honest" else ("eval_member", "eval_nonmember")
    best = None
    for key, s in candidates.items():
        thresholds = fit_class_thresholds(s[mem], y[mem], s[non], y[non], num_classes)
        fit_acc = balanced_accuracy(s[mem] >= thresholds[y[mem]], s[non] >= thresholds[y[non]])
        if best is None or fit_acc > best[0]:
            best = (fit_acc, key, thresholds)
    _, key, thresholds = best
    scores = np.r_[candidates[key]["eval_member"], candidates[key]["eval_nonmember"]]
    labels = np.r_[y["eval_member"], y["eval_nonmember"]]
    y_true = np.r_[np.ones(len(y["eval_member"]), bool), np.zeros(len(y["eval_nonmember"]), bool)]
    return key, membership_metrics(y_true, scores, scores >= thresholds[labels])


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

    from sharpmem_lib.train import _to_float, predict_logits

    x = _to_float(torch.as_tensor(np.asarray(X))).numpy()
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


def boundary_distance_attack(model, X: dict[str, np.ndarray], y: dict[str, np.ndarray], method: str = "hopskipjump",
                             protocols: tuple[str, ...] = PROTOCOLS, max_points: int | None = 200, seed: int = 0,
                             max_iter: int | None = None) -> pd.DataFrame:
    """The boundary-distance label-only attack on the four sets (keys of :data:`SETS`): a
    member is farther from the decision boundary. Per-class thresholds on the distance are
    fitted on the attacker-known sets (``honest``) or on the evaluation sets (``selena``).
    ``max_points`` caps each set (seeded subsample, the evaluation sets kept balanced)
    because these attacks cost hundreds of queries per example. One row per protocol."""
    for protocol in protocols:
        check_choice("protocol", protocol, PROTOCOLS)
    rng = np.random.default_rng(seed)
    keep = {k: (np.sort(rng.choice(len(y[k]), max_points, replace=False))
                if max_points is not None and len(y[k]) > max_points else np.arange(len(y[k]))) for k in SETS}
    n_eval = min(len(keep["eval_member"]), len(keep["eval_nonmember"]))
    keep["eval_member"], keep["eval_nonmember"] = keep["eval_member"][:n_eval], keep["eval_nonmember"][:n_eval]
    Xs = {k: np.asarray(X[k])[keep[k]] for k in SETS}
    ys = {k: np.asarray(y[k])[keep[k]] for k in SETS}
    num_classes = int(max(v.max() for v in ys.values())) + 1
    # one call for all four sets: the attacks run in batches, so one call costs little more than one set
    flat = boundary_distances(model, np.concatenate([Xs[k] for k in SETS]), np.concatenate([ys[k] for k in SETS]),
                              method, max_iter=max_iter, seed=seed)
    bounds = np.cumsum([0] + [len(ys[k]) for k in SETS])
    d = {k: flat[bounds[i]:bounds[i + 1]] for i, k in enumerate(SETS)}
    rows = []
    for protocol in protocols:
        _, metrics = _fitted_thresholds_attack({method: d}, ys, protocol, num_classes)
        rows.append({"protocol": protocol, **metrics, "method": method, "n_eval": 2 * n_eval})
    return pd.DataFrame(rows).set_index("protocol")


# ------------------------------------------------------------------------------ LiRA


def logit_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """phi = log p_y - log(1 - p_y), computed stably as z_y - logsumexp_{j != y} z_j
    (Carlini et al.'s logit scaling, which makes the confidence close to Gaussian).
    ``logits``: (..., n, classes); ``labels``: (n,)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    z_y = np.take_along_axis(z, np.broadcast_to(y[:, None], z.shape[:-1] + (1,)), axis=-1)[..., 0]
    others = z.copy()
    np.put_along_axis(others, np.broadcast_to(y[:, None], z.shape[:-1] + (1,)), -np.inf, axis=-1)
    m = others.max(-1, keepdims=True)
    lse = m[..., 0] + np.log(np.exp(others - m).sum(-1))
    return z_y - lse


def lira_scores(target: np.ndarray, shadow: np.ndarray, shadow_in: np.ndarray, online: bool = True,
                global_variance: bool = True) -> np.ndarray:
    """LiRA membership scores (higher = member) of each example.

    ``target``: (n,) the target model's phi; ``shadow``: (S, n) the shadow models' phi;
    ``shadow_in``: (S, n) whether each shadow trained on each example. Online: log N(phi;
    mu_in, s_in) - log N(phi; mu_out, s_out). Offline (only out-shadows): log P[Z <= phi],
    Z ~ N(mu_out, s_out). With ``global_variance`` the spreads are pooled over examples,
    which Carlini et al. recommend when there are few shadows.
    """
    from scipy.stats import norm

    shadow, shadow_in = np.asarray(shadow, dtype=np.float64), np.asarray(shadow_in, dtype=bool)
    n_in, n_out = shadow_in.sum(0), (~shadow_in).sum(0)
    if (n_out == 0).any() or (online and (n_in == 0).any()):
        raise ValueError("every example needs shadow models that held it out (and, online, that trained on it)")
    mean = lambda w, k: (np.where(w, shadow, 0.0).sum(0) / k)  # noqa: E731
    mu_out = mean(~shadow_in, n_out)
    var_out = np.where(~shadow_in, (shadow - mu_out) ** 2, 0.0).sum(0) / np.maximum(n_out - 1, 1)
    if global_variance:
        var_out = np.full_like(var_out, var_out.mean())
    s_out = np.sqrt(var_out) + 1e-12
    if not online:
        return norm.logcdf(target, mu_out, s_out)
    mu_in = mean(shadow_in, n_in)
    var_in = np.where(shadow_in, (shadow - mu_in) ** 2, 0.0).sum(0) / np.maximum(n_in - 1, 1)
    if global_variance:
        var_in = np.full_like(var_in, var_in.mean())
    s_in = np.sqrt(var_in) + 1e-12
    return norm.logpdf(target, mu_in, s_in) - norm.logpdf(target, mu_out, s_out)


def lira_leave_one_out(confidence: np.ndarray, masks: np.ndarray, target: int, online: bool = True,
                       global_variance: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """LiRA with model ``target`` of a set of subset-trained models as the target and all
    the others as shadows. Returns (scores, membership) over every training point, where
    membership is whether the target trained on it."""
    keep = np.arange(len(masks)) != target
    scores = lira_scores(confidence[target], confidence[keep], masks[keep], online, global_variance)
    return scores, np.asarray(masks[target], dtype=bool)


def tpr_by_group(scores: np.ndarray, member: np.ndarray, group: np.ndarray, fpr: float) -> dict:
    """TPR within each group of members, at the single threshold that gives false-positive
    rate ``fpr`` over all non-members (so groups are compared at one operating point)."""
    member = np.asarray(member, dtype=bool)
    non = np.sort(scores[~member])
    k = int(np.floor(fpr * len(non)))  # at most k non-members may score above the threshold
    threshold = non[len(non) - k - 1] if k < len(non) else -np.inf
    return {int(g): float((scores[member & (group == g)] > threshold).mean()) for g in np.unique(group[member])}


def lira_evaluation(confidence: np.ndarray, masks: np.ndarray, targets: list[int], group: np.ndarray | None = None,
                    online: bool = True) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """LiRA with each of ``targets`` as the target model in turn (the others as shadows).

    Returns per-target metrics (AUC, TPR at 0.1 % and 1 % FPR, balanced accuracy at the
    median score; with ``group``, TPR at 1 % FPR within each group as ``tpr@1%fpr_g<k>``), and
    the pooled scores and membership over all targets (for a ROC curve)."""
    rows, all_scores, all_members = [], [], []
    for t in targets:
        scores, member = lira_leave_one_out(confidence, masks, t, online=online)
        metrics = membership_metrics(member, scores, scores > np.median(scores))
        if group is not None:
            metrics.update({f"tpr@1%fpr_g{g}": v for g, v in tpr_by_group(scores, member, group, 0.01).items()})
        rows.append({"target": t, **metrics})
        all_scores.append(scores)
        all_members.append(member)
    return pd.DataFrame(rows).set_index("target"), np.concatenate(all_scores), np.concatenate(all_members)
