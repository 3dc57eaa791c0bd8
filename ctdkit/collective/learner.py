"""The collective SAC learner: ``CollectiveSACConfig(...).create()``, ``fit``, ``predict``,
``save``/``load`` — the d3rlpy shape, with array-indexed batches resident as tensors (d3rlpy's
per-transition sampler is the bottleneck of its ``fit`` on CPU).

Randomness comes from the learner's own generators (batch indices; policy noise; ``ctd-e2e``:
the encoder's dropout, drawn inside a forked RNG from a state of its own), saved in its
checkpoint: a resumed run continues exactly, and neither training nor loading reads or moves
torch's global RNG, so a caller's seeded code around it is unaffected.

``ctd-e2e`` (:mod:`ctdkit.collective.e2e_context`): each actor update embeds the sampled rows'
windows with the encoder in train mode and steps the encoder's own Adam (``encoder_lr``) on the
same distillation loss; the checkpoint holds the encoder (inside the context), its optimiser and
its dropout RNG.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ctdkit.collective.config import CLS_WITH_HISTORY, END_TO_END, CollectiveSACConfig
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
    require_entries,
    resolve_device,
)
from ctdkit.policies.networks import polyak_update
from ctdkit.progress import progress_bar

REQUIRED_LABELS = ("expert_action_mean", "expert_action_log_std")
#: what a ctd-e2e checkpoint holds beyond the others: the encoder's optimiser and dropout RNG
END_TO_END_ENTRIES = ("encoder_optim", "encoder_rng")
#: what a checkpoint trained with ``cls_swap`` holds beyond the others: the swaps' generator
CLS_SWAP_ENTRIES = ("swap_generator",)


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
        self.encoder_optim: torch.optim.Adam | None = None  # ctd-e2e: the encoder's optimiser
        self.step = 0

    # ------------------------------------------------------------------ build
    def _check_context(self, context: ContextModel) -> None:
        context_view = getattr(context, "view", None)
        if context_view == "full" and self.config.view == "goal-hidden":
            raise CtdkitError(
                "the encoder sees the 'full' view: it would leak the goal to a 'goal-hidden' "
                "agent (train the encoder with view='goal-hidden')"
            )
        if (self.config.conditioning == END_TO_END) != (context.mode == END_TO_END):
            raise CtdkitError(
                f"conditioning {self.config.conditioning!r} cannot train on a {context.mode!r} "
                "context (make_context with the config's conditioning)"
            )
        if self.config.cls_swap and context.mode != CLS_WITH_HISTORY:
            raise CtdkitError(
                f"cls_swap needs a {CLS_WITH_HISTORY!r} context, not {context.mode!r}"
            )

    def build(self, obs_dim: int, action_dim: int, context: ContextModel) -> None:
        self._check_context(context)
        c = self.config
        self.context, self.obs_dim, self.action_dim = context, obs_dim, action_dim
        with torch.random.fork_rng(devices=[]):  # weights from the seed; global RNG untouched
            torch.default_generator.manual_seed(c.seed)
            sizes = (context.dim, obs_dim, action_dim, c.hidden, c.normalize_context)
            self.actor = TanhGaussianActor(*sizes)
            self.critic = TwinCritic(*sizes)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)  # init from critic
        self.actor_average = (
            copy.deepcopy(self.actor).requires_grad_(False) if c.actor_average else None
        )
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr)
        self._generator = torch.Generator(device="cpu").manual_seed(c.seed)  # batch indices
        # policy noise: a stream of its own, so the actor's updates do not depend on the critic's
        noise_seed = int(np.random.SeedSequence([c.seed, 1]).generate_state(1)[0])
        self._noise_generator = torch.Generator(device="cpu").manual_seed(noise_seed)
        # cls_swap: which rows swap and with whom, a stream of its own (none while it is off)
        swap_seed = int(np.random.SeedSequence([c.seed, 3]).generate_state(1)[0])
        self._swap_generator = (
            torch.Generator(device="cpu").manual_seed(swap_seed) if c.cls_swap else None
        )
        if context.mode == END_TO_END:
            # the encoder's dropout: a stream of its own, seeded like the others
            dropout_seed = int(np.random.SeedSequence([c.seed, 2]).generate_state(1)[0])
            self._encoder_rng = {"cpu": torch.Generator().manual_seed(dropout_seed).get_state()}
            if self.device.type == "cuda":
                cuda = torch.Generator(device=self.device).manual_seed(dropout_seed)
                self._encoder_rng["cuda"] = cuda.get_state()
            self._finetune(context)

    def _finetune(self, context: ContextModel) -> None:
        """ctd-e2e: the encoder of ``context`` on this device, with a fresh Adam of its own."""
        context.to(self.device)
        self.encoder_optim = torch.optim.Adam(
            context.encoder.network.parameters(), lr=self.config.encoder_lr
        )

    def replace_context(self, context: ContextModel) -> None:
        """Condition on ``context`` from now on (DAgger: the round's retrained encoder), of the
        same width; a ``ctd-e2e`` learner then finetunes the new encoder (fresh optimiser)."""
        self._check_context(context)
        if context.dim != self.context.dim:
            raise CtdkitError(
                f"the new context has {context.dim} dimensions, the agent's {self.context.dim}"
            )
        self.context = context
        if context.mode == END_TO_END:
            self._finetune(context)

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
        if self.encoder_optim is None:
            context, next_context = self.context.for_transitions(data)
            contexts = {"context": context, "next_context": next_context}
        else:  # ctd-e2e: embedded per batch by the encoder as it is then (see update)
            self.context.attach(data)
            contexts = {"row": np.arange(len(data))}
        arrays = {
            "obs": apply_view(data.observations, self.config.view),
            "next_obs": apply_view(data.next_observations, self.config.view),
            **contexts,
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

    def _swap_cls(self, context: torch.Tensor) -> torch.Tensor:
        """``cls_swap``: the actor's contexts with the CLS part of a ``cls_swap`` share of the
        rows taken from another row of the batch (the raw window stays the row's own)."""
        rows = len(context)
        swapped = torch.rand(rows, generator=self._swap_generator) < self.config.cls_swap
        donor = torch.randint(rows, (rows,), generator=self._swap_generator)
        swapped, donor = swapped.to(self.device), donor.to(self.device)
        width = self.context.cls.dim
        cls = torch.where(swapped[:, None], context[donor, :width], context[:, :width])
        return torch.cat([cls, context[:, width:]], 1)

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

    @contextlib.contextmanager
    def _encoder_dropout(self) -> Iterator[None]:
        """Torch's RNG set to the encoder's dropout stream for the block (the caller's global
        RNG is restored after it; the stream's new state is kept for the next update)."""
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.set_rng_state(self._encoder_rng["cpu"])
            if cuda:
                torch.cuda.set_rng_state(self._encoder_rng["cuda"], cuda[0])
            yield
            self._encoder_rng = {"cpu": torch.get_rng_state()}
            if cuda:
                self._encoder_rng["cuda"] = torch.cuda.get_rng_state(cuda[0])

    def _finetuned_context(self, rows: np.ndarray) -> torch.Tensor:
        """ctd-e2e: the CLS of the rows' windows with gradients, the encoder in train mode."""
        network = self.context.encoder.network
        if not network.training:
            network.train()
        with self._encoder_dropout():
            return self.context.encoder.embed_differentiable(self.context.windows(rows))

    def _critic_contexts(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """ctd-e2e: detached eval-mode contexts of the rows and of their next observations
        (the encoder as it is after this step's actor update)."""
        encoder = self.context.encoder
        windows = {
            "context": self.context.windows(rows),
            "next_context": self.context.next_windows(rows),
        }
        return {k: torch.as_tensor(encoder.embed(w)).to(self.device) for k, w in windows.items()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One actor update and (if enabled) one critic update plus the target's Polyak step;
        ctd-e2e: the actor's loss also steps the encoder."""
        finetune = self.encoder_optim is not None
        if finetune:
            rows = batch["row"].cpu().numpy()
            batch = {**batch, "context": self._finetuned_context(rows)}
        if self._swap_generator is None:
            actor_loss = self.actor_loss(batch)
        else:  # the critic below keeps the true contexts
            actor_loss = self.actor_loss({**batch, "context": self._swap_cls(batch["context"])})
        self.actor_optim.zero_grad(set_to_none=True)
        if finetune:
            self.encoder_optim.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optim.step()
        if finetune:
            self.encoder_optim.step()
        if self.actor_average is not None:
            polyak_update(self.actor_average, self.actor, self.config.actor_average)
        losses = {"actor": actor_loss.item()}
        if self.config.critic:
            if finetune:
                batch = {**batch, **self._critic_contexts(rows)}
            critic_loss = self.critic_loss(batch)
            self.critic_optim.zero_grad(set_to_none=True)
            critic_loss.backward()
            self.critic_optim.step()
            polyak_update(self.critic_target, self.critic, self.config.tau)
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
            for net in self._networks():
                net.obs_norm.fit(tensors["obs"], self.config.obs_std_floor)
        if self.step == 0 and self.config.normalize_context:
            for net in self._networks():
                net.context_norm.fit(tensors["context"], self.config.obs_std_floor)
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
        if self.encoder_optim is not None:
            self.context.encoder.network.eval()  # dropout only inside fit, as the encoder's own
        return history

    def _networks(self) -> list[torch.nn.Module]:
        nets = [self.actor, self.critic, self.critic_target]
        return nets + ([self.actor_average] if self.actor_average is not None else [])

    @property
    def acting_actor(self) -> TanhGaussianActor:
        """The actor that acts: the averaged copy when ``actor_average`` > 0, else the actor."""
        return self.actor if self.actor_average is None else self.actor_average

    @torch.no_grad()
    def predict(self, observations: np.ndarray, contexts: np.ndarray) -> np.ndarray:
        """Deterministic actions ``tanh(μ)`` for raw observations (the agent's view is applied)."""
        obs = torch.as_tensor(apply_view(np.asarray(observations, np.float32), self.config.view))
        ctx = torch.as_tensor(np.asarray(contexts, np.float32))
        mean, _ = self.acting_actor(ctx.to(self.device), obs.to(self.device))
        return torch.tanh(mean).cpu().numpy()

    def save(self, path: Path) -> None:
        """Config, context model, weights, optimisers, generators and step, written atomically
        as tensors and plain data (it loads with ``weights_only=True``)."""
        state: dict[str, Any] = {
            "format": COLLECTIVE.format,
            "config": self.config.record(),
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
        if self.actor_average is not None:
            state["actor_average"] = self.actor_average.state_dict()
        if self._swap_generator is not None:
            state["swap_generator"] = self._swap_generator.get_state()
        if self.encoder_optim is not None:  # ctd-e2e (the encoder itself is in "context")
            state["encoder_optim"] = self.encoder_optim.state_dict()
            state["encoder_rng"] = dict(self._encoder_rng)
        write_atomic(Path(path), lambda tmp: torch.save(state, tmp))

    def _load_encoder_rng(self, saved: dict[str, Any]) -> None:
        """The saved dropout stream (checked: ``set_state`` refuses anything but an RNG state);
        a CUDA stream only where this learner runs on CUDA and one was saved."""
        torch.Generator().set_state(saved["cpu"])
        self._encoder_rng["cpu"] = saved["cpu"]
        if "cuda" in self._encoder_rng and "cuda" in saved:
            torch.Generator(device=self.device).set_state(saved["cuda"])
            self._encoder_rng["cuda"] = saved["cuda"]

    @classmethod
    def load(cls, path: Path, device: str = "cpu", encoder: Any = None) -> CollectiveSAC:
        """The learner saved in ``path``, on ``device``, ready to act or to continue ``fit``
        exactly (a ``ctd`` agent brings its own encoder unless ``encoder`` is given; a ``ctd-e2e``
        agent always acts with the one it finetuned)."""
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
            if agent.actor_average is not None:
                require_entries(state, COLLECTIVE, str(path), ("actor_average",))
                agent.actor_average.load_state_dict(state["actor_average"])
            agent._generator.set_state(state["generator"])
            agent._noise_generator.set_state(state["noise_generator"])
            if agent._swap_generator is not None:
                require_entries(state, COLLECTIVE, str(path), CLS_SWAP_ENTRIES)
                agent._swap_generator.set_state(state["swap_generator"])
            if agent.encoder_optim is not None:
                require_entries(state, COLLECTIVE, str(path), END_TO_END_ENTRIES)
                agent.encoder_optim.load_state_dict(state["encoder_optim"])
                agent._load_encoder_rng(state["encoder_rng"])
            agent.step = int(state["step"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as error:
            raise checkpoint_damaged(COLLECTIVE, str(path), error) from error
        return agent
