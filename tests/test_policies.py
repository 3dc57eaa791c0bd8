"""Experts and the random policy: labels, noise, seeding, and refusal of non-finite actions."""

from __future__ import annotations

import numpy as np
import pytest
from metaworld.policies import ENV_POLICY_MAP

from ctdkit.collect import rollout_episode
from ctdkit.envs import make_env
from ctdkit.errors import CtdkitError
from ctdkit.policies import (
    DEFAULT_LOG_STD_FLOOR,
    Policy,
    PolicyStep,
    RandomPolicy,
    ScriptedPolicy,
    make_policy,
)


def _obs():
    return make_env("push-v3", seed=0, max_episode_steps=10).reset(seed=0)[0]


def test_noise_free_expert_acts_its_label_with_finite_floor_log_std():
    obs = _obs()
    step = ScriptedPolicy("push-v3").act(obs)
    np.testing.assert_array_equal(step.action, step.mean)
    controller = ENV_POLICY_MAP["push-v3"]()  # Meta-World's own controller, clipped to the box
    expected = np.clip(controller.get_action(obs), -1.0, 1.0).astype(np.float32)
    assert step.action.dtype == np.float32 and np.array_equal(step.action, expected)
    np.testing.assert_allclose(step.log_std, DEFAULT_LOG_STD_FLOOR)
    assert np.all(np.isfinite(step.log_std))


def test_noisy_expert_labels_mean_and_log_sigma_and_is_seeded():
    policy = ScriptedPolicy("push-v3", noise=0.5)
    obs = _obs()
    policy.reset(11)
    a = [policy.act(obs).action for _ in range(3)]
    policy.reset(11)
    b = [policy.act(obs).action for _ in range(3)]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    step = policy.act(obs)
    np.testing.assert_allclose(step.log_std, np.log(0.5), rtol=1e-6)
    np.testing.assert_array_equal(step.mean, ScriptedPolicy("push-v3").act(obs).mean)
    assert not np.array_equal(step.action, step.mean)


def test_random_policy_covers_the_action_box():
    policy = RandomPolicy()
    policy.reset(0)
    actions = np.stack([policy.act(None).action for _ in range(2000)])
    assert actions.min() >= -1 and actions.max() <= 1
    assert actions.min() < -0.99 and actions.max() > 0.99
    np.testing.assert_allclose(actions.std(0), 1 / np.sqrt(3), atol=0.03)


def test_policies_satisfy_the_protocol_and_unknown_kind_is_refused():
    assert isinstance(make_policy("scripted", "reach-v3"), Policy)
    assert isinstance(make_policy("random", "reach-v3"), Policy)
    with pytest.raises(CtdkitError, match="unknown policy 'sac2'"):
        make_policy("sac2", "reach-v3")
    with pytest.raises(CtdkitError, match="noise"):
        ScriptedPolicy("reach-v3", noise=-0.1)


class _NaNPolicy:
    name = "nan"

    def reset(self, seed: int) -> None:
        pass

    def act(self, observation):
        bad = np.array([0.0, np.nan, 0.0, 0.0], dtype=np.float32)
        return PolicyStep(action=bad, mean=bad, log_std=np.zeros(4, np.float32))


def test_nan_from_a_policy_is_refused():
    env = make_env("reach-v3", max_episode_steps=5)
    with pytest.raises(CtdkitError, match="policy 'nan' produced a non-finite action"):
        rollout_episode(env, _NaNPolicy(), seed=0)


def test_scripted_reach_succeeds():
    env = make_env("reach-v3", seed=0, max_episode_steps=150)
    policy = ScriptedPolicy("reach-v3")
    successes = [rollout_episode(env, policy, seed).metadata["success"] for seed in range(10)]
    assert np.mean(successes) >= 0.9
    random_successes = [
        rollout_episode(env, RandomPolicy(), seed).metadata["success"] for seed in range(10)
    ]
    assert np.mean(random_successes) < np.mean(successes)


def test_rollout_step_hook_sees_every_transition_as_recorded():
    """The SAC expert learns inside this hook, so what it sees must be what is stored."""
    env = make_env("reach-v3", seed=0, max_episode_steps=40)
    seen = []
    episode = rollout_episode(
        env, RandomPolicy(), seed=3, on_step=lambda *transition: seen.append(transition)
    )
    assert len(seen) == len(episode.actions) == 40
    obs, actions, rewards, next_obs, terminated, truncated = (
        np.array(x) for x in zip(*seen, strict=True)
    )
    np.testing.assert_array_equal(obs, episode.observations[:-1])
    np.testing.assert_array_equal(next_obs, episode.observations[1:])
    np.testing.assert_array_equal(actions, episode.actions)
    np.testing.assert_array_equal(rewards, episode.rewards)
    np.testing.assert_array_equal(terminated, episode.terminations)
    assert truncated[-1] and not truncated[:-1].any()


def test_the_scripted_policy_leaves_the_observation_it_is_given_alone():
    """Meta-World's door-open controller shifts the door's x in the array it gets: a caller
    (the labeller, the DAgger mixture, a step hook) must still see the true observation."""
    from ctdkit.envs import make_env
    from ctdkit.policies import ScriptedPolicy

    env = make_env("door-open-v3", seed=0)
    obs, _ = env.reset(seed=0)
    before = obs.copy()
    ScriptedPolicy("door-open-v3").act(obs)
    env.close()
    np.testing.assert_array_equal(obs, before)


def test_content_digest_covers_weights_and_values_but_not_timings():
    import torch

    from ctdkit.policies.checkpoint import content_digest

    def state(seconds: float, weight: float = 1.0, loss: float = 0.5) -> dict:
        return {
            "weights": {"w": torch.full((2, 3), weight)},
            "history": [{"step": 100, "loss": loss, "seconds": seconds}],
        }

    assert content_digest(state(20.1)) == content_digest(state(1058.7))  # wall clock only
    assert content_digest(state(20.1)) != content_digest(state(20.1, weight=1.0 + 1e-7))
    assert content_digest(state(20.1)) != content_digest(state(20.1, loss=0.25))
    assert content_digest({"w": torch.zeros(6)}) != content_digest({"w": torch.zeros(2, 3)})
