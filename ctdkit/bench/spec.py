"""One benchmark run's specification: what the planner hands a worker process and what its
record's settings (and their fingerprint) are made of."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctdkit.bench.algos import Algo
from ctdkit.bench.data import DatasetCheck
from ctdkit.bench.records import fingerprint, variant_name
from ctdkit.bench.suites import Suite


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs (picklable: it travels to worker processes)."""

    suite: Suite
    algo: Algo
    seed: int
    episodes_per_task: int | None
    tasks: tuple[str, ...]
    dataset_checksum: str
    record: Path
    model_dir: Path | None
    encoder_dir: Path | None
    root: Path | None
    device: str = "cpu"
    threads: int = 1
    encoder_error: str | None = None
    data_check: DatasetCheck | None = None  # the data against its recipe (not a setting)
    checkpoint_dir: Path | None = None  # curve suites: the training state at the last point

    @property
    def variant(self) -> str:
        return variant_name(self.episodes_per_task)

    def fingerprinted(self) -> dict[str, Any]:
        """The settings with the fingerprint a record carries (compared as one more key)."""
        settings = self.settings()
        return {"fingerprint": fingerprint(settings), **settings}

    def settings(self) -> dict[str, Any]:
        return {
            **self.suite.settings(),
            "tasks": list(self.tasks),
            "algo": self.algo.id,
            "seed": self.seed,
            "episodes_per_task": self.episodes_per_task,
            "dataset_checksum": self.dataset_checksum,
        }
