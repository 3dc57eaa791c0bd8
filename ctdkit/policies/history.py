"""Windows of experience: what every vectorised env has seen in its current episode, in the one
batch type that agents act on and the trajectory encoder embeds.

Meta-World's own ``eval_action(obs)`` passes no rewards and no history; a CTD agent conditions
on the current episode's last <= K steps (states, actions, rewards), so the evaluator records
them in an :class:`EpisodeHistory` and hands it to every agent. The encoder's training and
relabelling windows (:func:`ctdkit.encoder.gather_windows`) are the same :class:`Windows`, so
act time and training can never disagree on the layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ctdkit.errors import CtdkitError

if TYPE_CHECKING:  # torch is optional here: collection with scripted policies never loads it
    import torch

    Array = np.ndarray | torch.Tensor


@dataclass
class Windows:
    """A batch of ``B`` left-aligned windows padded to ``T`` steps (numpy or torch arrays).

    A window is the last ``L`` steps of one episode: observations ``o_{e-L+1} .. o_e`` and the
    actions and rewards taken/earned at them (``actions[b, i]`` was taken at
    ``observations[b, i]``). The last observation is the current one, whose action is not
    chosen yet, so a window of length ``L`` carries ``L`` states and ``L - 1`` actions and
    rewards. Entries past ``lengths[b]`` and the action/reward at step ``lengths[b] - 1`` are
    padding (:class:`EpisodeHistory` writes zeros there): they never change an embedding,
    whatever they contain.
    """

    observations: Array  # (B, T, obs_dim) raw observations (the encoder applies view + slices)
    actions: Array  # (B, T, action_dim)
    rewards: Array  # (B, T)
    lengths: Array  # (B,) int, 1 <= lengths <= T

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def padded_length(self) -> int:
        return int(self.observations.shape[1])

    def __getitem__(self, index) -> Windows:
        return Windows(
            self.observations[index], self.actions[index], self.rewards[index], self.lengths[index]
        )

    @classmethod
    def single(cls, observations: Array, actions: Array, rewards: Array) -> Windows:
        """One unpadded window from ``(L, obs_dim)``, ``(L or L-1, action_dim)``, ``(L or L-1,)``
        arrays (e.g. the current episode so far); missing last action/reward are padded."""
        observations = np.asarray(observations, dtype=np.float32)
        actions = np.asarray(actions, dtype=np.float32)
        rewards = np.asarray(rewards, dtype=np.float32).reshape(-1)
        if observations.ndim != 2 or actions.ndim != 2:
            raise CtdkitError(
                f"a single window needs (steps, obs_dim) observations and (steps, action_dim) "
                f"actions, got shapes {observations.shape} and {actions.shape}"
            )
        n = len(observations)
        pad_a = np.zeros((max(n - len(actions), 0), actions.shape[1]), np.float32)
        pad_r = np.zeros(max(n - len(rewards), 0), np.float32)
        return cls(
            observations[None],
            np.concatenate([actions, pad_a])[None, :n],
            np.concatenate([rewards, pad_r])[None, :n],
            np.array([n]),
        )


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

    def window(self, k: int, env_index: np.ndarray | None = None) -> Windows:
        """The last ``<= k`` observations of each env (see :class:`Windows`); no Python loop."""
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
        return Windows(
            obs.astype(np.float32), actions.astype(np.float32), rewards.astype(np.float32), lengths
        )
