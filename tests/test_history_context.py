"""The ``history`` context: hand-computed vectors, training rows equal to act time step for
step, a learner that saves and loads with it, and the bench ids ``history`` / ``bc-history``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ctdkit.bench.algos import ConditionedAgent, conditioned, parse_algo
from ctdkit.collective import CollectiveAgent, CollectiveSACConfig, make_context
from ctdkit.collective.context import load_context
from ctdkit.collective.history_context import REWARD_SCALE, HistoryContext
from ctdkit.collective.learner import CollectiveSAC
from ctdkit.data import Transitions
from ctdkit.errors import CtdkitError
from ctdkit.pipeline.run import PipelineConfig
from ctdkit.policies.history import EpisodeHistory

OBS_DIM, ACTION_DIM = 39, 4


def transitions(lengths, action_dim: int = ACTION_DIM, seed: int = 0) -> Transitions:
    """Random episodes of the given lengths, rows contiguous and in step order."""
    rng = np.random.default_rng(seed)
    rows = int(sum(lengths))
    return Transitions(
        observations=rng.normal(size=(rows, OBS_DIM)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(rows, action_dim)).astype(np.float32),
        rewards=rng.uniform(0, 10, size=rows).astype(np.float32),
        next_observations=rng.normal(size=(rows, OBS_DIM)).astype(np.float32),
        terminated=np.zeros(rows, bool),
        truncated=np.zeros(rows, bool),
        task_index=np.repeat(np.arange(len(lengths)) % 2, lengths).astype(np.int64),
        episode_index=np.repeat(np.arange(len(lengths)), lengths).astype(np.int64),
        step_index=np.concatenate([np.arange(n) for n in lengths]).astype(np.int64),
        expert_action_mean=rng.uniform(-1, 1, size=(rows, action_dim)).astype(np.float32),
        expert_action_log_std=np.full((rows, action_dim), -1.0, np.float32),
        success=np.zeros(rows, bool),
        tasks=("reach-v3", "push-v3"),
        dataset_id="synthetic-v0",
    )


def test_hand_computed_context_pads_marks_validity_and_stops_at_the_episode_boundary():
    data = transitions([3, 2], action_dim=2)
    data.actions[:] = np.arange(10, dtype=np.float32).reshape(5, 2) / 10  # row r: .2r, .2r+.1
    data.rewards[:] = [1.0, 2.0, 3.0, 4.0, 5.0]
    context = HistoryContext(steps=2, action_dim=2)
    assert context.dim == 2 * (2 + 2) and REWARD_SCALE == 10.0

    def slot(row):  # [action, reward / 10, valid] of one past step
        return [*data.actions[row], data.rewards[row] / 10, 1.0]

    empty = [0.0] * 4
    expected = [
        empty + empty,  # row 0: no past steps
        empty + slot(0),  # newest step in the last slot
        slot(0) + slot(1),
        empty + empty,  # row 3 starts episode 1: nothing of episode 0 leaks in
        empty + slot(3),
    ]
    expected_next = [
        empty + slot(0),  # the row's own action and reward
        slot(0) + slot(1),
        slot(1) + slot(2),
        empty + slot(3),
        slot(3) + slot(4),
    ]
    rows, next_rows = context.for_transitions(data)
    assert rows.dtype == np.float32 and rows.shape == (5, 8)
    np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-7)
    np.testing.assert_allclose(next_rows, expected_next, rtol=0, atol=1e-7)
    shuffled = dataclasses.replace(data, step_index=data.step_index[::-1].copy())
    with pytest.raises(CtdkitError, match="not grouped by episode in step order"):
        context.for_transitions(shuffled)
    split = dataclasses.replace(data, episode_index=np.array([0, 0, 1, 1, 0]))
    with pytest.raises(CtdkitError, match="not grouped by episode"):
        context.for_transitions(split)
    with pytest.raises(CtdkitError, match="built for 2-dim actions, data has 4"):
        context.for_transitions(transitions([2]))


@pytest.mark.parametrize("steps", [1, 5])
def test_training_rows_equal_act_time_for_every_step(steps):
    """Every episode replayed into one batched EpisodeHistory (an env per episode, envs
    advancing unevenly) gives exactly the training row's context at each step, and after the
    last step the row's next context."""
    lengths = [1, 4, 9, 13]
    data = transitions(lengths, seed=1)
    context = make_context("history", data, history_steps=steps)
    rows, next_rows = context.for_transitions(data)
    starts = np.cumsum([0, *lengths[:-1]])
    same_episode = data.episode_index[1:] == data.episode_index[:-1]
    np.testing.assert_array_equal(next_rows[:-1][same_episode], rows[1:][same_episode])
    history = EpisodeHistory(len(lengths), OBS_DIM, ACTION_DIM, max(lengths))
    history.start(np.arange(len(lengths)), data.observations[starts])
    for t in range(max(lengths) + 1):
        now = context.for_history(history, data.tasks)
        for env, (start, length) in enumerate(zip(starts, lengths, strict=True)):
            if t < length:
                np.testing.assert_array_equal(now[env], rows[start + t])
            elif t == length:
                np.testing.assert_array_equal(now[env], next_rows[start + t - 1])
        live = np.array([env for env, n in enumerate(lengths) if t < n])
        if len(live):
            row = starts[live] + t
            history.record(live, data.actions[row], data.rewards[row], data.next_observations[row])


def test_config_make_context_and_pipeline_accept_history():
    data = transitions([3])
    assert make_context("history", data).dim == 5 * (ACTION_DIM + 2)  # the default k = 5
    assert make_context("history", data, history_steps=2).state() == {
        "mode": "history",
        "steps": 2,
        "action_dim": ACTION_DIM,
    }
    assert CollectiveSACConfig(conditioning="history").history_steps == 5
    with pytest.raises(CtdkitError, match=r"history_steps must be in 1\.\.10000, got 0"):
        CollectiveSACConfig(conditioning="history", history_steps=0)
    assert PipelineConfig(conditioning="history").conditioning == "history"
    with pytest.raises(CtdkitError, match="--conditioning must be ctd, oracle, none, history"):
        PipelineConfig(conditioning="cls")
    for bad in ({"steps": "5", "action_dim": 4}, {"steps": 3, "action_dim": True}):
        with pytest.raises(ValueError, match="must be an int"):
            load_context({"mode": "history", **bad})


@pytest.fixture(scope="module")
def learner():
    data = transitions([6, 8, 5], seed=2)
    config = CollectiveSACConfig(
        conditioning="history", history_steps=3, hidden=(16, 16), batch_size=16, seed=0
    )
    learner = config.create()
    context = make_context("history", data, history_steps=config.history_steps)
    learner.fit(data, 3, context=context, progress=False)
    return learner, data


def test_history_learner_saves_loads_and_acts_the_same(learner, tmp_path):
    learner, data = learner
    path = tmp_path / "collective.pt"
    learner.save(path)
    assert torch.load(path, weights_only=True)["context"] == {
        "mode": "history",
        "steps": 3,
        "action_dim": ACTION_DIM,
    }
    loaded = CollectiveSAC.load(path)
    assert isinstance(loaded.context, HistoryContext) and loaded.context.dim == 3 * 6
    assert loaded.config == learner.config
    rows, _ = learner.context.for_transitions(data)
    np.testing.assert_array_equal(
        loaded.predict(data.observations, rows), learner.predict(data.observations, rows)
    )
    history = EpisodeHistory(2, OBS_DIM, ACTION_DIM, 10)
    history.start(np.arange(2), data.observations[:2])
    history.record(np.array([1]), data.actions[:1], data.rewards[:1], data.next_observations[:1])
    agents = [CollectiveAgent(learner), CollectiveAgent(loaded)]
    for agent in agents:
        agent.bind(["reach-v3", "push-v3"])
    assert agents[0].name == "collective-history"
    np.testing.assert_array_equal(
        agents[0].act(data.observations[:2], history), agents[1].act(data.observations[:2], history)
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"steps": -1}, "history steps must be an int"),
        ({"steps": 10**9}, "history steps must be an int"),
        ({"action_dim": 4.0}, "history action_dim must be an int"),
        ({"action_dim": None}, "'action_dim'"),  # missing
    ],
)
def test_a_damaged_history_state_is_a_one_line_error(learner, tmp_path, change, reason):
    learner, _ = learner
    path = tmp_path / "collective.pt"
    learner.save(path)
    state = torch.load(path, weights_only=True)
    state["context"].update(change)
    state["context"] = {k: v for k, v in state["context"].items() if v is not None}
    torch.save(state, path)
    with pytest.raises(CtdkitError, match=r"collective checkpoint .* is damaged") as error:
        CollectiveSAC.load(path)
    assert reason in str(error.value) and "\n" not in str(error.value)


def test_history_and_bc_history_are_bench_algorithms():
    assert parse_algo("history") == parse_algo("history").__class__(
        "history", "collective", "history"
    )
    bc = parse_algo("bc-history")
    assert (bc.learner, bc.conditioning) == ("bc", "history")
    assert parse_algo("iql-history").learner == "iql"


def test_bench_agent_acts_on_the_features_it_was_trained_on():
    """``bc-history`` at act time: ``[history features, observation]`` from the evaluator's
    history, equal to the training rows of the same steps."""
    data = transitions([7], seed=3)
    context = make_context("history", data)
    rows, _ = context.for_transitions(data)
    inputs = conditioned(data.observations, rows, "goal-hidden")

    class Recorder:  # stands in for a d3rlpy algorithm: keeps what predict was given
        def predict(self, x):
            self.x = x
            return np.zeros((len(x), ACTION_DIM), np.float32)

    recorder = Recorder()
    agent = ConditionedAgent(recorder, context, "goal-hidden", "bc-history")
    agent.bind(["reach-v3"])
    history = EpisodeHistory(1, OBS_DIM, ACTION_DIM, 7)
    history.start(0, data.observations[0])
    for t in range(7):
        agent.act(data.observations[t][None], history)
        np.testing.assert_array_equal(recorder.x[0], inputs[t])
        history.record(
            np.array([0]),
            data.actions[t][None],
            data.rewards[t][None],
            data.next_observations[t][None],
        )


def test_tiny_bench_runs_history_and_bc_history(tmp_path, monkeypatch):
    """The tiny suite, cut to 20 steps, one seed and one goal per task, runs both ids."""
    import d3rlpy

    from ctdkit.bench import BenchRunConfig, run_bench
    from ctdkit.bench import suites as suites_module
    from ctdkit.bench.records import load_records

    suite = dataclasses.replace(suites_module.get_suite("tiny"), n_steps=20, eval_episodes=1)
    monkeypatch.setitem(suites_module.SUITES, "tiny", suite)
    config = BenchRunConfig(
        suite="tiny",
        algos=("history", "bc-history"),
        seeds=(0,),
        out=tmp_path / "runs",
        root=tmp_path / "minari",
        workers=1,
        progress=False,
    )
    result = run_bench(config)
    assert [r["status"] for r in result.results] == ["ok", "ok"], result.results
    records = {r["algo"]: r for r in load_records([config.out / "records"])}
    assert {a: (r["learner"], r["conditioning"]) for a, r in records.items()} == {
        "history": ("collective", "history"),
        "bc-history": ("bc", "history"),
    }
    assert all(r["encoder"] is None for r in records.values())  # no encoder is trained
    models = config.out / "models" / "tiny"
    bc = d3rlpy.load_learnable(str(models / "bc-history" / "all" / "seed0" / "bc.d3"))
    assert tuple(bc.observation_shape) == (5 * (ACTION_DIM + 2) + OBS_DIM,)
    collective = CollectiveSAC.load(models / "history" / "all" / "seed0" / "collective.pt")
    assert collective.context.state() == {"mode": "history", "steps": 5, "action_dim": ACTION_DIM}
