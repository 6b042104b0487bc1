"""Threshold attacks, their metrics, and the two evaluation protocols (paper §2.1, §4).

Every membership attack here ends in the same step: a score per example ("higher =
member"), a threshold fitted on data the attacker knows, and metrics on held-out data.
This module holds that step once, for every attack family.

The four attack sets (:class:`AttackSets`), named as in SELENA's code:

=====================  ======================================  ==========================
set                    role                                    SELENA's name
=====================  ======================================  ==========================
``attack_member``      members the attacker knows              ``know_train`` / train_member
``attack_nonmember``   the attacker's reference non-members    ``ref`` / train_nonmember
``eval_member``        held-out evaluation members             ``unknow_train`` / test_member
``eval_nonmember``     evaluation non-members                  ``test`` / test_nonmember
=====================  ======================================  ==========================

Thresholds (:func:`fit_threshold`, :func:`fit_thresholds`) follow SELENA's
``threshold_based_inference_attack`` (``attack/dsq_attack.py``; the same function is
copied into ``Aug_Attack.py``, ``binary_flip_noise_attack.py`` and ``CW_Attack.py``):
"member" means ``score >= t``; the candidates are the observed scores of the fitting
sets; the threshold with the most correct fitting examples wins, ties going to the lowest
one. A *global* threshold is fitted on all examples, *per-class* thresholds on each
class's. The thresholds are always fitted on the attacker-known sets and evaluated on the
evaluation sets, under both protocols.

The protocols differ only in how the attack's remaining choices are made
(:func:`choose`):

* ``selena`` -- SELENA's code chooses, by looking at the evaluation sets: the better of
  the global and per-class threshold of each attack (``max(global_MIA_acc,
  class_MIA_acc)`` in ``threshold_based_inference_attack``), the NN attack's best of 150
  epochs (``nn_attack``), the best perturbation or flip count
  (``binary_flip_noise_attack.py``, ``flip_noise_attack``), and the best attack
  (``system_attack``: ``max(entr_acc, mentr_acc, conf_acc, corr_acc, nn_acc)``). It is the
  protocol comparable with the paper, and optimistic by the selection alone.
* ``honest`` -- every one of those choices is made on the attacker's own data: each
  candidate's accuracy is estimated by K-fold cross-validation *within* the attacker-known
  sets (``attacker_acc``), and the candidate with the best estimate is evaluated once.

Metrics (:func:`membership_metrics`): balanced accuracy, ROC AUC, and TPR at a low FPR
(Carlini et al. 2022), the latter only where the evaluation has enough non-members to
resolve that FPR; with fewer, only the TPR at zero false positives is defined.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from sharpmem_lib.validation import check_choice, check_positive

__all__ = [
    "PROTOCOLS",
    "SETS",
    "THRESHOLDS",
    "AttackSets",
    "attack_sets",
    "balanced",
    "balanced_accuracy",
    "choose",
    "cv_accuracy",
    "fit_threshold",
    "fit_thresholds",
    "fit_threshold_attacks",
    "membership_metrics",
    "threshold_attack",
    "tpr_at_fpr",
]

PROTOCOLS = ("honest", "selena")
SETS = ("attack_member", "attack_nonmember", "eval_member", "eval_nonmember")
THRESHOLDS = ("global", "class")
FPRS = (0.001, 0.01)  # the operating points reported by membership_metrics


@dataclass(frozen=True)
class AttackSets:
    """One per-example array on each of the four attack sets: dataset indices, logits,
    inputs, labels or attack scores alike (the one type every attack takes)."""

    attack_member: np.ndarray
    attack_nonmember: np.ndarray
    eval_member: np.ndarray
    eval_nonmember: np.ndarray

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> AttackSets:
        """``fn`` applied to each set."""
        return AttackSets(*(fn(getattr(self, k)) for k in SETS))

    def take(self, values: np.ndarray) -> AttackSets:
        """Rows of ``values`` at these index sets (``self`` holds dataset indices)."""
        values = np.asarray(values)
        return self.map(lambda idx: values[np.asarray(idx)])

    def items(self):
        return ((k, getattr(self, k)) for k in SETS)

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, np.ndarray]) -> AttackSets:
        missing = [k for k in SETS if k not in d]
        if missing:
            raise ValueError(f"attack sets need the keys {list(SETS)}; missing {missing}")
        return cls(*(np.asarray(d[k]) for k in SETS))

    @classmethod
    def concat_split(cls, flat: np.ndarray, like: AttackSets) -> AttackSets:
        """Split ``flat`` (the four sets one after another, as in ``like``) back into sets."""
        bounds = np.cumsum([0] + [len(v) for _, v in like.items()])
        return cls(*(flat[bounds[i]:bounds[i + 1]] for i in range(4)))

    def concat(self) -> np.ndarray:
        return np.concatenate([v for _, v in self.items()])


assert tuple(f.name for f in fields(AttackSets)) == SETS


def balanced(members: np.ndarray, nonmembers: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Subsample the larger index set so that both have the same size (seeded)."""
    n = min(len(members), len(nonmembers))
    rng = np.random.default_rng(seed)
    return (np.sort(rng.choice(members, n, replace=False)), np.sort(rng.choice(nonmembers, n, replace=False)))


def attack_sets(partition, seed: int = 0) -> AttackSets:
    """Dataset indices of the four attack sets of a :class:`~sharpmem_lib.splits.Partition`.

    The evaluation sets are balanced (equal numbers of members and non-members, drawn with
    ``seed``), as SELENA truncates them to one length; the attacker-known sets are used
    whole (the fitting criterion weighs them to balanced accuracy)."""
    eval_mem, eval_non = balanced(partition.eval_members, partition.eval_nonmembers, seed)
    return AttackSets(np.asarray(partition.attack_members), np.asarray(partition.attack_nonmembers),
                      eval_mem, eval_non)


# ----------------------------------------------------------------------------- metrics


def check_labels(name: str, labels: np.ndarray, num_classes: int, n: int) -> None:
    """``ValueError`` naming ``name`` unless ``labels`` are ``n`` integers in 0..num_classes-1
    (a label out of range would index another class's column, or raise a bare IndexError)."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name} has shape {labels.shape}; expected ({n},), one label per score")
    if n and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} has dtype {labels.dtype}; labels are integers 0..{num_classes - 1}")
    bad = labels[(labels < 0) | (labels >= num_classes)] if n else labels[:0]
    if len(bad):
        raise ValueError(f"{name} holds {sorted(set(bad.tolist()))[:5]}, outside 0..{num_classes - 1} "
                         f"({num_classes} classes)")


def balanced_accuracy(member_predicted: np.ndarray, nonmember_predicted: np.ndarray) -> float:
    """Mean of the true-positive rate on members and the true-negative rate on non-members,
    from the "member" predictions made for each group. On equal-sized sets it is SELENA's
    ``(ratio1 + ratio2) / (len(members) + len(nonmembers))``."""
    member_predicted = np.asarray(member_predicted, dtype=bool)
    nonmember_predicted = np.asarray(nonmember_predicted, dtype=bool)
    return float((member_predicted.mean() + (~nonmember_predicted).mean()) / 2)


def _membership_and_scores(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` as bool and ``scores`` as float, refusing what a cast would hide: labels
    other than 0/1 (class labels 0..9 passed by mistake became "member" for every class but
    0), scores of another length, NaN or infinite scores (scikit-learn named neither)."""
    y, s = np.asarray(y_true), np.asarray(scores, dtype=float)
    if y.dtype != bool and not np.isin(y, (0, 1)).all():
        raise ValueError(f"y_true must be membership (bool, or 0/1); got values {np.unique(y)[:10].tolist()}")
    if y.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"y_true and scores must be 1-D of one length; got shapes {y.shape} and {s.shape}")
    bad = int((~np.isfinite(s)).sum())
    if bad:
        raise ValueError(f"scores hold {bad} NaN or infinite value(s) of {len(s)}; an attack score must be finite "
                         "(a NaN comes from a diverged target's outputs)")
    return y.astype(bool), s


def tpr_at_fpr(y_true: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Largest true-positive rate among the ROC's operating points whose false-positive
    rate is at most ``fpr``.

    Every operating point counts: ``roc_curve(..., drop_intermediate=False)``. scikit-learn's
    default drops collinear points, and with tied scores those are real thresholds, so the
    default under-reports (Carlini et al.'s ``plot.py`` in tensorflow/privacy,
    ``research/mi_lira_2021``, reads ``tpr[np.where(fpr < .001)[0][-1]]`` off the default
    curve). ``fpr`` is in [0, 1): 0 gives the TPR at zero false positives; 1 or more would
    allow every non-member through, and the answer would be 1 whatever the attack.
    """
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float, np.floating, np.integer)) or not 0 <= fpr < 1:
        raise ValueError(f"fpr={fpr!r} is not valid; choose a false-positive rate in [0, 1), e.g. 0.01")
    y_true, scores = _membership_and_scores(y_true, scores)
    if y_true.all() or not y_true.any():
        raise ValueError(f"y_true has {int(y_true.sum())} members and {int((~y_true).sum())} non-members; "
                         "a TPR at an FPR needs both")
    fprs, tprs, _ = roc_curve(y_true, scores, drop_intermediate=False)
    return float(tprs[fprs <= fpr].max(initial=0.0))


def membership_metrics(y_true: np.ndarray, scores: np.ndarray, predictions: np.ndarray,
                       fprs: tuple[float, ...] = FPRS) -> dict[str, float]:
    """Balanced accuracy of hard ``predictions``; AUC and TPR at low FPR of ``scores``.

    ``tpr@<x>%fpr`` is reported only where there are at least 1/x non-members (at least one
    false positive allowed), NaN otherwise; ``tpr@0fp`` (TPR at zero false positives),
    ``n_nonmembers`` and ``min_fpr`` (= 1 / n_nonmembers, the smallest resolvable FPR) always."""
    y_true, scores = _membership_and_scores(y_true, scores)
    predictions = np.asarray(predictions, dtype=bool)
    if predictions.shape != y_true.shape:
        raise ValueError(f"predictions must hold one entry per example; got shape {predictions.shape} for "
                         f"{y_true.shape}")
    n_non = int((~y_true).sum())
    out = {"balanced_acc": balanced_accuracy(predictions[y_true], predictions[~y_true]),
           "auc": float(roc_auc_score(y_true, scores))}
    for f in fprs:
        out[f"tpr@{100 * f:g}%fpr"] = tpr_at_fpr(y_true, scores, f) if n_non * f >= 1 else float("nan")
    out.update({"tpr@0fp": tpr_at_fpr(y_true, scores, 0.0), "n_nonmembers": n_non,
                "min_fpr": 1.0 / n_non if n_non else float("nan")})
    return out


# -------------------------------------------------------------------------- thresholds


def fit_threshold(member: np.ndarray, nonmember: np.ndarray, n_member: int | None = None,
                  n_nonmember: int | None = None) -> float:
    """SELENA's threshold: the observed score ``t`` for which "``score >= t`` means member"
    classifies the most fitting examples correctly, the lowest such ``t`` on ties
    (``threshold_based_inference_attack`` in SELENA's ``attack/dsq_attack.py``: a loop over
    the sorted scores with a strict ``>``).

    Correct members and non-members are weighted by ``1 / n_member`` and ``1 / n_nonmember``
    (default: the sizes of the two arrays), so the criterion is balanced accuracy; on
    SELENA's equal-sized sets that is its count of correct examples. For a per-class
    threshold pass the sizes of the whole fitting sets: each class then maximises its share
    of the overall accuracy, as SELENA's per-class loop does. NaN when both arrays are empty
    (a class with no fitting example). ``ValueError`` when the fitting sets hold no member or
    no non-member (``n_member`` or ``n_nonmember`` 0): no threshold separates anything.
    """
    member, nonmember = np.sort(np.asarray(member, float)), np.sort(np.asarray(nonmember, float))
    n_m = len(member) if n_member is None else n_member
    n_n = len(nonmember) if n_nonmember is None else n_nonmember
    if n_m == 0 or n_n == 0:
        raise ValueError(f"cannot fit a membership threshold on {n_m} member and {n_n} non-member scores; "
                         "the fitting sets need both")
    if len(member) + len(nonmember) == 0:
        return float("nan")
    candidates = np.unique(np.r_[member, nonmember])
    true_pos = len(member) - np.searchsorted(member, candidates, side="left")  # member >= t
    true_neg = np.searchsorted(nonmember, candidates, side="left")  # nonmember < t
    gain = true_pos * max(n_n, 1) + true_neg * max(n_m, 1)  # integers: ties stay exact
    return float(candidates[int(np.argmax(gain))])  # first maximum = lowest threshold


def fit_thresholds(member: np.ndarray, member_labels: np.ndarray, nonmember: np.ndarray,
                   nonmember_labels: np.ndarray, num_classes: int, per_class: bool) -> np.ndarray:
    """One threshold per class (``num_classes`` of them; all equal for a global one).

    A class with no fitting example gets the global threshold (SELENA's loop leaves it at
    its initial 0, which for scores of arbitrary sign means nothing)."""
    member, nonmember = np.asarray(member, float), np.asarray(nonmember, float)
    g = fit_threshold(member, nonmember)
    if not per_class:
        return np.full(num_classes, g)
    member_labels, nonmember_labels = np.asarray(member_labels), np.asarray(nonmember_labels)
    for name, labels, scores in (("member_labels", member_labels, member), ("nonmember_labels", nonmember_labels,
                                                                          nonmember)):
        check_labels(name, labels, num_classes, len(scores))
    out = np.array([fit_threshold(member[member_labels == c], nonmember[nonmember_labels == c],
                                  len(member), len(nonmember)) for c in range(num_classes)])
    return np.where(np.isnan(out), g, out)


def _folds(n: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    return np.array_split(rng.permutation(n), min(k, n)) if n else [np.arange(0)] * k


def cv_accuracy(scores: AttackSets, labels: AttackSets, num_classes: int, per_class: bool, folds: int = 5,
                seed: int = 0) -> float:
    """Balanced accuracy of the threshold attack estimated from the attacker-known sets
    alone, by ``folds``-fold cross-validation (members and non-members split into folds
    separately; thresholds fitted on the other folds predict each held-out fold; the
    out-of-fold predictions are pooled). The honest protocol chooses with it."""
    check_positive("folds", folds, integer=True)
    if folds < 2:
        raise ValueError(f"folds={folds!r} is not valid; cross-validation needs at least 2")
    rng = np.random.default_rng(seed)
    sm, sn = np.asarray(scores.attack_member, float), np.asarray(scores.attack_nonmember, float)
    ym, yn = np.asarray(labels.attack_member), np.asarray(labels.attack_nonmember)
    fm, fn = _folds(len(sm), folds, rng), _folds(len(sn), folds, rng)
    pm, pn = np.zeros(len(sm), bool), np.zeros(len(sn), bool)
    for k in range(max(len(fm), len(fn))):
        hm = fm[k] if k < len(fm) else np.arange(0)
        hn = fn[k] if k < len(fn) else np.arange(0)
        keep_m, keep_n = np.ones(len(sm), bool), np.ones(len(sn), bool)
        keep_m[hm], keep_n[hn] = False, False
        t = fit_thresholds(sm[keep_m], ym[keep_m], sn[keep_n], yn[keep_n], num_classes, per_class)
        pm[hm], pn[hn] = sm[hm] >= t[ym[hm]], sn[hn] >= t[yn[hn]]
    return balanced_accuracy(pm, pn)


def _eval_truth(labels: AttackSets) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.r_[np.ones(len(labels.eval_member), bool), np.zeros(len(labels.eval_nonmember), bool)]
    return y_true, np.r_[labels.eval_member, labels.eval_nonmember].astype(int)


def fit_threshold_attacks(candidates: Mapping[object, AttackSets], labels: AttackSets, num_classes: int,
                          per_class: bool | Mapping[object, bool] = True, folds: int = 5,
                          seed: int = 0) -> pd.DataFrame:
    """The one threshold-fitting step of every attack, for several candidate scores at once
    (one per attack, perturbation strength or boundary method).

    For each candidate and each threshold kind (``global``, and ``class`` where
    ``per_class``): thresholds fitted on the attacker-known sets, their metrics on the
    evaluation sets (:func:`membership_metrics`), and ``attacker_acc``, the accuracy the
    attacker can estimate on its own data (:func:`cv_accuracy`). Nothing here looks at the
    evaluation sets to choose anything; :func:`choose` does, per protocol.
    Index: (``candidate``, ``threshold``)."""
    y_true, eval_labels = _eval_truth(labels)
    rows = []
    for key, s in candidates.items():
        kinds = THRESHOLDS if (per_class.get(key, True) if isinstance(per_class, Mapping) else per_class) \
            else ("global",)
        scores = np.r_[s.eval_member, s.eval_nonmember].astype(float)
        for kind in kinds:
            t = fit_thresholds(s.attack_member, labels.attack_member, s.attack_nonmember, labels.attack_nonmember,
                               num_classes, kind == "class")
            rows.append({"candidate": key, "threshold": kind,
                         **membership_metrics(y_true, scores, scores >= t[eval_labels]),
                         "attacker_acc": cv_accuracy(s, labels, num_classes, kind == "class", folds, seed)})
    return pd.DataFrame(rows).set_index(["candidate", "threshold"])


SELECTION = {"selena": "balanced_acc", "honest": "attacker_acc"}


def choose(table: pd.DataFrame, protocol: str):
    """The row label a protocol picks among the rows of ``table``: the highest evaluation
    balanced accuracy (``selena``: SELENA's ``max`` over thresholds, epochs, strengths and
    attacks) or the highest ``attacker_acc`` (``honest``). Ties: the first row."""
    check_choice("protocol", protocol, PROTOCOLS)
    return table[SELECTION[protocol]].astype(float).idxmax()


def threshold_attack(candidates: Mapping[object, AttackSets], labels: AttackSets, num_classes: int,
                     protocols: tuple[str, ...] = PROTOCOLS, per_class: bool = True, folds: int = 5,
                     seed: int = 0) -> pd.DataFrame:
    """A threshold attack with candidate scores (e.g. one per perturbation strength), under
    each protocol: one row per (``protocol``, ``threshold``), ``threshold`` being
    ``global`` (the best global-threshold candidate), ``class`` (the best per-class one) and
    ``best`` (the best of all; SELENA's ``max(global, class)`` and best strength). The
    ``candidate`` column names the candidate chosen, ``chosen_threshold`` its kind."""
    for protocol in protocols:
        check_choice("protocol", protocol, PROTOCOLS)
    table = fit_threshold_attacks(candidates, labels, num_classes, per_class, folds, seed)
    rows = []
    for protocol in protocols:
        kinds = (THRESHOLDS if per_class else ("global",)) + ("best",)
        for kind in kinds:
            sub = table if kind == "best" else table.xs(kind, level="threshold", drop_level=False)
            key, chosen = choose(sub, protocol)
            rows.append({"protocol": protocol, "threshold": kind, **table.loc[(key, chosen)].to_dict(),
                         "candidate": key, "chosen_threshold": chosen})
    return pd.DataFrame(rows).set_index(["protocol", "threshold"])
