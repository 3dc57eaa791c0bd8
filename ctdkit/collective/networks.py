"""The collective agent's networks: a tanh-Gaussian actor and twin critics on [context, obs].

No task id enters anywhere except through the context (a CLS embedding, a one-hot in the
``oracle`` mode, or nothing in the ``none`` mode).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ctdkit.policies.sac import LOG_STD_MAX, LOG_STD_MIN, mlp  # shared with the SAC experts


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


class TanhGaussianActor(nn.Module):
    """π(a | c, s) = tanh(N(μ, σ²)); ``log σ`` clamped to [-20, 2] as in SAC."""

    def __init__(self, context_dim: int, obs_dim: int, action_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.obs_norm = Standardize(obs_dim)
        self.net = mlp(context_dim + obs_dim, hidden, 2 * action_dim)

    def forward(
        self, context: torch.Tensor, obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([context, self.obs_norm(obs)], dim=-1)
        mean, log_std = self.net(x).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(
        self, context: torch.Tensor, obs: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """``tanh(μ + σ ε)`` with ``ε`` from ``generator`` (a CPU generator: the learner's own
        stream, so training never reads or moves torch's global RNG)."""
        mean, log_std = self(context, obs)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return torch.tanh(mean + log_std.exp() * noise.to(mean.device))


class TwinCritic(nn.Module):
    """Two independent Q(c, s, a) heads; targets use their minimum (clipped double-Q)."""

    def __init__(self, context_dim: int, obs_dim: int, action_dim: int, hidden: Sequence[int]):
        super().__init__()
        in_dim = context_dim + obs_dim + action_dim
        self.obs_norm = Standardize(obs_dim)
        self.q1, self.q2 = mlp(in_dim, hidden, 1), mlp(in_dim, hidden, 1)

    def forward(
        self, context: torch.Tensor, obs: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([context, self.obs_norm(obs), action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)
