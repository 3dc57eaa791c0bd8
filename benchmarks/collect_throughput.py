"""Collection throughput, side by side in one run: the bare env+scripted-policy loop vs.
``ctdkit.collect`` with 1 and 2 workers, and with the Ray backend on 2 CPUs (and the peak RSS
of a larger collection).

    python benchmarks/collect_throughput.py \\
        --json-out benchmarks/leaderboard/throughput/collect-cpu.json
    python benchmarks/collect_throughput.py --episodes 30 --no-ray --rss-steps 0

The workload is fixed: ``episodes`` episodes each of reach and push (500 steps). The bare loop
builds each task's env once and steps the scripted policy, recording nothing; ``collect`` does
everything it always does (env build per worker, shards, Minari write, checksum). The rows are
timed interleaved (``timing.interleaved``: every row once per round, the order rotated), each
ratio is taken within a round, and the median and spread over the rounds go to ``--json-out``
with the load average at the start and the end (``benchmarks/render_figures.py`` writes the
docs' table from that file). The Ray row runs the same collection as Ray tasks (a local Ray
with 2 CPUs started afresh for each sample, or ``--ray-address``), interleaved with the local
2-worker row in a second phase: Ray's daemons take CPU while they live, so they must not
overlap the local rows' own rounds. Ray's start-up (seconds, once per process or cluster) is
timed apart, not in its steps/s. Before every collection the process's cached env is dropped,
so each row builds its envs (~1 s each) as a fresh process does: equal work.
Peak RSS is measured in a child process collecting ``rss_steps`` steps, to show memory stays
flat.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import timing  # before torch: pins OMP_NUM_THREADS
import tyro

from ctdkit.collect import CollectConfig, collect
from ctdkit.collect.jobs import clear_env_cache
from ctdkit.envs import make_env
from ctdkit.policies import ScriptedPolicy

warnings.filterwarnings("ignore")
RAY_CPUS = 2


@dataclass
class Args:
    tasks: tuple[str, ...] = ("reach-v3", "push-v3")
    """Tasks to collect."""
    episodes: int = 10
    """Episodes per task for the throughput comparison."""
    max_episode_steps: int = 500
    ray: bool = True
    """Also time the Ray backend (needs `pip install "ctdkit[ray]"`)."""
    ray_address: str | None = None
    """Ray cluster to time instead of a local Ray with 2 CPUs."""
    repeats: int = 3
    """Rounds: every row once per round, interleaved; ratios within a round, median and spread."""
    rss_steps: int = 100_000
    """Steps of the collection whose peak RSS is reported (0 to skip)."""
    json_out: Path | None = None
    """Also write the results here."""


def bare_loop(args: Args) -> float:
    """Steps per second of the bare loop (no recording)."""
    steps, start = 0, time.perf_counter()
    for task in args.tasks:
        env = make_env(task, seed=0, max_episode_steps=args.max_episode_steps)
        policy = ScriptedPolicy(task)
        for episode in range(args.episodes):
            policy.reset(episode)
            obs, _ = env.reset(seed=episode)
            done = False
            while not done:
                obs, _, terminated, truncated, _ = env.step(policy.act(obs).action)
                steps += 1
                done = terminated or truncated
    return steps / (time.perf_counter() - start)


def run_collect(args: Args, workers: int, root: Path, backend: str = "local") -> float:
    """Steps per second of one whole ``collect`` into a fresh ``root``, building its envs as a
    fresh process would (envs cached by an earlier row are dropped first: equal work)."""
    clear_env_cache()
    config = CollectConfig(
        tasks=args.tasks,
        episodes_per_task=args.episodes,
        workers=workers,
        ref_episodes=0,
        max_episode_steps=args.max_episode_steps,
        root=root,
        progress=False,
        dataset_id=f"bench/w{workers}-v0",
        backend=backend,
        ray_address=args.ray_address,
    )
    start = time.perf_counter()
    result = collect(config)
    return sum(t.steps for t in result.tasks) / (time.perf_counter() - start)


def peak_rss_mb(steps: int, root: Path) -> float:
    episodes = max(1, steps // (500 * 2))
    code = (
        "from ctdkit.collect import CollectConfig, collect; "
        f"collect(CollectConfig(tasks=('reach-v3', 'push-v3'), episodes_per_task={episodes}, "
        f"ref_episodes=0, root={str(root)!r}, progress=False, dataset_id='bench/rss-v0'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main(args: Args) -> dict:
    record = timing.conditions(timing.pin_threads(1))
    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(10**6))  # a fresh root per collection

        def local(workers: int) -> float:
            return run_collect(args, workers, Path(tmp) / str(next(runs)))

        rows = {
            "bare loop": lambda: bare_loop(args),
            "collect, 1 worker": lambda: local(1),
            "collect, 2 workers": lambda: local(2),
        }
        samples = timing.interleaved(rows, args.repeats)
        ray_starts: list[float] = []
        ray_row = f"collect, ray {RAY_CPUS} CPUs"
        if args.ray:  # after the local rows: Ray's daemons take CPU while they live

            def on_ray() -> float:
                """A fresh local Ray per sample (its workers would keep their envs from the
                last sample: not equal work); start-up and shut-down are not timed."""
                from ctdkit.ray_backend import connect

                start = time.perf_counter()
                ray = connect(args.ray_address, num_cpus=RAY_CPUS)
                ray_starts.append(time.perf_counter() - start)
                try:
                    return run_collect(args, RAY_CPUS, Path(tmp) / str(next(runs)), "ray")
                finally:
                    if args.ray_address is None:
                        ray.shutdown()

            rows = {"collect, 2 workers (Ray phase)": lambda: local(2), ray_row: on_ray}
            samples |= timing.interleaved(rows, args.repeats)
        rss = peak_rss_mb(args.rss_steps, Path(tmp) / "rss") if args.rss_steps else None
    pairs = {
        "collect, 1 worker / bare loop": ("collect, 1 worker", "bare loop"),
        "collect, 2 workers / bare loop": ("collect, 2 workers", "bare loop"),
        "2 workers / 1 worker": ("collect, 2 workers", "collect, 1 worker"),
    }
    if args.ray:
        pairs[f"ray {RAY_CPUS} CPUs / local 2 workers"] = (
            ray_row,
            "collect, 2 workers (Ray phase)",
        )
    ratios = {name: timing.paired_ratio(samples[a], samples[b]) for name, (a, b) in pairs.items()}
    print(
        f"tasks {','.join(args.tasks)}; {args.episodes} episodes x {args.max_episode_steps} "
        f"steps per task; 1 torch/OMP thread; {os.cpu_count()} CPUs; {args.repeats} rounds; "
        f"load average {record['load_average_start']} -> {timing.load_average()}"
    )
    for name, ratio in ratios.items():
        print(f"{name:34s} {ratio['median']:.2f}x [{ratio['min']:.2f}, {ratio['max']:.2f}]")
    if ray_starts:
        print(f"(ray start-up, not counted above: median {statistics.median(ray_starts):.1f} s)")
    if rss is not None:
        print(f"peak RSS of a {args.rss_steps}-step collection (1 worker): {rss:.0f} MB")
    result = {
        "benchmark": "collect_throughput",
        **record,
        "load_average_end": timing.load_average(),
        "tasks": list(args.tasks),
        "episodes_per_task": args.episodes,
        "max_episode_steps": args.max_episode_steps,
        "repeats": args.repeats,
        "steps_per_second": {name: timing.summary(rates) for name, rates in samples.items()},
        "ratios": ratios,
        "ray_start_seconds": statistics.median(ray_starts) if ray_starts else None,
        "peak_rss_mb": rss,
        "rss_steps": args.rss_steps,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(tyro.cli(Args))
