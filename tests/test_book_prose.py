"""The book's hand-written pages read as prose for ML researchers (session 9 referee): every
glued sentence is said once on the results page, and no page's prose leans on issue numbers
or the library's internal names."""

import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_the_results_page_says_each_glued_sentence_once():
    text = (BOOK / "results.md").read_text()
    keys = re.findall(r"\{glue:text\}`([^`]+)`", text)
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    assert not repeated, f"glued more than once on the results page: {repeated}"


@pytest.mark.parametrize("page", ["results.md", "methods.md", "intro.md"])
def test_book_pages_name_no_issue_numbers_or_internal_verdict_functions(page):
    prose = re.sub(r"\{glue[^`]*`[^`]+`|```.*?```", "", (BOOK / page).read_text(), flags=re.S)
    assert not re.search(r"\bissues? \d+", prose, flags=re.I), page
    assert "holm_verdicts" not in prose.replace("`stats.holm_verdicts`", "") or page == "methods.md", page
    assert "fashion_mnist_cpu" not in prose, page


@pytest.mark.parametrize("chapter", ["01_toy_example", "02_memorization_buckets", "03_privacy_tables",
                                     "04_mitigation"])
def test_chapter_markdown_names_no_issue_numbers(chapter):
    markdown = []
    for cell in (NOTEBOOKS / f"{chapter}.py").read_text().split("# %%")[1:]:
        if cell.startswith(" [markdown]"):
            markdown.append(cell)
    prose = "\n".join(markdown)
    assert not re.search(r"\bissues? \d+", prose, flags=re.I), chapter
    assert "fashion_mnist_cpu" not in prose, chapter
