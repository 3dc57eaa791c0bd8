"""Parity with references built outside ctdkit's own code paths.

* MT10: ctdkit's ``official`` protocol against ``metaworld.evaluation.evaluation`` run on the
  vector env Meta-World itself builds (``gym.make_vec("Meta-World/MT10", ...)``), for a noisy
  scripted agent whose noise depends only on (env, episode, step), so both loops draw the same.
* Collective resume with the critic on: k steps, save, load, N - k more steps equals N steps
  straight, parameter for parameter and optimiser state for optimiser state.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from metaworld.env_dict import ALL_V3_ENVIRONMENTS
from metaworld.evaluation import evaluation
from metaworld.policies import ENV_POLICY_MAP

from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.collective.context import make_context
from ctdkit.collective.learner import CollectiveSAC
from ctdkit.envs.tasks import MT10
from ctdkit.eval.protocols import evaluate_official


class NoisyScripted:
    """Meta-World's scripted controllers plus Gaussian noise drawn from
    ``default_rng([seed, env, episode, step])``: the actions depend on what each env has seen,
    never on how a loop batches its calls. Speaks both interfaces: ctdkit's (``bind``, ``reset``,
    ``act``) and Meta-World's (``eval_action``, ``reset``)."""

    def __init__(self, tasks: Sequence[str], noise: float, seed: int):
        self.controllers = [ENV_POLICY_MAP[task]() for task in tasks]
        self.tasks, self.noise, self.seed = tuple(tasks), noise, seed
        self.episode = np.full(len(tasks), -1)
        self.step = np.zeros(len(tasks), dtype=np.int64)

    def bind(self, env_tasks: Sequence[str]) -> None:
        assert tuple(env_tasks) == self.tasks

    def reset(self, env_mask: np.ndarray) -> None:
        mask = np.asarray(env_mask, dtype=bool)
        self.episode[mask] += 1
        self.step[mask] = 0

    def act(self, observations: np.ndarray, history=None) -> np.ndarray:
        actions = np.empty((len(observations), 4))
        for i, (controller, obs) in enumerate(zip(self.controllers, observations, strict=True)):
            key = [self.seed, i, int(self.episode[i]), int(self.step[i])]
            noise = np.random.default_rng(key).standard_normal(4)
            actions[i] = np.clip(controller.get_action(obs) + self.noise * noise, -1.0, 1.0)
        self.step += 1
        return actions.astype(np.float32)

    eval_action = act


def test_official_protocol_equals_metaworlds_own_mt10_evaluation():
    """Both sides run 1 episode per MT10 task for the same agent and seed: per-task success
    rates and every episode's return are equal."""
    seed, episodes, noise = 5, 1, 0.7
    envs = gym.make_vec("Meta-World/MT10", vector_strategy="sync", seed=seed)
    try:
        names = {cls.__name__: name for name, cls in ALL_V3_ENVIRONMENTS.items()}
        their_tasks = [names[n] for n in envs.get_attr("task_name")]  # Meta-World's own lookup
        _, _, their_success, their_returns = evaluation(
            NoisyScripted(their_tasks, noise, seed), envs, num_episodes=episodes
        )
    finally:
        envs.close()
    assert tuple(their_tasks) == MT10  # env i runs MT10[i], as ctdkit's protocol assumes
    ours = evaluate_official(NoisyScripted(MT10, noise, seed), "MT10", seed, episodes)
    assert ours.success_by_task() == their_success
    for task in MT10:
        mine = [e["return"] for e in ours.episodes if e["task"] == task]
        assert mine == their_returns[task], task
    # the comparison is informative: some episodes fail (noise), most succeed
    assert 0.3 < ours.mean_success < 1.0
    assert len(ours.episodes) == episodes * len(MT10)


# ------------------------------------------------------------------------------ resume
STEPS, SPLIT = 12, 5  # N - k > k: "fit until step == n" would stop the resumed run at 7


def _learner() -> CollectiveSAC:
    return CollectiveSACConfig(
        conditioning="oracle", critic=True, hidden=(32, 32), batch_size=64, seed=4
    ).create()


def _state(learner: CollectiveSAC) -> dict[str, object]:
    return {
        "actor": learner.actor.state_dict(),
        "critic": learner.critic.state_dict(),
        "critic_target": learner.critic_target.state_dict(),
        "actor_optim": learner.actor_optim.state_dict(),
        "critic_optim": learner.critic_optim.state_dict(),
        "generator": learner._generator.get_state(),
        "noise_generator": learner._noise_generator.get_state(),
    }


def _assert_equal(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_collective_resume_with_the_critic_equals_an_uninterrupted_run(reach_push, tmp_path):
    """``fit(data, n)`` trains n MORE steps (d3rlpy's meaning): k steps, save, load, N - k more
    steps leaves every parameter, optimiser moment and generator where N straight steps do."""
    context = make_context("oracle", reach_push)
    straight = _learner()
    straight.fit(reach_push, STEPS, context=context, progress=False)

    first = _learner()
    first.fit(reach_push, SPLIT, context=context, progress=False)
    first.save(tmp_path / "split.pt")
    at_split = _state(first)
    resumed = CollectiveSAC.load(tmp_path / "split.pt")
    history = resumed.fit(reach_push, STEPS - SPLIT, progress=False, log_every=1)

    assert straight.step == resumed.step == STEPS
    assert [h["step"] for h in history] == list(range(SPLIT + 1, STEPS + 1))
    assert all(np.isfinite(h["critic"]) and np.isfinite(h["actor"]) for h in history)
    _assert_equal(_state(resumed), _state(straight), "resumed")
    # not vacuous: the critic, its target and the Adam moments moved after the split
    for name in ("critic", "critic_target"):
        moved = [
            not torch.equal(value, at_split[name][key])
            for key, value in _state(straight)[name].items()
            if value.is_floating_point() and "obs_norm" not in key
        ]
        assert all(moved), name
    assert straight.critic_optim.state_dict()["state"][0]["step"] == STEPS


def test_noisy_scripted_reference_agent_is_the_plain_expert_without_noise():
    """The reference agent above is Meta-World's controller itself when its noise is 0."""
    env = gym.make("Meta-World/MT1", env_name="push-v3", seed=0)
    obs, _ = env.reset()
    agent = NoisyScripted(["push-v3"], 0.0, seed=1)
    agent.reset(np.ones(1, dtype=bool))
    expected = np.clip(ENV_POLICY_MAP["push-v3"]().get_action(obs), -1, 1).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs[None])[0], expected)
    env.close()
