"""The import rules of robustml's packages: no import cycle, a config-free engine, layers that only
look down, and user-loop packages that load no experiment tooling.

The static rules read every ``.py`` under ``robustml/`` with :mod:`ast`: every ``import`` and
``from ... import`` statement counts, at module level or inside a function (an import inside a
function runs as soon as the function does). ``from X import Y`` depends on the module ``X.Y`` when
there is one, on ``X`` otherwise; importing a module also runs the ``__init__`` of each package
above it, so those packages count as dependencies too (except the importer's own, which already
run). Imports under ``if TYPE_CHECKING:`` never run: they count for the layers (they still name an
API the package relies on) but not for cycles. Calls of ``importlib.import_module`` are not seen.

What importing really loads is checked in a fresh interpreter per package: the package and every
one of its modules (``pkgutil.walk_packages``) are imported and ``sys.modules`` is read.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from support import REPO

# The packages of robustml (a top-level module counts as a package), lowest layer first. A package
# imports only packages of lower layers and its own modules. A package listed here but absent on
# disk has no modules, so it breaks no rule.
LAYERS = (
    # Helpers that import nothing of robustml.
    ("robustml._torchvision", "robustml.atomic", "robustml.identity", "robustml.selection",
     "robustml.validation"),
    # The data contract and datasets, the losses, the metrics, the models and the report writers.
    # The trackers send a run's records and files to TensorBoard or MLflow.
    ("robustml.data", "robustml.health", "robustml.losses", "robustml.metrics", "robustml.report",
     "robustml.trackers"),
    # The models and the one forward pass over a dataset (robustml.models.forward reads datasets).
    ("robustml.models",),
    # Mechanisms built on them: counterfactual rules, group inference, last-layer heads, label
    # cleaning, feature caches, JTT's error set.
    ("robustml.augment", "robustml.cleaning", "robustml.features", "robustml.groups",
     "robustml.heads"),
    # Text data sets: tokenized with the tokenizers of robustml.models.pretrained, their
    # counterfactual inputs made by augment's raw-text swaps.
    ("robustml.text",),
    # The audit runs the counterfactual stress test (augment), discovers slices (groups) and
    # estimates label noise with the cleaning path (cleaning).
    ("robustml.audit",),
    # The training engine: loop, checkpoints, evaluation, processes; no configs.
    ("robustml.train",),
    # Orchestration: configs become data, models, stages and runs.
    ("robustml.pipeline",),
    # The command-line entry points.
    ("robustml.cli",),
)
LAYER = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}

# Pairs that the layers allow but the design keeps apart: the counterfactual rules make views for
# the consistency loss and depend on no loss.
ALSO_FORBIDDEN = {"robustml.augment": ("robustml.losses",)}

CONFIG_LIBRARIES = ("hydra", "omegaconf")
ENGINE = "robustml.train"

# The packages a user's own training loop imports, and what they may not load: the config and
# cluster tooling of the command line, and the plotting library (the report imports it when it
# draws).
USER_LOOP = ("robustml.cleaning", "robustml.data", "robustml.groups", "robustml.heads",
             "robustml.losses", "robustml.metrics")
NOT_FOR_USER_LOOP = ("hydra", "omegaconf", "submitit", "matplotlib")


@cache
def modules() -> dict[str, Path]:
    """Return the dotted name of every module under ``robustml/`` and its file."""
    found = {}
    for path in sorted((REPO / "robustml").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _package(module: str) -> str:
    """Return the package of ``module``: ``robustml.data`` for ``robustml.data.contract``."""
    return ".".join(module.split(".")[:2])


def _nearest_module(name: str) -> str:
    """Return the longest prefix of the dotted ``name`` that is a robustml module (or, outside
    robustml, the top-level name)."""
    if name.split(".")[0] != "robustml":
        return name.split(".")[0]
    while name not in modules():
        name = name.rpartition(".")[0]
    return name


@cache
def imports(module: str) -> tuple[frozenset[str], frozenset[str]]:
    """Return what ``module`` imports that runs and what it imports for type checking only.

    A robustml target is the nearest module, plus each package above it that is not above
    ``module``; a third-party target is its top-level name.
    """
    path = modules()[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    type_only = {id(node) for block in ast.walk(tree)
                 if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                 for statement in block.body for node in ast.walk(statement)}
    package = (module if path.name == "__init__.py" else module.rpartition(".")[0]).split(".")
    runtime, typing_only = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base
                     for alias in node.names]
        else:
            continue
        targets = typing_only if id(node) in type_only else runtime
        for name in names:
            target = _nearest_module(name)
            parts = target.split(".")
            if parts[0] == "robustml":
                chain = (".".join(parts[:n]) for n in range(1, len(parts) + 1))
                targets.update(above for above in chain if not f"{module}.".startswith(f"{above}."))
            else:
                targets.add(target)
    return frozenset(runtime), frozenset(typing_only)


def import_cycles() -> list[list[str]]:
    """Return each strongly connected component of more than one module in the graph of run-time
    imports among robustml's modules (Tarjan's algorithm), as sorted names."""
    graph = {module: sorted(target for target in imports(module)[0] if target in modules())
             for module in modules()}
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        index[module] = lowlink[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                lowlink[module] = min(lowlink[module], lowlink[target])
            elif target in stack:
                lowlink[module] = min(lowlink[module], index[target])
        if lowlink[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return cycles


def test_robustml_modules_import_each_other_without_a_cycle():
    cycles = "\n".join(f"  {len(cycle)} modules: {', '.join(cycle)}" for cycle in import_cycles())
    assert not cycles, f"import cycles among robustml's modules (any import statement):\n{cycles}"


def test_the_engine_imports_neither_hydra_nor_omegaconf():
    """``robustml.train`` trains from plain arguments; the configs are the pipeline's business."""
    found = {module: sorted(target for target in set().union(*imports(module))
                            if target in CONFIG_LIBRARIES)
             for module in modules() if _package(module) == ENGINE}
    found = {module: libraries for module, libraries in found.items() if libraries}
    assert not found, f"the engine {ENGINE} imports config libraries: " + "; ".join(
        f"{module} imports {', '.join(libraries)}" for module, libraries in sorted(found.items()))


def test_every_robustml_package_has_a_layer():
    missing = sorted({_package(module) for module in modules()} - set(LAYER) - {"robustml"})
    assert not missing, f"packages without a layer in LAYERS: {missing}"


def test_packages_import_only_packages_of_lower_layers():
    wrong = []
    for module in modules():
        package = _package(module)
        if package not in LAYER:
            continue
        for imported in sorted({_package(target) for target in set().union(*imports(module))}):
            if imported == package or imported not in LAYER:  # its own, robustml, third party
                continue
            if LAYER[imported] >= LAYER[package]:
                wrong.append(f"{module} imports {imported} (layer {LAYER[imported]}, not below "
                             f"{package}'s layer {LAYER[package]})")
            elif imported in ALSO_FORBIDDEN.get(package, ()):
                wrong.append(f"{module} imports {imported}, which {package} may not depend on")
    assert not wrong, "imports that break the layers:\n" + "\n".join(f"  {line}" for line in wrong)


PROBE = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
modules = [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in modules:
    importlib.import_module(name)
print(json.dumps({"imported": modules, "loaded": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("package", USER_LOOP)
def test_user_loop_packages_load_no_experiment_tooling(package):
    out = subprocess.run([sys.executable, "-c", PROBE, package], capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["imported"], f"{package} has no modules to import"
    loaded = sorted({name.split(".")[0] for name in result["loaded"]} & set(NOT_FOR_USER_LOOP))
    assert not loaded, f"importing every module of {package} loads {loaded}"
