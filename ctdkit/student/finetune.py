"""``--init collective``: the experts' SAC learner started from a collective's networks.

The learner's input is ``x = [context, observation]`` (the collective's view applied), the
context computed on the live episode by the collective's frozen context model (``ctd``: its
encoder; ``history``: the raw window; ``oracle``: the one-hot, all zeros on a task it was not
trained on; ``none``: no context, so ``x`` is the observation). The actor is a copy of the
collective's, standardisation of the observation included; the twin critics are copies of the
collective's (and of its target critics) when it trained them, else new ones of the same
architecture. SAC's temperature starts at ``--sac.init-temperature`` (the collective has none).

The finetuned student is saved as a collective checkpoint, the original's entries with the
finetuned networks: ``python -m ctdkit.evaluate --agent collective`` loads it (an ``oracle``
one only on the tasks it has a slot for).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from ctdkit.collective.agent import HistoryContextAgent
from ctdkit.collective.networks import TanhGaussianActor, TwinCritic
from ctdkit.experts import SACConfig, SACLearner
from ctdkit.policies.history import EpisodeHistory
from ctdkit.policies.networks import squashed_sample
from ctdkit.student.teacher import FrozenCollective


class ContextActor(nn.Module):
    """The collective's actor on the SAC learner's one input ``x = [context, observation]``."""

    def __init__(self, actor: TanhGaussianActor, context_dim: int):
        super().__init__()
        self.actor, self.context_dim = actor, context_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor(x[..., : self.context_dim], x[..., self.context_dim :])

    def sample(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return squashed_sample(*self(x), generator)


class ContextCritic(nn.Module):
    """The collective's twin critics on ``(x, action)``."""

    def __init__(self, critic: TwinCritic, context_dim: int):
        super().__init__()
        self.critic, self.context_dim = critic, context_dim

    def forward(self, x: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.critic(x[..., : self.context_dim], x[..., self.context_dim :], action)


class FinetuneSAC(SACLearner):
    """:class:`~ctdkit.experts.SACLearner` whose networks start as the collective's."""

    def __init__(self, config: SACConfig, teacher: FrozenCollective, critic_only_updates: int = 0):
        self.teacher, self.critic_only_updates = teacher, critic_only_updates
        source = teacher.learner
        self.critics_loaded = bool(source.config.critic)  # a critic-free collective's are untrained
        super().__init__(config, teacher.dim + source.obs_dim, source.action_dim)
        if self.critics_loaded:
            self.critic_target.critic.load_state_dict(source.critic_target.state_dict())

    def make_networks(self) -> tuple[nn.Module, nn.Module]:
        source, dim = self.teacher.learner, self.teacher.dim
        actor = copy.deepcopy(source.acting_actor).train().requires_grad_(True)
        if self.critics_loaded:
            critic = copy.deepcopy(source.critic).train().requires_grad_(True)
        else:  # new weights from --sac.seed; observations standardised as the actor's are
            config = source.config
            critic = TwinCritic(
                dim, source.obs_dim, source.action_dim, config.hidden, config.normalize_context
            )
            critic.obs_norm.load_state_dict(source.acting_actor.obs_norm.state_dict())
            critic.context_norm.load_state_dict(source.acting_actor.context_norm.state_dict())
        return ContextActor(actor, dim), ContextCritic(critic, dim)

    def actor_learns(self) -> bool:
        return self.updates >= self.critic_only_updates

    def collective_record(self, extra: dict[str, Any]) -> dict[str, Any]:
        """The collective checkpoint of the finetuned networks: the original's entries (config,
        context model with its encoder, shapes, generators, step) with this learner's actor,
        critics and their optimisers (the same parameters in the same order). A collective that
        acts with an averaged actor gets the finetuned actor as that average too: the finetuned
        weights are what acts."""
        actor = self.actor.actor.state_dict()
        averaged = {"actor_average": actor} if "actor_average" in self.teacher.payload else {}
        return {
            **self.teacher.payload,
            **averaged,
            "actor": actor,
            "critic": self.critic.critic.state_dict(),
            "critic_target": self.critic_target.critic.state_dict(),
            "actor_optim": self.actor_optim.state_dict(),
            "critic_optim": self.critic_optim.state_dict(),
            "student": extra,
        }


class FinetunedAgent(HistoryContextAgent):
    """Deterministic ``tanh(μ)`` of the finetuned actor, its context from the evaluator's
    history through the frozen context model (as the collective's own agent)."""

    def __init__(self, actor: ContextActor, teacher: FrozenCollective):
        super().__init__(f"student-{teacher.mode}")
        self.actor, self.teacher = actor, teacher

    @torch.no_grad()
    def act(self, observations: np.ndarray, history: EpisodeHistory | None) -> np.ndarray:
        if history is None:
            raise ValueError("the finetuned student needs the evaluator's episode history")
        x = self.teacher.inputs(self.teacher.context(history, self.env_tasks), observations)
        mean, _ = self.actor(torch.as_tensor(x))
        return torch.tanh(mean).numpy()
