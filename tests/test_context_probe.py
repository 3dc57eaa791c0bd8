"""``benchmarks/context_probe.py``'s modes change exactly the context columns they name: the
whole context, or for ``ctd+history`` the CLS part alone with the raw window kept."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scripts import load_script

from ctdkit.policies.history import EpisodeHistory

PROBE = load_script("benchmarks/context_probe.py")
CLS_DIM, RAW_DIM, ENVS = 2, 3, 3


class _Context:
    """Env e at step t: CLS columns 10·e + t, raw-window columns 100·e + t."""

    cls = SimpleNamespace(dim=CLS_DIM)

    def for_history(self, history, env_tasks):
        env = np.arange(ENVS)[:, None]
        t = history.steps[:, None]
        return np.concatenate(
            [np.repeat(10 * env + t, CLS_DIM, 1), np.repeat(100 * env + t, RAW_DIM, 1)], 1
        ).astype(np.float32)


def _learner():
    return SimpleNamespace(
        config=SimpleNamespace(conditioning="ctd+history"),
        action_dim=4,
        context=_Context(),
        predict=lambda observations, contexts: contexts,  # the agent's action is its context
    )


@pytest.mark.parametrize(
    ("mode", "cls_step1", "raw_step1"),
    [
        ("updated", [[1, 1], [11, 11], [21, 21]], [[1] * 3, [101] * 3, [201] * 3]),
        ("frozen", [[0, 0], [10, 10], [20, 20]], [[0] * 3, [100] * 3, [200] * 3]),
        ("swapped", [[11, 11], [21, 21], [1, 1]], [[101] * 3, [201] * 3, [1] * 3]),
        ("cls-frozen", [[0, 0], [10, 10], [20, 20]], [[1] * 3, [101] * 3, [201] * 3]),
        ("cls-swapped", [[11, 11], [21, 21], [1, 1]], [[1] * 3, [101] * 3, [201] * 3]),
    ],
)
def test_each_mode_changes_the_columns_it_names(mode, cls_step1, raw_step1):
    agent = PROBE.ProbedAgent(_learner(), mode)
    agent.bind(["reach-v3", "push-v3", "pick-place-v3"])
    history = EpisodeHistory(ENVS, 2, 4, 10)
    env = np.arange(ENVS)
    history.start(env, np.zeros((ENVS, 2)))
    agent.act(np.zeros((ENVS, 2)), history)  # step 0
    history.record(env, np.zeros((ENVS, 4)), np.zeros(ENVS), np.zeros((ENVS, 2)))
    contexts = agent.act(np.zeros((ENVS, 2)), history)  # step 1
    np.testing.assert_array_equal(contexts[:, :CLS_DIM], cls_step1)
    np.testing.assert_array_equal(contexts[:, CLS_DIM:], raw_step1)


def test_probe_scores_each_column_and_names_what_a_task_is_taken_for():
    """The CLS part names the task, the raw window is one constant: the CLS column scores 1.0,
    the raw window chance, and the whole context (which contains the CLS) 1.0."""
    tasks = ["reach-v3", "push-v3", "pick-place-v3"]
    rng = np.random.default_rng(0)
    records = []
    for _episode in range(4):
        for env in range(3):
            for step in range(3):
                cls = np.eye(3)[env] * 5 + rng.normal(0, 0.1, 3)
                records.append((env, step, np.concatenate([cls, [7.0]]), np.zeros(2)))
    probe = PROBE.probe_by_step(records, tasks, cls_dim=3)
    assert set(probe) == {"0-0", "1-1", "2-4"}
    for bucket in probe.values():
        assert bucket["cls"] == 1.0 and bucket["context"] == 1.0
        assert bucket["raw window"] == pytest.approx(1 / 3)
        assert bucket["cls by task"]["push-v3"] == {"recall": 1.0, "mistaken_for": None}
        wrong = [t for t, r in bucket["raw window by task"].items() if r["recall"] == 0.0]
        assert all(bucket["raw window by task"][t]["mistaken_for"] in tasks for t in wrong)
