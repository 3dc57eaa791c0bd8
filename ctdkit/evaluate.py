"""``python -m ctdkit.evaluate``: success rates per task with 95% CIs over several seeds."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from ctdkit.eval.run import EvaluateConfig, run_evaluation


def main(config: EvaluateConfig) -> None:
    summary = run_evaluation(config)
    table = Table(title=f"{config.agent} — {summary['protocol']} — seeds {summary['seeds']}")
    for column in ("task", "success", "95% CI", "episodes"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task, row in summary["tasks"].items():
        low, high = row["ci95"]
        table.add_row(task, f"{row['success']:.3f}", f"[{low:.3f}, {high:.3f}]", str(row["n"]))
    low, high = summary["ci95"]
    table.add_row("mean", f"{summary['mean_success']:.3f}", f"[{low:.3f}, {high:.3f}]", "")
    Console().print(table)
    print(f"results in {config.out}/summary.json")


if __name__ == "__main__":
    from ctdkit.cli import run_cli

    sys.exit(run_cli(EvaluateConfig, main, description=__doc__))
