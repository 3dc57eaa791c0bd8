"""``python -m ctdkit.pipeline``: collect → encoder → collective → evaluate, then print the
success table (small default: 3 tasks, a few minutes on 2 cores)."""

from __future__ import annotations

from rich.console import Console

from ctdkit.eval.report import success_table
from ctdkit.pipeline.run import PipelineConfig, run_pipeline


def main(config: PipelineConfig) -> None:
    summary = run_pipeline(config)
    title = (
        f"collective ({config.conditioning}, {config.view} view) — {summary['protocol']} "
        f"protocol, held-out goals (seeds {summary['seeds']})"
    )
    Console().print(success_table(summary, title))
    print(f"everything is under {config.out} (datasets, encoder, collective, summary.json)")


if __name__ == "__main__":
    from ctdkit.cli import run_module

    run_module(PipelineConfig, main, "rerun the same command: finished stages are kept")
