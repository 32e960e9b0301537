"""The package's shape, checked from its source: Device is a leaf, imports point one way (no cycle at
import time), and no private name (``_x``) is imported from another module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_edgeai

PACKAGE = Path(pytest_edgeai.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def run_time_imports(module: str) -> set[str]:
    """Modules of ours that importing ``module`` imports (TYPE_CHECKING blocks and functions excluded)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.ImportFrom):
                target = imported(module, node)
                found.update(t for t in [target, *(f"{target}.{a.name}" for a in node.names)] if t in MODULES)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in MODULES)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(MODULES[module].read_text()).body)
    return found - {module}


def test_device_is_a_leaf_that_imports_nothing_of_ours() -> None:
    assert run_time_imports("pytest_edgeai.devices") == set()


def test_no_module_imports_a_private_name_of_another() -> None:
    crossing = [f"{module}: from {imported(module, node)} import {alias.name}"
                for module, path in MODULES.items() for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert crossing == []


def test_there_is_no_import_cycle_outside_a_package_and_its_own_modules() -> None:
    graph = {m: {d for d in run_time_imports(m) if not m.startswith(d + ".")} for m in MODULES}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                walk(dep, [*path, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert cycles == []


def imports_inside_functions(module: str) -> list[tuple[int, str]]:
    """(line, module imported) for each import of ours inside a function of ``module``."""
    found = []
    for fn in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (
                        node.level > 0 or (node.module or "").startswith("pytest_edgeai")):
                    target = imported(module, node)
                    found.extend((node.lineno, t) for t in [target, *(f"{target}.{a.name}" for a in node.names)]
                                 if t in MODULES)
    return found


def closure(module: str) -> set[str]:
    """Every module of ours that importing ``module`` imports, directly or not (parent packages included)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        parts = current.split(".")
        for dep in run_time_imports(current) | {".".join(parts[:i]) for i in range(2, len(parts))}:
            if dep in MODULES and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_no_import_inside_a_function_dodges_a_cycle() -> None:
    """An import inside a function is fine to defer a heavy module (onnx, a runtime) until it is needed, not to
    break a loop: the module imported must not itself import the importer."""
    dodges = [f"{module}:{line} imports {target}, which imports {module}"
              for module in MODULES for line, target in imports_inside_functions(module)
              if module in closure(target)]
    assert dodges == []


def test_the_layers_that_used_to_loop_now_point_one_way() -> None:
    """config -> backends.base / energy.meter at the top; the backends' caches and the environment do not reach
    into the zoo or the backends."""
    assert "pytest_edgeai.config" not in closure("pytest_edgeai.backends.base")
    assert "pytest_edgeai.config" not in closure("pytest_edgeai.devices")
    assert not {"pytest_edgeai.backends", "pytest_edgeai.backends.base"} & closure("pytest_edgeai.results.environment")
    assert "pytest_edgeai.models.zoo" not in closure("pytest_edgeai.backends.onnxruntime")
    assert not [t for _, t in imports_inside_functions("pytest_edgeai.backends.onnxruntime") if t.startswith(
        "pytest_edgeai.models")]


def test_every_public_name_resolves_and_importing_the_package_is_cheap() -> None:
    import subprocess
    import sys

    code = ("import json, sys, pytest_edgeai; before = set(sys.modules); "
            "values = [getattr(pytest_edgeai, n) for n in pytest_edgeai.__all__]; "
            "print(json.dumps(sorted(m for m in before if m.split('.')[0] in ('numpy', 'onnx', 'onnxruntime'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"  # numpy, onnx, onnxruntime load only when a name needs them


def test_the_suites_import_only_the_public_api() -> None:
    suites = PACKAGE.parent / "suites"
    names = {alias.name for path in suites.glob("test_*.py") for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_edgeai")
             for alias in node.names}
    modules = {node.module for path in suites.glob("test_*.py") for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_edgeai")}
    assert modules == {"pytest_edgeai"}
    assert names <= set(pytest_edgeai.__all__)
