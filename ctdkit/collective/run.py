"""One training run of the collective agent with checkpoints and resume (the library side of
``python -m ctdkit.train_collective``)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.collective.context import make_context
from ctdkit.collective.learner import CollectiveSAC
from ctdkit.data import load_transitions
from ctdkit.errors import CtdkitError
from ctdkit.files import write_json_atomic

WEIGHTS_FILE = "collective.pt"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"


@dataclass
class TrainCollectiveConfig:
    """Distil the experts of a dataset into one context-conditioned collective agent."""

    dataset_id: str
    """Dataset or group id with expert labels, e.g. `ctdkit/mt10-scripted-v0`."""
    collective: CollectiveSACConfig = field(default_factory=CollectiveSACConfig)
    """Learner settings (conditioning mode, view, sizes, learning rates)."""
    encoder: Path | None = None
    """Trained encoder weights (`encoder.pt` of `ctdkit.train_encoder`); needed for `ctd`."""
    n_steps: int = 50_000
    """Total updates of the run (a resumed run trains the remainder)."""
    device: str = "cpu"
    """Torch device to train on (`cpu`, `cuda`, `cuda:1`)."""
    out_dir: Path = Path("runs/collective")
    """Run folder: checkpoint, `collective.pt` weights, `history.json`."""
    checkpoint_every: int = 5000
    """Save the full training state every this many steps (0: only at the end)."""
    resume: bool = False
    """Continue the run in `out_dir` from its checkpoint."""
    overwrite: bool = False
    """Discard an existing run in `out_dir`."""
    root: Path | None = None
    """Minari datasets root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class TrainCollectiveResult:
    weights: Path
    steps: int
    seconds: float
    history: list[dict]


def train_collective(config: TrainCollectiveConfig) -> TrainCollectiveResult:
    start = time.perf_counter()
    out = config.out_dir
    checkpoint = out / CHECKPOINT_FILE
    if out.exists() and any(out.iterdir()) and not (config.resume or config.overwrite):
        raise CtdkitError(f"{out} already holds a run: pass --resume or --overwrite")
    if config.overwrite and not config.resume:
        shutil.rmtree(out, ignore_errors=True)
    data = load_transitions(config.dataset_id, root=config.root)
    if config.resume and checkpoint.exists():
        learner = CollectiveSAC.load(checkpoint, device=config.device)
        if learner.config != config.collective:
            raise CtdkitError(f"--resume: {checkpoint} was trained with a different config")
        context = None
    else:
        encoder = None
        if config.encoder is not None:
            from ctdkit.encoder import TrajectoryEncoder

            encoder = TrajectoryEncoder.load(config.encoder, device=config.device)
        context = make_context(config.collective.conditioning, data, encoder)
        learner = config.collective.create(device=config.device)
    history = learner.fit(
        data,
        config.n_steps,
        context=context,
        progress=config.progress,
        checkpoint=checkpoint,
        checkpoint_every=config.checkpoint_every,
    )
    learner.save(checkpoint)
    weights = out / WEIGHTS_FILE
    learner.save(weights)
    previous = (
        json.loads((out / HISTORY_FILE).read_text())
        if config.resume and (out / HISTORY_FILE).exists()
        else []
    )
    write_json_atomic(out / HISTORY_FILE, previous + history)
    return TrainCollectiveResult(weights, learner.step, time.perf_counter() - start, history)
