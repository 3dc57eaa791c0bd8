"""The ``ctd`` context: the frozen trajectory encoder's CLS embedding of the current episode's
last <= K steps — for training rows and at act time through the same ``embed`` call, and with
the encoder saved inside the agent's checkpoint, so the embeddings an agent acts on always come
from the encoder it was trained with (the original cached embeddings from an older encoder).
The encoder travels as its payload (tensors and plain data), so the agent's checkpoint loads
with ``weights_only=True``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ctdkit.collective.history_context import HistoryContext
from ctdkit.data.loader import Transitions
from ctdkit.encoder import EpisodeTable, TrajectoryEncoder, gather_windows
from ctdkit.policies.history import EpisodeHistory, Windows


class CLSContext:
    mode = "ctd"

    def __init__(self, encoder: TrajectoryEncoder):
        self.encoder = encoder
        self.dim = encoder.config.embedding_dim
        self.window = encoder.config.window

    @property
    def view(self) -> str:
        return self.encoder.config.view

    def for_transitions(self, data: Transitions) -> tuple[np.ndarray, np.ndarray]:
        """Embedding at every row, and at every row's next observation (the next row's, or at
        an episode's end a window that ends at the final observation)."""
        context = self.encoder.embed_rows(data).astype(np.float32)
        table = EpisodeTable.from_episode_index(data.episode_index)
        ends = table.starts + table.lengths - 1
        following = np.ones(len(data), dtype=bool)
        following[ends] = False
        next_context = np.empty_like(context)
        next_context[following] = context[np.flatnonzero(following) + 1]
        next_context[ends] = self.encoder.embed(self._final_windows(data, table, ends))
        return context, next_context

    def _final_windows(self, data: Transitions, table: EpisodeTable, ends: np.ndarray) -> Windows:
        """Windows of each episode's last <= K - 1 rows followed by its final observation."""
        k = self.window
        head = (
            gather_windows(
                data.observations,
                data.actions,
                data.rewards,
                table,
                ends,
                np.full(len(ends), k - 1),
                padded_length=k,
            )
            if k > 1
            else None
        )
        n = len(ends)
        observations = np.zeros((n, k, data.observations.shape[1]), np.float32)
        actions = np.zeros((n, k, data.actions.shape[1]), np.float32)
        rewards = np.zeros((n, k), np.float32)
        lengths = np.ones(n, dtype=np.int64)
        if head is not None:
            steps = np.arange(k)[None, :] < head.lengths[:, None]
            observations[steps] = head.observations[steps]
            actions[steps] = head.actions[steps]  # now real inputs: the final obs follows them
            rewards[steps] = head.rewards[steps]
            lengths = head.lengths + 1
        observations[np.arange(n), lengths - 1] = data.next_observations[ends]
        return Windows(observations, actions, rewards, lengths)

    def for_history(self, history: EpisodeHistory, env_tasks: Sequence[str]) -> np.ndarray:
        return self.encoder.embed(history.window(self.window))

    def state(self) -> dict[str, Any]:
        return {"mode": self.mode, "encoder": self.encoder.payload()}

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        encoder: TrajectoryEncoder | None = None,
        device: str = "cpu",
        source: str = "checkpoint",
    ) -> CLSContext:
        if encoder is None:
            encoder = TrajectoryEncoder.from_payload(
                state["encoder"], device, f"{source} (its encoder)"
            )
        return cls(encoder)


class CLSWithHistoryContext:
    """``ctd+history``: the CLS embedding and the raw ``history`` window side by side. The CLS
    is a 6-dimensional summary learned without labels; the raw last steps keep what it may
    drop (at the first steps, the rewards that name the task), so the actor gets both."""

    mode = "ctd+history"

    def __init__(self, cls: CLSContext, history: HistoryContext):
        self.cls, self.history = cls, history
        self.dim = cls.dim + history.dim

    @property
    def view(self) -> str:
        return self.cls.view

    def for_transitions(self, data: Transitions) -> tuple[np.ndarray, np.ndarray]:
        (cls_now, cls_next), (raw_now, raw_next) = (
            self.cls.for_transitions(data),
            self.history.for_transitions(data),
        )
        return np.concatenate([cls_now, raw_now], 1), np.concatenate([cls_next, raw_next], 1)

    def for_history(self, history: EpisodeHistory, env_tasks: Sequence[str]) -> np.ndarray:
        parts = (self.cls.for_history(history, env_tasks), self.history.for_history(history, []))
        return np.concatenate(parts, 1).astype(np.float32)

    def state(self) -> dict[str, Any]:
        return {"mode": self.mode, "ctd": self.cls.state(), "history": self.history.state()}

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        encoder: TrajectoryEncoder | None = None,
        device: str = "cpu",
        source: str = "checkpoint",
    ) -> CLSWithHistoryContext:
        return cls(
            CLSContext.from_state(state["ctd"], encoder, device, source),
            HistoryContext.from_state(state["history"]),
        )
