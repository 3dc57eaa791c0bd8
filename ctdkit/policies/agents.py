"""The batched agent interface (what evaluation drives) and the reference agents.

Every agent — scripted expert, random, ctdkit's learners, d3rlpy baselines — is driven through
:class:`EvalAgent`: told which task each vectorised env runs (``bind``), reset per env, and
asked for a batch of actions given the observations *and* the episode history (Meta-World's own
``eval_action(obs)`` offers no rewards or history, which a context-conditioned agent needs).
Observation views are the agent's business: it sees raw observations and applies the view it
was trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ctdkit.policies.history import EpisodeHistory
from ctdkit.policies.scripted import ScriptedPolicy


@runtime_checkable
class EvalAgent(Protocol):
    def bind(self, env_tasks: Sequence[str]) -> None:
        """Called once per evaluation: the Meta-World task of each env index."""
        ...

    def reset(self, env_mask: np.ndarray) -> None:
        """Episodes of the envs where ``env_mask`` is true have just ended (or not started)."""
        ...

    def act(self, observations: np.ndarray, history: EpisodeHistory | None) -> np.ndarray:
        """Actions ``(num_envs, action_dim)`` for raw observations ``(num_envs, obs_dim)``."""
        ...


class ScriptedAgent:
    """Meta-World's scripted experts, one per env, with optional seeded Gaussian noise.

    The noise comes from one generator drawn once per ``act`` call, so two evaluation loops
    that call ``act`` identically get identical actions (how the official-protocol parity with
    ``metaworld.evaluation`` is tested).
    """

    name = "scripted"

    def __init__(self, noise: float = 0.0, seed: int = 0):
        self.noise = noise
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._policies: list[ScriptedPolicy] = []

    def bind(self, env_tasks: Sequence[str]) -> None:
        self._policies = [ScriptedPolicy(task) for task in env_tasks]
        self._rng = np.random.default_rng(self.seed)

    def reset(self, env_mask: np.ndarray) -> None:
        pass  # scripted controllers are stateless

    def act(self, observations: np.ndarray, history: EpisodeHistory | None = None) -> np.ndarray:
        means = np.stack([p.act(o).mean for p, o in zip(self._policies, observations, strict=True)])
        if self.noise > 0:
            means = means + self.noise * self._rng.standard_normal(means.shape)
        return np.clip(means, -1.0, 1.0).astype(np.float32)


class RandomAgent:
    """Uniform random actions: the floor of every success table."""

    name = "random"

    def __init__(self, seed: int = 0, action_dim: int = 4):
        self.seed, self.action_dim = seed, action_dim
        self._rng = np.random.default_rng(seed)
        self._num_envs = 0

    def bind(self, env_tasks: Sequence[str]) -> None:
        self._num_envs = len(env_tasks)
        self._rng = np.random.default_rng(self.seed)

    def reset(self, env_mask: np.ndarray) -> None:
        pass

    def act(self, observations: np.ndarray, history: EpisodeHistory | None = None) -> np.ndarray:
        return self._rng.uniform(-1, 1, (len(observations), self.action_dim)).astype(np.float32)
