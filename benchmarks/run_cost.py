"""What one benchmark run costs, per algorithm, at a suite's sizes — to plan leaderboard runs.

    python benchmarks/run_cost.py --suite mt10-expert --steps 200
    python benchmarks/run_cost.py --suite mt10-mixed --steps 200 --eval --encoder

Times, on the suite's dataset, networks and batch, the training step of every learner through
the harness's own code paths (``CollectiveSAC.fit``; d3rlpy's ``fit`` with the configs of
``ctdkit.bench.algos``), as seconds per 1000 gradient steps after ``warmup`` steps; with
``--encoder`` also the shared encoder's step and the embedding of every row (ctd conditioning),
with ``--eval`` one evaluation of an untrained agent under the suite's protocol (episodes never
end early, so an upper bound). Threads are pinned and reported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

warnings.filterwarnings("ignore")


@dataclass
class Args:
    suite: str = "mt10-expert"
    """Suite whose dataset, network sizes and batch size are used."""
    steps: int = 200
    """Timed gradient steps per learner."""
    warmup: int = 20
    learners: tuple[str, ...] = ("collective", "collective+critic", "bc", "iql", "td3bc", "cql")
    threads: int = 1
    encoder: bool = False
    """Also time the shared encoder (steps and embedding every row)."""
    eval: bool = False
    """Also time one evaluation (suite protocol and episodes, untrained BC agent)."""
    root: Path | None = None
    json_out: Path | None = None


def _d3rlpy_seconds(learner: str, suite, dataset, inputs, steps: int, warmup: int) -> float:
    import d3rlpy

    from ctdkit.bench.algos import d3rlpy_config

    algo = d3rlpy_config(
        learner, suite.hidden, suite.batch_size, inputs.mean(0), inputs.std(0)
    ).create()
    quiet = dict(
        show_progress=False,
        save_interval=10**9,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
    )
    algo.fit(dataset, n_steps=warmup, n_steps_per_epoch=warmup, **quiet)
    start = time.perf_counter()
    algo.fit(dataset, n_steps=steps, n_steps_per_epoch=steps, **quiet)
    return (time.perf_counter() - start) / steps * 1000


def _collective_seconds(suite, data, context, critic: bool, steps: int, warmup: int) -> float:
    from ctdkit.collective import CollectiveSACConfig

    learner = CollectiveSACConfig(
        conditioning="oracle",
        hidden=suite.hidden,
        batch_size=suite.batch_size,
        actor_lr=suite.collective_lr,
        critic=critic,
    ).create()
    learner.fit(data, warmup, context=context, progress=False)
    start = time.perf_counter()
    learner.fit(data, steps, progress=False)  # n more steps (d3rlpy's meaning)
    return (time.perf_counter() - start) / steps * 1000


def main(args: Args) -> dict:
    from ctdkit.bench.algos import conditioned
    from ctdkit.bench.data import conditioned_dataset, ensure_dataset
    from ctdkit.bench.records import environment
    from ctdkit.bench.suites import get_suite
    from ctdkit.cli import quiet_d3rlpy
    from ctdkit.collective import make_context
    from ctdkit.data import load_transitions

    torch.set_num_threads(args.threads)
    quiet_d3rlpy()
    suite = get_suite(args.suite)
    ensure_dataset(suite.dataset_id, args.root, suite.recipe)
    start = time.perf_counter()
    data = load_transitions(suite.dataset_id, root=args.root)
    result: dict = {"suite": suite.name, "rows": len(data), "hidden": list(suite.hidden)}
    result["load_seconds"] = time.perf_counter() - start
    result["batch_size"] = suite.batch_size
    context = make_context("oracle", data)  # one-hot: the input width of a conditioned run
    rows, next_rows = context.for_transitions(data)
    dataset = conditioned_dataset(data, rows, next_rows, suite.view)
    inputs = conditioned(data.observations, rows, suite.view)
    per_1k = {}
    for learner in args.learners:
        if learner.startswith("collective"):
            critic = learner.endswith("+critic")
            seconds = _collective_seconds(suite, data, context, critic, args.steps, args.warmup)
        else:
            seconds = _d3rlpy_seconds(learner, suite, dataset, inputs, args.steps, args.warmup)
        per_1k[learner] = seconds
        print(f"{learner:18s} {seconds:7.1f} s per 1k steps", flush=True)
    result["train_seconds_per_1k_steps"] = per_1k
    if args.encoder:
        from ctdkit.bench.run import encoder_settings
        from ctdkit.encoder import EncoderConfig

        encoder = EncoderConfig.from_dict(encoder_settings(suite, 0)).create()
        encoder.fit(data, 5, progress=False)
        start = time.perf_counter()
        encoder.fit(data, args.steps // 4, progress=False)
        result["encoder_seconds_per_step"] = (time.perf_counter() - start) / (args.steps // 4)
        start = time.perf_counter()
        make_context("ctd", data, encoder).for_transitions(data)
        result["embed_all_rows_seconds"] = time.perf_counter() - start
        print(f"encoder: {result['encoder_seconds_per_step']:.3f} s/step; embedding all "
              f"{len(data)} rows {result['embed_all_rows_seconds']:.0f} s")  # fmt: skip
    if args.eval:
        import d3rlpy

        from ctdkit.bench.algos import ConditionedAgent, d3rlpy_config
        from ctdkit.eval import evaluate

        algo = d3rlpy_config("bc", suite.hidden, suite.batch_size, inputs.mean(0), inputs.std(0))
        algo = algo.create()
        algo.fit(dataset, n_steps=1, n_steps_per_epoch=1, show_progress=False,
                 logger_adapter=d3rlpy.logging.NoopAdapterFactory())  # fmt: skip
        agent = ConditionedAgent(algo, context, suite.view, "bc-oracle")
        start = time.perf_counter()
        evaluate(agent, data.tasks, suite.protocol, suite.eval_seed_base, **suite.eval_options())
        result["eval_seconds_untrained"] = time.perf_counter() - start
        print(f"evaluation ({suite.protocol}, {suite.eval_episodes} episodes/task, untrained "
              f"agent): {result['eval_seconds_untrained']:.0f} s")  # fmt: skip
    result |= environment()
    print(f"{len(data)} rows; hidden {suite.hidden}; batch {suite.batch_size}; torch threads "
          f"{torch.get_num_threads()}; {result['hardware']['cpu']}")  # fmt: skip
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main(tyro.cli(Args, description=__doc__))
