"""Parameter profiles: named papermill parameter sets in ``notebooks/params/<profile>.yaml``.

A profile file maps each notebook's stem (``01_toy_example``) to the parameters papermill
injects into that notebook. ``smoke`` runs in seconds (tests), ``default`` is what
``make book`` runs on a CPU in minutes, ``paper`` holds the paper's settings for a GPU.
"""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["available_profiles", "load_profile", "profile_parameters"]


def available_profiles(params_dir: Path) -> list[str]:
    """Names of the profiles in ``params_dir`` (the stems of its ``*.yaml`` files)."""
    return sorted(p.stem for p in Path(params_dir).glob("*.yaml"))


def load_profile(name: str, params_dir: Path) -> dict[str, dict]:
    """Read a profile; ``ValueError`` naming the available profiles if it does not exist."""
    choices = available_profiles(params_dir)
    if name not in choices:
        raise ValueError(f"profile={name!r} is not valid; choose one of {choices} (files in {params_dir})")
    data = yaml.safe_load((Path(params_dir) / f"{name}.yaml").read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) or v is None for v in data.values()):
        raise ValueError(f"profile {name!r}: expected a mapping of notebook name -> parameters")
    return {k: dict(v or {}) for k, v in data.items()}


def profile_parameters(name: str, params_dir: Path, notebook: str, known: dict) -> dict:
    """Parameters for one notebook under a profile, checked against the notebook's own.

    ``known`` is the notebook's parameters cell (name -> default), e.g. from
    ``papermill.inspect_notebook``. An unknown name is an error listing the valid ones, so
    a typo cannot silently fall back to a default. ``profile`` itself is always injected.
    """
    params = load_profile(name, params_dir).get(notebook, {})
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"profile {name!r} sets unknown parameter(s) {unknown} for notebook {notebook!r}; "
            f"valid parameters are {sorted(known)}"
        )
    return {**params, "profile": name}
