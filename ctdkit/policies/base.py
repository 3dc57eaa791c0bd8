"""The :class:`Policy` protocol shared by scripted experts, random policies and trained agents.

A policy acts on one environment's observation and returns the action it takes *and* the
Gaussian it would describe itself by (``mean``, ``log_std``): those are the distillation labels
stored with every step of a dataset. A deterministic policy still reports a finite log-std
(``log_std_floor``), so the labels never contain ``-inf``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ctdkit.errors import CtdkitError


@dataclass(frozen=True)
class PolicyStep:
    """One decision: the action sent to the env and the policy's own label for it."""

    action: np.ndarray  # (action_dim,) float32, what the env receives
    mean: np.ndarray  # (action_dim,) float32, the action before exploration noise
    log_std: np.ndarray  # (action_dim,) float32, finite


@runtime_checkable
class Policy(Protocol):
    """What ``ctdkit.collect`` (and later evaluation) needs from an acting policy.

    Optional memory hook (not a protocol member, so stateless policies need not define it): a
    policy with ``observe(action, reward, next_observation)`` is called by
    :func:`~ctdkit.collect.rollout.rollout_episode` after every env step, before its next
    ``act``, with the executed action, the reward and the next observation — what a policy
    conditioned on its own history (a context encoder) needs to remember.
    """

    #: short name stored in dataset metadata ("scripted", "random", "sac", ...)
    name: str

    def reset(self, seed: int) -> None:
        """Start an episode; all randomness of the episode derives from ``seed``."""
        ...

    def act(self, observation: np.ndarray) -> PolicyStep:
        """Choose an action for one (unbatched) observation."""
        ...


def check_finite(step: PolicyStep, policy_name: str) -> PolicyStep:
    """Refuse NaN/inf from a policy instead of writing it into a dataset."""
    for field in ("action", "mean", "log_std"):
        value = getattr(step, field)
        if not np.all(np.isfinite(value)):
            raise CtdkitError(f"policy {policy_name!r} produced a non-finite {field}: {value}")
    return step


@runtime_checkable
class ActingPolicy(Protocol):
    """Where ``ctdkit.collect`` gets its acting policy for each task: a policy named on the
    command line (:class:`ctdkit.policies.NamedPolicy`), or an object a later stage hands it —
    a collective checkpoint in DAgger rounds — without collect importing that stage. Must be
    picklable: worker processes build their policies from it."""

    #: stored as the datasets' ``policy``
    name: str

    def fingerprint(self) -> dict:
        """The settings that determine the data (a resumed collection must match them)."""
        ...

    def __call__(self, task: str) -> Policy:
        """A fresh policy for one task."""
        ...
