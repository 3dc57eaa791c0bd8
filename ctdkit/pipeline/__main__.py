"""``python -m ctdkit.pipeline``: collect → encoder → collective → evaluate, then print the
success table (small default: 3 tasks, a few minutes on 2 cores)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from ctdkit.pipeline.run import PipelineConfig, run_pipeline


def main(config: PipelineConfig) -> None:
    summary = run_pipeline(config)
    table = Table(
        title=f"collective ({config.conditioning}, {config.view} view) — {summary['protocol']}"
        f" protocol, held-out goals (seeds {summary['seeds']})"
    )
    for column in ("task", "success", "95% CI", "episodes"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task, row in summary["tasks"].items():
        low, high = row["ci95"]
        table.add_row(task, f"{row['success']:.2f}", f"[{low:.2f}, {high:.2f}]", str(row["n"]))
    low, high = summary["ci95"]
    table.add_row("mean", f"{summary['mean_success']:.2f}", f"[{low:.2f}, {high:.2f}]", "")
    Console().print(table)
    print(f"everything is under {config.out} (datasets, encoder, collective, summary.json)")


if __name__ == "__main__":
    from ctdkit.cli import run_cli

    sys.exit(run_cli(PipelineConfig, main, description=__doc__))
