"""Acting: the single-env :class:`Policy` protocol (collection) and the batched
:class:`EvalAgent` protocol with its episode history (evaluation), scripted and random."""

from __future__ import annotations

from ctdkit.errors import unknown
from ctdkit.policies.agents import EvalAgent, RandomAgent, ScriptedAgent
from ctdkit.policies.base import Policy, PolicyStep, check_finite
from ctdkit.policies.history import EpisodeHistory, Window
from ctdkit.policies.random import RandomPolicy
from ctdkit.policies.scripted import DEFAULT_LOG_STD_FLOOR, ScriptedPolicy

POLICY_KINDS = ("scripted", "random")


def make_policy(
    kind: str, task: str, noise: float = 0.0, log_std_floor: float = DEFAULT_LOG_STD_FLOOR
) -> Policy:
    """Build a policy by name for one task (trained agents add their kinds here)."""
    if kind == "scripted":
        return ScriptedPolicy(task, noise=noise, log_std_floor=log_std_floor)
    if kind == "random":
        return RandomPolicy()
    raise unknown("policy", kind, POLICY_KINDS)


__all__ = [
    "DEFAULT_LOG_STD_FLOOR",
    "POLICY_KINDS",
    "EpisodeHistory",
    "EvalAgent",
    "Policy",
    "PolicyStep",
    "RandomAgent",
    "RandomPolicy",
    "ScriptedAgent",
    "ScriptedPolicy",
    "Window",
    "check_finite",
    "make_policy",
]
