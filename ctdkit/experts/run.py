"""Train one SAC expert online: episodes, updates, evaluations, checkpoints, exact resume.

A run directory (:mod:`ctdkit.runs`) holds ``run.json`` (the config fingerprint),
``checkpoint.pt`` (networks, optimisers, temperature, replay, RNG states, counters),
``expert.pt`` (the actor alone: what ``collect --policy sac`` and ``evaluate --agent sac``
load), ``metrics.json`` (evaluations) and ``episodes/`` (every training episode as it was
collected: the online dataset's source).

Exact resume: checkpoints are taken between episodes, and each episode's env reset and warm-up
actions derive from (env seed, task, episode index) alone, so a run continued from a checkpoint
makes the same updates as one never interrupted. Episodes written after the last checkpoint are
discarded on ``--resume``.

:class:`ExpertTrainer` is also the loop of learners built on SAC: they subclass it at
``make_learner``, ``make_replay``, ``training_actor``, ``eval_agent``, ``sample_batch``,
``expert`` and ``weights_file`` (and :class:`TrainingActor` at ``act``/``store``) rather than
copy it; the experts use the defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctdkit.collect.jobs import episode_seed
from ctdkit.collect.rollout import rollout_episode
from ctdkit.data.episode import EpisodeData
from ctdkit.data.ids import parse_group_id
from ctdkit.data.store import datasets_root
from ctdkit.envs.make import make_env
from ctdkit.envs.tasks import validate_task
from ctdkit.errors import CtdkitError
from ctdkit.eval.protocols import evaluate_official
from ctdkit.experts.config import TrainExpertConfig
from ctdkit.experts.demos import collect_demos, mixed_batch
from ctdkit.experts.online import EPISODES, episode_path, write_online_dataset
from ctdkit.experts.replay import ReplayBuffer
from ctdkit.experts.sac import SACLearner
from ctdkit.files import write_json_atomic
from ctdkit.policies.agents import EvalAgent
from ctdkit.policies.base import PolicyStep
from ctdkit.policies.checkpoint import SAC_TRAINING, checkpoint_damaged, read_checkpoint
from ctdkit.policies.random import RandomPolicy
from ctdkit.policies.sac import SACAgent, actor_labels, expert_record
from ctdkit.progress import progress_bar
from ctdkit.runs import open_run, torch_save_atomic

CHECKPOINT, EXPERT, METRICS = "checkpoint.pt", "expert.pt", "metrics.json"


DEMO_STREAM = 1  # `stream` of the demonstrations' reset seeds (training episodes: 0)


@dataclass
class ExpertResult:
    task: str
    out_dir: Path
    env_steps: int
    updates: int
    episodes: int
    seconds: float
    cpu_seconds: float
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    dataset_id: str | None = None
    checksum: str | None = None
    demo_success: float | None = None
    """Success rate of the scripted demonstrations (runs with --demo-episodes)."""

    @property
    def final_success(self) -> float | None:
        return self.evaluations[-1]["success"] if self.evaluations else None

    def first_reaching(self, success: float) -> dict[str, Any] | None:
        return first_reaching(self.evaluations, success)


def first_reaching(evaluations: list[dict[str, Any]], success: float) -> dict[str, Any] | None:
    """The first evaluation with success ≥ ``success`` (env steps, seconds), if any."""
    return next((e for e in evaluations if e["success"] >= success), None)


class TrainingActor:
    """The agent in training as a :class:`~ctdkit.policies.base.Policy` for one episode.

    Uniform random actions during warm-up, SAC samples after; :meth:`store` (the rollout's
    step hook) stores each transition and :meth:`learn` makes the updates. The final
    observation's label draws no noise, so the learner's RNG stream is the same as if no label
    were taken.
    """

    name = "sac"

    def __init__(self, trainer: ExpertTrainer):
        self.trainer = trainer
        self.random_steps = 0  # actions of this episode taken by the warm-up policy
        self.done = False

    def reset(self, seed: int) -> None:
        self.trainer.warmup_policy.reset(seed)
        self.random_steps, self.done = 0, False

    def act(self, observation: np.ndarray) -> PolicyStep:
        trainer = self.trainer
        if trainer.env_steps < trainer.config.sac.warmup_steps:
            if not self.done:
                self.random_steps += 1
            return trainer.warmup_policy.act(observation)
        if self.done:  # label only: no action is taken at the final observation
            with torch.no_grad():
                mean, log_std = actor_labels(trainer.learner.actor, observation[None])
            return PolicyStep(action=mean[0], mean=mean[0], log_std=log_std[0])
        action, mean, log_std = trainer.learner.explore(observation)
        return PolicyStep(action=action, mean=mean, log_std=log_std)

    def store(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
    ) -> None:
        self.trainer.replay.add(obs, action, reward, next_obs, terminated)
        self.learn(terminated or truncated)

    def learn(self, done: bool) -> None:
        """Count the env step just stored and make its updates (past warm-up)."""
        trainer, sac = self.trainer, self.trainer.config.sac
        trainer.env_steps += 1
        if trainer.env_steps >= sac.warmup_steps and len(trainer.replay) >= sac.batch_size:
            for _ in range(sac.updates_per_step):
                trainer.learner.update(trainer.sample_batch())
        self.done = done


class ExpertTrainer:
    """One SAC agent, its env, replay and counters; ``train(until)`` runs whole episodes."""

    weights_file = EXPERT
    """The acting policy's file in the run folder (beside ``checkpoint.pt``)."""

    def __init__(self, config: TrainExpertConfig):
        self.config = config
        self.task = validate_task(config.task)
        self.env = make_env(
            self.task, seed=config.env_seed, max_episode_steps=config.max_episode_steps
        )
        obs_dim = self.env.observation_space.shape[0]
        action_dim = self.env.action_space.shape[0]
        self.learner = self.make_learner(obs_dim, action_dim)
        self.replay = self.make_replay(self.learner.obs_dim, action_dim)
        self.rng = np.random.default_rng(config.sac.seed)  # batch indices
        self.warmup_policy = RandomPolicy(action_dim)
        self.demos: ReplayBuffer | None = None
        self.demo_success: float | None = None
        if config.demo_episodes:  # deterministic, so rebuilt rather than checkpointed
            seeds = [
                episode_seed(config.env_seed, self.task, None, i, DEMO_STREAM)
                for i in range(config.demo_episodes)
            ]
            self.demos, self.demo_success = collect_demos(self.env, self.task, seeds)
        self.env_steps = 0
        self.episodes = 0
        self.seconds = 0.0  # wall time of training and evaluation, summed over resumed calls
        self.cpu_seconds = 0.0  # this process's CPU time for the same (honest on a busy machine)
        self.evaluations: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ subclass points
    def make_learner(self, obs_dim: int, action_dim: int) -> SACLearner:
        return SACLearner(self.config.sac, obs_dim, action_dim)

    def make_replay(self, input_dim: int, action_dim: int) -> ReplayBuffer:
        """The replay of the learner's inputs (``input_dim``: ``learner.obs_dim``)."""
        return ReplayBuffer(self.config.sac.buffer_size, input_dim, action_dim)

    def training_actor(self) -> TrainingActor:
        """The acting policy of one training episode."""
        return TrainingActor(self)

    def eval_agent(self) -> EvalAgent:
        """The deterministic agent the periodic evaluations run."""
        return SACAgent(self.learner.actor, self.task)

    # ------------------------------------------------------------------ acting and learning
    def sample_batch(self) -> dict[str, torch.Tensor]:
        """One update's batch: online replay only, or mixed with the demos (RLPD)."""
        batch_size = self.config.sac.batch_size
        if self.demos is None:
            return self.replay.sample(batch_size, self.rng)
        return mixed_batch(self.replay, self.demos, batch_size, self.config.demo_fraction, self.rng)

    def run_episode(self) -> EpisodeData:
        """Collect one episode, updating the learner after every step past warm-up."""
        seed = episode_seed(self.config.env_seed, self.task, None, self.episodes)
        start_step, version = self.env_steps, self.learner.updates
        actor = self.training_actor()
        episode = rollout_episode(self.env, actor, seed, on_step=actor.store)
        episode.metadata = {
            "task": self.task,
            "task_index": 0,
            "policy": "sac",
            "training_step": start_step,
            "policy_version": version,
            "random_steps": actor.random_steps,
            **episode.metadata,
        }
        episode.save(episode_path(self.config.out_dir, self.episodes))
        self.episodes += 1
        return episode

    def evaluate(self) -> dict[str, Any]:
        """Success of the deterministic actor through ctdkit's ``official`` protocol."""
        agent, config = self.eval_agent(), self.config
        result = evaluate_official(agent, (self.task,), config.eval_seed, config.eval_episodes)
        record = {
            "env_steps": self.env_steps,
            "updates": self.learner.updates,
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu_seconds, 1),
            "episodes": len(result.episodes),
            "success": result.mean_success,
            "mean_return": float(np.mean([e["return"] for e in result.episodes])),
        }
        self.evaluations.append(record)
        return record

    def train(
        self,
        until: int,
        progress: bool = False,
        on_eval: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Run whole episodes until ``env_steps >= until`` (or the success target is met),
        evaluating and checkpointing."""
        config = self.config
        with progress_bar(f"sac {self.task}", total=until, enabled=progress) as advance:
            advance(min(self.env_steps, until))
            while self.env_steps < until and not self.reached_target():
                start, cpu, before = time.perf_counter(), time.process_time(), self.env_steps
                self.run_episode()
                self.seconds += time.perf_counter() - start
                self.cpu_seconds += time.process_time() - cpu
                if _crossed(before, self.env_steps, config.eval_every) and config.eval_episodes:
                    self._evaluate_timed(on_eval)
                if _crossed(before, self.env_steps, config.checkpoint_every):
                    self.save()
                advance(min(self.env_steps, until) - min(before, until))
        last = self.evaluations[-1]["env_steps"] if self.evaluations else None
        if config.eval_episodes and last != self.env_steps:
            self._evaluate_timed(on_eval)
        self.save()

    def reached_target(self) -> bool:
        """Whether the last ``stop_patience`` evaluations all reached ``stop_at_success``."""
        target, patience = self.config.stop_at_success, self.config.stop_patience
        recent = self.evaluations[-patience:]
        return (
            target is not None
            and len(recent) == patience
            and all(e["success"] >= target for e in recent)
        )

    def _evaluate_timed(self, on_eval: Callable[[dict[str, Any]], None] | None) -> None:
        start, cpu = time.perf_counter(), time.process_time()
        record = self.evaluate()
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.process_time() - cpu
        self._write_metrics()
        if on_eval is not None:
            on_eval(record)

    # ------------------------------------------------------------------ persistence
    def _write_metrics(self) -> None:
        path = Path(self.config.out_dir) / METRICS
        write_json_atomic(path, {"task": self.task, "evaluations": self.evaluations})

    def expert(self) -> dict[str, Any]:
        """The acting policy's record: ``weights_file`` and the checkpoint's ``expert`` entry."""
        last = self.evaluations[-1]["success"] if self.evaluations else None
        extra = {
            "env_steps": self.env_steps,
            "updates": self.learner.updates,
            "episodes": self.episodes,
            "eval_success": last,
            "env_seed": self.config.env_seed,
            "max_episode_steps": self.config.max_episode_steps,
        }
        return expert_record(self.learner.actor, self.task, extra)

    def save(self) -> None:
        """``checkpoint.pt`` then ``expert.pt``, each written atomically."""
        out = Path(self.config.out_dir)
        state = {
            "format": SAC_TRAINING.format,
            "fingerprint": self.config.fingerprint(),
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "evaluations": self.evaluations,
            "learner": self.learner.state_dict(),
            "replay": self.replay.state(),
            "rng": self.rng.bit_generator.state,
            "expert": self.expert(),
        }
        torch_save_atomic(out / CHECKPOINT, state)
        torch_save_atomic(out / self.weights_file, self.expert())
        self._write_metrics()

    def restore(self) -> None:
        """Load ``checkpoint.pt`` (if any) and drop episodes written after it."""
        path = Path(self.config.out_dir) / CHECKPOINT
        if path.exists():
            state = read_checkpoint(path, SAC_TRAINING)
            try:
                self.learner.load_state_dict(state["learner"])
                self.replay.load_state(state["replay"])
                self.rng.bit_generator.state = state["rng"]
                self.env_steps, self.episodes = int(state["env_steps"]), int(state["episodes"])
                self.seconds = float(state["seconds"])
                self.evaluations = list(state["evaluations"])
                self.cpu_seconds = float(state.get("cpu_seconds", 0.0))
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
                raise checkpoint_damaged(SAC_TRAINING, str(path), error) from error
        for shard in sorted((Path(self.config.out_dir) / EPISODES).glob("*.npz")):
            if int(shard.stem) >= self.episodes:
                shard.unlink()


def _crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in (before, after]."""
    return every > 0 and after // every > before // every


def _refuse_existing_dataset(config: TrainExpertConfig) -> None:
    """The check the config cannot make when built (it needs the disk; the config checks every
    flag): the online dataset to publish must not exist yet, unless --overwrite."""
    if config.dataset_id is not None:
        group = parse_group_id(config.dataset_id)
        root = Path(config.root) if config.root is not None else datasets_root()
        target = root / group.task_dataset_id(config.task)
        if target.exists() and not config.overwrite:
            raise CtdkitError(
                f"dataset {group.task_dataset_id(config.task)} already exists in {root} "
                "(pass --overwrite to replace it)"
            )


def train_expert(
    config: TrainExpertConfig, on_eval: Callable[[dict[str, Any]], None] | None = None
) -> ExpertResult:
    """Train (or continue) the expert ``config`` describes; publish its replay if asked (the
    run folder stays locked until its episodes are published)."""
    _refuse_existing_dataset(config)
    with open_run(
        config.out_dir,
        config.fingerprint(),
        resume=config.resume,
        overwrite=config.overwrite,
        what="an expert run",
        defaults=TrainExpertConfig(task=config.task).fingerprint(),  # settings added later
    ):
        trainer = ExpertTrainer(config)
        trainer.restore()
        trainer.train(config.total_steps, progress=config.progress, on_eval=on_eval)
        result = ExpertResult(
            task=trainer.task,
            out_dir=Path(config.out_dir),
            env_steps=trainer.env_steps,
            updates=trainer.learner.updates,
            episodes=trainer.episodes,
            seconds=trainer.seconds,
            cpu_seconds=trainer.cpu_seconds,
            evaluations=list(trainer.evaluations),
            demo_success=trainer.demo_success,
        )
        trainer.env.close()
        if config.dataset_id is not None:
            summary = write_online_dataset(
                config, trainer.episodes, trainer.env_steps, trainer.learner.updates
            )
            result.dataset_id, result.checksum = summary.dataset_id, summary.checksum
    return result
