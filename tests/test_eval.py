"""Evaluation: parity with Meta-World's own evaluation, all-goals coverage, histories, CIs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from metaworld.evaluation import evaluation

from ctdkit.errors import CtdkitError
from ctdkit.eval import (
    EpisodeHistory,
    MetaWorldAgent,
    RandomAgent,
    ScriptedAgent,
    evaluate_all_goals,
    evaluate_official,
    summarize,
    wilson_interval,
)
from ctdkit.eval.protocols import _official_envs
from ctdkit.eval.run import EvaluateConfig, run_evaluation

TASKS = ("reach-v3", "push-v3")


def test_official_protocol_reproduces_metaworld_evaluation():
    ours = evaluate_official(ScriptedAgent(noise=1.0, seed=3), TASKS, seed=1, num_episodes=8)
    envs = _official_envs(TASKS, 1)
    _, _, theirs, their_returns = evaluation(
        MetaWorldAgent(ScriptedAgent(noise=1.0, seed=3), TASKS), envs, num_episodes=8
    )
    assert ours.success_by_task() == pytest.approx(theirs)
    for task in TASKS:
        our_returns = [e["return"] for e in ours.episodes if e["task"] == task]
        np.testing.assert_allclose(our_returns, their_returns[task])
    assert 0 < ours.success_by_task()["push-v3"] < 1  # noise makes the comparison informative
    assert all(e["length"] <= 500 for e in ours.episodes)


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


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_summary_pools_seeds_and_bootstrap_brackets_the_mean():
    results = [
        evaluate_all_goals(
            RandomAgent(seed=s), ("drawer-close-v3",), seed=s, goals=range(3), max_episode_steps=100
        )
        for s in (0, 1)
    ]
    summary = summarize(results)
    row = summary["tasks"]["drawer-close-v3"]
    assert row["n"] == 6
    low, high = summary["ci95"]
    assert low <= summary["mean_success"] <= high


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
