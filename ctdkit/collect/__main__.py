"""``python -m ctdkit.collect``: collect Meta-World rollouts into Minari datasets."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ctdkit.collect import CollectConfig, CollectResult, collect


def print_result(result: CollectResult) -> None:
    table = Table(title=f"{result.group_id}  ({result.seconds:.1f} s)")
    for column in ("task", "episodes", "steps", "success", "mean return"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for t in result.tasks:
        row = (t.task, t.episodes, t.steps, f"{t.success_rate:.2f}", f"{t.mean_return:.1f}")
        table.add_row(*map(str, row))
    Console().print(table)
    print(f"mean success {result.success_rate:.3f}")
    print(f"written to {result.root}: " + ", ".join(t.dataset_id for t in result.tasks))
    print(f"content checksum {result.checksum}")
    print(
        f"load it with: ctdkit.data.load_transitions({result.group_id!r}, "
        f"root={str(result.root)!r})"
    )


def main(config: CollectConfig) -> None:
    print_result(collect(config))


if __name__ == "__main__":
    from ctdkit.cli import run_module

    run_module(CollectConfig, main, "rerun the same command with --resume to finish it")
