"""SAC's replay: a ring buffer of transitions in preallocated tensors, sampled by indexing.

Fancy indexing of resident tensors costs ~0.1 ms per batch of 512; d3rlpy's replay buffer builds
one Python ``Transition`` per row (~5 ms, see docs/ecosystem.md). Only ``terminated`` is stored:
time-limit truncation is not the end of the MDP, so a truncated transition bootstraps.
"""

from __future__ import annotations

import numpy as np
import torch


class ReplayBuffer:
    """Last ``capacity`` transitions; ``state()``/``load_state()`` round-trip it exactly."""

    #: the per-row tensors sampled and saved (a subclass with more columns extends it)
    FIELDS: tuple[str, ...] = ("obs", "actions", "rewards", "next_obs", "terminated")

    def __init__(self, capacity: int, obs_dim: int, action_dim: int):
        self.capacity = capacity
        self.obs = torch.zeros(capacity, obs_dim)
        self.actions = torch.zeros(capacity, action_dim)
        self.rewards = torch.zeros(capacity)
        self.next_obs = torch.zeros(capacity, obs_dim)
        self.terminated = torch.zeros(capacity)
        self.size = 0  # filled rows
        self.cursor = 0  # next row to write

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
    ) -> None:
        i = self.cursor
        self.obs[i] = torch.from_numpy(np.asarray(obs, dtype=np.float32))
        self.actions[i] = torch.from_numpy(np.asarray(action, dtype=np.float32))
        self.rewards[i] = float(reward)
        self.next_obs[i] = torch.from_numpy(np.asarray(next_obs, dtype=np.float32))
        self.terminated[i] = float(terminated)
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Uniform rows (with replacement) drawn from ``rng``, as tensors keyed like ``FIELDS``."""
        index = torch.from_numpy(rng.integers(0, self.size, batch_size))
        return {name: getattr(self, name)[index] for name in self.FIELDS}

    def state(self) -> dict[str, object]:
        """The filled rows and the cursor (a checkpoint stores only what was written)."""
        rows = {name: getattr(self, name)[: self.size].clone() for name in self.FIELDS}
        return {"capacity": self.capacity, "size": self.size, "cursor": self.cursor, **rows}

    def load_state(self, state: dict[str, object]) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"replay capacity {state['capacity']} != {self.capacity}")
        self.size, self.cursor = int(state["size"]), int(state["cursor"])
        for name in self.FIELDS:
            getattr(self, name)[: self.size] = state[name]
