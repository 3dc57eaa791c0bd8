"""The training replay of an expert run as an "online" Minari dataset group.

Mixed-quality data from an agent while it learns (D4RL's "medium-replay" counterpart): every
training episode, in the order it was collected, with the same layout, metadata and checksum
rules as ``ctdkit.collect`` (``ctdkit.data.store.write_dataset``: staged, then renamed into
place; group recorded in the namespace metadata). Per step, infos carry ``success`` and the
*acting* policy's labels at each observation (the SAC actor's ``tanh μ`` and ``log σ`` of that
moment, or the random policy's during warm-up). Per episode, metadata carry ``training_step``
(env steps before the episode began), ``policy_version`` (gradient updates so far),
``random_steps`` (warm-up steps in it), ``success``, ``return`` and ``length``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import gymnasium as gym
import numpy as np
from minari.namespace import create_namespace

import ctdkit
from ctdkit.collect import episode_seed, rollout_episode
from ctdkit.data.checksum import combine_checksums
from ctdkit.data.episode import EpisodeData
from ctdkit.data.ids import parse_group_id
from ctdkit.data.store import (
    RecordedEnv,
    datasets_root,
    group_records,
    minari_root,
    publish_group,
    staging_dir,
    write_dataset,
    writer_lock,
)
from ctdkit.envs.make import make_env
from ctdkit.errors import CtdkitError
from ctdkit.experts.config import TrainExpertConfig
from ctdkit.policies import RandomPolicy, ScriptedPolicy
from ctdkit.policies.scripted import DEFAULT_LOG_STD_FLOOR

EPISODES = "episodes"  # in a run directory: one shard per training episode
REF_EPISODES = 3  # as ctdkit.collect's default: the same seeds give the same ref scores


def episode_path(out_dir: Path, index: int) -> Path:
    return Path(out_dir) / EPISODES / f"{index:06d}.npz"


@dataclass
class OnlineDatasetSummary:
    dataset_id: str  # the group id
    task_dataset_id: str
    episodes: int
    steps: int
    success_rate: float
    checksum: str  # the group's content checksum


def _reference_scores(config: TrainExpertConfig, env: gym.Env) -> tuple[float, float]:
    """Mean returns of random and noise-free scripted episodes (collect's seeds and lengths)."""
    policies = {
        "ref-random": RandomPolicy(),
        "ref-expert": ScriptedPolicy(config.task, log_std_floor=DEFAULT_LOG_STD_FLOOR),
    }
    scores = {}
    for kind, policy in policies.items():
        returns = [
            rollout_episode(
                env, policy, episode_seed(config.env_seed, config.task, kind, i)
            ).metadata["return"]
            for i in range(REF_EPISODES)
        ]
        scores[kind] = float(np.mean(returns))
    return scores["ref-random"], scores["ref-expert"]


def write_online_dataset(
    config: TrainExpertConfig, episodes: int, env_steps: int, updates: int
) -> OnlineDatasetSummary:
    """Publish the first ``episodes`` training episodes (``env_steps`` steps, collected while
    the agent made ``updates`` updates) of the run in ``config.out_dir`` as the group
    ``config.dataset_id`` (one task dataset)."""
    if config.dataset_id is None:
        raise CtdkitError("an online dataset needs --dataset-id (e.g. ctdkit/reach-sac-online-v0)")
    group = parse_group_id(config.dataset_id)
    root = datasets_root(config.root)
    dataset_id = group.task_dataset_id(config.task)
    if (root / dataset_id).exists() and not config.overwrite:
        raise CtdkitError(f"dataset {dataset_id} already exists in {root} (pass --overwrite)")
    shards = [episode_path(config.out_dir, i) for i in range(episodes)]
    missing = [s for s in shards if not s.exists()]
    if missing:
        raise CtdkitError(f"training episode {missing[0]} is missing: the run is incomplete")

    env = make_env(config.task, seed=config.env_seed, max_episode_steps=config.max_episode_steps)
    recorded = RecordedEnv(RecordedEnv.describe(env))
    ref_min, ref_max = _reference_scores(config, env)
    env.close()
    stats: dict[str, list] = {"length": [], "success": []}

    def stream():
        for path in shards:
            episode = EpisodeData.load(path)
            stats["length"].append(episode.length)
            stats["success"].append(episode.metadata["success"])
            yield episode

    extra = {
        "group_id": str(group),
        "task": config.task,
        "task_index": 0,
        "tasks": [config.task],
        "task_set": "MT1",
        "policy": "sac",
        "kind": "online",
        "seed": config.env_seed,
        "max_episode_steps": config.max_episode_steps,
        "env_steps": env_steps,
        "updates": updates,
        "train_config": config.fingerprint(),
        "ctdkit_version": ctdkit.__version__,
        "metaworld_version": version("metaworld"),
        "command": config.command(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    description = (
        f"Meta-World {config.task}: the training replay of a SAC expert, {episodes} "
        f"episodes in collection order ({config.sac.warmup_steps} random warm-up steps, "
        f"then the learning agent's sampled actions), {config.max_episode_steps}-step "
        f"time limit, env seed {config.env_seed}. Episode metadata carry training_step "
        "and policy_version; infos carry per-step success and the acting policy's "
        "action mean/log-std labels."
    )
    staging = staging_dir(root, str(group))
    with writer_lock(root, str(group)):
        shutil.rmtree(staging, ignore_errors=True)
        with minari_root(staging / "minari"):
            create_namespace(group.namespace)
            dataset = write_dataset(
                dataset_id,
                stream(),
                recorded,
                data_format=config.data_format,
                description=description,
                algorithm_name="sac-online",
                ref_min_score=ref_min,
                ref_max_score=ref_max,
                extra_metadata=extra,
                requirements=[
                    f"metaworld=={version('metaworld')}",
                    f"ctdkit=={ctdkit.__version__}",
                ],
            )
        checksum = dataset.storage.metadata["ctdkit"]["content_checksum"]
        group_checksum = combine_checksums([(config.task, checksum)])
        entry = {
            "description": f"ctdkit online (SAC training replay) dataset of {config.task}",
            "task_set": "MT1",
            "tasks": [config.task],
            "dataset_ids": [dataset_id],
            "content_checksum": group_checksum,
            "command": config.command(),
        }
        publish_group(
            staging,
            [dataset_id],
            root,
            records=group_records(group.namespace, group.version, entry),
            overwrite=config.overwrite,
            source="minari",
        )
    return OnlineDatasetSummary(
        dataset_id=str(group),
        task_dataset_id=dataset_id,
        episodes=episodes,
        steps=int(sum(stats["length"])),
        success_rate=float(np.mean(stats["success"])),
        checksum=group_checksum,
    )
