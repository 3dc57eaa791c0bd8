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
