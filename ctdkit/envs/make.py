"""Build Meta-World v3 environments that seed properly and describe their data truthfully.

Why not ``gym.make("Meta-World/MT1", ...)``: Meta-World registers its ids with a callable entry
point, which Minari cannot serialise, so ``recover_environment()`` breaks, and the callable leaks
into any outer spec. We register our own ids, ``ctdkit/<task>`` (e.g. ``ctdkit/reach-v3``), with a
*string* entry point whose factory builds the env from Meta-World's benchmark objects directly.

Two Meta-World defects are fixed here, each by one thin wrapper:

* ``reset(seed=...)`` is ignored upstream (metaworld issue #555): :class:`SeededReset` reseeds the
  env's RNG, which picks one of the task's 50 goal configurations at every reset.
* the declared observation space is stale (goal bounds ``[0, 0]``), so every observation lies
  outside it: :class:`TrueObservationSpace` declares the space Meta-World itself clips steps to.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import metaworld
import numpy as np

from ctdkit.envs.observation import OBS_GOAL, apply_view, validate_view
from ctdkit.envs.tasks import ALL_TASKS, validate_task
from ctdkit.errors import CtdkitError

#: Meta-World's own episode length; the unwrapped env refuses to step past it.
MAX_EPISODE_STEPS = 500
ENV_NAMESPACE = "ctdkit"
ENTRY_POINT = "ctdkit.envs.make:build_metaworld_env"


def env_id(task: str) -> str:
    """Our Gymnasium id for a Meta-World task: ``ctdkit/reach-v3``."""
    return f"{ENV_NAMESPACE}/{validate_task(task)}"


class SeededReset(gym.Wrapper):
    """Make ``reset(seed=s)`` reproducible: reseed the RNG that chooses the goal configuration.

    After ``reset(seed=s)`` the episode depends only on ``s`` (and the env's construction seed,
    which fixes the set of 50 goals), not on how many episodes this env ran before.
    """

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.env.unwrapped.seed(int(seed))
        return self.env.reset(options=options)


class TrueObservationSpace(gym.Wrapper):
    """Declare the observation space Meta-World actually produces.

    Meta-World recomputes its space (``sawyer_observation_space``) once a task is set and clips
    step observations to it, but the ``observation_space`` attribute keeps the stale one from
    construction. ``task`` is the first of the benchmark's tasks; all tasks of one env class share
    the same bounds.
    """

    def __init__(self, env: gym.Env, task: metaworld.Task):
        super().__init__(env)
        unwrapped = env.unwrapped
        unwrapped.set_task(task)  # recomputes sawyer_observation_space; uses no RNG
        space = unwrapped.sawyer_observation_space
        self.observation_space = gym.spaces.Box(space.low, space.high, dtype=np.float64)


class ObservationView(gym.ObservationWrapper):
    """Show the agent a view of the observation (``goal-hidden`` zeroes the goal slice)."""

    def __init__(self, env: gym.Env, view: str):
        super().__init__(env)
        self.view = validate_view(view)
        low = apply_view(env.observation_space.low, view)
        high = apply_view(env.observation_space.high, view)
        if view == "goal-hidden":
            low[OBS_GOAL] = high[OBS_GOAL] = 0.0
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float64)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return apply_view(observation, self.view)


def build_metaworld_env(
    task: str, seed: int = 0, view: str = "full", terminate_on_success: bool = False
) -> gym.Env:
    """Gymnasium entry point for ``ctdkit/<task>`` (see :func:`make_env` for the arguments).

    The time limit is Gymnasium's own ``TimeLimit`` (``max_episode_steps`` of the spec), so a
    recovered spec reproduces it; Meta-World's inner limit stays at its 500.
    """
    validate_task(task)
    validate_view(view)
    benchmark = metaworld.MT1(task, seed=seed)
    env = metaworld._init_each_env(  # private helper, pinned metaworld, covered by tests
        benchmark.train_classes[task],
        benchmark.train_tasks,
        seed=seed,
        max_episode_steps=MAX_EPISODE_STEPS,
        terminate_on_success=terminate_on_success,
    )
    env = TrueObservationSpace(env, benchmark.train_tasks[0])
    env = SeededReset(env)
    if view != "full":
        env = ObservationView(env, view)
    env.task_name = task  # read back by evaluation code through envs.get_attr("task_name")
    return env


def make_env(
    task: str,
    seed: int = 0,
    view: str = "full",
    max_episode_steps: int = MAX_EPISODE_STEPS,
    terminate_on_success: bool = False,
) -> gym.Env:
    """Make a Meta-World v3 env through our registered Gymnasium id.

    Args:
        task: Meta-World v3 task name, e.g. ``"reach-v3"``.
        seed: fixes the task's 50 goal configurations and the initial RNG (Meta-World only
            honours the construction seed; ``reset(seed=)`` is fixed by :class:`SeededReset`).
        view: observation view, ``"full"`` or ``"goal-hidden"``.
        max_episode_steps: time limit (truncation), at most 500.
        terminate_on_success: end an episode at its first success (Meta-World's evaluation does).
    """
    validate_max_episode_steps(max_episode_steps)
    register_envs()
    return gym.make(
        env_id(task),
        seed=seed,
        view=view,
        max_episode_steps=max_episode_steps,
        terminate_on_success=terminate_on_success,
        disable_env_checker=True,
    )


def validate_max_episode_steps(max_episode_steps: int) -> int:
    if not 1 <= max_episode_steps <= MAX_EPISODE_STEPS:
        raise CtdkitError(
            f"max_episode_steps={max_episode_steps} must be in 1..{MAX_EPISODE_STEPS} "
            "(Meta-World refuses to step past 500)"
        )
    return max_episode_steps


def register_envs() -> None:
    """Register ``ctdkit/<task>`` for every Meta-World v3 task (idempotent)."""
    for task in ALL_TASKS:
        gym_id = f"{ENV_NAMESPACE}/{task}"
        if gym_id not in gym.registry:
            gym.register(id=gym_id, entry_point=ENTRY_POINT, kwargs={"task": task})
