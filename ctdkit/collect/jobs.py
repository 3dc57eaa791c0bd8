"""Episode jobs: what one worker does for one (task, kind, index), independent of all others.

Each episode's seed derives from (seed, task, kind, index) alone, so the data do not depend on
the worker count or on the order jobs ran in. A job writes its episode as a shard file
(atomic rename) beside an ``env.json`` record of the env that produced it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from ctdkit.collect.config import CollectConfig
from ctdkit.collect.rollout import rollout_episode
from ctdkit.data.store import RecordedEnv
from ctdkit.envs.make import make_env
from ctdkit.envs.tasks import stable_task_id
from ctdkit.policies import Policy, RandomPolicy, ScriptedPolicy, make_policy

ENV_RECORD = "env.json"  # per task, beside the shards: spec and spaces of the collecting env
#: job kinds: stored episodes, and unstored reference episodes for ref_min/ref_max_score
KINDS = ("data", "ref-random", "ref-expert")


def episode_seed(seed: int, task: str, kind: str | None, index: int, stream: int = 0) -> int:
    """Seed of one episode, a function of its arguments only: SeedSequence entropy
    ``[seed, task id, KINDS.index(kind), index]`` for a collection's episodes; ``kind=None``
    leaves the kind out (an expert's own training episodes, ``ctdkit.experts``); a non-zero
    ``stream`` is appended, giving seeds no stream-0 episode uses (an expert's demonstrations).
    The defaults give every existing dataset's seeds."""
    entropy = [seed, stable_task_id(task)] + ([] if kind is None else [KINDS.index(kind)])
    entropy += [index] + ([stream] if stream else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


@dataclass(frozen=True)
class Job:
    task: str
    task_index: int
    kind: str
    index: int
    shard: Path
    env_seed: int
    max_episode_steps: int
    policy: str
    noise: float
    log_std_floor: float
    checkpoint: str | None = None  # expert file of a "sac" policy

    def make_policy(self) -> Policy:
        if self.kind == "ref-random":
            return RandomPolicy()
        if self.kind == "ref-expert":
            return ScriptedPolicy(self.task, noise=0.0, log_std_floor=self.log_std_floor)
        return make_policy(
            self.policy, self.task, self.noise, self.log_std_floor, checkpoint=self.checkpoint
        )


_WORKER_ENVS: dict[tuple, gym.Env] = {}  # per process: envs are slow to build (~1 s)


def _cached_env(task: str, seed: int, max_episode_steps: int) -> gym.Env:
    """This process's env for ``task`` (one at a time; jobs arrive grouped by task)."""
    key = (task, seed, max_episode_steps)
    env = _WORKER_ENVS.get(key)
    if env is None:
        for old in _WORKER_ENVS.values():
            old.close()
        _WORKER_ENVS.clear()
        env = _WORKER_ENVS[key] = make_env(task, seed=seed, max_episode_steps=max_episode_steps)
    return env


def run_job(job: Job) -> int:
    """Roll out one episode and write its shard (runs in a worker process or inline)."""
    seed = episode_seed(job.env_seed, job.task, job.kind, job.index)
    policy = job.make_policy()
    env = _cached_env(job.task, job.env_seed, job.max_episode_steps)
    episode = rollout_episode(env, policy, seed)
    episode.metadata = {
        "task": job.task,
        "task_index": job.task_index,
        "policy": policy.name,
        "noise": job.noise if job.kind == "data" else 0.0,
        **episode.metadata,
    }
    episode.save(job.shard)
    env_record = job.shard.parent / ENV_RECORD
    if not env_record.exists():  # what the dataset's writer needs to know about this env
        write_json_atomic(env_record, RecordedEnv.describe(env))
    return episode.length


def plan_jobs(config: CollectConfig, tasks: tuple[str, ...], staging: Path) -> list[Job]:
    """Every episode of the collection: data episodes, then reference episodes, per task."""
    jobs = []
    for task_index, task in enumerate(tasks):
        counts = {"data": config.episodes_per_task}
        counts |= {"ref-random": config.ref_episodes, "ref-expert": config.ref_episodes}
        for kind, count in counts.items():
            for index in range(count):
                # the mixed tier: the first random_episodes() data episodes act randomly
                random_episode = kind == "data" and index < config.random_episodes()
                shard = staging / "episodes" / task / f"{kind}-{index:06d}.npz"
                jobs.append(
                    Job(
                        task=task,
                        task_index=task_index,
                        kind=kind,
                        index=index,
                        shard=shard,
                        env_seed=config.seed,
                        max_episode_steps=config.max_episode_steps,
                        policy="random" if random_episode else config.policy,
                        noise=0.0 if random_episode else config.noise,
                        log_std_floor=config.log_std_floor,
                        checkpoint=None
                        if random_episode or config.checkpoint is None
                        else str(config.checkpoint),
                    )
                )
    return jobs


def write_json_atomic(path: Path, obj: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)
