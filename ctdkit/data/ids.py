"""Dataset ids: versioned Minari ids for single-task datasets and multi-task groups.

Minari stores one env spec per dataset, so a multi-task collection is one dataset per task in
a common namespace. The *group id* ``ctdkit/mt10-scripted-v0`` names the datasets
``ctdkit/mt10-scripted/<task stem>-v0`` (``reach-v3`` -> ``reach``), one per task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ctdkit.errors import CtdkitError
from ctdkit.files import safe_relative_path

_VERSIONED = re.compile(r"^(?P<base>[\w:.\-/]+?)-v(?P<version>\d+)$")
_TASK_VERSION = re.compile(r"-v\d+$")


@dataclass(frozen=True)
class GroupId:
    """A multi-task group: ``namespace`` + ``version``, e.g. ``ctdkit/mt10-scripted`` v0."""

    namespace: str
    version: int

    def __str__(self) -> str:
        return f"{self.namespace}-v{self.version}"

    def task_dataset_id(self, task: str) -> str:
        """The Minari id of one task's dataset in this group."""
        return f"{self.namespace}/{task_stem(task)}-v{self.version}"


def split_version(dataset_id: str) -> tuple[str, int]:
    """``'a/b-v3'`` -> ``('a/b', 3)``; a missing ``-vN`` suffix is a user error.

    An id becomes a folder under the datasets root, whether a user typed it or a remote or a
    dataset's metadata named it, so it is checked like a path first (no ``..``, no ``/`` at
    the start, no backslash).
    """
    safe_relative_path(dataset_id, "dataset id")
    match = _VERSIONED.match(dataset_id)
    if match is None:
        raise CtdkitError(
            f"dataset id {dataset_id!r} needs a version suffix -vN (e.g. ctdkit/mt10-scripted-v0)"
        )
    return match["base"], int(match["version"])


def parse_group_id(dataset_id: str) -> GroupId:
    base, version = split_version(dataset_id)
    if base.startswith("/") or base.endswith("/") or "//" in base:
        raise CtdkitError(f"dataset id {dataset_id!r} is not a valid Minari id")
    return GroupId(base, version)


def task_stem(task: str) -> str:
    """``'pick-place-v3'`` -> ``'pick-place'`` (the version belongs to the dataset id)."""
    return _TASK_VERSION.sub("", task)
