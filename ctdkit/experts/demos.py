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
from ctdkit.envs.tasks import stable_task_id
from ctdkit.experts.replay import ReplayBuffer
from ctdkit.policies.scripted import ScriptedPolicy

DEMO_STREAM = 1  # keeps demo reset seeds apart from the training episodes'


def demo_seed(env_seed: int, task: str, index: int) -> int:
    """Reset seed of demonstration episode ``index`` (never a training episode's seed)."""
    entropy = [env_seed, stable_task_id(task), index, DEMO_STREAM]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def collect_demos(env, task: str, episodes: int, env_seed: int) -> tuple[ReplayBuffer, float]:
    """``episodes`` scripted episodes of ``task`` on ``env`` as a replay, and their success rate.

    Deterministic given ``env_seed``: a resumed run rebuilds the same demonstrations."""
    limit = env.spec.max_episode_steps
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    demos = ReplayBuffer(episodes * limit, obs_dim, action_dim)
    policy = ScriptedPolicy(task)
    successes = []
    for index in range(episodes):

        def store(obs, action, reward, next_obs, terminated, truncated):
            demos.add(obs, action, reward, next_obs, terminated)

        episode = rollout_episode(env, policy, demo_seed(env_seed, task, index), on_step=store)
        successes.append(bool(episode.metadata["success"]))
    return demos, float(np.mean(successes))


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
