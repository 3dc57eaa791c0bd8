"""Run records: one JSON per (suite, algorithm, data variant, seed), written atomically.

A record holds the per-task success (mean over its evaluation seeds), the settings and their
fingerprint, the dataset id with its content checksum and the checksum of the exact rows
trained on, package versions, hardware, thread settings and wall time split into load /
train / evaluate. ``status`` is ``ok`` or ``error`` (with the error and traceback): a rerun
skips ``ok`` records of the same settings and retries the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import warnings
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

SCHEMA = 1
REQUIRED = ("schema", "status", "suite", "algo", "variant", "seed", "fingerprint")
REQUIRED_OK = ("success_by_task", "mean_success", "dataset", "settings")
PACKAGES = ("ctdkit", "torch", "d3rlpy", "metaworld", "minari", "gymnasium", "numpy", "rliable")


class RecordWarning(UserWarning):
    """A record file that cannot be used (it is skipped, never silently)."""


def variant_name(episodes_per_task: int | None) -> str:
    return "all" if episodes_per_task is None else f"ep{episodes_per_task}"


def record_path(records: Path, suite: str, algo: str, variant: str, seed: int) -> Path:
    return records / suite / algo / variant / f"seed{seed}.json"


def fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def write_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, indent=1))
    os.replace(temporary, path)


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None (with a :class:`RecordWarning` naming the file) when it
    is not a readable, complete record."""
    try:
        record = json.loads(Path(path).read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        keys = REQUIRED + (REQUIRED_OK if record.get("status") == "ok" else ())
        missing = [key for key in keys if key not in record]
        if missing:
            raise ValueError(f"missing field {missing[0]!r}")
    except (OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        warnings.warn(f"skipping corrupt record {path}: {reason}", RecordWarning, stacklevel=2)
        return None
    return record


def load_records(locations: Iterable[Path]) -> list[dict[str, Any]]:
    """Every readable record under the given folders (or files); each carries its ``path``."""
    records = []
    for location in locations:
        location = Path(location)
        paths = [location] if location.is_file() else sorted(location.rglob("*.json"))
        for path in paths:
            record = read_record(path)
            if record is not None:
                records.append({**record, "path": str(path)})
    return records


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str = "cpu") -> dict[str, Any]:
    """Versions, hardware and thread settings of this process (stored in every record)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "versions": {"python": sys.version.split()[0], **{p: _version(p) for p in PACKAGES}},
        "hardware": {
            "cpu": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "machine": platform.machine(),
            "gpu": gpu,
            "device": device,
        },
        "threads": {
            "torch": torch.get_num_threads(),
            **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        },
    }
