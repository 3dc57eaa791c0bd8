"""Collect expert/random rollouts into Minari datasets (``python -m ctdkit.collect``)."""

from ctdkit.collect.config import CollectConfig
from ctdkit.collect.jobs import episode_seed
from ctdkit.collect.rollout import rollout_episode
from ctdkit.collect.runner import CollectResult, TaskSummary, collect

__all__ = [
    "CollectConfig",
    "CollectResult",
    "TaskSummary",
    "collect",
    "episode_seed",
    "rollout_episode",
]
