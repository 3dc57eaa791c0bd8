"""Summarise SAC expert runs (``python -m ctdkit.train_expert``) as one markdown table.

    python benchmarks/expert_table.py /tmp/experts/reach /tmp/experts/drawer-close \
        --out benchmarks/results/experts.md

Per run: its SAC and env seeds, the settings it changed from docs/method.md's defaults, env steps
trained, the success rate of its last ``--recent`` training episodes (exploring actions; a
steadier signal than 10 evaluation episodes while a run is in progress), the first periodic
evaluation at ≥ 50% / ≥ 90% success (env steps, wall and CPU seconds of the run so far), the
last periodic evaluation (and the best, which shows how far a run still in progress got), and
every final evaluation found under ``RUN/*/summary.json`` (``python -m ctdkit.evaluate --agent sac
--checkpoint RUN/expert.pt --out RUN/eval...``), labelled by its eval seeds: the run's own
``--env-seed`` gives its training goals, any other seed held-out goals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from ctdkit.data.episode import EpisodeData
from ctdkit.experts import TrainExpertConfig, first_reaching
from ctdkit.experts.online import EPISODES


@dataclass
class Args:
    runs: tyro.conf.Positional[tuple[Path, ...]]
    """Run directories of `python -m ctdkit.train_expert` (holding metrics.json, run.json)."""
    out: Path | None = None
    """Also write the table here (markdown)."""
    recent: int = 100
    """Training episodes (the last ones written) behind the training-success column."""


def reached(evaluations: list[dict[str, Any]], level: float) -> str:
    hit = first_reaching(evaluations, level)
    if hit is None:
        return "not reached"
    cpu = f", {hit['cpu_seconds']:.0f} s CPU" if "cpu_seconds" in hit else ""
    return f"{hit['env_steps'] // 1000}k ({hit['seconds']:.0f} s wall{cpu})"


def changed_settings(fingerprint: dict[str, Any]) -> str:
    """The fingerprint entries that differ from the defaults (seeds have their own column)."""
    defaults = TrainExpertConfig(task=fingerprint["task"]).fingerprint()
    changed = [
        f"{name.removeprefix('sac.')} {value}"
        for name, value in fingerprint.items()
        if name not in ("env_seed", "sac.seed") and defaults.get(name) != value
    ]
    return ", ".join(changed) or "defaults"


def training_success(run: Path, recent: int) -> str:
    shards = sorted((run / EPISODES).glob("*.npz"))[-recent:]
    if not shards:
        return "—"
    success = [EpisodeData.load(shard).metadata["success"] for shard in shards]
    return f"{np.mean(success):.2f} ({len(shards)} ep)"


def final_evaluations(run: Path, env_seed: int) -> str:
    parts = []
    for path in sorted(run.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        for task in summary["tasks"].values():
            goals = "training goals" if summary["seeds"] == [env_seed] else "held-out goals"
            low, high = task["ci95"]
            parts.append(
                f"{task['success']:.2f} [{low:.2f}, {high:.2f}] ({goals}, seed "
                f"{'/'.join(map(str, summary['seeds']))}, {task['n']} ep)"
            )
    return "; ".join(parts) or "—"


def row(run: Path, recent: int) -> str:
    metrics = json.loads((run / "metrics.json").read_text())
    fingerprint = json.loads((run / "run.json").read_text())["fingerprint"]
    evaluations = metrics["evaluations"]
    last = evaluations[-1]
    best = max(e["success"] for e in evaluations)
    return (
        f"| {metrics['task']} | {fingerprint['sac.seed']} / {fingerprint['env_seed']} | "
        f"{changed_settings(fingerprint)} | {last['env_steps'] // 1000}k | "
        f"{training_success(run, recent)} | "
        f"{reached(evaluations, 0.5)} | {reached(evaluations, 0.9)} | "
        f"{last['success']:.2f} (best {best:.2f}; {last['episodes']} ep) | "
        f"{final_evaluations(run, fingerprint['env_seed'])} |"
    )


def main(args: Args) -> None:
    lines = [
        "| task | seed (SAC / env) | settings | env steps | training success, last episodes | "
        "≥ 50% at | ≥ 90% at | last periodic eval | final official eval [Wilson 95% CI] |",
        "|---|---|---|---|---|---|---|---|---|",
        *(row(run, args.recent) for run in args.runs),
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main(tyro.cli(Args))
