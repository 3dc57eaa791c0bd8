"""Collect a small multi-task dataset, load it back aligned, and hand it to d3rlpy.

    python examples/collect_and_load.py --tasks reach-v3 push-v3 --episodes-per-task 2

Shows the three things a researcher does first: ``collect`` (real Minari datasets, one per
task), ``load_transitions`` (aligned arrays with task/episode indices and expert labels), and
``to_d3rlpy`` (a correctly aligned ``MDPDataset``), then fits d3rlpy's BC for a few steps.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from ctdkit.collect import CollectConfig, collect
from ctdkit.data import load_transitions, to_d3rlpy


@dataclass
class Args:
    tasks: tuple[str, ...] = ("reach-v3", "push-v3")
    episodes_per_task: int = 2
    max_episode_steps: int = 200
    root: Path = Path("runs/example-datasets")
    bc_steps: int = 200


def main(args: Args) -> None:
    import d3rlpy
    import torch

    torch.set_num_threads(1)
    result = collect(
        CollectConfig(
            tasks=args.tasks,
            episodes_per_task=args.episodes_per_task,
            root=args.root,
            max_episode_steps=args.max_episode_steps,
            dataset_id="example/small-v0",
            overwrite=True,
            ref_episodes=1,
        )
    )
    data = load_transitions(result.group_id, root=result.root)
    print(f"{len(data)} transitions, {data.num_episodes} episodes, tasks {data.tasks}")
    for index, task in enumerate(data.tasks):
        rows = data.task_index == index
        print(f"{task}: {rows.sum()} transitions, success in {data.success[rows].sum()} steps")
    same = data.episode_index[1:] == data.episode_index[:-1]
    assert np.array_equal(data.next_observations[:-1][same], data.observations[1:][same])

    bc = d3rlpy.algos.BCConfig(batch_size=256).create(device="cpu")
    bc.fit(
        to_d3rlpy(data),
        n_steps=args.bc_steps,
        n_steps_per_epoch=args.bc_steps,
        show_progress=False,
        save_interval=10**9,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
    )
    action = bc.predict(data.observations[:1])
    print(
        f"BC action for the first observation: {np.round(action[0], 3)} "
        f"(expert label {np.round(data.expert_action_mean[0], 3)})"
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
