"""SAC experts trained online (``python -m ctdkit.train_expert``) and their training replay
published as "online" Minari datasets."""

from ctdkit.experts.config import SACConfig, TrainExpertConfig
from ctdkit.experts.online import OnlineDatasetSummary, write_online_dataset
from ctdkit.experts.replay import ReplayBuffer
from ctdkit.experts.run import ExpertResult, ExpertTrainer, first_reaching, train_expert
from ctdkit.experts.sac import SACLearner, TwinCritic

__all__ = [
    "ExpertResult",
    "ExpertTrainer",
    "OnlineDatasetSummary",
    "ReplayBuffer",
    "SACConfig",
    "SACLearner",
    "TrainExpertConfig",
    "TwinCritic",
    "first_reaching",
    "train_expert",
    "write_online_dataset",
]
