"""The collective agent's networks: the SAC actor and twin critics of
:mod:`ctdkit.policies.networks` on [context, standardised obs].

No task id enters anywhere except through the context (a CLS embedding, a one-hot in the
``oracle`` mode, or nothing in the ``none`` mode).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ctdkit.policies import networks
from ctdkit.policies.networks import TanhGaussianMLP, squashed_sample


class Standardize(nn.Module):
    """``(x - mean) / std`` with the training data's statistics, kept as buffers so they are
    saved with the weights. Identity until :meth:`fit` is called."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor, std_floor: float) -> None:
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(std_floor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class TanhGaussianActor(TanhGaussianMLP):
    """π(a | c, s) = tanh(N(μ, σ²)) on [context, standardised obs] (the SAC actor of
    :mod:`ctdkit.policies.networks`)."""

    def __init__(
        self,
        context_dim: int,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        normalize_context: bool = False,
    ):
        super().__init__(context_dim + obs_dim, action_dim, hidden)
        self.obs_norm = Standardize(obs_dim)
        self.context_norm = context_norm(context_dim, normalize_context)

    def forward(
        self, context: torch.Tensor, obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gaussian(torch.cat([self.context_norm(context), self.obs_norm(obs)], dim=-1))

    def sample(
        self, context: torch.Tensor, obs: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """``tanh(μ + σ ε)`` with ``ε`` from ``generator`` (a CPU generator: the learner's own
        stream, so training never reads or moves torch's global RNG)."""
        return squashed_sample(*self(context, obs), generator)[0]


class TwinCritic(networks.TwinCritic):
    """The twin critics of :mod:`ctdkit.policies.networks` on [context, standardised obs,
    action]; targets use their minimum (clipped double-Q)."""

    def __init__(
        self,
        context_dim: int,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        normalize_context: bool = False,
    ):
        super().__init__(context_dim + obs_dim + action_dim, hidden)
        self.obs_norm = Standardize(obs_dim)
        self.context_norm = context_norm(context_dim, normalize_context)

    def forward(
        self, context: torch.Tensor, obs: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return super().forward(self.context_norm(context), self.obs_norm(obs), action)


def context_norm(dim: int, normalize: bool) -> nn.Module:
    """The context's standardisation, or the identity (no state: the weights of a network
    without it are those of before the option existed)."""
    return Standardize(dim) if normalize else nn.Identity()
