"""Direct single-query attacks (paper §2.1, §4; the "single-query" column of Table 1).

As in the code the paper extends (SELENA's ``attack/dsq_attack.py``, after Song & Mittal
2021, "Systematic evaluation of privacy risks"). Each attack turns the target's output on
an example into a membership score (higher = member):

==================  =====================================================  ===============
attack              score                                                  thresholds
==================  =====================================================  ===============
``correctness``     1 if the predicted label is right (``get_corrcect``)   global
``confidence``      p_y, the probability of the true label (``get_conf``)  global, class
``entropy``         -H(p), minus the prediction entropy (``get_entropy``)  global, class
``mentr``           -Mentr(p, y), Song & Mittal's modified entropy         global, class
``nn``              an MLP on (p, one-hot y) (``nn_attack``)               0.5
==================  =====================================================  ===============

Thresholds are fitted on the attacker-known sets and evaluated on the evaluation sets
(:mod:`~sharpmem_lib.attacks.thresholds`); the protocols differ only in what they choose
by looking at the evaluation sets (``selena``) or not (``honest``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from sharpmem_lib.attacks.thresholds import (PROTOCOLS, AttackSets, balanced_accuracy, check_labels, choose,
                                             fit_threshold_attacks, membership_metrics)
from sharpmem_lib.validation import check_choice, check_fraction, check_positive

__all__ = ["METRIC_ATTACKS", "NN_WIDTHS", "attack_scores", "nn_attack", "probabilities", "run_attacks"]

METRIC_ATTACKS = ("correctness", "confidence", "entropy", "mentr")
ATTACKS = METRIC_ATTACKS + ("nn",)
_EPS = 1e-30  # SELENA's small_delta


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax of ``logits`` (rows), in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def attack_scores(probs: np.ndarray, labels: np.ndarray, attack: str) -> np.ndarray:
    """Membership score of each example under a metric attack (higher = more likely member);
    SELENA's ``get_corrcect``, ``get_conf``, ``-get_entropy`` and ``-get_mentropy``."""
    check_choice("attack", attack, METRIC_ATTACKS)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs has shape {p.shape}; expected (examples, classes)")
    # logits passed for probabilities gave confidences of 3 and entropies of 11, a NaN row 'correct':
    # every row must be a probability vector (float32 softmax sums to 1 within ~1e-6)
    bad = ~(np.isfinite(p).all(1) & (p >= -1e-6).all(1) & (p <= 1 + 1e-6).all(1) & (np.abs(p.sum(1) - 1) <= 1e-3))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"probs row {i} is {p[i][:5].tolist()}{' ...' if p.shape[1] > 5 else ''}: not a probability "
                         f"vector ({int(bad.sum())} of {len(p)} rows); pass probabilities(logits), not logits")
    y = np.asarray(labels)
    check_labels("labels", y, p.shape[1], len(p))
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


# ------------------------------------------------------------------------------ NN attack

NN_WIDTHS = {"features": (1024, 512, 64), "labels": (128, 64), "combine": (512, 256, 128, 64)}
"""SELENA's ``InferenceAttack_HZ`` (``attack/dsq_attack.py``)."""


def _mlp(widths: tuple[int, ...], d_in: int, last_relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, w in enumerate(widths):
        layers.append(nn.Linear(d_in, w))
        if last_relu or i < len(widths) - 1:
            layers.append(nn.ReLU())
        d_in = w
    return nn.Sequential(*layers)


class InferenceAttack(nn.Module):
    """SELENA's ``InferenceAttack_HZ``: one branch on the probability vector, one on the
    one-hot label, combined into a sigmoid membership probability; weights N(0, 0.01²),
    biases 0 (``init_std=None``: PyTorch's default initialisation instead). ``scale``
    shrinks every width (1 = SELENA's)."""

    def __init__(self, num_classes: int, scale: float = 1.0, init_std: float | None = 0.01) -> None:
        super().__init__()
        w = {k: tuple(max(1, int(round(v * scale))) for v in ws) for k, ws in NN_WIDTHS.items()}
        self.features = _mlp(w["features"], num_classes)
        self.labels = _mlp(w["labels"], num_classes)
        self.combine = _mlp(w["combine"] + (1,), w["features"][-1] + w["labels"][-1], last_relu=False)
        for name, p in self.named_parameters():
            if init_std is None:
                break
            if name.endswith("weight"):
                nn.init.normal_(p, std=init_std)
            else:
                nn.init.zeros_(p)

    def forward(self, p: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.combine(torch.cat([self.features(p), self.labels(onehot)], 1))).view(-1)


def _fast_forward(model: InferenceAttack):
    """``model``'s forward as plain functional calls on its own parameters: the same
    operations in the same order (``F.linear``, ``torch.relu``, ``cat``, ``sigmoid``), so the
    same numbers, without ``nn.Module.__call__``'s hooks around each of the 20-odd layers,
    which cost the narrow network about as much as its arithmetic."""

    def plan(seq: nn.Sequential) -> list:
        return [(m.weight, m.bias) if isinstance(m, nn.Linear) else None for m in seq]

    def run(steps: list, x: torch.Tensor) -> torch.Tensor:
        for step in steps:
            x = torch.relu(x) if step is None else nn.functional.linear(x, *step)
        return x

    features, labels, combine = plan(model.features), plan(model.labels), plan(model.combine)
    for seq in (model.features, model.labels, model.combine):
        if not all(isinstance(m, (nn.Linear, nn.ReLU)) for m in seq):  # InferenceAttack builds only these
            raise TypeError(f"unexpected layer in {seq}")
    return lambda p, onehot: torch.sigmoid(run(combine, torch.cat([run(features, p), run(labels, onehot)], 1))).view(-1)


def _train_nn(fit_m, fit_n, choose_on, report: dict, num_classes: int, epochs: int, batch_size: int, lr: float,
              scale: float, init_std: float | None, seed: int) -> tuple[int, list[float], dict]:
    """SELENA's ``nn_attack`` loop: each epoch one pass of ``train_attack`` (Adam, MSE on the
    sigmoid output, batches of ``batch_size`` members plus as many non-members, the members
    shuffled every epoch), then the model scores ``choose_on`` (a (members, non-members)
    pair of (probabilities, one-hot) tensors); the epoch is the first with the best balanced
    accuracy at 0.5 there. Returns that epoch (0-based), the per-epoch accuracies on
    ``choose_on``, and, per set in ``report`` (pairs like ``choose_on``), the chosen epoch's
    scores (members then non-members). A ``report`` set is scored only when an epoch becomes
    the best so far, not every epoch: the same scores, fewer forward passes."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = InferenceAttack(num_classes, scale, init_std).to(device)
    forward = _fast_forward(model)
    # foreach: the same element-wise operations in the same order as the per-tensor loop (torch/optim/adam.py,
    # _multi_tensor_adam vs _single_tensor_adam), so the same numbers, in one call per operation for all 22
    # parameter tensors instead of 22 (CUDA's default already): ~10 % less CPU per step of the narrow network
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    n_m = len(fit_m[0])
    # members then non-members in one tensor: a batch is one gather (the rows cat([m[bm], n[bn]]) gave)
    fit = tuple(torch.cat([a, b]).to(device) for a, b in zip(fit_m, fit_n))
    same = {k for k, pair in report.items() if pair is choose_on}  # scored already: not again
    choose_on = tuple(tuple(t.to(device) for t in part) for part in choose_on)
    report = {k: tuple(tuple(t.to(device) for t in part) for part in pair) for k, pair in report.items()}
    n = min(n_m, len(fit_n[0]))  # SELENA pairs equal numbers of members and non-members
    targets: dict[int, torch.Tensor] = {}
    accs: list[float] = []
    best, chosen, scores = -np.inf, 0, {}
    for epoch in range(epochs):
        model.train()
        perm_m, perm_n = torch.randperm(n_m, generator=gen), torch.randperm(len(fit_n[0]), generator=gen)
        for i in range(0, n, batch_size):
            bm, bn = perm_m[i:min(i + batch_size, n)], perm_n[i:min(i + batch_size, n)]
            rows = torch.cat([bm, bn + n_m]).to(device)
            out = forward(fit[0][rows], fit[1][rows])
            if len(bm) not in targets:
                targets[len(bm)] = torch.cat([torch.ones(len(bm)), torch.zeros(len(bn))]).to(device)
            loss = nn.functional.mse_loss(out, targets[len(bm)])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            sm, sn = forward(*choose_on[0]).cpu().numpy(), forward(*choose_on[1]).cpu().numpy()
            accs.append(balanced_accuracy(sm > 0.5, sn > 0.5))
            # np.argmax's choice over the epochs: the first with the highest accuracy (the first NaN, if any)
            if not np.isnan(best) and (np.isnan(accs[-1]) or accs[-1] > best):
                best, chosen = accs[-1], epoch
                scores = {k: np.r_[sm, sn] if k in same else
                          np.r_[forward(*pair[0]).cpu().numpy(), forward(*pair[1]).cpu().numpy()]
                          for k, pair in report.items()}
    return chosen, accs, scores


def _train_nn_small_threads(*args, **kwargs) -> dict:
    """:func:`_train_nn`, on one CPU thread when the network is narrowed (``scale < 1``): its
    small matrix products gain nothing from threads, and on a shared machine contended
    threads made it ten times slower."""
    if kwargs["scale"] >= 1 or torch.cuda.is_available():
        return _train_nn(*args, **kwargs)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_nn(*args, **kwargs)
    finally:
        torch.set_num_threads(previous)


def nn_attack(outputs: AttackSets, labels: AttackSets, num_classes: int, protocols: tuple[str, ...] = PROTOCOLS,
              epochs: int = 150, batch_size: int = 512, lr: float = 1e-4, scale: float = 1.0,
              init_std: float | None = 0.01, holdout: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """SELENA's NN attack (``nn_attack`` in ``attack/dsq_attack.py``: ``InferenceAttack_HZ``
    trained ``attack_epochs=150`` epochs with Adam at lr 1e-4 and an MSE loss, batch 512),
    on the target's ``outputs`` (logits) with ``labels``; one row per protocol.

    ``selena``: trained on all attacker-known examples; after every epoch it is evaluated
    on the evaluation sets, and the best epoch's accuracy is reported (``best_nn_acc``), a
    choice made on the evaluation sets. ``honest``: trained on a ``1 - holdout`` share of
    the attacker-known members and non-members; the epoch is chosen on one half of the
    held-out share, ``attacker_acc`` (which the honest ``best`` compares across attacks) is
    measured on the other half, and that epoch's model is evaluated once. ``scale`` shrinks the
    network's widths (1 = SELENA's). SELENA's small initialisation (``init_std=0.01``) needs
    its thousands of steps to leave the constant output 0.5; with a few hundred attacker
    examples, ``init_std=None`` (PyTorch's default) and smaller batches let the network
    learn at all. Both rows report the chosen ``epoch``.

    Departures from SELENA's code: the non-members are shuffled every epoch too (SELENA's
    loop draws ``r = np.arange(...)`` for them without shuffling it), and the network's
    first layer takes ``num_classes`` inputs (SELENA's is fixed at 100)."""
    for protocol in protocols:
        check_choice("protocol", protocol, PROTOCOLS)
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        check_positive(name, v, integer=True)
    check_positive("lr", lr)
    check_positive("scale", scale)
    check_fraction("holdout", holdout)

    def features(k: str):
        logits, y = np.asarray(getattr(outputs, k)), np.asarray(getattr(labels, k))
        return (torch.as_tensor(probabilities(logits), dtype=torch.float32),
                torch.as_tensor(np.eye(num_classes)[y], dtype=torch.float32))

    f = {k: features(k) for k, _ in outputs.items()}
    evaluation = (f["eval_member"], f["eval_nonmember"])
    y_true = np.r_[np.ones(len(labels.eval_member), bool), np.zeros(len(labels.eval_nonmember), bool)]
    opts = dict(num_classes=num_classes, epochs=epochs, batch_size=batch_size, lr=lr, scale=scale, init_std=init_std,
                seed=seed)
    rows = []
    for protocol in protocols:
        if protocol == "selena":
            epoch, _, scores = _train_nn_small_threads(f["attack_member"], f["attack_nonmember"], evaluation,
                                                       {"eval": evaluation}, **opts)
            # SELENA: best_nn_acc over epochs, on the evaluation sets
            attacker_acc = float("nan")
        else:
            rng = np.random.default_rng(seed)
            split = {}
            for k in ("attack_member", "attack_nonmember"):
                perm = rng.permutation(len(f[k][0]))
                cut = int(round(holdout * len(perm)))
                split[k] = tuple(tuple(t[idx] for t in f[k]) for idx in (perm[cut:], perm[:cut]))
            # the held-out share is halved: one half chooses the epoch, the other estimates
            # the chosen epoch's accuracy without the optimism of that choice
            halves = {k: tuple(tuple(t[i::2] for t in split[k][1]) for i in (0, 1)) for k in split}
            check = (halves["attack_member"][1], halves["attack_nonmember"][1])
            epoch, _, scores = _train_nn_small_threads(
                split["attack_member"][0], split["attack_nonmember"][0],
                (halves["attack_member"][0], halves["attack_nonmember"][0]),  # chosen on the attacker's held-out data
                {"check": check, "eval": evaluation}, **opts)
            n_check = len(check[0][0])
            attacker_acc = float(balanced_accuracy(scores["check"][:n_check] > 0.5, scores["check"][n_check:] > 0.5))
        scores = scores["eval"]
        rows.append({"protocol": protocol, "attack": "nn", **membership_metrics(y_true, scores, scores > 0.5),
                     "attacker_acc": attacker_acc, "epoch": epoch + 1})
    return pd.DataFrame(rows).set_index(["protocol", "attack"])


# --------------------------------------------------------------------------- all of them


def run_attacks(outputs: AttackSets, labels: AttackSets, protocols: tuple[str, ...] = PROTOCOLS,
                attacks: tuple[str, ...] = ATTACKS, num_classes: int | None = None, folds: int = 5, seed: int = 0,
                nn_options: dict | None = None) -> pd.DataFrame:
    """Every single-query attack on the target's ``outputs`` (logits on the four sets), under
    each protocol: one row per (``protocol``, ``attack``), where ``attack`` is
    ``correctness`` (a global threshold, as SELENA fits it), ``<attack>_global`` and
    ``<attack>_class`` for the other metric attacks, ``nn``, and ``best``.

    Thresholds are fitted on the attacker-known sets and evaluated on the evaluation sets
    under both protocols (SELENA's ``system_attack`` calls ``threshold_based_inference_attack``
    with ``train_*`` = attacker-known, ``test_*`` = evaluation sets). ``best`` is the attack a
    protocol picks (:func:`~sharpmem_lib.attacks.thresholds.choose`): the highest evaluation
    accuracy (``selena``: ``max(entr_acc, mentr_acc, conf_acc, corr_acc, nn_acc)`` with each
    ``max(global, class)``) or the highest accuracy estimated on the attacker's own data
    (``honest``: ``attacker_acc``); ``chosen`` names it. ``nn_options``: keyword arguments of
    :func:`nn_attack` (e.g. ``epochs``, ``scale``)."""
    for protocol in protocols:
        check_choice("protocol", protocol, PROTOCOLS)
    for attack in attacks:
        check_choice("attacks", attack, ATTACKS)
    if num_classes is None:
        num_classes = int(max(np.asarray(outputs.attack_member).shape[1], max(int(v.max()) for _, v in labels.items())
                              + 1))
    p = outputs.map(probabilities)
    metric = [a for a in attacks if a != "nn"]
    candidates = {a: AttackSets(*(attack_scores(getattr(p, k), getattr(labels, k), a) for k, _ in p.items()))
                  for a in metric}
    frames = []
    if candidates:
        table = fit_threshold_attacks(candidates, labels, num_classes,
                                      per_class={a: a != "correctness" for a in metric}, folds=folds, seed=seed)
        table.index = [a if a == "correctness" else f"{a}_{kind}" for a, kind in table.index]
        frames += [table.assign(protocol=protocol) for protocol in protocols]
    if "nn" in attacks:
        nn_rows = nn_attack(outputs, labels, num_classes, protocols, seed=seed, **(nn_options or {}))
        frames += [nn_rows.loc[protocol].assign(protocol=protocol) for protocol in protocols]
    rows = pd.concat(frames)
    rows.index.name = "attack"
    rows = rows.reset_index()
    out = []
    for protocol in protocols:
        group = rows[rows["protocol"] == protocol].set_index("attack")
        chosen = choose(group, protocol)
        out.append(group.reset_index())
        out.append(pd.DataFrame([{**group.loc[chosen].to_dict(), "attack": "best", "chosen": chosen}]))
    return pd.concat(out, ignore_index=True).set_index(["protocol", "attack"])
