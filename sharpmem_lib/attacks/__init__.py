"""Membership inference attacks (paper §2.1, §4), one idea a module:

* :mod:`~sharpmem_lib.attacks.thresholds`: the four attack sets (:class:`AttackSets`),
  threshold fitting, metrics, and the two protocols (``honest``, ``selena``) -- the one
  fitting step (:func:`fit_threshold_attacks`) and the one choice (:func:`choose`) that
  every attack below uses;
* :mod:`~sharpmem_lib.attacks.single_query`: correctness, confidence, entropy, modified
  entropy and the NN attack (:func:`run_attacks`);
* :mod:`~sharpmem_lib.attacks.label_only`: perturbation robustness (:func:`label_only_attack`);
* :mod:`~sharpmem_lib.attacks.boundary`: distance to the decision boundary
  (:func:`boundary_distance_attack`);
* :mod:`~sharpmem_lib.attacks.lira`: LiRA (:func:`lira_evaluation`).
"""

from sharpmem_lib.attacks.boundary import BOUNDARY_METHODS, boundary_distance_attack, boundary_distances
from sharpmem_lib.attacks.label_only import (PERTURBATIONS, label_only_attack, label_only_from_scores,
                                             perturbed_queries, robustness_scores, translate)
from sharpmem_lib.attacks.lira import (LiraModels, group_sizes, lira_evaluation, lira_leave_one_out, lira_scores,
                                       logit_confidence, low_fpr_metric, memorization_groups, split_models,
                                       tpr_by_group)
from sharpmem_lib.attacks.single_query import (METRIC_ATTACKS, NN_WIDTHS, attack_scores, nn_attack, probabilities,
                                               run_attacks)
from sharpmem_lib.attacks.thresholds import (PROTOCOLS, SETS, THRESHOLDS, AttackSets, attack_sets, balanced,
                                             balanced_accuracy, choose, cv_accuracy, fit_threshold,
                                             fit_threshold_attacks, fit_thresholds, membership_metrics,
                                             threshold_attack, tpr_at_fpr)

__all__ = [
    "BOUNDARY_METHODS", "METRIC_ATTACKS", "NN_WIDTHS", "PERTURBATIONS", "PROTOCOLS", "SETS", "THRESHOLDS",
    "AttackSets", "LiraModels", "attack_scores", "attack_sets", "balanced", "balanced_accuracy",
    "boundary_distance_attack", "boundary_distances", "choose", "cv_accuracy", "fit_threshold",
    "fit_threshold_attacks", "fit_thresholds", "group_sizes", "label_only_attack", "label_only_from_scores",
    "lira_evaluation",
    "lira_leave_one_out",
    "lira_scores", "logit_confidence", "low_fpr_metric", "membership_metrics", "memorization_groups", "nn_attack",
    "perturbed_queries", "probabilities", "robustness_scores", "run_attacks", "split_models", "threshold_attack",
    "tpr_at_fpr", "tpr_by_group", "translate",
]
