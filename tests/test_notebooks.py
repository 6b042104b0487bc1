"""Notebooks and the book: pairs in sync, profiles valid, every notebook runs, the book builds."""

import ast
import re
from pathlib import Path

import jupytext
import papermill
import pytest

from sharpmem_lib.pipeline import REPO_ROOT, main, notebook_paths
from sharpmem_lib.profiles import available_profiles, load_profile, profile_parameters

PARAMS_DIR = REPO_ROOT / "notebooks" / "params"
NOTEBOOKS = notebook_paths()
IDS = [p.stem for p in NOTEBOOKS]


def cells(nb):
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_there_are_chapters():
    assert {"00_data_and_models", "01_toy_example", "04_mitigation"} <= set(IDS)


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=IDS)
def test_first_code_cell_installs_the_library_from_the_configured_repository(ipynb, monkeypatch):
    """Colab: the first code cell installs sharpmem from _config.yml's repository.url (written
    there by `make sync`), only when it is not importable, and while the URL is still the
    placeholder it stops with a message that says what to edit."""
    import importlib.util

    from sharpmem_lib.pipeline import PLACEHOLDER_URL, repository_url

    url = repository_url()
    first = next(c for c in jupytext.read(ipynb).cells if c.cell_type == "code")
    assert "remove-cell" in first.metadata.get("tags", [])
    assert 'find_spec("sharpmem_lib") is None' in first.source
    assert f'REPOSITORY = "{url}"' in first.source, "run `make sync` after editing repository.url in _config.yml"
    assert "git+{REPOSITORY}@" in first.source
    if url == PLACEHOLDER_URL:  # as on a fresh kernel (sharpmem missing); raises before pip would run
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
        with pytest.raises(RuntimeError, match=r"set repository.url in _config.yml .* run `make sync`"):
            exec(first.source, {})


def test_make_sync_writes_the_repository_url_into_every_install_cell(tmp_path):
    from sharpmem_lib.pipeline import write_repository_url

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://example.org/fork/sharpmem\n")
    cell = (REPO_ROOT / "notebooks" / "01_toy_example.py").read_text()
    (tmp_path / "notebooks" / "01_toy_example.py").write_text(cell)
    assert write_repository_url(tmp_path) == [tmp_path / "notebooks" / "01_toy_example.py"]
    new = (tmp_path / "notebooks" / "01_toy_example.py").read_text()
    assert 'REPOSITORY = "https://example.org/fork/sharpmem"' in new
    assert 'if REPOSITORY == "https://github.com/sharpmem/sharpmem":' in new  # the placeholder check stays
    assert write_repository_url(tmp_path) == []


def test_binder_files_build_the_library_with_cpu_torch():
    """Binder (repo2docker) reads binder/: the library installed by postBuild, the same pins
    as requirements.txt except PyTorch's CPU-only wheels (no CUDA in the image)."""
    binder = REPO_ROOT / "binder"
    assert (binder / "runtime.txt").read_text().strip() == "python-3.11"
    assert (REPO_ROOT / "runtime.txt").read_text() == (binder / "runtime.txt").read_text()
    post = (binder / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post and "jupyter-server-mathjax" in post
    assert (binder / "postBuild").stat().st_mode & 0o111  # executable, as repo2docker needs
    assert not (REPO_ROOT / "postBuild").exists()  # repo2docker would ignore it beside binder/

    def pins(path):
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return [line for line in lines if line and not line.startswith("--")]

    root, cpu = pins(REPO_ROOT / "requirements.txt"), pins(binder / "requirements.txt")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in (binder / "requirements.txt").read_text()
    expected = [f"{line}+cpu" if line.split("==")[0] in ("torch", "torchvision") else line for line in root]
    assert cpu == expected, "binder/requirements.txt must pin what requirements.txt pins (torch as +cpu)"
    assert any(line.startswith("torch==") for line in root) and "opacus==" in " ".join(root)


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=IDS)
def test_jupytext_pair_in_sync(ipynb):
    """The .py (percent format) is the source; the .ipynb must hold the same cells."""
    py = ipynb.with_suffix(".py")
    assert py.exists(), f"{py.name} missing: every notebook is a jupytext pair"
    assert cells(jupytext.read(py)) == cells(jupytext.read(ipynb)), (
        f"{ipynb.name} is out of sync with {py.name}: run `jupytext --sync {py}`")
    assert all(not c.get("outputs") for c in jupytext.read(ipynb).cells), f"{ipynb.name}: commit without outputs"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=IDS)
def test_one_parameters_cell_with_profile(ipynb):
    nb = jupytext.read(ipynb)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "profile" in papermill.inspect_notebook(ipynb)


def test_profiles_exist():
    assert {"smoke", "default", "paper"} <= set(available_profiles(PARAMS_DIR))


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=IDS)
def test_profile_sets_only_known_parameters(profile, ipynb):
    params = profile_parameters(profile, PARAMS_DIR, ipynb.stem, papermill.inspect_notebook(ipynb))
    assert params["profile"] == profile


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=IDS)
def test_default_profile_equals_the_notebook_defaults(ipynb):
    """Running a notebook by hand (Colab) must give what `make book` gives."""
    known = papermill.inspect_notebook(ipynb)
    for name, value in load_profile("default", PARAMS_DIR)[ipynb.stem].items():
        assert ast.literal_eval(known[name]["default"]) == value, f"{ipynb.stem}: {name}"


def test_bad_profile_and_parameters_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"profile='nope' is not valid; choose one of \[.*'default'.*\]"):
        load_profile("nope", PARAMS_DIR)
    (tmp_path / "typo.yaml").write_text("01_toy_example:\n  seedz: 3\n")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['seedz'\].*valid parameters are"):
        profile_parameters("typo", tmp_path, "01_toy_example",
                           papermill.inspect_notebook(REPO_ROOT / "notebooks" / "01_toy_example.ipynb"))


def test_cli_rejects_bad_profile_before_running(capsys):
    assert main(["build", "--profile", "nope", "--out", "/nonexistent/never-written"]) == 2
    assert "profile='nope' is not valid" in capsys.readouterr().err
    assert not Path("/nonexistent/never-written").exists()


@pytest.mark.parametrize("ipynb, params, message", [
    ("01_toy_example", {"sam_rho": -1.0}, "sam_rho=-1.0"),
    ("00_data_and_models", {"recipe": "cifar_wrn"}, r"recipe='cifar_wrn' is not valid; choose one of"),
    ("00_data_and_models", {"dataset": "cifar1000"}, "dataset='cifar1000' is not valid"),
    ("00_data_and_models", {"algorithms": ["sgd", "adam"]}, r"algorithms\[1\]='adam' is not valid; choose one of"),
    ("04_mitigation", {"lams": [0.0, -1.0]}, r"lams\[1\]=-1.0 is not valid"),
    ("04_mitigation", {"dp_noise": 0.0}, "dp_noise=0.0 is not valid"),
    ("04_mitigation", {"sharpness_iters": 0}, "sharpness_iters=0"),
    ("03_privacy_tables", {"boundary_methods": ["pgd"]}, "boundary_methods='pgd' is not valid"),
    ("03_privacy_tables", {"boundary_dataset": "cifar10"}, "boundary_dataset=.cifar10. is not valid; choose one of"),
])
def test_notebook_rejects_bad_parameter_value(tmp_path, ipynb, params, message):
    """A bad value stops the notebook with the parameter's name, before any training."""
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        papermill.execute_notebook(str(REPO_ROOT / "notebooks" / f"{ipynb}.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters=params, kernel_name="python3", progress_bar=False,
                                   cwd=str(tmp_path))
    assert not (tmp_path / "results").exists()  # nothing trained


@pytest.mark.slow
def test_every_notebook_executes_with_smoke_profile(smoke_book):
    build_dir, _ = smoke_book
    for ipynb in NOTEBOOKS:
        executed = jupytext.read(build_dir / "_build" / "source" / "notebooks" / ipynb.name)
        errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


@pytest.mark.slow
def test_book_builds_with_every_chapter(smoke_book):
    build_dir, index = smoke_book
    html_dir = build_dir / "_build" / "html"
    assert index.exists()
    for ipynb in NOTEBOOKS:
        page = (html_dir / "notebooks" / f"{ipynb.stem}.html").read_text()
        # no error cell, and no warning printed to stderr on the page
        assert "Traceback" not in page and "output traceback" not in page and "output stderr" not in page
        # figures are embedded PNGs (plots.show_figure) or image files that exist, never empty
        images = re.findall(r'<img[^>]+src="(data:image/png;base64,[^"]+|[^"]+\.png)"', page)
        assert images, f"{ipynb.stem}: no figure"
        for src in images:
            if src.startswith("data:"):
                assert len(src) > 1000
            else:
                assert (html_dir / "notebooks" / src).resolve().stat().st_size > 1000
        # provenance shows the profile that produced the page
        assert "smoke" in page and "git commit" in page
        # the launch buttons open the committed notebook
        assert "colab.research.google.com" in page and f"notebooks/{ipynb.name}" in page


@pytest.mark.slow
def test_book_stages_benchmark_reads_the_executed_chapters(smoke_book):
    """benchmarks/book_stages.py splits each chapter's time by cell kind; check it on the
    smoke build (the full benchmark builds the book twice, too slow for the tests)."""
    import runpy

    bench = runpy.run_path(str(REPO_ROOT / "benchmarks" / "book_stages.py"))
    build_dir, _ = smoke_book
    for ipynb in NOTEBOOKS:
        stages = bench["cell_stages"](build_dir / "_build" / "source" / "notebooks" / ipynb.name)
        assert set(stages) == {"compute", "figures & tables", "other"}
        assert stages["compute"] > 0 and all(v >= 0 for v in stages.values())
    times = {}
    bench["_collect"]("wall time per stage: 00_data_and_models 1.5 s, jupyter-book build 3.0 s", times)
    assert times == {"00_data_and_models": 1.5, "jupyter-book build": 3.0}


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=IDS)
def test_papermill_reads_every_parameter(ipynb):
    """papermill must parse every assignment of the parameters cell (a comment with '='
    can make it skip a line, and then warn that a passed value is 'unknown')."""
    nb = jupytext.read(ipynb)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert set(papermill.inspect_notebook(str(ipynb))) == names



@pytest.mark.slow
def test_api_page_documents_every_public_name(book_html):
    """The API page (generated from docstrings) has an entry for every public function and
    class: every callable in every library module's __all__ (constants are listed in the
    module docstrings)."""
    import importlib

    from sharpmem_lib.pipeline import library_modules

    page = (book_html / "book" / "api.html").read_text()
    missing = []
    for name in library_modules():
        module = importlib.import_module(name)
        for member in getattr(module, "__all__", []):
            obj = getattr(module, member, None)
            if not callable(obj):
                continue
            home = getattr(obj, "__module__", name)
            if f'id="{name}.{member}"' not in page and f'id="{home}.{member}"' not in page:
                missing.append(f"{name}.{member}")
    assert not missing, f"not on the API page: {missing[:30]}"


MAX_CODE_LINES = 80  # issue 15: a chapter is prose plus a few study calls, written like chapter 1


def code_lines(source: str) -> int:
    """Lines of code a reader of the chapter's source meets: every line of every code cell
    (parameters, install and check cells included) that is neither blank nor a comment."""
    nb = jupytext.reads(source, fmt="py:percent")
    return sum(1 for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
               if line.strip() and not line.strip().startswith("#"))


def test_code_lines_counts_what_a_reader_reads():
    source = ('# %% [markdown]\n# Prose\n# x = 1 is prose\n\n# %% tags=["parameters"]\nseeds = 3  # comment\n'
              '\n# a comment line\n# %%\nf(a,\n  b)\n    # indented comment\n')
    assert code_lines(source) == 3


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=IDS)
def test_chapter_is_thin(ipynb):
    """Study functions live in the library and verdict sentences in report.py; a chapter
    stays at or below MAX_CODE_LINES code lines."""
    n = code_lines(ipynb.with_suffix(".py").read_text())
    assert n <= MAX_CODE_LINES, f"{ipynb.stem} has {n} code lines (at most {MAX_CODE_LINES})"
