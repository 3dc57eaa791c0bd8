"""What every speed benchmark here shares: pinned threads, interleaved repeated timing, the
summary of the samples (median and spread) and the record of the conditions of the run.

A speed claim is a ratio of equal work measured in one run: the rows are timed interleaved
(A, B, A, B, …, the order rotated each round so no row always runs first), each ratio is taken
within a round (the rows of one round ran seconds apart, under the same machine load), and the
median and spread over the rounds are reported. Import this module before torch is imported
(``OMP_NUM_THREADS`` is read once).
"""

from __future__ import annotations

import contextlib
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import shlex
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ctdkit.bench.records import cpu_model


def pin_threads(threads: int) -> int:
    """Torch intra-op threads (and one inter-op thread); returns what torch reports."""
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set, or parallel work already ran
        torch.set_num_interop_threads(1)
    return torch.get_num_threads()


def interleaved(
    rows: dict[str, Callable[[], float]], repeats: int, progress: bool = True
) -> dict[str, list[float]]:
    """``repeats`` rounds of every row, each round in a rotated order; each call returns its
    own rate (work per second). Returns the rates per row, one per round, in round order."""
    names = list(rows)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(rows[name]())
        if progress:
            latest = ", ".join(f"{name} {samples[name][-1]:.4g}" for name in names)
            print(f"round {round_index + 1}/{repeats}: {latest}", flush=True)
    return samples


def timed_rate(call: Callable[[], Any], work: float) -> float:
    """``work`` divided by the wall seconds of one ``call``."""
    start = time.perf_counter()
    call()
    return work / (time.perf_counter() - start)


def summary(samples: list[float]) -> dict[str, Any]:
    """Median, min, max and quartiles of ``samples`` (and the samples themselves)."""
    ordered = sorted(samples)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
        "n": len(ordered),
        "samples": samples,
    }


def paired_ratio(ours: list[float], theirs: list[float]) -> dict[str, Any]:
    """The per-round ratios ``ours[i] / theirs[i]`` summarised (rows of one round ran under
    the same load, so the ratio is steadier than either rate)."""
    return summary([a / b for a, b in zip(ours, theirs, strict=True)])


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _relative(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def conditions(threads: int) -> dict[str, Any]:
    """The run's command, thread settings, machine and load average (at its start)."""
    import torch

    return {
        "command": "python " + shlex.join([_relative(sys.argv[0]), *sys.argv[1:]]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "threads": threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "hardware": f"{cpu_model()} ({os.cpu_count()} logical CPUs)",
        "load_average_start": load_average(),
    }
