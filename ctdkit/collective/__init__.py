"""Collective agent: one multi-task SAC actor/critic on [task context, observation],
distilled offline from the experts' labels (``CollectiveSACConfig(...).create()``)."""

from ctdkit.collective.agent import CollectiveAgent
from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.collective.context import CONDITIONINGS, ContextModel, make_context
from ctdkit.collective.learner import CollectiveSAC

__all__ = [
    "CONDITIONINGS",
    "CollectiveAgent",
    "CollectiveSAC",
    "CollectiveSACConfig",
    "ContextModel",
    "make_context",
]
