"""The whole CTD pipeline on a small default: collect → encoder → collective → evaluate.

Each stage writes under ``out`` and is skipped when its result is already there, so an
interrupted pipeline continues where it stopped when run again with the same settings.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ctdkit.collect import CollectConfig, collect
from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.collective.run import WEIGHTS_FILE as COLLECTIVE_WEIGHTS
from ctdkit.collective.run import TrainCollectiveConfig, train_collective
from ctdkit.data.ids import parse_group_id
from ctdkit.data.store import read_group_metadata
from ctdkit.encoder.config import EncoderConfig
from ctdkit.encoder.run import WEIGHTS_FILE as ENCODER_WEIGHTS
from ctdkit.encoder.run import TrainEncoderConfig, train_encoder
from ctdkit.errors import CtdkitError
from ctdkit.eval.run import EvaluateConfig, run_evaluation


@dataclass
class PipelineConfig:
    """Collect expert data, train the encoder and the collective agent, evaluate it."""

    tasks: tuple[str, ...] = ("reach-v3", "push-v3", "drawer-open-v3")
    """Tasks (or MT10 / MT50)."""
    episodes_per_task: int = 10
    noise: float = 0.3
    """Action noise of the scripted experts while collecting (labels stay noise-free)."""
    conditioning: Literal["ctd", "oracle", "none"] = "ctd"
    view: Literal["full", "goal-hidden"] = "full"
    encoder_steps: int = 300
    collective_steps: int = 3000
    protocol: Literal["official", "all-goals"] = "official"
    eval_seeds: tuple[int, ...] = (100,)
    """Evaluation seeds: their goals are held out from the collection seed's."""
    eval_episodes: int = 10
    """Episodes per task (official protocol)."""
    seed: int = 0
    workers: int = 2
    out: Path = Path("runs/pipeline")
    progress: bool = True


def _check_same_settings(config: PipelineConfig) -> None:
    """Stages are reused only by a rerun with the same settings (never silently mixed)."""
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("out", "progress")}
    settings = json.loads(json.dumps(settings, default=str))
    record = config.out / "pipeline.json"
    if record.exists():
        previous = json.loads(record.read_text())
        changed = sorted(k for k in settings if previous.get(k) != settings[k])
        if changed:
            raise CtdkitError(
                f"{config.out} holds a pipeline run with other settings ({', '.join(changed)}): "
                "choose another --out or delete it"
            )
    config.out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(settings, indent=1))


def run_pipeline(config: PipelineConfig) -> dict:
    _check_same_settings(config)
    out = config.out
    root = out / "datasets"
    dataset_id = "pipeline/experts-v0"
    group = parse_group_id(dataset_id)
    if read_group_metadata(root, group.namespace, group.version) is None:
        collect(
            CollectConfig(
                tasks=config.tasks,
                episodes_per_task=config.episodes_per_task,
                noise=config.noise,
                seed=config.seed,
                workers=config.workers,
                root=root,
                dataset_id=dataset_id,
                ref_episodes=1,
                resume=True,
                progress=config.progress,
            )
        )
    encoder_path = None
    if config.conditioning == "ctd":
        encoder_dir = out / "encoder"
        encoder_path = encoder_dir / ENCODER_WEIGHTS
        if not encoder_path.exists():
            train_encoder(
                TrainEncoderConfig(
                    dataset_id=dataset_id,
                    root=root,
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
                    resume=True,
                    windows_per_episode=8,
                    progress=config.progress,
                )
            )
    collective_dir = out / f"collective-{config.conditioning}-{config.view}"
    weights = collective_dir / COLLECTIVE_WEIGHTS
    if not weights.exists():
        train_collective(
            TrainCollectiveConfig(
                dataset_id=dataset_id,
                root=root,
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
                resume=True,
                progress=config.progress,
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
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
