"""Run one episode of a policy in an env and return it as whole arrays.

A plain loop into preallocated numpy arrays: no per-step tree-mapping (Minari's DataCollector
costs 20-25% per step), so collection runs at the bare env+policy loop's speed.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from ctdkit.data.episode import (
    INFO_EXPERT_LOG_STD,
    INFO_EXPERT_MEAN,
    INFO_LABEL_LOG_STD,
    INFO_LABEL_MEAN,
    INFO_SUCCESS,
    EpisodeData,
)
from ctdkit.policies.base import Policy, check_finite

#: ``on_step(obs, action, reward, next_obs, terminated, truncated)``, called after each env step
StepHook = Callable[[np.ndarray, np.ndarray, float, np.ndarray, bool, bool], None]


def rollout_episode(
    env: gym.Env,
    policy: Policy,
    seed: int,
    on_step: StepHook | None = None,
    labeller: Policy | None = None,
) -> EpisodeData:
    """Reset ``env`` and ``policy`` with ``seed`` and run until terminated or truncated.

    ``env`` must have a time limit (every ``ctdkit`` env does). Metadata filled here:
    ``success`` (``info["success"]`` true at any step), ``return``, ``length``; the caller adds
    task and policy fields (Minari stores ``seed`` itself). ``on_step`` lets a learner see each
    transition as it happens (the SAC expert stores it and updates there); after the last step
    ``policy.act`` is called once more, for the final observation's label only.

    A policy with an ``observe(action, reward, next_observation)`` method (a memory, see
    :class:`~ctdkit.policies.base.Policy`) is told each step's outcome before it acts again.
    ``labeller``, if given, is reset with ``seed`` and asked at every observation, the final one
    included; its ``mean``/``log_std`` are stored as ``INFO_LABEL_*`` (its action is not used).
    """
    limit = env.spec.max_episode_steps if env.spec is not None else None
    if limit is None:
        raise ValueError("rollout_episode needs an env with a time limit (max_episode_steps)")
    obs_dim = env.observation_space.shape[0]
    act_dim = env.action_space.shape[0]
    observations = np.empty((limit + 1, obs_dim), dtype=np.float64)
    actions = np.empty((limit, act_dim), dtype=np.float32)
    rewards = np.empty(limit, dtype=np.float64)
    terminations = np.zeros(limit, dtype=bool)
    truncations = np.zeros(limit, dtype=bool)
    means = np.empty((limit + 1, act_dim), dtype=np.float32)
    log_stds = np.empty((limit + 1, act_dim), dtype=np.float32)
    success = np.zeros((limit + 1, 1), dtype=bool)
    if labeller is not None:
        label_means = np.empty((limit + 1, act_dim), dtype=np.float32)
        label_log_stds = np.empty((limit + 1, act_dim), dtype=np.float32)
    observe = getattr(policy, "observe", None)

    def label(t: int) -> None:
        """The labeller's label at observation ``t``, from its own copy: a policy may write
        into the array it is given (Meta-World's door-open controller shifts the door's x)."""
        if labeller is not None:
            step = check_finite(labeller.act(observations[t].copy()), labeller.name)
            label_means[t], label_log_stds[t] = step.mean, step.log_std

    policy.reset(seed)
    if labeller is not None:
        labeller.reset(seed)
    obs, _ = env.reset(seed=seed)
    observations[0] = obs
    t = 0
    while True:
        step = check_finite(policy.act(obs), policy.name)
        means[t], log_stds[t] = step.mean, step.log_std
        label(t)
        next_obs, reward, terminated, truncated, info = env.step(step.action)
        actions[t], rewards[t] = step.action, reward
        terminations[t], truncations[t] = terminated, truncated
        observations[t + 1] = next_obs
        success[t + 1] = bool(info.get("success", 0.0))
        t += 1
        if observe is not None:
            observe(step.action.copy(), float(reward), next_obs.copy())
        if on_step is not None:
            on_step(obs, step.action, reward, next_obs, terminated, truncated)
        obs = next_obs
        if terminated or truncated:
            break
    # label of the final observation (no action is taken there)
    final = check_finite(policy.act(obs), policy.name)
    means[t], log_stds[t] = final.mean, final.log_std
    label(t)

    if not np.all(np.isfinite(observations[: t + 1])) or not np.all(np.isfinite(rewards[:t])):
        raise FloatingPointError(f"environment {env.spec.id} produced a non-finite observation")
    infos = {
        INFO_EXPERT_LOG_STD: log_stds[: t + 1],
        INFO_EXPERT_MEAN: means[: t + 1],
        INFO_SUCCESS: success[: t + 1],
    }
    if labeller is not None:
        infos |= {
            INFO_LABEL_LOG_STD: label_log_stds[: t + 1],
            INFO_LABEL_MEAN: label_means[: t + 1],
        }
    return EpisodeData(
        observations=observations[: t + 1],
        actions=actions[:t],
        rewards=rewards[:t],
        terminations=terminations[:t],
        truncations=truncations[:t],
        infos=infos,
        metadata={
            "success": bool(success.any()),
            "return": float(rewards[:t].sum()),
            "length": int(t),
        },
        seed=int(seed),
    )
