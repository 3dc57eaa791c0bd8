"""Run a collection: plan episode jobs, run them in worker processes, write Minari datasets.

Phases, each restartable:

1. **episodes** — every (task, kind, index) job (``jobs.py``) writes one shard file into a
   hidden staging directory; ``--resume`` simply skips the shards that exist.
2. **assemble** — per task, the shards are written as a Minari dataset into a staging Minari
   root, a chunk of episodes at a time (memory stays flat), with metadata and checksum.
3. **publish** — datasets are renamed into the real root and the group is recorded in the
   namespace metadata; the staging directory is removed.

Ctrl-C or ``kill -9`` at any point leaves no visible half-written dataset.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import minari
import numpy as np
from minari.namespace import create_namespace

import ctdkit
from ctdkit.collect.config import CollectConfig
from ctdkit.collect.jobs import ENV_RECORD, plan_jobs, run_job
from ctdkit.data.checksum import combine_checksums
from ctdkit.data.episode import EpisodeData
from ctdkit.data.ids import GroupId, parse_group_id
from ctdkit.data.store import (
    CTDKIT_METADATA_KEY,
    RecordedEnv,
    datasets_root,
    group_records,
    minari_root,
    publish_group,
    recover_group,
    staging_dir,
    write_dataset,
    writer_lock,
)
from ctdkit.envs.tasks import task_set_name
from ctdkit.errors import CtdkitError
from ctdkit.files import read_json_object
from ctdkit.parallel import parallel_map
from ctdkit.policies import ActingPolicy, NamedPolicy
from ctdkit.runs import prepare_run


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


def _validate(config: CollectConfig) -> tuple[tuple[str, ...], GroupId]:
    """The tasks and group of ``config`` once what needs the disk holds too (the config
    checked its flags when it was built): a sac collection's expert checkpoint fits its tasks."""
    tasks = config.resolved_tasks()
    if "sac" in (config.policy, config.labeller):
        _validate_expert(config, tasks)
    return tasks, parse_group_id(config.resolved_dataset_id())


def _validate_expert(config: CollectConfig, tasks: tuple[str, ...]) -> None:
    """A SAC expert acts (or labels) on its own task only, with the env's dimensions."""
    if config.checkpoint is None:
        flag = "--policy" if config.policy == "sac" else "--labeller"
        raise CtdkitError(f"{flag} sac needs --checkpoint PATH (an expert.pt of train_expert)")
    from ctdkit.policies.sac import check_expert_fits, load_expert  # torch: only for sac

    _, record = load_expert(config.checkpoint)
    for task in tasks:
        check_expert_fits(config.checkpoint, record, task)


def make_labeller(config: CollectConfig) -> ActingPolicy | None:
    """``--labeller`` as a policy factory (noise-free: a label is the expert's own mean), or
    None without one."""
    if config.labeller == "none":
        return None
    checkpoint = str(config.checkpoint) if config.labeller == "sac" else None
    return NamedPolicy(config.labeller, 0.0, config.log_std_floor, checkpoint)


def _prepare_staging(config: CollectConfig, staging: Path, acting: ActingPolicy | None) -> None:
    """The staging folder as a run (:mod:`ctdkit.runs`): its settings in ``run.json``, resumed
    or discarded by the shared rules; the id's writer lock, already held, covers it."""
    settings = config.fingerprint()
    if acting is not None:  # a policy object instead of --policy: its own settings count
        settings["acting"] = {"name": acting.name, **acting.fingerprint()}
    prepare_run(
        staging,
        settings,
        resume=config.resume,
        overwrite=config.overwrite,
        what=f"an interrupted collection of {config.resolved_dataset_id()}",
        legacy=_recorded_plan,
    )


def _recorded_plan(staging: Path) -> dict | None:
    """The settings of a staging written before ``run.json`` (its ``plan.json``)."""
    plan = staging / "plan.json"
    return read_json_object(plan, str(plan)) if plan.is_file() else None


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


@dataclass(frozen=True)
class AssembleJob:
    config: CollectConfig
    tasks: tuple[str, ...]
    group: GroupId
    task: str
    staging: Path
    acting: ActingPolicy | None = None  # None: the policy is config.policy


def assemble_task(job: AssembleJob) -> TaskSummary:
    """Write one task's shards as a Minari dataset under the staging Minari root."""
    config, tasks, group, task, staging = job.config, job.tasks, job.group, job.task, job.staging
    shard_dir = staging / "episodes" / task
    task_index = tasks.index(task)
    data_shards = [shard_dir / f"data-{i:06d}.npz" for i in range(config.episodes(task_index))]
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
        "random_fraction": config.random_fraction,
        **({"labeller": config.labeller} if config.labeller != "none" else {}),
        "log_std_floor": config.log_std_floor,
        "seed": config.seed,
        "max_episode_steps": config.max_episode_steps,
        "ref_episodes": config.ref_episodes,
        "ctdkit_version": ctdkit.__version__,
        "metaworld_version": version("metaworld"),
        "command": command_line(config),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    policy, algorithm = config.policy, _ALGORITHM_NAMES[config.policy]
    if job.acting is not None:  # a policy object: its name and settings, not --policy's
        policy = algorithm = job.acting.name
        extra |= {"policy": policy, "noise": 0.0, "acting": job.acting.fingerprint()}
    if (job.acting is None and config.policy == "sac") or config.labeller == "sac":
        extra |= {  # which expert acted or labelled: its file and content hash
            "checkpoint": str(config.checkpoint),
            "checkpoint_sha256": config.checkpoint_sha256(),
        }
    noise = f" with Gaussian action noise σ={config.noise:g}" if config.noise else ""
    if config.random_episodes(task_index):
        noise += (
            f" ({config.random_episodes(task_index)} of them acted by the random policy instead)"
        )
    labels = "the acting policy's action mean/log-std labels"
    if config.labeller != "none":
        labels += (
            f", and label_action_mean/log_std: the noise-free {config.labeller} expert's label "
            "at every visited state, whoever acted"
        )
    with minari_root(staging / "minari"):
        dataset = write_dataset(
            dataset_id,
            episodes(),
            env,
            data_format=config.data_format,
            description=(
                f"Meta-World {task}: {len(data_shards)} episodes of the {policy} "
                f"policy{noise}, {config.max_episode_steps}-step time limit, seed {config.seed}. "
                f"Infos carry per-step success and {labels}."
            ),
            algorithm_name=algorithm,
            ref_min_score=ref_min,
            ref_max_score=ref_max,
            extra_metadata=extra,
            requirements=[f"metaworld=={version('metaworld')}", f"ctdkit=={ctdkit.__version__}"],
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


_ALGORITHM_NAMES = {"scripted": "metaworld-scripted", "random": "random", "sac": "sac-expert"}


def command_line(config: CollectConfig) -> str:
    """The ``python -m ctdkit.collect`` command that reproduces ``config``'s data."""
    parts = ["python -m ctdkit.collect", "--tasks", *config.resolved_tasks()]
    defaults = CollectConfig()
    for name in ("episodes_per_task", "policy", "noise", "seed", "max_episode_steps"):
        parts += [f"--{name.replace('_', '-')}", str(getattr(config, name))]
    if "sac" in (config.policy, config.labeller):
        parts += ["--checkpoint", str(config.checkpoint)]
    if config.task_episodes:
        parts += ["--task-episodes", *map(str, config.task_episodes)]
    for name in ("random_fraction", "labeller", "log_std_floor", "ref_episodes", "data_format"):
        if getattr(config, name) != getattr(defaults, name):
            parts += [f"--{name.replace('_', '-')}", str(getattr(config, name))]
    parts += ["--dataset-id", config.resolved_dataset_id()]
    return " ".join(parts)


def _published_result(
    group: GroupId, tasks: tuple[str, ...], root: Path, start: float
) -> CollectResult:
    """The result of a collection whose datasets are already published, read back from them."""
    result = CollectResult(group_id=str(group), root=root)
    with minari_root(root):
        for task in tasks:
            dataset = minari.load_dataset(group.task_dataset_id(task))
            episodes = list(dataset.storage.get_episode_metadata(list(dataset.episode_indices)))
            metadata = dataset.storage.metadata
            result.tasks.append(
                TaskSummary(
                    task=task,
                    dataset_id=group.task_dataset_id(task),
                    episodes=dataset.total_episodes,
                    steps=dataset.total_steps,
                    success_rate=float(np.mean([e["success"] for e in episodes])),
                    mean_return=float(np.mean([e["return"] for e in episodes])),
                    ref_min_score=metadata.get("ref_min_score"),
                    ref_max_score=metadata.get("ref_max_score"),
                    checksum=metadata[CTDKIT_METADATA_KEY]["content_checksum"],
                )
            )
    result.checksum = combine_checksums((t.task, t.checksum) for t in result.tasks)
    result.seconds = time.perf_counter() - start
    return result


def collect(config: CollectConfig, acting: ActingPolicy | None = None) -> CollectResult:
    """Collect the datasets ``config`` describes; see the module docstring for the phases.

    ``acting`` replaces ``config.policy`` as the data episodes' policy: a later stage (DAgger
    rounds) hands collect its own policy object this way. Its ``name`` becomes the datasets'
    policy and its ``fingerprint()`` is recorded in their metadata and compared on --resume.
    """
    start = time.perf_counter()
    tasks, group = _validate(config)
    if acting is not None and not isinstance(acting, ActingPolicy):
        raise CtdkitError(f"collect: {acting!r} is not an ActingPolicy (name, fingerprint, call)")
    root = datasets_root(config.root)
    dataset_ids = [group.task_dataset_id(task) for task in tasks]
    staging = staging_dir(root, str(group))
    with writer_lock(root, str(group)):
        return _collect_locked(config, acting, tasks, group, root, dataset_ids, staging, start)


def _collect_locked(
    config: CollectConfig,
    acting: ActingPolicy | None,
    tasks: tuple[str, ...],
    group: GroupId,
    root: Path,
    dataset_ids: list[str],
    staging: Path,
    start: float,
) -> CollectResult:
    # killed while publishing: undone (finish with --resume) or completed (nothing left to do)
    if recover_group(staging, root) == "completed" and config.resume:
        return _published_result(group, tasks, root, start)
    existing = [i for i in dataset_ids if (root / i).exists()]
    if existing and not config.overwrite:
        hint = "nothing to resume; " if config.resume else ""
        raise CtdkitError(
            f"dataset {existing[0]} already exists in {root} ({hint}pass --overwrite to replace it)"
        )
    if config.backend == "ray":  # before staging: an unreachable cluster leaves nothing behind
        from ctdkit.ray_backend import connect

        connect(config.ray_address, num_cpus=config.workers)
    backend = {"backend": config.backend, "ray_address": config.ray_address}
    _prepare_staging(config, staging, acting)
    checkpoint = None if config.checkpoint is None else str(config.checkpoint)
    named = NamedPolicy(config.policy, config.noise, config.log_std_floor, checkpoint)
    jobs = plan_jobs(config, tasks, staging, acting or named, make_labeller(config))
    todo = [job for job in jobs if not job.shard.exists()]
    name = config.resolved_dataset_id()
    parallel_map(
        run_job,
        todo,
        config.workers,
        f"episodes {name}",
        len(jobs) - len(todo),
        config.progress,
        **backend,
    )
    missing = [job.shard for job in todo if not job.shard.exists()]
    if missing:  # Ray workers on other machines wrote to a disk the driver does not see
        raise CtdkitError(
            f"{len(missing)} episode shards are missing here, e.g. {missing[0]}: with a "
            "multi-machine Ray cluster --root must be a filesystem shared by every node"
        )

    staging_root = staging / "minari"
    shutil.rmtree(staging_root, ignore_errors=True)  # a crash mid-assembly left it partial
    with minari_root(staging_root):  # created once here: workers would race to create it
        create_namespace(group.namespace)
    assemble = [AssembleJob(config, tasks, group, task, staging, acting) for task in tasks]
    result = CollectResult(group_id=str(group), root=root)
    result.tasks = parallel_map(
        assemble_task, assemble, config.workers, f"write {name}", 0, config.progress, **backend
    )
    result.checksum = combine_checksums((t.task, t.checksum) for t in result.tasks)
    entry = {
        "description": f"ctdkit {task_set_name(tasks)} group of {len(tasks)} task datasets",
        "task_set": task_set_name(tasks),
        "tasks": list(tasks),
        "dataset_ids": dataset_ids,
        "content_checksum": result.checksum,
        "command": command_line(config),
    }
    publish_group(
        staging,
        dataset_ids,
        root,
        records=group_records(group.namespace, group.version, entry),
        overwrite=config.overwrite,
        source="minari",
    )
    result.seconds = time.perf_counter() - start
    return result
