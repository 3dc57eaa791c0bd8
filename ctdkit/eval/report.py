"""The success table every CLI prints from an evaluation summary (see ``stats.summarize``)."""

from __future__ import annotations

from rich.table import Table


def success_table(summary: dict, title: str) -> Table:
    """Per-task success with 95% CIs and episode counts, then the mean over tasks."""
    table = Table(title=title)
    for column in ("task", "success", "95% CI", "episodes"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task, row in summary["tasks"].items():
        low, high = row["ci95"]
        table.add_row(task, f"{row['success']:.3f}", f"[{low:.3f}, {high:.3f}]", str(row["n"]))
    low, high = summary["ci95"]
    table.add_row("mean", f"{summary['mean_success']:.3f}", f"[{low:.3f}, {high:.3f}]", "")
    return table
