"""Putting computed numbers into the book: glue, readable tables, and every verdict sentence.

Numbers in chapter prose are never typed: a notebook computes them, ``glue`` records them
in the executed notebook, and the page's ``{glue}`` roles display them.

Verdict sentences are written here, from :class:`~sharpmem_lib.stats.Verdict` objects (the
statistics live in :mod:`sharpmem_lib.stats`): each states its numbers, its test and the
Holm-adjusted p-value, and a verdict that runs against the paper says so in those words.
"""

from __future__ import annotations

import html
import math
import os
from typing import Any, Mapping

import pandas as pd

from sharpmem_lib.stats import NO_DIRECTION, Verdict

__all__ = ["glue", "glue_claim", "claim_number", "claim_power", "claim_values", "significance_views", "lira_gain_views",
           "mitigation_table", "power_note", "pattern_outcome", "shrink_outcome", "significance_view", "target_view",
           "boundary_best_selena", "readable_table", "readable_name", "readable_value", "in_book_build",
           "mean_std_table", "pct", "describe_gain", "gain_table", "ground_truth_scope", "chance_note",
           "unmeasured_share", "influence_precision_note",
           "bucket_pattern", "method_label", "top1_trend", "trend", "claim_verdict", "family_note", "table2_verdict",
           "lira_verdict", "defense_verdict", "sharpness_verdict", "sharpness_word", "dp_gap_note", "verdict_table",
           "control_verdict", "control_conclusion", "sharpness_caveat", "short_of_holm", "defense_test_sentence",
           "mitigation_sentences", "mitigation_label", "build_setup", "bucket_sentences", "strata_view",
           "ground_truth_table",
           "evidence", "island_sentence", "power_sentence", "capture_view", "disagreement_list",
           "significance_counts", "protocol_vs_optimizer", "boundary_setup", "boundary_best", "lira_setup",
           "lira_groups", "privacy_sentences", "toy_many_sentence", "premise_sentence", "premise_sentences",
           "chapter4_setup", "chapters_differ", "training_loss_sentence", "control_move_sentence",
           "largest_drop_sentence", "near_holm_boundary",
           "lira_fit_sentence", "lira_memorization_sentence",
           "paper_effects", "paper_effect_note", "gap_sentence", "weights_note",
           "attacker_members", "bucket_noise_sentence", "partial_sentence", "near_unmeasured_sentence",
           "dataset_name", "lira_accuracy_sentence", "table2_label",
           "EXPLORATORY_AGREES", "LIRA_DEPENDENCE", "TOP1_DEPENDENCE"]


BOOK_BUILD_ENV = "SHARPMEM_BOOK_BUILD"  # set by sharpmem_lib.pipeline while the book's notebooks run


def in_book_build() -> bool:
    """True while ``make book`` (``sharpmem_lib.pipeline``) executes the notebook."""
    return os.environ.get(BOOK_BUILD_ENV) == "1"


class _Shown:
    """A glued value as a reader outside the book sees it: its name, then the value."""

    def __init__(self, name: str, value: Any):
        self.name, self.value = name, value

    def __repr__(self) -> str:
        return f"{self.name}: {self.value}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = str(self.value)
        return {"text/plain": f"{self.name}: {text}",
                "text/html": f"<p><code>{html.escape(self.name)}</code>: {html.escape(text)}</p>"}


def glue(name: str, value: Any, display: bool = False) -> None:
    """Give a computed value to the prose that refers to it by ``name``.

    In the book build (:func:`in_book_build`) the value is recorded for the page's
    ``{glue}`` roles (myst-nb's glue; shown in the cell as well only with ``display=True``).
    Anywhere else (Jupyter, Colab, Binder, papermill by hand), where ``{glue}`` roles print
    as placeholders, the value is shown in the cell that computes it, labelled with its
    name, right above the prose that uses it.
    """
    from IPython.display import display as show

    if isinstance(value, pd.DataFrame):
        value = readable_table(value)
    if in_book_build():
        from myst_nb import glue as _glue

        _glue(name, value, display=display)
    elif isinstance(value, (pd.DataFrame, pd.Series)) or hasattr(value, "_repr_html_"):
        show(_Shown(name, "(table below)"))
        show(value)
    else:
        show(_Shown(name, value))


_WORDS = {"acc": "accuracy", "auc": "AUC", "tpr": "TPR", "fpr": "FPR", "sgd": "SGD", "sam": "SAM", "swa": "SWA",
          "sharpreg": "SharpReg", "eval": "evaluation", "nonmembers": "non-members", "lam": "λ", "xi": "ξ",
          "rho": "ρ", "std": "s.d.", "ci95": "95 % CI", "p": "p", "n": "n", "mem": "memorization"}
_PHRASES = {"single_query": "single-query", "multi_query": "multi-query", "lambda_max": "top Hessian eigenvalue",
            "test_acc": "test accuracy", "train_acc": "train accuracy", "val_acc": "validation accuracy",
            "balanced_acc": "balanced accuracy", "p_value": "p", "ci95_low": "95 % CI low", "ci95_high": "95 % CI high"}


def readable_name(name) -> str:
    """A column or index name as a paper prints it: 'test_acc_p' -> 'test accuracy (p)',
    'attack_nonmembers' -> 'attack non-members', 'single_query_mean' -> 'single-query mean'."""
    if not isinstance(name, str) or "_" not in name:
        return name if not isinstance(name, str) else _WORDS.get(name, name)
    text = name
    for code, words in sorted(_PHRASES.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(code, words.replace("_", " "))
    parts = text.split("_")
    if len(parts) > 1 and parts[-1] == "p":
        return " ".join(_WORDS.get(w, w) for w in parts[:-1]) + " (p)"
    return " ".join(_WORDS.get(w, w) for w in parts)


def readable_value(x, digits: int = 3) -> str | object:
    """A cell as a paper prints it: True/False -> yes/no, None/NaN -> '–', 7.252e-05 ->
    '7.25 × 10⁻⁵', other floats to ``digits`` significant figures; anything else unchanged."""
    import numbers

    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "–"
    if isinstance(x, (bool,)) or type(x).__name__ == "bool_":
        return "yes" if x else "no"
    if isinstance(x, numbers.Real) and not isinstance(x, numbers.Integral):
        x = float(x)
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
            mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
            sup = str(int(exponent)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
            return f"{mantissa} × 10{sup}".replace("-", "−")
        return f"{x:.{digits}g}".replace("-", "−")
    return x


def readable_table(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """``df`` formatted as a paper prints a table: readable headers and index names
    (:func:`readable_name`), and cells without raw Python (:func:`readable_value`)."""
    out = df.copy()
    out = out.map(lambda x: readable_value(x, digits)) if hasattr(out, "map") else out.applymap(readable_value)
    out = out.rename(columns=readable_name, index=lambda v: readable_value(v) if isinstance(v, (bool, float)) else v)
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = out.columns.set_levels([[readable_name(v) for v in lvl] for lvl in out.columns.levels])
    out.columns.names = [readable_name(n) for n in out.columns.names]
    out.index.names = [readable_name(n) for n in out.index.names]
    return out


def claim_number(v: Verdict) -> str:
    """This build's number for a claim in the results page's verdict table: the estimate
    (percentage points, or Spearman's ρ for a trend test), its 95 % interval and n.
    '+2.4 points [+0.3, +4.5], n = 5'; 'ρ = −0.41 [−0.70, −0.05], n = 12'."""
    trend = _rank_trend(v)
    if not math.isfinite(v.estimate):
        return f"n/a (n = {v.n})"
    scale, unit, digits = (1, "", 2) if trend else (100, " points", 1)
    est = (f"ρ = {v.estimate:+.{digits}f}" if trend else f"{scale * v.estimate:+.{digits}f}{unit}").replace("-", "−")
    if math.isfinite(v.ci_low) and math.isfinite(v.ci_high):
        ci = f"[{scale * v.ci_low:+.{digits}f}, {scale * v.ci_high:+.{digits}f}]".replace("-", "−")
    else:
        ci = "(no interval)"
    return f"{est} {ci}, n = {v.n}"


def claim_power(v: Verdict) -> str:
    """The measured power behind a claim's verdict: the smallest difference the design
    resolves at the level the test is held to (α/m for a confirmatory test of a family of
    m, α for an exploratory one), and n. '±1.8 points at level 0.0045 (α/m over 11 tests),
    n = 5'. α/m is the level of the smallest p (the results page's header says so)
    only: Holm holds the k-th smallest to α/(m − k + 1), so a test later in the order may be
    resolved with a raw p above α/m, and the column is conservative for it. Without an
    interval (trend tests, constant differences, too few pairs) it says so."""
    where = (f"α/m over {_count(v.family_size, 'test')}" if v.role == "confirmatory"
             else "exploratory, not adjusted" if v.role == "exploratory" else "empty")
    if v.role == "empty":
        return f"none: the test is empty (every run at the 100 % ceiling), n = {v.n}"
    if v.outcome == "insufficient":
        return f"none: too few pairs for an interval (n = {v.n}; at least 3 are needed)"
    if not math.isfinite(v.level):
        return f"n/a: no test level recorded (not from a chapter's family), n = {v.n}"
    if not math.isfinite(v.half_width):
        kind = "a rank trend test" if _rank_trend(v) else \
            "an exact test without an interval"
        floor = f", smallest attainable p {_p(v.p_min)}" if _floor_shown(v) else ""
        return f"no interval ({kind}{floor}), level {v.level:.2g} ({where}), n = {v.n}"
    return f"±{100 * v.half_width:.1f} points at level {v.level:.2g} ({where}), n = {v.n}"


def power_note(v: Verdict) -> str:
    """Half a sentence for prose: 'the design resolves differences beyond ±1.8 points here'
    or why it resolves none."""
    return f"smallest difference this design resolves: {claim_power(v)}"


def claim_values(key: str, v: Verdict) -> dict[str, str]:
    """The results page's glue for one claim, by name: ``claim_<key>_number``,
    ``claim_<key>_power`` and ``claim_<key>_status`` (see :func:`glue_claim`); a status whose
    Holm-adjusted p is near α (:func:`near_holm_boundary`) says so."""
    status = v.outcome
    if near_holm_boundary(v):
        status += f" (close to the Holm boundary: Holm-adjusted p = {_p(v.p_adjusted)}, n = {v.n})"
    return {f"claim_{key}_number": claim_number(v), f"claim_{key}_power": claim_power(v),
            f"claim_{key}_status": status}


def near_holm_boundary(v: Verdict, factor: float = 1.2) -> bool:
    """Whether a confirmatory verdict's Holm-adjusted p lies within ``factor`` of α (on either
    side): its status could flip with a seed or two more, and the results table says so."""
    p = v.p_adjusted
    return (getattr(v, "role", "confirmatory") == "confirmatory" and v.outcome in ("reproduced", "opposite",
                                                                                  "not resolved")
            and math.isfinite(p) and v.alpha / factor <= p <= v.alpha * factor)


def glue_claim(key: str, v: Verdict) -> None:
    """Glue one row of the results page's verdict table: ``claim_<key>_number`` (this
    build's estimate with its interval, :func:`claim_number`), ``claim_<key>_power`` (the
    smallest difference the design resolves at the level used, and n: :func:`claim_power`)
    and ``claim_<key>_status`` (the verdict's computed outcome: reproduced, opposite, not
    resolved or insufficient)."""
    for name, value in claim_values(key, v).items():
        glue(name, value)


def pct(x: float, digits: int = 1) -> str:
    """0.9234 -> '92.3 %'."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f} %"


def mean_std_table(summary: pd.DataFrame, index: list[str], metrics: dict[str, str], digits: int = 1) -> pd.DataFrame:
    """Format ``<metric>_mean``/``<metric>_std`` columns as 'mean ± std' percentages.

    ``metrics`` maps a metric name to its display header. A group of one (its std is NaN)
    shows 'mean (n = 1, no spread)', not a spread of zero; a group without a value, 'n/a'.
    """
    out = summary[index].copy()
    for metric, header in metrics.items():
        mean, std = summary[f"{metric}_mean"], summary[f"{metric}_std"]
        # a one-seed group has no standard deviation (NaN): '± 0.0' would claim a spread of zero
        out[header] = ["n/a" if math.isnan(m) else f"{100 * m:.{digits}f} (n = 1, no spread)" if math.isnan(s)
                       else f"{100 * m:.{digits}f} ± {100 * s:.{digits}f}" for m, s in zip(mean, std)]
    return out.set_index(index)


_LABELS = {"sgd": "SGD", "sam": "SAM", "swa": "SWA", "sharp": "eq. 4", "sharpreg": "SharpReg"}


def method_label(method) -> str:
    """The paper's name of an algorithm (SGD, SAM, SharpReg); any other label (e.g.
    'λ = 0.5') as given."""
    return _LABELS.get(str(method), str(method))


NAN = float("nan")
AGAINST = "this runs against the paper"  # the words every contrary verdict uses

_TESTS = {"t": "paired t-test", "exact sign-flip": "exact sign-flip test",
          "exact permutation": "exact permutation test", "Monte Carlo permutation": "permutation test",
          "asymptotic (t approximation)": "Spearman t-test"}


def _p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    if 0.0495 <= p < 0.0505:  # would print '0.05' on either side of α: three digits say which
        return f"{p:.3g}"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _floor_shown(v: Verdict) -> bool:
    """Whether a test's smallest attainable p (``p_min``) is worth printing: a permutation
    test's floor, finite and not below 1e-300 (a floor that underflows, as for thousands of
    test points, would print as "0.0e+00"). An asymptotic test has no floor that matters."""
    floor = getattr(v, "p_min", NAN)
    return (math.isfinite(floor) and floor >= 1e-300 and not str(getattr(v, "method", "")).startswith("asymptotic"))


def _count(n: int, noun: str) -> str:
    """'1 seed', '5 seeds': a count with its noun in the right number (nouns in -s only)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _minus(text: str) -> str:
    """``text`` with the typographic minus (−) for the ASCII hyphen of its negative numbers:
    prose writes '−0.8 points', not '-0.8 points'. For numbers only, never for words."""
    return text.replace("-", "−")


def _signed(x: float, spec: str = "+.3g") -> str:
    """A signed raw value for prose, with the typographic minus: '+0.928', '−3.23'."""
    return _minus(format(x, spec))


def _points(x: float) -> str:
    if not math.isfinite(x):  # no pair left to compare (e.g. every pair had a diverged member): not "+nan points"
        return "no estimate"
    return _minus(f"{100 * x:+.1f}") + " points"


def _evidence(v: Verdict, pairs: str = "seeds", value=_points) -> str:
    """'+1.2 points, 95 % CI [+0.3, +2.1], paired t-test p = 0.012, Holm-adjusted p = 0.048
    over 6 tests, 5 seeds': everything a referee needs to check the verdict."""
    parts = [value(v.estimate)]
    if v.outcome != "insufficient" and math.isfinite(v.ci_low) and math.isfinite(v.ci_high):
        parts.append(f"95 % CI [{value(v.ci_low).split()[0]}, {value(v.ci_high).split()[0]}]")
    elif v.note and v.outcome != "insufficient":
        note = v.note.removeprefix("exploratory: not Holm-adjusted").removeprefix("; ")  # said once, below
        if note:
            parts.append(note)
    if v.outcome != "insufficient":
        parts.append(f"{_TESTS.get(v.method, v.method or 'test')} p = {_p(v.p_value)}")
        if _floor_shown(v):  # a rank test's floor: the smallest p its design can give
            parts.append(f"smallest attainable p = {_p(v.p_min)}")
        if v.role == "exploratory":
            parts.append("exploratory, not Holm-adjusted")
        elif v.family_size > 1:
            parts.append(f"Holm-adjusted p = {_p(v.p_adjusted)} over {v.family_size} tests")
        if math.isfinite(getattr(v, "half_width", NAN)) and value is _points:
            parts.append(f"detectable difference ±{100 * v.half_width:.1f} points at level {v.level:.2g}")
    parts.append(f"{v.n} {pairs[:-1] if v.n == 1 and pairs.endswith('s') else pairs}")  # '1 seed', not '1 seeds'
    if getattr(v, "dropped", 0):  # a pair with a diverged member is not compared; say how many
        parts[-1] += f" ({v.dropped} {'pair' if v.dropped == 1 else 'pairs'} left out: a member diverged)"
    return ", ".join(parts)


def evidence(v: Verdict, pairs: str = "seeds") -> str:
    """The numbers behind a paired-gain verdict, for prose that states them on their own:
    '+1.2 points, 95 % CI [...], paired t-test p = ..., Holm-adjusted p = ... over m tests, n targets'."""
    return _evidence(v, pairs)


def _rho(x: float) -> str:
    return "ρ = " + _minus(f"{x:+.2f}")


def _only_before_correction(v: Verdict) -> bool:
    """Significant on its own (raw p < α) but not after Holm: worth saying, not a verdict."""
    return v.outcome == "not resolved" and math.isfinite(v.p_value) and v.p_value < v.alpha <= v.p_adjusted


def _exploratory(v: Verdict) -> bool:
    return getattr(v, "role", "") == "exploratory"


EXPLORATORY_AGREES = "exploratory, so it confirms no claim"
"""What a sentence adds where an exploratory test goes the paper's way: such a test agrees
with the paper's direction, it never confirms the paper (no "as the paper reports")."""


def describe_gain(v: Verdict, method: str, baseline: str, what: str, pairs: str = "seeds") -> str:
    """One sentence on a paired gain ``method`` − ``baseline`` and what it says about the
    paper's direction (``v.expected_sign``), from :func:`~sharpmem_lib.stats.holm_verdicts`."""
    m, b = method_label(method), method_label(baseline)
    if getattr(v, "role", "") == "empty":
        return (f"{m} − {b} on {what}: every run scores 100 % here, so no method can differ: the test is empty and "
                "counts in no family.")
    if v.outcome == "insufficient":
        return (f"{m} − {b} on {what}: {_evidence(v, pairs)}; too few {pairs} for a test (at least 3 are needed): "
                "insufficient data.")
    if v.outcome == NO_DIRECTION:
        return f"{m} − {b} on {what}: {_evidence(v, pairs)}; the paper gives no direction here, so this is no verdict."
    better = "beats" if v.estimate > 0 else "is worse than"
    paper = "better than" if v.expected_sign > 0 else "worse than"
    if v.outcome == "reproduced" and _exploratory(v):
        return f"{m} {better} {b} on {what} ({_evidence(v, pairs)}), in the paper's direction; {EXPLORATORY_AGREES}."
    if v.outcome == "reproduced":
        return f"{m} {better} {b} on {what}, as the paper reports ({_evidence(v, pairs)})."
    if v.outcome == "opposite":
        return (f"{m} {better} {b} on {what} ({_evidence(v, pairs)}): {AGAINST}, which reports {m} {paper} {b}.")
    if _only_before_correction(v):
        contrary = " (the opposite of the paper's direction)" if (v.estimate > 0) != (v.expected_sign > 0) else ""
        return (f"{m} {better} {b} on {what}{contrary} before the correction for the chapter's {v.family_size} tests, "
                f"but not after it ({_evidence(v, pairs)}): not resolved.")
    return f"{m} and {b} are not distinguishable on {what} at this scale ({_evidence(v, pairs)}): not resolved."


def gain_table(gains: pd.DataFrame, index: str = "sample", holm: Mapping[Any, Verdict] | None = None) -> pd.DataFrame:
    """Readable version of a :func:`~sharpmem_lib.stats.paired_gain` frame: percentage points,
    interval (or why there is none), the test and its p-value, the Holm-adjusted p (from
    ``holm``, verdicts keyed by the ``index`` value, or a ``p_holm`` column), wins."""
    if holm is not None:  # only a confirmatory test has a Holm-adjusted p; exploratory and empty ones show "–"
        gains = gains.assign(p_holm=["n/a" if k not in holm else _p(holm[k].p_adjusted)
                                     if getattr(holm[k], "role", "confirmatory") == "confirmatory" else "–"
                                     for k in gains[index]])
    out = pd.DataFrame(index=gains[index])
    out["gain (points)"] = [f"{100 * g:+.1f}" if math.isfinite(g) else "n/a" for g in gains["gain"]]
    why = {"none": "n/a (fewer than 3 seeds)", "exact sign-flip": "n/a (all differences equal)"}
    tests = gains["test"] if "test" in gains else ["t"] * len(gains)
    out["95 % CI"] = [f"[{100 * lo:+.1f}, {100 * hi:+.1f}]" if math.isfinite(lo) else why.get(t, "n/a")
                      for lo, hi, t in zip(gains["ci95_low"], gains["ci95_high"], tests)]
    out["p"] = [f"{_p(p)} ({_TESTS.get(t, t)})" if math.isfinite(p) else "n/a" for p, t in zip(gains["p_value"], tests)]
    if "p_holm" in gains:
        out["p (Holm)"] = [p if isinstance(p, str) else _p(p) for p in gains["p_holm"]]
    if holm is not None:  # the smallest difference each test resolves at the level it is held to
        out["detectable (± points, level)"] = [
            f"±{100 * holm[k].half_width:.1f} at {holm[k].level:.2g}"
            if k in holm and math.isfinite(getattr(holm[k], "half_width", NAN)) else "n/a" for k in gains[index]]
    out["wins / seeds"] = [f"{w} / {n}" for w, n in zip(gains["wins"], gains["seeds"])]
    return out


def family_note(size: int, alpha: float = 0.05) -> str:
    """The sentence each chapter shows about its multiple-comparison correction."""
    tail = " Exploratory tests (labelled so) are reported with unadjusted p-values and decide no claim."
    if size <= 1:
        return (f"This chapter runs {size} confirmatory test{'' if size == 1 else 's'}, so no correction for multiple "
                "comparisons is needed "
                f"(α = {alpha:g}).{tail}")
    return (f"This chapter runs {size} confirmatory tests of the paper's claims; each p-value is Holm-adjusted over "
            f"all {size} (α = {alpha:g}), and a verdict is 'reproduced' or 'opposite' only when its adjusted p is "
            f"below {alpha:g}.{tail}")


def shrink_outcome(few: Verdict, many: Verdict, alpha: float = 0.05) -> Verdict:
    """Chapter 1: does SAM's advantage on the atypical points shrink from the sample with few
    atypical training points (``few``) to the one with many (``many``)? The two samples are
    independent, so Welch's test of few − many (:func:`~sharpmem_lib.stats.difference_test`;
    the paper's sign +1). One test, not Holm-adjusted with the chapter (labelled exploratory)."""
    from sharpmem_lib.stats import difference_test, verdict

    t = difference_test(few, many)
    return verdict(t.estimate, (t.ci_low, t.ci_high), t.p_value, 1, t.n, alpha=alpha, p_value=t.p_value,
                   method=t.method, note="exploratory: not Holm-adjusted", role="exploratory", level=alpha,
                   half_width=(t.ci_high - t.ci_low) / 2 if math.isfinite(t.ci_low) else NAN, se=t.se, df=t.df)


def claim_verdict(few: Verdict, many: Verdict) -> str:
    """Chapter 1 (Fig. 1): SAM beats SGD on rare atypical test points (``few``, paper's sign
    +1), and the advantage shrinks once the atypical cluster is well sampled: decided by
    Welch's test of few − many (:func:`shrink_outcome`; the samples are not paired), never on
    point estimates. When the shrinking is not resolved but SAM still beats SGD significantly
    with many atypical points (unadjusted, as :func:`toy_many_sentence`), that is said: it is
    against Fig. 1(c), not half of the picture."""
    if few.outcome == "insufficient":
        return (f"The paper's picture cannot be tested in this run: {_count(few.n, 'seed')}, at least 3 are needed "
                "(insufficient data).")
    ev = _evidence(few)
    if few.outcome == "opposite":
        return (f"With few atypical training points SAM is significantly worse than SGD on the atypical test points "
                f"({ev}): {AGAINST}'s claim that SAM generalises better on rare atypical points.")
    if few.outcome != "reproduced":
        return ("The paper's picture is not resolved in this run: with few atypical training points, SAM is not "
                f"significantly better or worse than SGD on the atypical test points ({ev}).")
    shrink = shrink_outcome(few, many)
    welch = _evidence(shrink)  # Welch's test compares two samples of seeds: name both sizes, not its df's n
    if welch.endswith(f", {shrink.n} seeds"):
        welch = welch.removesuffix(f"{shrink.n} seeds") + f"{few.n} and {many.n} seeds"
    sev = f"few − many: {welch}"
    head = f"SAM is significantly better than SGD on rare atypical points ({ev})"
    many_gap = math.isfinite(many.p_value) and many.p_value < many.alpha and many.estimate > 0
    if shrink.outcome not in ("reproduced", "opposite", "insufficient") and many_gap:  # Fig. 1(c) draws no gap
        return (f"SAM beats SGD on rare atypical points (reproduced: {ev}), but its advantage does not shrink "
                f"measurably once they are well sampled ({sev}): with many atypical points SAM still beats SGD "
                f"({_points(many.estimate)}, unadjusted p = {_p(many.p_value)}), against the paper's Fig. 1(c) "
                "(exploratory).")
    many_worse = math.isfinite(many.p_value) and many.p_value < many.alpha and many.estimate < 0
    if many_worse and shrink.outcome != "opposite":  # a sign reversal is not a shrink: Fig. 1(c) draws equal accuracy
        return (f"SAM beats SGD on rare atypical points (reproduced: {ev}), but once they are well sampled SAM is "
                f"significantly worse than SGD ({_points(many.estimate)}, unadjusted p = {_p(many.p_value)}; {sev}), "
                "against the paper's Fig. 1(c), which draws equal accuracy there (exploratory).")
    if shrink.outcome == "reproduced":
        return (f"The paper's picture reproduces in this run: {head}, and the advantage shrinks significantly, to "
                f"{_points(many.estimate)}, once they are well sampled ({sev}).")
    if shrink.outcome == "opposite":
        return (f"Half of the paper's picture reproduces in this run: {head}, but the advantage grows significantly "
                f"once they are well sampled ({_points(many.estimate)}; {sev}): {AGAINST}'s claim that it shrinks.")
    why = "too few seeds to test it" if shrink.outcome == "insufficient" else "not resolved"
    return (f"Half of the paper's picture reproduces in this run: {head}; whether the advantage shrinks once they "
            f"are well sampled ({_points(many.estimate)}) is {why} ({sev}).")


def toy_many_sentence(v: Verdict, what: str = "atypical test points") -> str:
    """Chapter 1, panel (c): SAM − SGD with many atypical training points. The paper's
    Fig. 1(c) draws both methods on the Bayes rule, i.e. no gap: a gap whose unadjusted p is
    below α (either sign) runs against that picture. Exploratory (the paper gives no number),
    so it decides no claim."""
    if getattr(v, "role", "") == "empty" or v.outcome == "insufficient":
        return describe_gain(v, "sam", "sgd", what)
    ev = _evidence(v)
    if math.isfinite(v.p_value) and v.p_value < v.alpha:
        side = "beats" if v.estimate > 0 else "is worse than"
        return (f"SAM {side} SGD on {what} even with many atypical training points ({ev}): this runs against the "
                "paper's Fig. 1(c), which draws both methods on the Bayes rule with no gap between them "
                "(exploratory: the paper gives no number, so this decides no claim).")
    return (f"SAM and SGD are not distinguishable on {what} with many atypical training points ({ev}), in line with "
            "the paper's Fig. 1(c), which draws both on the Bayes rule; an interval around zero does not show that "
            "they are equal (exploratory).")


def pattern_outcome(low: Verdict, pattern: Verdict | None) -> str:
    """The outcome of a bucket-pattern claim ("the change concentrates in bucket 1"), from
    tests, never point estimates: ``low`` is the test in bucket 1, ``pattern`` the paired test
    of (change in bucket 1) − (change in the comparison bucket) with the paper's sign (None
    when the ceiling leaves no bucket to compare with).

    - insufficient: either test is insufficient, or there is no comparison bucket;
    - opposite: either test is resolved against the paper;
    - reproduced: both are resolved in the paper's direction;
    - not resolved: otherwise."""
    if pattern is None or "insufficient" in (low.outcome, pattern.outcome):
        return "insufficient"
    if "opposite" in (low.outcome, pattern.outcome):
        return "opposite"
    if low.outcome == pattern.outcome == "reproduced":
        return "reproduced"
    return "not resolved"


def bucket_pattern(gains: pd.DataFrame, v: Verdict, method: str, expect: str = "gain", low: int = 1,
                   at_ceiling=(), pattern: Verdict | None = None, baseline: str = "SGD") -> str:
    """Does ``method``'s change against the baseline concentrate in bucket ``low``, as the paper
    says? ``expect="gain"`` (Fig. 3a: SAM gains most in bucket 1) or ``"loss"`` (Figs. 4a, 5a:
    sharper minima lose most in bucket 1). ``v``: the verdict of the test in bucket ``low``;
    ``pattern``: the verdict of the paired test of (change in ``low``) − (change in the
    comparison bucket), the highest bucket not in ``at_ceiling`` (buckets where every
    method scores 100 %, which cannot show a difference). Decided by :func:`pattern_outcome`;
    ``gains`` (:func:`~sharpmem_lib.stats.paired_gain` by bucket) only supplies the numbers.
    ``baseline``: what the change is measured against (SGD, or 'λ = 0' for Fig. 4a); a loss
    is worded as the accuracy lost from ``baseline`` to ``method`` ('the change in test
    accuracy from λ = 0 to λ = 1.5 in bucket 1'), never as "λ = 1.5's loss"."""
    if expect not in ("gain", "loss"):
        raise ValueError(f"expect={expect!r} is not valid; choose 'gain' or 'loss'")
    g = gains.set_index("bucket")["gain"]
    name = method_label(method)
    if expect == "gain":
        change = amount = f"{name}'s gain"
    else:  # "λ = 1.5's loss" reads badly: say what changed, and from what to what
        change = f"the change in test accuracy from {baseline} to {name}"
        amount = f"the accuracy lost from {baseline} to {name}"
    cap = lambda text: text[:1].upper() + text[1:]  # noqa: E731
    open_buckets = [b for b in g.index if b > low and b not in set(at_ceiling)]
    high = max(open_buckets) if open_buckets else None
    ceiling = ""
    if at_ceiling:
        listed = ", ".join(str(b) for b in sorted(at_ceiling))
        ceiling = (f" Every method scores 100 % in bucket(s) {listed}, so the comparison uses bucket {high}, the "
                   "highest bucket below the ceiling (the ceiling buckets' tests are empty)." if high is not None
                   else f" Every method scores 100 % in every bucket above {low} ({listed}): the ceiling leaves no "
                   "higher bucket to compare with, so that half of the pattern cannot be tested.")
    if v.outcome == "insufficient":
        return (f"{name}: too few seeds to test the paper's pattern in bucket {low} ({_evidence(v)}): "
                "insufficient data." + ceiling)
    outcome = pattern_outcome(v, pattern if high is not None else None)
    diff = "" if pattern is None or high is None else \
        f"bucket {low} − bucket {high}: {_evidence(pattern)}"
    if outcome == "insufficient":
        return (f"{cap(change)} in bucket {low} is {v.outcome} ({_evidence(v)}), but the comparison with a higher "
                "bucket " + (f"has too few seeds ({diff})" if diff else "is not available")
                + ": the pattern is insufficiently tested." + ceiling)
    if outcome == "reproduced":
        return (f"{cap(amount)} is significantly larger in bucket {low} than in bucket {high} ({diff}), and "
                f"significant in bucket {low} ({_evidence(v)}): the paper's pattern." + ceiling)
    if outcome == "opposite":
        if v.outcome == "opposite":
            if expect == "loss":
                return (f"From {baseline} to {name}, test accuracy in bucket {low} rises ({_evidence(v)}): {AGAINST}'s "
                        f"claim that the accuracy lost concentrates in the low-entropy buckets." + ceiling)
            return (f"{name} loses accuracy in bucket {low} ({_evidence(v)}): {AGAINST}'s claim that {name}'s "
                    f"gain concentrates in the low-entropy buckets." + ceiling)
        return (f"{cap(amount)} is significantly smaller in bucket {low} than in bucket {high} ({diff}): "
                f"{AGAINST}'s claim that it concentrates in the low-entropy buckets." + ceiling)
    if v.outcome == "reproduced":
        return (f"{cap(amount)} in bucket {low} is significant ({_evidence(v)}), but whether it is larger than in "
                f"bucket {high} is not resolved ({diff}): only part of the paper's pattern." + ceiling)
    return (f"{cap(change)} in bucket {low} is not resolved ({_evidence(v)}), nor is the difference from bucket "
            f"{high} ({diff}): not resolved at this scale." + ceiling)


TOP1_DEPENDENCE = ("its trend test treats the test points as independent, but their scores come from the same "
                   "subset models and many share a top influencer, so its p is optimistic")
"""The caveat beside chapter 2's top-1 memorization trend (:func:`top1_trend`)."""


def top1_trend(v: Verdict, means) -> str:
    """How the mean memorization score (eq. 1) of each test point's top-1 influencer moves
    from bucket 1 to the highest bucket where it is defined. ``v``: the verdict of a trend
    test of top-1 memorization against bucket over test points (paper: falls, sign −1).
    Test points share the subset models (and often a top influencer), which the test
    ignores: chapter 2 holds it exploratory and the sentence says why (:data:`TOP1_DEPENDENCE`)."""
    defined = [b for b, m in enumerate(means, start=1) if math.isfinite(m)]
    if v.outcome == "insufficient" or not defined or defined[0] != 1 or len(defined) < 2:
        return "cannot be compared across buckets (too few buckets with a measured influence): insufficient data"
    top = defined[-1]
    where = "bucket 5" if top == 5 else f"bucket {top}, the highest bucket where it is defined"
    span = f"from {means[0]:.2f} in bucket 1 to {means[top - 1]:.2f} in {where}"
    ev = _evidence(v, "test points", _rho)
    caveat = f"; {TOP1_DEPENDENCE}" if _exploratory(v) else ""
    if v.outcome == "reproduced" and _exploratory(v):
        return f"falls {span}, in the paper's direction ({ev}){caveat}; exploratory, it confirms no claim"
    if v.outcome == "reproduced":
        return f"falls {span}, as in the paper ({ev})"
    if v.outcome == "opposite":
        return (f"rises {span} ({ev}): {AGAINST}, whose top influencers of the lowest-entropy bucket are its most "
                f"memorized points{caveat}")
    return f"goes {span}, with no resolved trend across buckets ({ev}){caveat}"


def trend(v: Verdict, what: str, against: str, claim: str, pairs: str = "runs") -> str:
    """One sentence on a monotone trend of ``what`` with ``against`` (a sweep), from a
    :func:`~sharpmem_lib.stats.trend_test` verdict. ``claim``: the paper's claim, worded so
    that "this runs against the paper's claim that <claim>" reads."""
    if v.outcome == "insufficient":
        return f"{what}: too few runs to test a trend with {against} ({v.n} {pairs}): insufficient data."
    ev = _evidence(v, pairs, _rho)
    if v.outcome == NO_DIRECTION:
        return f"{what} against {against}: {ev}; the paper gives no direction here, so this is no verdict."
    if cannot_resolve(v):
        return (f"{what} against {against}: {ev}; the smallest p this design can give exceeds the level "
                f"{v.level:.2g} the test is held to, so it cannot resolve at this design (more seeds or settings "
                "are needed): not resolved.")
    moves = "rises" if v.estimate > 0 else "falls"
    if v.outcome == "reproduced" and _exploratory(v):
        return f"{what} {moves} as {against} grows ({ev}), in the paper's direction; {EXPLORATORY_AGREES}."
    if v.outcome == "reproduced":
        return f"{what} {moves} as {against} grows ({ev}), as the paper reports."
    if v.outcome == "opposite":
        return f"{what} {moves} as {against} grows ({ev}): {AGAINST}'s claim that {claim}."
    if _only_before_correction(v):
        opposite = (v.estimate > 0) != (v.expected_sign > 0)
        contrary = f" (the opposite of the paper's claim that {claim})" if opposite else ""
        return (f"{what} {moves} as {against} grows{contrary} before the correction for the chapter's {v.family_size} "
                f"tests, but not after it ({ev}): not resolved.")
    return f"{what} shows no resolved monotone trend with {against} ({ev})."


def cannot_resolve(v: Verdict) -> bool:
    """True when a test's design cannot reach the level it is held to whatever the data: its
    smallest attainable p (:func:`~sharpmem_lib.stats.smallest_attainable_p`) exceeds
    ``v.level`` (α/m for a confirmatory test of a Holm family of m, α for an exploratory one)."""
    p_min, level = getattr(v, "p_min", NAN), getattr(v, "level", NAN)
    return v.outcome != "insufficient" and math.isfinite(p_min) and math.isfinite(level) and p_min > level


def contrast(v: Verdict, what: str, knob: str, low: float, high: float, claim: str, value=_points) -> str:
    """One sentence on a sweep with only two settings: ``what`` at ``knob`` = ``high`` minus at
    ``knob`` = ``low``, paired by seed (:func:`sharpmem_lib.mitigation.sweep_test`). Two
    points show a difference, not a trend, so the sentence opens with the two settings,
    'λ = 1.5 vs λ = 0: ...'. ``claim``: the paper's claim, as for :func:`trend`."""
    head = f"{knob} = {high:g} vs {knob} = {low:g}"
    ev = _evidence(v, value=value)
    lower = what[:1].lower() + what[1:]
    if v.outcome == "insufficient":
        return f"{head}: {lower}: {ev}; too few seeds for a test (at least 3 are needed): insufficient data."
    if v.outcome == NO_DIRECTION:
        return f"{head}: {lower}: {ev}; the paper gives no direction here, so this is no verdict."
    moves = f"is {'higher' if v.estimate > 0 else 'lower'} at {knob} = {high:g}"
    if v.outcome == "reproduced":
        tail = f"; {EXPLORATORY_AGREES}" if _exploratory(v) else ""
        return f"{head}: {lower} {moves} ({ev}), the direction the paper reports ({claim}){tail}."
    if v.outcome == "opposite":
        return f"{head}: {lower} {moves} ({ev}): {AGAINST}'s claim that {claim}."
    if _only_before_correction(v):
        contrary = f" (the opposite of the paper's claim that {claim})" if (v.estimate > 0) != (v.expected_sign > 0) \
            else ""
        return (f"{head}: {lower} {moves}{contrary} before the correction for the chapter's {v.family_size} tests, "
                f"but not after it ({ev}): not resolved.")
    return f"{head}: {lower} is not distinguishable between the two settings ({ev}): not resolved."


def sweep_sentence(v: Verdict, what: str, knob: str, claim: str, grid, value=_points) -> str:
    """:func:`contrast` when the sweep has exactly two settings (``grid``), else :func:`trend`."""
    grid = sorted(grid)
    if len(grid) == 2 and not _rank_trend(v):
        return contrast(v, what, knob, grid[0], grid[1], claim, value)
    return trend(v, what, knob, claim)


def grid_note(knob: str, grid, figure: str) -> str:
    """Prose under a sweep's figure: with two settings, that the line joins two points and
    the tests compare them (no trend can be read from two points)."""
    grid = sorted(grid)
    if len(grid) < 2:
        only = f"one setting ({knob} = {grid[0]:g})" if grid else "no setting"
        return f"Only {only} of this sweep trained, so its tests have nothing to compare."
    if len(grid) == 2:
        return (f"This sweep has two settings, {knob} = {grid[0]:g} and {knob} = {grid[1]:g}: the lines of Figs. "
                f"{figure} join two points, and the tests compare the two settings paired by seed; they show a "
                "difference, not a trend.")
    return f"Its tests compare {len(grid)} settings ({', '.join(f'{x:g}' for x in grid)}) as rank trends."


def divergence_sentence(diverged, collapsed, grid, tested=None, runs: int | None = None,
                        total: int | None = None) -> str:
    """Chapter 4's ξ sweep: how many settings the grid has and how far it goes (a grid that
    stops early can say nothing about larger ξ), which ξ diverged (a run's loss turned
    non-finite or rose, or its training accuracy stayed at chance: a training failure) and
    which collapsed (runs that trained, but whose mean test accuracy is below twice chance),
    each defined where it is said; with ``tested`` (the settings the tests compare) and
    ``runs`` of ``total`` runs, what the tests leave out."""
    finite = lambda xs: [x for x in xs if math.isfinite(x)]  # noqa: E731  a NaN setting names no ξ
    diverged, collapsed, grid = finite(diverged), finite(collapsed), finite(grid)
    tested = None if tested is None else finite(tested)
    values = lambda xs: ", ".join(f"{x:g}" for x in xs)  # noqa: E731
    top = (f"the grid has {_count(len(grid), 'setting')}, up to ξ = {max(grid):g}" if len(grid)
           else "the grid is empty")
    said = (f"training diverged at ξ = {values(diverged)} (a run diverges when its loss turns non-finite or rises, "
            "or its training accuracy stays at chance)" if len(diverged) else "no run diverged")
    said += (f"; of the settings that trained, test accuracy collapsed to near chance (a mean below twice chance) at "
             f"ξ = {values(collapsed)}" if len(collapsed) else
             "; no setting collapsed to near-chance test accuracy (a mean below twice chance)")
    out = f"{said[0].upper()}{said[1:]} ({top})."
    if tested is not None and not len(tested) and (len(diverged) or len(collapsed)):
        out += " No setting is left to test: every one diverged or collapsed, so the sweep's tests compare nothing."
    elif tested is not None and (len(diverged) or len(collapsed)):
        out += (f" Diverged runs and collapsed settings are left out of the tests, which compare "
                f"{_count(len(tested), 'setting')} (ξ = {values(sorted(tested))})"
                + (f": {runs} of {total} runs." if runs and total else "."))
    return out


def largest_drop_sentence(sharpreg: Mapping[float, float] | None, control: Mapping[float, float] | None,
                          threshold: float = 0.05) -> str:
    """Chapter 4's ξ sweep: the setting where SharpReg's test accuracy falls furthest below its
    learning-rate control's (means, :func:`sharpmem_lib.mitigation.control_table`'s), when the
    drop exceeds ``threshold`` (5 points): such a setting can drive the test-accuracy trend.
    Empty otherwise."""
    common = [x for x in (sharpreg or {}) if x in (control or {})  # a non-finite mean has no drop to rank
              and math.isfinite(sharpreg[x]) and math.isfinite(control[x])]
    if not common:
        return ""
    x = max(common, key=lambda k: control[k] - sharpreg[k])
    drop = control[x] - sharpreg[x]
    if not drop > threshold:
        return ""
    return (f"At ξ = {x:g} SharpReg's test accuracy is {100 * drop:.1f} points below its learning-rate control's "
            f"({pct(sharpreg[x])} vs {pct(control[x])}), the largest drop of the sweep: a drop of this size can drive "
            "the test-accuracy trend on its own (means, not tested).")


def _names(keys) -> str:
    return "; ".join(keys)


def table2_verdict(verdicts: Mapping[str, Verdict]) -> str:
    """Chapter 3, Table 2: the paired tests of each algorithm against SGD whose direction the
    paper reports consistently; ``verdicts`` maps a readable label ('SAM single-query attack
    on digits') to its verdict."""
    by = {o: [k for k, v in verdicts.items() if v.outcome == o] for o in ("reproduced", "opposite", "not resolved",
                                                                            "insufficient")}
    n = len(verdicts)
    if n == 0:
        return "No test of the paper's Table 2 directions could be run."
    if len(by["insufficient"]) == n:
        return (f"None of the {n} comparisons with SGD can be tested: too few training seeds (at least 3 are needed), "
                "insufficient data.")
    parts = [f"Of the {n} paired comparisons with SGD whose direction the paper reports consistently "
             "(Holm-adjusted p < 0.05 counts as resolved)"]
    one = lambda k, singular, plural: f"{len(by[k])} {singular if len(by[k]) == 1 else plural}"  # noqa: E731
    parts.append(one("reproduced", "reproduces", "reproduce") + " the paper's direction"
                 + (f" ({_names(by['reproduced'])})" if by["reproduced"] else ""))
    if by["opposite"]:
        parts.append(one("opposite", "goes", "go") + f" the opposite way ({_names(by['opposite'])}): {AGAINST}")
    else:
        parts.append("none goes significantly against it")
    parts.append(one("not resolved", "is", "are") + " not resolved")
    if by["insufficient"]:
        parts.append(one("insufficient", "has", "have") + " too few seeds")
    return parts[0] + ": " + "; ".join(parts[1:]) + "."


def _lira_gain(v: Verdict, method: str) -> str:
    """One sentence on LiRA's paired TPR difference ``method`` − SGD, in terms of exposure
    (lower TPR = less exposure) and the direction the paper's Table 1 implies."""
    m, what = method_label(method), "the most memorized group"
    ev = _evidence(v, "targets")
    if v.outcome == "insufficient":
        return (f"{m} − SGD in LiRA's TPR on {what}: {ev}; too few targets for a test (at least 3 are needed): "
                "insufficient data.")
    lower = v.estimate < 0
    moves = f"LiRA's TPR on {what} is {'lower' if lower else 'higher'} under {m} than under SGD, " \
            f"{'less' if lower else 'more'} exposure"
    implied = "the direction the paper's Table 1 implies"
    if v.outcome == "reproduced":
        return f"{moves}, {implied} ({ev})" + (f"; {EXPLORATORY_AGREES}." if _exploratory(v) else ".")
    if v.outcome == "opposite":
        return f"{moves} ({ev}): {AGAINST}'s Table 1, which implies {'more' if lower else 'less'} exposure."
    if _only_before_correction(v):
        contrary = f" (against {implied})" if lower != (v.expected_sign < 0) else ""
        return (f"{moves}{contrary} before the correction for the chapter's {v.family_size} tests, but not after it "
                f"({ev}): not resolved.")
    return f"LiRA's TPR on {what} is not distinguishable under {m} and SGD at this scale ({ev}): not resolved."


LIRA_DEPENDENCE = ("the paired tests treat the targets as independent, but each target's shadow models are the "
                   "other models of the same pool, so the targets share models and these p-values and intervals are "
                   "optimistic (exploratory)")
"""The caveat beside every LiRA paired-by-target number: no cheap test respects the shared shadows."""


def lira_fit_sentence(accuracy: pd.DataFrame | None, methods=("sam", "sharpreg")) -> str:
    """LiRA, beside its verdict: whether each method's LiRA models fit their training subsets
    less or more than SGD's (mean train accuracy over targets, from
    :attr:`sharpmem_lib.privacy.LiraStudy.accuracy`), which alone predicts less or more
    exposure whatever memorization does. Empty without SGD's accuracies."""
    if accuracy is None or not len(accuracy) or "sgd" not in set(accuracy["algorithm"]):
        return ""
    train = accuracy.groupby("algorithm", sort=False)["train_acc"].mean()
    parts = []
    for m in methods:
        if m not in train.index or not (math.isfinite(train[m]) and math.isfinite(train["sgd"])):
            continue  # no accuracy to set against SGD's: no claim with 'n/a' as its evidence
        if pct(train[m]) == pct(train["sgd"]):  # equal as printed: neither 'more' nor 'less'
            continue
        less = train[m] < train["sgd"]
        parts.append(f"{method_label(m)}'s LiRA models fit their training points {'less' if less else 'more'} than "
                     f"SGD's ({pct(train[m])} vs {pct(train['sgd'])} train accuracy), which alone predicts "
                     f"{'less' if less else 'more'} exposure")
    return ("; ".join(parts) + ".") if parts else ""


def lira_memorization_sentence(models: int, sizes: Mapping[int, int] | None) -> str:
    """LiRA, beside its verdict: memorization is estimated from only ``models`` models, and the
    share of training points with no measured score (group 0 of ``sizes``)."""
    total = sum((sizes or {}).values())
    head = f"Memorization here is estimated from only {_count(models, 'model')}"
    if not total:
        return head + "."
    u = (sizes or {}).get(0, 0)
    if not u:  # not '0 % of the training points (0 of 5) have no measured score'
        return head + f", and every one of the {total:,} training points has a measured score."
    return head + (f", and {100 * u / total:.0f} % of the training points ({u:,} of {total:,}) have no measured score, "
                   "so they are in no group.")


def lira_verdict(sam: Verdict, sharpreg: Verdict, memorization_models: int | None = None,
                 sizes: Mapping[int, int] | None = None, accuracy: pd.DataFrame | None = None) -> str:
    """Chapter 3, LiRA: paired by target, on the most memorized group of the training points
    with a measured memorization score. The paper runs no LiRA; its Table 1 implies that SAM
    exposes more than SGD (+) and SharpReg less (−). Ends with :data:`LIRA_DEPENDENCE`: the
    targets share shadow models, which the paired tests ignore; with ``memorization_models``
    (and the groups' ``sizes``) and the models' ``accuracy``, also how many models estimate
    memorization, how many points it leaves unmeasured (:func:`lira_memorization_sentence`) and
    how well each method's models fit (:func:`lira_fit_sentence`)."""
    both = sam.outcome == sharpreg.outcome == "reproduced"
    lead = "Both directions the paper's Table 1 implies appear with a calibrated attack. " if both else ""
    extra = [lira_memorization_sentence(memorization_models, sizes)] if memorization_models else []
    extra += [x for x in [lira_fit_sentence(accuracy)] if x]
    return (lead + " ".join(_lira_gain(v, name) for v, name in ((sam, "sam"), (sharpreg, "sharpreg")))
            + "".join(f" {x}" for x in extra) + f" A caveat: {LIRA_DEPENDENCE}. The paper does not run LiRA.")


PAPER_DEFENSES = ("SharpReg", "AdvReg", "MemGuard", "SELENA", "DP-SGD")
"""The methods the paper treats as defenses designed to protect: its SharpReg and Fig. 5c's
AdvReg, MemGuard, SELENA (§5), and differential privacy (§2: "explicitly designed methods").
Label smoothing and early stopping are the book's baselines (the paper lists them only as
regularizers "studied as defenses"), so a result against them is not against the paper."""


def short_of_holm(v: Verdict, method: str, what: str = "attack accuracy") -> str:
    """For a confirmatory test that is not resolved although its 95 % interval excludes 0:
    'by the unadjusted interval SharpReg raises attack accuracy, the opposite of the paper's
    direction, but short of its Holm level' (never 'not distinguishable'). Empty otherwise."""
    sign = _ci_sign(v)
    if v.outcome != "not resolved" or not sign:
        return ""
    moves = "raises" if sign > 0 else "lowers"
    if not v.expected_sign:  # the paper gives no direction here: name none
        return f"by the unadjusted interval {method} {moves} {what}, but short of its Holm level"
    way = "the paper's direction" if sign == v.expected_sign else "the opposite of the paper's direction"
    return f"by the unadjusted interval {method} {moves} {what}, {way}, but short of its Holm level"


def defense_verdict(verdicts: Mapping[str, Verdict], what: str = "the honest best single-query attack") -> str:
    """Chapter 4, Fig. 5c: each defense against SGD, paired by seed, in attack accuracy (the
    paper's expectation: lower, sign −1). The confirmatory tests (in the chapter's Holm family:
    SharpReg) come first, each with its Holm-adjusted p; then the exploratory ones, with their
    unadjusted p and labelled so: they are "lower" or "higher" at an unadjusted p < α, never
    "significant", and no claim rests on them."""
    by = {o: [k for k, v in verdicts.items() if v.outcome == o] for o in ("reproduced", "opposite", "not resolved",
                                                                            "insufficient")}
    if not verdicts or len(by["insufficient"]) == len(verdicts):
        return "Too few seeds to compare the defenses with SGD (at least 3 per method are needed): insufficient data."

    def premise(keys: list[str]) -> str:
        papers = [k for k in keys if k.startswith(PAPER_DEFENSES)]  # not the book's own baselines
        if not papers:
            return ""
        return f"for {_names(papers)}, {AGAINST}'s premise that {'it protects' if len(papers) == 1 else 'they protect'}"

    out = [f"Against SGD, paired by seed, on {what}."]
    confirmatory = [k for k, v in verdicts.items() if v.role == "confirmatory"]
    for k in confirmatory:
        v = verdicts[k]
        ev = f"{_ci_text(v)}, Holm-adjusted p = {_p(v.p_adjusted)} over {v.family_size} tests, n = {v.n}"
        if v.outcome == "reproduced":
            out.append(f"Confirmatory: {k} lowers it significantly ({ev}), as the paper reports.")
        elif v.outcome == "opposite":
            why = f": {AGAINST}'s premise that {k} protects." if k.startswith(PAPER_DEFENSES) else "."
            out.append(f"Confirmatory: {k} raises it significantly ({ev}){why}")
        elif v.outcome == "insufficient":
            out.append(f"Confirmatory: {k} has too few seeds for a test (n = {v.n}): insufficient data.")
        elif short_of_holm(v, k):
            out.append(f"Confirmatory: {short_of_holm(v, k, 'it')} ({ev}): not resolved.")
        else:
            out.append(f"Confirmatory: {k} is not distinguishable from SGD ({ev}): not resolved.")
    rest = {k: v for k, v in verdicts.items() if k not in confirmatory}
    if rest:
        item = lambda k: f"{k}: {_ci_text(rest[k])}, unadjusted p = {_p(rest[k].p_value)}"  # noqa: E731
        keys = {o: [k for k in by[o] if k in rest] for o in by}
        parts = []
        if keys["reproduced"]:
            parts.append("lower than SGD at unadjusted p < 0.05: " + "; ".join(item(k) for k in keys["reproduced"]))
        if keys["opposite"]:
            why = premise(keys["opposite"])
            parts.append("higher than SGD at unadjusted p < 0.05: " + "; ".join(item(k) for k in keys["opposite"])
                         + (f" ({why}, exploratory)" if why else ""))
        if keys["not resolved"]:
            parts.append("not distinguishable from SGD: " + _names(keys["not resolved"]))
        if keys["insufficient"]:
            parts.append("too few seeds: " + _names(keys["insufficient"]))
        out.append("Exploratory (unadjusted p, so no claim rests on them): " + "; ".join(parts) + ".")
    return " ".join(out)


def defense_test_sentence(v: Verdict, method: str = "SharpReg", what: str = "the honest best single-query attack",
                          weights: str = "last-epoch weights") -> str:
    """The results page, Claim 3: chapter 4's test of ``method`` − SGD in attack accuracy
    (Fig. 5c; the paper: lower, sign −1), with the weights it uses and n, its interval and
    Holm-adjusted p, and its status in the paper's terms."""
    head = f"{method} − SGD in {what} ({weights}, n = {v.n}"
    if v.outcome == "insufficient":
        return head + "): too few seeds for a test (at least 3 are needed): insufficient data."
    role = ("chapter 4's confirmatory test" if v.role == "confirmatory" else "exploratory, not Holm-adjusted")
    p = (f"Holm-adjusted p = {_p(v.p_adjusted)} over {v.family_size} tests" if v.role == "confirmatory"
         else f"unadjusted p = {_p(v.p_value)}")
    head += f", {role}): {_ci_text(v)}, {p}"
    if v.outcome == "opposite":
        return head + f": opposite. {method} raises attack accuracy; {AGAINST}, which reports that {method} lowers it."
    if v.outcome == "reproduced":
        tail = f"; {EXPLORATORY_AGREES}" if _exploratory(v) else ", as the paper reports"
        return head + f": {method} lowers attack accuracy{tail}."
    if short_of_holm(v, method):
        return head + f": {short_of_holm(v, method)}: not resolved."
    return head + ": not resolved."


def control_conclusion(control: Verdict, method_vs_sgd: Verdict, control_name: str, method: str = "sharpreg",
                       what: str = "the honest best single-query attack") -> str:
    """Chapter 4 and the results page: what the learning-rate control says about
    ``method``'s difference from SGD in ``what``, in short sentences. ``control``: ``method``
    − the control run (SGD at lr × (1 − ξ)), exploratory; ``method_vs_sgd``: ``method`` − SGD
    at the full learning rate, same weights. When the method differs from SGD but not from its
    control, and the control difference is less than half the difference from SGD, the point
    estimate puts most of that difference on the smaller step; the control interval's bound in
    the direction of the SGD difference says how many of those points the sharpness term may
    still account for (absence of evidence is not evidence of absence). Labelled exploratory,
    with n."""
    m = method_label(method)
    if "insufficient" in (control.outcome, method_vs_sgd.outcome):
        return f"Too few seeds to say what the smaller step does to {m}'s {what} (exploratory)."
    tag = f"(exploratory, {_count(control.n, 'seed')})"
    if not math.isfinite(control.estimate):  # no pair of the control left: nothing to draw from it
        return (f"On {what}, the {control_name} control has no estimate (no pair of runs to compare), so it "
                f"says nothing about {m}'s difference from SGD {tag}.")
    versus_sgd = f"{m} − SGD is {_ci_text(method_vs_sgd)}"
    versus_control = f"{m} − {control_name} is {_ci_text(control)}"
    if method_vs_sgd.outcome not in ("reproduced", "opposite"):
        short = short_of_holm(method_vs_sgd, m, "it")
        if short:
            return (f"On {what}, {versus_sgd}: {short}, so its difference from SGD is not established and the "
                    f"control ({versus_control}) is not asked to explain it {tag}.")
        return (f"On {what}, {versus_sgd}: {m} is not resolved from SGD, so the control has no difference to "
                f"explain {tag}.")
    head = f"On {what}, {versus_sgd}, and {versus_control}."
    if math.isfinite(control.p_value) and control.p_value < control.alpha:
        return (head + f" {m} also differs from {control_name}, so the smaller step alone does not account for its "
                f"difference from SGD {tag}.")
    total = 100 * abs(method_vs_sgd.estimate)
    bound = 100 * (control.ci_high if method_vs_sgd.estimate > 0 else -control.ci_low)  # the sharpness term's most
    allows = ("the interval allows all of it to come from the sharpness term" if not math.isfinite(bound)
              or bound >= total else f"the interval allows up to {max(bound, 0):.1f} of those {total:.1f} points "
              "to come from the sharpness term")
    if abs(control.estimate) < abs(method_vs_sgd.estimate) / 2:
        return (head + f" {m} − {control_name} is not resolved; its point estimate is less than half {m}'s "
                f"difference from SGD, so the point estimate puts most of that difference on the smaller step, but "
                f"{allows} {tag}.")
    return (head + f" {m} − {control_name} is not resolved, but not small against {m}'s difference from SGD: "
            f"how much of it the smaller step does is not resolved; {allows} {tag}.")


def _rank_trend(v: Verdict) -> bool:
    """Whether ``v`` comes from a rank trend test (Spearman's ρ with a permutation or t p:
    :func:`~sharpmem_lib.stats.trend_test`), not from a paired difference."""
    return "permutation" in v.method or v.method.startswith("asymptotic")


def _sharpness_resolved(per_loss: Verdict) -> bool:
    """Whether a λ contrast in λmax per unit training loss is resolved (p < α, exploratory)."""
    return math.isfinite(per_loss.p_value) and per_loss.p_value < per_loss.alpha and per_loss.outcome != "insufficient"


def sharpened(per_loss: Verdict) -> bool:
    """Whether the larger λ made the minimum measurably sharper per unit training loss (the
    rule :func:`sharpness_caveat` uses): resolved and positive."""
    return _sharpness_resolved(per_loss) and per_loss.estimate > 0


def sharpness_caveat(lmax: Verdict, per_loss: Verdict, knob: str, attack: Verdict | None = None, *,
                     symbol: str = "λ", seeds: int | None = None) -> str:
    """Chapter 4 and the results page, beside the λ test of attack accuracy: the claim is
    about *sharper* minima, so the test bears on it only when the larger λ (``knob``, e.g.
    'λ = 1.5') made the minimum measurably sharper, judged per unit training loss (the
    book's rule for calling a minimum sharper). ``lmax``, ``per_loss``: the same λ contrast
    in the top Hessian eigenvalue and in it per unit training loss (expected sign +).
    ``attack``: the λ test of attack accuracy (Fig. 4b, expected sign −); when it is resolved
    (reproduced or opposite) and the minimum is not measurably sharper, the sentence says
    which way the attack moved and that this says nothing about sharper minima.

    The numbers in parentheses follow the test (:func:`sharpmem_lib.mitigation.sweep_test`):
    a sweep of two settings gives paired differences ('paired by seed: ... +0.59 [...];
    exploratory, 5 seeds'); a longer one rank correlations with ``symbol`` within seeds,
    each with its permutation p, over n runs ('... 48 runs over 8 seeds' when ``seeds``,
    the number of training seeds, is given)."""
    if _rank_trend(per_loss) or _rank_trend(lmax):
        rho = lambda v: "ρ = n/a" if not math.isfinite(v.estimate) else _rho(v.estimate)  # noqa: E731
        same = lmax.method == per_loss.method
        test = lambda v: _TESTS.get(v.method, v.method or "test").removesuffix(" test")  # noqa: E731
        runs = _count(per_loss.n, "run") + (f" over {_count(seeds, 'seed')}" if seeds else "")
        numbers = (f"rank correlation with {symbol} within seeds: top Hessian eigenvalue {rho(lmax)} "
                   f"({test(lmax)} p = {_p(lmax.p_value)}), per unit training loss {rho(per_loss)} "
                   f"({'' if same else test(per_loss) + ' '}p = {_p(per_loss.p_value)}); exploratory, {runs}")
    else:
        raw = lambda v: (f"{_signed(v.estimate)} [{_signed(v.ci_low)}, {_signed(v.ci_high)}]"  # noqa: E731
                         if math.isfinite(v.ci_low) and math.isfinite(v.ci_high)
                         else f"{_signed(v.estimate)} (no interval)")
        numbers = (f"paired by seed: top Hessian eigenvalue {raw(lmax)}, per unit training loss {raw(per_loss)}; "
                   f"exploratory, {_count(per_loss.n, 'seed')}").replace("-", "−")
        if per_loss.outcome == "insufficient" or not math.isfinite(per_loss.estimate):
            return (f"The sharpness at {knob} could not be measured here (too few seeds: "
                    f"{_count(per_loss.n, 'seed')}), so this test cannot bear on the claim (exploratory).")
    resolved = _sharpness_resolved(per_loss)
    if resolved and per_loss.estimate > 0:
        return f"{knob} made the minimum measurably sharper here, so this test bears on the claim ({numbers})."
    shape = "made the minimum flatter, not sharper," if resolved else "did not make the minimum measurably sharper"
    if attack is not None and attack.outcome in ("reproduced", "opposite"):
        moved = ("raised attack accuracy, against Fig. 4b" if attack.estimate > 0
                 else "lowered attack accuracy, as in Fig. 4b")
        return (f"{knob} {moved}, but {shape} here ({numbers}), so this says nothing about whether sharper minima "
                "lower attack accuracy.")
    return f"{knob} {shape} here, so this test cannot bear on the claim ({numbers})."


_MODELS = {"mlp": "MLPs", "cnn": "small CNNs", "wrn16_8": "WideResNet-16-8s", "fc": "fully connected networks"}


def _chapter_uses(chapter: str, p: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """What a chapter trains, as (role, dataset, recipe), from its parameter values ``p``
    (recipe '' for a role without models of its own, such as published estimates)."""
    published = bool(p.get("influence_file"))
    if chapter == "00_data_and_models":
        return [("demonstration targets", p["dataset"], p["recipe"])]
    if chapter == "01_toy_example":
        return [("targets", "toy2d", p["recipe"])]
    if chapter == "02_memorization_buckets":
        estimates = ("published influence estimates", p["dataset"], "") if published else \
            ("subset models", p["dataset"], p["subset_recipe"])
        return [estimates, ("targets", p["dataset"], p["recipe"]),
                ("ground-truth check", p["ground_truth_dataset"], p["ground_truth_recipe"])]
    if chapter == "03_privacy_tables":
        out = [("targets", d, r) for d, r in p["recipes"].items()]
        if p.get("lira_dataset"):
            out.append(("LiRA's models", p["lira_dataset"], p.get("lira_recipe") or p["recipes"].get(p["lira_dataset"],
                                                                                                       "")))
        if p.get("boundary_dataset"):
            out.append(("boundary-distance attacks", p["boundary_dataset"], ""))
        return out
    if chapter == "04_mitigation":
        estimates = ("published influence estimates", p["dataset"], "") if published else \
            ("bucket subset models", p["dataset"], p["bucket_recipe"])
        return [("targets, sweeps and defenses", p["dataset"], p["recipe"]), estimates]
    raise ValueError(f"chapter={chapter!r} is not valid; choose from 00_data_and_models, 01_toy_example, "
                     "02_memorization_buckets, 03_privacy_tables, 04_mitigation")


def build_setup(run: Mapping[str, Any] | None = None) -> str:
    """The results page's note, one chapter at a time: which profile this chapter ran with
    (:func:`sharpmem_lib.provenance.parameter_source`, as its provenance table's first row)
    and what it trained on what, from the parameter values its parameter check saw (``run``:
    :func:`sharpmem_lib.parameters.notebook_run`, the default). E.g. 'the laptop profile:
    small CNNs on the 7,000-image Fashion-MNIST sample (targets); MLPs on scikit-learn's 8×8
    digits (targets); ...'."""
    from sharpmem_lib.data import display_name
    from sharpmem_lib.parameters import notebook_run
    from sharpmem_lib.provenance import parameter_source
    from sharpmem_lib.recipes import get_recipe

    run = notebook_run() if run is None else run
    if not run:
        return "not recorded (the chapter's parameter check did not run)"
    p = run["params"]
    source = parameter_source(str(p.get("profile", "default")), dict(run))
    parts = []
    for role, dataset, recipe in _chapter_uses(run["chapter"], p):
        if not recipe:
            parts.append(f"{role} on {display_name(dataset)}")
            continue
        model = get_recipe(recipe).model
        parts.append(f"{_MODELS.get(model, f'{model} models')} on {display_name(dataset)} ({role})")
    profile = f"the {source} profile" if source == p.get("profile") else f"profile {source}"
    return f"{profile}: {'; '.join(parts)}"


def sharpness_verdict(v: Verdict, method: str, measure: str = "top Hessian eigenvalue") -> str:
    """Is ``method``'s minimum flatter (paper's premise for SAM: sign −1) or sharper
    (SharpReg: +1) than SGD's, paired by seed?"""
    name = method_label(method)
    value = _signed
    if v.outcome == "insufficient":
        return f"{name} − SGD in {measure}: {_evidence(v, value=value)}; insufficient data."
    word = "higher" if v.estimate > 0 else "lower"
    if v.outcome == "reproduced" and _exploratory(v):  # chapter 4's sharpness tests: the paper never measures it
        return (f"{name}'s {measure} is {word} than SGD's ({_evidence(v, value=value)}), the direction the paper "
                f"assumes; {EXPLORATORY_AGREES}.")
    if v.outcome == "reproduced":
        return f"{name}'s {measure} is {word} than SGD's ({_evidence(v, value=value)}), as the paper assumes."
    if v.outcome == "opposite":
        expected = "higher" if v.expected_sign > 0 else "lower"
        return (f"{name}'s {measure} is {word} than SGD's ({_evidence(v, value=value)}): {AGAINST}'s premise that it "
                f"is {expected}.")
    return f"{name}'s {measure} is not distinguishable from SGD's ({_evidence(v, value=value)}): not resolved."


def sharpness_word(v: Verdict) -> str:
    """The comparison for '… ({word})', e.g. 'significantly lower than SGD (exploratory,
    unadjusted p = 0.0062)': what a sharpness verdict allows one to say, with the p it rests on
    (unadjusted and labelled so for an exploratory test)."""
    if v.outcome == "insufficient":
        return "not testably lower or higher than SGD (too few seeds)"
    if v.outcome == "not resolved":
        return "neither significantly lower nor higher than SGD"
    p = (f"exploratory, unadjusted p = {_p(v.p_value)}" if _exploratory(v)
         else f"Holm-adjusted p = {_p(v.p_adjusted)}")
    return "significantly " + ("higher" if v.estimate > 0 else "lower") + f" than SGD ({p})"


def control_verdict(verdicts: Mapping[str, Verdict], method: str, control: str, raw=(), explain: str = "") -> str:
    """``method`` against a control run that differs from it only in what the control
    isolates (SharpReg against SGD at lr × (1 − ξ): the part of ξ that is a learning-rate
    rescale), paired by seed, in short sentences: what was compared, then one sentence per
    measure with its estimate, 95 % interval and p, and what it means. ``verdicts`` maps a
    readable measure ('the honest best single-query attack') to its verdict, whose expected
    sign is the paper's mechanism's (lower attack, sharper minimum); measures in ``raw`` are
    shown as they are, the others in percentage points. When no measure differs
    significantly, a last sentence says that ``method`` is not distinguishable from the
    control at this scale. ``explain``: what the control is, in words, said once in the
    first sentence."""
    if not verdicts:
        raise ValueError(f"verdicts is empty; give at least one measure of {method} against {control}")
    name = method_label(method)
    n = max(v.n for v in verdicts.values())
    head = (f"{name} against {control}, paired by seed{f' ({explain})' if explain else ''}. These tests are "
            f"exploratory (p not Holm-adjusted), {n} seeds.")
    if all(v.outcome == "insufficient" for v in verdicts.values()):
        return f"{name} against {control}, paired by seed: too few seeds for a test (at least 3 are needed): " \
               "insufficient data."

    def short(k: str) -> str:
        v = verdicts[k]
        value = _signed if k in set(raw) else _points
        if not (math.isfinite(v.ci_low) and math.isfinite(v.ci_high)):
            return f"{value(v.estimate)} (no interval, p = {_p(v.p_value)})"
        lo, hi = value(v.ci_low).split()[0], value(v.ci_high).split()[0]
        return f"{value(v.estimate)} (95 % CI [{lo}, {hi}], p = {_p(v.p_value)})"

    out = [head]
    for k, v in verdicts.items():
        lead = f"On {k}, {name} − control is"
        if v.outcome == "insufficient":
            out.append(f"On {k}: too few seeds for a test.")
        elif v.outcome == NO_DIRECTION:
            if v.p_adjusted < v.alpha:  # only a significant difference is called one
                word = "higher" if v.estimate > 0 else "lower"
                out.append(f"{lead} {short(k)}: {word} than the control; the paper gives no direction here, so "
                           "this is reported, not a verdict.")
            else:
                out.append(f"{lead} {short(k)}: no significant difference (the paper gives no direction here).")
        elif v.outcome == "reproduced":
            out.append(f"{lead} {short(k)}: a difference in the direction of the paper's mechanism.")
        elif v.outcome == "opposite":
            out.append(f"{lead} {short(k)}: a difference the other way, {AGAINST}'s account that {name} works "
                       "through sharpness rather than a smaller step.")
        else:
            out.append(f"{lead} {short(k)}: not distinguishable from the control.")
    if not any(v.outcome in ("reproduced", "opposite") for v in verdicts.values()):
        out.append(f"At this scale {name}'s effect cannot be told apart from the learning-rate rescale that its "
                   "coefficients imply.")
    return " ".join(out)


_MEASURES = {"test_acc": "test accuracy", "single_query": "honest best single-query attack",
             "multi_query": "honest label-only attack", "lambda_max": "top Hessian eigenvalue",
             "lambda_max/loss": "top Hessian eigenvalue per unit training loss"}
"""Chapter 4's measures as its test table names them (:func:`mitigation_table`)."""


def mitigation_label(key, grids: Mapping[str, Any] | None = None) -> str:
    """A readable label for one of chapter 4's tests (a key of
    :func:`sharpmem_lib.mitigation.chapter_tests`), as chapter 3's table names its tests:
    ``("lam", 1)`` -> 'λ = 1.5 − λ = 0: test accuracy in bucket 1', ``("lam trend",
    "single_query")`` -> 'λ = 1.5 vs λ = 0: honest best single-query attack' with two settings
    in ``grids`` (else 'trend with λ: …'), ``("lr control", "test_acc")`` -> 'SharpReg − SGD
    at lr × (1 − ξ): test accuracy'. Keys it does not know are shown as 'group: item'."""
    group, item = str(key[0]), key[1]
    symbol = {"lam": "λ", "xi": "ξ"}
    grid = lambda knob: sorted((grids or {}).get(knob, ()))  # noqa: E731
    measure = _MEASURES.get(item, str(item))
    if group in ("lam", "sharpreg"):  # Figs. 4a, 5a: per bucket, and bucket 1 against the highest open bucket
        g = grid("lam")
        who = ("SharpReg − SGD" if group == "sharpreg" else
               f"λ = {g[-1]:g} − λ = 0" if g else "largest λ − λ = 0")
        where = ("bucket 1 − highest open bucket" if item == "pattern" else f"bucket {item}")
        return f"{who}: test accuracy in {where}"
    if group.endswith(" trend") and group.removesuffix(" trend") in symbol:
        knob = group.removesuffix(" trend")
        g, sym = grid(knob), symbol[knob]
        return f"{sym} = {g[1]:g} vs {sym} = {g[0]:g}: {measure}" if len(g) == 2 else f"trend with {sym}: {measure}"
    if group in ("sharpness", "sharpness/loss"):
        what = _MEASURES["lambda_max" if group == "sharpness" else "lambda_max/loss"]
        return f"{method_label(item)} − SGD: {what}"
    if group == "defense":
        return f"{item} − SGD: {_MEASURES['single_query']}"
    if group == "lr control":
        return f"SharpReg − SGD at lr × (1 − ξ): {measure}"
    return f"{group}: {item}"


def mitigation_table(verdicts: Mapping[Any, Verdict], grids: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Chapter 4's tests as :func:`verdict_table` shows them, each labelled in words by
    :func:`mitigation_label`; sharpness measures (λmax, λmax / loss) as they are, the rest in
    percentage points. With ``grids`` (:func:`sharpmem_lib.mitigation.sweep_grids`), a sweep
    of two settings is labelled by them ('λ = 1.5 vs λ = 0: honest best single-query
    attack'), not as a trend. A two-setting label is used only for a paired test, never for a
    rank trend."""
    raw = [k for k in verdicts if "sharpness" in k[0] or k[1] in ("lambda_max", "lambda_max/loss")]

    def label(k) -> str:
        if str(k[0]).endswith(" trend") and "permutation" in verdicts[k].method:  # a rank trend: no "vs"
            return mitigation_label(k, {})
        return mitigation_label(k, grids)

    return verdict_table(verdicts, {k: label(k) for k in verdicts}, raw=raw)


def mitigation_sentences(numbers: Mapping[str, Any], verdicts: Mapping[Any, Verdict]) -> dict[str, str]:
    """Every value chapter 4's prose quotes, by glue name: ``numbers`` from
    :func:`sharpmem_lib.mitigation.headline_numbers` formatted, and the verdict sentences
    from the chapter's Holm-adjusted ``verdicts`` (keys of
    :func:`sharpmem_lib.mitigation.chapter_tests`). A minimum is called flatter or sharper
    (``sam_flatter``, ``sharpreg_sharper``) on λmax per unit training loss, not on λmax."""
    from sharpmem_lib.mitigation import CONTROL_MEASURES, TREND_CLAIMS

    n = numbers
    signed = lambda x: "n/a" if not math.isfinite(x) else _signed(100 * x, "+.1f")  # noqa: E731
    values = lambda xs: ", ".join(f"{x:g}" for x in xs) or "none"  # noqa: E731
    out = {f"{k}_bucket{b}": signed(n[f"{k}_bucket{b}"]) for k in ("lam", "sr") for b in (1, 5)}
    out["bucket_source"] = str(n.get("bucket_source", "n/a"))
    out["sr_params"] = f"({n['sharpreg_rho']:g}, {n['sharpreg_lam']:g}, {n['sharpreg_xi']:g})"
    out["sr_lam"] = f"{n['sharpreg_lam']:g}"
    for name in ("sgd", "sam", "sharpreg", "control"):
        out[f"lmax_{name}"], out[f"lmax_loss_{name}"] = f"{n[f'lmax_{name}']:.3g}", f"{n[f'lmax_loss_{name}']:.3g}"
    for name, key in (("sam", "sam_flatter"), ("sharpreg", "sharpreg_sharper")):
        out[key] = sharpness_word(verdicts[("sharpness/loss", name)])
        out[f"{name}_sharpness_verdict"] = sharpness_verdict(verdicts[("sharpness", name)], name)
        out[f"{name}_sharpness_loss_verdict"] = sharpness_verdict(verdicts[("sharpness/loss", name)], name,
                                                                  "top Hessian eigenvalue per unit training loss")
    short = {"test_acc": "test", "single_query": "attack", "multi_query": "label", "lambda_max": "sharpness",
             "lambda_max/loss": "sharpness_loss"}
    grids = n.get("grids", {})  # the settings each sweep's tests compare (two: high vs low, not a trend)
    raw_value = _signed
    for (knob, m), (what, against, claim) in TREND_CLAIMS.items():  # lam_test_trend, ..., lam_sharpness_loss_trend
        out[f"{knob.split()[0]}_{short[m]}_trend"] = sweep_sentence(
            verdicts[(knob, m)], what, against, claim, grids.get(knob.split()[0], ()),
            raw_value if m in ("lambda_max", "lambda_max/loss") else _points)
    for knob, symbol, figure in (("lam", "λ", "4b and 4c"), ("xi", "ξ", "5b and S4.3")):
        out[f"{knob}_grid_note"] = grid_note(symbol, grids.get(knob, ()), figure)
    for knob, symbol in (("lam", "λ"), ("xi", "ξ")):  # the results page's verdict rows name what they measure
        g = sorted(grids.get(knob, ()))
        out[f"{knob}_attack_measure"] = (f"the accuracy of the honest best single-query attack at {symbol} = "
                                         f"{g[1]:g} minus at {symbol} = {g[0]:g}, paired by seed" if len(g) == 2 else
                                         "rank correlation of the honest best single-query attack's accuracy with "
                                         f"{symbol}, within seeds")
    lam_grid = sorted(grids.get("lam", ()))
    lam_knob = f"λ = {lam_grid[1]:g}" if len(lam_grid) == 2 else "A larger λ"
    if ("lam trend", "lambda_max") in verdicts and ("lam trend", "lambda_max/loss") in verdicts:
        out["lam_sharpness_caveat"] = sharpness_caveat(verdicts[("lam trend", "lambda_max")],
                                                       verdicts[("lam trend", "lambda_max/loss")], lam_knob,
                                                       verdicts.get(("lam trend", "single_query")),
                                                       seeds=n.get("train_seeds"))
    else:
        out["lam_sharpness_caveat"] = ("The λ sweep's sharpness was not measured, so whether it made minima sharper "
                                       "is unknown.")
    out["sharpreg_loss"] = training_loss_sentence(n.get("loss_sharpreg", NAN), n.get("loss_sgd", NAN))
    out["control_xi_move"] = control_move_sentence(n.get("xi_attack_means"), n.get("control_attack_means"),
                                                   grids.get("xi", ()))
    out["xi_diverged"], out["xi_collapsed"] = values(n["xi_diverged"]), values(n["xi_collapsed"])
    xi_trend = verdicts.get(("xi trend", "test_acc"))
    xi_runs = xi_trend.n if xi_trend is not None and _rank_trend(xi_trend) else None
    xi_total = len(n.get("xi_values", ())) * n["train_seeds"] if n.get("train_seeds") else None
    out["xi_divergence"] = divergence_sentence(n["xi_diverged"], n["xi_collapsed"], n.get("xi_values", ()),
                                               grids.get("xi"), xi_runs, xi_total)
    out["xi_test_drop"] = largest_drop_sentence(n.get("xi_test_means"), n.get("control_test_means"))
    out["control_scale"] = f"{1 - n['sharpreg_xi']:g}"
    control = {CONTROL_MEASURES[m]: v for (f, m), v in verdicts.items() if f == "lr control"}
    out["control_verdict"] = (control_verdict(control, "sharpreg", f"SGD at lr × {out['control_scale']}",
                                              raw=[CONTROL_MEASURES["lambda_max"], CONTROL_MEASURES["lambda_max/loss"]],
                                              explain="what SharpReg would be without its sharpness term: the "
                                                      "same training with the step scaled by 1 − ξ")
                              if control else "No control run: ξ ≥ 1 leaves lr × (1 − ξ) no positive value.")
    sharpreg_test = verdicts.get(("defense", "SharpReg"))
    out["sharpreg_defense_test"] = (defense_test_sentence(sharpreg_test) if sharpreg_test is not None
                                    else "SharpReg did not run against SGD in this chapter.")
    out["control_conclusion"] = (control_conclusion(verdicts[("lr control", "single_query")], sharpreg_test,
                                                    f"SGD at lr × {out['control_scale']}")
                                 if ("lr control", "single_query") in verdicts and sharpreg_test is not None
                                 else "No control run, so nothing says what the smaller step does.")
    for key in ("sgd_attack", "sharpreg_attack", "sgd_acc", "sharpreg_acc", "dp_selena", "dp_honest"):
        out[key] = pct(n[key])
    out["lowest_attack"] = f"{n['lowest_method']} ({pct(n['lowest_attack'])})"
    out["highest_attack"] = f"{n['highest_method']} ({pct(n['highest_attack'])})"
    out["honest_range"] = f"{pct(n['honest_min'])} and {pct(n['honest_max'])}"
    out["dp_epsilon"] = f"{n['dp_epsilon']:.3g}" if math.isfinite(n["dp_epsilon"]) else "n/a"
    out["dp_gap_note"] = dp_gap_note(n["dp_selena"], n["dp_honest"])
    out["defense_verdict"] = defense_verdict({k[1]: v for k, v in verdicts.items() if k[0] == "defense"})
    out["family_note"] = family_note(max((v.family_size for v in verdicts.values()), default=0))
    for key, test in (("lam_attack", ("lam trend", "single_query")), ("xi_attack", ("xi trend", "single_query")),
                      ("sharpreg_defense", ("defense", "SharpReg"))):  # the results page's verdict table
        out |= (claim_values(key, verdicts[test]) if test in verdicts else  # a sweep or method that did not run
                {f"claim_{key}_{part}": "n/a (not run)" for part in ("number", "power", "status")})
    lam_attack, lam_loss = verdicts.get(("lam trend", "single_query")), verdicts.get(("lam trend", "lambda_max/loss"))
    if lam_attack is not None and lam_attack.outcome in ("reproduced", "opposite") and (
            lam_loss is None or not sharpened(lam_loss)):  # the row tests λ, the paper's proxy: not sharper minima
        status, note = out["claim_lam_attack_status"], "λ did not measurably sharpen the minimum"
        out["claim_lam_attack_status"] = (status[:-1] + f"; {note})" if status.endswith(")")  # one parenthesis
                                          else status + f" ({note})")
    for key, family, method in (("lam", "lam", n["top_lam"]), ("sr", "sharpreg", "sharpreg")):
        pattern = _pattern_verdict(verdicts, (family, "pattern"), n.get(f"{key}_pattern"), -1)
        out[f"{key}_bucket_pattern"] = bucket_pattern(n[f"{key}_gain"], verdicts[(family, 1)], method, expect="loss",
                                                      at_ceiling=n[f"{key}_ceiling"], pattern=pattern,
                                                      baseline="λ = 0" if key == "lam" else "SGD")
    return out


def training_loss_sentence(sharpreg: float, sgd: float) -> str:
    """Chapter 4 and the results page: SharpReg's final training loss against SGD's (means over
    seeds, the sharpness table's). The paper gives ξ the role of keeping the training loss away
    from zero ("a proxy to early stopping"), so a lower loss runs against that role. Not tested:
    exploratory. Empty where either is unknown."""
    if not (math.isfinite(sharpreg) and math.isfinite(sgd)) or sharpreg == sgd:
        return ""
    pair = f"{sharpreg:.3g} vs {sgd:.3g}, means over seeds"
    if sharpreg < sgd:
        return (f"SharpReg ends at a lower training loss than SGD ({pair}), not higher, against the role the paper "
                "gives ξ of keeping the training loss away from zero as a proxy to early stopping (exploratory, "
                "not tested).")
    return (f"SharpReg ends at a higher training loss than SGD ({pair}), in line with the role the paper gives ξ of "
            "keeping the training loss away from zero as a proxy to early stopping (exploratory, not tested).")


def control_move_sentence(sharpreg: Mapping[float, float] | None, control: Mapping[float, float] | None,
                          grid) -> str:
    """Chapter 4, beside a two-setting ξ verdict: how the learning-rate control's honest best
    single-query attack moves between the same two ξ (means, :func:`sharpmem_lib.mitigation.
    control_table`'s), beside SharpReg's, so a reader sees whether the smaller step alone moves
    it the same way. Empty unless the grid has two settings that both ran."""
    g = sorted(float(x) for x in grid or ())
    if len(g) != 2 or not sharpreg or not control or not all(x in sharpreg and x in control for x in g):
        return ""
    lo, hi = g
    d_sr, d_ctl = sharpreg[hi] - sharpreg[lo], control[hi] - control[lo]
    way = ("the same way" if d_sr * d_ctl > 0 else "the other way" if d_sr * d_ctl < 0 else "differently")
    return (f"The learning-rate control (SGD at lr × (1 − ξ)) moves {way} from ξ = {lo:g} to ξ = {hi:g}: its honest "
            f"best single-query attack goes from {pct(control[lo])} to {pct(control[hi])}, SharpReg's from "
            f"{pct(sharpreg[lo])} to {pct(sharpreg[hi])} (means, not tested).")


def _pattern_verdict(verdicts: Mapping[Any, Verdict], key, pattern, sign: int) -> Verdict | None:
    """The verdict of a bucket-pattern test: the chapter's own (``verdicts[key]``, in its Holm
    family) when it has one, else one made from ``pattern`` = (comparison bucket, PairedTest)
    as an exploratory test (not Holm-adjusted, and labelled so); None without a comparison."""
    from sharpmem_lib.stats import holm_verdicts

    if key in verdicts:
        return verdicts[key]
    if pattern is None or pattern[0] is None or pattern[1] is None:
        return None
    return holm_verdicts({"pattern": pattern[1]}, {"pattern": sign}, exploratory=["pattern"])["pattern"]


def unmeasured_share(n_unmeasured: int, n_test: int, target: float = 0.20) -> str:
    """Chapter 2: the share of test points with no measured influence, against issue 16's
    target (at most ``target``): '16.6 % (665 of 4000 test points), within the book's target
    of at most 20 %'."""
    if n_test <= 0:
        return "n/a (no test points)"
    share = n_unmeasured / n_test
    where = "within" if share <= target else "above"
    return (f"{pct(share)} ({n_unmeasured} of {n_test} test points), {where} the book's target of at most "
            f"{pct(target, 0)}")


def influence_precision_note(precision: Mapping[str, float] | None) -> str:
    """Chapter 2: how precise the influence estimates are, from the "all measured" row of
    :func:`sharpmem_lib.buckets.influence_precision`: the median standard error of one
    estimate and the median largest influence with its own. What share of the test points
    has a largest influence resolved from zero is said once, by :func:`bucket_noise_sentence`,
    which the chapter and the results page print right after it."""
    if not precision or not math.isfinite(precision.get("median SE of an estimate", float("nan"))):
        return "These estimates come without standard errors (the file holds no per-model results)."
    return (f"One influence estimate (eq. 2) has a standard error of {precision['median SE of an estimate']:.3f} "
            f"(median over the measured test points); the median test point's largest influence is "
            f"{precision['median largest influence']:.3f} ± {precision['its median SE']:.3f}.")


def bucket_noise_sentence(precision: Mapping[str, float] | None) -> str:
    """Chapter 2 and the results page, said plainly and once: on what share of the measured
    test points does the bucket rest on a resolved influence (the "share resolved from zero"
    of :func:`sharpmem_lib.buckets.influence_precision`'s "all measured" row: a one-sided
    z-test, Bonferroni over the class's training points)?"""
    share = (precision or {}).get("share resolved from zero", NAN)
    if share is None or not math.isfinite(share):
        return "How much of the bucket assignment rests on noise is not known here (no standard errors)."
    test = "one-sided z-test, Bonferroni over the class's training points, α = 0.05"
    if share < 0.5:
        return (f"Most bucket assignments rest on noise: only for {pct(share)} of the measured test points is the "
                f"largest influence resolved from zero ({test}). For the rest no single training point's influence "
                "stands out from the estimator's noise at this number of subset models, so their entropy, and "
                "their bucket, are mostly noise.")
    return (f"For {pct(share)} of the measured test points the largest influence is resolved from zero ({test}), so "
            "most bucket assignments rest on a measured influence rather than on noise.")


def near_unmeasured_sentence(shares: Mapping[Any, float] | None, agree: float, bucket: int = 5,
                             low: int = 1) -> str:
    """Chapter 2 and the results page, beside the bucket results: the share of bucket
    ``bucket``'s test points that are nearly unmeasured (the subset models agree on whether
    they classify the point correctly in at least ``agree`` of cases, so each influence
    estimate rests on the few models that disagree), against bucket ``low``'s; ``shares``:
    :func:`sharpmem_lib.buckets.near_unmeasured_share` by bucket."""
    top, bottom = (shares or {}).get(bucket, NAN), (shares or {}).get(low, NAN)
    if top is None or not math.isfinite(top):
        return "How many of the bucketed test points are nearly unmeasured is not known here (no per-model results)."
    few = f"at most {pct(1 - agree, 0)} of the subset models disagree with the rest on whether they get it right"
    lead = f"In bucket {bucket}, {pct(top)} of the test points are nearly unmeasured ({few})"
    against = f", against {pct(bottom)} in bucket {low}" if bottom is not None and math.isfinite(bottom) else ""
    tail = (": for most of this bucket the influence estimates rest on a handful of models, so a high entropy "
            "there reflects little measured influence rather than influence shown to be spread over many training "
            "points." if top > 0.5 else ": their influence estimates rest on a handful of models.")
    return lead + against + tail


def partial_sentence(partial, alpha: float = 0.05) -> str:
    """Chapter 2's ground-truth check: what the partial (Spearman) correlation of influence
    entropy with true subpopulation size, difficulty held fixed, says, by its sign and p
    (a positive one: entropy knows about rarity beyond difficulty)."""
    if partial is None or not math.isfinite(partial.estimate) or not math.isfinite(partial.p_value):
        why = getattr(partial, "note", "") if partial is not None else ""
        return "The partial correlation could not be computed here" + (f" ({why})." if why else ".")
    ev = f"partial ρ = {_signed(partial.estimate, '.2f')}, p = {_p(partial.p_value)}, {partial.n} points"
    if partial.p_value >= alpha:
        return (f"Difficulty held fixed, entropy's correlation with subpopulation size is not distinguishable from "
                f"zero ({ev}): on this data, what entropy says about rarity is what plain difficulty already says.")
    if partial.estimate > 0:
        return (f"Difficulty held fixed, entropy still rises with subpopulation size ({ev}): it knows about rarity "
                "beyond how hard the point is, as the paper's use of it requires.")
    return (f"Difficulty held fixed, entropy falls as subpopulation size grows ({ev}): beyond difficulty it ranks "
            "rarity the wrong way round, so its link to rarity comes through difficulty, not from entropy itself.")


def bucket_sentences(numbers: Mapping[str, Any], verdicts: Mapping[Any, Verdict]) -> dict[str, str]:
    """Every value chapter 2's prose quotes, by glue name, from
    :func:`sharpmem_lib.buckets.bucket_numbers` and the chapter's Holm-adjusted ``verdicts``
    (keys of :func:`sharpmem_lib.buckets.bucket_tests`)."""
    n = numbers
    skipped = "n/a (the ground-truth check was not run in this profile)"
    ed = n["entropy_difficulty"]
    out = {"source": str(n["source"]), "n_test": str(n["n_test"]), "n_unmeasured": str(n["n_unmeasured"]),
           "n_seeds": str(n["seeds"]), "unmeasured_share": unmeasured_share(n["n_unmeasured"], n["n_test"]),
           "influence_se": influence_precision_note(n.get("precision")),
           "bucket_noise": bucket_noise_sentence(n.get("precision")),
           "near_unmeasured": near_unmeasured_sentence(n.get("near_unmeasured"), n.get("near_unmeasured_agree", 0.99)),
           "entropy_difficulty": (f"Spearman's ρ between influence entropy and the subset models' accuracy over the "
                                  f"{ed.n} measured test points: {_signed(ed.estimate, '.2f')} (p = {_p(ed.p_value)})."
                                  if ed is not None and ed.n and math.isfinite(ed.estimate) else
                                  "The difficulty proxy is not available for these estimates (they hold no per-model "
                                  "correctness)."),
           "top1_verdict": top1_trend(verdicts["top1"], n["top1_means"]),
           "family_note": family_note(max((v.family_size for v in verdicts.values() if v.role == "confirmatory"),
                                          default=0))}
    for m in ("sam", "swa"):
        out[f"{m}_b1"] = describe_gain(verdicts[(m, 1)], m, "sgd", "bucket 1") if (m, 1) in verdicts else "n/a"
        out[f"{m}_b5"] = describe_gain(verdicts[(m, 5)], m, "sgd", "bucket 5") if (m, 5) in verdicts else "n/a"
        pattern = _pattern_verdict(verdicts, (m, "pattern"), n.get(f"{m}_pattern"), 1)
        out[f"{m}_shape"] = (bucket_pattern(n[f"{m}_gain"], verdicts[(m, 1)], m, at_ceiling=n["ceiling"],
                                            pattern=pattern) if (m, 1) in verdicts else "n/a")
        high, t = n[f"{m}_pattern"]
        out[f"{m}_pattern"] = ("every bucket above 1 is at the 100 % ceiling, so there is nothing to compare with"
                               if high is None else f"{_points(t.estimate)} against bucket {high}, "
                               + (f"95 % CI [{_points(t.ci_low).split()[0]}, {_points(t.ci_high).split()[0]}], "
                                  if math.isfinite(t.ci_low) else "")
                               + f"p = {_p(t.p_value)} ({t.n} seeds, not Holm-adjusted)")
    check = n["ground_truth"]
    if check is None:
        out |= {k: skipped for k in ("spearman", "spearman_p", "median_b1", "median_b5", "gt_difficulty",
                                     "gt_partial", "gt_unmeasured", "gt_partial_verdict", "gt_scope", "gt_medians")}
    else:
        partial = check["entropy | difficulty"]
        out |= {"spearman": _signed(check["entropy"].estimate, ".2f"), "spearman_p": _p(check["entropy"].p_value),
                "gt_difficulty": _signed(check["difficulty"].estimate, ".2f"),
                "gt_partial": f"{_signed(partial.estimate, '.2f')} (p = {_p(partial.p_value)})",
                "gt_partial_verdict": partial_sentence(partial),
                "gt_unmeasured": str(n["gt_unmeasured"]), "median_b1": f"{n['median_b1']:.0f}",
                "median_b5": f"{n['median_b5']:.0f}", "gt_scope": ground_truth_scope(n), "gt_medians":
                ", ".join("n/a" if not math.isfinite(x) else f"{x:.0f}" for x in n.get("gt_medians", []))
                + " in buckets 1 to 5"}
    return out


def ground_truth_scope(numbers: Mapping[str, Any]) -> str:
    """Which test points chapter 2's ground-truth check rests on: 'the 348 of 1,208 test points
    with measured influence (860, 71 %, unmeasured and left out)', from
    :func:`sharpmem_lib.buckets.bucket_numbers` (``gt_n_test``, ``gt_unmeasured``)."""
    total, unmeasured = numbers.get("gt_n_test"), numbers["gt_unmeasured"]
    if total is None:
        return f"the test points with measured influence ({unmeasured:,} unmeasured and left out)"
    share = f"{100 * unmeasured / total:.0f} %" if total else "n/a"
    return (f"the {total - unmeasured:,} of {total:,} test points with measured influence "
            f"({unmeasured:,}, {share}, unmeasured and left out)")


def strata_view(strata: pd.DataFrame) -> pd.DataFrame:
    """:func:`sharpmem_lib.buckets.gain_within_strata` as chapter 2 shows it: one row per
    difficulty stratum, one column per bucket, each cell 'gain [95 % CI] (points)' in
    percentage points ('n/a' for the interval with fewer than 3 seeds)."""
    def cell(g, lo, hi, n):
        ci = f"[{100 * lo:+.1f}, {100 * hi:+.1f}]" if math.isfinite(lo) and math.isfinite(hi) else "[n/a]"
        return f"{100 * g:+.1f} {ci} ({n})" if math.isfinite(g) else f"n/a ({n})"

    cells = [cell(*row) for row in zip(strata["gain"], strata["ci95_low"], strata["ci95_high"], strata["points"])]
    return strata.assign(cell=cells).pivot(index="stratum", columns="bucket", values="cell")


def ground_truth_table(check: Mapping[str, Any]) -> pd.DataFrame:
    """Chapter 2's ground-truth check (:func:`sharpmem_lib.buckets.ground_truth_check`):
    Spearman's ρ of entropy, of ease (the check's ``"difficulty"``: the subset models'
    accuracy, high on easy points, so named by its sign), and of entropy given difficulty with
    the true subpopulation size, its p-value and the test points, one row each."""
    rows = {"difficulty": "ease (the subset models' accuracy)"}
    return readable_table(pd.DataFrame({rows.get(k, k): {"Spearman's ρ with subpopulation size": round(c.estimate, 2),
                                                         "p": readable_value(c.p_value, 1), "test points": c.n}
                                        for k, c in check.items()}).T)


def dp_gap_note(selena: float, honest: float, threshold: float = 0.03) -> str:
    """Chapter 4: a warning when SELENA's protocol credits attacks on DP-SGD's models with
    more than ``threshold`` over the honest protocol; empty otherwise."""
    if not (math.isfinite(selena) and math.isfinite(honest)) or selena - honest <= threshold:
        return ""
    return (f"SELENA's protocol credits the attack with {100 * (selena - honest):.1f} points more than the honest one "
            "against a private model, so differences of a point or two under that protocol mean little.")


EXPLORATORY_STATUS = {"reproduced": "agrees (exploratory)", "opposite": "against (exploratory)",
                      "not resolved": "not resolved (exploratory)"}
"""An exploratory test's status words: never "reproduced" or "opposite" (DESIGN.md)."""


def attacker_members(parts) -> str:
    """Chapter 0 and the methods page: how many of the members the attacker knows, per
    dataset, from :class:`sharpmem_lib.splits.Partition` objects (SELENA's datasets: half;
    a CPU split may give the attacker fewer): 'half of the members (cifar10, ...); 500 of
    the 2,500 members (20 %) on fashion_mnist_cpu'."""
    half, other = [], []
    for p in parts:
        k, n = len(p.attack_members), len(p.members)
        if n and abs(k - n / 2) <= 0.5:
            half.append(p.dataset)
        else:
            other.append(f"{k:,} of the {n:,} members ({100 * k / max(n, 1):.0f} %) on {dataset_name(p.dataset)}")
    out = ([f"half of the members ({', '.join(dataset_name(d) for d in half)})"] if half else []) + other
    return "; ".join(out) if out else "n/a (no partition)"


def verdict_table(verdicts: Mapping[Any, Verdict], claims: Mapping[Any, str] | None = None,
                  no_direction=(), raw=()) -> pd.DataFrame:
    """claim | role | this build's estimate | interval | detectable difference | p | p (Holm)
    | n | status, one row per verdict: the computed status table for a chapter or a results
    page. ``role``: confirmatory (in the Holm family), exploratory (unadjusted) or empty (a
    ceiling test, counted nowhere). ``detectable``: the smallest difference the design
    resolves at the level the test is held to (α/m after Holm, α for an exploratory one;
    :func:`claim_power`). Keys in ``no_direction`` (or verdicts whose outcome is
    ``NO_DIRECTION``) are tests the paper gives no direction for: their status says so
    instead of a verdict. Estimates are shown in percentage points, as ρ for trend tests,
    and as they are for keys in ``raw``."""
    rows = []
    for key, v in verdicts.items():
        finite = math.isfinite(v.ci_low) and math.isfinite(v.ci_high)
        ci = "n/a" if not finite else _minus(f"[{v.ci_low:+.3g}, {v.ci_high:+.3g}]" if key in set(raw)
                                              else f"[{100 * v.ci_low:+.1f}, {100 * v.ci_high:+.1f}]")
        if not math.isfinite(v.estimate):
            est = "n/a"
        elif _rank_trend(v):
            est = _rho(v.estimate)
        elif key in set(raw):
            est = _signed(v.estimate)
        else:
            est = _points(v.estimate)
        hw = getattr(v, "half_width", NAN)
        if not math.isfinite(hw):
            detect = "n/a"
        else:
            detect = (f"±{hw:.3g}" if key in set(raw) else f"±{100 * hw:.1f} points") + f" at {v.level:.2g}"
        role = getattr(v, "role", "confirmatory")
        if role == "empty":
            status = "empty (every run at 100 %)"
        elif key in set(no_direction) or v.outcome == NO_DIRECTION:
            status = NO_DIRECTION
        elif role == "exploratory":  # only a confirmatory test reproduces a claim or goes against it
            status = EXPLORATORY_STATUS.get(v.outcome, v.outcome)
        else:
            status = v.outcome
        if getattr(v, "dropped", 0):  # pairs with a diverged member were not compared: say how many
            status += f" ({v.dropped} {'pair' if v.dropped == 1 else 'pairs'} left out: a member diverged)"
        rows.append({"claim": (claims or {}).get(key, str(key)), "role": role, "estimate": est, "95 % CI": ci,
                     "detectable (level)": detect, "p": _p(v.p_value),
                     "p (Holm)": _p(v.p_adjusted) if role == "confirmatory" else "–", "n": v.n, "status": status})
    columns = ["claim", "role", "estimate", "95 % CI", "detectable (level)", "p", "p (Holm)", "n", "status"]
    return pd.DataFrame(rows, columns=columns).set_index("claim")  # no verdict: an empty table (was a KeyError)


def _share(k: int, n: int) -> str:
    """A count as the word a reader would use: none, a few (≤ 10 %), some, half, most, all."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"k={k!r} of n={n!r} is not a valid count")
    if k == 0:
        return "none"
    if k == n:
        return "all"
    if 2 * k > n:
        return "most"
    if 2 * k == n:
        return "half"
    return "a few" if 10 * k <= n else "some"


def island_sentence(captures: pd.DataFrame, sample: str, near: float, capture: float) -> str:
    """Chapter 1: how the runs of one sample spread around the Bayes rule on the atypical
    cluster, computed from :func:`sharpmem_lib.toy.capture_table` (``near``: its
    ``NEAR_BAYES``; ``capture``: the coverage that counts as capturing the island). The
    quantifiers (most, a few, ...) come from the counts, pooled over methods."""
    rows = captures[captures["sample"] == sample]
    if rows.empty:
        raise ValueError(f"captures has no rows for sample={sample!r}; it has {sorted(set(captures['sample']))}")
    n, close, missed = int(rows["runs"].sum()), int(rows["near_bayes"].sum()), int(rows["missed"].sum())
    bayes = pct(float(rows["bayes_atypical_acc"].iloc[0]))
    head = (f"{_share(close, n).capitalize()} of the {n} runs come within {100 * near:g} points of the Bayes rule's "
            f"accuracy on the atypical cluster ({bayes}), and {_share(missed, n)} miss the atypical island (label "
            f"less than {100 * capture:g} % of it red)")
    each = "; ".join(f"{method_label(r.method)}: {r.near_bayes} of {r.runs} close, island captured in {r.captured} "
                     f"of {r.runs} (95 % CI {100 * r.capture_low:.0f}–{100 * r.capture_high:.0f} %)"
                     for r in rows.itertuples())
    return f"{head}. {each}."


def power_sentence(power: pd.Series, what: str = "SAM − SGD on the atypical test points") -> str:
    """Chapter 1: what one sample's seeds resolve, from a row of
    :func:`sharpmem_lib.toy.power_table`: the interval's half-width achieved, and the seeds a
    half-width of ``target`` (a difference of twice that) needs at the observed SD."""
    target = 100 * power["target"]
    if not math.isfinite(power["half_width"]):
        return (f"With {power['seeds']} seeds there is no interval for {what} (fewer than 3 seeds, or no "
                "variation between them).")
    met = power["seeds"] >= power["seeds_needed"]
    return (f"With {power['seeds']} seeds the 95 % interval of {what} is ±{100 * power['half_width']:.1f} points "
            f"(SD of the per-seed differences {100 * power['sd']:.1f} points); ±{target:g} points, enough to resolve a "
            f"{2 * target:g}-point difference, needs {power['seeds_needed']} seeds at this SD"
            + (", so this run resolves it." if met else ", more than this run has: a difference that small may go "
               "unresolved here."))


def capture_view(captures: pd.DataFrame) -> pd.DataFrame:
    """:func:`sharpmem_lib.toy.capture_table` as the book shows it: counts out of the runs,
    the capture rate's exact 95 % interval, and the median atypical accuracy, in percent."""
    def out_of(column: str) -> list[str]:
        return [f"{k} / {n}" for k, n in zip(captures[column], captures["runs"])]

    ci = [f"{100 * lo:.0f}–{100 * hi:.0f} %" for lo, hi in zip(captures["capture_low"], captures["capture_high"])]
    return pd.DataFrame({"sample": captures["sample"], "method": captures["method"].map(method_label),
                         "island captured": out_of("captured"), "95 % CI": ci,
                         "close to the Bayes rule": out_of("near_bayes"),
                         "median atypical accuracy (%)": (100 * captures["median_atypical_acc"]).round(1)}
                        ).set_index(["sample", "method"])


# ------------------------------------------------------------------ chapter 3's sentences


def disagreement_list(directions: pd.DataFrame) -> str:
    """The (algorithm, metric) effects whose sign in this run differs from the sign the paper
    reports on all its datasets (:func:`sharpmem_lib.privacy.directions`), e.g.
    'SAM single-query attack (%), SharpReg test acc (%)', or 'none'."""
    settled = directions[directions["agrees"].notna()]
    disagree = settled[~settled["agrees"].astype(bool)]
    return ", ".join(f"{method_label(a)} {m}" for a, m in disagree.index) if len(disagree) else "none"


def significance_counts(verdicts: Mapping[Any, Verdict], alpha: float = 0.05) -> dict[str, str]:
    """``n_tests`` (tests with a p-value), ``n_significant`` (Holm-adjusted p < ``alpha``) and
    ``min_p`` (the smallest adjusted p, or why there is none) of a chapter's family."""
    adjusted = [v.p_adjusted for v in verdicts.values() if v.p_adjusted is not None and math.isfinite(v.p_adjusted)]
    return {"n_tests": str(len(adjusted)), "n_significant": str(sum(p < alpha for p in adjusted)),
            "min_p": f"{min(adjusted):.2g}" if adjusted else "n/a (too few training seeds)"}


def _resolved(v: Verdict) -> bool:
    return math.isfinite(v.p_adjusted) and v.p_adjusted < v.alpha and v.n >= 3


def _with_ci(v: Verdict) -> str:
    ci = (f", 95 % CI [{_points(v.ci_low).split()[0]}, {_points(v.ci_high).split()[0]}]"
          if math.isfinite(v.ci_low) and math.isfinite(v.ci_high) else " (no interval)")
    adj = "" if v.role != "confirmatory" or v.family_size <= 1 else f", Holm-adjusted p = {_p(v.p_adjusted)}"
    return f"{_points(v.estimate)}{ci}, p = {_p(v.p_value)}{adj}, n = {v.n}"


def protocol_vs_optimizer(gap: Verdict, effect: Verdict, gap_where: str = "", effect_where: str = "",
                          of: int = 1) -> str:
    """Chapter 3: how far SELENA's choices on the evaluation sets move the best single-query
    attack over the honest protocol (``gap``: the largest such paired difference, exploratory)
    against the largest optimizer − SGD difference under the honest protocol (``effect``,
    from the chapter's Holm family), each with its interval. The two are compared only when
    both are resolved (p, Holm-adjusted where it is in the family, below α). No test of one
    size against the other is computed, so an order is stated only when every size in one
    interval exceeds every size in the other (a conservative reading of the two intervals),
    and otherwise the sentence says that their order was not tested. ``of``: how many protocol
    gaps ``gap`` is the largest of ('by up to +0.5 points (the largest of the 3 gaps, ...)')."""
    g_at = (f" (the largest of the {of} gaps{', ' + gap_where if gap_where else ''})" if of > 1
            else f" ({gap_where})" if gap_where else "")
    e_at = f" ({effect_where})" if effect_where else ""
    head = (f"SELENA's choices on the evaluation sets move the best single-query attack, against the honest "
            f"protocol, by {'up to ' if of > 1 else ''}{_with_ci(gap)}{g_at}; the largest optimizer − SGD "
            "difference under the honest protocol is "
            f"{_with_ci(effect)}{e_at}.")
    if not (_resolved(gap) and _resolved(effect)):
        which = [w for w, v in (("the protocol's", gap), ("the optimizer's", effect)) if not _resolved(v)]
        what = ("Neither effect is" if len(which) == 2 else f"{which[0].capitalize()} effect is not")
        return head + f" {what} resolved, so the two are not compared."
    lo = lambda v: min(abs(v.ci_low), abs(v.ci_high)) if v.ci_low * v.ci_high > 0 else 0.0  # noqa: E731
    hi = lambda v: max(abs(v.ci_low), abs(v.ci_high))  # noqa: E731
    if not all(math.isfinite(x) for x in (gap.ci_low, gap.ci_high, effect.ci_low, effect.ci_high)):
        return head + " Both are resolved, but one has no interval, so their sizes are not compared."
    disjoint = (" Both are resolved, and every size in the {0}'s interval exceeds every size in the {1}'s: the "
                "{0} moves the attack more than the {1} does (read from the two intervals; no test of one against "
                "the other was run).")
    if lo(gap) > hi(effect):
        return head + disjoint.format("protocol", "optimizer")
    if lo(effect) > hi(gap):
        return head + disjoint.format("optimizer", "protocol")
    return head + (" Both are resolved. Which of the two moves the attack more was not tested: no test of one "
                   "against the other was run, so this page does not rank them.")


def boundary_setup(dataset: str, points: int, n_eval: int) -> str:
    """Chapter 3: what the boundary-distance attacks ran on."""
    return f"{dataset}, {points} points per set, {n_eval} evaluation points per target"


def _boundary_choice(rows: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """One row per algorithm: the boundary attack the protocol picks among the methods run
    (best threshold kind), honest: by ``attacker_acc`` (estimated on the attacker's data),
    SELENA-style: by ``balanced_acc`` on the evaluation sets."""
    key = {"honest": "attacker_acc", "selena": "balanced_acc"}
    if protocol not in key:
        raise ValueError(f"protocol={protocol!r} is not valid; choose from {list(key)}")
    if key[protocol] not in rows:
        raise ValueError(f"the boundary rows have no {key[protocol]!r} column; they come from privacy.boundary_attack")
    best = rows[(rows["protocol"] == protocol) & (rows["threshold"] == "best")]
    return best.loc[best.groupby("algorithm", sort=False)[key[protocol]].idxmax()]


def boundary_best(rows: pd.DataFrame) -> str:
    """Chapter 3, honest protocol: for each algorithm's target, the boundary-distance attack
    an attacker picks on its own data (highest ``attacker_acc``), and that attack's balanced
    accuracy on the evaluation sets. Nothing here is chosen on evaluation data."""
    chosen = _boundary_choice(rows, "honest")
    return "; ".join(f"{method_label(r.algorithm)} {100 * r.balanced_acc:.1f} % ({r.attack})"
                     for r in chosen.itertuples()) + " (each attack chosen on the attacker's own data)"


def boundary_best_selena(rows: pd.DataFrame) -> str:
    """Chapter 3, SELENA-style (labelled so): for each algorithm, the most accurate boundary
    attack on the evaluation sets themselves, under SELENA's protocol: an optimistic choice."""
    chosen = _boundary_choice(rows, "selena")
    return "; ".join(f"{method_label(r.algorithm)} {100 * r.balanced_acc:.1f} % ({r.attack})"
                     for r in chosen.itertuples()) + " (SELENA-style: the best attack on the evaluation sets)"


def significance_view(sig: pd.DataFrame) -> pd.DataFrame:
    """:func:`sharpmem_lib.privacy.significance` as chapter 3 shows it: each mean paired
    difference in percentage points (``<m>_diff`` holds fractions), the test and its
    unadjusted p."""
    from sharpmem_lib.privacy import HEADERS

    out = pd.DataFrame(index=sig.index)
    if "train_seeds" in sig:
        out["training seeds"] = sig["train_seeds"]
    for m, header in HEADERS.items():
        if f"{m}_diff" not in sig:
            continue
        name = header.replace(" (%)", "")
        out[f"{name}: difference (points)"] = [f"{100 * x:+.2f}" if math.isfinite(x) else "n/a"
                                               for x in sig[f"{m}_diff"]]
        out[f"{name}: p (unadjusted)"] = [_p(x) for x in sig[f"{m}_p"]]
    return out


def significance_views(study) -> list:
    """Chapter 3: a title and :func:`significance_view` per protocol (honest first), to display."""
    from IPython.display import Markdown

    from sharpmem_lib.privacy import PROTOCOL_NAMES, significance

    return [x for p in ("honest", "selena") for x in
            (Markdown(f"**Paired differences against SGD, {PROTOCOL_NAMES[p]}**"),
             significance_view(significance(study.results, p)))]


def lira_gain_views(lira) -> list:
    """Chapter 3: per method (SAM, SharpReg), a title and LiRA's paired TPR gains over SGD per
    memorization group (:func:`gain_table`, index labelled 'memorization group'), to display."""
    from IPython.display import Markdown

    out = []
    for name in ("sam", "sharpreg"):
        out.append(Markdown(f"**{method_label(name)} − SGD, LiRA TPR at 1 % FPR per memorization group** (group 1 = "
                            "most memorized; paired by target; exploratory: p not Holm-adjusted, and optimistic: the "
                            "targets share shadow models, which the paired tests treat as independent)"))
        out.append(gain_table(lira.gains(name), index="quintile").rename(columns={"wins / seeds": "wins / targets"})
                   .rename_axis("memorization group"))
    return out


def target_view(targets: pd.DataFrame) -> pd.DataFrame:
    """:meth:`sharpmem_lib.privacy.PrivacyStudy.target_table` in points: train and test
    accuracy, the generalization gap, the honest best single-query attack and its AUC."""
    out = pd.DataFrame(index=targets.index)
    for col, name in (("train_acc", "train acc (%)"), ("test_acc", "test acc (%)"), ("gap", "gap (points)"),
                      ("single_query", "honest best attack (%)")):
        out[name] = (100 * targets[col]).round(1)
    out["honest best-attack AUC"] = targets["single_auc"].round(3)
    return out


def lira_setup(n_models: int, dataset: str, n_targets: int, pool: int, n_memorization: int, n_nonmembers: tuple,
               min_fpr: float, low_metric: str) -> str:
    """Chapter 3: LiRA's design, the non-members per target (``(min, max)``) and the smallest
    false-positive rate they resolve; says when 0.1 % is out of reach (``low_metric``: the
    column :func:`~sharpmem_lib.attacks.low_fpr_metric` chose)."""
    lo, hi = n_nonmembers
    return (f"{n_models} models per algorithm on {dataset}: {n_targets} targets, each with the other {pool - 1} "
            f"models of its pool as shadows, and {n_memorization} further models that only estimate memorization; "
            f"{lo}{'' if lo == hi else f'–{hi}'} non-members per target, so the smallest resolvable false-positive "
            f"rate is {100 * min_fpr:.2g} %"
            + ("" if low_metric == "tpr@0.1%fpr" else ", too coarse for 0.1 %: the table reports TPR at zero false "
               "positives instead"))


def lira_groups(sizes: Mapping[int, int]) -> str:
    """Chapter 3: how the training points fall into LiRA's memorization groups (``sizes``:
    {group: points}, group 0 = no measured memorization, as from
    :func:`~sharpmem_lib.attacks.group_sizes`); says when there are fewer than five groups."""
    total, k = sum(sizes.values()), max(sizes, default=0)
    zero = sizes.get(0, 0)
    share = f"{100 * zero / total:.1f} %" if total else "0 %"
    out = (f"{zero} of the {total} training points ({share}) have no measured memorization (a score of exactly 0, "
           f"or no estimate) and form a group of their own, left out of the ranking; the other {total - zero} are "
           f"ranked into {_count(k, 'equal-count group')} (1 = most memorized)")
    if k < 5:
        out += f", fewer than five because only {total - zero} points have a non-zero score"
    return out


def _ci_text(t) -> str:
    """'−1.3 points [−2.0, −0.6]' for anything with estimate/ci_low/ci_high (fractions)."""
    ci = (_minus(f" [{100 * t.ci_low:+.1f}, {100 * t.ci_high:+.1f}]")
          if math.isfinite(t.ci_low) and math.isfinite(t.ci_high) else " (no interval)")
    return _points(t.estimate) + ci


def _ci_sign(t) -> int:
    """+1 / −1 when the 95 % interval lies on one side of zero, 0 otherwise (or without one)."""
    if not (math.isfinite(t.ci_low) and math.isfinite(t.ci_high)):
        return 0
    return 1 if t.ci_low > 0 else -1 if t.ci_high < 0 else 0


PREMISE = "the paper's premise (SAM gains accuracy by memorizing atypical points, §3)"


def _ci_text_fine(t) -> str:
    """:func:`_ci_text`, with two decimals when a bound would print as ±0.0 without being 0
    ('+1.8 points [+0.04, +3.52]', not '[+0.0, +3.5]' beside the word 'higher')."""
    bounds = (t.ci_low, t.ci_high)
    if not all(math.isfinite(b) for b in bounds) or not any(b != 0 and round(100 * b, 1) == 0 for b in bounds):
        return _ci_text(t)
    return _minus(f"{100 * t.estimate:+.2f} points [{100 * t.ci_low:+.2f}, {100 * t.ci_high:+.2f}]")


def gap_sentence(method: str, train=None, gap=None) -> str:
    """Chapter 3 and the results page: ``method`` − SGD in train accuracy (``train``) and in
    the generalization gap, train − test accuracy (``gap``), each a paired test (estimate,
    ci_low, ci_high; fractions) or None. A train-accuracy difference whose 95 % interval
    excludes 0 is stated with its interval, and then the gap difference always follows with
    its own (a resolved gap difference on its own too). A resolved gap difference comes with
    what it predicts on its own: a threshold attack feeds on the gap, so a smaller gap alone
    predicts a lower attack accuracy (a larger one a higher), whatever memorization does.
    Empty when neither interval excludes 0."""
    m = method_label(method)
    parts = []
    if train is not None and _ci_sign(train):
        parts.append(f"its train accuracy is {'higher' if _ci_sign(train) > 0 else 'lower'} than SGD's "
                     f"({_ci_text_fine(train)})")
    if gap is not None and (_ci_sign(gap) or parts):
        how = ({1: "larger than", -1: "smaller than"}.get(_ci_sign(gap), "not distinguishable from"))
        parts.append(f"its generalization gap (train − test accuracy) is {how} SGD's ({_ci_text_fine(gap)})")
    if not parts:
        return ""
    head = f"Paired by seed, {m}'s " + " and ".join(parts).removeprefix("its ")
    if gap is not None and _ci_sign(gap):
        word = "smaller" if _ci_sign(gap) < 0 else "larger"
        lower = "lower" if _ci_sign(gap) < 0 else "higher"
        head += (f": a {word} gap alone predicts a {lower} attack accuracy than SGD's, whatever memorization does")
    return head + "."


def _recipe_words(recipe: str) -> str:
    """'small CNNs, fashion_cnn,': a recipe's model in words, then its name."""
    from sharpmem_lib.recipes import get_recipe

    try:
        model = get_recipe(recipe).model
    except (KeyError, ValueError):
        return recipe
    return f"{_MODELS.get(model, f'{model} models')}, {recipe},"


def chapters_differ(recipe3: str | None = None, recipe4: str | None = None, dataset3: str | None = None,
                    dataset4: str | None = None, weights3: str = "best-validation weights") -> str:
    """Why chapter 3's Table 1 numbers and chapter 4's SharpReg − SGD numbers differ: always the
    weights attacked (best-validation in chapter 3, last-epoch in chapter 4); also the recipe
    (model and training) and the dataset when those differ, e.g. on the laptop profile
    ('fashion_cnn (small CNNs) in chapter 3, fashion_mlp (MLPs) in chapter 4'). Recipes not
    known (None): the weights only."""
    parts = []
    if dataset3 and dataset4 and dataset3 != dataset4:
        parts.append(f"the dataset ({dataset_name(dataset3)} in chapter 3, {dataset_name(dataset4)} in chapter 4)")
    if recipe3 and recipe4 and recipe3 != recipe4:
        parts.append(f"their recipe, architecture included ({_recipe_words(recipe3)} in chapter 3; "
                     f"{_recipe_words(recipe4)} in chapter 4)")
    if weights3 != "last-epoch weights":  # chapter 4 attacks every model's last-epoch weights
        parts.append(f"the weights attacked ({weights3.removesuffix(' weights')} in chapter 3, last-epoch in "
                     "chapter 4)")
    if not parts:
        return "The two chapters attack models of the same recipe at the same (last-epoch) weights."
    what = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and in " + parts[-1]
    return f"The two chapters' models differ in {what}, so their numbers differ."


def table1_attack_note(v: Verdict, weights: str, paper_effect: float | None = None, method: str = "SharpReg",
                       differ: str | None = None) -> str:
    """The results page, beside chapter 4's confirmatory SharpReg − SGD attack test: what
    chapter 3's Table 1 rows say about the same difference (``v``: its honest best
    single-query attack verdict, at ``weights``), whether the paper's own effect
    (``paper_effect``, a fraction: CIFAR-100's) lies outside its interval, and how the two
    chapters' models differ (``differ``: :func:`chapters_differ`; default: in their weights)."""
    head = f"Chapter 3's Table 1 models ({weights}, n = {v.n}) give {method} − SGD {_ci_text(v)}"
    if v.outcome == "insufficient":
        return head + ": too few seeds for a test, insufficient data."
    p = f"Holm-adjusted p = {_p(v.p_adjusted)} over {v.family_size} tests"
    if v.outcome in ("reproduced", "opposite"):
        head += f" ({p}): {v.outcome}"
    elif _ci_sign(v):
        moves = "raises" if _ci_sign(v) > 0 else "lowers"
        head += (f": by the unadjusted interval {method} {moves} attack accuracy there, but short of its Holm level "
                 f"({p}): not resolved")
    else:
        head += f" ({p}): not resolved"
    low, high, name = _test_interval(v)
    if paper_effect is not None and math.isfinite(low) and not low <= paper_effect <= high:
        head += f"; its {name} excludes the paper's {100 * paper_effect:+.1f}".replace("-", "−") + \
            " points on CIFAR-100"
    return head + ". " + (differ or chapters_differ())


def premise_sentence(acc: Verdict, gap=None, method: str = "sam", train=None) -> str:
    """Chapter 3 and the results page: does the paper's premise hold here? ``acc``: the
    verdict of ``method`` − SGD in test accuracy, paired by seed (the paper: +, Table 1);
    ``gap`` and ``train``: the paired tests (estimate, ci_low, ci_high) of ``method`` − SGD
    in the generalization gap (train − test accuracy) and in train accuracy, or None. Held:
    the verdict is reproduced; fails: opposite; otherwise not resolved. In every branch, a
    train-accuracy or gap difference whose interval excludes 0 follows (:func:`gap_sentence`),
    with what a smaller (larger) gap alone predicts for the attack."""
    m = method_label(method)
    if acc.outcome == "insufficient":
        return f"Too few seeds to test {PREMISE} here: insufficient data."
    g = gap_sentence(method, train, gap)
    g = f" {g}" if g else ""
    if _exploratory(acc):  # outside the Holm family: its unadjusted interval and p, said as such
        why = ("the paper's datasets disagree on this sign, so it is outside the Holm family"
               if acc.expected_sign == 0 else "outside the Holm family")
        ev = f"{_ci_text(acc)}, p = {_p(acc.p_value)}, exploratory: {why}"
        if _ci_sign(acc) < 0:
            return (f"{m} is less accurate than SGD here ({ev}): the accuracy gain the paper's mechanism starts from "
                    "is absent at this scale." + g)
        if _ci_sign(acc) > 0:
            return f"{m} is more accurate than SGD here ({ev}), as {PREMISE} requires." + g
        return (f"{m}'s test accuracy is not distinguishable from SGD's here ({ev}): {PREMISE} is neither confirmed "
                "nor refuted at this scale." + g)
    if acc.outcome == "reproduced":
        return f"{m} is more accurate than SGD here ({_ci_text(acc)}), as {PREMISE} requires." + g
    if acc.outcome == "opposite":
        return (f"{m} is less accurate than SGD here ({_ci_text(acc)}), so {PREMISE} does not hold at this "
                "scale." + g)
    if _ci_sign(acc) != 0:  # the unadjusted interval excludes 0, but the chapter's Holm correction does not resolve it
        word = "lower" if _ci_sign(acc) < 0 else "higher"
        return (f"{m}'s test accuracy is {word} than SGD's here by the unadjusted 95 % interval ({_ci_text(acc)}), "
                f"but not resolved after the chapter's Holm correction: {PREMISE} is neither confirmed nor refuted "
                "at this scale." + g)
    return (f"{m}'s test accuracy is not distinguishable from SGD's here ({_ci_text(acc)}): {PREMISE} is neither "
            "confirmed nor refuted at this scale." + g)


def paper_effects(paper: pd.DataFrame, method: str, metric: str = "single_query",
                  baseline: str = "sgd") -> dict[str, float]:
    """``method`` − ``baseline`` in ``metric`` (a fraction) per dataset of the paper's Table 1
    (:func:`sharpmem_lib.paper.paper_table1`)."""
    out = {}
    for dataset in paper.index.get_level_values("dataset").unique():
        if (dataset, method) in paper.index and (dataset, baseline) in paper.index:
            out[dataset] = float(paper.loc[(dataset, method), f"{metric}_mean"]
                                 - paper.loc[(dataset, baseline), f"{metric}_mean"])
    return out


def _test_interval(v: Verdict) -> tuple[float, float, str]:
    """(low, high, name): the interval at the level the test is held to (estimate ±
    ``half_width`` at ``level``, α/m for a confirmatory test) where the verdict records one
    below α, else its 95 % interval; ``name`` says which ('99.7 % interval (the level the test
    is held to, 0.0031)' or '95 % interval')."""
    level, hw = getattr(v, "level", NAN), getattr(v, "half_width", NAN)
    if math.isfinite(level) and math.isfinite(hw) and level < v.alpha:
        return (v.estimate - hw, v.estimate + hw,
                f"{100 * (1 - level):.3g} % interval (the level the test is held to, {level:.2g})")
    return v.ci_low, v.ci_high, "95 % interval"


def paper_effect_note(v: Verdict, effects: Mapping[str, float]) -> str:
    """Beside a verdict: which of the paper's per-dataset effects (:func:`paper_effects`) its
    interval excludes, at the level the test is held to (estimate ± ``half_width`` at
    ``level``, α/m for a confirmatory test, as the power column) where the verdict has one, else
    its 95 % interval, the level named either way; worded as a bound at this build's scale, not as a refutation of
    the paper's effects at theirs. A verdict without an interval (too few seeds) says that
    nothing can be compared; one resolved against the paper's direction whose interval
    excludes every effect says that the difference goes the other way. Empty without effects."""
    if not effects:
        return ""
    if v.outcome == "insufficient" or not (math.isfinite(v.ci_low) and math.isfinite(v.ci_high)):
        return "There is no interval here (too few seeds), so nothing can be set against the paper's effect sizes."
    on = lambda d: f"{_signed(100 * effects[d], '+.2f')} points on {dataset_name(d)}"  # noqa: E731
    low, high, name = _test_interval(v)
    out = [d for d, e in effects.items() if not low <= e <= high]
    inside = [d for d in effects if d not in out]
    scale = (" This bounds the effect in this build's setting (its data, models and scale), not at the paper's: "
             "it does not refute the paper's effects, which are measured on other data with larger models.")
    if not out:
        return (f"The {name} includes the paper's effects (" + "; ".join(on(d) for d in effects)
                + "), so this build can neither confirm nor exclude effects of the paper's size.")
    smallest = min(out, key=lambda d: abs(effects[d]))
    ci = _minus(f"[{100 * low:+.2f}, {100 * high:+.2f}]") + " points"
    if not inside and v.outcome == "opposite":
        return (f"The difference goes the other way from the paper's, so its {name} ({ci}) excludes all "
                f"{len(effects)} of the paper's effects, even the smallest ({on(smallest)})." + scale)
    if not inside:
        return (f"The {name} ({ci}) excludes an effect as large as the paper's smallest ({on(smallest)}), and so all "
                f"{len(effects)} of the paper's effects." + scale)
    return (f"The {name} excludes the paper's effects " + "; ".join(on(d) for d in out) + " but includes "
            + "; ".join(on(d) for d in inside) + "." + scale)


def weights_note(which: str) -> str:
    """Which weights chapter 3's targets are attacked at (its ``which`` parameter), said
    beside Table 1: 'best-validation weights, as in the paper §4', or the last epoch's, with
    what the paper uses."""
    notes = {"best": "best-validation weights, as in the paper §4",
             "final": "last-epoch weights (the paper uses best-validation weights, §4)"}
    if which not in notes:
        raise ValueError(f"which={which!r} is not valid; choose from {list(notes)}")
    return notes[which]


LIRA_SKIPPED = "n/a (LiRA was not run in this profile)"

def dataset_name(key: str) -> str:
    """A dataset as a reader names it in prose (:func:`sharpmem_lib.data.display_name`):
    'cifar100' -> 'CIFAR-100', 'fashion_mnist_cpu' -> 'the 7,000-image Fashion-MNIST sample'; a
    dataset the book does not know (a user's) keeps its key."""
    from sharpmem_lib.data import display_name

    return display_name(key)


_TABLE2_MEASURES = {"test_acc": "test accuracy", "single_query": "the best single-query attack",
                    "multi_query": "the label-only attack"}


def table2_label(key) -> str:
    """A chapter 3 paired test against SGD, key ``("table2", dataset, algorithm, metric,
    protocol)``, named in words for a sentence: 'SAM − SGD in the best single-query attack on
    the 7,000-image Fashion-MNIST sample, honest protocol'."""
    from sharpmem_lib.privacy import PROTOCOL_NAMES

    _, d, a, m, protocol = key
    return (f"{method_label(a)} − SGD in {_TABLE2_MEASURES.get(m, m)} on {dataset_name(d)}, "
            f"{PROTOCOL_NAMES.get(protocol, protocol)}")


def lira_accuracy_sentence(accuracy: pd.DataFrame | None) -> str:
    """Chapter 3, beside LiRA's results: how overfit LiRA's target models are, from
    :attr:`sharpmem_lib.privacy.LiraStudy.accuracy` (per algorithm and target: accuracy on the
    target's own training subset and on the held-out non-members), as means over targets."""
    if accuracy is None or not len(accuracy):
        return "The LiRA targets' accuracies are not available here."
    means = accuracy.groupby("algorithm", sort=False)[["train_acc", "test_acc"]].mean()
    n = int(accuracy.groupby("algorithm", sort=False)["target"].nunique().max())
    parts = [f"{method_label(a)} {pct(r.train_acc)} on its training subset and {pct(r.test_acc)} on held-out "
             f"points (a gap of {100 * (r.train_acc - r.test_acc):.1f} points)" for a, r in means.iterrows()]
    return f"LiRA's target models, mean over {n} targets per algorithm: " + "; ".join(parts) + "."


def premise_sentences(study, dataset: str, mitigation: tuple[str, str] | None = None) -> dict[str, str]:
    """``sam_premise`` (:func:`premise_sentence`, honest protocol; the premise is SAM's),
    ``<method>_gap`` (:func:`gap_sentence`: train accuracy and generalization gap against
    SGD, paired by seed) and ``<method>_paper_effects`` (:func:`paper_effect_note` for the honest best single-query
    attack) on ``dataset``, for SAM and SharpReg where they ran. ``mitigation``: chapter 4's
    (dataset, recipe), so ``chapters_differ`` names what differs besides the weights."""
    from sharpmem_lib.stats import paired_test

    recipe3 = dict(getattr(getattr(study, "config", None), "recipes", None) or {}).get(dataset)
    ds4, recipe4 = mitigation or (None, None)
    weights = {"best": "best-validation weights", "final": "last-epoch weights"}.get(
        getattr(getattr(study, "config", None), "which", "best"), "best-validation weights")
    out: dict[str, str] = {"chapters_differ": chapters_differ(recipe3, recipe4, dataset, ds4, weights)}
    targets = study.target_table()

    def paired(name: str, column: str):
        a, b = targets.loc[(dataset, name), column], targets.loc[(dataset, "sgd"), column]
        common = a.index.intersection(b.index)
        return paired_test(a.loc[common].to_numpy(float), b.loc[common].to_numpy(float))

    for name in ("sam", "sharpreg"):
        acc = study.verdicts.get(("table2", dataset, name, "test_acc", "honest"))
        attack = study.verdicts.get(("table2", dataset, name, "single_query", "honest"))
        if acc is None or attack is None:
            out[f"{name}_paper_effects"] = f"n/a ({method_label(name)} did not run)"
            out.setdefault("sam_premise", out[f"{name}_paper_effects"])
            out[f"{name}_gap"] = out[f"{name}_paper_effects"]
            if name == "sharpreg":
                out["sharpreg_table1_note"] = out[f"{name}_paper_effects"]
            continue
        train, gap = paired(name, "train_acc"), paired(name, "gap")
        out[f"{name}_gap"] = gap_sentence(name, train, gap) or (
            f"{method_label(name)}'s train accuracy ({_ci_text(train)}) and generalization gap ({_ci_text(gap)}) are "
            "not distinguishable from SGD's here, paired by seed.")
        if name == "sam":
            out["sam_premise"] = premise_sentence(acc, gap, name, train)
        else:
            out["sharpreg_table1_note"] = table1_attack_note(
                attack, weights, paper_effects(study.paper, name).get("cifar100"), differ=out["chapters_differ"])
        out[f"{name}_paper_effects"] = (paper_effect_note(attack, paper_effects(study.paper, name))
                                        or f"The paper's Table 1 gives no effect of {method_label(name)} to compare.")
    return out


def chapter4_setup(profile: str) -> tuple[str, str] | None:
    """Chapter 4's (dataset, recipe) in ``profile`` (notebooks/params/<profile>.yaml), for
    chapter 3's note on how the two chapters' models differ; None where it cannot be read."""
    from sharpmem_lib.profiles import load_profile
    from sharpmem_lib.provenance import PARAMS_DIR

    try:
        p = load_profile(profile, PARAMS_DIR).get("04_mitigation", {})
    except (OSError, ValueError):
        return None
    return (p["dataset"], p["recipe"]) if "dataset" in p and "recipe" in p else None


def chance_note(chance: Mapping[str, tuple[float, float]]) -> str:
    """Chapter 3, beside its verdicts and directions: the datasets whose honest attacks are at
    chance (:func:`sharpmem_lib.privacy.chance_datasets`: dataset -> AUC range over targets),
    whose rows stay in the Holm family (chosen before the results) but carry no membership
    signal; empty when there is none."""
    if not chance:
        return ""
    def auc(lo_hi) -> str:  # min–max of the finite ends, whichever order they come in
        ends = sorted(x for x in lo_hi if x is not None and math.isfinite(x))
        return f"AUC {ends[0]:.2f}–{ends[-1]:.2f} over its targets" if ends else "no finite AUC"
    names = sorted(chance)
    parts = [f"on {dataset_name(d)} the honest attacks are at chance ({auc(chance[d])})" for d in names]
    which = "its rows carry" if len(names) == 1 else "their rows carry"
    return (f"{'; '.join(parts)[0].upper()}{'; '.join(parts)[1:]}, so {which} no membership signal and their signs "
            "are not evidence either way (the rows stay in the Holm family, which was fixed before the results).")


def privacy_sentences(study, mitigation: tuple[str, str] | None = None) -> dict[str, Any]:
    """Every value chapter 3's prose and the results page quote, by glue name, computed from
    a :class:`sharpmem_lib.privacy.PrivacyStudy` (numbers as text; the tables as frames).
    ``mitigation``: chapter 4's (dataset, recipe) (:func:`chapter4_setup`), for
    ``chapters_differ``."""
    from sharpmem_lib.privacy import format_table1

    verdicts, sign = study.verdicts, study.paper_sign
    dirs = study.directions
    settled = dirs[dirs["agrees"].notna()]
    out: dict[str, Any] = {f"table1_{p}": format_table1(study.tables[p]) for p in ("selena", "honest")}
    out["table1_weights"] = weights_note(study.config.which)
    agree = int(settled["agrees"].astype(bool).sum())
    out |= {"table1_paper": format_table1(study.paper), "directions": dirs, "n_directions": str(len(settled)),
            "n_agree": f"{agree} {'has' if agree == 1 else 'have'}", "disagree_list": disagreement_list(dirs)}
    from sharpmem_lib.privacy import chance_datasets

    out["chance_note"] = chance_note(chance_datasets(study.target_table()))
    gap = study.protocol_gap()
    gaps = {k: v for k, v in verdicts.items() if k[0] == "gap" and math.isfinite(v.estimate)}
    effects = {k: v for k, v in verdicts.items() if k[0] == "table2" and k[3] == "single_query" and k[4] == "honest"
               and math.isfinite(v.estimate)}
    out["max_gap"] = f"{gap.to_numpy().max():.1f}"
    if gaps and effects:
        kg = max(gaps, key=lambda k: abs(gaps[k].estimate))
        ke = max(effects, key=lambda k: abs(effects[k].estimate))
        out["protocol_vs_optimizer"] = protocol_vs_optimizer(
            gaps[kg], effects[ke], f"{method_label(kg[2])} on {dataset_name(kg[1])}, exploratory",
            f"{method_label(ke[2])} on {dataset_name(ke[1])}, in the chapter's Holm family", of=len(gaps))
    else:
        out["protocol_vs_optimizer"] = "No paired comparison of the protocols and the optimizers could be made."
    family = {k: v for k, v in verdicts.items() if v.role == "confirmatory"}
    out |= significance_counts(family)
    out["family_note"] = family_note(int(out["n_tests"]))
    for protocol, key in (("honest", "resolution_verdict"), ("selena", "resolution_verdict_selena")):
        out[key] = table2_verdict({table2_label(k): v for k, v in family.items()
                                   if k[0] == "table2" and k[4] == protocol and (k[2], k[3]) in sign})
    c = study.config
    if study.boundary is not None:
        b = study.boundary
        out["boundary_setup"] = boundary_setup(dataset_name(c.boundary_dataset), c.boundary_points,
                                               int(b["n_eval"].iloc[0]))
        out["boundary_best"], out["boundary_best_selena"] = boundary_best(b), boundary_best_selena(b)
    else:
        out |= {"boundary_setup": "skipped in this run", "boundary_best": "n/a (skipped)",
                "boundary_best_selena": "n/a (skipped)"}
    if study.lira is not None:
        lira, q = study.lira, study.lira.quintile_means()
        last = lira.n_ranked  # the least memorized group among points with a measured score
        out |= {f"lira_{m}_q{k}": f"{100 * q[(m, g)]:.1f} %" for m, k, g in (("sgd", 1, 1), ("sgd", 5, last),
                                                                               ("sam", 1, 1), ("sharpreg", 1, 1))}
        n_non = lira.per_target["n_nonmembers"]
        out["lira_setup"] = lira_setup(c.lira_models, dataset_name(lira.dataset), c.lira_targets, len(lira.split.pool),
                                       c.lira_memorization_models, (n_non.min(), n_non.max()),
                                       lira.per_target["min_fpr"].max(), lira.low_metric)
        if lira.group_sizes:
            out["lira_setup"] += "; " + lira_groups(lira.group_sizes)
        out |= {f"lira_{m}_q1_diff": evidence(verdicts[("lira", m, 1)], "targets") for m in ("sam", "sharpreg")}
        out["lira_caveat"] = f"A caveat: {LIRA_DEPENDENCE}."
        out["lira_accuracy"] = lira_accuracy_sentence(getattr(lira, "accuracy", None))
        out["lira_verdict"] = lira_verdict(verdicts[("lira", "sam", 1)], verdicts[("lira", "sharpreg", 1)],
                                           c.lira_memorization_models, lira.group_sizes,
                                           getattr(lira, "accuracy", None))
    else:
        out |= {k: LIRA_SKIPPED for k in ("lira_sgd_q1", "lira_sgd_q5", "lira_sam_q1", "lira_sharpreg_q1",
                                          "lira_sam_q1_diff", "lira_sharpreg_q1_diff", "lira_setup",
                                          "lira_accuracy")}
        out["lira_verdict"] = out["lira_caveat"] = "LiRA was skipped in this run."
    first = next(iter(c.recipes))  # the results page's verdict table: the first dataset's best single-query attack
    out |= premise_sentences(study, first, mitigation)
    for name in ("sam", "sharpreg"):
        for protocol, suffix in (("honest", ""), ("selena", "_selena")):
            key = ("table2", first, name, "single_query", protocol)
            if key in verdicts:
                out |= claim_values(f"{name}_attack{suffix}", verdicts[key])
    return out
