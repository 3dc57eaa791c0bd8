"""Conditioning for benchmark runs: the context models of ``ctdkit.collective`` and, for
``ctd``, one trained encoder per (data, view, encoder settings, seed) shared by every
ctd-conditioned algorithm of that seed.

The shared encoder lives in a cache folder with its training contexts (embedding every row
costs about as much as a short training run, so it is done once): ``encoder.pt``,
``contexts.npz`` and, written last, ``meta.json`` — a folder without ``meta.json`` is
unfinished, and its checkpoints let an interrupted training continue.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctdkit.collective.config import ENCODER_CONDITIONINGS
from ctdkit.collective.context import ContextModel, make_context
from ctdkit.data import Transitions
from ctdkit.errors import CtdkitError
from ctdkit.files import write_atomic, write_json_atomic
from ctdkit.policies.history import EpisodeHistory

ENCODER_FILE, CONTEXTS_FILE, META_FILE = "encoder.pt", "contexts.npz", "meta.json"


@dataclass(frozen=True)
class EncoderJob:
    """One shared encoder to train (picklable: it travels to worker processes)."""

    directory: Path
    dataset_id: str
    root: Path | None
    tasks: tuple[str, ...]
    episodes_per_task: int | None
    settings: dict[str, Any]  # EncoderConfig fields
    steps: int
    device: str = "cpu"
    threads: int = 1


def encoder_directory(
    cache: Path, data_checksum: str, view: str, settings: dict, steps: int, seed: int
) -> Path:
    """Cache folder of the encoder trained on exactly the data ``data_checksum`` names."""
    key = json.dumps([data_checksum, view, settings, steps, seed], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache / f"{view}-{steps}steps-seed{seed}-{digest}"


def is_done(directory: Path) -> bool:
    return (directory / META_FILE).exists()


def train_shared_encoder(job: EncoderJob) -> str | None:
    """Train (or finish training) one cached encoder and embed its data; returns an error
    message instead of raising, so one failure does not stop the other jobs."""
    try:
        _train(job)
        return None
    except Exception as error:  # recorded in the records of the runs that needed it
        return f"{type(error).__name__}: {error}".splitlines()[0]


def _train(job: EncoderJob) -> None:
    import torch

    from ctdkit.bench.data import select, transitions_checksum
    from ctdkit.data import load_transitions
    from ctdkit.encoder import EncoderConfig, TrajectoryEncoder, latest_checkpoint

    torch.set_num_threads(job.threads)
    started = time.perf_counter()
    data = select(load_transitions(job.dataset_id, root=job.root), job.tasks, job.episodes_per_task)
    checkpoints = job.directory / "checkpoints"
    latest = latest_checkpoint(checkpoints) if checkpoints.is_dir() else None
    if latest is not None:
        encoder = TrajectoryEncoder.load(latest, device=job.device)
    else:
        encoder = EncoderConfig.from_dict(job.settings).create(device=job.device)
    encoder.fit(
        data,
        max(job.steps - encoder.step, 0),
        progress=False,
        checkpoint_dir=checkpoints,
        checkpoint_every=100,
    )
    encoder.save(job.directory / ENCODER_FILE)
    train_seconds = time.perf_counter() - started
    context, next_context = make_context("ctd", data, encoder).for_transitions(data)

    def save_contexts(tmp: Path) -> None:
        with open(tmp, "wb") as file:  # a file object: np.savez would append .npz to a name
            np.savez(file, context=context, next_context=next_context)

    write_atomic(job.directory / CONTEXTS_FILE, save_contexts)
    meta = {
        "dataset_id": job.dataset_id,
        "data_checksum": transitions_checksum(data),
        "rows": len(data),
        "steps": encoder.step,
        "settings": job.settings,
        "train_seconds": train_seconds,
        "context_seconds": time.perf_counter() - started - train_seconds,
    }
    write_json_atomic(job.directory / META_FILE, meta)
    shutil.rmtree(checkpoints, ignore_errors=True)


class PrecomputedContext:
    """A context model whose training-row contexts were computed once (by the shared encoder's
    job); acting and saving go through the wrapped model, so act time is unchanged."""

    def __init__(self, model: ContextModel, context: np.ndarray, next_context: np.ndarray):
        self.model, self.context, self.next_context = model, context, next_context
        self.mode, self.dim = model.mode, model.dim

    @property
    def view(self) -> str | None:
        return getattr(self.model, "view", None)

    def for_transitions(self, data: Transitions) -> tuple[np.ndarray, np.ndarray]:
        if len(data) != len(self.context):
            raise CtdkitError(
                f"precomputed contexts cover {len(self.context)} rows, the data has {len(data)}"
            )
        return self.context, self.next_context

    def for_history(self, history: EpisodeHistory, env_tasks: Sequence[str]) -> np.ndarray:
        return self.model.for_history(history, env_tasks)

    def state(self) -> dict[str, Any]:
        return self.model.state()


def run_context(
    conditioning: str,
    data: Transitions,
    data_checksum: str,
    encoder_dir: Path | None,
    device: str = "cpu",
) -> tuple[ContextModel, dict[str, Any]]:
    """The context model of a run on ``data`` (whose ``transitions_checksum`` is
    ``data_checksum``), and what the record says about its encoder."""
    if conditioning not in ENCODER_CONDITIONINGS:
        return make_context(conditioning, data), {}
    from ctdkit.encoder import TrajectoryEncoder

    if encoder_dir is None or not is_done(encoder_dir):
        raise CtdkitError(f"the shared encoder {encoder_dir} was not trained")
    meta = json.loads((encoder_dir / META_FILE).read_text())
    if meta["data_checksum"] != data_checksum:
        raise CtdkitError(f"the shared encoder {encoder_dir} was trained on other data")
    encoder = TrajectoryEncoder.load(encoder_dir / ENCODER_FILE, device=device)
    with np.load(encoder_dir / CONTEXTS_FILE) as saved:
        context, next_context = saved["context"], saved["next_context"]
    model = make_context(conditioning, data, encoder)
    if conditioning == "ctd+history":  # the raw window beside the precomputed CLS
        raw, next_raw = model.history.for_transitions(data)
        context = np.concatenate([context, raw], 1)
        next_context = np.concatenate([next_context, next_raw], 1)
    return PrecomputedContext(model, context, next_context), {"directory": str(encoder_dir), **meta}
