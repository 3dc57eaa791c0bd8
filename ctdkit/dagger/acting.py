"""The acting policy of a DAgger round: at every step the expert with probability β, else the
current collective, which sees its own episode so far (its context comes from the same
:class:`~ctdkit.policies.EpisodeHistory` evaluation uses).

The expert is asked at every step, whoever acts, so its noise stream — and with β = 1 the
whole episode — is exactly that of a plain expert collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctdkit.envs.make import MAX_EPISODE_STEPS
from ctdkit.files import sha256_file
from ctdkit.policies import EpisodeHistory, Policy, PolicyStep, ScriptedPolicy

_LEARNERS: dict[str, object] = {}  # per worker process: checkpoint sha256 -> CollectiveSAC


def _learner(checkpoint: str, sha256: str):
    """This process's collective of ``checkpoint`` (loaded once; its hash is checked so a file
    replaced under a running collection is never mixed in)."""
    learner = _LEARNERS.get(sha256)
    if learner is None:
        import torch

        from ctdkit.collective import CollectiveSAC  # torch: only rounds that act with it

        torch.set_num_threads(1)  # one per worker process: the workers share the cores
        if sha256_file(Path(checkpoint)) != sha256:
            raise RuntimeError(f"{checkpoint} changed while its round was collecting")
        learner = _LEARNERS[sha256] = CollectiveSAC.load(Path(checkpoint))
    return learner


@dataclass(frozen=True)
class DaggerActing:
    """An :class:`~ctdkit.policies.ActingPolicy` for ``ctdkit.collect.collect``: the mixture
    of the expert and the collective saved in ``checkpoint`` (picklable: workers load it)."""

    checkpoint: str
    checkpoint_sha256: str
    beta: float
    noise: float
    name: str = "dagger"

    def fingerprint(self) -> dict:
        return {
            "collective_sha256": self.checkpoint_sha256,
            "beta": self.beta,
            "expert_noise": self.noise,
        }

    def __call__(self, task: str) -> Policy:
        learner = _learner(self.checkpoint, self.checkpoint_sha256)
        return MixturePolicy(task, learner, ScriptedPolicy(task, noise=self.noise), self.beta)


class MixturePolicy:
    """π = β π* + (1 - β) π̂ per step; ``observe`` feeds the collective's episode history."""

    name = "dagger"

    def __init__(self, task: str, learner, expert: Policy, beta: float):
        self.task, self.learner, self.expert, self.beta = task, learner, expert, float(beta)
        self.history = EpisodeHistory(1, learner.obs_dim, learner.action_dim, MAX_EPISODE_STEPS)
        self._rng = np.random.default_rng(0)
        self._started = False
        self._log_std = np.zeros(learner.action_dim, np.float32)

    def reset(self, seed: int) -> None:
        self.expert.reset(seed)
        self._rng = np.random.default_rng([seed, 1])  # a stream apart from the expert's noise
        self._started = False

    def act(self, observation: np.ndarray) -> PolicyStep:
        if not self._started:
            self.history.start(0, np.asarray(observation, np.float32)[None])
            self._started = True
        expert = self.expert.act(observation)
        if self._rng.random() < self.beta:
            return expert
        context = self.learner.context.for_history(self.history, [self.task])
        action = self.learner.predict(np.asarray(observation)[None], context)[0]
        action = action.astype(np.float32)
        return PolicyStep(action=action, mean=action.copy(), log_std=self._log_std.copy())

    def observe(self, action: np.ndarray, reward: float, next_observation: np.ndarray) -> None:
        self.history.record(
            np.array([0]),
            np.asarray(action, np.float32)[None],
            np.array([reward], np.float32),
            np.asarray(next_observation, np.float32)[None],
        )
