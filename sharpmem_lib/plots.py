"""One function per paper figure. Each takes computed results and returns a Figure."""

from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sharpmem_lib.data import BLUE, RED, ToyMixture

__all__ = ["toy_figure", "paired_seeds_figure", "training_curves"]

_CLASS_COLORS = {RED: "tab:red", BLUE: "tab:blue"}
_METHOD_STYLE = {
    "bayes": dict(color="black", linestyles="solid", linewidths=2.0),
    "sgd": dict(color="tab:orange", linestyles="dashed", linewidths=1.8),
    "sam": dict(color="tab:green", linestyles="dashdot", linewidths=1.8),
    "sharp": dict(color="tab:purple", linestyles="dotted", linewidths=1.8),
    "sharpreg": dict(color="tab:brown", linestyles="dotted", linewidths=1.8),
}


def _boundary(ax, gx, gy, labels, method: str):
    style = _METHOD_STYLE.get(method, dict(color="gray", linestyles="solid", linewidths=1.5))
    ax.contour(gx, gy, labels.astype(float), levels=[0.5], colors=[style["color"]],
               linestyles=style["linestyles"], linewidths=style["linewidths"])
    return Line2D([], [], color=style["color"], linestyle=style["linestyles"], lw=style["linewidths"],
                  label="Bayes optimal" if method == "bayes" else method.upper())


def _scatter(ax, data):
    typical = data.group != 1
    for label, color in _CLASS_COLORS.items():
        keep = (data.y == label) & typical
        ax.scatter(data.X[keep, 0], data.X[keep, 1], s=6, c=color, alpha=0.35, linewidths=0)
    atypical = data.group == 1
    return ax.scatter(data.X[atypical, 0], data.X[atypical, 1], s=40, c=_CLASS_COLORS[RED], marker="+",
                      linewidths=1.5, label=f"atypical red points ({atypical.sum()})")


def toy_figure(result) -> Figure:
    """Fig. 1: (a) class densities and the Bayes boundary; (b), (c) SGD/SAM boundaries
    learnt from a sample with few / many atypical points (first seed)."""
    mixture: ToyMixture = result.config.mixture
    gx, gy = result.grid_x, result.grid_y
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    dens = np.exp(mixture.class_log_density(pts)).reshape(*gx.shape, 2)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), sharex=True, sharey=True, layout="constrained")
    ax = axes[0]
    for label, cmap in ((RED, "Reds"), (BLUE, "Blues")):
        d = dens[..., label]
        ax.contour(gx, gy, d, levels=np.quantile(d[d > 1e-4], [0.2, 0.5, 0.8, 0.95]), cmap=cmap)
    handles = [_boundary(ax, gx, gy, result.grids[("bayes", "bayes")], "bayes")]
    ax.legend(handles=handles, loc="lower left", fontsize=9)
    ax.set_title("(a) class densities and Bayes optimal boundary")

    for ax, sample, title in ((axes[1], "few", "(b) few atypical points"),
                              (axes[2], "many", "(c) many atypical points")):
        atypical_handle = _scatter(ax, result.train_sets[sample])
        handles = [_boundary(ax, gx, gy, result.grids[("bayes", "bayes")], "bayes")]
        for method in result.config.algorithms:
            handles.append(_boundary(ax, gx, gy, result.grids[(sample, method)], method))
        n = len(result.train_sets[sample])
        ax.legend(handles=handles + [atypical_handle], loc="lower left", fontsize=9)
        ax.set_title(f"{title}: n = {n}, seed 0")
    for ax in axes:
        ax.set_xlabel("$x_1$")
        ax.set_aspect("equal")
    axes[0].set_ylabel("$x_2$")
    return fig


def paired_seeds_figure(runs, metric: str = "atypical_acc", methods=("sgd", "sam"),
                        label: str = "accuracy on atypical test points") -> Figure:
    """One line per seed joining each method's score, one panel per sample size.

    Shows the per-seed spread that a mean ± std hides, and which way each pair moved.
    """
    samples = list(dict.fromkeys(runs["sample"]))
    fig, axes = plt.subplots(1, len(samples), figsize=(4.2 * len(samples), 3.6), sharey=True,
                             layout="constrained", squeeze=False)
    for ax, sample in zip(axes[0], samples):
        wide = runs[runs["sample"] == sample].pivot(index="seed", columns="method", values=metric)
        xs = np.arange(len(methods))
        for _, row in wide.iterrows():
            ys = row[list(methods)].to_numpy(dtype=float)
            up = ys[-1] > ys[0]
            ax.plot(xs, ys, "-o", color="tab:green" if up else "tab:gray", alpha=0.7, ms=4)
        if "bayes" in wide:
            ax.axhline(wide["bayes"].iloc[0], color="black", lw=1, ls="--", label="Bayes optimal")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xticks(xs, [m.upper() for m in methods])
        ax.set_xlim(-0.3, len(methods) - 0.7)
        ax.set_title(f"{sample} atypical points ({len(wide)} seeds)")
    axes[0][0].set_ylabel(label)
    return fig


def training_curves(histories: dict[str, list[dict]]) -> Figure:
    """Training loss, training accuracy and validation accuracy per epoch, one line per run."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    for label, history in histories.items():
        epochs = [h["epoch"] for h in history]
        axes[0].plot(epochs, [h["train_loss"] for h in history], label=label)
        axes[1].plot(epochs, [h["train_acc"] for h in history], label=label)
        if "val_acc" in history[0]:
            axes[2].plot(epochs, [h["val_acc"] for h in history], label=label)
            best = max(history, key=lambda h: h["val_acc"])
            axes[2].scatter([best["epoch"]], [best["val_acc"]], s=25, zorder=3)
    for ax, title in zip(axes, ("training loss", "training accuracy", "validation accuracy (dot: selected epoch)")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
    axes[0].set_yscale("log")
    axes[0].legend()
    return fig
