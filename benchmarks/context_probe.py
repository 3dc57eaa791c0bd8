"""Does the context carry the task, and does the agent use it? (issue #18, item 7)

    python benchmarks/context_probe.py --checkpoint RUN/round-3/collective.pt

For one collective checkpoint, on tasks that share a scene (default: reach, push, pick-place;
reach and pick-place reset to identical observations), under Meta-World's official protocol on
held-out goals:

* **updated** — the context recomputed at every step (how the agent is trained and evaluated);
* **frozen at t=0** — the context of each episode's first observation, held for the episode:
  what the agent can do without anything its own steps reveal;
* **swapped** — every env acts on the context of the next env's episode (reach gets push's,
  push gets pick-place's, pick-place gets reach's): if success holds, the agent ignores its
  context;
* for ``ctd+history``, **CLS frozen at t=0** and **CLS swapped**: the same, on the CLS part
  alone, the raw window staying the agent's own: whether the actor leans on the CLS when the
  window already names the task;
* **probe** — linear-probe task accuracy (balanced: mean recall over tasks) of the context on
  the agent's *own* windows, by step of the episode (softmax regression, trained on the first
  half of the episodes of every task and scored on the second half), beside the same probe on
  the raw history window (last 5 actions and rewards).

Writes ``--out`` (JSON) and prints a table.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro

from ctdkit.collective import CollectiveAgent, CollectiveSAC
from ctdkit.collective.history_context import HistoryContext
from ctdkit.envs.tasks import resolve_tasks
from ctdkit.eval import evaluate
from ctdkit.files import write_json_atomic
from ctdkit.policies.history import EpisodeHistory

#: step buckets of the probe: [first, last] step of the episode
BUCKETS = ((0, 0), (1, 1), (2, 4), (5, 9), (10, 49), (50, 499))


Mode = Literal["updated", "frozen", "swapped", "cls-frozen", "cls-swapped"]


@dataclass
class Args:
    checkpoint: Path
    tasks: tuple[str, ...] = ("reach-v3", "push-v3", "pick-place-v3")
    """Task names or sets (MT10, MT50)."""
    seed: int = 100
    """Evaluation seed (held out: >= 100)."""
    episodes: int = 10
    """Episodes per task of each evaluation."""
    out: Path = Path("runs/context-probe.json")
    modes: tuple[Mode, ...] = ("updated", "frozen", "swapped", "cls-frozen", "cls-swapped")
    """Evaluations to run (each a full one); the cls-* modes only for ctd+history. The probe
    comes with ``updated``."""


class ProbedAgent(CollectiveAgent):
    """The collective, with its context updated / frozen at t=0 / swapped between envs, and
    every (task, step, context, raw window) it acted on recorded for the probe."""

    def __init__(self, learner: CollectiveSAC, mode: str):
        super().__init__(learner)
        self.mode = mode
        self.frozen: np.ndarray | None = None
        self.raw = HistoryContext(5, learner.action_dim)
        self.records: list[tuple[int, int, np.ndarray, np.ndarray]] = []

    def act(self, observations: np.ndarray, history: EpisodeHistory | None) -> np.ndarray:
        contexts = self.learner.context.for_history(history, self.env_tasks)
        steps = history.steps.copy()
        # the columns a mode changes: the whole context, or (cls-*) the CLS part of ctd+history
        part = slice(self.learner.context.cls.dim) if self.mode.startswith("cls-") else slice(None)
        if self.mode in ("frozen", "cls-frozen"):
            if self.frozen is None:
                self.frozen = contexts.copy()
            starting = steps == 0
            self.frozen[starting] = contexts[starting]
            contexts[:, part] = self.frozen[:, part]
        elif self.mode in ("swapped", "cls-swapped"):
            contexts[:, part] = np.roll(contexts[:, part], -1, axis=0)  # env i gets env i+1's
        else:
            raw = self.raw.for_history(history, self.env_tasks)
            for env, step in enumerate(steps):
                self.records.append((env, int(step), contexts[env], raw[env]))
        return self.learner.predict(observations, contexts)


def _softmax_probe(train_x, train_y, test_x, classes: int, seed: int = 0) -> np.ndarray:
    """Predicted classes of a multinomial logistic regression (standardised inputs, L2 1e-3)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    x = torch.as_tensor((train_x - mean) / std, dtype=torch.float32)
    y = torch.as_tensor(train_y)
    torch.manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], classes)
    optim = torch.optim.LBFGS(layer.parameters(), max_iter=200)

    def closure():
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(x), y) + 1e-3 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optim.step(closure)
    with torch.no_grad():
        test = torch.as_tensor((test_x - mean) / std, dtype=torch.float32)
        return layer(test).argmax(1).numpy()


def recall_by_task(predicted: np.ndarray, truth: np.ndarray, tasks: Sequence[str]) -> dict:
    """Per task: the share of its windows the probe names right, and the task it is most often
    taken for (None when never wrong). Their mean is the balanced accuracy: an empty window
    scores chance (1 / tasks) even when the evaluator ran more episodes of one task."""
    result = {}
    for c in np.unique(truth):
        mine = predicted[truth == c]
        wrong = mine[mine != c]
        mistaken_for = tasks[np.bincount(wrong).argmax()] if len(wrong) else None
        result[tasks[c]] = {"recall": float((mine == c).mean()), "mistaken_for": mistaken_for}
    return result


def probe_by_step(records: Sequence[tuple], tasks: Sequence[str], cls_dim: int | None = None):
    """Accuracy per step bucket; an episode is numbered by the step-0 records of its env.

    Columns: the whole context, its CLS part alone (``cls_dim`` given: ctd+history) and the raw
    window (last 5 actions and rewards)."""
    columns = {"context": lambda r: r[3], "raw window": lambda r: r[4]}
    if cls_dim is not None:
        columns["cls"] = lambda r: r[3][:cls_dim]
    episodes: dict[int, int] = {}
    rows = []
    for env, step, context, raw in records:
        if step == 0:
            episodes[env] = episodes.get(env, -1) + 1
        rows.append((env, episodes[env], step, context, raw))
    half = {env: (count + 1) // 2 for env, count in episodes.items()}
    result = {}
    for first, last in BUCKETS:
        chosen = [r for r in rows if first <= r[2] <= last]
        train = [r for r in chosen if r[1] < half[r[0]]]
        test = [r for r in chosen if r[1] >= half[r[0]]]
        if not train or not test:
            continue
        y_train = np.array([r[0] for r in train])
        y_test = np.array([r[0] for r in test])
        bucket: dict = {"windows": len(test)}
        for name, column in columns.items():
            predicted = _softmax_probe(
                np.stack([column(r) for r in train]),
                y_train,
                np.stack([column(r) for r in test]),
                len(tasks),
            )
            by_task = recall_by_task(predicted, y_test, tasks)
            bucket[name] = float(np.mean([t["recall"] for t in by_task.values()]))
            bucket[f"{name} by task"] = by_task
        result[f"{first}-{last}"] = bucket
    return result


def main(args: Args) -> dict:
    torch.set_num_threads(1)
    learner = CollectiveSAC.load(args.checkpoint)
    tasks = list(resolve_tasks(args.tasks))
    report: dict = {
        "checkpoint": str(args.checkpoint),
        "conditioning": learner.config.conditioning,
        "tasks": tasks,
        "seed": args.seed,
        "episodes_per_task": args.episodes,
    }
    with_cls = learner.config.conditioning == "ctd+history"
    modes = [m for m in args.modes if with_cls or not m.startswith("cls-")]
    for mode in modes:
        agent = ProbedAgent(learner, mode)
        result = evaluate(agent, tasks, "official", args.seed, num_episodes=args.episodes)
        report[mode] = result.success_by_task() | {"mean": result.mean_success}
        if mode == "updated":
            cls_dim = learner.context.cls.dim if with_cls else None
            report["probe"] = probe_by_step(agent.records, tasks, cls_dim)
        print(mode, json.dumps(report[mode]), flush=True)
    for bucket, columns in report.get("probe", {}).items():
        means = {k: round(v, 3) for k, v in columns.items() if isinstance(v, float)}
        print("probe", bucket, means, flush=True)
    write_json_atomic(args.out, report, indent=1)
    return report


if __name__ == "__main__":
    main(tyro.cli(Args))
