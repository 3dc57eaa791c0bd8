"""DAgger online distillation: the collective acts, the expert labels every state it visits,
and the collective retrains on the aggregate of all rounds (``python -m ctdkit.dagger``)."""

from ctdkit.dagger.acting import DaggerActing, MixturePolicy
from ctdkit.dagger.config import FIRST_EVAL_SEED, DaggerConfig, beta_schedule, collect_seed
from ctdkit.dagger.rounds import round_aggregate, round_dataset_id, run_dagger

__all__ = [
    "FIRST_EVAL_SEED",
    "DaggerActing",
    "DaggerConfig",
    "MixturePolicy",
    "beta_schedule",
    "collect_seed",
    "round_aggregate",
    "round_dataset_id",
    "run_dagger",
]
