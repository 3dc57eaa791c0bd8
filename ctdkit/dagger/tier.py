"""The DAgger tier: every round of a finished DAgger run as one Minari dataset group.

A DAgger run keeps each round as its own group inside its run folder (``datasets/dagger/
round-<i>``), named generically so that runs never collide. ``--export-dataset-id`` publishes
their union under a versioned id into a datasets root, one member per task holding that task's
episodes of rounds 0..N in round order: round 0 is the noisy expert, later rounds the mixture of
the expert and the collective of the round before. Every step keeps the acting policy's action
and labels (what offline RL learns from) and the scripted labeller's label (what BC and the
collective clone). Episode metadata gain ``round`` and ``beta``; dataset metadata record the
run's settings and, per round, β, the collection seed, the acting checkpoint's sha256 and the
round's content checksum. Written through the one dataset writer and the one group writer, so
the group appears all-or-nothing and carries a content checksum like any collection.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from minari.namespace import create_namespace

from ctdkit.data.checksum import combine_checksums
from ctdkit.data.episode import EpisodeData
from ctdkit.data.ids import parse_group_id
from ctdkit.data.loader import load_datasets
from ctdkit.data.store import (
    RecordedEnv,
    datasets_root,
    group_records,
    minari_root,
    publish_group,
    read_group_metadata,
    staging_dir,
    write_dataset,
    writer_lock,
)
from ctdkit.envs.tasks import task_set_name
from ctdkit.errors import CtdkitError

#: per-episode metadata Minari writes itself (an exported episode gets fresh ones)
MINARI_EPISODE_KEYS = ("id", "total_steps")


def export_tier(
    run_datasets: Path,
    records: list[dict[str, Any]],
    dataset_id: str,
    root: Path | None,
    settings: dict[str, Any],
    command: str,
) -> str:
    """Publish rounds ``records[0..N]`` of a finished run (their groups under ``run_datasets``)
    as the group ``dataset_id`` in ``root``; returns its content checksum. A group that
    already exists with this run's rounds is left as it is (a rerun of a finished run)."""
    group = parse_group_id(dataset_id)
    root = datasets_root(root)
    rounds = [_round_summary(r) for r in records]
    existing = read_group_metadata(root, group.namespace, group.version)
    if existing is not None:
        if existing.get("dagger_rounds") != rounds:
            raise CtdkitError(
                f"dataset {dataset_id} already exists in {root} with other DAgger rounds: "
                "choose another --export-dataset-id (or delete that dataset)"
            )
        return str(existing["content_checksum"])
    sources = [load_datasets(r["dataset_id"], run_datasets) for r in records]
    tasks = sources[0].tasks
    if any(s.tasks != tasks for s in sources):
        raise CtdkitError(f"the rounds under {run_datasets} do not share one task list")
    members = [group.task_dataset_id(task) for task in tasks]
    staging = staging_dir(root, str(group))
    with writer_lock(root, str(group)):
        shutil.rmtree(staging, ignore_errors=True)
        checksums = []
        with minari_root(staging / "minari"):
            create_namespace(group.namespace)
            for task_index, (task, member) in enumerate(zip(tasks, members, strict=True)):
                parts = [dict(source)[task] for source in sources]
                first = parts[0]
                extra = {
                    **first.storage.metadata["ctdkit"],
                    "group_id": str(group),
                    "task_index": task_index,
                    "policy": "dagger",
                    "kind": "dagger",
                    "dagger_rounds": rounds,
                    "dagger_settings": settings,
                    "command": command,
                }
                for key in ("content_checksum", "acting", "seed", "noise", "created"):
                    extra.pop(key, None)
                dataset = write_dataset(
                    member,
                    _episodes(parts, records),
                    _recorded_env(first),
                    data_format=first.storage.metadata.get("data_format", "hdf5"),
                    description=(
                        f"Meta-World {task}: the {len(records)} rounds of a DAgger run in "
                        "round order (round 0: the noisy scripted expert; round i: the expert "
                        "with probability beta^i per step, else the collective of round i-1), "
                        "every visited state labelled by the scripted expert."
                    ),
                    algorithm_name="dagger",
                    ref_min_score=None,
                    ref_max_score=None,
                    extra_metadata=extra,
                )
                checksums.append((task, dataset.storage.metadata["ctdkit"]["content_checksum"]))
        checksum = combine_checksums(checksums)
        entry = {
            "description": f"ctdkit DAgger tier: {len(records)} rounds of {len(tasks)} tasks",
            "task_set": task_set_name(tasks),
            "tasks": list(tasks),
            "dataset_ids": members,
            "content_checksum": checksum,
            "command": command,
            "dagger_rounds": rounds,
        }
        publish_group(
            staging,
            members,
            root,
            records=group_records(group.namespace, group.version, entry),
            overwrite=False,
            source="minari",
        )
    return checksum


def _round_summary(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("round", "beta", "collect_seed", "acting_checkpoint_sha256", "data_checksum")
    return {key: record[key] for key in keys}


def _episodes(parts: list, records: list[dict[str, Any]]) -> Iterator[EpisodeData]:
    """The episodes of one task, round by round, with their round and β in the metadata."""
    for dataset, record in zip(parts, records, strict=True):
        indices = list(dataset.episode_indices)
        metadata = dataset.storage.get_episode_metadata(indices)
        for episode, meta in zip(dataset.iterate_episodes(indices), metadata, strict=True):
            kept = {k: _plain(v) for k, v in meta.items() if k not in MINARI_EPISODE_KEYS}
            yield EpisodeData(
                observations=episode.observations,
                actions=episode.actions,
                rewards=episode.rewards,
                terminations=episode.terminations,
                truncations=episode.truncations,
                infos=dict(episode.infos),
                metadata={**kept, "round": record["round"], "beta": record["beta"]},
                seed=kept.get("seed"),
            )


def _plain(value: Any) -> Any:
    """numpy scalars (as Minari gives metadata back) as Python values."""
    return value.item() if isinstance(value, np.generic) else value


def _recorded_env(dataset) -> RecordedEnv:
    """The env record of a Minari dataset (its spec and spaces), without building the env."""
    described = SimpleNamespace(
        spec=dataset.spec.env_spec,
        observation_space=dataset.observation_space,
        action_space=dataset.action_space,
    )
    return RecordedEnv(RecordedEnv.describe(described))
