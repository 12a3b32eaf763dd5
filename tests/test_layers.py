"""The package's floors (``docs/design.md``, Layers): every module imports only its own floor or
those below; the library below the application never imports Hydra; tests and benchmarks use
public names only, without ``sys.path`` edits."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "invprob"
CONTRACTS = {"errors", "checks", "streams", "sampling", "linalg", "io", "noise", "problem", "operators.base", "priors.base",
             "solvers.base"}


def layer(module: str) -> int:
    """1: primitives and contracts, 2: operators / priors / solvers / registry, 3: evaluation and app."""
    if module in CONTRACTS:
        return 1
    top = module.split(".")[0]
    if top in ("operators", "priors", "solvers", "registry", "datasets", "weights", "examples_data", "conf"):
        return 2
    if top in ("evaluation", "app", "training", "calibration"):
        return 3
    raise AssertionError(f"module invprob.{module} has no layer; add it to docs/design.md and this test")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            found[".".join(parts)] = path
    return found


def imported(module: str, path: Path) -> set[str]:
    """``invprob`` modules that ``module`` imports (relative and absolute imports)."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("invprob"):
                target = node.module[len("invprob."):] if node.module != "invprob" else ""
            else:
                continue
            for alias in node.names:
                names.add(f"{target}.{alias.name}".strip("."))
                names.add(target)
        elif isinstance(node, ast.Import):
            names.update(a.name[len("invprob."):] for a in node.names if a.name.startswith("invprob."))
    known = modules()
    return {n for n in names if n in known}


def test_each_module_imports_only_its_floor_or_below():
    wrong = []
    for module, path in modules().items():
        if "." not in module and path.name == "__init__.py":
            continue
        for target in imported(module, path):
            if target and layer(target) > layer(module):
                wrong.append(f"invprob.{module} (layer {layer(module)}) imports invprob.{target} (layer {layer(target)})")
    assert not wrong, "\n".join(wrong)


def test_the_library_below_the_application_never_imports_hydra():
    users = [m for m, p in modules().items() if re.search(r"^\s*(from|import) (hydra|omegaconf)", p.read_text(), re.M)
             and layer(m) < 3]
    assert not users, users


def test_tests_and_benchmarks_use_public_names_without_path_tricks():
    offences = []
    for path in list((ROOT / "tests").glob("*.py")) + list((ROOT / "benchmarks").glob("*.py")):
        text = path.read_text()
        if "sys.path" in text and path.name != "test_layers.py":
            offences.append(f"{path.name}: sys.path")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("invprob"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                private += [part for part in node.module.split(".") if part.startswith("_")]
                if private:
                    offences.append(f"{path.name}: from {node.module} import {private}")
    assert not offences, offences
