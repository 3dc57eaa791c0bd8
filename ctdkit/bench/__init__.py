"""Benchmark harness: suites of datasets and budgets, ctd and d3rlpy baselines at equal budgets
with the same conditioning, one JSON record per run, and an rliable leaderboard.

``python -m ctdkit.bench run --suite mt10-expert`` trains and evaluates; ``python -m
ctdkit.bench leaderboard`` aggregates the records into ``benchmarks/LEADERBOARD.md``.
"""

from ctdkit.bench.algos import ALGO_IDS, parse_algo
from ctdkit.bench.leaderboard import LeaderboardConfig, build_leaderboard
from ctdkit.bench.run import BenchRunConfig, run_bench
from ctdkit.bench.suites import SUITES, Suite, get_suite

__all__ = [
    "ALGO_IDS",
    "SUITES",
    "BenchRunConfig",
    "LeaderboardConfig",
    "Suite",
    "build_leaderboard",
    "get_suite",
    "parse_algo",
    "run_bench",
]
