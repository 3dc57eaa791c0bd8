"""Configuration of expert training: SAC's hyper-parameters and the run around them.

``TrainExpertConfig`` doubles as the ``python -m ctdkit.train_expert`` CLI (``--sac.batch-size``
sets a nested field). Defaults are docs/method.md's "Expert SAC" numbers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ctdkit.collect.config import DATA_FORMATS
from ctdkit.data.ids import parse_group_id
from ctdkit.envs.make import MAX_EPISODE_STEPS, validate_max_episode_steps
from ctdkit.envs.tasks import validate_task
from ctdkit.errors import CtdkitError, unknown
from ctdkit.runs import check_count


@dataclass
class SACConfig:
    """Soft actor-critic (Haarnoja et al. 2018), as the original's experts used it.

    With tanh-Gaussian actor π, twin critics Q₁, Q₂, target critics Q̄ (Polyak, τ) and
    temperature α = exp(log α):

    * critic: ``Σᵢ (Qᵢ(s, a) − y)²`` with
      ``y = r + γ (1 − terminated) (min_j Q̄_j(s', a') − α log π(a'|s'))``, ``a' ~ π(·|s')``
      (time-limit truncation bootstraps: only true termination stops it);
    * actor: ``α log π(ã|s) − min_j Q_j(s, ã)``, ``ã ~ π(·|s)`` reparameterised;
    * temperature: ``α · (−log π(ã|s) − H̄)`` (gradient on log α; α shrinks while the
      policy's entropy exceeds the target ``H̄``, −|A| by default).
    """

    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the actor and of each critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the twin critics."""
    alpha_lr: float = 1e-4
    """Learning rate of log α."""
    batch_size: int = 512
    """Transitions per gradient update."""
    buffer_size: int = 140_000
    """Replay capacity in transitions (oldest overwritten first)."""
    gamma: float = 0.99
    """Discount factor γ."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    init_temperature: float = 0.01
    """Initial temperature α (learned afterwards towards the target entropy)."""
    target_entropy: float | None = None
    """Target entropy H̄; default −|A|."""
    warmup_steps: int = 5_000
    """Env steps acted uniformly at random before the first update."""
    updates_per_step: int = 1
    """Gradient updates per env step after warm-up (update-to-data ratio)."""
    critic_layer_norm: bool = False
    """LayerNorm in the critics' hidden layers (Ball et al. 2023, RLPD): it bounds how far Q
    extrapolates past the returns seen, the overestimation plain SAC shows on push-v3."""
    seed: int = 0
    """Seeds the networks, the batch sampler and the exploration noise."""

    def __post_init__(self) -> None:
        """Refuse settings SAC cannot run with, in one line naming the flag."""
        if any(width < 1 for width in self.hidden):
            raise CtdkitError(f"--sac.hidden widths must be at least 1, got {self.hidden}")
        for name in ("batch_size", "buffer_size", "updates_per_step"):
            check_count(_flag(name), getattr(self, name))
        check_count("--sac.warmup-steps", self.warmup_steps, minimum=0)
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_temperature"):
            if not 0 < getattr(self, name) < math.inf:  # NaN fails too
                raise CtdkitError(f"{_flag(name)} must be > 0, got {getattr(self, name)}")
        for name in ("gamma", "tau"):
            if not 0 < getattr(self, name) <= 1:
                raise CtdkitError(f"{_flag(name)} must be in (0, 1], got {getattr(self, name)}")
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise CtdkitError(f"--sac.target-entropy must be finite, got {self.target_entropy}")


def _flag(name: str) -> str:
    """The train_expert flag of a SAC setting: ``batch_size`` -> ``--sac.batch-size``."""
    return "--sac." + name.replace("_", "-")


@dataclass
class TrainExpertConfig:
    """Train one SAC expert online on a Meta-World task; its replay becomes an online dataset."""

    task: str = "reach-v3"
    """Meta-World v3 task."""
    total_steps: int = 100_000
    """Env steps to train for (rounded up to whole episodes; extendable with --resume)."""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC hyperparameters (networks, learning rates, replay, temperature)."""
    env_seed: int = 0
    """Fixes the task's 50 goal configurations and every episode's reset seed."""
    max_episode_steps: int = MAX_EPISODE_STEPS
    """Episode length (time-limit truncation), at most Meta-World's 500."""
    demo_episodes: int = 0
    """Scripted-policy episodes kept in a second replay for the whole run (0: SAC from scratch,
    docs/method.md's expert). Each batch then draws `demo_fraction` of its rows from them (RLPD's
    symmetric sampling); the online dataset still holds only the agent's own episodes."""
    demo_fraction: float = 0.5
    """Share of each batch drawn from the demo replay (with --demo-episodes > 0)."""
    eval_every: int = 10_000
    """Evaluate the deterministic actor every this many env steps (0: only at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation (ctdkit's `official` protocol: first success ends an episode)."""
    eval_seed: int = 1_000
    """Seed of the evaluation envs: their goal variations differ from the training ones."""
    stop_at_success: float | None = None
    """Stop early once `stop_patience` consecutive evaluations reach this success rate (an
    expert is done when it is good enough; the remaining budget goes to the next task)."""
    stop_patience: int = 2
    """Consecutive evaluations at `stop_at_success` needed to stop (one 10-episode
    evaluation is noisy)."""
    checkpoint_every: int = 5_000
    """Checkpoint (weights, optimisers, replay, RNG states) every this many env steps."""
    out_dir: Path = Path("runs/expert")
    """Run directory: checkpoint.pt, expert.pt, metrics.json, episodes/ (the training replay)."""
    resume: bool = False
    """Continue the run in out_dir exactly where its last checkpoint left it."""
    overwrite: bool = False
    """Discard an existing run in out_dir."""
    dataset_id: str | None = None
    """Publish the training replay as this Minari dataset group at the end, e.g.
    `ctdkit/reach-sac-online-v0` (it holds `ctdkit/reach-sac-online/reach-v0`)."""
    data_format: Literal["hdf5", "arrow"] = "hdf5"
    """Minari storage format of the online dataset."""
    root: Path | None = None
    """Minari datasets root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        """Refuse what no run could do before anything is read or written (whether the
        dataset to publish already exists is checked by the run: it needs the disk)."""
        validate_task(self.task)
        validate_max_episode_steps(self.max_episode_steps)
        check_count("--total-steps", self.total_steps)
        for flag, value in (
            ("--eval-every", self.eval_every),
            ("--eval-episodes", self.eval_episodes),
            ("--checkpoint-every", self.checkpoint_every),
            ("--demo-episodes", self.demo_episodes),
        ):
            check_count(flag, value, minimum=0)
        if self.demo_episodes and not 0.0 < self.demo_fraction < 1.0:
            raise CtdkitError(f"--demo-fraction must be in (0, 1), got {self.demo_fraction}")
        if self.stop_at_success is not None:
            if not 0.0 <= self.stop_at_success <= 1.0:
                raise CtdkitError(
                    f"--stop-at-success must be in [0, 1], got {self.stop_at_success}"
                )
            if self.stop_patience < 1 or not (self.eval_every and self.eval_episodes):
                raise CtdkitError(
                    "--stop-at-success needs --stop-patience >= 1 and periodic evaluations "
                    "(--eval-every and --eval-episodes > 0)"
                )
        if self.data_format not in DATA_FORMATS:
            raise unknown("data format", self.data_format, DATA_FORMATS)
        if self.dataset_id is not None:
            parse_group_id(self.dataset_id)

    def fingerprint(self) -> dict[str, Any]:
        """The settings that determine the training stream; ``--resume`` must match them.

        ``total_steps`` is left out (a run may be extended), and so are evaluation, checkpoint
        and output settings (they consume no training randomness).
        """
        keep = ("task", "env_seed", "max_episode_steps", "demo_episodes", "demo_fraction")
        fields = {name: getattr(self, name) for name in keep}
        sac = dataclasses.asdict(self.sac)
        sac["hidden"] = list(sac["hidden"])
        return {**fields, **{f"sac.{k}": v for k, v in sac.items()}}

    def command(self) -> str:
        """The ``python -m ctdkit.train_expert`` command that reproduces this run's data."""
        parts = ["python -m ctdkit.train_expert", "--task", self.task]
        parts += ["--total-steps", str(self.total_steps), "--env-seed", str(self.env_seed)]
        parts += ["--max-episode-steps", str(self.max_episode_steps)]
        defaults = SACConfig()
        for name in (f.name for f in dataclasses.fields(SACConfig)):
            value = getattr(self.sac, name)
            if value != getattr(defaults, name):
                flag = name.replace("_", "-")
                if isinstance(value, bool):  # tyro flags: --sac.x / --sac.no-x
                    parts.append(f"--sac.{flag}" if value else f"--sac.no-{flag}")
                    continue
                words = [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
                parts += [f"--sac.{flag}", *words]
        if self.demo_episodes:
            parts += ["--demo-episodes", str(self.demo_episodes)]
            parts += ["--demo-fraction", str(self.demo_fraction)]
        if self.stop_at_success is not None:  # it decides where the replay stream ends
            parts += ["--eval-every", str(self.eval_every)]
            parts += ["--eval-episodes", str(self.eval_episodes)]
            parts += ["--eval-seed", str(self.eval_seed)]
            parts += ["--stop-at-success", str(self.stop_at_success)]
            parts += ["--stop-patience", str(self.stop_patience)]
        if self.data_format != "hdf5":
            parts += ["--data-format", self.data_format]
        if self.dataset_id is not None:
            parts += ["--dataset-id", self.dataset_id]
        return " ".join(parts)

    def replace(self, **changes: Any) -> TrainExpertConfig:
        return dataclasses.replace(self, **changes)
