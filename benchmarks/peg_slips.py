"""Why the collective trails its teacher on peg-insert-side (issue #18): the peg slips in the grasp.

    python -m ctdkit.dagger --tasks peg-insert-side-v3 --collective.conditioning none \\
        --rounds 3 --workers 1 --final-episodes 50 --seed 0 --out runs/peg
    python benchmarks/peg_slips.py --checkpoint runs/peg/round-3/collective.pt

Meta-World's scripted peg policy works in phases read off each observation: 0 move above the
peg, 1 descend to it (and close), 2 carry it to the hole's line, 3 insert. Whenever the peg is no
longer where the hand is (it slid or turned in the fingers), the phase read at the next state
falls back to 0 or 1: we call the first such fall from phase >= 2 a **slip**. On held-out goals
(official protocol, seed >= 100) the script reports, for the given collective, the scripted
teacher and the collective with the teacher **taking over at the first slip**:

* success, the share of episodes that got the peg in hand (phase 2) at all, the share with a
  slip, success after a slip and success without one;
* for the takeover run, success of the episodes that slipped — what the teacher's recovery
  (re-grasp) is worth once the collective has lost the peg.

The phase is the teacher's reading: a learner that holds the peg elsewhere in its fingers
reads as "not in hand", so for a learner the rates are approximate (exact for the teacher).

If the collective succeeds whenever it does not slip and fails after a slip where the teacher
would recover, the missing skill is recovery from a slip, which the teacher's data show rarely.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from ctdkit.collective import CollectiveAgent, CollectiveSAC
from ctdkit.eval import evaluate
from ctdkit.files import write_json_atomic
from ctdkit.policies.agents import ScriptedAgent
from ctdkit.policies.history import EpisodeHistory

TASK = "peg-insert-side-v3"


@dataclass
class Args:
    checkpoint: Path
    """A collective trained on peg-insert-side-v3 (alone or among other tasks)."""
    seed: int = 100
    """Evaluation seed (held out: >= 100)."""
    episodes: int = 30
    out: Path = Path("runs/peg-slips.json")


def peg_phase(observation: np.ndarray) -> int:
    """The scripted policy's phase at this observation (``SawyerPegInsertionSideV3Policy``)."""
    hand, peg, goal = observation[:3], observation[4:7], observation[-3:]
    hole = np.array([-0.35, goal[1], 0.16])
    if np.linalg.norm(hand[:2] - peg[:2]) > 0.04:
        return 0
    if abs(hand[2] - peg[2]) > 0.025:
        return 1
    return 2 if np.linalg.norm(peg[1:] - hole[1:]) > 0.03 else 3


class SlipWatcher:
    """Drives ``agent`` and marks each episode in which the phase fell from >= 2 to <= 1; with
    ``takeover``, the scripted teacher acts from the first slip to the end of the episode."""

    def __init__(self, agent, takeover: bool = False):
        self.agent, self.takeover = agent, takeover
        self.name = f"{agent.name}{'+takeover' if takeover else ''}"
        self.teacher = ScriptedAgent()
        self.slipped: list[bool] = []  # one per finished episode, in order
        self.carried: list[bool] = []  # the episode reached phase 2 (the peg in hand) at all

    def bind(self, env_tasks: Sequence[str]) -> None:
        self.agent.bind(env_tasks)
        self.teacher.bind(env_tasks)
        self.highest = np.zeros(len(env_tasks), dtype=np.int64)
        self.slipping = np.zeros(len(env_tasks), dtype=bool)
        self.started = False

    def reset(self, env_mask: np.ndarray) -> None:
        if self.started:
            self.slipped.extend(bool(s) for s in self.slipping[env_mask])
            self.carried.extend(bool(h >= 2) for h in self.highest[env_mask])
        self.started = True
        self.highest[env_mask] = 0
        self.slipping[env_mask] = False
        self.agent.reset(env_mask)

    def act(self, observations: np.ndarray, history: EpisodeHistory | None) -> np.ndarray:
        phases = np.array([peg_phase(o) for o in observations])
        self.slipping |= (self.highest >= 2) & (phases <= 1)
        self.highest = np.maximum(self.highest, phases)
        actions = self.agent.act(observations, history)
        if self.takeover and self.slipping.any():
            actions = np.where(self.slipping[:, None], self.teacher.act(observations), actions)
        return actions


def _rate(values: list[bool]) -> float | None:
    return float(np.mean(values)) if values else None


def measure(agent, seed: int, episodes: int, takeover: bool = False) -> dict:
    watcher = SlipWatcher(agent, takeover)
    result = evaluate(watcher, (TASK,), "official", seed, num_episodes=episodes)
    success = [e["success"] for e in result.episodes]
    slipped = watcher.slipped[: len(success)]
    carried = watcher.carried[: len(success)]
    after = [s for s, slip in zip(success, slipped, strict=True) if slip]
    without = [s for s, slip in zip(success, slipped, strict=True) if not slip]
    return {
        "agent": watcher.name,
        "success": _rate(success),
        "carry_rate": _rate(carried),
        "slip_rate": _rate(slipped),
        "slips": len(after),
        "success_after_slip": _rate(after),
        "success_without_slip": _rate(without),
    }


def main(args: Args) -> dict:
    torch.set_num_threads(1)
    learner = CollectiveSAC.load(args.checkpoint)
    rows = [
        measure(ScriptedAgent(), args.seed, args.episodes),
        measure(CollectiveAgent(learner), args.seed, args.episodes),
        measure(CollectiveAgent(learner), args.seed, args.episodes, takeover=True),
    ]
    print(f"{'agent':32s} success  carry  slip  success|slip  success|no slip")
    for r in rows:
        cells = [r["success"], r["carry_rate"], r["slip_rate"]]
        cells += [r["success_after_slip"], r["success_without_slip"]]
        print(f"{r['agent']:32s} " + "  ".join("  -  " if c is None else f"{c:.2f}" for c in cells))
    report = {
        "checkpoint": str(args.checkpoint),
        "task": TASK,
        "seed": args.seed,
        "episodes": args.episodes,
        "rows": rows,
    }
    write_json_atomic(args.out, report, indent=1)
    return report


if __name__ == "__main__":
    main(tyro.cli(Args))
