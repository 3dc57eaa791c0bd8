"""``python -m ctdkit.train_collective``: distil experts into one collective agent conditioned
on a task context (CLS embedding, one-hot oracle, or none); ``--resume`` continues a run."""

from __future__ import annotations

from ctdkit.collective.run import TrainCollectiveConfig, train_collective
from ctdkit.data import load_datasets
from ctdkit.eval.run import evaluate_command


def main(config: TrainCollectiveConfig) -> None:
    result = train_collective(config)
    last = result.history[-1] if result.history else {}
    losses = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "step")
    print(f"{result.steps} steps ({result.seconds:.1f} s this call) -> {result.weights}")
    if losses:
        print(f"final losses: {losses}")
    tasks = load_datasets(config.dataset_id, config.root).tasks
    print(f"evaluate with: {evaluate_command('collective', result.weights, tasks)}")


if __name__ == "__main__":
    from ctdkit.cli import run_module

    run_module(TrainCollectiveConfig, main, "rerun the same command with --resume")
