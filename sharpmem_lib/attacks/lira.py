"""LiRA, the likelihood-ratio attack (Carlini et al. 2022, "Membership inference attacks
from first principles").

Per example, shadow models that did and did not train on it give Gaussian models of its
logit-scaled confidence phi (:func:`logit_confidence`); the score is a likelihood ratio
(online) or a one-sided test against the out-distribution (offline). What this module
follows in Carlini et al.'s code (tensorflow/privacy, ``research/mi_lira_2021``):

* ``score.py``: phi = log p_y - log(1 - p_y), from the logits;
* ``plot.py``, ``generate_ours``: per-example in/out Gaussians, score = log N_in(phi) -
  log N_out(phi); ``fix_variance=True`` pools the spread over examples (our
  ``global_variance``). We use means where ``plot.py`` uses medians, and the paper's
  one-sided offline test where ``generate_ours_offline`` uses the two-sided density;
* ``plot.py``, ``do_plot``: the target models are disjoint from the shadows
  (``keep[:-ntest]`` fit, ``keep[-ntest:]`` are attacked); here each target in turn is
  attacked with the remaining models of the pool as shadows.

Memorization groups (which fifth of the training points with a non-zero memorization score
a point falls in; group 0 for the points with no measured memorization) must come from
models that are neither targets nor shadows
(:func:`split_models`, :func:`memorization_groups`): otherwise the same models' outcomes
define the groups and the attack's success on them.

Low-FPR metrics are resolvable only with enough non-members: a target trained on a random
share of the training points has the rest as its non-members, ``n_nonmembers`` of them, and
the smallest non-zero FPR it can show is ``1 / n_nonmembers``. "TPR at 0.1 % FPR" is
reported only with at least 1,000 non-members, "TPR at zero false positives" always
(:func:`low_fpr_metric`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sharpmem_lib.attacks.thresholds import check_labels, membership_metrics

__all__ = ["UNMEASURED", "LiraModels", "group_sizes", "lira_evaluation", "lira_leave_one_out", "lira_scores",
           "logit_confidence", "low_fpr_metric", "memorization_groups", "split_models", "tpr_by_group"]

#: The memorization group of training points with no measured memorization (no estimate,
#: or a score of exactly 0), kept out of the ranking (as :data:`memorization.UNMEASURED`).
UNMEASURED = 0

MIN_TARGETS = 32  # issue 18 §3: enough targets for paired tests across algorithms


def logit_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """phi = log p_y - log(1 - p_y), computed stably as z_y - logsumexp_{j != y} z_j
    (Carlini et al.'s logit scaling, which makes the confidence close to Gaussian).
    ``logits``: (..., n, classes); ``labels``: (n,)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim < 2 or z.shape[-1] < 2:  # one class: no other class to compare with (was NaN with a warning)
        raise ValueError(f"logits must be (..., n, classes) with at least 2 classes; got shape {z.shape}")
    check_labels("labels", y, z.shape[-1], z.shape[-2])  # out of range: a bare IndexError before
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
                       global_variance: bool = True,
                       shadows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """LiRA with model ``target`` as the target and ``shadows`` (default: every other model)
    as shadows, the target itself always excluded. Returns (scores, membership) over every
    training point, membership being whether the target trained on it."""
    n = len(masks)
    shadows = np.arange(n) if shadows is None else np.asarray(shadows, int)
    shadows = shadows[shadows != target]
    if not 0 <= target < n:
        raise ValueError(f"target={target!r} is not valid; choose a model index in [0, {n})")
    scores = lira_scores(confidence[target], confidence[shadows], masks[shadows], online, global_variance)
    return scores, np.asarray(masks[target], dtype=bool)


def tpr_by_group(scores: np.ndarray, member: np.ndarray, group: np.ndarray, fpr: float) -> dict:
    """TPR within each group of members, at the single threshold that gives false-positive
    rate ``fpr`` over all non-members (so groups are compared at one operating point)."""
    member = np.asarray(member, dtype=bool)
    non = np.sort(scores[~member])
    k = int(np.floor(fpr * len(non)))  # at most k non-members may score above the threshold
    threshold = non[len(non) - k - 1] if k < len(non) else -np.inf
    return {int(g): float((scores[member & (group == g)] > threshold).mean()) for g in np.unique(group[member])}


@dataclass(frozen=True)
class LiraModels:
    """Which subset-trained models play which part: ``memorization`` models estimate the
    memorization groups; the ``pool`` holds the ``targets`` and, for each target, its
    shadows (the rest of the pool). The memorization models are disjoint from the pool."""

    memorization: np.ndarray
    pool: np.ndarray
    targets: np.ndarray


def split_models(n_models: int, n_targets: int, n_memorization: int, min_targets: int = MIN_TARGETS) -> LiraModels:
    """Models ``0 .. n_models - n_memorization - 1`` form the LiRA pool (targets first), the
    last ``n_memorization`` estimate memorization. ``n_targets`` must be at least
    ``min_targets`` (32 by default, so that per-target effects can be tested) and leave at
    least two shadows per target."""
    pool = n_models - n_memorization
    if n_memorization < 2:
        raise ValueError(f"n_memorization={n_memorization!r} is not valid; memorization needs at least 2 models")
    if n_targets < min_targets:
        raise ValueError(f"n_targets={n_targets!r} is not valid; use at least {min_targets} targets")
    if pool < n_targets or pool < 3:
        raise ValueError(f"n_models={n_models!r} leaves {pool} models for targets and shadows after "
                         f"n_memorization={n_memorization}; need at least max(n_targets={n_targets}, 3)")
    return LiraModels(np.arange(pool, n_models), np.arange(pool), np.arange(n_targets))


def memorization_groups(masks: np.ndarray, correct_train: np.ndarray, models: np.ndarray,
                        n_groups: int = 5) -> np.ndarray:
    """Group of each training point by its memorization score (eq. 1) estimated from
    ``models`` only: 1 = the most memorized ``1 / k`` of the points with a measured, non-zero
    score, k = the last group.

    Group 0 (:data:`UNMEASURED`) holds the points with no measured memorization: those that
    the models never held out (or never trained on), and those whose score is exactly 0 (at
    the default profile about 90 % of the training points). Ranking the zeros would sort
    them by dataset index into arbitrary groups and fill "the most memorized fifth" with
    unmemorized points. The others are ranked into ``n_groups`` equal-count groups, or into
    as many as there are such points when they are fewer (``groups.max()`` is then below
    ``n_groups``; :func:`group_sizes` reports every group's size)."""
    from sharpmem_lib.memorization import buckets, memorization_scores

    models = np.asarray(models, int)
    masks, correct = np.asarray(masks, bool)[models], np.asarray(correct_train)[models]
    measured = masks.any(0) & (~masks).any(0)
    groups = np.full(masks.shape[1], UNMEASURED, int)
    if measured.any():
        value = np.asarray(memorization_scores(masks[:, measured], correct[:, measured]).value, float)
        ranked = np.flatnonzero(measured)[value != 0]
        if len(ranked):
            groups[ranked] = buckets(-value[value != 0], min(n_groups, len(ranked)))
    return groups


def group_sizes(groups: np.ndarray) -> dict[int, int]:
    """{group: number of points} for every group from :data:`UNMEASURED` (0) to the last
    ranked one, empty groups included."""
    groups = np.asarray(groups, int)
    return {g: int((groups == g).sum()) for g in range(int(groups.max(initial=0)) + 1)}


def low_fpr_metric(n_nonmembers: int, fpr: float = 0.001) -> str:
    """The low-FPR column that a target with ``n_nonmembers`` non-members can resolve:
    ``tpr@<fpr>%fpr`` with at least ``1 / fpr`` of them, ``tpr@0fp`` (TPR at zero false
    positives) otherwise."""
    return f"tpr@{100 * fpr:g}%fpr" if n_nonmembers * fpr >= 1 else "tpr@0fp"


def lira_evaluation(confidence: np.ndarray, masks: np.ndarray, targets, group: np.ndarray | None = None,
                    online: bool = True, shadows: np.ndarray | None = None,
                    group_fpr: float = 0.01) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """LiRA with each of ``targets`` as the target model in turn, the other ``shadows``
    (default: every other model) as its shadows.

    Returns per-target metrics (:func:`~sharpmem_lib.attacks.thresholds.membership_metrics`:
    AUC, TPR at 0.1 % and 1 % FPR where resolvable, else NaN, TPR at zero false positives,
    ``n_nonmembers`` and ``min_fpr``; ``n_shadows``; balanced accuracy at the median score;
    with ``group``, TPR at ``group_fpr`` within each group as ``tpr@1%fpr_g<k>``), and the
    pooled scores and membership over all targets (for a ROC curve). A ``LiraModels`` from
    :func:`split_models` may be passed as ``targets``: its targets and pool are used."""
    if isinstance(targets, LiraModels):
        shadows, targets = targets.pool, targets.targets
    rows, all_scores, all_members = [], [], []
    for t in targets:
        scores, member = lira_leave_one_out(confidence, masks, int(t), online=online, shadows=shadows)
        metrics = membership_metrics(member, scores, scores > np.median(scores))
        n_shadows = (len(masks) if shadows is None else len(np.setdiff1d(shadows, [t]))) - (shadows is None)
        metrics["n_shadows"] = n_shadows
        if group is not None:
            metrics.update({f"tpr@{100 * group_fpr:g}%fpr_g{g}": v
                            for g, v in tpr_by_group(scores, member, group, group_fpr).items()})
        rows.append({"target": int(t), **metrics})
        all_scores.append(scores)
        all_members.append(member)
    return pd.DataFrame(rows).set_index("target"), np.concatenate(all_scores), np.concatenate(all_members)
