"""``python -m ctdkit.train_collective``: distil experts into one collective agent conditioned
on a task context (CLS embedding, one-hot oracle, or none); ``--resume`` continues a run."""

from __future__ import annotations

import sys

from ctdkit.collective.run import TrainCollectiveConfig, train_collective


def main(config: TrainCollectiveConfig) -> None:
    result = train_collective(config)
    last = result.history[-1] if result.history else {}
    losses = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "step")
    print(f"{result.steps} steps ({result.seconds:.1f} s this call) -> {result.weights}")
    if losses:
        print(f"final losses: {losses}")
    print(f"evaluate: python -m ctdkit.evaluate --agent collective --checkpoint {result.weights}")


if __name__ == "__main__":
    from ctdkit.cli import run_cli

    sys.exit(run_cli(TrainCollectiveConfig, main, description=__doc__))
