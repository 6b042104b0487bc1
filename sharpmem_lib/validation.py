"""Argument checks that fail fast, naming the parameter and the valid choices.

Every public entry point checks its arguments with these helpers *before* any data is
loaded or any model trained, so a typo in a papermill parameter costs seconds, not hours.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable

__all__ = ["check_bool", "check_choice", "check_fraction", "check_int", "check_list", "check_nonnegative",
           "check_number", "check_positive", "check_str"]


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


# ----------------------------------------------------- typed checks (papermill / YAML values)
#
# Values from a profile or `papermill -p` arrive as whatever YAML made of them: `seed: "0"` is
# a string, `hidden: 16` an int. These checks name the parameter, what it must be and an
# example, so the reader can fix the YAML line.


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bad(name: str, value: Any, what: str) -> ValueError:
    return ValueError(f"{name}={value!r} is not valid; it must be {what}")


_EXPONENT = re.compile(r"\s*([+-]?)(\d+\.?\d*|\.\d+)[eE]([+-]?)(\d+)\s*")


def _quoted_hint(value: Any, name: str = "", integer: bool = False, fits=None) -> str:
    """What to say about a string where a number was meant. YAML 1.1 (PyYAML, papermill) reads
    exponent notation as a number only with a dot and a signed exponent (``5.0e-2``, ``1.0e+3``):
    ``5e-2``, ``1e3`` and ``5.0e2`` are strings. The hint names ``name`` and writes ``value`` in
    a form YAML reads as a number, only when that number would pass the knob's checks
    (``fits``); otherwise it says the number is out of range."""
    if not isinstance(value, str):
        return ""
    match = _EXPONENT.fullmatch(value)
    if not match:
        return " (without quotes)"
    sign, mantissa, exponent_sign, digits = match.groups()
    written = f"{sign}{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent_sign or '+'}{digits}"
    number = float(value)
    if fits is not None and not fits(number):  # '5e-500', '-5e-2', '1e300': no form of it would pass
        return (f" (YAML reads {value.strip()} as a string: a number in exponent notation needs a dot and a signed "
                f"exponent; as a number, {value.strip()} would be out of range too)")
    plain = str(int(number)) if integer and number.is_integer() else repr(number)
    if integer:
        forms = plain if number.is_integer() else "an integer"
    else:
        forms = written if "e" in plain or "inf" in plain else f"{plain} or {written}"
    where = f"{name} as " if not name or "[" in name or forms == "an integer" else f"{name}: "
    return (f" (YAML reads {value.strip()} as a string: a number in exponent notation needs a dot and a signed "
            f"exponent; write {where}{forms}, without quotes)")


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is an int (not a bool, not a string) in range."""
    what = "an integer" + (f" >= {minimum}" if minimum is not None else "") + (
        f" <= {maximum}" if maximum is not None else "")
    fits = lambda x: (minimum is None or x >= minimum) and (maximum is None or x <= maximum)  # noqa: E731
    if not _is_int(value) or not fits(value):
        raise _bad(name, value, what + _quoted_hint(value, name, integer=True, fits=fits))


def check_number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None, *,
                 open_min: bool = False, open_max: bool = False, cap: float | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite int or float in the given range
    (``open_min`` / ``open_max`` exclude the bound). ``cap``: a further upper bound the caller
    checks itself (with its own message), so a quoted number above it gets no 'write X' hint."""
    low = "" if minimum is None else (f" > {minimum}" if open_min else f" >= {minimum}")
    high = "" if maximum is None else (f" < {maximum}" if open_max else f" <= {maximum}")
    in_range = lambda x: math.isfinite(x) and (minimum is None or (x > minimum if open_min else x >= minimum)) and (  # noqa: E731
        maximum is None or (x < maximum if open_max else x <= maximum))
    fits = lambda x: in_range(x) and (cap is None or x <= cap)  # noqa: E731
    if not (_is_number(value) and in_range(value)):  # above ``cap``: the caller's own message
        what = "a finite number" + low + (" and" if low and high else "") + high
        raise _bad(name, value, what + _quoted_hint(value, name, fits=fits))


def check_bool(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is ``True`` or ``False`` (YAML: true / false)."""
    if not isinstance(value, bool):
        raise _bad(name, value, "true or false")


def check_str(name: str, value: Any, *, empty: bool = True) -> None:
    """Raise ``ValueError`` unless ``value`` is a string (non-empty unless ``empty``)."""
    if not isinstance(value, str) or (not empty and not value):
        raise _bad(name, value, "a string" if empty else "a non-empty string")


def check_list(name: str, value: Any, check_item: Callable[[str, Any], None], *, what: str, example: str,
               empty: bool = False, unique: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a list (``empty`` allowed or not, items
    ``unique`` or not) whose every item passes ``check_item(f"{name}[i]", item)``.
    ``what`` describes the items, ``example`` is a valid value for the message."""
    if not isinstance(value, (list, tuple)):
        raise _bad(name, value, f"a list of {what}, e.g. {example}")
    if not value and not empty:
        raise _bad(name, value, f"a non-empty list of {what}, e.g. {example}")
    for i, item in enumerate(value):
        check_item(f"{name}[{i}]", item)
    if unique:
        seen = [v for i, v in enumerate(value) if v in value[:i]]
        if seen:
            raise _bad(name, value, f"a list without repeats ({seen[0]!r} appears twice)")
