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
from sharpmem_lib import store

__all__ = ["cached_entries_table", "git_commit", "parameter_source", "provenance_table", "FullTable"]


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


def cached_entries_table() -> pd.DataFrame:
    """The result-store entries this process read or computed (:func:`sharpmem_lib.store.entries_used`),
    one row each: the entry's folder, kind, status (``complete`` or ``diverged``), the cache
    version and precision it was computed under, the commit that computed it (``dirty``: with
    uncommitted changes), when. A chapter's numbers come from these entries: where a commit
    differs from the current one, the numbers were computed by that older code."""
    columns = ["entry", "kind", "status", "cache_version", "precision", "commit", "dirty", "created"]
    return pd.DataFrame(store.entries_used(), columns=columns)


def _entries_summary(entries: pd.DataFrame) -> str:
    """``N entries (cache version V), computed by commit C [, ...]``: which code made the numbers."""
    if entries.empty:
        return "none"
    commits = entries["commit"].str[:12] + entries["dirty"].map({True: "+dirty"}).fillna("")
    counts = commits.value_counts()
    versions = ", ".join(str(v) for v in sorted(entries["cache_version"].unique()))
    return (f"{len(entries)} entries (cache version {versions}), computed by "
            + ", ".join(f"{c} ({n})" for c, n in counts.items()))


PARAMS_DIR = Path(sharpmem_lib.__file__).resolve().parents[1] / "notebooks" / "params"  # in a checkout
_DIRS = ("data_dir", "results_dir")  # made absolute by the pipeline: not compared with the profile's text


def parameter_source(profile: str, run: dict | None = None, params_dir: Path | None = None) -> str:
    """How this notebook's parameters were given, for the provenance table's ``profile`` row.

    ``run`` is what the notebook's parameter check saw (:func:`sharpmem_lib.parameters.notebook_run`,
    the default). Nothing injected (a run by hand): ``profile``, the parameters cell's value
    (its defaults are the default profile's, a test checks). Parameters injected without a
    ``profile`` (``papermill -p/-y`` directly, not the pipeline): ``none``, naming them. A
    ``profile`` injected with parameters that are not that profile's (``params_dir``'s file):
    the profile, naming those given otherwise. A ``run`` of another profile (a stale record)
    is not used."""
    from sharpmem_lib.parameters import notebook_run

    run = notebook_run() if run is None else run
    if not run or run.get("injected") is None or run["params"].get("profile", profile) != profile:
        return profile
    injected, values = list(run["injected"]), run["params"]
    direct = [n for n in injected if n != "profile"]
    if "profile" not in injected:
        return (f"none: {', '.join(direct)} given directly (papermill -p/-y, not a profile); the other parameters "
                f"are the notebook's defaults (those of profile {profile!r})")
    from sharpmem_lib.profiles import load_profile

    try:
        chosen = load_profile(profile, params_dir or PARAMS_DIR).get(run["chapter"], {})
    except (OSError, ValueError):  # no params folder here (an installed package), or an unreadable profile
        return profile
    other = [n for n in direct if n not in chosen or (n not in _DIRS and values.get(n) != chosen[n])]
    missing = [n for n in chosen if n not in injected]
    if not other and not missing:
        return profile
    parts = ([f"{', '.join(other)} given directly"] if other else []) + (
        [f"{', '.join(missing)} left at the notebook's default"] if missing else [])
    return f"{profile}, except: {'; '.join(parts)} (not as the profile sets them)"


def provenance_table(profile: str, params: dict) -> pd.DataFrame:
    """Provenance of the current run as a two-column table (item, value).

    The ``profile`` row says how the parameters were given (:func:`parameter_source`): a
    profile, or parameters given directly to papermill. Wall time is measured from the start
    of this Python process (the notebook's kernel), so it covers the whole notebook up to
    this call.
    """
    started = psutil.Process(os.getpid()).create_time()
    rows = [
        ("profile", parameter_source(profile)),
        *((f"parameter: {k}", repr(v)) for k, v in params.items()),
        ("sharpmem_lib version", sharpmem_lib.__version__),
        ("git commit", git_commit()),
        ("cached results used", _entries_summary(cached_entries_table())),
        ("torch", torch.__version__),
        ("device", _device()),
        ("started (UTC)", _dt.datetime.fromtimestamp(started, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")),
        ("wall time", f"{time.time() - started:.1f} s"),
    ]
    return FullTable(pd.DataFrame(rows, columns=["item", "value"]).set_index("item"))


class FullTable(pd.DataFrame):
    """A table shown in full: every row, every character of every cell (pandas' display cuts
    cells at 50 characters, which hid SAM's and SharpReg's hyperparameters), long values
    wrapping inside their cell (the book's CSS class ``sharpmem-full``)."""

    @property
    def _constructor(self):
        return FullTable

    def _repr_html_(self) -> str:
        with pd.option_context("display.max_colwidth", None, "display.max_rows", None):
            return self.to_html(classes="sharpmem-full", border=0)
