"""``python -m ctdkit.evaluate``: success rates per task with 95% CIs over several seeds."""

from __future__ import annotations

from rich.console import Console

from ctdkit.eval.report import success_table
from ctdkit.eval.run import EvaluateConfig, run_evaluation


def main(config: EvaluateConfig) -> None:
    summary = run_evaluation(config)
    title = f"{config.agent} — {summary['protocol']} — seeds {summary['seeds']}"
    Console().print(success_table(summary, title))
    print(f"results in {config.out}/summary.json")


if __name__ == "__main__":
    from ctdkit.cli import run_module

    run_module(EvaluateConfig, main, "rerun the same command: finished seeds are kept")
