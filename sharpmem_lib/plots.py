"""One function per paper figure. Each takes computed results and returns a Figure.

Every figure is drawn in :data:`BOOK_STYLE` (font sizes readable at the width the book
shows it) and no wider than the book's text column (about 9 inches at 96 CSS pixels per
inch). :func:`show_figure` displays one in a notebook with its number, caption and alt text,
as a sharp (2x) image.
"""

from __future__ import annotations

import base64
import functools
import html
import io

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sharpmem_lib.data import BLUE, RED, ToyMixture
from sharpmem_lib.report import method_label

__all__ = ["BOOK_STYLE", "figure_html", "show_figure", "toy_figure", "paired_seeds_figure", "training_curves",
           "influencers_figure", "bucket_accuracy_figure", "top1_memorization_figure", "ground_truth_figure",
           "roc_figure", "group_tpr_figure", "sweep_figure", "sweep_caption", "tradeoff_figure", "sharpness_figure"]

# Sizes in points; a figure of width w inches is shown w * 96 CSS pixels wide (at most the
# column), so 9-10 pt text reads like the page's own small print.
BOOK_STYLE = {
    "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
    "legend.fontsize": 9, "legend.title_fontsize": 9, "figure.titlesize": 11, "lines.linewidth": 1.6,
    "axes.spines.top": False, "axes.spines.right": False,
}
CSS_PX_PER_INCH = 96
SHARPNESS = 2  # image pixels per CSS pixel


def _book_style(draw):
    """Draw the figure under BOOK_STYLE (fonts are fixed when each artist is created)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with plt.rc_context(BOOK_STYLE):
            return draw(*args, **kwargs)
    return wrapper


def figure_html(fig: Figure, number: str, caption: str, alt: str) -> str:
    """``fig`` as an HTML ``<figure>``: a PNG at twice the CSS resolution, shown at the
    figure's size in CSS inches (at most the column width), with alt text and the caption
    "Figure <number>: <caption>". ``number`` is the paper's figure number where the figure
    reproduces one ("3a"), else the chapter's own ("S2.1")."""
    for name, value in (("number", number), ("caption", caption), ("alt", alt)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}={value!r} is not valid: every figure needs a non-empty {name}")
    width_in, _ = fig.get_size_inches()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=CSS_PX_PER_INCH * SHARPNESS, facecolor="white")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    css_width = round(width_in * CSS_PX_PER_INCH)
    return (f'<figure class="sharpmem-figure">'
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt.strip())}" width="{css_width}" '
            f'style="max-width: 100%; height: auto;">'
            f'<figcaption><strong>Figure {html.escape(number.strip())}:</strong> {html.escape(caption.strip())}'
            f'</figcaption></figure>')


class _FigureOutput:
    def __init__(self, fig: Figure, number: str, caption: str, alt: str):
        self.html = figure_html(fig, number, caption, alt)
        self.text = f"Figure {number.strip()}: {caption.strip()}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.html, "text/plain": self.text}


def show_figure(fig: Figure, number: str, caption: str, alt: str) -> None:
    """Display ``fig`` in the notebook (and so in the book) as a numbered, captioned figure
    with alt text (see :func:`figure_html`), then close it so that the inline backend does
    not show it a second time."""
    from IPython.display import display

    output = _FigureOutput(fig, number, caption, alt)
    plt.close(fig)
    display(output)


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


@_book_style
def toy_figure(result) -> Figure:
    """Fig. 1: (a) class densities and the Bayes boundary; (b), (c) SGD/SAM boundaries
    learnt from a sample with few / many atypical points (first seed)."""
    mixture: ToyMixture = result.config.mixture
    gx, gy = result.grid_x, result.grid_y
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    dens = np.exp(mixture.class_log_density(pts)).reshape(*gx.shape, 2)

    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.6), sharex=True, sharey=True, layout="constrained")
    ax = axes[0]
    for label, cmap in ((RED, "Reds"), (BLUE, "Blues")):
        d = dens[..., label]
        ax.contour(gx, gy, d, levels=np.quantile(d[d > 1e-4], [0.2, 0.5, 0.8, 0.95]), cmap=cmap)
    handles = [_boundary(ax, gx, gy, result.grids[("bayes", "bayes")], "bayes")]
    ax.legend(handles=handles, loc="lower left")
    ax.set_title("(a) class densities, Bayes boundary")

    for ax, sample, title in ((axes[1], "few", "(b) few atypical points"),
                              (axes[2], "many", "(c) many atypical points")):
        atypical_handle = _scatter(ax, result.train_sets[sample])
        handles = [_boundary(ax, gx, gy, result.grids[("bayes", "bayes")], "bayes")]
        for method in result.config.algorithms:
            handles.append(_boundary(ax, gx, gy, result.grids[(sample, method)], method))
        n = len(result.train_sets[sample])
        ax.legend(handles=handles + [atypical_handle], loc="lower left")
        ax.set_title(f"{title} (n = {n})")
    for ax in axes:
        ax.set_xlabel("$x_1$")
        ax.set_aspect("equal")
    axes[0].set_ylabel("$x_2$")
    return fig


@_book_style
def paired_seeds_figure(runs, metric: str = "atypical_acc", methods=("sgd", "sam"),
                        label: str = "accuracy on atypical test points") -> Figure:
    """One line per seed joining each method's score, one panel per sample size.

    Shows the per-seed spread that a mean ± std hides, and which way each pair moved.
    """
    samples = list(dict.fromkeys(runs["sample"]))
    fig, axes = plt.subplots(1, len(samples), figsize=(3.2 * len(samples), 3.0), sharey=True,
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
            ax.legend(loc="lower right")
        ax.set_xticks(xs, [m.upper() for m in methods])
        ax.set_xlim(-0.3, len(methods) - 0.7)
        ax.set_title(f"{sample} atypical points ({len(wide)} seeds)")
    axes[0][0].set_ylabel(label)
    return fig


@_book_style
def training_curves(histories: dict[str, list[dict]]) -> Figure:
    """Training loss, training accuracy and validation accuracy per epoch, one line per run."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.0), layout="constrained")
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


def _show_image(ax, image: np.ndarray) -> None:
    image = np.asarray(image, dtype=float)
    if image.max() > 1.0:
        image = image / 255.0
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray_r", vmin=0, vmax=1)
    else:
        ax.imshow(np.transpose(image, (1, 2, 0)))
    ax.set_xticks([])
    ax.set_yticks([])


@_book_style
def influencers_figure(X: np.ndarray, rows: list[tuple[int, int]], influence, k: int = 10) -> Figure:
    """Fig. 2: each row a test image (framed; its bucket on the left) and its ``k`` most
    influential same-class training images, titled with their influence.

    ``rows``: (test id, bucket) pairs; ``influence``: a ``SameClassInfluence``.
    """
    fig, axes = plt.subplots(len(rows), k + 1, figsize=(0.8 * (k + 1), 0.95 * len(rows)), squeeze=False)
    for r, (test_id, bucket) in enumerate(rows):
        ax = axes[r, 0]
        _show_image(ax, X[test_id])
        for spine in ax.spines.values():
            spine.set_edgecolor("tab:red" if bucket == 1 else "tab:blue")
            spine.set_linewidth(3)
        ax.set_ylabel(f"bucket {bucket}")
        ids, scores = influence.top_influencers(test_id, k)
        for c in range(k):
            ax = axes[r, c + 1]
            if c < len(ids):
                _show_image(ax, X[ids[c]])
                ax.set_title(f"{scores[c]:.3f}", fontsize=7)  # influences of 0.001-0.01 are common
            else:
                ax.axis("off")
    axes[0, 0].set_title("test")
    fig.subplots_adjust(wspace=0.1, hspace=0.45)
    return fig


@_book_style
def bucket_accuracy_figure(table, baseline: str = "sgd") -> Figure:
    """Fig. 3a: test accuracy per bucket per method (mean ± std over seeds), and each
    method's gain over ``baseline`` per bucket (mean and 95 % interval, paired by seed).

    ``table``: one row per (method, seed, bucket) with column ``acc``.
    """
    from sharpmem_lib.stats import paired_gain

    methods = list(dict.fromkeys(table["method"]))
    n_buckets = int(table["bucket"].max())
    xs = np.arange(1, n_buckets + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        stats_ = table[table.method == method].groupby("bucket")["acc"].agg(["mean", "std"])
        ax1.bar(xs + (i - (len(methods) - 1) / 2) * width, stats_["mean"], width, yerr=stats_["std"].fillna(0),
                label=method_label(method), capsize=2)
    ax1.set_xticks(xs)
    ax1.set_xlabel("bucket (1 = lowest influence entropy = most memorization)")
    ax1.set_ylabel("test accuracy")
    lo = max(0.0, float(table["acc"].min()) - 0.05)
    ax1.set_ylim(lo, 1.0)
    ax1.legend()
    ax1.set_title("(a) accuracy per bucket")
    for i, method in enumerate(m for m in methods if m != baseline):
        gain = paired_gain(table, method, baseline, "acc", by="bucket").sort_values("bucket")
        err = np.vstack([gain["gain"] - gain["ci95_low"], gain["ci95_high"] - gain["gain"]])
        line = ax2.errorbar(gain["bucket"] + 0.08 * i, 100 * gain["gain"], yerr=100 * np.nan_to_num(err), marker="o",
                            capsize=3, label=f"{method_label(method)} − {method_label(baseline)}")
        # no interval (fewer than 3 seeds, or all differences equal): a hollow marker, never a zero-width bar
        bare = ~np.isfinite(gain["ci95_low"].to_numpy(float))
        if bare.any():
            ax2.plot(gain["bucket"][bare] + 0.08 * i, 100 * gain["gain"][bare], "o", ms=9, mfc="white",
                     color=line[0].get_color(),
                     label="no interval (n < 3 or all differences equal)" if i == 0 else None)
    ax2.axhline(0, color="black", lw=0.8)
    ax2.set_xticks(xs)
    ax2.set_xlabel("bucket")
    ax2.set_ylabel("gain (percentage points)")
    ax2.legend()
    ax2.set_title(f"(a') gain over {method_label(baseline)}, paired by seed, 95 % CI")
    return fig


@_book_style
def top1_memorization_figure(top1: np.ndarray, bucket: np.ndarray, show=(1, 5)) -> Figure:
    """Figs. 3b, 3c: distribution of the memorization score of each test point's top-1
    influencer, for the buckets in ``show``."""
    fig, axes = plt.subplots(1, len(show), figsize=(3.8 * len(show), 3.0), sharex=True, sharey=True,
                             layout="constrained")
    finite = top1[np.isfinite(top1)]
    bins = np.linspace(min(0.0, float(finite.min(initial=0))), max(1.0, float(finite.max(initial=1))), 21)
    for ax, b, letter in zip(axes, show, "bcdefg"):
        values = top1[(bucket == b) & np.isfinite(top1)]
        ax.hist(values, bins=bins, color="tab:red" if b == show[0] else "tab:blue", alpha=0.8)
        if len(values):
            ax.axvline(np.mean(values), color="black", ls="--", lw=1, label=f"mean {np.mean(values):.2f}")
        else:
            ax.text(0.5, 0.5, "no test point here has\na positive influence", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_title(f"({letter}) bucket {b}: {len(values)} of {int((bucket == b).sum())} test points")
        ax.set_xlabel("memorization score of the top-1 influencer")
        if len(values):
            ax.legend()
    axes[0].set_ylabel("test points")
    return fig


@_book_style
def ground_truth_figure(entropy: np.ndarray, subpop_size: np.ndarray, bucket: np.ndarray) -> Figure:
    """Influence entropy against the true size of each test point's subpopulation."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    ax1.scatter(subpop_size, entropy, s=6, alpha=0.4)
    ax1.set_xscale("log")
    ax1.set_xlabel("size of the test point's subpopulation (log)")
    ax1.set_ylabel("influence entropy / log(n_k)")
    ax1.set_title("entropy against ground truth")
    n_buckets = int(bucket.max())
    ax2.boxplot([subpop_size[bucket == b] for b in range(1, n_buckets + 1)], showfliers=False)
    ax2.set_xticks(range(1, n_buckets + 1), [str(b) for b in range(1, n_buckets + 1)])
    ax2.set_yscale("log")
    ax2.set_xlabel("bucket")
    ax2.set_ylabel("subpopulation size (log)")
    ax2.set_title("subpopulation sizes per bucket")
    return fig


@_book_style
def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """ROC curves on log-log axes (Carlini et al. 2022), where the low-FPR regime that
    matters for privacy is visible; ``curves``: label -> (membership, scores), pooled over
    whatever they hold (all targets' scores in chapter 3). Every threshold is kept
    (``drop_intermediate=False``): sklearn's default drops points that matter at low FPR."""
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(4.5, 4.0), layout="constrained")
    floor = 1e-4
    for label, (member, scores) in curves.items():
        fpr, tpr, _ = roc_curve(np.ravel(member), np.ravel(scores), drop_intermediate=False)  # every threshold
        ax.plot(np.maximum(fpr, floor), np.maximum(tpr, floor), label=label)
    ax.plot([floor, 1], [floor, 1], color="gray", ls="--", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.legend()
    return fig


@_book_style
def group_tpr_figure(table, value: str = "tpr", group: str = "quintile", method: str = "algorithm") -> Figure:
    """Bar chart of an attack's TPR per group (mean ± std over targets), one bar per method;
    group 0 (no measured memorization) is labelled "unmeasured"."""
    methods = list(dict.fromkeys(table[method]))
    groups = sorted(table[group].unique())
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
    for i, m in enumerate(methods):
        stats_ = table[table[method] == m].groupby(group)[value].agg(["mean", "std"]).reindex(groups)
        ax.bar(np.arange(len(groups)) + (i - (len(methods) - 1) / 2) * width, stats_["mean"], width,
               yerr=stats_["std"].fillna(0), capsize=2, label=method_label(m))
    ax.set_xticks(np.arange(len(groups)), ["unmeasured" if g == 0 else str(g) for g in groups])
    ax.set_xlabel("memorization group of the training point\n(1 = most memorized; unmeasured = score 0)")
    ax.set_ylabel("LiRA TPR at 1 % FPR")
    ax.legend()
    return fig


_ATTACK_STYLE = {"single_query": ("single-query", "-", "o"), "multi_query": ("multi-query (label-only)", "--", "s")}
_PROTOCOL_COLOR = {"selena": "tab:red", "honest": "tab:blue"}


@_book_style
def sweep_figure(summary, x: str, xlabel: str, title: str = "") -> Figure:
    """Figs. 4b, 4c, 5b: test accuracy (left) and best attack accuracy (right, both
    protocols, single- and multi-query) against a hyperparameter, mean ± std over training
    and split seeds. ``summary``: rows of :func:`~sharpmem_lib.privacy.summarize` grouped by
    ``[x, "protocol"]``. Settings where some training run diverged are marked with a red
    cross and the number of diverged seeds, never dropped. The x ticks are the settings
    themselves, so a sweep of two settings reads as two points joined by a line (its
    caption says so: :func:`sweep_caption`)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    honest = summary[summary.protocol == "honest"].sort_values(x)
    ax1.errorbar(honest[x], 100 * honest["test_acc_mean"], yerr=100 * honest["test_acc_std"].fillna(0), marker="o",
                 color="black", capsize=3)
    ax1.set_ylabel("test accuracy (%)")
    for protocol, color in _PROTOCOL_COLOR.items():
        rows = summary[summary.protocol == protocol].sort_values(x)
        for metric, (label, ls, marker) in _ATTACK_STYLE.items():
            ax2.errorbar(rows[x], 100 * rows[f"{metric}_mean"], yerr=100 * rows[f"{metric}_std"].fillna(0),
                         ls=ls, marker=marker, color=color, capsize=2, label=f"{label}, {protocol} protocol")
    ax2.axhline(50, color="gray", lw=0.8, ls=":")
    ax2.set_ylabel("attack accuracy (%)")
    ax2.legend(fontsize=8)
    xs = np.sort(summary[x].unique().astype(float))
    pad = 0.06 * (xs[-1] - xs[0] or 1.0)
    for ax in (ax1, ax2):
        ax.set_xlabel(xlabel)
        ax.set_xlim(xs[0] - pad, xs[-1] + pad)  # diverged settings (NaN means) stay on the axis
        if len(xs) <= 8:  # ticks only where a setting ran: no in-between value reads as measured
            ax.set_xticks(xs, [f"{v:g}" for v in xs])
        for _, row in honest[honest["diverged"] > 0].iterrows():
            ax.plot([row[x]], [0.03], marker="x", color="tab:red", ms=9, mew=2, transform=ax.get_xaxis_transform())
            ax.annotate(f"diverged\n({int(row['diverged'])} seeds)", (row[x], 0.07), xycoords=("data", "axes fraction"),
                        color="tab:red", fontsize=8, ha="center")
    ax1.set_title(f"{title} test accuracy".strip())
    ax2.set_title(f"{title} best attack accuracy".strip())
    return fig


def sweep_caption(figure: tuple[str, str], settings, symbol: str, name: str) -> tuple[str, str]:
    """Caption and alt text of a sweep figure (``figure``: the chapter's (caption, alt)) for
    the ``settings`` it shows (``symbol``: 'λ' for the caption, ``name``: 'lambda' for the
    alt text). With two settings each line joins two points, which shows a difference, not a
    trend or a curve, and both texts say so; with one, that it shows no change."""
    caption, alt = figure
    xs = sorted({float(v) for v in settings})
    if len(xs) == 2:
        caption += (f" The sweep has two settings, {symbol} = {xs[0]:g} and {symbol} = {xs[1]:g}: each line joins two "
                    "points, which shows the difference between them, not a trend.")
        alt += f"; only two settings, {name} = {xs[0]:g} and {xs[1]:g}, each pair of points joined by a straight line"
    elif len(xs) == 1:
        caption += f" Only one setting ({symbol} = {xs[0]:g}) is shown, so the figure shows no change with {symbol}."
        alt += f"; only one setting, {name} = {xs[0]:g}"
    return caption, alt


@_book_style
def tradeoff_figure(summary, label: str = "method", protocol: str = "honest") -> Figure:
    """Fig. 5c: test accuracy against best attack accuracy (single-query left, label-only
    right) for each method or defense, mean ± std over training and split seeds. Lower right
    is better."""
    rows = summary[summary.protocol == protocol]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
    colors = plt.cm.tab10(np.arange(len(rows)) % 10)
    for ax, metric in zip(axes, ("single_query", "multi_query")):
        for color, (_, row) in zip(colors, rows.iterrows()):
            ax.errorbar(100 * row["test_acc_mean"], 100 * row[f"{metric}_mean"],
                        xerr=100 * np.nan_to_num(row["test_acc_std"]), yerr=100 * np.nan_to_num(row[f"{metric}_std"]),
                        marker="o", color=color, capsize=3,
                        label=str(row[label]))
        ax.set_xlabel("test accuracy (%)")
        ax.set_ylabel(f"{_ATTACK_STYLE[metric][0]} attack accuracy (%)")
        ax.set_title(f"{_ATTACK_STYLE[metric][0]}, {protocol} protocol")
    axes[1].legend(fontsize=8, loc="best")
    return fig


@_book_style
def sharpness_figure(table, label: str = "method", columns: tuple[str, ...] | None = None) -> Figure:
    """Measured sharpness per method: one panel per column of ``table`` (``lambda_max`` and
    ``sam_sharpness@rho``), one dot per training seed and the mean as a bar, log scale."""
    columns = columns or tuple(c for c in table.columns if c == "lambda_max" or c.startswith("sam_sharpness"))
    methods = list(dict.fromkeys(table[label]))
    fig, axes = plt.subplots(1, len(columns), figsize=(3.4 * len(columns), 3.2), layout="constrained", squeeze=False)
    for ax, col in zip(axes[0], columns):
        for i, m in enumerate(methods):
            values = table.loc[table[label] == m, col].to_numpy(float)
            ax.bar(i, np.nanmean(values), color="lightgray", edgecolor="gray")
            ax.scatter(np.full(len(values), i), values, color="black", s=12, zorder=3)
        ax.set_xticks(range(len(methods)), [method_label(m) for m in methods], rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_title({"lambda_max": "top Hessian eigenvalue"}.get(
            col, col.replace("sam_sharpness@", "SAM sharpness, ρ = ")))
    return fig
