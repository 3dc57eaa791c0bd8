"""``python -m ctdkit.bench run|leaderboard|reproduce``: run a benchmark suite (one JSON record
per run; finished runs are skipped on rerun), aggregate records into the rliable leaderboard,
or rerun one record's row and say whether it agrees (exit 1 when it differs)."""

from __future__ import annotations

from typing import Annotated

import tyro

from ctdkit.bench.leaderboard import LeaderboardConfig, build_leaderboard
from ctdkit.bench.reproduce import ReproduceConfig, reproduce
from ctdkit.bench.run import BenchRunConfig, run_bench

Command = (
    Annotated[BenchRunConfig, tyro.conf.subcommand("run")]
    | Annotated[LeaderboardConfig, tyro.conf.subcommand("leaderboard")]
    | Annotated[ReproduceConfig, tyro.conf.subcommand("reproduce")]
)


def main(config: BenchRunConfig | LeaderboardConfig | ReproduceConfig) -> None:
    if isinstance(config, ReproduceConfig):
        result = reproduce(config)
        print("\n".join(result.lines()))
        if result.verdict == "differs":
            raise SystemExit(1)
    elif isinstance(config, BenchRunConfig):
        run_bench(config)
        print(f"records under {config.out / 'records'}; aggregate: python -m ctdkit.bench "
              f"leaderboard --records {config.out / 'records'} --suites {config.suite} "
              f"--out {config.out}")  # fmt: skip
    else:
        result = build_leaderboard(config)
        suites = ", ".join(result["suites"])
        print(f"leaderboard of {suites} -> {config.out / 'LEADERBOARD.md'}")
        for error in result["errors"]:
            print(f"left out failed run {error['path']}: {error['error']}")


if __name__ == "__main__":
    from ctdkit.cli import run_module

    run_module(Command, main, "rerun the same command: finished runs are kept")
