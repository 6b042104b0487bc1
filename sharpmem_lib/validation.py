"""Argument checks that fail fast, naming the parameter and the valid choices.

Every public entry point checks its arguments with these helpers *before* any data is
loaded or any model trained, so a typo in a papermill parameter costs seconds, not hours.
"""

from __future__ import annotations

from typing import Any, Iterable

__all__ = ["check_choice", "check_nonnegative", "check_positive", "check_fraction"]


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {choices}")


def check_nonnegative(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number >= 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 or value == float("inf"):
        raise ValueError(f"{name}={value!r} is not valid; it must be a finite number >= 0")


def check_positive(name: str, value: float, *, integer: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number > 0 (an int if ``integer``)."""
    kind = int if integer else (int, float)
    if not isinstance(value, kind) or isinstance(value, bool) or not value > 0 or value == float("inf"):
        what = "an integer" if integer else "a finite number"
        raise ValueError(f"{name}={value!r} is not valid; it must be {what} > 0")


def check_fraction(name: str, value: float) -> None:
    """Raise ``ValueError`` unless 0 < ``value`` < 1."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
        raise ValueError(f"{name}={value!r} is not valid; it must lie strictly between 0 and 1")
