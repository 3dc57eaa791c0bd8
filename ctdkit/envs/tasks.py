"""Meta-World task names and task sets (MT1/MT10/MT50).

The lists come from metaworld itself (v3 names only), so they cannot drift from the installed
benchmark; :func:`resolve_tasks` turns what a user types (``MT10``, ``reach-v3,push-v3``) into
an ordered task list.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from metaworld import _env_dict  # private module: metaworld is pinned, tests cover it

from ctdkit.errors import CtdkitError, unknown

MT10: tuple[str, ...] = tuple(_env_dict.MT10_V3.keys())
MT50: tuple[str, ...] = tuple(_env_dict.MT50_V3.keys())
ALL_TASKS: tuple[str, ...] = tuple(_env_dict.ALL_V3_ENVIRONMENTS.keys())
TASK_SETS: dict[str, tuple[str, ...]] = {"MT10": MT10, "MT50": MT50}


def validate_task(task: str) -> str:
    """Return ``task`` if Meta-World knows it, else raise a one-line error listing valid ones."""
    if task not in ALL_TASKS:
        raise unknown("task", task, ALL_TASKS)
    return task


def resolve_tasks(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Expand task sets and names into an ordered, duplicate-free task tuple.

    ``spec`` may be ``"MT10"``, ``"MT50"``, ``"reach-v3,push-v3"`` or a list mixing both
    (``["MT10", "hammer-v3"]``). Order is preserved: it fixes each task's index in a dataset.
    """
    items = [spec] if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        for part in (p.strip() for p in item.split(",")):
            if not part:
                continue
            upper = part.upper()
            if upper in TASK_SETS:
                names.extend(TASK_SETS[upper])
            elif upper == "MT1":
                raise CtdkitError("task set 'MT1' needs a task: pass the task name, e.g. reach-v3")
            else:
                names.append(validate_task(part))
    if not names:
        raise CtdkitError("no tasks given (pass MT10, MT50 or task names such as reach-v3)")
    return tuple(dict.fromkeys(names))


def task_set_name(tasks: Sequence[str]) -> str:
    """Name a task list: 'MT10'/'MT50' when it is exactly one of those, 'MT1' for one task."""
    for name, members in TASK_SETS.items():
        if tuple(tasks) == members:
            return name
    return "MT1" if len(tasks) == 1 else "custom"


def stable_task_id(task: str) -> int:
    """A stable integer per task name (for seeding), independent of any task list's order."""
    return zlib.crc32(task.encode())
