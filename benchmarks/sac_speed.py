"""Online SAC speed, side by side in one run: ctdkit's expert loop vs. d3rlpy's ``fit_online``.

    python benchmarks/sac_speed.py --steps 1000

Same env (``ctdkit/reach-v3``, 500-step episodes), same networks (256×2 actor and twin
critics), batch 512, one update per env step after ``warmup`` random steps, same replay
capacity. The timed window starts after warm-up and covers acting, env steps, replay writes
and updates (ours also writes each finished episode to disk, as a real run does). Runs
alternate ``repeats`` times and the median is reported. Threads are pinned and reported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import logging
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from ctdkit.envs import make_env
from ctdkit.experts import ExpertTrainer, SACConfig, TrainExpertConfig

warnings.filterwarnings("ignore")
EPISODE = 500


@dataclass
class Args:
    steps: int = 1000
    """Timed env steps per learner (rounded up to whole 500-step episodes)."""
    warmup: int = 1000
    """Random steps before the first update (not timed; whole episodes)."""
    hidden: tuple[int, ...] = (256, 256)
    batch_size: int = 512
    repeats: int = 2
    """Alternating runs per learner; the median rate is reported."""
    threads: int = 1
    task: str = "reach-v3"
    json_out: Path | None = None


def ours_rate(args: Args, sac: SACConfig) -> float:
    """Env steps per second (one update each) of ctdkit's ExpertTrainer after warm-up."""
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainExpertConfig(
            task=args.task, sac=sac, eval_every=0, eval_episodes=0, checkpoint_every=0,
            out_dir=Path(tmp), progress=False,
        )  # fmt: skip
        trainer = ExpertTrainer(config)
        while trainer.env_steps < args.warmup:
            trainer.run_episode()
        start, steps = time.perf_counter(), trainer.env_steps
        while trainer.env_steps < args.warmup + args.steps:
            trainer.run_episode()
        return (trainer.env_steps - steps) / (time.perf_counter() - start)


def d3rlpy_rate(args: Args, sac: SACConfig) -> float:
    """The same for ``d3rlpy.algos.SAC.fit_online`` (timed from the end of warm-up)."""
    import d3rlpy
    import structlog

    # d3rlpy logs every build and epoch through structlog: keep the benchmark's output readable
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    d3rlpy.seed(sac.seed)
    encoder = d3rlpy.models.VectorEncoderFactory(hidden_units=list(sac.hidden))
    algo = d3rlpy.algos.SACConfig(
        batch_size=sac.batch_size,
        gamma=sac.gamma,
        tau=sac.tau,
        actor_learning_rate=sac.actor_lr,
        critic_learning_rate=sac.critic_lr,
        temp_learning_rate=sac.alpha_lr,
        initial_temperature=sac.init_temperature,
        actor_encoder_factory=encoder,
        critic_encoder_factory=encoder,
    ).create(device="cpu:0")
    env = make_env(args.task)
    buffer = d3rlpy.dataset.create_fifo_replay_buffer(limit=sac.buffer_size, env=env)
    marks: dict[int, float] = {}

    def callback(_algo, _epoch, total_step: int) -> None:
        if total_step == args.warmup:
            marks[total_step] = time.perf_counter()

    total = args.warmup + args.steps
    algo.fit_online(
        env,
        buffer,
        n_steps=total,
        n_steps_per_epoch=total,
        update_start_step=args.warmup,
        random_steps=args.warmup,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
        show_progress=False,
        callback=callback,
    )
    return args.steps / (time.perf_counter() - marks[args.warmup])


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    args.steps = -(-args.steps // EPISODE) * EPISODE
    args.warmup = -(-args.warmup // EPISODE) * EPISODE
    sac = SACConfig(hidden=args.hidden, batch_size=args.batch_size, warmup_steps=args.warmup)
    rates: dict[str, list[float]] = {"ctdkit": [], "d3rlpy": []}
    for _ in range(args.repeats):
        rates["ctdkit"].append(ours_rate(args, sac))
        rates["d3rlpy"].append(d3rlpy_rate(args, sac))
    ours, theirs = (statistics.median(rates[k]) for k in ("ctdkit", "d3rlpy"))
    print(
        f"online SAC, {args.task}, nets {list(args.hidden)}, batch {args.batch_size}, UTD 1, "
        f"{args.steps} timed steps after {args.warmup} warm-up, torch threads "
        f"{torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    for name, values in rates.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"  {name:7s} {statistics.median(values):6.1f} env steps/s (= updates/s)  [{shown}]")
    print(f"  ratio ctdkit / d3rlpy: {ours / theirs:.2f}x")
    if args.json_out is not None:
        args.json_out.write_text(json.dumps({"rates": rates, "ratio": ours / theirs}, indent=1))


if __name__ == "__main__":
    main(tyro.cli(Args))
