"""Uniform random policy: the floor every learner must beat and the ``ref_min_score`` source."""

from __future__ import annotations

import numpy as np

from ctdkit.policies.base import PolicyStep

ACTION_LOW, ACTION_HIGH = -1.0, 1.0


class RandomPolicy:
    """Actions uniform in [-1, 1]^d; its honest label is mean 0, std of U(-1, 1) = 1/sqrt(3)."""

    name = "random"

    def __init__(self, action_dim: int = 4):
        self.action_dim = action_dim
        self._mean = np.zeros(action_dim, dtype=np.float32)
        self._log_std = np.full(action_dim, -0.5 * np.log(3.0), dtype=np.float32)
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray) -> PolicyStep:
        action = self._rng.uniform(ACTION_LOW, ACTION_HIGH, self.action_dim).astype(np.float32)
        return PolicyStep(action=action, mean=self._mean.copy(), log_std=self._log_std.copy())
