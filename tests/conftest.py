"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture
def float64():
    """Run a test in float64, so that tight comparisons test the algebra, not float32
    rounding. Modules opt in with ``pytestmark = pytest.mark.usefixtures("float64")``."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
