"""Demonstrations for an expert: scripted-policy episodes in a replay of their own.

RLPD (Ball et al. 2023) keeps prior data in a separate buffer and draws a fixed share of every
batch from it, so the demonstrations still count after the online replay has turned over.
Push-v3 is where plain SAC spends most of a million steps before it first pushes the puck; a
few scripted episodes show it the way.
"""

from __future__ import annotations

import numpy as np
import torch

from ctdkit.collect.rollout import rollout_episode
from ctdkit.experts.replay import ReplayBuffer
from ctdkit.policies.scripted import ScriptedPolicy


def collect_demos(env, task: str, seeds: list[int]) -> tuple[ReplayBuffer, float]:
    """One scripted episode of ``task`` per reset seed on ``env``, as a replay, and their
    success rate (deterministic: a resumed run rebuilds the same demonstrations)."""
    limit = env.spec.max_episode_steps
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    demos = ReplayBuffer(len(seeds) * limit, obs_dim, action_dim)
    policy = ScriptedPolicy(task)

    def store(obs, action, reward, next_obs, terminated, truncated):
        demos.add(obs, action, reward, next_obs, terminated)

    episodes = [rollout_episode(env, policy, seed, on_step=store) for seed in seeds]
    return demos, float(np.mean([bool(e.metadata["success"]) for e in episodes]))


def mixed_batch(
    online: ReplayBuffer,
    demos: ReplayBuffer,
    batch_size: int,
    demo_fraction: float,
    rng: np.random.Generator,
) -> dict[str, torch.Tensor]:
    """``batch_size`` rows: ``round(batch_size * demo_fraction)`` from ``demos``, the rest
    from ``online`` (online rows first)."""
    n_demo = round(batch_size * demo_fraction)
    first = online.sample(batch_size - n_demo, rng)
    second = demos.sample(n_demo, rng)
    return {name: torch.cat([first[name], second[name]]) for name in first}
