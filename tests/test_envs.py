"""Env layer: task sets, seeding that works, observation slices/views, a truthful space."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from ctdkit.envs import (
    MT10,
    MT50,
    OBS_CURRENT,
    OBS_GOAL,
    OBS_HAND,
    OBS_PREVIOUS,
    apply_view,
    make_env,
    resolve_tasks,
    select_slices,
)
from ctdkit.errors import CtdkitError
from ctdkit.policies import ScriptedPolicy


def test_task_sets_are_metaworld_v3():
    assert len(MT10) == 10 and len(MT50) == 50
    assert set(MT10) <= set(MT50)
    assert all(name.endswith("-v3") for name in MT50)
    assert MT10[0] == "reach-v3"


def test_resolve_tasks_expands_sets_names_and_keeps_order():
    assert resolve_tasks("MT10") == MT10
    assert resolve_tasks(["push-v3", "reach-v3", "push-v3"]) == ("push-v3", "reach-v3")
    assert resolve_tasks("reach-v3,mt10")[:2] == ("reach-v3", "push-v3")


def test_unknown_task_lists_valid_names_and_suggests():
    with pytest.raises(CtdkitError) as err:
        resolve_tasks("reachh-v3")
    message = str(err.value)
    assert "unknown task 'reachh-v3'" in message and "'reach-v3'" in message
    assert "\n" not in message


def test_reset_seed_is_honoured_and_construction_seed_fixes_goal_set():
    env = make_env("reach-v3", seed=0, max_episode_steps=10)
    first, _ = env.reset(seed=5)
    env.reset(seed=6)
    again, _ = env.reset(seed=5)
    np.testing.assert_array_equal(first, again)
    goals = {tuple(env.reset(seed=s)[0][OBS_GOAL]) for s in range(20)}
    assert len(goals) > 5  # different episode seeds pick different goal configurations
    other = make_env("reach-v3", seed=1, max_episode_steps=10)
    other_goals = {tuple(other.reset(seed=s)[0][OBS_GOAL]) for s in range(20)}
    assert goals.isdisjoint(other_goals)  # a different env seed has its own 50 goals


@pytest.mark.parametrize("task", ["reach-v3", "pick-place-v3", "button-press-topdown-v3"])
def test_observations_lie_in_the_declared_space(task):
    env = make_env(task, seed=0, max_episode_steps=80)
    policy = ScriptedPolicy(task, noise=0.5)
    space = env.observation_space
    assert np.all(space.high[OBS_GOAL] > space.low[OBS_GOAL])  # Meta-World declares [0, 0]
    for seed in range(3):
        policy.reset(seed)
        obs, _ = env.reset(seed=seed)
        assert space.contains(obs)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(policy.act(obs).action)
            assert space.contains(obs), np.flatnonzero((obs < space.low) | (obs > space.high))
            done = terminated or truncated


def test_named_slices_match_metaworld_state():
    env = make_env("reach-v3", seed=0, max_episode_steps=20)
    obs, _ = env.reset(seed=0)
    unwrapped = env.unwrapped
    np.testing.assert_allclose(obs[OBS_GOAL], unwrapped._target_pos)
    np.testing.assert_allclose(obs[OBS_HAND], unwrapped.get_endeff_pos(), atol=1e-9)
    previous = obs[OBS_CURRENT].copy()
    obs, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32))
    np.testing.assert_array_equal(obs[OBS_PREVIOUS], previous)  # frame stacking
    state = select_slices(obs, ("hand", "gripper", "objects", "goal"))
    assert state.shape == (21,)  # the original's compressed state


def test_goal_hidden_view_zeroes_goal_in_obs_and_space():
    env = make_env("push-v3", seed=0, view="goal-hidden", max_episode_steps=5)
    obs, _ = env.reset(seed=0)
    assert np.all(obs[OBS_GOAL] == 0) and env.observation_space.contains(obs)
    assert np.all(env.observation_space.high[OBS_GOAL] == 0)
    full = make_env("push-v3", seed=0, max_episode_steps=5).reset(seed=0)[0]
    np.testing.assert_array_equal(apply_view(full, "goal-hidden"), obs)
    assert np.any(full[OBS_GOAL] != 0)
    with pytest.raises(CtdkitError, match="unknown observation view"):
        make_env("push-v3", view="no-goal")


def test_spec_rebuilds_the_same_env_from_json():
    env = make_env("drawer-open-v3", seed=4, view="goal-hidden", max_episode_steps=33)
    spec = gym.envs.registration.EnvSpec.from_json(env.spec.to_json())
    assert spec.entry_point == "ctdkit.envs.make:build_metaworld_env"  # a string: serialisable
    rebuilt = gym.make(spec)
    np.testing.assert_array_equal(rebuilt.reset(seed=9)[0], env.reset(seed=9)[0])
    assert rebuilt.spec.max_episode_steps == 33
    assert rebuilt.get_wrapper_attr("task_name") == "drawer-open-v3"


def test_episode_length_limit_is_checked():
    with pytest.raises(CtdkitError, match="max_episode_steps"):
        make_env("reach-v3", max_episode_steps=501)
