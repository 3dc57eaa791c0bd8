"""The package layering stays a one-way data flow: a stage imports only stages below it."""

from __future__ import annotations

import ast
from pathlib import Path

from ctdkit import STAGES

PACKAGE = Path(__file__).parent.parent / "ctdkit"
#: bottom to top; shared utilities (errors, files, progress, cli, parallel) sit below everything
LAYERS = list(STAGES)
STAGE_ORDER = " → ".join(STAGES)
UTILITIES = {"errors", "files", "runs", "progress", "cli", "parallel", "ray_backend"}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "ctdkit" or len(parts) < 2:
        return None
    return parts[1]


def test_no_stage_imports_a_later_stage():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        stage = relative.parts[0].removesuffix(".py")
        if stage not in LAYERS:
            continue  # CLIs and utilities may import anything below them
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                other = _stage(target)
                if other in LAYERS and LAYERS.index(other) > LAYERS.index(stage):
                    violations.append(f"{relative} imports {target}")
                assert (
                    other is None
                    or other in LAYERS
                    or other in UTILITIES
                    or other
                    in {
                        "train_encoder",
                        "train_collective",
                        "evaluate",
                        "train_expert",
                    }
                    or other == "__init__"
                ), f"{relative}: unknown module {target}"
    assert violations == []


def test_the_stage_order_is_written_once_and_repeated_verbatim():
    """The README and the docs state the same order as ``ctdkit.STAGES``, which this test's
    layering check uses; every existing stage package is in it."""
    root = PACKAGE.parent
    for document in (root / "README.md", root / "docs" / "architecture.md"):
        assert STAGE_ORDER in document.read_text(), f"{document.name} states another order"
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(STAGES), f"stage packages missing from STAGES: {packages - set(STAGES)}"


def _import_graph(package: Path, name: str) -> dict[str, set[str]]:
    """Module -> modules of the same package it imports, at module level or inside functions
    (``from ctdkit.x import Name`` counts as importing ``__init__`` unless Name is a module)."""
    modules = {p.stem for p in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for module in modules:
        edges = graph.setdefault(module, set())
        for node in ast.walk(ast.parse((package / f"{module}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == name:
                edges |= {a.name if a.name in modules else "__init__" for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(name + "."):
                edges.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if ".".join(parts[:2]) == name:
                        edges.add(parts[2] if len(parts) > 2 else "__init__")
        edges.discard(module)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path (first module repeated at the end), or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for target in sorted(graph.get(module, ())):
            found = visit(target, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    return next((c for c in (visit(m, []) for m in sorted(graph)) if c), None)


def test_no_package_has_an_import_cycle(tmp_path):
    """No module of a package imports (even lazily, inside a function) one that imports it
    back: a config's ``create`` must not reach its learner through an import."""
    probe = tmp_path / "pkg"  # the check itself sees a cycle closed inside a function
    probe.mkdir()
    (probe / "config.py").write_text("def create():\n    from ctdkit.pkg.learner import L\n")
    (probe / "learner.py").write_text("from ctdkit.pkg import config\n")
    assert _cycle(_import_graph(probe, "ctdkit.pkg")) == ["config", "learner", "config"]
    cycles = {}
    for package in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        graph = _import_graph(package, f"ctdkit.{package.name}")
        cycles[package.name] = " -> ".join(_cycle(graph) or [])
    assert {name: cycle for name, cycle in cycles.items() if cycle} == {}
