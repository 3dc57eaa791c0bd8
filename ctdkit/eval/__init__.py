"""Evaluation: one agent interface, Meta-World's official protocol and the all-goals protocol."""

from ctdkit.eval.agents import EvalAgent, MetaWorldAgent, RandomAgent, ScriptedAgent
from ctdkit.eval.protocols import (
    PROTOCOLS,
    EvalResult,
    evaluate,
    evaluate_all_goals,
    evaluate_official,
)
from ctdkit.eval.stats import difference_interval, summarize, wilson_interval
from ctdkit.policies.history import EpisodeHistory, Windows

__all__ = [
    "PROTOCOLS",
    "EpisodeHistory",
    "EvalAgent",
    "EvalResult",
    "MetaWorldAgent",
    "RandomAgent",
    "ScriptedAgent",
    "Windows",
    "difference_interval",
    "evaluate",
    "evaluate_all_goals",
    "evaluate_official",
    "summarize",
    "wilson_interval",
]
