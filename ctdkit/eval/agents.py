"""Adapter from our agent interface to Meta-World's own evaluation agent."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ctdkit.policies.agents import EvalAgent, RandomAgent, ScriptedAgent

__all__ = ["EvalAgent", "MetaWorldAgent", "RandomAgent", "ScriptedAgent"]


class MetaWorldAgent:
    """Present an :class:`EvalAgent` as Meta-World's ``eval_action``/``reset`` agent.

    Only for running ``metaworld.evaluation.evaluation`` itself (it passes no history), e.g. to
    check that our ``official`` protocol reproduces it.
    """

    def __init__(self, agent: EvalAgent, env_tasks: Sequence[str]):
        self.agent = agent
        agent.bind(env_tasks)

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        return self.agent.act(observations, None)

    def reset(self, env_mask: np.ndarray) -> None:
        self.agent.reset(env_mask)
