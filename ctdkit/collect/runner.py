"""Run a collection: plan episode jobs, run them in worker processes, write Minari datasets.

Phases, each restartable:

1. **episodes** — every (task, kind, index) job writes one shard file into a hidden staging
   directory (atomic rename). Each episode's seed derives from (seed, task, kind, index) alone,
   so the data do not depend on the worker count or on the order jobs ran in; ``--resume``
   simply skips the shards that exist.
2. **assemble** — per task, the shards are written as a Minari dataset into a staging Minari
   root, a chunk of episodes at a time (memory stays flat), with metadata and checksum.
3. **publish** — datasets are renamed into the real root and the group is recorded in the
   namespace metadata; the staging directory is removed.

Ctrl-C or ``kill -9`` at any point leaves no visible half-written dataset.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
from minari.namespace import create_namespace

import ctdkit
from ctdkit.collect.config import CollectConfig
from ctdkit.collect.rollout import rollout_episode
from ctdkit.data.checksum import combine_checksums
from ctdkit.data.episode import EpisodeData
from ctdkit.data.ids import GroupId, parse_group_id
from ctdkit.data.store import (
    STAGING_DIRNAME,
    RecordedEnv,
    datasets_root,
    minari_root,
    publish,
    update_group_metadata,
    write_dataset,
)
from ctdkit.envs.make import make_env, validate_max_episode_steps
from ctdkit.envs.tasks import stable_task_id, task_set_name
from ctdkit.errors import CtdkitError, unknown
from ctdkit.policies import POLICY_KINDS, Policy, RandomPolicy, ScriptedPolicy, make_policy
from ctdkit.progress import progress_bar

ENV_RECORD = "env.json"  # per task, beside the shards: spec and spaces of the collecting env
#: job kinds: stored episodes, and unstored reference episodes for ref_min/ref_max_score
KINDS = ("data", "ref-random", "ref-expert")


def episode_seed(seed: int, task: str, kind: str, index: int) -> int:
    """Seed of one episode, a function of (seed, task, kind, index) only."""
    entropy = [seed, stable_task_id(task), KINDS.index(kind), index]
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

    def make_policy(self) -> Policy:
        if self.kind == "ref-random":
            return RandomPolicy()
        if self.kind == "ref-expert":
            return ScriptedPolicy(self.task, noise=0.0, log_std_floor=self.log_std_floor)
        return make_policy(self.policy, self.task, self.noise, self.log_std_floor)


@dataclass(frozen=True)
class JobResult:
    task: str
    kind: str
    steps: int
    success: bool
    episode_return: float


@dataclass
class TaskSummary:
    task: str
    dataset_id: str
    episodes: int
    steps: int
    success_rate: float
    mean_return: float
    ref_min_score: float | None
    ref_max_score: float | None
    checksum: str


@dataclass
class CollectResult:
    group_id: str
    root: Path
    tasks: list[TaskSummary] = field(default_factory=list)
    checksum: str = ""
    seconds: float = 0.0

    @property
    def success_rate(self) -> float:
        return float(np.mean([t.success_rate for t in self.tasks]))


# ---------------------------------------------------------------------------- worker side

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


def _write_json_atomic(path: Path, obj: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def run_job(job: Job) -> JobResult:
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
        _write_json_atomic(env_record, RecordedEnv.describe(env))
    return JobResult(
        job.task, job.kind, episode.length, episode.metadata["success"], episode.metadata["return"]
    )


# ------------------------------------------------------------------------------ main side


def _validate(config: CollectConfig) -> tuple[tuple[str, ...], GroupId]:
    tasks = config.resolved_tasks()
    if config.episodes_per_task <= 0:
        raise CtdkitError(f"--episodes-per-task must be > 0, got {config.episodes_per_task}")
    if config.workers <= 0:
        raise CtdkitError(f"--workers must be > 0, got {config.workers}")
    if config.ref_episodes < 0:
        raise CtdkitError(f"--ref-episodes must be >= 0, got {config.ref_episodes}")
    if config.policy not in POLICY_KINDS:
        raise unknown("policy", config.policy, POLICY_KINDS)
    if config.noise < 0 or not np.isfinite(config.noise):
        raise CtdkitError(f"--noise must be a finite number >= 0, got {config.noise}")
    if config.data_format not in ("hdf5", "arrow"):
        raise unknown("data format", config.data_format, ("hdf5", "arrow"))
    validate_max_episode_steps(config.max_episode_steps)
    return tasks, parse_group_id(config.resolved_dataset_id())


def _staging_dir(root: Path, group: GroupId) -> Path:
    return root / STAGING_DIRNAME / str(group).replace("/", "__")


def _prepare_staging(config: CollectConfig, staging: Path) -> None:
    plan_file = staging / "plan.json"
    plan = config.fingerprint()
    if staging.exists():
        if config.resume and plan_file.exists():
            previous = json.loads(plan_file.read_text())
            if previous != plan:
                changed = sorted(k for k in plan if previous.get(k) != plan[k])
                raise CtdkitError(
                    f"--resume: the interrupted run at {staging} used a different config "
                    f"({', '.join(changed)} differ); rerun it unchanged or pass --overwrite"
                )
            return
        if not config.overwrite and not config.resume:
            raise CtdkitError(
                f"an interrupted collection of {config.resolved_dataset_id()} exists at {staging}: "
                "pass --resume to finish it or --overwrite to discard it"
            )
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    plan_file.write_text(json.dumps(plan, indent=1))


def _plan_jobs(config: CollectConfig, tasks: tuple[str, ...], staging: Path) -> list[Job]:
    jobs = []
    for task_index, task in enumerate(tasks):
        counts = {"data": config.episodes_per_task}
        counts |= {"ref-random": config.ref_episodes, "ref-expert": config.ref_episodes}
        for kind, count in counts.items():
            for index in range(count):
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
                        policy=config.policy,
                        noise=config.noise,
                        log_std_floor=config.log_std_floor,
                    )
                )
    return jobs


def _map(function, items: list, workers: int, description: str, done: int, enabled: bool):
    """Apply ``function`` to ``items`` in ``workers`` processes (inline for 1), with progress.

    Results come back in input order. ``done`` items finished earlier count toward the bar.
    """
    results = []
    with progress_bar(description, total=done + len(items), enabled=enabled) as advance:
        advance(done)
        if workers == 1 or len(items) <= 1:
            for item in items:
                results.append(function(item))
                advance(1)
            return results
        context = mp.get_context("fork" if sys.platform != "win32" else "spawn")
        pool = context.Pool(min(workers, len(items)))
        try:
            for result in pool.imap(function, items, chunksize=1):
                results.append(result)
                advance(1)
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
    return results


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


@dataclass(frozen=True)
class AssembleJob:
    config: CollectConfig
    tasks: tuple[str, ...]
    group: GroupId
    task: str
    staging: Path


def assemble_task(job: AssembleJob) -> TaskSummary:
    """Write one task's shards as a Minari dataset under the staging Minari root."""
    config, tasks, group, task, staging = job.config, job.tasks, job.group, job.task, job.staging
    shard_dir = staging / "episodes" / task
    data_shards = [shard_dir / f"data-{i:06d}.npz" for i in range(config.episodes_per_task)]
    refs = {
        kind: [
            EpisodeData.load(shard_dir / f"{kind}-{i:06d}.npz").metadata["return"]
            for i in range(config.ref_episodes)
        ]
        for kind in ("ref-random", "ref-expert")
    }
    ref_min, ref_max = _mean(refs["ref-random"]), _mean(refs["ref-expert"])
    env = RecordedEnv(json.loads((shard_dir / ENV_RECORD).read_text()))
    dataset_id = group.task_dataset_id(task)
    stats = {"steps": 0, "success": [], "return": []}

    def episodes():
        for path in data_shards:
            episode = EpisodeData.load(path)
            stats["steps"] += episode.length
            stats["success"].append(episode.metadata["success"])
            stats["return"].append(episode.metadata["return"])
            yield episode

    extra = {
        "group_id": str(group),
        "task": task,
        "task_index": tasks.index(task),
        "tasks": list(tasks),
        "task_set": task_set_name(tasks),
        "policy": config.policy,
        "noise": config.noise,
        "log_std_floor": config.log_std_floor,
        "seed": config.seed,
        "max_episode_steps": config.max_episode_steps,
        "ref_episodes": config.ref_episodes,
        "ctdkit_version": ctdkit.__version__,
        "metaworld_version": _version("metaworld"),
        "command": command_line(config),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    noise = f" with Gaussian action noise σ={config.noise:g}" if config.noise else ""
    with minari_root(staging / "minari"):
        dataset = write_dataset(
            dataset_id,
            episodes(),
            env,
            data_format=config.data_format,
            description=(
                f"Meta-World {task}: {config.episodes_per_task} episodes of the {config.policy} "
                f"policy{noise}, {config.max_episode_steps}-step time limit, seed {config.seed}. "
                "Infos carry per-step success and the acting policy's action mean/log-std labels."
            ),
            algorithm_name=f"metaworld-{config.policy}"
            if config.policy == "scripted"
            else "random",
            ref_min_score=ref_min,
            ref_max_score=ref_max,
            extra_metadata=extra,
            requirements=[f"metaworld=={_version('metaworld')}", f"ctdkit=={ctdkit.__version__}"],
        )
    return TaskSummary(
        task=task,
        dataset_id=dataset_id,
        episodes=len(data_shards),
        steps=stats["steps"],
        success_rate=float(np.mean(stats["success"])),
        mean_return=float(np.mean(stats["return"])),
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        checksum=dataset.storage.metadata["ctdkit"]["content_checksum"],
    )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def command_line(config: CollectConfig) -> str:
    """The ``python -m ctdkit.collect`` command that reproduces ``config``'s data."""
    parts = ["python -m ctdkit.collect", "--tasks", *config.resolved_tasks()]
    defaults = CollectConfig()
    for name in ("episodes_per_task", "policy", "noise", "seed", "max_episode_steps"):
        parts += [f"--{name.replace('_', '-')}", str(getattr(config, name))]
    for name in ("log_std_floor", "ref_episodes", "data_format"):
        if getattr(config, name) != getattr(defaults, name):
            parts += [f"--{name.replace('_', '-')}", str(getattr(config, name))]
    parts += ["--dataset-id", config.resolved_dataset_id()]
    return " ".join(parts)


def collect(config: CollectConfig) -> CollectResult:
    """Collect the datasets ``config`` describes; see the module docstring for the phases."""
    start = time.perf_counter()
    tasks, group = _validate(config)
    root = Path(config.root) if config.root is not None else datasets_root()
    dataset_ids = [group.task_dataset_id(task) for task in tasks]
    existing = [i for i in dataset_ids if (root / i).exists()]
    if existing and not config.overwrite:
        raise CtdkitError(
            f"dataset {existing[0]} already exists in {root} (pass --overwrite to replace it)"
        )
    staging = _staging_dir(root, group)
    _prepare_staging(config, staging)
    jobs = _plan_jobs(config, tasks, staging)
    todo = [job for job in jobs if not job.shard.exists()]
    name = config.resolved_dataset_id()
    _map(run_job, todo, config.workers, f"episodes {name}", len(jobs) - len(todo), config.progress)

    staging_root = staging / "minari"
    shutil.rmtree(staging_root, ignore_errors=True)  # a crash mid-assembly left it partial
    with minari_root(staging_root):  # created once here: workers would race to create it
        create_namespace(group.namespace)
    assemble = [AssembleJob(config, tasks, group, task, staging) for task in tasks]
    result = CollectResult(group_id=str(group), root=root)
    result.tasks = _map(
        assemble_task, assemble, config.workers, f"write {name}", 0, config.progress
    )
    publish(staging_root, dataset_ids, root, overwrite=config.overwrite)
    result.checksum = combine_checksums((t.task, t.checksum) for t in result.tasks)
    update_group_metadata(
        root,
        group.namespace,
        group.version,
        {
            "description": f"ctdkit {task_set_name(tasks)} group of {len(tasks)} task datasets",
            "task_set": task_set_name(tasks),
            "tasks": list(tasks),
            "dataset_ids": dataset_ids,
            "content_checksum": result.checksum,
            "command": command_line(config),
        },
    )
    shutil.rmtree(staging)
    result.seconds = time.perf_counter() - start
    return result
