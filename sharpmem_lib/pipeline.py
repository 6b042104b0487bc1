"""``make book``: execute every notebook with a profile, then render the Jupyter Book.

The repository's tracked files are never modified. The book sources (``_config.yml``,
``_toc.yml``, ``book/``) are copied to ``_build/source`` and papermill writes the executed
notebooks to ``_build/source/notebooks/``, the same relative paths as the committed ``.ipynb``
files, so the book's Colab/Binder buttons open the committed notebooks. Jupyter Book then
renders with ``execute_notebooks: off`` and ``-W --keep-going`` into ``_build/html``,
so a failing notebook or a broken reference fails the build.

Usage::

    python -m sharpmem_lib.pipeline build --profile default
    python -m sharpmem_lib.pipeline check --profile paper      # parameters, data files, GPU; runs nothing
    python -m sharpmem_lib.pipeline plan --profile paper       # every chapter's recipes and training settings
    python -m sharpmem_lib.pipeline execute --profile smoke --notebook 01_toy_example
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sharpmem_lib.profiles import load_profile, profile_parameters
from sharpmem_lib.report import BOOK_BUILD_ENV  # set for the kernels while the book's notebooks execute

__all__ = ["REPO_ROOT", "BOOK_BUILD_ENV", "notebook_paths", "plan_notebooks", "execute_notebooks", "tidy_for_reading",
           "injected_cell_header",
           "stage_book", "build_book", "recipe_uses", "training_plan"]

REPO_ROOT = Path(__file__).resolve().parents[1]
BOOK_FILES = ("_config.yml", "_toc.yml", "book")


def notebook_paths(repo_root: Path = REPO_ROOT, only: list[str] | None = None) -> list[Path]:
    """The chapter notebooks ``notebooks/NN_*.ipynb`` in order (optionally a subset by stem)."""
    paths = sorted((repo_root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        stems = [p.stem for p in paths]
        for name in only:
            if name not in stems:
                raise ValueError(f"notebook={name!r} is not valid; choose one of {stems}")
        paths = [p for p in paths if p.stem in only]
    return paths


def plan_notebooks(profile: str, repo_root: Path = REPO_ROOT, only: list[str] | None = None) -> list[tuple[Path, dict]]:
    """(notebook, parameters) for every notebook under ``profile``, all checked up front.

    Raises ``ValueError`` naming the profile, notebook or parameter at fault, before any
    file is written or any notebook started.
    """
    import papermill

    from sharpmem_lib.parameters import check_parameters, literal_defaults

    params_dir = repo_root / "notebooks" / "params"
    stems = [p.stem for p in notebook_paths(repo_root)]
    load_profile(profile, params_dir, stems)  # names the valid profiles, a YAML error's line, a key that is no notebook
    plan, problems = [], []
    for path in notebook_paths(repo_root, only):
        inspected = papermill.inspect_notebook(path)
        params = _absolute_dirs(profile_parameters(profile, params_dir, path.stem, inspected, stems))
        try:  # every value, as the notebook's own check will see it (its defaults, then the profile's)
            check_parameters(path.stem, {**literal_defaults(inspected), **params}, files=False)
        except ValueError as err:
            problems.append(f"{path.stem}: {err}")
        plan.append((path, params))
    if problems:
        raise ValueError(f"profile {profile!r}: " + "\n  ".join(problems))
    return plan


def recipe_uses(params: dict) -> list[tuple[str, str, str]]:
    """(parameter, dataset, recipe) for every recipe a chapter's parameters name: ``recipes``
    (dataset -> recipe), ``recipe`` (on ``dataset``) and ``<role>_recipe`` (on
    ``<role>_dataset`` if the chapter has one, else on ``dataset``)."""
    uses = []
    for key, value in params.items():
        if key == "recipes" and isinstance(value, dict):
            uses += [(f"recipes[{d}]", d, r) for d, r in value.items()]
        elif (key == "recipe" or key.endswith("_recipe")) and value != "":  # "": the chapter's own recipe
            role = key[: -len("recipe")]
            uses.append((key, params.get(f"{role}dataset") or params.get("dataset", ""), value))
    return uses


TRAINING_FIELDS = ("model", "epochs", "lr", "hidden", "batch_size", "momentum", "weight_decay", "lr_milestones",
                   "augment")  # what a chapter that names no recipe restates by hand


def training_plan(profile: str, repo_root: Path = REPO_ROOT, only: list[str] | None = None) -> list[dict]:
    """What each chapter trains under ``profile``: one row per recipe a chapter names, with
    the chapter, the parameter, the dataset, the recipe's full settings
    (:func:`sharpmem_lib.recipes.recipe_settings`), the chapter's algorithm knobs
    (:data:`sharpmem_lib.recipes.KNOBS`) and its training seeds. A chapter that names no
    recipe gets one row saying so, with the training values it restates. Every parameter
    is checked first (:func:`plan_notebooks`)."""
    import papermill

    from sharpmem_lib.parameters import literal_defaults
    from sharpmem_lib.recipes import KNOBS, recipe_settings

    rows = []
    for path, params in plan_notebooks(profile, repo_root, only):
        p = {**literal_defaults(papermill.inspect_notebook(path)), **params}
        common = {"knobs": {k: v for k, v in p.items() if k in KNOBS},
                  "seeds": next((p[k] for k in ("train_seeds", "seeds", "seed") if k in p), None)}
        uses = recipe_uses(p)
        for name, dataset, recipe in uses:
            rows.append({"chapter": path.stem, "parameter": name, "dataset": dataset, **recipe_settings(recipe),
                         **common})
        if not uses and any(k in p for k in TRAINING_FIELDS):
            rows.append({"chapter": path.stem, "parameter": "(no recipe)", "dataset": p.get("dataset", ""),
                         "recipe": "(none: the chapter restates training settings)",
                         **{k: p[k] for k in TRAINING_FIELDS if k in p}, **common})
    return rows


def _absolute_dirs(params: dict) -> dict:
    """A profile's relative ``data_dir`` / ``results_dir`` are meant from where ``make book``
    runs, not from ``notebooks/`` where the kernels start: made absolute here."""
    return {k: str(Path(v).expanduser().resolve()) if k in ("data_dir", "results_dir") and isinstance(v, str) and v
            else v for k, v in params.items()}


DIR_VARIABLES = ("SHARPMEM_DATA", "SHARPMEM_RESULTS")  # folders the kernels read from the environment


def _absolute_env() -> None:
    """A relative ``$SHARPMEM_DATA`` / ``$SHARPMEM_RESULTS`` is meant from where the command
    runs, where :func:`preflight` checked it, not from ``notebooks/`` where the kernels start
    (there ``SHARPMEM_DATA=data`` was 'not a directory' after the check passed, and
    ``SHARPMEM_RESULTS=res`` cached into ``notebooks/res``): made absolute for the kernels. An
    empty one is unset, so that the default applies (not ``notebooks/results``)."""
    for name in DIR_VARIABLES:
        value = os.environ.get(name)
        if value == "":  # set but empty means unset: SHARPMEM_RESULTS= kept the kernels' cache in notebooks/results
            del os.environ[name]
        elif value and not Path(value).expanduser().is_absolute():
            os.environ[name] = str(Path(value).expanduser().resolve())


GPU_PROFILES = ("paper",)  # profiles sized for a GPU: refused up front without a usable one


def gpu_sized_recipes() -> set[str]:
    """Recipes whose model is sized for a GPU (WideResNets): refused up front without one."""
    from sharpmem_lib.recipes import RECIPES

    return {name for name, r in RECIPES.items() if r.model.startswith("wrn")}


def _require_gpu(purpose: str) -> None:
    """The hook for runs that need a GPU: :func:`sharpmem_lib.train.require_gpu`."""
    from sharpmem_lib.train import require_gpu

    require_gpu(purpose)


def preflight(plan: list[tuple[Path, dict]], profile: str, log=print, obtain: bool = True) -> None:
    """Before any notebook runs: a usable GPU for :data:`GPU_PROFILES`, and every dataset and
    file the planned chapters read. Fashion-MNIST is fetched when missing and ``obtain``
    (:func:`sharpmem_lib.data.obtain_fashion_mnist`). Raises ``RuntimeError`` naming each
    missing file and where to get it, and the GPU problem, all at once.
    """
    import papermill

    from sharpmem_lib.data import DatasetNotFoundError, obtain_fashion_mnist
    from sharpmem_lib.parameters import literal_defaults, needed_datasets, needed_files

    problems = []
    chapters = [(path.stem, {**literal_defaults(papermill.inspect_notebook(path)), **params}) for path, params in plan]
    gpu_sized = [f"{stem}'s {param}={recipe!r}" for stem, p in chapters for param, _, recipe in recipe_uses(p)
                 if recipe in gpu_sized_recipes()]
    if profile in GPU_PROFILES or gpu_sized:
        try:  # a WideResNet recipe would train for days on a CPU, whichever profile names it
            _require_gpu(f"profile {profile!r}" if profile in GPU_PROFILES
                         else f"profile {profile!r} ({', '.join(gpu_sized)}: a WideResNet recipe)")
        except RuntimeError as err:
            problems.append(str(err))
    if obtain:
        fashion = {"fashion_mnist", "fashion_mnist_cpu"}
        for data_dir in {p.get("data_dir") or None for stem, p in chapters if fashion & set(needed_datasets(p))}:
            try:
                obtain_fashion_mnist(data_dir, log=log)
            except DatasetNotFoundError:
                pass  # reported below with every other missing file
    needed_by: dict[str, list[str]] = {}  # each missing file once, with the chapters that need it
    for stem, p in chapters:
        for problem in needed_files(p):
            needed_by.setdefault(problem, []).append(stem)
    problems += [f"needed by {', '.join(stems)}: {problem}" for problem, stems in needed_by.items()]
    if problems:
        raise RuntimeError(f"profile {profile!r} cannot run here; nothing was run.\n\n"
                           + "\n\n".join(dict.fromkeys(problems)))


def execute_notebooks(plan: list[tuple[Path, dict]], out_dir: Path, log=print) -> dict[str, float]:
    """Run each planned notebook into ``out_dir``; return wall times per notebook.

    Every notebook runs even if an earlier one fails; the failures are raised together.
    """
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    _absolute_env()
    # One results cache for every chapter and build (the kernels inherit it): a rebuild
    # reuses trained models instead of training them again.
    os.environ.setdefault("SHARPMEM_RESULTS", str(REPO_ROOT / "results"))
    times: dict[str, float] = {}
    failures: list[str] = []
    # The kernels inherit this: report.glue records values for the book's {glue} roles
    # instead of showing them in the cell, as it does in Jupyter and Colab.
    previous = os.environ.get(BOOK_BUILD_ENV)
    os.environ[BOOK_BUILD_ENV] = "1"
    try:
        for path, params in plan:
            log(f"[{params['profile']}] executing {path.name} with {params}")
            start = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(path), str(out_dir / path.name), parameters=params, kernel_name="python3",
                    cwd=str(path.parent), progress_bar=False, log_output=False,
                )
            except papermill.PapermillExecutionError as err:
                failures.append(f"{path.name}: {err.ename}: {err.evalue}")
            if (out_dir / path.name).exists():
                tidy_for_reading(out_dir / path.name)
            times[path.stem] = time.perf_counter() - start
            log(f"[{params['profile']}] {path.name}: {times[path.stem]:.1f} s")
    finally:
        if previous is None:
            os.environ.pop(BOOK_BUILD_ENV, None)
        else:
            os.environ[BOOK_BUILD_ENV] = previous
    if failures:
        raise RuntimeError("notebook(s) failed (executed copies kept in {}):\n  {}".format(
            out_dir, "\n  ".join(failures)))
    return times


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


INJECTED_HEADER = "# Parameters"  # how papermill's injected-parameters cell begins


def injected_cell_header(source: str) -> str:
    """Papermill's injected-parameters cell ``source`` with its first line, ``# Parameters``,
    replaced by one that says these are the run's values: its profile's (the cell's
    ``profile``), which replace the notebook's defaults in the cell above. Idempotent."""
    lines = source.split("\n")
    if not lines or lines[0].strip() != INJECTED_HEADER:
        return source
    profile = None
    try:
        for node in ast.parse(source).body:
            names = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            if isinstance(node, ast.Assign) and "profile" in names and isinstance(node.value, ast.Constant):
                profile = node.value.value
    except SyntaxError:
        pass
    where = f"the {profile!r} profile (notebooks/params/{profile}.yaml)" if profile else "the build's values"
    lines[0] = f"# Parameters of this run: {where}, replacing the defaults above"  # short: a code cell's width
    return "\n".join(lines)


def tidy_for_reading(path: Path) -> None:
    """Make an executed notebook read well as a book page, in place.

    Papermill's injected-parameters cell stays visible, headed by what it is
    (:func:`injected_cell_header`): the parameters cell above it shows the notebook's defaults
    (the default profile's), and a reader of another profile's book must see the values that
    replaced them. Progress-bar widgets (tqdm with ipywidgets) are dropped with the notebook's widget
    state: a static page cannot show them, and myst-nb would fetch a widget manager from
    the internet for them.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags:
            if "remove-cell" in tags:
                tags.remove("remove-cell")
            cell.source = injected_cell_header(cell.source)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


def mathjax_dir() -> Path | None:
    """MathJax 2's static files as shipped by the ``jupyter-server-mathjax`` package, or None."""
    import importlib.util

    spec = importlib.util.find_spec("jupyter_server_mathjax")  # finds without importing jupyter_server
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(spec.submodule_search_locations[0]) / "static"
    return static if (static / "MathJax.js").exists() else None


def stage_book(stage_dir: Path, repo_root: Path = REPO_ROOT) -> None:
    """Copy the book's sources into a fresh ``stage_dir``, with a local MathJax so that
    equations render without internet. It goes to ``_mathjax/mathjax``, an extra static
    directory (``_config.yml``): Sphinx copies it to ``_static/mathjax`` in the HTML, while
    Jupyter Book, which adds every script under the source ``_static`` to every page,
    leaves it alone."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    for name in BOOK_FILES:
        src = repo_root / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, stage_dir / name)
    mathjax = mathjax_dir()
    if mathjax is None:
        raise RuntimeError("MathJax for offline reading is missing: `pip install --no-deps jupyter-server-mathjax` "
                           "(make book does this)")
    shutil.copytree(mathjax, stage_dir / "_mathjax" / "mathjax", ignore=_mathjax_unused)
    with open(stage_dir / "book" / "api.md", "a", encoding="utf-8") as api:
        api.write(api_page_sections())


def library_modules() -> list[str]:
    """Every public module of ``sharpmem_lib`` (subpackages included), by dotted name."""
    import pkgutil

    import sharpmem_lib

    return sorted(m.name for m in pkgutil.walk_packages(sharpmem_lib.__path__, "sharpmem_lib.")
                  if not any(part.startswith("_") for part in m.name.split(".")))


def api_page_sections(modules: list[str] | None = None) -> str:
    """The API page's body: one section per library module, documented by Sphinx autodoc
    from its docstrings (the members in its ``__all__``). Appended to book/api.md when the
    book is staged, so that a new module is documented without editing the page."""
    sections = []
    for name in modules or library_modules():
        sections.append(f"\n## `{name}`\n\n```{{eval-rst}}\n.. automodule:: {name}\n   :members:\n```\n")
    return "".join(sections)


# Parts of MathJax 2 that the book never loads (its configuration, _config.yml, asks for the
# HTML-CSS output with STIX-Web fonts, in English, with the renderer menu hidden): the SVG
# output, the accessibility explorer (only its menu entry is loaded) and other languages.
MATHJAX_UNUSED = ("jax/output/SVG", "extensions/a11y/*", "localization/*")
MATHJAX_KEPT = ("extensions/a11y/accessibility-menu.js", "localization/en")


def _mathjax_unused(directory: str, names: list[str]) -> set[str]:
    """``shutil.copytree`` ignore hook: the names under ``directory`` that MATHJAX_UNUSED drops."""
    import fnmatch

    root = mathjax_dir()
    rel = Path(directory).relative_to(root) if root else Path(directory)
    paths = {name: (rel / name).as_posix() for name in names}
    return {name for name, path in paths.items()
            if any(fnmatch.fnmatch(path, pat) for pat in MATHJAX_UNUSED) and path not in MATHJAX_KEPT}


def _jupyter_book_executable() -> str:
    """The ``jupyter-book`` script of this interpreter's environment (then the PATH)."""
    beside = Path(sys.executable).with_name("jupyter-book")
    found = str(beside) if beside.exists() else shutil.which("jupyter-book")
    if found is None:
        raise RuntimeError("jupyter-book is not installed; run `make book` (it installs requirements.txt)")
    return found


def build_book(profile: str, out_root: Path | None = None, repo_root: Path = REPO_ROOT, log=print) -> Path:
    """Execute every notebook under ``profile`` and render HTML; returns ``index.html``.

    Everything is written under ``<out_root>/_build`` (default: the repository's): the
    staged sources in ``source/`` and the book in ``html/``.
    """
    plan = plan_notebooks(profile, repo_root)
    preflight(plan, profile, log=log)
    out_root = Path(out_root or repo_root).resolve()
    stage = out_root / "_build" / "source"
    stage_book(stage, repo_root)
    start = time.perf_counter()
    times = execute_notebooks(plan, stage / "notebooks", log=log)
    log(f"[{profile}] notebooks executed in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    cmd = [_jupyter_book_executable(), "build", str(stage), "--path-output", str(out_root), "-W", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    times["jupyter-book build"] = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed ({proc.returncode}):\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    index = out_root / "_build" / "html" / "index.html"
    log("wall time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    log(f"book written to {index}")
    return index


PLACEHOLDER_URL = "https://github.com/sharpmem/sharpmem"  # nothing is published there


def repository_url(repo_root: Path = REPO_ROOT) -> str:
    """The repository's URL, kept in one place: ``repository.url`` in _config.yml."""
    import yaml

    return yaml.safe_load((repo_root / "_config.yml").read_text())["repository"]["url"]


def write_repository_url(repo_root: Path = REPO_ROOT) -> list[Path]:
    """Write _config.yml's ``repository.url`` into the ``REPOSITORY = "..."`` line of every
    notebook's install cell (the .py sources; ``make sync`` then updates the .ipynb files).
    Colab opens a notebook on its own, so the URL must be in it; this keeps every copy equal
    to the one a fork edits. Returns the sources it changed."""
    import re

    url = repository_url(repo_root)
    line = re.compile(r'^REPOSITORY = "[^"]*"', re.M)
    changed = []
    for py in sorted((repo_root / "notebooks").glob("[0-9][0-9]_*.py")):
        text = py.read_text()
        new = line.sub(f'REPOSITORY = "{url}"', text, count=1)
        if new != text:
            py.write_text(new)
            changed.append(py)
    return changed


class _Once(argparse.Action):
    """An option that may be given once, or again with the same value: argparse keeps the last
    of ``--profile smoke --profile paper`` without a word, which would build the paper profile."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = namespace.__dict__.setdefault("_given_once", {})
        if self.dest in seen and seen[self.dest] != values:
            parser.error(f"{option_string} is given twice with different values ({seen[self.dest]} and {values}); "
                         "give it once")
        seen[self.dest] = values
        setattr(namespace, self.dest, values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sharpmem_lib.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["check", "plan", "execute", "build"],
                        help="check: parameters, data and GPU, running nothing; plan: every chapter's recipes and "
                             "training settings, running nothing; execute: notebooks; build: the book")
    parser.add_argument("--profile", default="default", action=_Once, help="a file stem in notebooks/params/")
    parser.add_argument("--notebook", action="append", help="check/execute only this notebook (stem); repeatable")
    parser.add_argument("--out", type=Path, default=REPO_ROOT, action=_Once,
                        help="write under OUT/_build (default: the repository)")
    args = parser.parse_args(argv)
    try:
        if args.command == "plan":
            import pandas as pd

            with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_colwidth", 60):
                table = pd.DataFrame(training_plan(args.profile, only=args.notebook), dtype=object)
                print(table.where(table.notna(), "–").to_string(index=False))
        elif args.command in ("check", "execute"):
            plan = plan_notebooks(args.profile, only=args.notebook)
            preflight(plan, args.profile, obtain=args.command == "execute")
            if args.command == "check":
                print(f"profile {args.profile!r}: {len(plan)} notebook(s), every parameter valid, every file there")
            else:
                execute_notebooks(plan, args.out / "_build" / "source" / "notebooks")
        else:
            if args.notebook:
                parser.error("--notebook applies to 'execute' only; 'build' renders every chapter")
            build_book(args.profile, args.out)
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
