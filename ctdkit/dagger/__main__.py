"""``python -m ctdkit.dagger``: DAgger rounds for the collective, then a table of success per
round (screening) and of the final evaluation."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ctdkit.dagger.config import DaggerConfig
from ctdkit.dagger.rounds import run_dagger


def main(config: DaggerConfig) -> None:
    result = run_dagger(config)
    table = Table(
        title=f"DAgger, collective {config.collective.conditioning} ({config.collective.view} "
        f"view), held-out seeds {list(config.eval_seeds)}"
    )
    for column in ("round", "β", "labelled transitions", "actor steps", "success [95% CI]"):
        table.add_column(column, justify="right")
    rows = [(r, r["screening"], "screening") for r in result["rounds"]]
    if result["final"] is not None:
        rows.append((result["rounds"][-1], result["final"], "final"))
    for record, evaluation, kind in rows:
        if evaluation is None:
            score = "-"
        else:
            lo, hi = evaluation["ci"]
            score = (
                f"{evaluation['mean']:.3f} [{lo:.3f}, {hi:.3f}] "
                f"({kind}, {evaluation['episodes_per_task']} ep/task)"
            )
        table.add_row(
            str(record["round"]),
            f"{record['beta']:.3g}",
            str(record["labelled_transitions"]),
            str(record["actor_steps"]),
            score,
        )
    Console().print(table)
    print(f"everything is under {config.out} (rounds.json: every round's record)")


if __name__ == "__main__":
    from ctdkit.cli import run_module

    run_module(DaggerConfig, main, "rerun the same command: finished rounds and stages are kept")
