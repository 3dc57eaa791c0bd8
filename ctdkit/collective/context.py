"""Task context for the collective agent: what it is conditioned on instead of a task id.

One :class:`ContextModel` serves both training (a context per transition, and per next
observation for the TD target) and acting (a context per env from the evaluator's episode
history), so the two can never disagree. Modes:

* ``oracle`` — a one-hot task id (the upper reference),
* ``none`` — no context at all (the lower reference),
* ``ctd`` — the frozen trajectory encoder's CLS embedding of the episode's last <= K steps,
* ``history`` — the raw last k actions and rewards of the episode (the baseline ``ctd`` must
  beat: Meta-World's rewards differ per task),
* ``ctd+history`` — the CLS embedding beside the raw window,
* ``ctd-e2e`` — ``ctd``'s CLS embedding of an encoder finetuned through the distillation loss
  while the collective trains (:mod:`ctdkit.collective.e2e_context`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ctdkit.collective.config import CONDITIONINGS, ENCODER_CONDITIONINGS
from ctdkit.collective.history_context import HistoryContext
from ctdkit.data.loader import Transitions
from ctdkit.errors import CtdkitError, unknown
from ctdkit.policies.history import EpisodeHistory


class ContextModel(Protocol):
    mode: str
    dim: int

    def for_transitions(self, data: Transitions) -> tuple[np.ndarray, np.ndarray]:
        """Contexts ``(T, dim)`` at each row's observation and at its next observation."""
        ...

    def for_history(self, history: EpisodeHistory, env_tasks: Sequence[str]) -> np.ndarray:
        """Contexts ``(num_envs, dim)`` for the current observation of every env."""
        ...

    def state(self) -> dict[str, Any]:
        """What ``load_context`` needs to rebuild this model (saved with the agent): tensors
        and plain data only, so the agent's checkpoint loads with ``weights_only=True``."""
        ...


class NoContext:
    mode, dim = "none", 0

    def for_transitions(self, data: Transitions) -> tuple[np.ndarray, np.ndarray]:
        empty = np.zeros((len(data), 0), dtype=np.float32)
        return empty, empty

    def for_history(self, history: EpisodeHistory, env_tasks: Sequence[str]) -> np.ndarray:
        return np.zeros((history.num_envs, 0), dtype=np.float32)

    def state(self) -> dict[str, Any]:
        return {"mode": self.mode}


class OracleContext:
    """One-hot of the task's index in the training task list."""

    mode = "oracle"

    def __init__(self, tasks: Sequence[str]):
        self.tasks = tuple(tasks)
        self.dim = len(self.tasks)

    def _one_hot(self, indices: np.ndarray) -> np.ndarray:
        return np.eye(self.dim, dtype=np.float32)[indices]

    def for_transitions(self, data: Transitions) -> tuple[np.ndarray, np.ndarray]:
        if tuple(data.tasks) != self.tasks:
            raise CtdkitError(
                f"oracle context was built for tasks {self.tasks}, data has {data.tasks}"
            )
        one_hot = self._one_hot(data.task_index)
        return one_hot, one_hot

    def for_history(self, history: EpisodeHistory, env_tasks: Sequence[str]) -> np.ndarray:
        missing = [t for t in env_tasks if t not in self.tasks]
        if missing:
            raise CtdkitError(f"oracle agent was not trained on task {missing[0]!r}")
        return self._one_hot(np.array([self.tasks.index(t) for t in env_tasks]))

    def state(self) -> dict[str, Any]:
        return {"mode": self.mode, "tasks": list(self.tasks)}


def make_context(
    mode: str, data: Transitions, encoder: Any = None, history_steps: int = 5
) -> ContextModel:
    """The context model for ``mode`` given the training data (and encoder for ``ctd``, window
    for ``history``; ``ctd-e2e`` takes a copy of the encoder, which it finetunes)."""
    if mode == "none":
        return NoContext()
    if mode == "oracle":
        return OracleContext(data.tasks)
    if mode == "history":
        return HistoryContext(history_steps, data.actions.shape[1])
    if mode in ENCODER_CONDITIONINGS:
        if encoder is None:
            raise CtdkitError(f"conditioning {mode!r} needs a trained encoder (--encoder PATH)")
        from ctdkit.collective.cls_context import CLSContext, CLSWithHistoryContext

        if mode == "ctd":
            return CLSContext(encoder)
        if mode == "ctd-e2e":
            from ctdkit.collective.e2e_context import EndToEndCLSContext

            return EndToEndCLSContext.starting_from(encoder)
        history = HistoryContext(history_steps, data.actions.shape[1])
        return CLSWithHistoryContext(CLSContext(encoder), history)
    raise unknown("conditioning mode", mode, CONDITIONINGS)


def load_context(
    state: dict[str, Any],
    encoder: Any = None,
    device: str = "cpu",
    source: str = "checkpoint",
) -> ContextModel:
    """The context model saved as ``state`` (``ctd``: with its own encoder on ``device``, unless
    ``encoder`` is given); ``source`` names the file for error messages."""
    mode = state["mode"]
    if mode == "none":
        return NoContext()
    if mode == "oracle":
        tasks = state["tasks"]
        if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
            raise ValueError(f"oracle tasks must be a list of task names, got {tasks!r:.80}")
        return OracleContext(tasks)
    if mode == "ctd":
        from ctdkit.collective.cls_context import CLSContext

        return CLSContext.from_state(state, encoder, device, source)
    if mode == "ctd-e2e":
        from ctdkit.collective.e2e_context import EndToEndCLSContext

        return EndToEndCLSContext.from_state(state, encoder, device, source)
    if mode == "history":
        return HistoryContext.from_state(state)
    if mode == "ctd+history":
        from ctdkit.collective.cls_context import CLSWithHistoryContext

        return CLSWithHistoryContext.from_state(state, encoder, device, source)
    raise ValueError(f"unknown conditioning mode {mode!r:.40}")
