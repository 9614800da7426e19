"""The package's layout: modules depend downward only, never on another part's private modules, and stay small.

The layers, bottom to top (a module may import from its own part or from a lower layer):

0. ``skearly._utils``, ``skearly._version`` -- shared private helpers;
1. ``skearly.network`` -- the multi-exit network and its encoder adapters;
2. the strategies and leaves: ``exit_criteria``, ``objectives``, ``calibration``, ``encoders``, ``datasets``;
3. ``skearly.training`` (fit side), ``skearly.inference`` (predict side), ``skearly.assets`` (install step);
4. ``exit_curve``, ``persistence``; 4.5. ``_fit_params`` (the estimator's parameter checks);
5. ``estimator``; 6. ``model_selection``; 7. ``skearly.integrations``; 8. the ``skearly`` package itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skearly"

LAYERS = {
    "_utils": 0,
    "_version": 0,
    "network": 1,
    "exit_criteria": 2,
    "objectives": 2,
    "calibration": 2,
    "encoders": 2,
    "datasets": 2,
    "training": 3,
    "inference": 3,
    "assets": 3,
    "exit_curve": 4,
    "persistence": 4,
    "_fit_params": 4.5,
    "estimator": 5,
    "model_selection": 6,
    "integrations": 7,
    "": 8,
}
MAX_LINES = 800


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _part(module: str) -> str:
    """The top-level part of skearly a module belongs to (``""`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[str, bool]]:
    """Every skearly module imported by ``path``, with whether the import runs at module load."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports (skearly.<part>), not relative ones"
            names = [node.module] if node.module else []
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(name, id(node) in top_level) for name in names if name == "skearly" or name.startswith("skearly.")]
    return found


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_part_has_a_layer():
    assert {_part(module) for module in MODULES} <= set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_downward_and_respect_privacy(module):
    part = _part(module)
    for target, _ in _imports(MODULES[module]):
        target_part = _part(target)
        if target_part == part:
            continue
        assert LAYERS[target_part] < LAYERS[part], f"{module} imports {target}: an upward or sideways import"
        private = [piece for piece in target.split(".")[2:] if piece.startswith("_")]
        assert not private, f"{module} reaches into {target}, a private module of skearly.{target_part}"


def test_no_import_circle():
    graph = {
        module: {target for target, at_load in _imports(path) if at_load and target in MODULES and target != module}
        for module, path in MODULES.items()
    }
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in graph[module]:
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join([*trail, module, target]))
            if not state.get(target):
                visit(target, [*trail, module])
        state[module] = 2

    for module in graph:
        if not state.get(module):
            visit(module, [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    n_lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert n_lines <= MAX_LINES, f"{module} has {n_lines} lines (at most {MAX_LINES})"


def test_the_layout_names_each_stage():
    """A newcomer finds fit, predict, the exit rule, calibration, the engine and persistence by name."""
    for where in ("training", "inference", "exit_criteria.py", "calibration.py", "persistence.py", "estimator.py"):
        assert (PACKAGE / where).exists(), where
