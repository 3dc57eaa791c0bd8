"""The ``history`` context: the raw last k actions and rewards of the current episode, with a
validity mask and no task id — the simple baseline the CLS embedding (``ctd``) must beat.

Meta-World's reward functions differ per task, so a window of rewards and actions already
tells tasks apart after a single step; ``ctd`` is worth its encoder only if it does better.

The vector has one slot per past step, oldest to newest (step ``t - 1`` in the last slot), each
``[action, reward / REWARD_SCALE, valid]``; slots before the episode's first step are zeros
with ``valid = 0``. Training rows and act time build it from the same steps, so the two agree
exactly (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ctdkit.collective.config import MAX_HISTORY_STEPS
from ctdkit.data.loader import Transitions
from ctdkit.errors import CtdkitError
from ctdkit.policies.history import EpisodeHistory

#: Meta-World v3 rewards lie in [0, 10]: divided by this, they sit in [0, 1] like the actions
REWARD_SCALE = 10.0


class HistoryContext:
    """``[action, reward / REWARD_SCALE, valid]`` of each of the episode's last ``steps`` steps."""

    mode = "history"

    def __init__(self, steps: int, action_dim: int):
        if steps < 1 or action_dim < 1:
            raise CtdkitError(
                f"history context needs steps >= 1 and action_dim >= 1, got {steps}, {action_dim}"
            )
        self.steps, self.action_dim = steps, action_dim
        self.dim = steps * (action_dim + 2)

    def _slots(self, actions: np.ndarray, rewards: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``(n, dim)`` from ``(n, steps, action_dim)``, ``(n, steps)``, ``(n, steps)`` bool."""
        slots = np.concatenate(
            [actions, (rewards / np.float32(REWARD_SCALE))[..., None], valid[..., None]], axis=2
        )
        slots = np.where(valid[..., None], slots, 0.0).astype(np.float32)
        return slots.reshape(len(slots), self.dim)

    def _gather(self, data: Transitions, last: np.ndarray, past: np.ndarray) -> np.ndarray:
        """Contexts whose newest step is row ``last`` (``past`` steps of the episode exist)."""
        offsets = np.arange(self.steps) - self.steps + 1  # slot i: row last - (steps - 1 - i)
        rows = last[:, None] + offsets[None, :]
        valid = offsets[None, :] > -past[:, None]  # (n, steps)
        rows = np.where(valid, rows, 0)
        return self._slots(data.actions[rows], data.rewards[rows], valid)

    def for_transitions(self, data: Transitions) -> tuple[np.ndarray, np.ndarray]:
        """At row ``t`` of an episode: its steps ``t - k .. t - 1``; at its next observation:
        steps ``t + 1 - k .. t`` (the row's own action and reward are the newest)."""
        if data.actions.shape[1] != self.action_dim:
            raise CtdkitError(
                f"history context was built for {self.action_dim}-dim actions, "
                f"data has {data.actions.shape[1]}"
            )
        episode = np.asarray(data.episode_index)
        first = np.ones(len(episode), dtype=bool)
        first[1:] = episode[1:] != episode[:-1]
        starts = np.flatnonzero(first)
        position = np.arange(len(episode)) - starts[np.cumsum(first) - 1]
        if len(np.unique(episode)) != len(starts) or not np.array_equal(data.step_index, position):
            raise CtdkitError(
                "transitions are not grouped by episode in step order (rows of an episode must "
                "be contiguous, from step 0)"
            )
        rows = np.arange(len(episode))
        return self._gather(data, rows - 1, position), self._gather(data, rows, position + 1)

    def for_history(self, history: EpisodeHistory, env_tasks: Sequence[str]) -> np.ndarray:
        """From ``history.window(steps + 1)``: left-aligned, its ``L - 1`` actions and rewards
        are the newest past steps, moved right so step ``t - 1`` lands in the last slot."""
        windows = history.window(self.steps + 1)
        past = np.asarray(windows.lengths) - 1  # (n,) steps taken, at most self.steps
        source = np.arange(self.steps)[None, :] - (self.steps - past[:, None])  # window column
        valid = source >= 0
        source = np.where(valid, source, 0)
        n = np.arange(len(past))[:, None]
        actions = np.asarray(windows.actions)[n, source]
        rewards = np.asarray(windows.rewards)[n, source]
        return self._slots(actions, rewards, valid)

    def state(self) -> dict[str, Any]:
        return {"mode": self.mode, "steps": self.steps, "action_dim": self.action_dim}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HistoryContext:
        """Rebuild from an (untrusted) checkpoint's state: ValueError on anything but ints."""
        steps, action_dim = state["steps"], state["action_dim"]
        for name, value in (("steps", steps), ("action_dim", action_dim)):
            if type(value) is not int or not 1 <= value <= MAX_HISTORY_STEPS:
                raise ValueError(
                    f"history {name} must be an int in [1, {MAX_HISTORY_STEPS}], got {value!r:.40}"
                )
        return cls(steps, action_dim)
