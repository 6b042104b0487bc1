"""What produced a page: profile, parameters, code version, machine, wall time.

One call at the end of each notebook, ``provenance_table(profile, params)``, returns a
small table that the book shows under the chapter.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import time
from pathlib import Path

import pandas as pd
import psutil
import torch

import sharpmem_lib

__all__ = ["git_commit", "provenance_table"]


def git_commit(path: Path | None = None) -> str:
    """Commit hash of the repository holding the library (``+dirty`` when modified)."""
    path = Path(path or Path(sharpmem_lib.__file__).parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=path,
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def _device() -> str:
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"


def provenance_table(profile: str, params: dict) -> pd.DataFrame:
    """Provenance of the current run as a two-column table (item, value).

    Wall time is measured from the start of this Python process (the notebook's kernel),
    so it covers the whole notebook up to this call.
    """
    started = psutil.Process(os.getpid()).create_time()
    rows = [
        ("profile", profile),
        *((f"parameter: {k}", repr(v)) for k, v in params.items()),
        ("sharpmem_lib version", sharpmem_lib.__version__),
        ("git commit", git_commit()),
        ("torch", torch.__version__),
        ("device", _device()),
        ("started (UTC)", _dt.datetime.fromtimestamp(started, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")),
        ("wall time", f"{time.time() - started:.1f} s"),
    ]
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")
