"""Acting: the single-env :class:`Policy` protocol (collection) and the batched
:class:`EvalAgent` protocol with its episode history (evaluation), scripted, random and SAC."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ctdkit.errors import CtdkitError, unknown
from ctdkit.policies.agents import EvalAgent, RandomAgent, ScriptedAgent
from ctdkit.policies.base import ActingPolicy, Policy, PolicyStep, check_finite
from ctdkit.policies.history import EpisodeHistory, Windows
from ctdkit.policies.random import RandomPolicy
from ctdkit.policies.scripted import DEFAULT_LOG_STD_FLOOR, ScriptedPolicy

POLICY_KINDS = ("scripted", "random", "sac")


def make_policy(
    kind: str,
    task: str,
    noise: float = 0.0,
    log_std_floor: float = DEFAULT_LOG_STD_FLOOR,
    checkpoint: Path | str | None = None,
) -> Policy:
    """Build a policy by name for one task (trained agents add their kinds here).

    ``sac`` needs ``checkpoint``, an expert file of ``ctdkit.train_expert`` for ``task``.
    """
    if kind == "scripted":
        return ScriptedPolicy(task, noise=noise, log_std_floor=log_std_floor)
    if kind == "random":
        return RandomPolicy()
    if kind == "sac":
        if checkpoint is None:
            raise CtdkitError("policy 'sac' needs --checkpoint PATH (an expert.pt of train_expert)")
        from ctdkit.policies.sac import SACPolicy  # torch: imported only when used

        return SACPolicy.from_checkpoint(Path(checkpoint), task, noise=noise)
    raise unknown("policy", kind, POLICY_KINDS)


@dataclass(frozen=True)
class NamedPolicy:
    """An :class:`ActingPolicy` given by name, as ``--policy`` names it: builds
    :func:`make_policy` for each task."""

    name: str
    noise: float = 0.0
    log_std_floor: float = DEFAULT_LOG_STD_FLOOR
    checkpoint: str | None = None

    def fingerprint(self) -> dict:
        return {"policy": self.name, "noise": self.noise, "log_std_floor": self.log_std_floor}

    def __call__(self, task: str) -> Policy:
        return make_policy(self.name, task, self.noise, self.log_std_floor, self.checkpoint)


_TORCH_EXPORTS = ("SACActor", "SACAgent", "SACPolicy", "load_expert")


def __getattr__(name: str):
    """The SAC names load lazily: collection with scripted policies never imports torch."""
    if name in _TORCH_EXPORTS:
        from ctdkit.policies import sac

        return getattr(sac, name)
    raise AttributeError(f"module 'ctdkit.policies' has no attribute {name!r}")


__all__ = [
    "DEFAULT_LOG_STD_FLOOR",
    "POLICY_KINDS",
    "ActingPolicy",
    "EpisodeHistory",
    "EvalAgent",
    "NamedPolicy",
    "Policy",
    "PolicyStep",
    "RandomAgent",
    "RandomPolicy",
    "SACActor",
    "SACAgent",
    "SACPolicy",
    "ScriptedAgent",
    "ScriptedPolicy",
    "Windows",
    "check_finite",
    "load_expert",
    "make_policy",
]
