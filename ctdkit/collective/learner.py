"""The collective SAC learner: ``CollectiveSACConfig(...).create()``, ``fit``, ``predict``,
``save``/``load`` — the d3rlpy shape, with array-indexed batches resident as tensors (d3rlpy's
per-transition sampler is the bottleneck of its ``fit`` on CPU).

Randomness comes from the learner's own generators (batch indices; policy noise), saved in its
checkpoint: a resumed run continues exactly, and neither training nor loading reads or moves
torch's global RNG, so a caller's seeded code around it is unaffected.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.collective.context import ContextModel, load_context
from ctdkit.collective.networks import TanhGaussianActor, TwinCritic
from ctdkit.data.loader import Transitions
from ctdkit.envs.observation import apply_view
from ctdkit.errors import CtdkitError
from ctdkit.files import write_atomic
from ctdkit.policies.checkpoint import (
    COLLECTIVE,
    checkpoint_damaged,
    read_checkpoint,
    resolve_device,
)
from ctdkit.progress import progress_bar

REQUIRED_LABELS = ("expert_action_mean", "expert_action_log_std")


def td_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """``r + γ (1 - terminated) Q(s', a')``: a truncated step still bootstraps."""
    return rewards + gamma * (1.0 - terminated.float()) * next_q


class CollectiveSAC:
    """See :class:`CollectiveSACConfig` for the losses."""

    def __init__(self, config: CollectiveSACConfig, device: str = "cpu"):
        self.config = config
        self.device = torch.device(device)
        self.context: ContextModel | None = None
        self.actor: TanhGaussianActor | None = None
        self.critic: TwinCritic | None = None
        self.step = 0

    # ------------------------------------------------------------------ build
    def build(self, obs_dim: int, action_dim: int, context: ContextModel) -> None:
        context_view = getattr(context, "view", None)
        if context_view == "full" and self.config.view == "goal-hidden":
            raise CtdkitError(
                "the encoder sees the 'full' view: it would leak the goal to a 'goal-hidden' "
                "agent (train the encoder with view='goal-hidden')"
            )
        c = self.config
        self.context, self.obs_dim, self.action_dim = context, obs_dim, action_dim
        with torch.random.fork_rng(devices=[]):  # weights from the seed; global RNG untouched
            torch.default_generator.manual_seed(c.seed)
            self.actor = TanhGaussianActor(context.dim, obs_dim, action_dim, c.hidden)
            self.critic = TwinCritic(context.dim, obs_dim, action_dim, c.hidden)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)  # init from critic
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr)
        self._generator = torch.Generator(device="cpu").manual_seed(c.seed)  # batch indices
        # policy noise: a stream of its own, so the actor's updates do not depend on the critic's
        noise_seed = int(np.random.SeedSequence([c.seed, 1]).generate_state(1)[0])
        self._noise_generator = torch.Generator(device="cpu").manual_seed(noise_seed)

    # ------------------------------------------------------------------ data
    def _tensors(self, data: Transitions) -> dict[str, torch.Tensor]:
        if data.view != "full":
            raise CtdkitError("load transitions with view='full'; the learner applies its own view")
        if not data.has_expert_labels:
            raise CtdkitError(
                f"dataset {data.dataset_id} has no expert labels "
                f"(infos {', '.join(REQUIRED_LABELS)})"
            )
        if data.observations.shape[1] != self.obs_dim:
            raise CtdkitError(
                f"observation width {data.observations.shape[1]} does not match the agent's "
                f"{self.obs_dim}"
            )
        context, next_context = self.context.for_transitions(data)
        arrays = {
            "obs": apply_view(data.observations, self.config.view),
            "next_obs": apply_view(data.next_observations, self.config.view),
            "context": context,
            "next_context": next_context,
            "actions": data.actions,
            "rewards": data.rewards,
            "terminated": data.terminated,
            "label_mean": data.expert_action_mean,
            "label_log_std": data.expert_action_log_std,
        }
        return {k: torch.as_tensor(np.asarray(v)).to(self.device) for k, v in arrays.items()}

    def _batch(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        size = len(tensors["obs"])
        index = torch.randint(size, (self.config.batch_size,), generator=self._generator)
        index = index.to(self.device)
        return {k: v[index] for k, v in tensors.items()}

    # ------------------------------------------------------------------ losses
    def actor_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mean, log_std = self.actor(batch["context"], batch["obs"])
        action_mse = F.mse_loss(torch.tanh(mean), batch["label_mean"])
        log_std_mse = F.mse_loss(log_std, batch["label_log_std"])
        return action_mse + self.config.log_std_weight * log_std_mse

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            next_action = self.actor.sample(
                batch["next_context"], batch["next_obs"], self._noise_generator
            )
            q1_next, q2_next = self.critic_target(
                batch["next_context"], batch["next_obs"], next_action
            )
            target = td_target(
                batch["rewards"],
                batch["terminated"],
                torch.min(q1_next, q2_next),
                self.config.gamma,
            )
        q1, q2 = self.critic(batch["context"], batch["obs"], batch["actions"])
        return F.mse_loss(q1, target) + F.mse_loss(q2, target)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One actor update and (if enabled) one critic update plus the target's Polyak step."""
        actor_loss = self.actor_loss(batch)
        self.actor_optim.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optim.step()
        losses = {"actor": actor_loss.item()}
        if self.config.critic:
            critic_loss = self.critic_loss(batch)
            self.critic_optim.zero_grad(set_to_none=True)
            critic_loss.backward()
            self.critic_optim.step()
            with torch.no_grad():
                torch._foreach_lerp_(
                    list(self.critic_target.parameters()),
                    list(self.critic.parameters()),
                    self.config.tau,
                )
            losses["critic"] = critic_loss.item()
        self.step += 1
        return losses

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        data: Transitions,
        n_steps: int,
        context: ContextModel | None = None,
        progress: bool = True,
        log_every: int = 1000,
        checkpoint: Path | None = None,
        checkpoint_every: int = 0,
    ) -> list[dict[str, float]]:
        """Train ``n_steps`` more updates (d3rlpy's meaning: a loaded checkpoint continues from
        its step). Returns the mean losses logged every ``log_every`` steps and at the end."""
        if n_steps < 0:
            raise CtdkitError(f"n_steps must be non-negative, got {n_steps}")
        if self.actor is None:
            if context is None:
                raise CtdkitError("fit needs a context model on first use")
            self.build(data.observations.shape[1], data.actions.shape[1], context)
        tensors = self._tensors(data)
        if self.step == 0 and self.config.normalize_observations:
            for net in (self.actor, self.critic, self.critic_target):
                net.obs_norm.fit(tensors["obs"], self.config.obs_std_floor)
        history: list[dict[str, float]] = []
        running: dict[str, float] = {}
        count, end = 0, self.step + n_steps
        with progress_bar("collective", total=n_steps, enabled=progress) as advance:
            while self.step < end:
                losses = self.update(self._batch(tensors))
                count += 1
                for k, v in losses.items():
                    running[k] = running.get(k, 0.0) + v
                if self.step % log_every == 0 or self.step == end:
                    history.append(
                        {"step": self.step, **{k: v / count for k, v in running.items()}}
                    )
                    running, count = {}, 0
                if (
                    checkpoint is not None
                    and checkpoint_every
                    and self.step % checkpoint_every == 0
                ):
                    self.save(checkpoint)
                advance(1)
        return history

    @torch.no_grad()
    def predict(self, observations: np.ndarray, contexts: np.ndarray) -> np.ndarray:
        """Deterministic actions ``tanh(μ)`` for raw observations (the agent's view is applied)."""
        obs = torch.as_tensor(apply_view(np.asarray(observations, np.float32), self.config.view))
        ctx = torch.as_tensor(np.asarray(contexts, np.float32))
        mean, _ = self.actor(ctx.to(self.device), obs.to(self.device))
        return torch.tanh(mean).cpu().numpy()

    def save(self, path: Path) -> None:
        """Config, context model, weights, optimisers, generators and step, written atomically
        as tensors and plain data (it loads with ``weights_only=True``)."""
        config = dataclasses.asdict(self.config)
        state: dict[str, Any] = {
            "format": COLLECTIVE.format,
            "config": {**config, "hidden": list(config["hidden"])},
            "context": self.context.state(),
            "shapes": {"obs_dim": self.obs_dim, "action_dim": self.action_dim},
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optim": self.actor_optim.state_dict(),
            "critic_optim": self.critic_optim.state_dict(),
            "generator": self._generator.get_state(),
            "noise_generator": self._noise_generator.get_state(),
            "step": self.step,
        }
        write_atomic(Path(path), lambda tmp: torch.save(state, tmp))

    @classmethod
    def load(cls, path: Path, device: str = "cpu", encoder: Any = None) -> CollectiveSAC:
        """The learner saved in ``path``, on ``device``, ready to act or to continue ``fit``
        exactly (a ``ctd`` agent brings its own encoder unless ``encoder`` is given)."""
        device = str(resolve_device(device))
        state = read_checkpoint(path, COLLECTIVE)
        try:
            config = CollectiveSACConfig(
                **{**state["config"], "hidden": tuple(state["config"]["hidden"])}
            )
            context = load_context(state["context"], encoder, device, str(path))
            agent = cls(config, device=device)
            agent.build(
                int(state["shapes"]["obs_dim"]), int(state["shapes"]["action_dim"]), context
            )
            for name in ("actor", "critic", "critic_target", "actor_optim", "critic_optim"):
                getattr(agent, name).load_state_dict(state[name])
            agent._generator.set_state(state["generator"])
            agent._noise_generator.set_state(state["noise_generator"])
            agent.step = int(state["step"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as error:
            raise checkpoint_damaged(COLLECTIVE, str(path), error) from error
        return agent
