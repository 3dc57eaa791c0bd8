"""Configuration of a collection run (doubles as the ``python -m ctdkit.collect`` CLI)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ctdkit.data.ids import parse_group_id
from ctdkit.envs.make import MAX_EPISODE_STEPS, validate_max_episode_steps
from ctdkit.envs.tasks import resolve_tasks, task_set_name
from ctdkit.errors import CtdkitError, unknown
from ctdkit.parallel import BACKENDS
from ctdkit.policies import POLICY_KINDS
from ctdkit.policies.scripted import DEFAULT_LOG_STD_FLOOR
from ctdkit.runs import check_count

#: Minari storage formats a dataset can be written in
DATA_FORMATS = ("hdf5", "arrow")
#: experts that can label every visited state (``--labeller``); "none" writes no label infos
LABELLER_KINDS = ("none", "scripted", "sac")


@dataclass
class CollectConfig:
    """Collect Meta-World rollouts into one Minari dataset per task, grouped under one id."""

    tasks: tuple[str, ...] = ("MT10",)
    """Task set (MT10, MT50) and/or task names, e.g. `MT10` or `reach-v3 push-v3`."""
    episodes_per_task: int = 3
    """Episodes stored per task."""
    task_episodes: tuple[int, ...] = ()
    """Episodes of each task, in the order of `--tasks`, instead of `--episodes-per-task` for
    all (how a DAgger round spends more episodes where the collective fails)."""
    policy: Literal["scripted", "random", "sac"] = "scripted"
    """Acting policy: Meta-World's scripted expert, uniform random actions, or a trained SAC
    expert (`--checkpoint`; it acts with its deterministic action tanh(μ) and labels every step
    with its own mean tanh(μ) and log-std)."""
    checkpoint: Path | None = None
    """Expert file for `--policy sac` (`expert.pt` of `python -m ctdkit.train_expert`)."""
    noise: float = 0.0
    """Std of Gaussian action noise added to the expert's action (then clipped)."""
    random_fraction: float = 0.0
    """Share of each task's stored episodes acted by the random policy instead (the first
    round(f·N) episodes): builds the mixed-quality tier (e.g. 0.5 = half expert, half random)."""
    labeller: Literal["none", "scripted", "sac"] = "none"
    """Expert that labels every visited state whoever acts (random episodes too), stored as
    the infos `label_action_mean`/`label_action_log_std` beside the acting policy's own labels:
    the noise-free scripted expert, or the `--checkpoint` SAC expert. A derived id ends in -v1."""
    log_std_floor: float = DEFAULT_LOG_STD_FLOOR
    """Smallest log-std written as the expert label (keeps labels finite at noise 0)."""
    seed: int = 0
    """Fixes the goal configurations (env seed) and every episode's seed."""
    workers: int = 2
    """Worker processes; the data are identical for any count."""
    backend: Literal["local", "ray"] = "local"
    """Where episodes run: a local process pool, or Ray tasks (`pip install "ctdkit[ray]"`);
    the data are identical either way."""
    ray_address: str | None = None
    """Ray cluster HEAD:PORT for `--backend ray` (default: start a local Ray with --workers
    CPUs). Every node must see --root (a shared filesystem): workers write their shards there."""
    dataset_id: str | None = None
    """Group id with a version suffix, e.g. `ctdkit/mt10-scripted-v0` (default: derived)."""
    data_format: Literal["hdf5", "arrow"] = "hdf5"
    """Minari storage format."""
    max_episode_steps: int = MAX_EPISODE_STEPS
    """Episode length (time-limit truncation), at most Meta-World's 500."""
    ref_episodes: int = 3
    """Random and noise-free expert episodes per task run (not stored) for ref_min/max_score."""
    overwrite: bool = False
    """Replace existing datasets of this id (and discard an interrupted run's staging)."""
    resume: bool = False
    """Finish an interrupted run of the same config from its staged episodes."""
    root: Path | None = None
    """Minari datasets root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        """Refuse a bad flag in one line before anything is read or written (the expert
        checkpoint of ``--policy sac`` is checked by the run: it needs the disk)."""
        self.resolved_tasks()
        check_count("--episodes-per-task", self.episodes_per_task)
        if self.task_episodes:
            if len(self.task_episodes) != len(self.resolved_tasks()):
                raise CtdkitError(
                    f"--task-episodes has {len(self.task_episodes)} counts for "
                    f"{len(self.resolved_tasks())} tasks: give one count per task, in task order"
                )
            for count in self.task_episodes:
                check_count("--task-episodes", count)
        check_count("--workers", self.workers)
        check_count("--ref-episodes", self.ref_episodes, minimum=0)
        if self.policy not in POLICY_KINDS:
            raise unknown("policy", self.policy, POLICY_KINDS)
        if self.labeller not in LABELLER_KINDS:
            raise unknown("labeller", self.labeller, LABELLER_KINDS)
        if self.labeller == "sac" and self.checkpoint is None:
            raise CtdkitError(
                "--labeller sac needs --checkpoint PATH (an expert.pt of train_expert)"
            )
        if not 0.0 <= self.random_fraction <= 1.0:
            raise CtdkitError(f"--random-fraction must be in [0, 1], got {self.random_fraction}")
        if not 0 <= self.noise < math.inf:
            raise CtdkitError(f"--noise must be a finite number >= 0, got {self.noise}")
        if self.backend not in BACKENDS:
            raise unknown("backend", self.backend, BACKENDS)
        if self.data_format not in DATA_FORMATS:
            raise unknown("data format", self.data_format, DATA_FORMATS)
        validate_max_episode_steps(self.max_episode_steps)
        parse_group_id(self.resolved_dataset_id())

    def resolved_tasks(self) -> tuple[str, ...]:
        return resolve_tasks(self.tasks)

    def resolved_dataset_id(self) -> str:
        """The explicit id, or one derived from task set, policy and noise; version 1 for a
        labelled collection (its data differ from the unlabelled v0's: the label infos)."""
        if self.dataset_id is not None:
            return self.dataset_id
        tasks = self.resolved_tasks()
        set_name = task_set_name(tasks)
        if set_name == "MT1":
            stem = tasks[0].removesuffix("-v3")
        elif set_name == "custom":
            stem = f"custom{len(tasks)}"
        else:
            stem = set_name.lower()
        noise = f"-noise{self.noise:g}".replace(".", "p") if self.noise else ""
        mixed = f"-random{self.random_fraction:g}".replace(".", "p") if self.random_fraction else ""
        version = "v0" if self.labeller == "none" else "v1"
        return f"ctdkit/{stem}-{self.policy}{noise}{mixed}-{version}"

    def episodes(self, task_index: int) -> int:
        """How many episodes are stored for the task at ``task_index``."""
        return self.task_episodes[task_index] if self.task_episodes else self.episodes_per_task

    def random_episodes(self, task_index: int) -> int:
        """How many of that task's stored episodes the random policy acts."""
        return round(self.random_fraction * self.episodes(task_index))

    def fingerprint(self) -> dict:
        """The fields that determine the data; a resumed run must match them exactly."""
        keep = [
            "episodes_per_task",
            "policy",
            "noise",
            "random_fraction",
            "log_std_floor",
            "seed",
            "data_format",
            "max_episode_steps",
            "ref_episodes",
        ]
        fields = {name: getattr(self, name) for name in keep}
        if self.task_episodes:  # absent otherwise, like the labeller below
            fields["task_episodes"] = list(self.task_episodes)
        if self.labeller != "none":  # absent otherwise: unlabelled runs keep their fingerprint
            fields["labeller"] = self.labeller
        if "sac" in (self.policy, self.labeller):  # the expert's weights determine the data
            fields["checkpoint_sha256"] = self.checkpoint_sha256()
        return {"tasks": list(self.resolved_tasks()), **fields}

    def checkpoint_sha256(self) -> str | None:
        """Content hash of ``checkpoint`` (None without one)."""
        if self.checkpoint is None or not Path(self.checkpoint).is_file():
            return None
        h = hashlib.sha256()
        with open(self.checkpoint, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def replace(self, **changes) -> CollectConfig:
        return dataclasses.replace(self, **changes)
