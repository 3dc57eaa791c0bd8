"""Learner update speed, side by side in one run: ctdkit's collective learner vs. d3rlpy.

    python benchmarks/learner_speed.py --steps 300

Same data, same 300x300 networks, same batch (512). Rows:
* actor distillation (ours, critic off) vs. d3rlpy ``BC.fit()``  — goal >= 2x
* full update (ours: actor distillation + twin-critic TD) vs. d3rlpy ``SAC.fit()`` — goal >= 1.3x
Each learner runs ``warmup`` steps first (not timed). Threads are pinned and reported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from ctdkit.bench.records import cpu_model
from ctdkit.collect import CollectConfig, collect
from ctdkit.collective import CollectiveSACConfig, make_context
from ctdkit.data import load_transitions, to_d3rlpy

warnings.filterwarnings("ignore")


@dataclass
class Args:
    steps: int = 300
    """Timed updates per learner."""
    warmup: int = 20
    batch_size: int = 512
    threads: int = 1
    json_out: Path | None = None


def _d3rlpy_rate(algo, dataset, steps: int, warmup: int) -> float:
    import d3rlpy

    quiet = dict(
        show_progress=False, save_interval=10**9, logger_adapter=d3rlpy.logging.NoopAdapterFactory()
    )
    algo.fit(dataset, n_steps=warmup, n_steps_per_epoch=warmup, **quiet)
    start = time.perf_counter()
    algo.fit(dataset, n_steps=steps, n_steps_per_epoch=steps, **quiet)
    return steps / (time.perf_counter() - start)


def _ours_rate(config: CollectiveSACConfig, data, steps: int, warmup: int) -> float:
    learner = config.create()
    learner.fit(data, warmup, context=make_context(config.conditioning, data), progress=False)
    start = time.perf_counter()
    learner.fit(data, warmup + steps, progress=False)
    return steps / (time.perf_counter() - start)


def main(args: Args) -> dict:
    import d3rlpy
    from d3rlpy.models.encoders import VectorEncoderFactory

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        result = collect(
            CollectConfig(
                tasks=("reach-v3", "push-v3"),
                episodes_per_task=10,
                ref_episodes=0,
                root=Path(tmp),
                progress=False,
                dataset_id="bench/learner-v0",
            )
        )
        data = load_transitions(result.group_id, root=result.root)
    dataset = to_d3rlpy(data)
    nets = VectorEncoderFactory([300, 300])
    ours = dict(conditioning="none", hidden=(300, 300), batch_size=args.batch_size)
    rates = {
        "ours actor distillation": _ours_rate(
            CollectiveSACConfig(**ours, critic=False), data, args.steps, args.warmup
        ),
        "d3rlpy BC fit()": _d3rlpy_rate(
            d3rlpy.algos.BCConfig(batch_size=args.batch_size, encoder_factory=nets).create(),
            dataset,
            args.steps,
            args.warmup,
        ),
        "ours actor + critic": _ours_rate(
            CollectiveSACConfig(**ours, critic=True), data, args.steps, args.warmup
        ),
        "d3rlpy SAC fit()": _d3rlpy_rate(
            d3rlpy.algos.SACConfig(
                batch_size=args.batch_size, actor_encoder_factory=nets, critic_encoder_factory=nets
            ).create(),
            dataset,
            args.steps,
            args.warmup,
        ),
    }
    ratios = {
        "actor distillation / BC fit": rates["ours actor distillation"] / rates["d3rlpy BC fit()"],
        "actor+critic / SAC fit": rates["ours actor + critic"] / rates["d3rlpy SAC fit()"],
    }
    print(
        f"{len(data)} transitions; batch {args.batch_size}; 300x300 nets; torch threads "
        f"{torch.get_num_threads()}; {os.cpu_count()} CPUs"
    )
    for name, rate in rates.items():
        print(f"{name:26s} {rate:8.1f} updates/s")
    for name, ratio in ratios.items():
        print(f"{name:26s} {ratio:8.2f}x")
    out = {
        "updates_per_s": rates,
        "ratios": ratios,
        "threads": torch.get_num_threads(),
        "hardware": f"{cpu_model()} ({os.cpu_count()} logical CPUs)",
        "batch_size": args.batch_size,
        "hidden": [300, 300],
        "transitions": len(data),
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(tyro.cli(Args))
