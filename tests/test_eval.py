"""Evaluation: parity with Meta-World's own evaluation, all-goals coverage, histories, CIs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from metaworld.evaluation import evaluation

from ctdkit.errors import CtdkitError
from ctdkit.eval import (
    EpisodeHistory,
    EvalResult,
    MetaWorldAgent,
    RandomAgent,
    ScriptedAgent,
    difference_interval,
    evaluate_all_goals,
    evaluate_official,
    summarize,
    wilson_interval,
)
from ctdkit.eval.protocols import _official_envs
from ctdkit.eval.run import EvaluateConfig, run_evaluation

TASKS = ("reach-v3", "push-v3")


def test_official_protocol_reproduces_metaworld_evaluation():
    ours = evaluate_official(ScriptedAgent(noise=1.0, seed=3), TASKS, seed=1, num_episodes=4)
    envs = _official_envs(TASKS, 1)
    _, _, theirs, their_returns = evaluation(
        MetaWorldAgent(ScriptedAgent(noise=1.0, seed=3), TASKS), envs, num_episodes=4
    )
    assert ours.success_by_task() == pytest.approx(theirs)
    for task in TASKS:
        our_returns = [e["return"] for e in ours.episodes if e["task"] == task]
        np.testing.assert_allclose(our_returns, their_returns[task])
    assert 0 < ours.success_by_task()["push-v3"] < 1  # noise makes the comparison informative
    # an episode ends early only at its first success: every failure runs Meta-World's 500 steps
    assert all(e["length"] == 500 for e in ours.episodes if not e["success"])
    assert any(e["length"] < 500 for e in ours.episodes if e["success"])


def test_all_goals_covers_every_goal_once_deterministically():
    first = evaluate_all_goals(
        ScriptedAgent(), TASKS, seed=7, goals=range(4), max_episode_steps=150
    )
    again = evaluate_all_goals(
        ScriptedAgent(), TASKS, seed=7, goals=range(4), max_episode_steps=150
    )
    assert first.episodes == again.episodes
    for task in TASKS:
        assert sorted(e["goal"] for e in first.episodes if e["task"] == task) == [0, 1, 2, 3]
    assert first.success_by_task() == {"reach-v3": 1.0, "push-v3": 1.0}
    random = evaluate_all_goals(RandomAgent(), TASKS, seed=7, goals=range(4), max_episode_steps=150)
    assert random.mean_success < first.mean_success


class _HistoryChecker:
    """An agent that checks, at every call, that the history matches what really happened."""

    def __init__(self):
        self.inner = ScriptedAgent(noise=0.3, seed=0)
        self.last_obs = self.last_actions = None
        self.checked = self.restarts = 0

    def bind(self, env_tasks):
        self.inner.bind(env_tasks)

    def reset(self, env_mask):
        self.restarted = np.asarray(env_mask)

    def act(self, observations, history):
        steps = history.steps.copy()
        rows = np.arange(len(steps))
        np.testing.assert_allclose(history.observations[rows, steps], observations, rtol=1e-6)
        if self.last_actions is not None:
            advanced = steps == self.last_steps + 1  # envs that executed our last action
            prev = history.actions[rows, np.maximum(steps - 1, 0)]
            np.testing.assert_allclose(prev[advanced], self.last_actions[advanced], rtol=1e-6)
            self.restarts += int(np.sum(steps[self.restarted] == 0))
            self.checked += int(advanced.sum())
        window = history.window(5)
        np.testing.assert_allclose(
            window.observations[rows, window.lengths - 1], observations, rtol=1e-6
        )
        self.last_actions = self.inner.act(observations)
        self.last_steps = steps
        self.restarted = np.zeros(len(steps), dtype=bool)
        return self.last_actions


def test_agents_get_the_true_episode_history_in_both_protocols():
    for run in (
        lambda a: evaluate_official(a, TASKS, seed=2, num_episodes=2),
        lambda a: evaluate_all_goals(a, TASKS, seed=2, goals=[0, 1], max_episode_steps=60),
    ):
        agent = _HistoryChecker()
        run(agent)
        assert agent.checked > 100 and agent.restarts >= 2


def test_history_window_is_left_aligned_padded_and_pairs_actions_with_observations():
    history = EpisodeHistory(num_envs=2, obs_dim=1, action_dim=1, max_steps=10)
    history.start(np.arange(2), np.array([[0.0], [100.0]]))
    for t in range(1, 4):  # env 0 takes 3 steps, env 1 only the first
        rows = np.array([0]) if t > 1 else np.arange(2)
        history.record(
            rows,
            np.full((len(rows), 1), t * 1.0),
            np.full(len(rows), t * 10.0),
            np.full((len(rows), 1), t * 1.0 + 100 * rows[:, None]),
        )
    window = history.window(3)
    np.testing.assert_array_equal(window.lengths, [3, 2])
    np.testing.assert_array_equal(window.observations[0, :, 0], [1, 2, 3])
    np.testing.assert_array_equal(window.actions[0, :, 0], [2, 3, 0])  # current obs: no action yet
    np.testing.assert_array_equal(window.rewards[0], [20, 30, 0])
    np.testing.assert_array_equal(window.observations[1, :, 0], [100, 101, 0])
    np.testing.assert_array_equal(window.actions[1, :, 0], [1, 0, 0])


def test_difference_interval_is_newcombes_hybrid_score_interval():
    """Newcombe (1998), Statistics in Medicine 17:873, table II, method 10: 56/70 vs 48/80
    gives 0.0524 to 0.3339; 0/10 vs 0/10 still leaves room either way."""
    assert difference_interval((56, 48), (70, 80)) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    low, high = difference_interval((0, 0), (10, 10))
    assert low == pytest.approx(-0.2775, abs=1e-4) and high == pytest.approx(0.2775, abs=1e-4)
    low, high = difference_interval((10, 0), (10, 10))
    assert low > 0 and high == pytest.approx(1.0)


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_summary_pools_seeds_per_task_and_per_seed():
    results = [
        evaluate_all_goals(
            RandomAgent(seed=s), ("drawer-close-v3",), seed=s, goals=range(3), max_episode_steps=100
        )
        for s in (0, 1)
    ]
    summary = summarize(results, bootstrap=200)
    row = summary["tasks"]["drawer-close-v3"]
    flags = [e["success"] for r in results for e in r.episodes]
    assert row["n"] == 6 and row["success"] == sum(flags) / 6
    assert row["ci95"] == list(wilson_interval(sum(flags), 6))
    assert summary["per_seed"] == {str(r.seed): r.mean_success for r in results}
    assert summary["mean_success"] == sum(flags) / 6 and summary["seeds"] == [0, 1]


def _results(outcomes: dict[str, list[list[bool]]]) -> list[EvalResult]:
    """One EvalResult per seed from per-task, per-seed success flags."""
    tasks = tuple(outcomes)
    seeds = len(next(iter(outcomes.values())))
    return [
        EvalResult(
            "official",
            seed,
            tasks,
            [
                {"task": t, "success": flag, "return": 0.0, "length": 1}
                for t in tasks
                for flag in outcomes[t][seed]
            ],
        )
        for seed in range(seeds)
    ]


def test_summary_bootstrap_equals_a_hand_computation_on_fixed_data():
    """Stratified percentile bootstrap, written out loop by loop: per resample, each task's
    episodes are redrawn with replacement (same generator, same order of draws), the task means
    averaged; the CI is the 2.5th and 97.5th percentile of those averages."""
    outcomes = {
        "a": [[True, False, True, True, False], [True, True, False]],
        "b": [[False, False, True, False], [False, True]],
    }
    summary = summarize(_results(outcomes), bootstrap=500, seed=7)
    pooled = {t: np.array([f for seed in flags for f in seed]) for t, flags in outcomes.items()}
    rng = np.random.default_rng(7)
    picks = {t: rng.integers(0, len(v), size=(500, len(v))) for t, v in pooled.items()}
    averages = []
    for b in range(500):
        task_means = [pooled[t][picks[t][b]].mean() for t in pooled]
        averages.append(sum(task_means) / len(task_means))
    low, high = np.percentile(averages, [2.5, 97.5])
    assert summary["ci95"] == pytest.approx([low, high], abs=1e-12)
    assert summary["mean_success"] == pytest.approx((5 / 8 + 2 / 6) / 2)
    per_seed = {"0": (3 / 5 + 1 / 4) / 2, "1": (2 / 3 + 1 / 2) / 2}
    assert summary["per_seed"] == pytest.approx(per_seed)
    assert summary["tasks"]["a"] == {"success": 5 / 8, "ci95": list(wilson_interval(5, 8)), "n": 8}
    # the interval is a real one here (not a degenerate point), and the seed is used
    assert 0.2 < high - low < 0.8
    assert summarize(_results(outcomes), bootstrap=500, seed=8)["ci95"] != summary["ci95"]
    # no variance in the data: every resample is the mean itself
    constant = summarize(_results({"a": [[True, True]], "b": [[False, False, False]]}), 100)
    assert constant["ci95"] == [0.5, 0.5]


def test_evaluate_cli_library_writes_per_seed_files_and_resumes(tmp_path):
    config = EvaluateConfig(
        tasks=("reach-v3",), seeds=(0, 1), episodes=2, out=tmp_path, progress=False
    )
    summary = run_evaluation(config)
    assert summary["mean_success"] == 1.0 and summary["seeds"] == [0, 1]
    assert json.loads((tmp_path / "official-seed1.json").read_text())["result"]["seed"] == 1
    again = run_evaluation(config)  # reads the saved seeds back
    assert again["tasks"] == summary["tasks"]
    with pytest.raises(CtdkitError, match=r"different config \(episodes differ\).*another --out"):
        run_evaluation(
            EvaluateConfig(
                tasks=("reach-v3",), seeds=(0,), episodes=3, out=tmp_path, progress=False
            )
        )
