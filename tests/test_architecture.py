"""The library's shape: no import cycles, and the equations import no engine.

Imports are read from the source (``ast``), at every level: module, class and function
bodies alike, because a function-level import that closes a cycle is still a cycle (it only
moves the failure from import time to call time). Imports under ``if TYPE_CHECKING:`` never
run and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "sharpmem_lib"
PACKAGE = "sharpmem_lib"

# The equations layer (DESIGN.md): pure numpy/torch functions, no I/O, no training. What a
# module there may import from the library.
EQUATIONS = {"memorization": {"sharpmem_lib.validation", "sharpmem_lib.stats"}}
# Third-party packages that would mean training or I/O machinery in an equations module.
ENGINE_PACKAGES = {"torch", "torchvision", "opacus", "art", "numba", "tqdm", "papermill"}

# DESIGN.md's layers, bottom up (sharpmem_lib. omitted). A module imports only its own layer
# and the ones below. A new module must be placed here: the test names any that is not.
LAYERS = [
    ("base", {"", "_io", "validation"}),
    ("equations", {"optim", "memorization", "attacks.thresholds", "stats"}),
    ("data", {"data", "splits"}),
    ("engine", {"models", "train", "ensemble", "mlp_kernel", "tensors"}),
    ("store", {"store", "recipes"}),
    ("studies", {"experiments", "subsampling", "buckets", "attacks", "attacks.single_query", "attacks.label_only",
                 "attacks.boundary", "attacks.lira", "defenses", "sharpness", "toy", "privacy", "mitigation"}),
    ("book", {"plots", "report", "provenance", "profiles", "pipeline", "parameters", "paper"}),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py")) if "__pycache__" not in p.parts}


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                return True
    return False


def imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Every module name ``source`` imports (absolute, relative imports resolved), with
    ``from a import b`` giving both ``a`` and ``a.b`` (``b`` may be a submodule)."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source_module = ".".join(base + ([node.module] if node.module else []))
            else:
                source_module = node.module
            names.add(source_module)
            names.update(f"{source_module}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the library modules it imports (not itself)."""
    modules = library_modules()
    graph = {}
    for name, path in modules.items():
        imported = imported_names(path.read_text(), name, path.name == "__init__.py")
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a
    sorted list of module names."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def cycle_path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One concrete cycle through ``component``, as ``a -> b -> a``, for the error message."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    while True:
        nxt = sorted(graph[path[-1]] & members)
        back = [n for n in nxt if n == start]
        if back and len(path) > 1:
            return " -> ".join(path + [start])
        unseen = [n for n in nxt if n not in seen]
        if not unseen:
            if back:
                return " -> ".join(path + [start])
            return " <-> ".join(component)
        path.append(unseen[0])
        seen.add(unseen[0])


# ----------------------------------------------------------------- the checker itself


def test_the_checker_resolves_every_kind_of_import():
    source = """
import sharpmem_lib.train
from sharpmem_lib import store
from . import models
from .attacks import lira
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from sharpmem_lib.plots import figure

def later():
    from sharpmem_lib.data import load_dataset
"""
    names = imported_names(source, "sharpmem_lib.subsampling", is_package=False)
    assert {"sharpmem_lib.train", "sharpmem_lib.store", "sharpmem_lib.models", "sharpmem_lib.attacks.lira",
            "sharpmem_lib.data"} <= names
    assert "sharpmem_lib.plots" not in names  # type-checking only: never runs
    inside = imported_names("from .thresholds import fit\nfrom .. import stats\n", "sharpmem_lib.attacks", True)
    assert {"sharpmem_lib.attacks.thresholds", "sharpmem_lib.stats"} <= inside


def test_the_checker_finds_cycles_through_function_level_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycle_path(graph, ["a", "b", "c"]) == "a -> b -> c -> a"
    assert cycles({"a": {"b"}, "b": set()}) == []
    # the cycle experiments <-> memorization that this test was written for, in miniature
    top = "from sharpmem_lib.memorization import x\n"
    inner = "def f():\n    from sharpmem_lib.experiments import y\n"
    graph = {"experiments": {m.split(".")[-1] for m in imported_names(top, "sharpmem_lib.experiments", False)
                             if m.startswith("sharpmem_lib.memorization")},
             "memorization": {m.split(".")[-1] for m in imported_names(inner, "sharpmem_lib.memorization", False)
                              if m == "sharpmem_lib.experiments"}}
    assert cycles(graph) == [["experiments", "memorization"]]


# ----------------------------------------------------------------- the library


def test_every_library_module_is_seen():
    graph = import_graph()
    assert {"sharpmem_lib", "sharpmem_lib.memorization", "sharpmem_lib.subsampling", "sharpmem_lib.buckets",
            "sharpmem_lib.tensors", "sharpmem_lib.train"} <= set(graph)
    assert "sharpmem_lib.memorization" in graph["sharpmem_lib.subsampling"]


def test_no_import_cycles():
    graph = import_graph()
    found = [cycle_path(graph, component) for component in cycles(graph)]
    assert not found, "import cycles in sharpmem_lib:\n" + "\n".join(found)


def layer_of(module: str) -> int | None:
    short = module[len(PACKAGE) + 1:] if module != PACKAGE else ""
    return next((n for n, (_, members) in enumerate(LAYERS) if short in members), None)


def test_every_module_has_a_layer():
    unplaced = [m for m in import_graph() if layer_of(m) is None]
    assert not unplaced, f"place {unplaced} in LAYERS (tests/test_architecture.py, after DESIGN.md)"


def test_lower_layers_never_import_higher_ones():
    graph = import_graph()
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {i} ({LAYERS[layer_of(i)][0]})"
              for m in sorted(graph) for i in sorted(graph[m])
              if layer_of(m) is not None and layer_of(i) is not None and layer_of(i) > layer_of(m)]
    assert not upward, "imports against the layers of DESIGN.md:\n" + "\n".join(upward)


@pytest.mark.parametrize("module", sorted(EQUATIONS))
def test_equations_import_no_engine(module):
    """memorization.py is eqs. 1-3 as pure functions, like sklearn.metrics: nothing that
    trains, loads data or caches."""
    name = f"{PACKAGE}.{module}"
    path = library_modules()[name]
    imported = imported_names(path.read_text(), name, False)
    library = {m for m in imported if m.startswith(PACKAGE + ".") and m in library_modules()}
    assert library <= EQUATIONS[module], f"{name} imports {sorted(library - EQUATIONS[module])}"
    top_level = {m.split(".")[0] for m in imported}
    assert not top_level & ENGINE_PACKAGES, f"{name} imports {sorted(top_level & ENGINE_PACKAGES)}"
