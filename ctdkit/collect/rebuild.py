"""Determinism as a feature: rebuild a dataset from its recorded command and compare the data.

On the machine that made a dataset the rebuild reproduces its content checksum. On another CPU
the float bytes differ (docs/ecosystem.md, "Floating point across machines"), so a rebuild
whose checksum differs is compared with the local copy by per-episode fingerprint
(``ctdkit.data.fingerprint``): equal lengths and success flags, returns within 0.1%.
"""

from __future__ import annotations

import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tyro

from ctdkit.collect.config import CollectConfig
from ctdkit.collect.runner import collect
from ctdkit.data.fingerprint import (
    Equivalence,
    compare_fingerprints,
    dataset_fingerprint,
    describe_platform,
    platform_summary,
)
from ctdkit.data.loader import load_datasets
from ctdkit.data.store import CTDKIT_METADATA_KEY, datasets_root
from ctdkit.errors import CtdkitError


@dataclass
class Rebuilt:
    """What a rebuild found: problems (empty: it reproduces the data), else how it matched."""

    problems: list[str] = field(default_factory=list)
    #: identical (same content checksum) or equivalent within tolerance; None with problems
    equivalence: Equivalence | None = None


def rebuild_check(dataset_id: str, root: Path | None = None) -> Rebuilt:
    """Re-run the ``ctdkit.collect`` command recorded in a dataset or group into a temporary
    root and compare it with the local copy: identical when every member's content checksum
    is reproduced; else the members that differ are compared by fingerprint (rebuilt vs
    local), and one that is not equivalent within tolerance is a problem naming its first
    differing episode."""
    root = datasets_root(root)
    group = _recorded(dataset_id, root)
    command = group["command"]
    words = shlex.split(command)
    if words[:3] != ["python", "-m", "ctdkit.collect"]:
        raise CtdkitError(f"{dataset_id} records no ctdkit.collect command to rebuild it from")
    config = tyro.cli(CollectConfig, args=words[3:])
    local_checksum = load_datasets(dataset_id, root).checksum
    with tempfile.TemporaryDirectory(prefix="ctdkit-rebuild-") as tmp:
        result = collect(config.replace(root=Path(tmp), progress=False, overwrite=True))
        rebuilt = {t.dataset_id: t.checksum for t in result.tasks}
        problems = [
            f"{member}: the recorded command does not rebuild it"
            for member in group["checksums"]
            if member not in rebuilt
        ]
        if problems:
            return Rebuilt(problems)
        differing = [m for m, c in group["checksums"].items() if rebuilt[m] != c]
        checksum = load_datasets(dataset_id, Path(tmp)).checksum
        if not differing:
            return Rebuilt([], Equivalence("identical", checksum, local_checksum, "local"))
        largest = 0.0
        for member in differing:
            comparison = compare_fingerprints(
                dataset_fingerprint(member, Path(tmp)), dataset_fingerprint(member, root)
            )
            if not comparison.equivalent:
                problems.append(
                    f"{member}: rebuilt content checksum differs; different: "
                    f"{comparison.difference} (rebuilt vs local)"
                )
            largest = max(largest, comparison.largest_return_difference)
    if problems:
        return Rebuilt(problems)
    made_on = "rebuilt on " + describe_platform(platform_summary())
    return Rebuilt(
        [], Equivalence("equivalent", checksum, local_checksum, "local", largest, made_on)
    )


def rebuild_problems(dataset_id: str, root: Path | None = None) -> list[str]:
    """The problems :func:`rebuild_check` finds (empty: identical or equivalent)."""
    return rebuild_check(dataset_id, root).problems


def _recorded(dataset_id: str, root: Path) -> dict[str, Any]:
    """The recorded command and the members' content checksums of a local dataset or group."""
    group = load_datasets(dataset_id, root)
    checksums = {
        d.spec.dataset_id: d.storage.metadata[CTDKIT_METADATA_KEY]["content_checksum"]
        for d in group.datasets
    }
    command = group.datasets[0].storage.metadata[CTDKIT_METADATA_KEY].get("command", "")
    return {"command": command, "checksums": checksums}
