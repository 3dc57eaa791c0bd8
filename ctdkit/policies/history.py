"""What each vectorised env has seen in its current episode, for agents that need context.

Meta-World's own ``eval_action(obs)`` passes no rewards and no history; a CTD agent conditions
on the current episode's last <= K steps (states, actions, rewards), so the evaluator records
them here and hands this object to every agent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Window:
    """The last ``<= k`` steps of every env, left-aligned and zero-padded.

    ``observations[i, j]`` pairs with ``actions[i, j]`` / ``rewards[i, j]`` (the action taken at
    that observation and the reward it earned). The last valid observation of each row is the
    current one, whose action is not chosen yet: ``actions``/``rewards`` are zero there, and
    ``lengths[i]`` counts observations (1 at the start of an episode).
    """

    observations: np.ndarray  # (n_envs, k, obs_dim)
    actions: np.ndarray  # (n_envs, k, action_dim)
    rewards: np.ndarray  # (n_envs, k)
    lengths: np.ndarray  # (n_envs,) int, 1..k


class EpisodeHistory:
    """Per-env arrays of the current episode: observations ``0..t``, actions/rewards ``0..t-1``."""

    def __init__(self, num_envs: int, obs_dim: int, action_dim: int, max_steps: int):
        self.observations = np.zeros((num_envs, max_steps + 1, obs_dim), dtype=np.float32)
        self.actions = np.zeros((num_envs, max_steps + 1, action_dim), dtype=np.float32)
        self.rewards = np.zeros((num_envs, max_steps + 1), dtype=np.float32)
        self.steps = np.zeros(num_envs, dtype=np.int64)  # actions taken in the current episode

    @property
    def num_envs(self) -> int:
        return len(self.steps)

    def start(self, env_index: np.ndarray | int, observations: np.ndarray) -> None:
        """Begin new episodes in ``env_index`` from their reset observations."""
        self.steps[env_index] = 0
        self.observations[env_index, 0] = observations
        self.actions[env_index] = 0.0
        self.rewards[env_index] = 0.0

    def record(
        self, env_index: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray
    ) -> None:
        """Append one step to the episodes of ``env_index`` (all arrays indexed alike)."""
        t = self.steps[env_index]
        self.actions[env_index, t] = actions
        self.rewards[env_index, t] = rewards
        self.observations[env_index, t + 1] = next_obs
        self.steps[env_index] = t + 1

    def window(self, k: int, env_index: np.ndarray | None = None) -> Window:
        """The last ``<= k`` observations of each env (see :class:`Window`); no Python loop."""
        rows = np.arange(self.num_envs) if env_index is None else np.asarray(env_index)
        current = self.steps[rows]  # index of the current observation
        lengths = np.minimum(current + 1, k)
        offsets = np.arange(k)
        time = current[:, None] - lengths[:, None] + 1 + offsets[None, :]  # (n, k)
        valid = offsets[None, :] < lengths[:, None]
        time = np.where(valid, time, 0)
        obs = np.where(valid[..., None], self.observations[rows[:, None], time], 0.0)
        has_action = valid & (time < current[:, None])
        actions = np.where(has_action[..., None], self.actions[rows[:, None], time], 0.0)
        rewards = np.where(has_action, self.rewards[rows[:, None], time], 0.0)
        return Window(
            obs.astype(np.float32), actions.astype(np.float32), rewards.astype(np.float32), lengths
        )
