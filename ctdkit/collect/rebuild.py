"""Determinism as a feature: rebuild a dataset from its recorded command, compare checksums."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import Any

import tyro

from ctdkit.collect.config import CollectConfig
from ctdkit.collect.runner import collect
from ctdkit.data.loader import load_datasets
from ctdkit.data.store import CTDKIT_METADATA_KEY, datasets_root
from ctdkit.errors import CtdkitError


def rebuild_problems(dataset_id: str, root: Path | None = None) -> list[str]:
    """Re-run the ``ctdkit.collect`` command recorded in a dataset or group and compare content
    checksums with the local copy (collection is deterministic: they must be equal)."""
    root = datasets_root(root)
    group = _recorded(dataset_id, root)
    command = group["command"]
    words = shlex.split(command)
    if words[:3] != ["python", "-m", "ctdkit.collect"]:
        raise CtdkitError(f"{dataset_id} records no ctdkit.collect command to rebuild it from")
    config = tyro.cli(CollectConfig, args=words[3:])
    with tempfile.TemporaryDirectory(prefix="ctdkit-rebuild-") as tmp:
        result = collect(config.replace(root=Path(tmp), progress=False, overwrite=True))
    rebuilt = {t.dataset_id: t.checksum for t in result.tasks}
    problems = []
    for member, checksum in group["checksums"].items():
        if member not in rebuilt:
            problems.append(f"{member}: the recorded command does not rebuild it")
        elif rebuilt[member] != checksum:
            problems.append(f"{member}: rebuilt content checksum differs")
    return problems


def _recorded(dataset_id: str, root: Path) -> dict[str, Any]:
    """The recorded command and the members' content checksums of a local dataset or group."""
    group = load_datasets(dataset_id, root)
    checksums = {
        d.spec.dataset_id: d.storage.metadata[CTDKIT_METADATA_KEY]["content_checksum"]
        for d in group.datasets
    }
    command = group.datasets[0].storage.metadata[CTDKIT_METADATA_KEY].get("command", "")
    return {"command": command, "checksums": checksums}
