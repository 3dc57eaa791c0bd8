"""``python -m ctdkit.train_encoder``: train the trajectory transformer, write its weights,
metrics JSON and quality plot (``--resume`` continues a run from its latest checkpoint)."""

from __future__ import annotations

import shlex

from rich.console import Console
from rich.table import Table

from ctdkit.encoder.run import TrainEncoderConfig, TrainEncoderResult, train_encoder


def print_result(result: TrainEncoderResult) -> None:
    console = Console()
    console.print(f"{result.steps} steps ({result.seconds:.1f} s this call) -> {result.weights}")
    if result.metrics is None:
        return
    metrics = result.metrics
    lengths = [str(k) for k in metrics["window_lengths"]]
    table = Table(title=f"held-out linear-probe accuracy ({metrics['view']} view)")
    table.add_column("method")
    for length in lengths:
        table.add_column(f"L={length}", justify="right")
    for method, scores in metrics["methods"].items():
        table.add_row(method, *(f"{scores['linear_probe'][k]:.2f}" for k in lengths))
    console.print(table)
    console.print(f"chance {metrics['chance']:.2f}; metrics {result.metrics_path}")
    console.print(f"plot {result.plot_path}")


def main(config: TrainEncoderConfig) -> None:
    result = train_encoder(config)
    print_result(result)
    command = ["python", "-m", "ctdkit.train_collective", "--dataset-id", config.dataset_id]
    command += ["--encoder", str(result.weights)]
    if config.root is not None:
        command += ["--root", str(config.root)]
    print(f"train a collective agent on it with: {shlex.join(command)}")


if __name__ == "__main__":
    from ctdkit.cli import run_module

    run_module(TrainEncoderConfig, main, "rerun the same command with --resume")
