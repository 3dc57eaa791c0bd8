"""The data side of the benchmark: build a suite's dataset from its recipe when absent, cut
task/episode subsets, and hand d3rlpy ``[context, observation]`` rows with true next rows and
the actions its learner trains on (executed, or on relabelled data a labeller's for BC)."""

from __future__ import annotations

import dataclasses
import hashlib
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from ctdkit.collect import CollectConfig, collect
from ctdkit.data import Transitions, load_datasets, to_d3rlpy
from ctdkit.data.fingerprint import dataset_fingerprint, equivalence
from ctdkit.data.recipes import (
    RECIPES_DIR,
    find_recipe,
    find_recipe_file,
    parse_recipe,
    recipe_checksum,
    recipe_fingerprint,
)
from ctdkit.data.store import datasets_root
from ctdkit.errors import CtdkitError, unknown
from ctdkit.policies.random import ACTION_HIGH, ACTION_LOW


def recipe(dataset_id: str, fallback: str | None = None) -> tuple[str, str | None]:
    """The ``python -m ctdkit.collect`` command that builds ``dataset_id`` and the content
    checksum its recipe records (None for a suite's own ``fallback`` command). The
    repository's recipes are absent in an installed wheel: only suites with their own
    ``recipe`` can then be built."""
    found = find_recipe(dataset_id, RECIPES_DIR)
    if found is not None:
        return found["command"], found.get("content_checksum")
    if fallback is not None:
        return fallback, None
    raise CtdkitError(f"dataset {dataset_id} is absent and has no recipe in {RECIPES_DIR}")


def recipe_command(dataset_id: str, fallback: str | None = None) -> str:
    return recipe(dataset_id, fallback)[0]


def collect_config(command: str) -> CollectConfig:
    words = shlex.split(command)
    if words[:3] != ["python", "-m", "ctdkit.collect"]:
        raise CtdkitError(f"recipe command is not a ctdkit.collect command: {command}")
    return tyro.cli(CollectConfig, args=words[3:])


@dataclass(frozen=True)
class DatasetCheck:
    """A suite's local dataset and how it stands to its recipe."""

    checksum: str  # the local data's content checksum (what runs train on and record)
    recipe_checksum: str | None = None  # the recipe's; None without a recipe
    #: "identical" (same checksum), "equivalent" (same episodes within the recipe's
    #: fingerprint tolerance), "unverified" (checksums differ, the recipe has no fingerprint);
    #: None without a recipe
    equivalence: str | None = None

    def record_fields(self) -> dict[str, Any]:
        """What a run record's ``dataset`` object states about the recipe (nothing without)."""
        if self.recipe_checksum is None:
            return {}
        return {"recipe_checksum": self.recipe_checksum, "data_equivalence": self.equivalence}


def check_dataset(
    dataset_id: str,
    root: Path | None,
    fallback: str | None = None,
    progress: bool = True,
    build: bool = True,
) -> DatasetCheck:
    """The local ``dataset_id`` (collected from its recipe first if absent; ``build=False``: a
    one-line error instead) compared with its recipe in ``datasets/``: the recipe's content
    checksum → identical; else, by the recipe's fingerprint, equivalent within tolerance
    (accepted: another CPU rounds differently) or different (one line naming the first
    differing episode). A recipe without a fingerprint leaves a differing copy unverified,
    with a warning."""
    try:
        checksum = load_datasets(dataset_id, root).checksum
    except CtdkitError as error:
        if "unknown dataset id" not in str(error):
            raise
        checksum = _build(dataset_id, root, fallback, progress, build)
    where = find_recipe_file(dataset_id, RECIPES_DIR)
    found = None if where is None else parse_recipe(where)[1]
    if found is None or "content_checksum" not in found:
        return DatasetCheck(checksum)
    expected = recipe_checksum(found, where)
    reference = recipe_fingerprint(found, where)
    if checksum != expected and reference is None:
        warnings.warn(
            f"{dataset_id} has content checksum {checksum[:12]}, its recipe records "
            f"{expected[:12]} and no fingerprint to compare within tolerance (versions or CPU "
            "differ?)",
            stacklevel=2,
        )
        return DatasetCheck(checksum, expected, "unverified")
    match = equivalence(
        dataset_id, checksum, expected, lambda: dataset_fingerprint(dataset_id, root), reference
    )
    if match.kind == "equivalent":
        print(match.message(dataset_id))
    return DatasetCheck(checksum, expected, match.kind)


def ensure_dataset(
    dataset_id: str,
    root: Path | None,
    fallback: str | None = None,
    progress: bool = True,
    build: bool = True,
) -> str:
    """The content checksum of ``dataset_id`` after :func:`check_dataset`."""
    return check_dataset(dataset_id, root, fallback, progress, build).checksum


def _build(
    dataset_id: str, root: Path | None, fallback: str | None, progress: bool, build: bool
) -> str:
    """Collect the absent ``dataset_id`` from its recipe; its content checksum."""
    command, _ = recipe(dataset_id, fallback)
    if not build:
        raise CtdkitError(f"dataset {dataset_id} is absent (`run` builds it: {command})")
    if command.startswith("python -m ctdkit.train_expert"):
        raise CtdkitError(
            f"dataset {dataset_id} is absent; it is an expert's training replay (an hour or "
            f"more of online SAC), which the bench does not start on its own: run `{command}`"
        )
    if command.startswith("python -m ctdkit.dagger"):
        raise CtdkitError(
            f"dataset {dataset_id} is absent; it is a DAgger tier (rounds of collective "
            f"training, about 20 min on 2 cores), which the bench does not start on its own: "
            f"run `{command}`"
        )
    root = Path(root) if root is not None else datasets_root()
    print(f"building {dataset_id} from its recipe into {root}")
    return collect(
        collect_config(command).replace(root=root, progress=progress, resume=True)
    ).checksum


def episode_counts(dataset_id: str, root: Path | None) -> dict[str, int]:
    """Episodes per task of a local dataset (from Minari's metadata, no data read)."""
    group = load_datasets(dataset_id, root)
    return {task: dataset.total_episodes for task, dataset in group}


def select(
    data: Transitions, tasks: Sequence[str] = (), episodes_per_task: int | None = None
) -> Transitions:
    """The rows of the first ``episodes_per_task`` episodes of each of ``tasks`` (in dataset
    order; empty: every task), with task and episode indices renumbered."""
    starts = np.flatnonzero(np.diff(data.episode_index, prepend=-1) != 0)
    episode_task = data.task_index[starts]
    kept_tasks = tuple(t for t in data.tasks if not tasks or t in tasks)
    missing = [t for t in tasks if t not in data.tasks]
    if missing:
        raise CtdkitError(f"dataset {data.dataset_id} has no task {missing[0]!r}")
    keep = np.isin(episode_task, [data.tasks.index(t) for t in kept_tasks])
    if episodes_per_task is not None:
        if episodes_per_task < 1:
            raise CtdkitError(f"episodes per task must be at least 1, got {episodes_per_task}")
        rank = np.zeros(len(starts), dtype=np.int64)  # episode's position within its task
        for task in np.unique(episode_task):
            mine = np.flatnonzero(episode_task == task)
            rank[mine] = np.arange(len(mine))
            if len(mine) < episodes_per_task and data.tasks[task] in kept_tasks:
                raise CtdkitError(
                    f"dataset {data.dataset_id} has {len(mine)} episodes of "
                    f"{data.tasks[task]}, fewer than the {episodes_per_task} asked for"
                )
        keep &= rank < episodes_per_task
    rows = keep[np.searchsorted(starts, np.arange(len(data)), side="right") - 1]
    arrays = {name: value[rows] for name, value in data.arrays().items()}
    arrays["episode_index"] = np.unique(arrays["episode_index"], return_inverse=True)[1]
    remap = np.full(len(data.tasks), -1, dtype=np.int64)
    remap[[data.tasks.index(t) for t in kept_tasks]] = np.arange(len(kept_tasks))
    arrays["task_index"] = remap[arrays["task_index"]]
    return dataclasses.replace(data, **arrays, tasks=kept_tasks)


def transitions_checksum(data: Transitions) -> str:
    """sha256 over every array of ``data`` (name, dtype, shape, bytes) and its task list: the
    identity of exactly the rows a run trained on."""
    h = hashlib.sha256()
    h.update(("|".join(data.tasks) + "|" + data.view).encode())
    for name, array in sorted(data.arrays().items()):
        array = np.ascontiguousarray(array)
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def target_actions(data: Transitions, targets: str = "actions") -> np.ndarray:
    """The executed actions, or (``labels``) the labeller's action at every row clipped to the
    action bounds. Only relabelled data has labels to clone: elsewhere ``expert_action_mean``
    is the acting policy's own label (a random episode's is no expert's), so it is refused."""
    from ctdkit.bench.algos import ACTION_TARGETS

    if targets not in ACTION_TARGETS:
        raise unknown("action targets", targets, ACTION_TARGETS)
    if targets == "actions":
        return data.actions
    if not data.relabelled:
        raise CtdkitError(
            f"dataset {data.dataset_id} is not relabelled (collect it with --labeller): "
            "it has no labeller's labels to train on"
        )
    return np.clip(data.expert_action_mean, ACTION_LOW, ACTION_HIGH).astype(np.float32)


def conditioned_dataset(
    data: Transitions,
    context: np.ndarray,
    next_context: np.ndarray,
    view: str,
    targets: str = "actions",
):
    """An aligned d3rlpy ``MDPDataset`` whose observations are ``[context, observation]`` and
    whose actions are :func:`target_actions` (rewards and next rows stay the executed ones).

    ``to_d3rlpy`` keeps each transition's true next observation; handing it rows whose next
    observation is ``[next_context, next_observation]`` keeps that for the augmented rows too
    (inside an episode ``next_context[t] == context[t + 1]`` for every context model).
    """
    from ctdkit.bench.algos import conditioned

    augmented = dataclasses.replace(
        data,
        observations=conditioned(data.observations, context, view),
        next_observations=conditioned(data.next_observations, next_context, view),
        actions=target_actions(data, targets),
    )
    return to_d3rlpy(augmented)
