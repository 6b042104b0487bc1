"""The book's plumbing, without building the book: glue, figures, the staged MathJax, the
API page, the tidied notebooks, the bibliography labels, docstrings on the API page."""

from __future__ import annotations

import base64
import importlib.util
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sharpmem_lib import pipeline, plots, report  # noqa: E402
from sharpmem_lib.pipeline import REPO_ROOT  # noqa: E402


def _displayed(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs))
    return shown


def test_glue_shows_the_value_outside_the_book(monkeypatch):
    """Colab and plain Jupyter print {glue} roles literally: the value must be in the cell."""
    monkeypatch.delenv(report.BOOK_BUILD_ENV, raising=False)
    shown = _displayed(monkeypatch)
    report.glue("claim_verdict", "SAM beats SGD on atypical points")
    assert len(shown) == 1
    bundle = shown[0]._repr_mimebundle_()
    assert bundle["text/plain"] == "claim_verdict: SAM beats SGD on atypical points"
    assert "SAM beats SGD" in bundle["text/html"] and "<code>claim_verdict</code>" in bundle["text/html"]
    table = pd.DataFrame({"a": [1]})
    report.glue("partitions", table)
    assert shown[-1].equals(report.readable_table(table))  # shown as the book shows it


def test_glue_records_for_myst_nb_in_the_book_build(monkeypatch):
    monkeypatch.setenv(report.BOOK_BUILD_ENV, "1")
    calls = []
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value, display)))
    shown = _displayed(monkeypatch)
    report.glue("x", "value")
    assert calls == [("x", "value", False)] and shown == []


def test_figure_html_is_numbered_captioned_and_sharp():
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [0, 1])
    html = plots.figure_html(fig, "3a", "Accuracy per bucket <SGD & SAM>", alt="Bar chart of accuracy per bucket")
    assert "<figcaption><strong>Figure 3a:</strong> Accuracy per bucket &lt;SGD &amp; SAM&gt;</figcaption>" in html
    assert 'alt="Bar chart of accuracy per bucket"' in html and 'width="576"' in html  # 6 in x 96 CSS px
    png = base64.b64decode(re.search(r'base64,([^"]+)"', html).group(1))
    width = int.from_bytes(png[16:20], "big")  # the PNG header's width field
    assert width == 2 * 576  # two image pixels per CSS pixel
    for bad in (dict(number=""), dict(caption="  "), dict(alt="")):
        kwargs = dict(number="1", caption="c", alt="a") | bad
        with pytest.raises(ValueError, match=f"{next(iter(bad))}="):
            plots.figure_html(fig, **kwargs)
    plt.close(fig)


def test_show_figure_closes_the_figure(monkeypatch):
    shown = _displayed(monkeypatch)
    fig, _ = plt.subplots()
    plots.show_figure(fig, "S1", "caption", "alt text that says what it shows")
    assert not plt.fignum_exists(fig.number)
    assert shown[0]._repr_mimebundle_()["text/plain"] == "Figure S1: caption"


def test_figures_use_readable_fonts_and_fit_the_column():
    """Every text in a book figure is at least 8 pt, and the figure at most 9.5 in wide."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame([{"method": m, "seed": s, "bucket": b, "acc": rng.uniform(0.6, 1)}
                          for m in ("sgd", "sam") for s in range(3) for b in range(1, 6)])
    fig = plots.bucket_accuracy_figure(table)
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
    assert min(sizes) >= 8 and fig.get_size_inches()[0] <= 9.5
    plt.close(fig)


def test_tidy_for_reading_shows_injected_parameters_and_drops_widgets(tmp_path):
    """A laptop or smoke book shows the values its profile injected (the parameters cell
    above shows the notebook's defaults, the default profile's), headed by what they are."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("# Parameters\nprofile = 'smoke'\nseeds = 2\n",
                                       metadata={"tags": ["injected-parameters", "remove-cell"]})
    bar = nbformat.v4.new_output("display_data", data={pipeline.WIDGET_VIEW: {"model_id": "x"}, "text/plain": "0%|"})
    text = nbformat.v4.new_output("stream", name="stdout", text="done\n")
    work = nbformat.v4.new_code_cell("train()", outputs=[bar, text])
    nb.cells = [params, work]
    nb.metadata["widgets"] = {"state": {}}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    pipeline.tidy_for_reading(path)
    out = nbformat.read(path, as_version=4)
    assert out.cells[0].metadata.tags == ["injected-parameters"]
    header, *rest = out.cells[0].source.split("\n")
    assert header == ("# Parameters of this run: the 'smoke' profile (notebooks/params/smoke.yaml), replacing the "
                      "defaults above")
    assert rest == ["profile = 'smoke'", "seeds = 2", ""]
    pipeline.tidy_for_reading(path)  # a second pass leaves it as it is
    assert nbformat.read(path, as_version=4).cells[0].source == out.cells[0].source
    assert [o.output_type for o in out.cells[1].outputs] == ["stream"]
    assert "widgets" not in out.metadata


def test_staged_mathjax_drops_what_the_book_never_loads(tmp_path):
    if pipeline.mathjax_dir() is None:
        pytest.skip("jupyter-server-mathjax is not installed")
    pipeline.stage_book(tmp_path / "stage")
    mj = tmp_path / "stage" / "_mathjax" / "mathjax"
    assert (mj / "MathJax.js").exists() and (mj / "fonts" / "HTML-CSS" / "STIX-Web").is_dir()
    assert (mj / "extensions" / "a11y" / "accessibility-menu.js").exists()  # loaded by the config
    assert not (mj / "jax" / "output" / "SVG").exists()
    assert sorted(p.name for p in (mj / "localization").iterdir()) == ["en"]
    assert not [p for p in (mj / "extensions" / "a11y").iterdir() if p.name != "accessibility-menu.js"]
    size = sum(p.stat().st_size for p in mj.rglob("*") if p.is_file())
    assert size < 4e6, f"{size / 1e6:.1f} MB of MathJax"
    api = (tmp_path / "stage" / "book" / "api.md").read_text()
    assert ".. automodule:: sharpmem_lib.stats" in api and ".. automodule:: sharpmem_lib.report" in api


def test_api_page_lists_every_public_module():
    import pkgutil

    import sharpmem_lib

    modules = pipeline.library_modules()
    on_disk = {m.name for m in pkgutil.walk_packages(sharpmem_lib.__path__, "sharpmem_lib.")}
    assert {m for m in on_disk if "._" not in m and not m.split(".")[-1].startswith("_")} == set(modules)
    sections = pipeline.api_page_sections(["sharpmem_lib.stats"])
    assert sections == ("\n## `sharpmem_lib.stats`\n\n```{eval-rst}\n.. automodule:: sharpmem_lib.stats\n"
                        "   :members:\n```\n")


def _book_ext():
    spec = importlib.util.spec_from_file_location("sharpmem_book", REPO_ROOT / "book" / "_ext" / "sharpmem_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bibliography_labels_are_author_year():
    from pybtex.database import parse_string

    ext = _book_ext()
    bib = parse_string((REPO_ROOT / "book" / "references.bib").read_text(), "bibtex")
    labels = {key: ext.author_year_label(entry) for key, entry in bib.entries.items()}
    assert labels["foret2020sam"] == "Foret et al., 2020"
    assert labels["feldman2020does"] == "Feldman, 2020"
    assert labels["feldman2020neural"] == "Feldman and Zhang, 2020"
    assert labels["kim2023memorization"] == "Kim et al., 2023"  # the reproduced paper, cited and linked
    assert "arxiv.org/abs/2310.00488" in bib.entries["kim2023memorization"].fields["url"]
    style = ext.AuthorYearLabelStyle()
    twins = [bib.entries["feldman2020does"], bib.entries["feldman2020does"]]
    assert list(style.format_labels(twins)) == ["Feldman, 2020a", "Feldman, 2020b"]


def test_docstrings_that_are_not_rest_render_verbatim():
    ext = _book_ext()
    # |x| is an absolute value, not a substitution: escaped, and the docstring stays reST
    assert ext.readable_docstring(["Entropy of |infl(i, j)| over ``a|b``."]) == [
        r"Entropy of \|infl(i, j)\| over ``a|b``."]
    broken = ["Returns", "  an indented line", "then unindented:", "* a list", "without a blank line"]
    assert ext.readable_docstring(broken)[:2] == ["::", ""]
    uses = ["Uses :func:`sharpmem_lib.stats.holm`."]
    assert ext.readable_docstring(uses) == uses


def test_config_sets_mathjax_to_the_shipped_fonts():
    import yaml

    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    html_css = config["sphinx"]["config"]["mathjax2_config"]["HTML-CSS"]
    assert html_css["availableFonts"] == ["STIX-Web"] and html_css["webFont"] == "STIX-Web"
    fonts = pipeline.mathjax_dir()
    if fonts is not None:
        html_css = fonts / "fonts" / "HTML-CSS"
        assert (html_css / "STIX-Web").is_dir() and not (html_css / "TeX").exists()
    assert config["parse"]["myst_substitutions"]["repository_url"] == config["repository"]["url"]


def test_provenance_shows_every_parameter_in_full():
    """pandas cuts displayed cells at 50 characters; provenance must not."""
    from sharpmem_lib.provenance import provenance_table

    long = {"train (sam)": "TrainConfig(" + ", ".join(f"knob_{i}={i}" for i in range(20)) + ")"}
    html = provenance_table("smoke", long)._repr_html_()
    assert repr(long["train (sam)"]) in html and "..." not in html
    assert 'class="dataframe sharpmem-full"' in html


def test_claim_number_and_glue_claim(monkeypatch):
    from sharpmem_lib.stats import Verdict

    gain = Verdict("reproduced", 0.024, 0.003, 0.045, 0.01, 0.03, 5, 1, method="paired t-test")
    assert report.claim_number(gain) == "+2.4 points [+0.3, +4.5], n = 5"
    trend = Verdict("not resolved", -0.41, -0.7, 0.05, 0.2, 0.4, 12, -1, method="permutation (within seeds)")
    assert report.claim_number(trend) == "ρ = −0.41 [−0.70, +0.05], n = 12"
    nan = float("nan")
    assert report.claim_number(Verdict("insufficient", 0.02, nan, nan, nan, nan, 2, 1)) == \
        "+2.0 points (no interval), n = 2"
    monkeypatch.delenv(report.BOOK_BUILD_ENV, raising=False)
    shown = _displayed(monkeypatch)
    report.glue_claim("toy", gain)
    assert [o.name for o in shown] == ["claim_toy_number", "claim_toy_power", "claim_toy_status"]
    assert shown[2].value == "reproduced" and shown[1].value.startswith("n/a: no test level recorded")


def test_readable_table_prints_like_a_paper():
    df = pd.DataFrame({"agrees": [True, None], "test_acc_p": [7.252e-05, 0.51234], "attack_nonmembers": [3, 4]},
                      index=pd.Index(["sam", "sharpreg"], name="algorithm"))
    out = report.readable_table(df)
    assert list(out.columns) == ["agrees", "test accuracy (p)", "attack non-members"]
    assert out["agrees"].tolist() == ["yes", "–"]
    assert out["test accuracy (p)"].tolist() == ["7.25 × 10⁻⁵", "0.512"]
    assert out["attack non-members"].tolist() == [3, 4]
    assert report.readable_name("single_query_mean") == "single-query mean"
    assert report.readable_value(-0.25) == "−0.25" and report.readable_value(False) == "no"


def test_roc_figure_keeps_every_threshold_and_group_tpr_label_fits():
    """Referee L1: roc_curve's default drop_intermediate=True dropped the low-FPR points that a
    log-log ROC is drawn for; Fig. S3.2's one-line x-label ran off the figure."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(0)
    member = np.repeat([1, 0], 200)
    scores = rng.normal(member * 0.5, 1.0)
    fig = plots.roc_figure({"SGD": (member, scores)})
    line = fig.axes[0].get_lines()[0]
    assert len(line.get_xdata()) == len(roc_curve(member, scores, drop_intermediate=False)[0])
    assert len(line.get_xdata()) > len(roc_curve(member, scores)[0])
    table = pd.DataFrame({"algorithm": ["sgd"] * 4, "quintile": [1, 1, 2, 2], "target": [0, 1, 0, 1],
                          "tpr": [0.1, 0.2, 0.05, 0.07]})
    fig = plots.group_tpr_figure(table)
    fig.canvas.draw()
    label = fig.axes[0].xaxis.label
    box = label.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width + 0.5, "the x-label runs off the figure"


def _sweep_summary(xs):
    rows = [{"lam": x, "protocol": p, "diverged": 0, **{f"{m}_{s}": 0.6 + 0.01 * i for m in
                                                         ("test_acc", "single_query", "multi_query")
                                                         for s in ("mean", "std")}}
            for i, x in enumerate(xs) for p in ("honest", "selena")]
    return pd.DataFrame(rows)


def test_a_sweep_of_two_settings_is_drawn_and_captioned_as_two_points():
    """Referee: Figs. 4b/5b's captions read as a curve over a grid of two settings."""
    fig = plots.sweep_figure(_sweep_summary([0.0, 1.5]), "lam", "λ")
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [0.0, 1.5] and [t.get_text() for t in ax.get_xticklabels()] == ["0", "1.5"]
    plt.close(fig)
    caption, alt = plots.sweep_caption(("Test accuracy against λ.", "Two line charts against lambda"), [1.5, 0.0, 1.5],
                                       "λ", "lambda")
    assert caption.endswith("The sweep has two settings, λ = 0 and λ = 1.5: each line joins two points, which shows "
                            "the difference between them, not a trend.")
    assert alt.endswith("only two settings, lambda = 0 and 1.5, each pair of points joined by a straight line")
    three = plots.sweep_caption(("c.", "a"), [0.0, 1.0, 2.0], "λ", "lambda")
    assert three == ("c.", "a")  # a real grid is a trend: unchanged
    assert "Only one setting (ξ = 0.3) is shown" in plots.sweep_caption(("c.", "a"), [0.3], "ξ", "xi")[0]
