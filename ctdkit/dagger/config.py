"""Configuration of a DAgger run (doubles as the ``python -m ctdkit.dagger`` CLI).

Seed discipline: a run's rounds collect on seeds below :data:`FIRST_EVAL_SEED` (their goal
variations are training goals) and evaluate on seeds at or above it, which never collect data
and never choose a round, a checkpoint or a setting. Round ``i`` of run seed ``s`` collects on
seed ``s + 10 i`` (:func:`collect_seed`), so the rounds of one run see different goals and two
runs with seeds 0..9 never share a collection seed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ctdkit.collective.config import ENCODER_CONDITIONINGS, CollectiveSACConfig
from ctdkit.data.ids import parse_group_id
from ctdkit.encoder.config import EncoderConfig
from ctdkit.envs.make import MAX_EPISODE_STEPS, validate_max_episode_steps
from ctdkit.envs.tasks import resolve_tasks
from ctdkit.errors import CtdkitError
from ctdkit.runs import check_count

#: evaluation seeds start here; every collection seed lies below it
FIRST_EVAL_SEED = 100
#: run seeds 0..9 and rounds 0..9 map to distinct collection seeds below 100
MAX_RUN_SEED = 9
MAX_ROUNDS = 9


def collect_seed(run_seed: int, round_index: int) -> int:
    """The collection seed of round ``round_index`` of a run with seed ``run_seed``."""
    if not 0 <= run_seed <= MAX_RUN_SEED or not 0 <= round_index <= MAX_ROUNDS:
        raise CtdkitError(
            f"DAgger collects on seed + 10 * round below {FIRST_EVAL_SEED}: --seed must be in "
            f"0..{MAX_RUN_SEED} and --rounds at most {MAX_ROUNDS}"
        )
    return run_seed + 10 * round_index


def beta_schedule(beta: float, round_index: int) -> float:
    """βᵢ = βʳᵒᵘⁿᵈ (Ross et al., 2011): round 0 is the expert's alone (β₀ = 1), later rounds
    hand the collective a growing share of the steps."""
    return float(beta**round_index)


def allocate_episodes(success: Sequence[float], total: int, floor: float) -> tuple[int, ...]:
    """A round's ``total`` episodes split among tasks in proportion to ``floor + 1 - s``, ``s``
    each task's success in the previous round's collection, at least one each (largest
    remainders get the rest): the episodes go where the collective fails, and a task it solves
    keeps a ``floor`` share so its data stay current."""
    if total < len(success):
        raise CtdkitError(f"{total} episodes cannot give each of {len(success)} tasks one")
    weights = [floor + 1.0 - s for s in success]
    shares = [(total - len(success)) * w / sum(weights) for w in weights]
    counts = [1 + math.floor(share) for share in shares]
    by_remainder = sorted(
        range(len(shares)), key=lambda i: (shares[i] - math.floor(shares[i]), -i), reverse=True
    )
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return tuple(counts)


@dataclass
class DaggerConfig:
    """DAgger rounds: the collective acts (the expert with probability βᵢ per step), the
    scripted expert labels every visited state, the collective retrains on the aggregate."""

    tasks: tuple[str, ...] = ("reach-v3", "push-v3", "pick-place-v3")
    """Tasks (or MT10 / MT50). The default three: reach and pick-place reset to identical
    observations, so only a context can tell them apart."""
    rounds: int = 3
    """DAgger rounds after round 0 (the expert's data). A rerun with more rounds extends the run."""
    episodes_per_task: int = 10
    """Episodes collected per task in every round (with `--allocation failures`: on average)."""
    allocation: Literal["equal", "failures"] = "equal"
    """How a DAgger round's episodes (tasks × episodes-per-task) are shared among tasks:
    `equal`, or `failures`: in proportion to `allocation-floor` + 1 − the task's success in the
    previous round's own collection (collection seeds only), so a task the collective fails
    gets more of the round's data and, sampled uniformly from the aggregate, more updates."""
    allocation_floor: float = 0.1
    """`--allocation failures`: the weight a task gets when every collected episode succeeded."""
    beta: float = 0.5
    """β schedule βᵢ = beta^i: the chance that the expert, not the collective, takes a step."""
    noise: float = 0.3
    """Gaussian action noise of the expert's steps (labels stay noise-free)."""
    collective: CollectiveSACConfig = field(
        default_factory=lambda: CollectiveSACConfig(batch_size=256, actor_lr=1e-3, critic=False)
    )
    """Collective learner (conditioning, view, sizes); its seed is --seed. No critic by default:
    distillation never reads it (the actor's updates do not depend on it)."""
    collective_steps: int = 3000
    """Collective updates per round, warm-started from the previous round."""
    checkpoint_every: int = 1000
    """Save the collective's training state every this many updates (resume point)."""
    encoder: EncoderConfig = field(
        default_factory=lambda: EncoderConfig(lr=1e-3, batch_size=64, attention_dropout=0.0)
    )
    """Trajectory encoder of `ctd` conditioning (its view is the collective's); seed is --seed."""
    encoder_steps: int = 300
    """Encoder updates when it is trained (ctd)."""
    encoder_schedule: Literal["retrained", "frozen", "continued"] = "retrained"
    """ctd: train a new encoder on the aggregate every round (`retrained`), keep round 0's
    (`frozen`), or train on the aggregate starting from the previous round's weights
    (`continued`: the CLS space the warm-started actor learned stays roughly in place; a new
    encoder's is unrelated to the last). ctd-e2e: the collective finetunes a new one every
    round (`retrained`, `continued`), or keeps finetuning its own, which started from round
    0's (`frozen`: the self-supervised encoder is trained once)."""
    eval_seeds: tuple[int, ...] = (FIRST_EVAL_SEED,)
    """Evaluation seeds (>= 100: goals never used for collection)."""
    screening_episodes: int = 10
    """Episodes per task of the screening evaluation after every round (0: none)."""
    final_episodes: int = 50
    """Episodes per task of the final round's evaluation (0: none)."""
    max_episode_steps: int = MAX_EPISODE_STEPS
    """Episode length of collection and evaluation."""
    seed: int = 0
    """Run seed (0..9): collection seeds, networks, sampling."""
    workers: int = 2
    """Worker processes for collection."""
    torch_threads: int = 1
    """torch threads for training and evaluation (1 is steady on small machines)."""
    out: Path = Path("runs/dagger")
    """Run folder: per-round datasets, encoder, collective, evaluations, `rounds.json`."""
    progress: bool = True
    """Show progress bars."""
    export_dataset_id: str | None = None
    """After the last round, publish rounds 0..N as one dataset group with this versioned id
    (e.g. ``ctdkit/mt10-dagger-history-v0``; the DAgger tier the bench trains on)."""
    root: Path | None = None
    """Datasets root of the export (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)."""

    def __post_init__(self) -> None:
        """Refuse bad settings in one line before anything is written."""
        resolve_tasks(self.tasks)
        check_count("--rounds", self.rounds, minimum=0)
        counts = ("episodes_per_task", "collective_steps", "checkpoint_every", "encoder_steps")
        for name in (*counts, "workers"):
            check_count(f"--{name.replace('_', '-')}", getattr(self, name))
        check_count("--torch-threads", self.torch_threads)
        for name in ("screening_episodes", "final_episodes"):
            check_count(f"--{name.replace('_', '-')}", getattr(self, name), minimum=0)
        collect_seed(self.seed, self.rounds)  # both in range
        if not 0.0 <= self.beta <= 1.0:
            raise CtdkitError(f"--beta must be in [0, 1], got {self.beta}")
        if self.allocation not in ("equal", "failures"):
            raise CtdkitError(f"--allocation must be equal or failures, not {self.allocation!r}")
        if not (math.isfinite(self.allocation_floor) and self.allocation_floor > 0):
            raise CtdkitError(
                f"--allocation-floor must be a finite number > 0, got {self.allocation_floor}"
            )
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise CtdkitError(f"--noise must be a finite number >= 0, got {self.noise}")
        if not self.eval_seeds:
            raise CtdkitError("--eval-seeds is empty: give at least one seed, e.g. 100")
        low = [s for s in self.eval_seeds if s < FIRST_EVAL_SEED]
        if low:
            raise CtdkitError(
                f"--eval-seeds {low[0]} is below {FIRST_EVAL_SEED}: seeds below it collect "
                "training data; evaluate on held-out goals (e.g. --eval-seeds 100)"
            )
        if self.encoder_schedule not in ("retrained", "frozen", "continued"):
            raise CtdkitError(
                "--encoder-schedule must be retrained, frozen or continued, not "
                f"{self.encoder_schedule!r}"
            )
        validate_max_episode_steps(self.max_episode_steps)
        if self.export_dataset_id is not None:
            parse_group_id(self.export_dataset_id)

    def resolved_tasks(self) -> tuple[str, ...]:
        return resolve_tasks(self.tasks)

    def collective_config(self) -> CollectiveSACConfig:
        return dataclasses.replace(self.collective, seed=self.seed)

    def encoder_config(self) -> EncoderConfig:
        return self.encoder.replace(seed=self.seed, view=self.collective.view)

    def settings(self) -> dict:
        """What a rerun must match to continue (``rounds`` may grow, evaluation sizes may not
        change: a round's recorded screening would no longer fit)."""
        ignored = (
            *("rounds", "out", "progress", "workers", "torch_threads", "checkpoint_every"),
            *("export_dataset_id", "root"),
        )
        kept = {k: v for k, v in dataclasses.asdict(self).items() if k not in ignored}
        kept["collective"] = self.collective.record()  # ctd-e2e's fields for ctd-e2e only
        kept["encoder"] = self.encoder.to_dict()  # fields added later only when changed
        kept["tasks"] = list(self.resolved_tasks())
        if self.collective.conditioning not in ENCODER_CONDITIONINGS:  # no encoder
            for name in ("encoder", "encoder_steps", "encoder_schedule"):
                kept.pop(name)
        if self.allocation == "equal":  # added later: earlier runs' settings stay as they were
            for name in ("allocation", "allocation_floor"):
                kept.pop(name)
        return kept

    def command(self) -> str:
        """The ``python -m ctdkit.dagger`` command that reproduces this run's data: every
        setting that differs from the defaults, nested learner and encoder fields included."""
        parts = ["python -m ctdkit.dagger"]
        defaults = DaggerConfig()
        skipped = {"out", "progress", "workers", "torch_threads", "root", "checkpoint_every"}
        for name, value in dataclasses.asdict(self).items():
            default = dataclasses.asdict(defaults)[name]
            if name in skipped or value == default:
                continue
            if isinstance(value, dict):  # a nested config: its changed fields
                parts += [
                    _flag(f"{name}.{key}", item)
                    for key, item in value.items()
                    if item != default[key] and key != "seed"
                ]
            else:
                parts.append(_flag(name, value))
        return " ".join(parts)


def _flag(name: str, value: object) -> str:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        head, _, tail = flag.rpartition(".")
        return flag if value else f"{head}.no-{tail}" if head else f"--no-{flag[2:]}"
    if isinstance(value, list | tuple):
        return " ".join([flag, *map(str, value)])
    return f"{flag} {value}"
