"""Configuration of a student run; doubles as the ``python -m ctdkit.train_student`` CLI.

Defaults are docs/method.md's "Student" numbers: 50k env steps, 4k random warm-up steps, the
bonus at full weight for 8k steps and gone at 50k; SAC as the experts' (``--sac.*``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ctdkit.envs.make import MAX_EPISODE_STEPS
from ctdkit.errors import CtdkitError, unknown
from ctdkit.experts import SACConfig, TrainExpertConfig
from ctdkit.runs import check_count
from ctdkit.student.bonus import STD_FLOOR

Init = Literal["scratch", "collective"]
INITS: tuple[str, ...] = get_args(Init)


@dataclass
class TrainStudentConfig:
    """Train a student online on one task: SAC whose critic target adds w·b(s, a), a bonus for
    acting like a frozen collective (or, with --init collective, the collective finetuned)."""

    collective: Path
    """The collective's checkpoint (`collective.pt` of `python -m ctdkit.train_collective`)."""
    task: str = "reach-v3"
    """Meta-World v3 task to learn (the collective need not have been trained on it)."""
    init: Init = "scratch"
    """`scratch`: a new SAC agent on the observation (docs/method.md's student); `collective`:
    SAC starts from the collective's actor (and its critics, if it trained them) on [context,
    observation], the context computed on the live episode by the collective's frozen context
    model."""
    bonus_weight: float = 1.0
    """w before `bonus_full_until` (0: plain SAC, or plain finetuning)."""
    bonus_full_until: int = 8_000
    """Env steps at full bonus weight."""
    bonus_zero_at: int = 50_000
    """Env step at which w has fallen linearly to 0."""
    bonus_std_floor: float = STD_FLOOR
    """Smallest σ in b(s, a) (the original's 1e-4). A scripted-label collective has σ ≈ 0.01,
    where b is 0 for nearly any other action; a floor near the spread of the learner's own
    actions (e.g. 0.3) makes the bonus a gradient toward the collective's action."""
    critic_only_updates: int = 0
    """With --init collective: the first this many updates fit only the critics (the warm-up
    steps act with the collective's own samples), so the collective's actor is not steered by
    critics that have not yet learned its values."""
    total_steps: int = 50_000
    """Env steps to train for (rounded up to whole episodes; extendable with --resume)."""
    sac: SACConfig = field(default_factory=lambda: SACConfig(warmup_steps=4_000))
    """SAC hyperparameters (with --init collective the networks are the collective's: its
    widths, no LayerNorm)."""
    env_seed: int = 0
    """Fixes the task's 50 goal configurations and every episode's reset seed."""
    max_episode_steps: int = MAX_EPISODE_STEPS
    """Episode length (time-limit truncation), at most Meta-World's 500."""
    eval_every: int = 10_000
    """Evaluate the deterministic actor every this many env steps (0: only at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation (ctdkit's `official` protocol: first success ends an episode)."""
    eval_seed: int = 1_000
    """Seed of the evaluation envs: their goal variations differ from the training ones."""
    stop_at_success: float | None = None
    """Stop early once `stop_patience` consecutive evaluations reach this success rate."""
    stop_patience: int = 2
    """Consecutive evaluations at `stop_at_success` needed to stop."""
    checkpoint_every: int = 5_000
    """Checkpoint (weights, optimisers, replay with bonuses, RNG states) every this many steps."""
    out_dir: Path = Path("runs/student")
    """Run directory: checkpoint.pt, student.pt, metrics.json, student.json, episodes/."""
    resume: bool = False
    """Continue the run in out_dir exactly where its last checkpoint left it."""
    overwrite: bool = False
    """Discard an existing run in out_dir."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        """Refuse what no run could do before anything is read or written (the collective
        itself is checked by the run: it needs the disk)."""
        if self.init not in INITS:
            raise unknown("--init", self.init, INITS)
        if not 0.0 <= self.bonus_weight < math.inf:  # NaN fails too
            raise CtdkitError(f"--bonus-weight must be a number >= 0, got {self.bonus_weight}")
        check_count("--bonus-full-until", self.bonus_full_until, minimum=0)
        if not 0.0 < self.bonus_std_floor < math.inf:
            raise CtdkitError(f"--bonus-std-floor must be a number > 0, got {self.bonus_std_floor}")
        if self.bonus_zero_at < self.bonus_full_until:
            raise CtdkitError(
                f"--bonus-zero-at must be >= --bonus-full-until ({self.bonus_full_until}), "
                f"got {self.bonus_zero_at}"
            )
        check_count("--critic-only-updates", self.critic_only_updates, minimum=0)
        if self.critic_only_updates and self.init != "collective":
            raise CtdkitError(
                "--critic-only-updates applies to --init collective (a new actor has no prior "
                "to protect)"
            )
        if self.init == "collective":
            if self.sac.hidden != SACConfig.hidden:
                raise CtdkitError(
                    "--sac.hidden does not apply with --init collective: the networks are the "
                    "collective's"
                )
            if self.sac.critic_layer_norm:
                raise CtdkitError(
                    "--sac.critic-layer-norm does not apply with --init collective: the critics "
                    "are the collective's"
                )
        self.expert_config()  # the flags the experts' loop takes are checked by its config

    def expert_config(self) -> TrainExpertConfig:
        """The experts' run settings this student trains with (no demonstrations, no dataset)."""
        return TrainExpertConfig(
            task=self.task,
            total_steps=self.total_steps,
            sac=self.sac,
            env_seed=self.env_seed,
            max_episode_steps=self.max_episode_steps,
            eval_every=self.eval_every,
            eval_episodes=self.eval_episodes,
            eval_seed=self.eval_seed,
            stop_at_success=self.stop_at_success,
            stop_patience=self.stop_patience,
            checkpoint_every=self.checkpoint_every,
            out_dir=self.out_dir,
            resume=self.resume,
            overwrite=self.overwrite,
            progress=self.progress,
        )

    def fingerprint(self, collective_sha256: str) -> dict[str, Any]:
        """What ``--resume`` must match: the experts' training settings, the collective's
        content and the student's own (``total_steps`` may grow, as for an expert)."""
        student = {
            "collective_sha256": collective_sha256,
            "init": self.init,
            "bonus_weight": self.bonus_weight,
            "bonus_full_until": self.bonus_full_until,
            "bonus_zero_at": self.bonus_zero_at,
        }
        if self.critic_only_updates:  # absent when 0: earlier runs keep their fingerprint
            student["critic_only_updates"] = self.critic_only_updates
        if self.bonus_std_floor != STD_FLOOR:  # likewise absent at the default
            student["bonus_std_floor"] = self.bonus_std_floor
        return {**self.expert_config().fingerprint(), "student": student}

    def replace(self, **changes: Any) -> TrainStudentConfig:
        return dataclasses.replace(self, **changes)
