"""The ``ctd-e2e`` context: the ``ctd`` CLS embedding (the same windows of the episode's last
<= K steps, the same ``embed`` at act time, the encoder saved inside the agent's checkpoint), of
an encoder that is *not* frozen: it starts from the self-supervised encoder and every actor
update back-propagates the distillation loss into it (:class:`ctdkit.collective.CollectiveSAC`
holds its optimiser and its dropout RNG).

Why: the self-supervised objective (masked reconstruction, InfoNCE with episode positives) is
free to drop what tells tasks apart at the first steps of an episode — for reach and pick-place,
which reset to identical observations, only the first rewards do — while the distillation loss
is exactly the signal of what the actor needs from the window.

Choices, kept simple:

* **No self-supervised auxiliary loss.** The encoder starts from its self-supervised weights and
  moves at its own small learning rate (``encoder_lr``, default 1e-4, a tenth of the DAgger
  actor's); an auxiliary term would put the encoder's training machinery (window pairs, masks,
  their RNG, its split) into the collective's checkpoint and resume, for a regulariser that the
  held-out distillation loss can judge without it.
* **Dropout as in the encoder's own training.** The training forward runs in train mode (its
  dropout from a seeded stream kept in the collective's checkpoint, so a resumed run continues
  exactly); contexts at act time, for ``for_transitions`` and for the critic are eval-mode
  ``embed`` — the same network code, without dropout or gradients.
* **The critic gets detached contexts of the current encoder**: eval-mode embeddings of the
  batch's windows and next windows, computed after the actor's update of that step. It never
  trains the encoder, and the actor's updates do not depend on whether a critic is learnt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ctdkit.collective.cls_context import CLSContext
from ctdkit.data.loader import Transitions
from ctdkit.encoder import EpisodeTable, TrajectoryEncoder, gather_windows
from ctdkit.errors import CtdkitError
from ctdkit.policies.history import Windows


class EndToEndCLSContext(CLSContext):
    """``ctd``'s context whose encoder the collective finetunes: :meth:`attach` the training
    data, then :meth:`windows` / :meth:`next_windows` of sampled rows feed the encoder's
    differentiable forward (:meth:`TrajectoryEncoder.embed_differentiable`)."""

    mode = "ctd-e2e"

    def __init__(self, encoder: TrajectoryEncoder):
        super().__init__(encoder)
        self._data: Transitions | None = None

    @classmethod
    def starting_from(cls, encoder: TrajectoryEncoder) -> EndToEndCLSContext:
        """A context with its own copy of ``encoder`` (finetuning changes the copy only, never
        the caller's encoder, which may serve other agents)."""
        return cls(TrajectoryEncoder.from_payload(encoder.payload(), encoder.device, "encoder"))

    def to(self, device: torch.device) -> None:
        """Move the encoder to the learner's ``device`` (a copy rebuilt there if it differs)."""
        if self.encoder.device != device:
            self.encoder = TrajectoryEncoder.from_payload(self.encoder.payload(), device)

    # ------------------------------------------------------------------ training windows
    def attach(self, data: Transitions) -> None:
        """Use ``data``'s rows for :meth:`windows` and :meth:`next_windows`."""
        self._data = data
        self._table = EpisodeTable.from_episode_index(data.episode_index)
        self._is_end = np.zeros(len(data), dtype=bool)
        self._is_end[self._table.starts + self._table.lengths - 1] = True

    def windows(self, rows: np.ndarray) -> Windows:
        """The windows of the episode's last <= K steps ending at ``rows`` (those
        ``for_transitions`` embeds), padded to K."""
        data = self._attached()
        k = self.window
        return gather_windows(
            data.observations,
            data.actions,
            data.rewards,
            self._table,
            rows,
            np.full(len(rows), k),
            padded_length=k,
        )

    def next_windows(self, rows: np.ndarray) -> Windows:
        """The windows at the rows' next observations: the next row's, or at an episode's end
        the one ending at its final observation (as ``for_transitions``' next contexts)."""
        data = self._attached()
        rows = np.asarray(rows, dtype=np.int64)
        end = self._is_end[rows]
        windows = self.windows(np.where(end, rows, rows + 1))
        if end.any():
            final = self._final_windows(data, self._table, rows[end])
            for name in ("observations", "actions", "rewards", "lengths"):
                getattr(windows, name)[end] = getattr(final, name)
        return windows

    def _attached(self) -> Transitions:
        if self._data is None:
            raise CtdkitError("ctd-e2e context: attach the training data before sampling windows")
        return self._data

    # ------------------------------------------------------------------ saving
    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        encoder: TrajectoryEncoder | None = None,
        device: str = "cpu",
        source: str = "checkpoint",
    ) -> EndToEndCLSContext:
        if encoder is not None:
            raise CtdkitError(
                f"{source} is a ctd-e2e collective: it acts with the encoder it finetuned, "
                "saved inside it (load it without an encoder)"
            )
        return super().from_state(state, None, device, source)
