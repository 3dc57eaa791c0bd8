"""The collective learner as an evaluation agent (``ctdkit.eval.EvalAgent``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ctdkit.collective.learner import CollectiveSAC
from ctdkit.policies.history import EpisodeHistory


class HistoryContextAgent:
    """An evaluation agent whose task context is computed from the evaluator's episode history
    at each step (``ContextModel.for_history``): it remembers only each env's task."""

    def __init__(self, name: str):
        self.name = name
        self.env_tasks: list[str] = []

    def bind(self, env_tasks: Sequence[str]) -> None:
        self.env_tasks = list(env_tasks)

    def reset(self, env_mask: np.ndarray) -> None:
        pass  # all state lives in the evaluator's history


class CollectiveAgent(HistoryContextAgent):
    """Deterministic actions of a collective learner; its context comes from the history."""

    def __init__(self, learner: CollectiveSAC):
        super().__init__(f"collective-{learner.config.conditioning}")
        self.learner = learner

    def act(self, observations: np.ndarray, history: EpisodeHistory | None) -> np.ndarray:
        contexts = self.learner.context.for_history(history, self.env_tasks)
        return self.learner.predict(observations, contexts)
