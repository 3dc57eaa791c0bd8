"""One training run of the encoder with checkpoints, resume and quality metrics (the library
side of ``python -m ctdkit.train_encoder``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ctdkit.data import load_transitions
from ctdkit.encoder.config import EncoderConfig
from ctdkit.encoder.encoder import TrajectoryEncoder
from ctdkit.encoder.metrics import evaluate_encoders, plot_quality, to_json
from ctdkit.encoder.persistence import latest_checkpoint
from ctdkit.runs import Run, check_count, open_run

WEIGHTS_FILE = "encoder.pt"
METRICS_FILE = "metrics.json"
PLOT_FILE = "quality.png"
CHECKPOINT_DIR = "checkpoints"
OTHER_MODE = {"label-free": "label-aware", "label-aware": "label-free"}


@dataclass
class TrainEncoderConfig:
    """Train the trajectory transformer on a dataset, then measure its task embedding."""

    dataset_id: str
    """Dataset or group id, e.g. `ctdkit/mt10-scripted-v0`."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Model, loss and optimiser settings."""
    n_steps: int = 10_000
    """Total updates of the run (a resumed run trains the remainder)."""
    seed: int | None = None
    """Overrides `encoder.seed` (weights, split, sampling, masking, dropout)."""
    device: str = "cpu"
    """Torch device for training and embedding, e.g. `cpu`, `cuda`, `cuda:1`."""
    out_dir: Path = Path("runs/encoder")
    """Where the weights, checkpoints, metrics JSON and plot are written."""
    checkpoint_every: int = 1000
    """Save the full training state every this many steps (0: only at the end)."""
    resume: bool = False
    """Continue the run in `out_dir` from its latest checkpoint."""
    overwrite: bool = False
    """Discard an existing run in `out_dir`."""
    root: Path | None = None
    """Minari datasets root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)."""
    metrics: bool = True
    """Measure probe accuracy against the untrained encoder and the raw-window baseline."""
    compare_mode: bool = False
    """Also train the other mode (label-free/label-aware) with the same settings and compare."""
    windows_per_episode: int = 32
    """Evaluation windows per episode and window length."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        check_count("--n-steps", self.n_steps)
        check_count("--checkpoint-every", self.checkpoint_every, minimum=0)
        check_count("--windows-per-episode", self.windows_per_episode)

    def resolved_encoder(self) -> EncoderConfig:
        return self.encoder if self.seed is None else self.encoder.replace(seed=self.seed)


@dataclass
class TrainEncoderResult:
    weights: Path
    steps: int
    seconds: float
    metrics: dict | None = None
    metrics_path: Path | None = None
    plot_path: Path | None = None


def settings(config: TrainEncoderConfig) -> dict:
    """What ``--resume`` must match (``n_steps`` may grow: a run can be extended)."""
    return {"dataset_id": config.dataset_id, "encoder": config.resolved_encoder().to_dict()}


def _recorded(out: Path) -> dict | None:
    """The settings of a run written before ``run.json``: its latest checkpoint's config."""
    latest = latest_checkpoint(out / CHECKPOINT_DIR) if (out / CHECKPOINT_DIR).is_dir() else None
    return None if latest is None else {"encoder": TrajectoryEncoder.load(latest).config.to_dict()}


def train_encoder(config: TrainEncoderConfig) -> TrainEncoderResult:
    """Train (or resume) to ``n_steps``, save the weights, then write metrics and the plot."""
    encoder_config = config.resolved_encoder()
    transitions = load_transitions(config.dataset_id, view="full", root=config.root)
    out = Path(config.out_dir)
    with open_run(
        out,
        settings(config),
        resume=config.resume,
        overwrite=config.overwrite,
        what="an encoder run",
        defaults={"dataset_id": config.dataset_id},  # runs recorded before run.json
        legacy=_recorded,
    ) as run:
        latest = latest_checkpoint(run.file(CHECKPOINT_DIR)) if run.resumed else None
        if latest is None:
            encoder = encoder_config.create(config.device)
        else:
            encoder = TrajectoryEncoder.load(latest, device=config.device)
        steps = run.remaining_steps(encoder.step, config.n_steps)
        started = time.perf_counter()
        encoder.fit(
            transitions,
            steps,
            progress=config.progress,
            checkpoint_dir=run.file(CHECKPOINT_DIR),
            checkpoint_every=config.checkpoint_every,
        )
        encoder.save_checkpoint(run.file(CHECKPOINT_DIR))
        seconds = time.perf_counter() - started
        result = TrainEncoderResult(encoder.save(run.file(WEIGHTS_FILE)), encoder.step, seconds)
        if config.metrics:
            _measure(config, run, encoder, transitions, result)
    return result


def _measure(
    config: TrainEncoderConfig,
    run: Run,
    encoder: TrajectoryEncoder,
    transitions,
    result: TrainEncoderResult,
) -> None:
    """Probe the trained encoder against the untrained one and the raw-window baseline."""
    encoder_config = encoder.config
    encoders = {encoder_config.mode: encoder}
    if config.compare_mode:
        other = encoder_config.replace(mode=OTHER_MODE[encoder_config.mode]).create(config.device)
        other.fit(transitions, config.n_steps, progress=config.progress)
        encoders[other.config.mode] = other
    untrained = encoder_config.create(config.device)
    untrained.fit(transitions, 0, progress=False)  # split + normalisation, no update
    encoders["untrained"] = untrained
    evaluation = evaluate_encoders(
        encoders, transitions, windows_per_episode=config.windows_per_episode, seed=0
    )
    metrics = to_json(evaluation)
    metrics["run"] = {
        "steps": encoder.step,
        "seconds_this_call": result.seconds,
        "device": str(encoder.device),
        "encoder": encoder_config.to_dict(),
        "history": encoder.history,
    }
    result.metrics = metrics
    result.metrics_path = run.write_json(METRICS_FILE, metrics, indent=2)
    result.plot_path = plot_quality(evaluation, run.file(PLOT_FILE))
