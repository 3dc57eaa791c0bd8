"""The whole CTD pipeline on a small default: collect → encoder → collective → evaluate.

Each stage writes under ``out`` and is skipped when its result is already there, so an
interrupted pipeline continues where it stopped when run again with the same settings.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from ctdkit.collect import CollectConfig, collect
from ctdkit.collective.config import (
    CONDITIONINGS,
    ENCODER_CONDITIONINGS,
    CollectiveSACConfig,
    Conditioning,
)
from ctdkit.collective.run import WEIGHTS_FILE as COLLECTIVE_WEIGHTS
from ctdkit.collective.run import TrainCollectiveConfig, train_collective
from ctdkit.data.ids import parse_group_id
from ctdkit.data.store import read_group_metadata
from ctdkit.encoder.config import EncoderConfig
from ctdkit.encoder.run import WEIGHTS_FILE as ENCODER_WEIGHTS
from ctdkit.encoder.run import TrainEncoderConfig, train_encoder
from ctdkit.envs.tasks import resolve_tasks
from ctdkit.errors import CtdkitError
from ctdkit.eval.run import EvaluateConfig, run_evaluation
from ctdkit.files import read_json_object, write_json_atomic
from ctdkit.runs import check_count, open_run


@dataclass
class PipelineConfig:
    """Collect expert data, train the encoder and the collective agent, evaluate it."""

    tasks: tuple[str, ...] = ("reach-v3", "push-v3", "drawer-open-v3")
    """Tasks (or MT10 / MT50)."""
    episodes_per_task: int = 10
    """Expert episodes collected per task (500 steps each)."""
    noise: float = 0.3
    """Action noise of the scripted experts while collecting (labels stay noise-free)."""
    conditioning: Conditioning = "ctd"
    """Task context of the collective: `ctd` = the encoder's CLS embedding of the agent's own
    recent (state, action, reward) window; `oracle` = a one-hot task id; `none` = no context;
    `history` = the raw last 5 actions and rewards (the baseline `ctd` must beat)."""
    view: Literal["full", "goal-hidden"] = "full"
    """What the agent sees: the full observation, or the goal position zeroed out."""
    encoder_steps: int = 300
    """Gradient steps of the trajectory encoder (ctd only)."""
    collective_steps: int = 3000
    """Gradient steps of the collective agent."""
    protocol: Literal["official", "all-goals"] = "official"
    """Evaluation protocol: Meta-World's own (`official`) or every goal variation once."""
    eval_seeds: tuple[int, ...] = (100,)
    """Evaluation seeds: their goals are held out from the collection seed's (--seed)."""
    eval_episodes: int = 10
    """Episodes per task and seed (official protocol)."""
    seed: int = 0
    """Collection and training seed."""
    workers: int = 2
    """Worker processes for the collection."""
    torch_threads: int = 1
    """torch threads for training and evaluation. 1 is the steady choice on small machines:
    with 2 threads on 2 cores, training slows 10-50x whenever another process takes a core."""
    out: Path = Path("runs/pipeline")
    """Folder for everything the pipeline writes (datasets, encoder, collective, summary)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        """Refuse bad settings in one line before anything is written."""
        resolve_tasks(self.tasks)
        for name in (
            "episodes_per_task",
            "encoder_steps",
            "collective_steps",
            "eval_episodes",
            "workers",
            "torch_threads",
        ):
            check_count(f"--{name.replace('_', '-')}", getattr(self, name))
        if not self.eval_seeds:
            raise CtdkitError("--eval-seeds is empty: give at least one seed, e.g. 100")
        if self.seed in self.eval_seeds:
            raise CtdkitError(
                f"--eval-seeds contains the collection seed {self.seed}: evaluate on held-out "
                "goals (e.g. --eval-seeds 100)"
            )
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise CtdkitError(f"--noise must be a finite number >= 0, got {self.noise}")
        if self.conditioning not in CONDITIONINGS:
            raise CtdkitError(
                f"--conditioning must be {', '.join(CONDITIONINGS)}, not {self.conditioning!r}"
            )
        if self.view not in ("full", "goal-hidden"):
            raise CtdkitError(f"--view must be full or goal-hidden, not {self.view!r}")


def settings(config: PipelineConfig) -> dict:
    """What a rerun must match to reuse the stages (never silently mixed)."""
    ignored = ("out", "progress", "workers", "torch_threads")  # speed only, not what is computed
    kept = {k: v for k, v in dataclasses.asdict(config).items() if k not in ignored}
    return json.loads(json.dumps(kept, default=str))


def _recorded(out: Path) -> dict | None:
    """The settings of a pipeline run written before ``run.json`` (its ``pipeline.json``)."""
    legacy = out / "pipeline.json"
    return read_json_object(legacy, str(legacy)) if legacy.is_file() else None


def run_pipeline(config: PipelineConfig) -> dict:
    """Run every stage not yet done under ``config.out``; returns the evaluation summary."""
    with open_run(
        config.out,
        settings(config),
        resume=None,  # a rerun always continues: finished stages are reused
        overwrite=None,
        what="a pipeline run",
        legacy=_recorded,
    ):
        return _run_stages(config)


def _run_stages(config: PipelineConfig) -> dict:
    torch.set_num_threads(config.torch_threads)
    out = config.out
    root = out / "datasets"
    dataset_id = "pipeline/experts-v0"
    group = parse_group_id(dataset_id)
    # what every stage shares: the pipeline's dataset, and continuing an interrupted run
    stage = {"dataset_id": dataset_id, "root": root, "resume": True, "progress": config.progress}
    if read_group_metadata(root, group.namespace, group.version) is None:
        collect(
            CollectConfig(
                tasks=config.tasks,
                episodes_per_task=config.episodes_per_task,
                noise=config.noise,
                seed=config.seed,
                workers=config.workers,
                ref_episodes=1,
                **stage,
            )
        )
    encoder_path = None
    if config.conditioning in ENCODER_CONDITIONINGS:
        encoder_dir = out / "encoder"
        encoder_path = encoder_dir / ENCODER_WEIGHTS
        if not encoder_path.exists():
            train_encoder(
                TrainEncoderConfig(
                    out_dir=encoder_dir,
                    encoder=EncoderConfig(
                        view=config.view,
                        seed=config.seed,
                        lr=1e-3,
                        batch_size=64,
                        attention_dropout=0.0,
                    ),
                    n_steps=config.encoder_steps,
                    checkpoint_every=100,
                    windows_per_episode=8,
                    **stage,
                )
            )
    collective_dir = out / f"collective-{config.conditioning}-{config.view}"
    weights = collective_dir / COLLECTIVE_WEIGHTS
    if not weights.exists():
        train_collective(
            TrainCollectiveConfig(
                encoder=encoder_path,
                out_dir=collective_dir,
                collective=CollectiveSACConfig(
                    conditioning=config.conditioning,
                    view=config.view,
                    batch_size=256,
                    actor_lr=1e-3,
                    seed=config.seed,
                ),
                n_steps=config.collective_steps,
                checkpoint_every=1000,
                **stage,
            )
        )
    summary = run_evaluation(
        EvaluateConfig(
            agent="collective",
            checkpoint=weights,
            tasks=config.tasks,
            protocol=config.protocol,
            seeds=config.eval_seeds,
            episodes=config.eval_episodes,
            out=collective_dir / f"eval-{config.protocol}",
            progress=config.progress,
        )
    )
    write_json_atomic(out / "summary.json", summary)
    return summary
