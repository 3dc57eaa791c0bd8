"""Episode jobs: what one worker does for one (task, kind, index), independent of all others.

Each episode's seed derives from (seed, task, kind, index) alone, so the data do not depend on
the worker count or on the order jobs ran in. A job writes its episode as a shard file
(atomic rename) beside an ``env.json`` record of the env that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from ctdkit.collect.config import CollectConfig
from ctdkit.collect.rollout import rollout_episode
from ctdkit.data.store import RecordedEnv
from ctdkit.envs.make import make_env
from ctdkit.envs.tasks import stable_task_id
from ctdkit.files import write_json_atomic
from ctdkit.policies import ActingPolicy, NamedPolicy, Policy, RandomPolicy, ScriptedPolicy

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
    acting: ActingPolicy  # the data episodes' policy; reference episodes use their own
    log_std_floor: float
    labeller: ActingPolicy | None = None  # labels every state of a data episode (--labeller)

    def make_policy(self) -> Policy:
        if self.kind == "ref-random":
            return RandomPolicy()
        if self.kind == "ref-expert":
            return ScriptedPolicy(self.task, noise=0.0, log_std_floor=self.log_std_floor)
        return self.acting(self.task)

    def make_labeller(self) -> Policy | None:
        """The labeller of a data episode; reference episodes only give scores."""
        if self.kind != "data" or self.labeller is None:
            return None
        return self.labeller(self.task)


_WORKER_ENVS: dict[tuple, gym.Env] = {}  # per process: envs are slow to build (~1 s)


def _cached_env(task: str, seed: int, max_episode_steps: int) -> gym.Env:
    """This process's env for ``task`` (one at a time; jobs arrive grouped by task)."""
    key = (task, seed, max_episode_steps)
    env = _WORKER_ENVS.get(key)
    if env is None:
        clear_env_cache()
        env = _WORKER_ENVS[key] = make_env(task, seed=seed, max_episode_steps=max_episode_steps)
    return env


def clear_env_cache() -> None:
    """Close and forget this process's cached env (a benchmark timing whole collections clears
    it, so that each builds its envs as a fresh process would)."""
    for env in _WORKER_ENVS.values():
        env.close()
    _WORKER_ENVS.clear()


def run_job(job: Job) -> int:
    """Roll out one episode and write its shard (runs in a worker process or inline)."""
    seed = episode_seed(job.env_seed, job.task, job.kind, job.index)
    policy, labeller = job.make_policy(), job.make_labeller()
    env = _cached_env(job.task, job.env_seed, job.max_episode_steps)
    episode = rollout_episode(env, policy, seed, labeller=labeller)
    episode.metadata = {
        "task": job.task,
        "task_index": job.task_index,
        "policy": policy.name,
        "noise": getattr(job.acting, "noise", 0.0) if job.kind == "data" else 0.0,
        **episode.metadata,
    }
    if labeller is not None:  # only then: unlabelled episodes keep their checksums
        episode.metadata["labeller"] = job.labeller.name
    episode.save(job.shard)
    env_record = job.shard.parent / ENV_RECORD
    if not env_record.exists():  # what the dataset's writer needs to know about this env
        write_json_atomic(env_record, RecordedEnv.describe(env))
    return episode.length


def plan_jobs(
    config: CollectConfig,
    tasks: tuple[str, ...],
    staging: Path,
    acting: ActingPolicy,
    labeller: ActingPolicy | None = None,
) -> list[Job]:
    """Every episode of the collection: data episodes (acted by ``acting``, or randomly for
    the mixed tier's first ``random_episodes()``, all labelled by ``labeller`` if given), then
    reference episodes, per task."""
    jobs = []
    for task_index, task in enumerate(tasks):
        counts = {"data": config.episodes(task_index)}
        counts |= {"ref-random": config.ref_episodes, "ref-expert": config.ref_episodes}
        for kind, count in counts.items():
            for index in range(count):
                random_episode = kind == "data" and index < config.random_episodes(task_index)
                jobs.append(
                    Job(
                        task=task,
                        task_index=task_index,
                        kind=kind,
                        index=index,
                        shard=staging / "episodes" / task / f"{kind}-{index:06d}.npz",
                        env_seed=config.seed,
                        max_episode_steps=config.max_episode_steps,
                        acting=NamedPolicy("random") if random_episode else acting,
                        log_std_floor=config.log_std_floor,
                        labeller=labeller if kind == "data" else None,
                    )
                )
    return jobs
