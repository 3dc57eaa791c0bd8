"""Training the trajectory encoder: ``fit`` (the loop, its RNGs and checkpoints) and ``update``
(one gradient step; losses in :mod:`ctdkit.encoder.losses`).

Reproducibility: ``fit`` draws windows from its own numpy generator and masks/dropout from a
forked torch RNG (seeded from ``config.seed``); both states are kept on the encoder and in its
checkpoints, so the same seed gives the same weights, and a run resumed from a checkpoint
continues exactly as if it had not stopped. The caller's global RNGs are untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ctdkit.data import Transitions
from ctdkit.encoder.losses import bert_mask, info_nce, masked_mse
from ctdkit.encoder.windows import EpisodeTable, PairBatch, WindowSampler, split_episodes
from ctdkit.envs.observation import OBS_DIM
from ctdkit.errors import CtdkitError
from ctdkit.progress import progress_bar


@dataclass
class TrainingData:
    """Normalised features of every row, resident on the training device."""

    states: torch.Tensor  # (rows, S)
    actions: torch.Tensor  # (rows, A)
    rewards: torch.Tensor  # (rows, 1)
    episode_task: torch.Tensor | None  # (episodes,) task of each episode (label-aware only)


class EncoderTraining:
    """``fit`` and ``update`` of :class:`~ctdkit.encoder.TrajectoryEncoder` (which holds the
    state they use: config, network, optimizer, step, split, data identity, RNG states)."""

    def fit(
        self,
        transitions: Transitions,
        n_steps: int,
        *,
        progress: bool = True,
        checkpoint_dir: Path | None = None,
        checkpoint_every: int = 0,
        log_every: int = 100,
    ) -> list[dict]:
        """Train ``n_steps`` more updates on the training episodes of ``transitions``.

        The first call fixes the episode split and the normalisation statistics (training
        episodes only); later calls (or a resumed checkpoint) must get the same data. With
        ``checkpoint_dir`` and ``checkpoint_every``, the full training state is saved every
        ``checkpoint_every`` steps (see ``load`` and :func:`latest_checkpoint` to resume).
        Returns the logged losses of this call. In ``label-free`` mode ``task_index`` is never
        read (it may be None).
        """
        if n_steps < 0:
            raise CtdkitError(f"n_steps must be non-negative, got {n_steps}")
        table = self._attach(transitions)
        data = self._training_data(transitions, table)
        sampler = WindowSampler(
            table,
            self.split.train,
            self.config.window,
            self.config.min_window,
            self.config.positives,
        )
        rng = np.random.default_rng([self.config.seed, 1])
        if self._numpy_rng_state is not None:
            rng.bit_generator.state = self._numpy_rng_state
        logged: list[dict] = []
        sums: dict[str, torch.Tensor] = {}
        count = 0
        started = time.perf_counter()
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        self.network.train()
        with (
            torch.random.fork_rng(devices=cuda),
            progress_bar("encoder", n_steps, enabled=progress) as advance,
        ):
            self._restore_torch_rng(cuda)
            for i in range(n_steps):
                losses = self.update(sampler.sample(rng, self.config.batch_size), data)
                self.step += 1
                count += 1
                for key, value in losses.items():
                    sums[key] = sums[key] + value if key in sums else value
                if self.step % log_every == 0 or i == n_steps - 1:
                    entry = {"step": self.step}
                    entry.update({k: float(v) / count for k, v in sums.items()})
                    entry["seconds"] = time.perf_counter() - started
                    logged.append(entry)
                    self.history.append(entry)
                    sums, count = {}, 0
                if (
                    checkpoint_dir is not None
                    and checkpoint_every
                    and (self.step % checkpoint_every == 0)
                ):
                    self._keep_rng(rng, cuda)
                    self.save_checkpoint(checkpoint_dir)
                advance(1)
            self._keep_rng(rng, cuda)
        self.network.eval()  # dropout only inside fit
        return logged

    def update(self, batch: PairBatch, data: TrainingData) -> dict[str, torch.Tensor]:
        """One gradient step on ``B`` pairs of windows (both views in one forward pass)::

            L = rec(view a) + rec(view b) + contrastive_weight · InfoNCE(z_a, z_b)

        ``rec`` sums :func:`masked_mse` over state, action (and, weighted by ``reward_weight``,
        reward) tokens.
        """
        cfg, net = self.config, self.network
        rows = torch.from_numpy(np.concatenate([batch.rows_a, batch.rows_b])).to(self.device)
        lengths = torch.from_numpy(np.concatenate([batch.lengths_a, batch.lengths_b]))
        lengths = lengths.to(self.device)
        states, actions, rewards = data.states[rows], data.actions[rows], data.rewards[rows]
        step = torch.arange(cfg.window, device=self.device)
        state_valid = step < lengths[:, None]
        transition_valid = step < (lengths - 1)[:, None]  # last step's action is not an input
        masked_states, state_sel = bert_mask(states, state_valid, cfg.mask_prob)
        masked_actions, action_sel = bert_mask(actions, transition_valid, cfg.mask_prob)
        masked_rewards, reward_sel = bert_mask(rewards, transition_valid, cfg.mask_prob)
        hidden = net.encode(masked_states, masked_actions, masked_rewards, lengths, padded=True)
        state_hat, action_hat, reward_hat = net.reconstruction(hidden, cfg.window)

        reconstruction = states.new_zeros(())
        for view in (slice(None, len(batch.rows_a)), slice(len(batch.rows_a), None)):
            reconstruction = reconstruction + masked_mse(
                state_hat[view], states[view], state_sel[view]
            )
            reconstruction = reconstruction + masked_mse(
                action_hat[view], actions[view, :-1], action_sel[view, :-1]
            )
            if reward_hat is not None:
                reconstruction = reconstruction + cfg.reward_weight * masked_mse(
                    reward_hat[view], rewards[view, :-1], reward_sel[view, :-1]
                )
        z = F.normalize(net.embedding(hidden), dim=-1)
        z_a, z_b = z.chunk(2)
        episodes = torch.from_numpy(batch.episodes).to(self.device)
        groups = data.episode_task[episodes] if data.episode_task is not None else episodes
        contrastive = info_nce(z_a, z_b, cfg.temperature, groups[:, None] == groups[None, :])
        loss = reconstruction + cfg.contrastive_weight * contrastive

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        # detached tensors: no device sync per step (fit converts them when it logs)
        return {
            "loss": loss.detach(),
            "reconstruction": reconstruction.detach(),
            "contrastive": contrastive.detach(),
        }

    def _attach(self, transitions: Transitions) -> EpisodeTable:
        """Check the data, and on the first call fix the split and normalisation."""
        if transitions.view == "goal-hidden" and self.config.view == "full":
            raise CtdkitError(
                "transitions were loaded with view 'goal-hidden' but the encoder's view is "
                "'full' (load them with view='full'; the encoder hides what its view hides)"
            )
        width = transitions.observations.shape[-1]
        if width != OBS_DIM:
            raise CtdkitError(f"transitions have {width}-dim observations, expected {OBS_DIM}")
        if transitions.actions.shape[-1] != self.config.action_dim:
            raise CtdkitError(
                f"transitions have {transitions.actions.shape[-1]}-dim actions but "
                f"action_dim={self.config.action_dim}"
            )
        table = EpisodeTable.from_episode_index(transitions.episode_index)
        identity = {
            "dataset_id": transitions.dataset_id,
            "checksum": transitions.checksum,
            "num_episodes": table.num_episodes,
            "rows": len(transitions),
        }
        if self.split is None:
            self.split = split_episodes(
                table.num_episodes, self.config.validation_fraction, self.config.seed
            )
            train = table.rows_of(self.split.train)
            self.network.set_normalization(
                self._tensor(transitions.observations[train]),
                self._tensor(transitions.actions[train]),
                self._tensor(transitions.rewards[train]),
            )
            self.data = identity
        else:
            for key, value in identity.items():
                if self.data.get(key) != value:
                    raise CtdkitError(
                        f"this encoder was trained on other data: {key} is {value!r}, "
                        f"expected {self.data.get(key)!r}"
                    )
        return table

    def _training_data(self, transitions: Transitions, table: EpisodeTable) -> TrainingData:
        with torch.no_grad():
            states, actions, rewards = self.network.features(
                self._tensor(transitions.observations),
                self._tensor(transitions.actions),
                self._tensor(transitions.rewards),
            )
        episode_task = None
        if self.config.mode == "label-aware":  # the only place task labels are read
            if transitions.task_index is None:
                raise CtdkitError("label-aware mode needs task_index in the transitions")
            task_index = np.asarray(transitions.task_index)
            episode_task = torch.from_numpy(task_index[table.starts]).to(self.device)
        return TrainingData(states, actions, rewards, episode_task)

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(values, dtype=np.float32)).to(self.device)

    def _restore_torch_rng(self, cuda: list[int]) -> None:
        """Inside fit's ``fork_rng``: seed (first run) or restore (resumed run) the generators
        of this device only (``torch.manual_seed`` would also reseed every other GPU)."""
        if self._torch_rng_state is None:
            torch.default_generator.manual_seed(self.config.seed + 1)
            if cuda:
                torch.cuda.default_generators[cuda[0]].manual_seed(self.config.seed + 1)
            return
        torch.set_rng_state(self._torch_rng_state["cpu"])
        if cuda and "cuda" in self._torch_rng_state:
            torch.cuda.set_rng_state(self._torch_rng_state["cuda"], cuda[0])

    def _keep_rng(self, rng: np.random.Generator, cuda: list[int]) -> None:
        self._numpy_rng_state = rng.bit_generator.state
        self._torch_rng_state = {"cpu": torch.get_rng_state()}
        if cuda:
            self._torch_rng_state["cuda"] = torch.cuda.get_rng_state(cuda[0])
