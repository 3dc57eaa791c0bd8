"""Train a student online: the experts' SAC run loop (:class:`~ctdkit.experts.ExpertTrainer`,
its checkpoints and exact resume, periodic official evaluations, ``--stop-at-success``) with
the collective consulted at every env step.

Where the bonus is computed: when the transition is collected. The collective is frozen, and
the student's live episode is the context's history right then, so ``b(s, a)`` is one forward
per env step and is stored with the transition (:class:`BonusReplay`); a batch then adds
``w · b`` to its rewards with ``w`` of the current env step. Recomputing it per batch would
need every row's context stored as well, and 512 forwards (the encoder's included) per update.
A transition collected after ``w`` reached 0 can never be used with ``w > 0`` (``w`` only
falls), so from then on a ``scratch`` student stops consulting the collective.

A run folder holds what an expert's holds (``checkpoint.pt``, ``metrics.json``,
``episodes/``) with ``student.pt`` for ``expert.pt``, and ``student.json``: the collective,
the bonus settings and the collective's measured cost per env step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctdkit.data.episode import EpisodeData
from ctdkit.experts import ExpertResult, ExpertTrainer, ReplayBuffer, SACLearner
from ctdkit.experts.run import TrainingActor
from ctdkit.policies.agents import EvalAgent
from ctdkit.policies.base import PolicyStep
from ctdkit.policies.history import EpisodeHistory
from ctdkit.runs import open_run
from ctdkit.student.bonus import bonus, bonus_weight
from ctdkit.student.config import TrainStudentConfig
from ctdkit.student.finetune import FinetunedAgent, FinetuneSAC
from ctdkit.student.teacher import FrozenCollective

STUDENT, RECORD = "student.pt", "student.json"


class BonusReplay(ReplayBuffer):
    """The experts' replay with each transition's bonus ``b(s, a)``, stored when collected."""

    FIELDS = (*ReplayBuffer.FIELDS, "bonus")  # sampled, saved and loaded like the others

    def __init__(self, capacity: int, obs_dim: int, action_dim: int):
        super().__init__(capacity, obs_dim, action_dim)
        self.bonus = torch.zeros(capacity)

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        bonus: float = 0.0,
    ) -> None:
        self.bonus[self.cursor] = float(bonus)
        super().add(obs, action, reward, next_obs, terminated)


class StudentActor(TrainingActor):
    """The student in training for one episode: the experts' acting and updates, plus the
    collective's context on the live episode and each transition's bonus, stored with it."""

    def __init__(self, trainer: StudentTrainer):
        super().__init__(trainer)
        self.trainer: StudentTrainer = trainer
        self.started = False
        self.context: np.ndarray | None = None  # the current step's, when it is needed

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self.started, self.context = False, None

    def act(self, observation: np.ndarray) -> PolicyStep:
        trainer = self.trainer
        if not self.started:  # the episode's first observation
            trainer.history.start(0, np.asarray(observation, dtype=np.float32)[None])
            self.context = trainer.consult_context(trainer.env_steps)
            self.started = True
        inputs = trainer.learner_input(observation, self.context)
        if trainer.finetune and trainer.env_steps < trainer.config.sac.warmup_steps:
            # the finetuned policy's own samples and labels, not random actions: its prior is
            # the point of finetuning
            action, mean, log_std = trainer.learner.explore(inputs)
            return PolicyStep(action=action, mean=mean, log_std=log_std)
        return super().act(inputs)

    def store(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
    ) -> None:
        trainer, step = self.trainer, self.trainer.env_steps  # this transition's env step
        shaping = trainer.bonus_of(self.context, obs, action, step)
        trainer.history.record(
            np.array([0]),
            np.asarray(action, dtype=np.float32)[None],
            np.array([reward], dtype=np.float32),
            np.asarray(next_obs, dtype=np.float32)[None],
        )
        next_context = trainer.consult_context(step + 1)
        trainer.replay.add(
            trainer.learner_input(obs, self.context),
            action,
            reward,
            trainer.learner_input(next_obs, next_context),
            terminated,
            shaping,
        )
        self.context = next_context
        self.learn(terminated or truncated)


@dataclass
class StudentResult(ExpertResult):
    init: str = "scratch"
    weights: Path | None = None
    """``student.pt``: a SAC expert file (scratch) or a collective checkpoint (finetuned)."""
    collective_ms_per_step: float | None = None
    """The frozen collective's cost per env step it was consulted at (this process)."""
    step_ms: float | None = None
    """A whole training env step's cost (env, acting, collective, updates; this process)."""


class StudentTrainer(ExpertTrainer):
    """The experts' trainer with the collective's bonus (and, finetuning, its networks)."""

    weights_file = STUDENT

    def __init__(self, config: TrainStudentConfig, teacher: FrozenCollective):
        self.student, self.teacher = config, teacher
        self.finetune = config.init == "collective"
        super().__init__(config.expert_config())
        obs_dim, action_dim = self.env.observation_space.shape[0], self.env.action_space.shape[0]
        self.history = EpisodeHistory(1, obs_dim, action_dim, config.max_episode_steps)
        # costs measured in this process (a rate: resuming needs no earlier sums)
        self.collective_seconds, self.collective_steps = 0.0, 0
        self.episode_seconds, self.episode_steps = 0.0, 0

    # ------------------------------------------------------------------ the experts' hooks
    def make_learner(self, obs_dim: int, action_dim: int) -> SACLearner:
        if self.finetune:
            return FinetuneSAC(self.config.sac, self.teacher, self.student.critic_only_updates)
        return super().make_learner(obs_dim, action_dim)

    def make_replay(self, input_dim: int, action_dim: int) -> BonusReplay:
        return BonusReplay(self.config.sac.buffer_size, input_dim, action_dim)

    def training_actor(self) -> StudentActor:
        return StudentActor(self)

    def eval_agent(self) -> EvalAgent:
        if self.finetune:
            return FinetunedAgent(self.learner.actor, self.teacher)
        return super().eval_agent()

    def sample_batch(self) -> dict[str, torch.Tensor]:
        """The experts' batch with ``w · b`` added to its rewards (the critic's target)."""
        batch = super().sample_batch()
        shaping = batch.pop("bonus")
        weight = self.weight(self.env_steps)
        if weight > 0:
            batch["rewards"] = batch["rewards"] + weight * shaping
        return batch

    def train(self, until: int, progress: bool = False, on_eval=None) -> None:
        """The experts' loop, with one evaluation before the first step: a learning curve
        starts at step 0, where a finetuned student is the collective itself."""
        if self.config.eval_episodes and self.env_steps == 0 and not self.evaluations:
            self._evaluate_timed(on_eval)
        super().train(until, progress=progress, on_eval=on_eval)

    def run_episode(self) -> EpisodeData:
        start, before = time.perf_counter(), self.env_steps
        episode = super().run_episode()
        self.episode_seconds += time.perf_counter() - start
        self.episode_steps += self.env_steps - before
        return episode

    def evaluate(self) -> dict[str, Any]:
        record = super().evaluate()  # already in self.evaluations: completed in place
        record["bonus_weight"] = self.weight(self.env_steps)
        record["collective_ms_per_step"] = self.collective_ms_per_step()
        return record

    def expert(self) -> dict[str, Any]:
        """``student.pt``: scratch, a SAC expert file (``evaluate --agent sac``); finetuned, a
        collective checkpoint (``evaluate --agent collective``)."""
        extra = self.describe()
        if self.finetune:
            extra |= {"task": self.task, "env_steps": self.env_steps, "episodes": self.episodes}
            return self.learner.collective_record(extra)
        return {**super().expert(), "student": extra}

    # ------------------------------------------------------------------ the collective
    def weight(self, step: int) -> float:
        s = self.student
        return bonus_weight(step, s.bonus_weight, s.bonus_full_until, s.bonus_zero_at)

    def consult_context(self, step: int) -> np.ndarray | None:
        """The context of the live episode's current step, if the step at env step ``step``
        needs it (finetuning always; otherwise while its bonus counts)."""
        if not (self.finetune or self.weight(step) > 0):
            return None
        start = time.perf_counter()
        context = self.teacher.context(self.history)
        self.collective_seconds += time.perf_counter() - start
        return context

    def bonus_of(
        self, context: np.ndarray | None, obs: np.ndarray, action: np.ndarray, step: int
    ) -> float:
        """``b(s, a)`` of the transition at env step ``step`` (0 where ``w`` is 0 by then)."""
        if context is not None:
            self.collective_steps += 1
        if self.weight(step) == 0:
            return 0.0
        start = time.perf_counter()
        mean, std = self.teacher.action_distribution(context, obs)
        self.collective_seconds += time.perf_counter() - start
        return float(bonus(action, mean, std, self.student.bonus_std_floor))

    def learner_input(self, observation: np.ndarray, context: np.ndarray | None) -> np.ndarray:
        """What the learner sees: the observation, or finetuning ``[context, observation]``."""
        if not self.finetune:
            return observation
        return self.teacher.inputs(context, np.asarray(observation)[None])[0]

    # ------------------------------------------------------------------ the run's record
    def collective_ms_per_step(self) -> float | None:
        if not self.collective_steps:
            return None
        return round(1e3 * self.collective_seconds / self.collective_steps, 3)

    def step_ms(self) -> float | None:
        if not self.episode_steps:
            return None
        return round(1e3 * self.episode_seconds / self.episode_steps, 3)

    def describe(self) -> dict[str, Any]:
        s = self.student
        return {
            "init": s.init,
            "collective": self.teacher.describe(),
            "bonus": {
                "weight": s.bonus_weight,
                "full_until": s.bonus_full_until,
                "zero_at": s.bonus_zero_at,
                "std_floor": s.bonus_std_floor,
            },
            "critics_from_collective": bool(getattr(self.learner, "critics_loaded", False)),
        }

    def record(self) -> dict[str, Any]:
        """``student.json``: settings, final counters and the costs measured by this process."""
        return {
            **self.describe(),
            "task": self.task,
            "env_steps": self.env_steps,
            "updates": self.learner.updates,
            "episodes": self.episodes,
            "cost": {
                "collective_ms_per_env_step": self.collective_ms_per_step(),
                "collective_env_steps": self.collective_steps,
                "env_step_ms": self.step_ms(),
                "measured_env_steps": self.episode_steps,
            },
            "evaluations": self.evaluations,
        }


def train_student(
    config: TrainStudentConfig, on_eval: Callable[[dict[str, Any]], None] | None = None
) -> StudentResult:
    """Train (or continue) the student ``config`` describes; the collective is loaded and
    checked before the run folder is touched."""
    teacher = FrozenCollective(config.collective, config.task)
    with open_run(
        config.out_dir,
        config.fingerprint(teacher.sha256),
        resume=config.resume,
        overwrite=config.overwrite,
        what="a student run",
    ) as run:
        trainer = StudentTrainer(config, teacher)
        trainer.restore()
        trainer.train(config.total_steps, progress=config.progress, on_eval=on_eval)
        trainer.env.close()
        run.write_json(RECORD, trainer.record())
    return StudentResult(
        task=trainer.task,
        out_dir=Path(config.out_dir),
        env_steps=trainer.env_steps,
        updates=trainer.learner.updates,
        episodes=trainer.episodes,
        seconds=trainer.seconds,
        cpu_seconds=trainer.cpu_seconds,
        evaluations=list(trainer.evaluations),
        init=config.init,
        weights=run.file(STUDENT),
        collective_ms_per_step=trainer.collective_ms_per_step(),
        step_ms=trainer.step_ms(),
    )
