"""The collective agent's success table: ctd / oracle / none × observation views × seeds.

    python benchmarks/collective_mt10.py --dataset-id ctdkit/mt10-scripted-noise0p5-v0 \
        --seeds 0 1 2 --n-steps 10000 --out runs/collective-mt10

For every training seed ``s``: one trajectory encoder (goal-hidden view, so its CLS context can
never carry the goal into either agent), then one collective agent per (view, conditioning),
each evaluated with Meta-World's official protocol on held-out goals (evaluation seed
``eval_seed_base + s``). The scripted experts run through the same protocol as the reference
row. Every stage is resumable: rerunning skips what is finished (a stage's output exists).
Writes ``table.md`` and ``table.json`` under ``--out``.

The actor's updates do not depend on the critic (separate losses, separate batch generator;
tested in tests/test_collective.py), so ``--no-critic`` (the default here) gives the very same
policy in a quarter of the time; pass ``--critic`` to train the twin critics too.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from ctdkit.collective import CollectiveSACConfig
from ctdkit.collective.run import TrainCollectiveConfig, train_collective
from ctdkit.encoder import EncoderConfig
from ctdkit.encoder.run import TrainEncoderConfig, train_encoder
from ctdkit.eval.protocols import EvalResult
from ctdkit.eval.run import EvaluateConfig, run_evaluation
from ctdkit.eval.stats import summarize


@dataclass
class Args:
    dataset_id: str = "ctdkit/mt10-scripted-noise0p5-v0"
    tasks: tuple[str, ...] = ("MT10",)
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds (encoder and collective); evaluation seed = eval_seed_base + seed."""
    eval_seed_base: int = 100
    views: tuple[str, ...] = ("full", "goal-hidden")
    conditionings: tuple[str, ...] = ("ctd", "oracle", "none")
    n_steps: int = 10_000
    actor_lr: float = 1e-3
    critic: bool = False
    encoder_steps: int = 600
    encoder_lr: float = 1e-3
    encoder_batch_size: int = 64
    episodes: int = 10
    """Official-protocol episodes per task and evaluation seed."""
    out: Path = Path("runs/collective-mt10")
    threads: int = 1


def _eval(agent: str, checkpoint: Path | None, args: Args, seed: int, out: Path) -> dict:
    config = EvaluateConfig(
        agent=agent,
        checkpoint=checkpoint,
        tasks=args.tasks,
        seeds=(args.eval_seed_base + seed,),
        episodes=args.episodes,
        out=out,
        progress=False,
    )
    return run_evaluation(config)


def _results(out: Path) -> list[EvalResult]:
    return [EvalResult(**json.loads(p.read_text())["result"]) for p in out.glob("official-*.json")]


def run(args: Args) -> dict:
    torch.set_num_threads(args.threads)
    cells: dict[str, list[EvalResult]] = {}
    seconds: dict[str, float] = {}
    for seed in args.seeds:
        encoder_dir = args.out / f"encoder-seed{seed}"
        if "ctd" in args.conditionings and not (encoder_dir / "encoder.pt").exists():
            start = time.perf_counter()
            train_encoder(
                TrainEncoderConfig(
                    dataset_id=args.dataset_id,
                    encoder=EncoderConfig(
                        view="goal-hidden",
                        lr=args.encoder_lr,
                        batch_size=args.encoder_batch_size,
                        attention_dropout=0.0,
                    ),
                    n_steps=args.encoder_steps,
                    seed=seed,
                    out_dir=encoder_dir,
                    metrics=False,
                    overwrite=True,
                    progress=False,
                )
            )
            seconds[f"encoder-seed{seed}"] = time.perf_counter() - start
        for view in args.views:
            for conditioning in args.conditionings:
                name = f"{view}-{conditioning}"
                run_dir = args.out / f"{name}-seed{seed}"
                weights = run_dir / "collective.pt"
                if not weights.exists():
                    start = time.perf_counter()
                    train_collective(
                        TrainCollectiveConfig(
                            dataset_id=args.dataset_id,
                            collective=CollectiveSACConfig(
                                conditioning=conditioning,
                                view=view,
                                actor_lr=args.actor_lr,
                                critic=args.critic,
                                seed=seed,
                            ),
                            encoder=encoder_dir / "encoder.pt" if conditioning == "ctd" else None,
                            n_steps=args.n_steps,
                            out_dir=run_dir,
                            resume=run_dir.exists(),
                            progress=False,
                        )
                    )
                    seconds[f"{name}-seed{seed}"] = time.perf_counter() - start
                _eval("collective", weights, args, seed, run_dir / "eval")
                cells.setdefault(name, []).extend(_results(run_dir / "eval"))
                print(f"seed {seed} {name}: {cells[name][-1].mean_success:.3f}", flush=True)
        _eval("scripted", None, args, seed, args.out / "scripted-eval")
    cells["scripted"] = _results(args.out / "scripted-eval")
    table = {name: summarize(results) for name, results in cells.items()}
    (args.out / "table.json").write_text(json.dumps({"cells": table, "seconds": seconds}, indent=1))
    (args.out / "table.md").write_text(markdown(table, args))
    print(markdown(table, args))
    return table


def markdown(table: dict, args: Args) -> str:
    """Per-task success pooled over seeds [Wilson 95% CI], and the mean over tasks with its
    stratified-bootstrap 95% CI."""
    columns = [c for c in table if c != "scripted"] + ["scripted"]
    tasks = list(next(iter(table.values()))["tasks"])
    lines = [
        f"Dataset `{args.dataset_id}`, {args.n_steps} actor steps, seeds {list(args.seeds)}, "
        f"official protocol, {args.episodes} episodes/task/seed on held-out goals.",
        "",
        "| task | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for task in tasks:
        cells = [table[c]["tasks"][task] for c in columns]
        row = [f"{t['success']:.2f} [{t['ci95'][0]:.2f}, {t['ci95'][1]:.2f}]" for t in cells]
        lines.append(f"| {task} | " + " | ".join(row) + " |")
    mean = [
        f"**{table[c]['mean_success']:.3f}** [{table[c]['ci95'][0]:.2f}, {table[c]['ci95'][1]:.2f}]"
        for c in columns
    ]
    lines.append("| **mean** [95% CI] | " + " | ".join(mean) + " |")
    per_seed = [" / ".join(f"{v:.2f}" for v in table[c]["per_seed"].values()) for c in columns]
    lines.append("| per seed | " + " | ".join(per_seed) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    run(tyro.cli(Args))
