"""Parameter profiles: named papermill parameter sets in ``notebooks/params/<profile>.yaml``.

A profile file maps each notebook's stem (``01_toy_example``) to the parameters papermill
injects into that notebook. ``smoke`` runs in seconds (tests), ``default`` is what
``make book`` runs on a CPU in minutes, ``paper`` holds the paper's settings for a GPU.
"""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["available_profiles", "chapter_names", "load_profile", "profile_parameters"]


def available_profiles(params_dir: Path) -> list[str]:
    """Names of the profiles in ``params_dir`` (the stems of its ``*.yaml`` files)."""
    return sorted(p.stem for p in Path(params_dir).glob("*.yaml"))


_MERGE = "tag:yaml.org,2002:merge"  # the ``<<`` of a YAML merge key


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (plain YAML keeps the last,
    so a repeated chapter or parameter would silently drop the first).

    Merge keys work as in ``yaml.safe_load`` (``<<: *common`` copies an anchored mapping's
    keys; a key written beside it overrides the copy): only the keys written in the mapping
    itself are checked for repeats, once, before the merge adds the copied ones."""

    def flatten_mapping(self, node):
        checked = self.__dict__.setdefault("_checked_mappings", set())
        if id(node) not in checked:  # a merge flattens a node in place: later calls see the copied keys
            checked.add(id(node))
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node)
                try:
                    repeated = key in seen
                except TypeError:  # an unhashable key: SafeLoader names it
                    continue
                if repeated:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"{key!r} is given twice in the same mapping", key_node.start_mark)
                seen.add(key)
        super().flatten_mapping(node)


def _read_yaml(path: Path):
    """The YAML document in ``path``; a syntax error or a repeated key names the file, line
    and column."""
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ValueError(f"{path}: YAML syntax error{where}: {problem}") from None


def chapter_names(params_dir: Path) -> list[str]:
    """The notebook stems a profile may name: ``notebooks/NN_*.ipynb`` beside ``params/``."""
    return sorted(p.stem for p in Path(params_dir).parent.glob("[0-9][0-9]_*.ipynb"))


def load_profile(name: str, params_dir: Path, notebooks: list[str] | None = None) -> dict[str, dict]:
    """Read a profile; ``ValueError`` naming the available profiles if it does not exist, the
    file and line of a YAML syntax error, or a key that is not a notebook (with the valid ones:
    a typo like ``01_toy_exampel`` would otherwise run that chapter on its defaults).
    ``notebooks`` are the valid keys (default: :func:`chapter_names`, the notebooks beside
    ``params_dir``)."""
    choices = available_profiles(params_dir)
    if name not in choices:
        raise ValueError(f"profile={name!r} is not valid; choose one of {choices} (files in {params_dir})")
    path = Path(params_dir) / f"{name}.yaml"
    data = _read_yaml(path)
    if data is None or data == {}:  # an empty file would run every chapter on its defaults
        raise ValueError(f"{path}: the profile is empty; it must map notebook names to their parameters "
                         f"(e.g. '01_toy_example: {{seeds: 3}}'), one of {chapter_names(params_dir)}")
    if not isinstance(data, dict) or not all(isinstance(v, dict) or v is None for v in data.values()):
        raise ValueError(f"{path}: expected a mapping of notebook name -> parameters")
    # a top-level key starting with 'x-' holds only an anchor for merge keys (`x-common: &c {...}`): no notebook
    data = {k: v for k, v in data.items() if not str(k).startswith("x-")}
    valid = chapter_names(params_dir) if notebooks is None else list(notebooks)
    unknown = sorted(str(k) for k in data if k not in valid) if valid else []  # no notebooks beside: no check
    if unknown:
        raise ValueError(f"{path}: {unknown} is not a notebook; the keys must name notebooks, one of {valid}")
    if not any(data.values()):  # e.g. only '01_toy_example:' lines: as empty as an empty file
        raise ValueError(f"{path}: the profile sets no parameter for any notebook ({sorted(map(str, data))}); every "
                         "chapter would run on its defaults. Give each chapter's parameters, e.g. "
                         "'01_toy_example: {seeds: 3}'")
    return {k: dict(v or {}) for k, v in data.items()}


def profile_parameters(name: str, params_dir: Path, notebook: str, known: dict,
                       notebooks: list[str] | None = None) -> dict:
    """Parameters for one notebook under a profile, checked against the notebook's own.

    ``known`` is the notebook's parameters cell (name -> default), e.g. from
    ``papermill.inspect_notebook``. An unknown name is an error listing the valid ones, so
    a typo cannot silently fall back to a default. ``profile`` itself is always injected.
    """
    params = load_profile(name, params_dir, notebooks).get(notebook, {})
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"profile {name!r} sets unknown parameter(s) {unknown} for notebook {notebook!r}; "
            f"valid parameters are {sorted(known)}"
        )
    return {**params, "profile": name}
