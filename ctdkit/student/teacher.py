"""The collective as the student's teacher: loaded once, checked against the task, frozen.

Its context model gives the context of the student's current step from the student's own live
episode (:class:`~ctdkit.policies.EpisodeHistory`), exactly as at evaluation; its actor gives
the ``(μ, σ)`` of the bonus there. Nothing of it is trained: every network is in eval mode
without gradients.

An ``oracle`` collective on a task outside its training list has no one-hot slot for it: its
context is then all zeros (the actor sees no task id; at the start this is what a new slot with
zero weights would give, without changing the input width, so its weights load as they are).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctdkit.collective import CollectiveSAC
from ctdkit.collective.config import ENCODER_CONDITIONINGS
from ctdkit.envs.observation import ACTION_DIM, OBS_DIM, apply_view
from ctdkit.errors import CtdkitError
from ctdkit.files import sha256_file
from ctdkit.policies.checkpoint import COLLECTIVE, checkpoint_damaged, read_checkpoint
from ctdkit.policies.history import EpisodeHistory


class FrozenCollective:
    """A collective checkpoint for one task: its context, its action distribution, its cost."""

    def __init__(self, path: Path, task: str):
        path = Path(path)
        payload = read_checkpoint(path, COLLECTIVE)  # missing, damaged, foreign: one line
        _check_fits(path, payload, task)
        self.path, self.task, self.payload = path, task, payload
        self.sha256 = sha256_file(path)
        self.learner = CollectiveSAC.load(path)
        self.mode = self.learner.config.conditioning
        self.view = self.learner.config.view
        self.dim = self.learner.context.dim
        self.zero_slot = self.mode == "oracle" and task not in self.learner.context.tasks
        for net in (self.learner.acting_actor, self.learner.critic, self.learner.critic_target):
            net.eval().requires_grad_(False)

    def context(self, history: EpisodeHistory, env_tasks: Sequence[str] = ()) -> np.ndarray:
        """Contexts ``(num_envs, dim)`` of the current step of every env of ``history``
        (``env_tasks``: each env's task, the student's by default)."""
        if self.zero_slot:
            return np.zeros((history.num_envs, self.dim), dtype=np.float32)
        tasks = list(env_tasks) or [self.task] * history.num_envs
        return np.asarray(self.learner.context.for_history(history, tasks), dtype=np.float32)

    def inputs(self, context: np.ndarray, observations: np.ndarray) -> np.ndarray:
        """``[context, observation]`` as the collective's networks see it (its view applied):
        the finetuned student's input (``(n, dim + obs_dim)`` from ``(n, ·)`` rows)."""
        observations = apply_view(np.asarray(observations, dtype=np.float32), self.view)
        return np.concatenate([context, observations], axis=-1).astype(np.float32)

    @torch.no_grad()
    def action_distribution(
        self, context: np.ndarray, observation: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(μ, σ) = (tanh(mean), exp(log_std))`` of the collective at one observation."""
        obs = apply_view(np.asarray(observation, dtype=np.float32)[None], self.view)
        mean, log_std = self.learner.acting_actor(torch.as_tensor(context), torch.as_tensor(obs))
        return torch.tanh(mean)[0].numpy(), log_std.exp()[0].numpy()

    def describe(self) -> dict[str, Any]:
        """What a student's record says about its collective."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "conditioning": self.mode,
            "view": self.view,
            "context_dim": self.dim,
            "zero_slot": self.zero_slot,
        }


def _check_fits(path: Path, payload: dict[str, Any], task: str) -> None:
    """One line if the collective cannot act on ``task``'s env: other widths, or a ``ctd``
    context without the encoder it needs."""
    try:
        obs_dim = int(payload["shapes"]["obs_dim"])
        action_dim = int(payload["shapes"]["action_dim"])
        context = payload["context"]
        mode = context["mode"]
        inner = context.get("ctd", {}) if mode == "ctd+history" else context
        has_encoder = isinstance(inner, dict) and inner.get("encoder") is not None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise checkpoint_damaged(COLLECTIVE, str(path), error) from error
    if (obs_dim, action_dim) != (OBS_DIM, ACTION_DIM):
        raise CtdkitError(
            f"collective checkpoint {path} expects {obs_dim}-dim observations and "
            f"{action_dim}-dim actions; {task} has {OBS_DIM} and {ACTION_DIM}"
        )
    if mode in ENCODER_CONDITIONINGS and not has_encoder:
        raise CtdkitError(
            f"collective checkpoint {path} is a {mode} collective without its encoder "
            "(python -m ctdkit.train_collective saves it inside the checkpoint)"
        )
