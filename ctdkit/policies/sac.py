"""A trained SAC expert as a policy: the expert file and the two acting interfaces.

The actor is :class:`~ctdkit.policies.networks.SACActor`, the network ``ctdkit.experts`` trains
(docs/method.md: MLP 256×2 on the observation, output the pre-tanh mean and log-std of a
Gaussian, ``log σ`` clamped to [-20, 2]). An expert file (``expert.pt``, written by
``python -m ctdkit.train_expert``) holds its weights, shapes and task; from it:

* :class:`SACPolicy` implements the single-env :class:`~ctdkit.policies.base.Policy` protocol
  (``collect --policy sac --checkpoint PATH``). Labels are the actor's own Gaussian at each
  observation: ``mean = tanh(μ)`` (the deterministic action) and ``log_std = log σ`` (pre-tanh,
  clamped). The action sent to the env is ``tanh(μ)`` by default; ``sample=True`` acts with
  ``tanh(μ + σ ε)`` as SAC explores; ``noise > 0`` adds clipped Gaussian noise to the chosen
  action, as for the scripted experts. Labels never change with these flags.
* :class:`SACAgent` implements the batched :class:`~ctdkit.policies.agents.EvalAgent` protocol
  with deterministic actions (evaluation, ``evaluate --agent sac``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctdkit.envs.observation import ACTION_DIM, OBS_DIM
from ctdkit.envs.tasks import validate_task
from ctdkit.errors import CtdkitError
from ctdkit.policies.base import PolicyStep
from ctdkit.policies.checkpoint import (
    SAC_EXPERT,
    SAC_TRAINING,
    check_checkpoint,
    checkpoint_damaged,
    read_checkpoint,
    resolve_device,
)
from ctdkit.policies.history import EpisodeHistory
from ctdkit.policies.networks import SACActor

EXPERT_FORMAT = SAC_EXPERT.format


def expert_record(actor: SACActor, task: str, extra: dict[str, Any]) -> dict[str, Any]:
    """What an expert file holds (plain types and tensors: loads with ``weights_only``)."""
    return {
        "format": EXPERT_FORMAT,
        "task": task,
        "obs_dim": actor.obs_dim,
        "action_dim": actor.action_dim,
        "hidden": list(actor.hidden),
        "actor": actor.state_dict(),
        **extra,
    }


def load_expert(path: Path, device: str | torch.device = "cpu") -> tuple[SACActor, dict[str, Any]]:
    """Actor (on ``device``) and record of an expert file (``expert.pt`` or a training
    ``checkpoint.pt``); anything else is one line (see :mod:`ctdkit.policies.checkpoint`)."""
    device = resolve_device(device)
    payload = read_checkpoint(path, (SAC_EXPERT, SAC_TRAINING))
    record = payload
    if not SAC_EXPERT.matches(payload):  # a training checkpoint: its expert entry
        record = check_checkpoint(payload["expert"], SAC_EXPERT, f"{path} (its 'expert' entry)")
    try:
        actor = SACActor(int(record["obs_dim"]), int(record["action_dim"]), record["hidden"])
        actor.load_state_dict(record["actor"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise checkpoint_damaged(SAC_EXPERT, str(path), error) from error
    actor.to(device).eval()
    return actor, record


def check_expert_fits(path: Path, record: dict[str, Any], task: str) -> None:
    """One line if an expert was trained for another task or other dimensions."""
    if record["task"] != task:
        raise CtdkitError(
            f"SAC checkpoint {path} is an expert for {record['task']}, not for {task}"
        )
    if (record["obs_dim"], record["action_dim"]) != (OBS_DIM, ACTION_DIM):
        raise CtdkitError(
            f"SAC checkpoint {path} expects {record['obs_dim']}-dim observations and "
            f"{record['action_dim']}-dim actions; {task} has {OBS_DIM} and {ACTION_DIM}"
        )


@torch.no_grad()
def actor_labels(actor: SACActor, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(tanh(μ), log σ)`` as float32 arrays for a batch of observations."""
    device = next(actor.parameters()).device
    obs = torch.as_tensor(np.asarray(observations, dtype=np.float32), device=device)
    mean, log_std = actor(obs)
    return torch.tanh(mean).cpu().numpy(), log_std.cpu().numpy()


class SACPolicy:
    """A SAC expert acting in one env (see the module docstring for actions and labels)."""

    name = "sac"

    def __init__(self, actor: SACActor, sample: bool = False, noise: float = 0.0):
        if noise < 0 or not np.isfinite(noise):
            raise CtdkitError(f"noise must be a finite number >= 0, got {noise}")
        self.actor, self.sample, self.noise = actor, sample, float(noise)
        self._rng = np.random.default_rng(0)

    @classmethod
    def from_checkpoint(
        cls, path: Path, task: str, sample: bool = False, noise: float = 0.0
    ) -> SACPolicy:
        actor, record = load_expert(path)
        check_expert_fits(path, record, validate_task(task))
        return cls(actor, sample=sample, noise=noise)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    @torch.no_grad()
    def act(self, observation: np.ndarray) -> PolicyStep:
        mu, log_std = self.actor(torch.as_tensor(np.asarray(observation, np.float32)[None]))
        mu, log_std = mu[0].numpy(), log_std[0].numpy()
        mean = np.tanh(mu)
        action = mean
        if self.sample:  # numpy noise: the episode seed alone fixes it
            action = np.tanh(mu + np.exp(log_std) * self._rng.standard_normal(mu.shape))
        if self.noise > 0:
            action = action + self.noise * self._rng.standard_normal(mean.shape)
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        return PolicyStep(action=action, mean=mean, log_std=log_std)


class SACAgent:
    """Deterministic ``tanh(μ)`` actions for evaluation, for envs that all run the expert's task."""

    name = "sac"

    def __init__(self, actor: SACActor, task: str):
        self.actor, self.task = actor, task

    @classmethod
    def load(cls, path: Path) -> SACAgent:
        actor, record = load_expert(path)
        return cls(actor, record["task"])

    def bind(self, env_tasks: Sequence[str]) -> None:
        other = [t for t in env_tasks if t != self.task]
        if other:
            raise CtdkitError(f"the SAC expert was trained on {self.task}, not on {other[0]}")

    def reset(self, env_mask: np.ndarray) -> None:
        pass  # a feed-forward actor keeps no episode state

    def act(self, observations: np.ndarray, history: EpisodeHistory | None = None) -> np.ndarray:
        return actor_labels(self.actor, observations)[0]
