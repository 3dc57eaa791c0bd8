"""One training run of the collective agent with checkpoints and resume (the library side of
``python -m ctdkit.train_collective``)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.collective.context import make_context
from ctdkit.collective.learner import CollectiveSAC
from ctdkit.data import load_transitions
from ctdkit.policies.checkpoint import COLLECTIVE, read_checkpoint
from ctdkit.runs import check_count, open_run

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
    """Trained encoder weights (`encoder.pt` of `ctdkit.train_encoder`); needed for `ctd`,
    `ctd+history` and `ctd-e2e` (which finetunes a copy of it)."""
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

    def __post_init__(self) -> None:
        check_count("--n-steps", self.n_steps)
        check_count("--checkpoint-every", self.checkpoint_every, minimum=0)


@dataclass
class TrainCollectiveResult:
    weights: Path
    steps: int
    seconds: float
    history: list[dict]


def settings(config: TrainCollectiveConfig) -> dict:
    """What ``--resume`` must match (``n_steps`` may grow: a run can be extended)."""
    return {"dataset_id": config.dataset_id, "collective": config.collective.record()}


def _recorded(out: Path) -> dict | None:
    """The settings of a run written before ``run.json``: its checkpoint's config."""
    checkpoint = out / CHECKPOINT_FILE
    if not checkpoint.is_file():
        return None
    config = read_checkpoint(checkpoint, COLLECTIVE).get("config")
    return {"collective": config if isinstance(config, dict) else {}}


def train_collective(config: TrainCollectiveConfig) -> TrainCollectiveResult:
    """Train (or resume) to ``n_steps``; the data, the encoder and the context are checked
    before the run folder is touched."""
    start = time.perf_counter()
    out = Path(config.out_dir)
    data = load_transitions(config.dataset_id, root=config.root)
    resuming = config.resume and (out / CHECKPOINT_FILE).is_file()
    context = None if resuming else _context(config, data)  # the checkpoint carries its own
    with open_run(
        out,
        settings(config),
        resume=config.resume,
        overwrite=config.overwrite,
        what="a collective run",
        # runs recorded before run.json, or before history_steps existed
        defaults={
            "dataset_id": config.dataset_id,
            "collective": {"history_steps": CollectiveSACConfig.history_steps},
        },
        legacy=_recorded,
    ) as run:
        checkpoint = run.file(CHECKPOINT_FILE)
        if resuming:
            learner = CollectiveSAC.load(checkpoint, device=config.device)
        else:
            learner = config.collective.create(device=config.device)
        history = learner.fit(
            data,
            run.remaining_steps(learner.step, config.n_steps),
            context=context,
            progress=config.progress,
            checkpoint=checkpoint,
            checkpoint_every=config.checkpoint_every,
        )
        learner.save(checkpoint)
        weights = run.file(WEIGHTS_FILE)
        learner.save(weights)
        previous = run.file(HISTORY_FILE)
        earlier = json.loads(previous.read_text()) if run.resumed and previous.exists() else []
        run.write_json(HISTORY_FILE, earlier + history)
    return TrainCollectiveResult(weights, learner.step, time.perf_counter() - start, history)


def _context(config: TrainCollectiveConfig, data):
    encoder = None
    if config.encoder is not None:
        from ctdkit.encoder import TrajectoryEncoder

        encoder = TrajectoryEncoder.load(config.encoder, device=config.device)
    collective = config.collective
    return make_context(collective.conditioning, data, encoder, collective.history_steps)
