"""Collection throughput, side by side in one run: bare env+scripted-policy loop vs.
``ctdkit.collect`` with 1 and 2 workers, and with the Ray backend on 2 CPUs (and the peak RSS
of a larger collection).

    python benchmarks/collect_throughput.py                      # defaults below
    python benchmarks/collect_throughput.py --episodes 20 --rss-steps 100000

The bare loop builds each task's env once and steps the scripted policy, recording nothing;
``collect`` does everything it always does (env build per worker, shards, Minari write,
checksum). Ratios are steps/s relative to the bare loop measured in the same run. The Ray row
runs the same collection as Ray tasks (a local Ray with 2 CPUs, or ``--ray-address``); Ray's
start-up (seconds, once per process or cluster) is timed apart, not in its steps/s. With
``--repeats N`` every row runs N times, interleaved, and keeps its best rate. Peak RSS is
measured in a child process collecting ``rss_steps`` steps, to show memory stays flat.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import tyro

from ctdkit.collect import CollectConfig, collect
from ctdkit.envs import make_env
from ctdkit.policies import ScriptedPolicy

warnings.filterwarnings("ignore")


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
    repeats: int = 1
    """Runs of every row, interleaved; the best steps/s of each is kept (a shared machine)."""
    rss_steps: int = 100_000
    """Steps of the collection whose peak RSS is reported (0 to skip)."""
    json_out: Path | None = None
    """Also write the results here."""


def bare_loop(args: Args) -> tuple[int, float]:
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
    return steps, time.perf_counter() - start


def run_collect(args: Args, workers: int, root: Path, backend: str = "local") -> tuple[int, float]:
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
    return sum(t.steps for t in result.tasks), time.perf_counter() - start


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
    rows: dict[str, float] = {}

    def keep_best(name: str, steps: int, seconds: float) -> None:
        rows[name] = max(rows.get(name, 0.0), steps / seconds)

    with tempfile.TemporaryDirectory() as tmp:
        if args.ray:
            from ctdkit.ray_backend import connect

            start = time.perf_counter()
            ray = connect(args.ray_address, num_cpus=2)
            ray_start = time.perf_counter() - start
            ray_cpus = int(ray.cluster_resources().get("CPU", 0))
        for repeat in range(args.repeats):  # interleaved: a busy spell hits every row alike
            keep_best("bare loop", *bare_loop(args))
            for workers in (1, 2):
                steps, seconds = run_collect(args, workers, Path(tmp) / f"w{workers}-{repeat}")
                keep_best(f"collect, {workers} worker{'s' * (workers > 1)}", steps, seconds)
            if args.ray:
                steps, seconds = run_collect(args, 2, Path(tmp) / f"ray-{repeat}", "ray")
                keep_best(f"collect, ray {ray_cpus} CPUs", steps, seconds)
        rss = peak_rss_mb(args.rss_steps, Path(tmp) / "rss") if args.rss_steps else None
    base = rows["bare loop"]
    print(
        f"tasks {','.join(args.tasks)}; {args.episodes} episodes x {args.max_episode_steps} "
        f"steps per task; torch/OMP threads 1; {os.cpu_count()} CPUs; best of {args.repeats}"
    )
    print(f"{'':22s} {'steps/s':>9s} {'ratio':>7s}")
    for name, rate in rows.items():
        print(f"{name:22s} {rate:9.0f} {rate / base:7.2f}x")
    w1, w2 = rows["collect, 1 worker"], rows["collect, 2 workers"]
    print(f"2 workers / 1 worker: {w2 / w1:.2f}x")
    ray_over_local = None
    if args.ray:
        ray_over_local = rows[f"collect, ray {ray_cpus} CPUs"] / w2
        print(f"ray {ray_cpus} CPUs / local 2 workers: {ray_over_local:.2f}x")
        print(f"(ray start-up, not counted above: {ray_start:.1f} s)")
    if rss is not None:
        print(f"peak RSS of a {args.rss_steps}-step collection (1 worker): {rss:.0f} MB")
    result = {
        "steps_per_s": rows,
        "ratios": {k: v / base for k, v in rows.items()},
        "two_over_one": w2 / w1,
        "ray_over_local_2_workers": ray_over_local,
        "peak_rss_mb": rss,
        "rss_steps": args.rss_steps,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(tyro.cli(Args))
