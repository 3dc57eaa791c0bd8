"""The student: online SAC on one task whose critic is shaped by a frozen collective, or the
collective itself finetuned there (``python -m ctdkit.train_student``)."""

from ctdkit.student.bonus import STD_FLOOR, bonus, bonus_weight
from ctdkit.student.config import INITS, TrainStudentConfig
from ctdkit.student.finetune import ContextActor, ContextCritic, FinetunedAgent, FinetuneSAC
from ctdkit.student.run import BonusReplay, StudentResult, StudentTrainer, train_student
from ctdkit.student.teacher import FrozenCollective

__all__ = [
    "INITS",
    "STD_FLOOR",
    "BonusReplay",
    "ContextActor",
    "ContextCritic",
    "FinetuneSAC",
    "FinetunedAgent",
    "FrozenCollective",
    "StudentResult",
    "StudentTrainer",
    "TrainStudentConfig",
    "bonus",
    "bonus_weight",
    "train_student",
]
