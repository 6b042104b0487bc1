"""Atomic file writes: the one primitive under the result store and the training checkpoints.

Below every layer (the engine's checkpoints use it, and so does :mod:`sharpmem_lib.store`).
A writer writes to a temporary file with a *unique* name in the target's folder and renames
it over the target with ``os.replace``, which is atomic on POSIX and Windows. Two processes
writing the same path therefore never share a temporary file: each rename installs one
complete file, and a reader sees either the old file or one of the new ones, never a mix
(a fixed ``<name>.tmp``, as before, let a second writer truncate the first one's file while
it was being renamed).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["atomic_write", "from_json", "named_os_error", "save_npz", "to_json"]

#: How a non-finite float is written in strict JSON (which has no NaN or Infinity).
NONFINITE = "__nonfinite__"


def named_os_error(err: OSError, path: str | Path, doing: str = "write") -> OSError:
    """``err`` again (same class and errno) with a message that names ``path`` and says what
    to check, e.g. for a full disk or a read-only results folder."""
    hint = "check that it is writable and that the disk has free space" if doing == "write" else "check it"
    message = f"could not {doing} {path}: {err.strerror or err}; {hint}"
    try:
        named = type(err)(err.errno, message, str(path))
    except TypeError:  # an OSError subclass with another signature
        named = OSError(err.errno, message, str(path))
    return named


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a fresh temporary file beside ``path``, flush it to disk, then rename
    it to ``path``.

    The temporary name is unique (``.<name>.<random>.tmp``), so concurrent writers of one
    path do not interfere; if ``write`` or the rename fails the temporary file is removed,
    and an ``OSError`` (disk full, read-only folder) is re-raised naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the umask applies, unlike mkstemp's 0600
        write(tmp)
        with open(tmp, "rb+") as f:  # durable before it becomes visible under the final name
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise named_os_error(err, path) from err
        raise


def save_npz(path: str | Path, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
    """Write ``arrays`` to ``path`` as an ``.npz``, atomically (see :func:`atomic_write`)."""
    save = np.savez_compressed if compressed else np.savez

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            save(f, **arrays)

    atomic_write(path, write)


def _encode(value):
    if isinstance(value, np.ndarray):
        raise TypeError(f"a numpy array (shape {value.shape}) is not stored as JSON; store arrays with "
                        "store.cached_arrays, or convert with .tolist()")
    if isinstance(value, np.generic):  # a numpy scalar (np.float32 metric, np.bool_): its Python value
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {NONFINITE: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, dict):
        if NONFINITE in value:
            raise ValueError(f"a dict with the key {NONFINITE!r} cannot be stored: it marks a non-finite number")
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(obj: dict):
    if set(obj) == {NONFINITE}:
        return float(obj[NONFINITE])
    return obj


def to_json(value, **kwargs) -> str:
    """``json.dumps`` that always writes valid (strict) JSON: a NaN or infinite float, which
    ``json.dumps`` would write as the invalid tokens ``NaN``/``Infinity``, is written
    explicitly as ``{"__nonfinite__": "nan" | "inf" | "-inf"}`` (read back by
    :func:`from_json`); anything else JSON cannot hold raises ``TypeError``/``ValueError``."""
    return json.dumps(_encode(value), allow_nan=False, **kwargs)


def from_json(text: str):
    """The value :func:`to_json` wrote, non-finite floats restored."""
    return json.loads(text, object_hook=_decode)
