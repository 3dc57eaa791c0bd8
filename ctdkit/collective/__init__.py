"""Collective agent: one multi-task SAC actor/critic on [task context, observation],
distilled offline from the experts' labels (``CollectiveSACConfig(...).create()``)."""

from ctdkit.collective.agent import CollectiveAgent
from ctdkit.collective.config import CONDITIONINGS, CollectiveSACConfig
from ctdkit.collective.context import ContextModel, make_context
from ctdkit.collective.learner import CollectiveSAC

CollectiveSACConfig.learner = CollectiveSAC  # what create() builds, wired where both are visible

__all__ = [
    "CONDITIONINGS",
    "CollectiveAgent",
    "CollectiveSAC",
    "CollectiveSACConfig",
    "ContextModel",
    "make_context",
]
