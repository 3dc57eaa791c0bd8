"""Where windows come from in a dataset: an episode table, an episode-level split, and
vectorised sampling of training pairs.

A window (:class:`~ctdkit.policies.history.Windows`, the one type agents act on and the encoder
embeds) is the last ``L`` steps of one episode ending at row ``e``. Rows of an episode are
contiguous and in step order in :class:`~ctdkit.data.Transitions`, so every window is a run of
rows ``first .. first + L - 1``: sampling is a few numpy array operations for a whole batch,
never a Python loop over windows or steps, and the same code builds training windows and
act-time windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctdkit.errors import CtdkitError
from ctdkit.policies.history import Windows


@dataclass(frozen=True)
class EpisodeTable:
    """Where each episode's rows are: ``starts[k]``, ``lengths[k]`` for the k-th episode."""

    starts: np.ndarray
    lengths: np.ndarray
    row_episode: np.ndarray  # (rows,) position of each row's episode in this table

    @property
    def num_episodes(self) -> int:
        return len(self.starts)

    @classmethod
    def from_episode_index(cls, episode_index: np.ndarray) -> EpisodeTable:
        """Build the table; refuse data whose episodes are not contiguous runs of rows."""
        episode_index = np.asarray(episode_index)
        if episode_index.ndim != 1 or len(episode_index) == 0:
            raise CtdkitError("transitions have no rows")
        boundaries = np.flatnonzero(np.diff(episode_index) != 0) + 1
        starts = np.concatenate([[0], boundaries])
        if len(np.unique(episode_index)) != len(starts):
            raise CtdkitError(
                "transitions are not grouped by episode (rows of an episode must be contiguous)"
            )
        lengths = np.diff(np.append(starts, len(episode_index)))
        row_episode = np.repeat(np.arange(len(starts)), lengths)
        return cls(starts, lengths, row_episode)

    def rows_of(self, episodes: np.ndarray) -> np.ndarray:
        """All rows of the given episodes (table positions), in order."""
        episodes = np.asarray(episodes, dtype=np.int64)
        lengths = self.lengths[episodes]
        within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return np.repeat(self.starts[episodes], lengths) + within


@dataclass(frozen=True)
class EpisodeSplit:
    """Episode-level train/validation split: no episode contributes to both."""

    train: np.ndarray  # sorted table positions of training episodes
    validation: np.ndarray  # sorted table positions of held-out episodes


def split_episodes(num_episodes: int, validation_fraction: float, seed: int) -> EpisodeSplit:
    """Hold out ``round(fraction * n)`` episodes by seeded *systematic* sampling.

    Picks are evenly spaced over the episode order with a random offset. The loader stores a
    group's episodes task by task, so each task gets a near-proportional share of held-out
    episodes without the split ever reading a task label (label-free training must not).
    """
    n_val = max(1, round(validation_fraction * num_episodes))
    if num_episodes < 2 or n_val >= num_episodes:
        raise CtdkitError(
            f"cannot split {num_episodes} episode(s) with validation_fraction="
            f"{validation_fraction}: need at least one training and one validation episode"
        )
    offset = np.random.default_rng(seed).random()
    validation = np.unique(np.floor((np.arange(n_val) + offset) * num_episodes / n_val))
    validation = validation.astype(np.int64)
    train = np.setdiff1d(np.arange(num_episodes), validation)
    return EpisodeSplit(train=train, validation=validation)


def window_rows(
    table: EpisodeTable, end_rows: np.ndarray, lengths: np.ndarray, padded_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(B, padded_length)`` of windows ending at ``end_rows`` with (at most)
    ``lengths`` steps, and the actual lengths (clipped at the episode start).

    Padding slots repeat the window's last row; the mask built from the lengths hides them.
    """
    end_rows = np.asarray(end_rows, dtype=np.int64)
    episode_start = table.starts[table.row_episode[end_rows]]
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), end_rows - episode_start + 1)
    first = end_rows - lengths + 1
    steps = np.minimum(np.arange(padded_length)[None, :], (lengths - 1)[:, None])
    return first[:, None] + steps, lengths


def gather_windows(
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    table: EpisodeTable,
    end_rows: np.ndarray,
    lengths: np.ndarray,
    padded_length: int | None = None,
) -> Windows:
    """Numpy :class:`Windows` ending at ``end_rows`` (e.g. to embed every row of a dataset)."""
    lengths = np.asarray(lengths)
    padded_length = int(lengths.max()) if padded_length is None else padded_length
    rows, lengths = window_rows(table, end_rows, lengths, padded_length)
    return Windows(observations[rows], actions[rows], rewards[rows], lengths)


@dataclass
class PairBatch:
    """Row indices of ``B`` pairs of windows for one contrastive update."""

    rows_a: np.ndarray  # (B, K)
    lengths_a: np.ndarray  # (B,)
    rows_b: np.ndarray
    lengths_b: np.ndarray
    episodes: np.ndarray  # (B,) table position of the pair's episode


class WindowSampler:
    """Samples pairs of variable-length windows from the training episodes only.

    Window ends are uniform over training rows (so episodes count by length); each window's
    length is uniform in ``[min_window, window]`` and clipped at the episode start, which gives
    the short windows an agent sees early in an episode. The second window of a pair is either
    the same window (``positives="window"``) or an independent window of the same episode.
    """

    def __init__(
        self,
        table: EpisodeTable,
        train_episodes: np.ndarray,
        window: int,
        min_window: int,
        positives: str,
    ) -> None:
        self.table = table
        self.train_rows = table.rows_of(train_episodes)
        self.window, self.min_window, self.positives = window, min_window, positives

    def sample(self, rng: np.random.Generator, batch_size: int) -> PairBatch:
        end_a = self.train_rows[rng.integers(len(self.train_rows), size=batch_size)]
        episodes = self.table.row_episode[end_a]
        len_a = rng.integers(self.min_window, self.window + 1, size=batch_size)
        if self.positives == "window":
            end_b, len_b = end_a, len_a
        else:
            offset = (rng.random(batch_size) * self.table.lengths[episodes]).astype(np.int64)
            end_b = self.table.starts[episodes] + offset
            len_b = rng.integers(self.min_window, self.window + 1, size=batch_size)
        rows_a, len_a = window_rows(self.table, end_a, len_a, self.window)
        rows_b, len_b = window_rows(self.table, end_b, len_b, self.window)
        return PairBatch(rows_a, len_a, rows_b, len_b, episodes)
