"""Uncertainty for success rates: per task a Wilson interval (and Newcombe's interval for the
difference of two runs' rates), overall a stratified bootstrap.

A task's success over seeds is a binomial proportion over all its scored episodes (pooled
across seeds), for which the Wilson interval behaves at 0 and 1 where the normal one does not.
The mean over tasks gets a percentile bootstrap that resamples episodes within each task
(stratified), with a fixed seed so the report is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ctdkit.eval.protocols import EvalResult

Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denominator
    half = z * np.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / denominator
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def difference_interval(
    successes: tuple[int, int], trials: tuple[int, int], z: float = Z95
) -> tuple[float, float]:
    """95% interval of ``p1 - p2`` for two success rates (Newcombe's hybrid score interval,
    built from each rate's Wilson interval): like Wilson's, it behaves at 0 and 1, where two
    rates of 1.0 over 10 episodes each still leave room for a difference."""
    (s1, s2), (n1, n2) = successes, trials
    p1, p2 = s1 / n1, s2 / n2
    (l1, u1), (l2, u2) = wilson_interval(s1, n1, z), wilson_interval(s2, n2, z)
    difference = p1 - p2
    below = float(np.hypot(p1 - l1, u2 - p2))
    above = float(np.hypot(u1 - p1, p2 - l2))
    return (difference - below, difference + above)


def summarize(results: Sequence[EvalResult], bootstrap: int = 2000, seed: int = 0) -> dict:
    """Per-task mean success with 95% CI and the overall mean with a stratified-bootstrap CI."""
    tasks = results[0].tasks
    outcomes = {
        task: np.array([e["success"] for r in results for e in r.episodes if e["task"] == task])
        for task in tasks
    }
    per_task = {}
    for task, values in outcomes.items():
        low, high = wilson_interval(int(values.sum()), len(values))
        per_task[task] = {"success": float(values.mean()), "ci95": [low, high], "n": len(values)}
    rng = np.random.default_rng(seed)
    draws = np.zeros(bootstrap)
    for values in outcomes.values():
        picks = rng.integers(0, len(values), size=(bootstrap, len(values)))
        draws += values[picks].mean(axis=1)
    draws /= len(outcomes)
    overall = float(np.mean([v["success"] for v in per_task.values()]))
    return {
        "protocol": results[0].protocol,
        "seeds": [r.seed for r in results],
        "mean_success": overall,
        "ci95": [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))],
        "per_seed": {str(r.seed): r.mean_success for r in results},
        "tasks": per_task,
    }
