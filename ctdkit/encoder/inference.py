"""Using a trained encoder: ``embed`` (windows -> task embeddings), ``embed_rows`` (relabel a
dataset), ``embed_differentiable`` (the same forward with gradients, for finetuning) and the
input checks that turn a malformed window into one line.

Inference draws no random numbers and reads or moves no RNG: it runs in eval mode under
``inference_mode``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ctdkit.data import Transitions
from ctdkit.encoder.config import EncoderConfig
from ctdkit.encoder.windows import EpisodeTable, gather_windows
from ctdkit.envs.observation import OBS_DIM
from ctdkit.errors import CtdkitError
from ctdkit.policies.history import Windows

#: default windows per forward pass in ``embed``: on a CPU, chunks much larger than this fall
#: out of cache (measured: 4096 at once ran at ~0.65x the rate of 256-window chunks)
EMBED_BATCH_CPU = 256
EMBED_BATCH_GPU = 16384


class EncoderInference:
    """``embed`` and ``embed_rows`` of :class:`~ctdkit.encoder.TrajectoryEncoder`."""

    def embed(
        self,
        windows: Windows,
        *,
        batch_size: int | None = None,
        normalize: bool = True,
        bf16: bool = False,
        compile: bool = False,
    ) -> np.ndarray | torch.Tensor:
        """Task embeddings ``(B, embedding_dim)`` of padded windows (numpy in, numpy out;
        torch in, torch out on the encoder's device).

        Runs in eval mode under ``inference_mode`` in chunks of ``batch_size`` windows (default
        256 on CPU, 16384 on GPU); each chunk is cut to its longest window, and needs no
        attention mask when all its windows are full.
        ``normalize`` returns unit vectors: the contrastive loss only shapes the direction, so
        the raw norm is arbitrary. ``bf16`` runs under bfloat16 autocast (for GPUs; exercised
        on CPU by the tests); ``compile`` runs a ``torch.compile``-d network (compiled once per
        encoder, on the first call: tens of seconds on a CPU).
        """
        observations, actions, rewards, lengths = check_windows(windows, self.config)
        if batch_size is None:
            batch_size = EMBED_BATCH_CPU if self.device.type == "cpu" else EMBED_BATCH_GPU
        as_numpy = isinstance(windows.observations, np.ndarray)
        forward = self._compiled_network() if compile else self.network
        if self.network.training:  # only fit trains; switching costs ~1 ms, so only if needed
            self.network.eval()
        chunks = []
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)
        with torch.inference_mode(), autocast:
            for start in range(0, len(lengths), batch_size):
                chunk = slice(start, start + batch_size)
                z = self._forward(
                    forward,
                    observations[chunk],
                    actions[chunk],
                    rewards[chunk],
                    lengths[chunk],
                )
                chunks.append(z.float())
        if chunks:
            z = torch.cat(chunks)
        else:
            z = torch.zeros(0, self.config.embedding_dim, device=self.device)
        if normalize:
            z = F.normalize(z, dim=-1)
        return z.cpu().numpy() if as_numpy else z

    def embed_differentiable(self, windows: Windows, *, normalize: bool = True) -> torch.Tensor:
        """Task embeddings ``(B, embedding_dim)`` on the encoder's device *with* gradients to
        the network's weights: the forward of :meth:`embed` (the same network call on the same
        inputs) in one chunk, outside ``inference_mode`` and in whatever mode the network is in
        — the caller chooses (``train()``: dropout, drawn from torch's current RNG). For
        finetuning the encoder through a downstream loss (the collective's ``ctd-e2e``)."""
        observations, actions, rewards, lengths = check_windows(windows, self.config)
        z = self._forward(self.network, observations, actions, rewards, lengths)
        return F.normalize(z, dim=-1) if normalize else z

    def _forward(
        self,
        network,
        observations: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        lengths: np.ndarray,
    ) -> torch.Tensor:
        """Raw embeddings of checked windows, cut to their longest (no attention mask when all
        are full): the one forward of :meth:`embed` and :meth:`embed_differentiable`."""
        steps = int(lengths.max())

        def move(x):
            return x[:, :steps].to(self.device, non_blocking=True)

        return network(
            move(observations),
            move(actions),
            move(rewards),
            torch.from_numpy(lengths).to(self.device),
            padded=bool((lengths != steps).any()),
        )

    def embed_rows(
        self,
        transitions: Transitions,
        rows: np.ndarray | None = None,
        *,
        chunk: int = 16384,
        **options,
    ) -> np.ndarray:
        """The embedding at each row (default: all) as the agent has it when acting there: the
        window of the episode's last ``<= K`` steps ending at the row (the row's own action
        and reward are not inputs). Use it to relabel a dataset with *this* encoder.
        ``options`` go to :meth:`embed`."""
        table = EpisodeTable.from_episode_index(transitions.episode_index)
        rows = np.arange(len(transitions)) if rows is None else np.asarray(rows, dtype=np.int64)
        window = self.config.window
        parts = [
            self.embed(
                gather_windows(
                    transitions.observations,
                    transitions.actions,
                    transitions.rewards,
                    table,
                    rows[start : start + chunk],
                    np.full(len(rows[start : start + chunk]), window),
                    padded_length=window,
                ),
                **options,
            )
            for start in range(0, len(rows), chunk)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.config.embedding_dim))

    def _compiled_network(self):
        if self._compiled is None:
            self._compiled = torch.compile(self.network, dynamic=True)
        return self._compiled


def check_windows(
    windows: Windows, config: EncoderConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Float32 tensors and int64 numpy lengths of ``windows`` for an encoder of ``config``, or
    one line naming what is wrong."""
    action_dim = config.action_dim
    observations = torch.as_tensor(windows.observations, dtype=torch.float32)
    actions = torch.as_tensor(windows.actions, dtype=torch.float32)
    rewards = torch.as_tensor(windows.rewards, dtype=torch.float32)
    lengths = np.asarray(
        windows.lengths.cpu() if torch.is_tensor(windows.lengths) else windows.lengths
    )
    if observations.ndim != 3:
        raise CtdkitError(
            f"window observations must be (batch, steps, {OBS_DIM}), "
            f"got shape {tuple(observations.shape)}"
        )
    batch, steps, width = observations.shape
    if width != OBS_DIM:
        raise CtdkitError(
            f"window observations have width {width}; the encoder takes full {OBS_DIM}-dim "
            f"observations (it selects {'+'.join(config.state_slices)} itself)"
        )
    if rewards.ndim == 3 and rewards.shape[-1] == 1:
        rewards = rewards[..., 0]
    if actions.ndim != 3 or actions.shape[-1] != action_dim:
        raise CtdkitError(
            f"window actions have shape {tuple(actions.shape)}; expected "
            f"({batch}, {steps}, {action_dim}) (action_dim={action_dim})"
        )
    if actions.shape[:2] != (batch, steps) or rewards.shape != (batch, steps):
        raise CtdkitError(
            f"window actions {tuple(actions.shape)} / rewards {tuple(rewards.shape)} do not "
            f"match observations {tuple(observations.shape)}"
        )
    if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
        raise CtdkitError(f"window lengths must be {batch} integers, got {lengths!r}")
    if batch and (steps == 0 or lengths.min() < 1):
        first = 0 if steps == 0 else int(np.argmax(lengths < 1))
        raise CtdkitError(f"window {first} is empty (length 0); a window needs a state")
    longest = min(steps, config.window)
    if batch and lengths.max() > longest:
        first = int(np.argmax(lengths > longest))
        limit = "padded steps" if lengths[first] > steps else "steps (window=K)"
        raise CtdkitError(
            f"window {first} has length {lengths[first]} but at most {longest} {limit}"
        )
    if all(bool(torch.isfinite(x).all()) for x in (observations, actions, rewards)):
        return observations, actions, rewards, lengths.astype(np.int64)
    # something is not finite: fine in padding, an error in a real step
    step = torch.arange(steps)
    lengths_t = torch.from_numpy(lengths)
    state_valid = step < lengths_t[:, None]
    transition_valid = step < (lengths_t - 1)[:, None]
    for name, values, valid in (
        ("observations", observations, state_valid),
        ("actions", actions, transition_valid),
        ("rewards", rewards[..., None], transition_valid),
    ):
        bad = ~torch.isfinite(values).all(-1) & valid.to(values.device)
        if bool(bad.any()):
            at_window, at = (int(i) for i in torch.nonzero(bad)[0])
            raise CtdkitError(f"window {at_window} has NaN or inf in its {name} at step {at}")
    return observations, actions, rewards, lengths.astype(np.int64)
