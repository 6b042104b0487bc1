"""Shared test fixtures."""

import functools
import os
from pathlib import Path

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """``gpu``-marked tests need CUDA: skipped, saying so, where torch sees none (unless
    ``SHARPMEM_GPU_TESTS_ON_CPU=1``: benchmarks/gpu_check.py --dry-run runs their code on the
    CPU, comparing the CPU with itself, to check that they run at all)."""
    if torch.cuda.is_available() or os.environ.get("SHARPMEM_GPU_TESTS_ON_CPU") == "1":
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def cpu_unless_gpu_test(request, monkeypatch):
    """Every test but the ``gpu``-marked ones runs on the CPU, even on a GPU machine: device
    "auto" then means the CPU, where the bitwise-equality tests (resume, ensembles equal to
    separate runs, determinism) hold. The GPU's promises are tolerances (tests/test_gpu.py)."""
    if request.node.get_closest_marker("gpu") is None:
        for owner in (torch.cuda, torch.backends.mps):
            # functools.wraps keeps __wrapped__, which torch._dynamo reads from these functions
            monkeypatch.setattr(owner, "is_available", functools.wraps(owner.is_available)(lambda: False))
    yield


@pytest.fixture(autouse=True)
def dataset_registry():
    """The dataset and split registries as they were before the test, restored in place
    afterwards: a dataset a test registers (register_dataset, or a <name>.npz found in its
    data directory) must not outlive it (a 'mine.npz' registered by a test_parameters test
    made a later test's 'mine' valid in another directory)."""
    from sharpmem_lib import data, splits

    saved = [(registry, dict(registry)) for registry in (data.DATASETS, splits.SPLITS)]
    yield
    for registry, before in saved:
        registry.clear()
        registry.update(before)


@pytest.fixture
def float64():
    """Run a test in float64, so that tight comparisons test the algebra, not float32
    rounding. Modules opt in with ``pytestmark = pytest.mark.usefixtures("float64")``."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """Execute every notebook with the smoke profile and render the book, once per test
    session (test_notebooks.py and test_book_browser.py share it), with a results cache of
    its own. Returns (build directory, index.html)."""
    from sharpmem_lib.pipeline import build_book

    build_dir = tmp_path_factory.mktemp("book")
    mp = pytest.MonkeyPatch()
    mp.setenv("SHARPMEM_RESULTS", str(tmp_path_factory.mktemp("results")))
    try:
        index = build_book("smoke", build_dir, log=lambda *_: None)
    finally:
        mp.undo()
    return build_dir, index


@pytest.fixture(scope="session")
def book_html(request):
    """The rendered book's HTML folder: ``$SHARPMEM_TEST_BOOK_HTML`` when set (a book built
    before, to check it again without rebuilding), else the session's smoke build."""
    given = os.environ.get("SHARPMEM_TEST_BOOK_HTML")
    if given:
        return Path(given)
    build_dir, _ = request.getfixturevalue("smoke_book")
    return build_dir / "_build" / "html"


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: small models (attack networks, narrow MLPs) run far
    faster on one thread than on two contended ones of a shared machine. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
