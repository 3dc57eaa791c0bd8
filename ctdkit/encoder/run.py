"""One training run of the encoder with checkpoints, resume and quality metrics (the library
side of ``python -m ctdkit.train_encoder``)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ctdkit.data import load_transitions
from ctdkit.encoder.config import EncoderConfig
from ctdkit.encoder.encoder import TrajectoryEncoder, latest_checkpoint
from ctdkit.encoder.metrics import evaluate_encoders, plot_quality, to_json
from ctdkit.errors import CtdkitError

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


def _start(config: TrainEncoderConfig, encoder_config: EncoderConfig) -> TrajectoryEncoder:
    out = Path(config.out_dir)
    checkpoints = out / CHECKPOINT_DIR
    latest = latest_checkpoint(checkpoints) if checkpoints.is_dir() else None
    if config.overwrite:
        shutil.rmtree(checkpoints, ignore_errors=True)
        for name in (WEIGHTS_FILE, METRICS_FILE, PLOT_FILE):
            (out / name).unlink(missing_ok=True)
        latest = None
    if latest is None:
        return encoder_config.create(config.device)
    if not config.resume:
        raise CtdkitError(
            f"{out} already holds a run (checkpoint {latest.name}): pass --resume to continue it "
            "or --overwrite to discard it"
        )
    encoder = TrajectoryEncoder.load(latest, device=config.device)
    if encoder.config != encoder_config:
        theirs, ours = encoder.config.to_dict(), encoder_config.to_dict()
        name = next(k for k in ours if ours[k] != theirs[k])
        raise CtdkitError(
            f"cannot resume: the run in {out} has encoder.{name}={theirs[name]!r}, "
            f"this command has {ours[name]!r}"
        )
    return encoder


def train_encoder(config: TrainEncoderConfig) -> TrainEncoderResult:
    """Train (or resume) to ``n_steps``, save the weights, then write metrics and the plot."""
    encoder_config = config.resolved_encoder()
    if config.n_steps < 0:
        raise CtdkitError(f"n_steps must be non-negative, got {config.n_steps}")
    transitions = load_transitions(config.dataset_id, view="full", root=config.root)
    encoder = _start(config, encoder_config)
    out = Path(config.out_dir)
    if encoder.step > config.n_steps:
        raise CtdkitError(
            f"the run in {out} is already at step {encoder.step} > n_steps={config.n_steps}"
        )
    started = time.perf_counter()
    encoder.fit(
        transitions,
        config.n_steps - encoder.step,
        progress=config.progress,
        checkpoint_dir=out / CHECKPOINT_DIR,
        checkpoint_every=config.checkpoint_every,
    )
    encoder.save_checkpoint(out / CHECKPOINT_DIR)
    seconds = time.perf_counter() - started
    result = TrainEncoderResult(encoder.save(out / WEIGHTS_FILE), encoder.step, seconds)
    if not config.metrics:
        return result

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
        "seconds_this_call": seconds,
        "device": str(encoder.device),
        "encoder": encoder_config.to_dict(),
        "history": encoder.history,
    }
    result.metrics = metrics
    result.metrics_path = out / METRICS_FILE
    temporary = result.metrics_path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(metrics, indent=2))
    temporary.replace(result.metrics_path)
    result.plot_path = plot_quality(evaluation, out / PLOT_FILE)
    return result
