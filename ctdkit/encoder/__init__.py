"""Trajectory transformer: a CLS task embedding learned from windows of experience.

``EncoderConfig(...).create(device).fit(transitions, n_steps)`` trains it (self-supervised:
masked reconstruction + InfoNCE, label-free or label-aware); ``embed(windows)`` gives task
embeddings of :class:`ctdkit.policies.history.Windows`; :mod:`ctdkit.encoder.metrics`
measures how well they separate tasks on held-out episodes. ``python -m ctdkit.train_encoder``
is the CLI.
"""

from ctdkit.encoder.config import ARCHITECTURE_FIELDS, EncoderConfig
from ctdkit.encoder.encoder import TrajectoryEncoder
from ctdkit.encoder.metrics import evaluate_encoders, plot_quality
from ctdkit.encoder.persistence import latest_checkpoint
from ctdkit.encoder.windows import (
    EpisodeSplit,
    EpisodeTable,
    WindowSampler,
    gather_windows,
    split_episodes,
)

EncoderConfig.learner = TrajectoryEncoder  # what create() builds, wired where both are visible

__all__ = [
    "ARCHITECTURE_FIELDS",
    "EncoderConfig",
    "EpisodeSplit",
    "EpisodeTable",
    "TrajectoryEncoder",
    "WindowSampler",
    "evaluate_encoders",
    "gather_windows",
    "latest_checkpoint",
    "plot_quality",
    "split_episodes",
]
