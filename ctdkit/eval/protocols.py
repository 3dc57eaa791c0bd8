"""Two evaluation protocols over vectorised Meta-World envs, both driving an :class:`EvalAgent`.

* ``official`` — exactly ``metaworld.evaluation.evaluation``: Meta-World's own vector envs
  (``make_vec(seed=s)``: 50 goal variations per task), every reset draws a goal uniformly *with
  replacement*, episodes end at their first success, a task's success rate is over its first
  ``num_episodes`` episodes. Our loop calls the agent exactly as Meta-World's does, and also
  keeps each env's episode history for agents that need it.
* ``all-goals`` — each of a task's 50 goal variations (those of ``make_env(task, seed=s)``)
  exactly once, deterministic. With ``seed`` equal to a dataset's collection seed these are the
  training goals; any other seed gives held-out goals.

Success of an episode: ``info["success"]`` was true at some step (episodes end there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import gymnasium as gym
import metaworld
import numpy as np

from ctdkit.envs.make import MAX_EPISODE_STEPS, make_env
from ctdkit.envs.observation import ACTION_DIM, OBS_DIM
from ctdkit.envs.tasks import MT10, MT50, resolve_tasks
from ctdkit.policies.agents import EvalAgent
from ctdkit.policies.history import EpisodeHistory

Protocol = Literal["official", "all-goals"]
PROTOCOLS: tuple[str, ...] = ("official", "all-goals")
GOALS_PER_TASK = 50  # Meta-World's goal variations per task and seed


@dataclass
class EvalResult:
    """Every scored episode of one evaluation run (one protocol, one seed)."""

    protocol: str
    seed: int
    tasks: tuple[str, ...]
    episodes: list[dict] = field(default_factory=list)  # task, success, return, length[, goal]

    def success_by_task(self) -> dict[str, float]:
        return {
            task: float(np.mean([e["success"] for e in self.episodes if e["task"] == task]))
            for task in self.tasks
        }

    @property
    def mean_success(self) -> float:
        return float(np.mean(list(self.success_by_task().values())))


def _official_envs(tasks: tuple[str, ...], seed: int) -> gym.vector.VectorEnv:
    """Meta-World's own evaluation envs for ``tasks`` (one env per task)."""
    if tasks in (MT10, MT50):
        name = "MT10" if tasks == MT10 else "MT50"
        return gym.make_vec(f"Meta-World/{name}", vector_strategy="sync", seed=seed)
    # any other task list: the same per-task construction Meta-World's MT benchmarks use
    return gym.vector.SyncVectorEnv(
        [
            partial(metaworld.make_mt_envs, task, seed=seed, num_tasks=len(tasks), env_id=i)
            for i, task in enumerate(tasks)
        ],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


def evaluate_official(
    agent: EvalAgent, tasks: str | Sequence[str], seed: int, num_episodes: int = 50
) -> EvalResult:
    """Meta-World's evaluation (see module docstring), with histories for the agent."""
    tasks = resolve_tasks(tasks)
    envs = _official_envs(tasks, seed)
    try:
        envs.call("toggle_terminate_on_success", True)
        obs, _ = envs.reset()
        agent.bind(tasks)
        agent.reset(np.ones(envs.num_envs, dtype=bool))
        history = EpisodeHistory(envs.num_envs, OBS_DIM, ACTION_DIM, MAX_EPISODE_STEPS)
        history.start(np.arange(envs.num_envs), obs)
        result = EvalResult("official", seed, tasks)
        counts = np.zeros(envs.num_envs, dtype=np.int64)
        every_env = np.arange(envs.num_envs)
        while counts.min() < num_episodes:
            actions = agent.act(obs, history)
            obs, rewards, terminations, truncations, infos = envs.step(actions)
            done = np.logical_or(terminations, truncations)
            live = every_env[~done]
            history.record(live, actions[live], rewards[live], obs[live])
            agent.reset(done)
            for i in np.flatnonzero(done):
                if counts[i] < num_episodes:
                    result.episodes.append(
                        {
                            "task": tasks[i],
                            "success": bool(infos["final_info"]["success"][i]),
                            "return": float(infos["final_info"]["episode"]["r"][i]),
                            "length": int(infos["final_info"]["episode"]["l"][i]),
                        }
                    )
                counts[i] += 1
            if done.any():
                history.start(np.flatnonzero(done), obs[done])
        return result
    finally:
        envs.close()


def evaluate_all_goals(
    agent: EvalAgent,
    tasks: str | Sequence[str],
    seed: int,
    goals: Sequence[int] | None = None,
    max_episode_steps: int = MAX_EPISODE_STEPS,
) -> EvalResult:
    """Every goal variation of every task once (``goals`` selects a subset, e.g. for tests)."""
    tasks = resolve_tasks(tasks)
    goal_ids = list(range(GOALS_PER_TASK) if goals is None else goals)
    envs = [
        make_env(task, seed=seed, max_episode_steps=max_episode_steps, terminate_on_success=True)
        for task in tasks
    ]
    for env in envs:
        env.get_wrapper_attr("toggle_sample_tasks_on_reset")(False)
    goal_sets = [env.get_wrapper_attr("tasks") for env in envs]
    queues = [list(goal_ids) for _ in envs]
    current_goal = [-1] * len(envs)
    n = len(envs)
    history = EpisodeHistory(n, OBS_DIM, ACTION_DIM, max_episode_steps)
    obs = np.zeros((n, OBS_DIM))
    returns, successes = np.zeros(n), np.zeros(n, dtype=bool)
    active = np.ones(n, dtype=bool)
    result = EvalResult("all-goals", seed, tasks)

    def start(i: int) -> None:
        current_goal[i] = queues[i].pop(0)
        envs[i].unwrapped.set_task(goal_sets[i][current_goal[i]])
        obs[i], _ = envs[i].reset()
        returns[i], successes[i] = 0.0, False
        history.start(i, obs[i])

    agent.bind(tasks)
    agent.reset(np.ones(n, dtype=bool))
    for i in range(n):
        start(i)
    while active.any():
        actions = agent.act(obs.copy(), history)
        ended = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(active):
            next_obs, reward, terminated, truncated, info = envs[i].step(actions[i])
            returns[i] += reward
            successes[i] |= bool(info["success"])
            if terminated or truncated:
                ended[i] = True
                result.episodes.append(
                    {
                        "task": tasks[i],
                        "goal": current_goal[i],
                        "success": bool(successes[i]),
                        "return": float(returns[i]),
                        "length": int(history.steps[i] + 1),
                    }
                )
            else:
                history.record(np.array([i]), actions[i][None], np.array([reward]), next_obs[None])
                obs[i] = next_obs
        agent.reset(ended)
        for i in np.flatnonzero(ended):
            if queues[i]:
                start(i)
            else:
                active[i] = False
    for env in envs:
        env.close()
    return result


def evaluate(
    agent: EvalAgent, tasks: str | Sequence[str], protocol: str, seed: int, **kwargs
) -> EvalResult:
    if protocol == "official":
        return evaluate_official(agent, tasks, seed, **kwargs)
    if protocol == "all-goals":
        return evaluate_all_goals(agent, tasks, seed, **kwargs)
    from ctdkit.errors import unknown

    raise unknown("evaluation protocol", protocol, PROTOCOLS)
