"""The SAC networks, one definition for every learner: the SAC experts (``ctdkit.experts``),
their acting policy (``ctdkit.policies.sac``) and the collective agent (``ctdkit.collective``).

* :func:`mlp` — Linear-ReLU stack ending in a linear layer (optional LayerNorm).
* :class:`TanhGaussianMLP` — π(a | x) = tanh(N(μ(x), σ(x)²)) with ``log σ`` clamped to
  [``LOG_STD_MIN``, ``LOG_STD_MAX``] = [-20, 2]; :class:`SACActor` is it on the observation (the
  experts), the collective's actor is it on [context, standardised observation].
* :func:`squashed_sample` — a reparameterised ``tanh(μ + σ ε)`` and its log-probability.
* :class:`TwinCritic` — two independent Q heads on the concatenated inputs (clipped double-Q).
* :func:`polyak_update` — a target (or averaged) copy moved a step towards its network.

State-dict keys are part of the checkpoint formats: the actor's weights are ``net.*``, the
critic's ``q1.*`` and ``q2.*`` (the collective's subclasses add ``obs_norm.*``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, rate: float) -> None:
    """``target ← (1 − rate) · target + rate · source``, parameter by parameter, in place."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), rate)


def mlp(
    in_dim: int, hidden: Sequence[int], out_dim: int, layer_norm: bool = False
) -> nn.Sequential:
    """Linear-ReLU stack ending in a linear layer; ``layer_norm`` puts a LayerNorm between
    each hidden Linear and its ReLU."""
    layers: list[nn.Module] = []
    for width in hidden:
        norm = [nn.LayerNorm(width)] if layer_norm else []
        layers += [nn.Linear(in_dim, width), *norm, nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def squashed_sample(
    mean: torch.Tensor, log_std: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A reparameterised action ``tanh(μ + σ ε)`` and its log-probability; ``ε`` is drawn on
    the CPU from ``generator`` (a learner's own stream: torch's global RNG is never read).

    ``log π(a|s) = log N(u; μ, σ) − Σ log(1 − tanh(u)²)``, the last term written as
    ``2 (log 2 − u − softplus(−2u))`` (numerically stable at |u| large).
    """
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
    u = mean + log_std.exp() * eps
    gaussian = -0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
    squash = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return torch.tanh(u), (gaussian - squash).sum(-1)


class TanhGaussianMLP(nn.Module):
    """An MLP from an input vector ``x`` to the pre-tanh mean ``μ`` and the clamped ``log σ`` of
    π(a | x) = tanh(N(μ(x), σ(x)²)); subclasses say what ``x`` is (their ``forward``)."""

    def __init__(self, in_dim: int, action_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = mlp(in_dim, hidden, 2 * action_dim)

    def gaussian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(x).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)


class SACActor(TanhGaussianMLP):
    """π(a | s) = tanh(N(μ(s), σ(s)²)), the SAC actor of docs/method.md's experts (MLP 256×2
    on the observation)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__(obs_dim, action_dim, hidden)
        self.obs_dim, self.action_dim, self.hidden = obs_dim, action_dim, tuple(hidden)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean ``μ`` and clamped ``log σ``."""
        return self.gaussian(obs)

    def sample(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action and its log-probability (:func:`squashed_sample`)."""
        return squashed_sample(*self(obs), generator)


class TwinCritic(nn.Module):
    """Two independent Q networks on the concatenation of their inputs (``(obs, action)`` for
    the experts); targets use their minimum (clipped double-Q). ``layer_norm``: a LayerNorm
    after each hidden Linear (the experts' ``critic_layer_norm``)."""

    def __init__(self, in_dim: int, hidden: Sequence[int], layer_norm: bool = False):
        super().__init__()
        self.q1 = mlp(in_dim, hidden, 1, layer_norm)
        self.q2 = mlp(in_dim, hidden, 1, layer_norm)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat(inputs, dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)
