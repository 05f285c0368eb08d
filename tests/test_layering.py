"""The package import graph: acyclic, and every import runs down the documented layers.

Every module under `src/siamkit` is parsed with `ast`; imports at module level
and inside functions, relative and absolute, become edges between units (a
subpackage or a top-level module). An edge must go from a higher layer to a
strictly lower one, so two units of one layer never import each other.
"""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
PACKAGE = "siamkit"
ROOT = "siamkit"  # the package itself: `__version__` and lazy attribute access to the subpackages

# Lowest first. A unit may import units of lower layers only.
LAYERS = [
    # Leaves: errors, atomic writes, backend-only fast paths, the package's version.
    (ROOT, "errors", "_io", "backend"),
    # Data in NumPy: loaders and containers (`datasets`), sampling and splits (`data`), and the exact
    # nearest-neighbor kernel with the distance names (`neighbors`).
    ("datasets", "data", "neighbors"),
    # Keras building blocks that need no other siamkit model code.
    ("encoders", "distances"),
    # Audio front end and encoder (on `encoders`, reading WAV through `datasets`); pair models
    # (their heads on `distances`); batch miners.
    ("audio", "models", "miners"),
    ("losses",),  # on `distances` and `miners`
    ("runs",),  # a trained run: loads models, reads files as the run was trained
    ("evaluation",),
    ("training", "index", "export"),  # training evaluates what it trained; the index and export read a run
    ("service", "report"),  # the report reads runs, evaluates them, and shows two-tower runs' test split
    ("cli",),
]

def _modules():
    """`{dotted name: path}` of every module of the package (a package by its `__init__.py`)."""
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _unit(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


class _Imports(ast.NodeVisitor):
    """`(target module, line)` of every import in one module, inside functions too (`generic_visit`)."""

    def __init__(self, module, is_package, modules):
        self.package = module.split(".") if is_package else module.split(".")[:-1]
        self.modules = modules
        self.found = []

    def visit_Import(self, node):
        for alias in node.names:
            self.found.append((alias.name, node.lineno))

    def visit_ImportFrom(self, node):
        if node.level:
            base = self.package[: len(self.package) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module
        for alias in node.names:
            submodule = f"{module}.{alias.name}"  # `from pkg import submodule` imports the submodule
            self.found.append((submodule if submodule in self.modules else module, node.lineno))


def _edges():
    """`{(unit, imported unit): [(file, line), ...]}` over the whole package."""
    modules = _modules()
    edges = {}
    for module, path in modules.items():
        visitor = _Imports(module, path.name == "__init__.py", modules)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for target, line in visitor.found:
            if target.split(".")[0] != PACKAGE or _unit(target) == _unit(module):
                continue
            where = (path.relative_to(SRC).as_posix(), line)
            edges.setdefault((_unit(module), _unit(target)), []).append(where)
    return edges


def _describe(edge, places):
    return "; ".join(f"{f}:{line} ({edge[0]} imports {edge[1]})" for f, line in places)


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in _modules()}
    layered = [u for layer in LAYERS for u in layer]
    assert len(layered) == len(set(layered)), "a unit is listed in two layers"
    missing, gone = sorted(units - set(layered)), sorted(set(layered) - units)
    assert not missing and not gone, f"units without a layer: {missing}; layered units that are gone: {gone}"


def test_imports_run_down_the_layers():
    level = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
    wrong = [
        _describe(edge, places) for edge, places in sorted(_edges().items()) if level[edge[0]] <= level[edge[1]]
    ]
    assert not wrong, "imports against the layering (lowest first: " + " < ".join(
        "/".join(layer) for layer in LAYERS
    ) + "):\n" + "\n".join(wrong)


def test_the_package_graph_has_no_cycle():
    edges = _edges()
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state, stack = {}, []

    def visit(unit):  # depth-first; a grey node met again closes a cycle
        state[unit] = "grey"
        stack.append(unit)
        for nxt in sorted(graph.get(unit, ())):
            if state.get(nxt) == "grey":
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail(
                    "import cycle " + " -> ".join(cycle) + ":\n"
                    + "\n".join(_describe((a, b), edges[(a, b)]) for a, b in zip(cycle, cycle[1:]))
                )
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[unit] = "black"

    for unit in sorted(graph):
        if unit not in state:
            visit(unit)


def _fresh_import(code):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_import_evaluation_loads_neither_keras_nor_matplotlib():
    # Keras itself imports matplotlib when it is installed, so evaluation stays free of both: its
    # plots import matplotlib when a figure is drawn, and the Keras parts load with a model.
    done = _fresh_import(
        """
        import sys
        import siamkit.evaluation
        loaded = sorted(m for m in ("keras", "matplotlib", "tensorflow") if m in sys.modules)
        assert not loaded, loaded
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_import_datasets_loads_no_keras():
    done = _fresh_import(
        """
        import sys
        import siamkit.datasets
        loaded = sorted(m for m in ("keras", "siamkit.audio", "matplotlib") if m in sys.modules)
        assert not loaded, loaded
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_submodules_reachable_from_the_package():
    import siamkit

    assert {"miners", "service"} <= set(dir(siamkit))
    assert siamkit.miners.__name__ == "siamkit.miners" and siamkit.service.__name__ == "siamkit.service"
