"""Environment layer: Meta-World tasks, observation slices/views, and seeded env construction."""

from ctdkit.envs.make import MAX_EPISODE_STEPS, env_id, make_env, register_envs
from ctdkit.envs.observation import (
    ACTION_DIM,
    OBS_CURRENT,
    OBS_DIM,
    OBS_GOAL,
    OBS_GRIPPER,
    OBS_HAND,
    OBS_OBJECTS,
    OBS_PREVIOUS,
    OBS_SLICES,
    OBS_VIEWS,
    apply_view,
    select_slices,
)
from ctdkit.envs.tasks import ALL_TASKS, MT10, MT50, TASK_SETS, resolve_tasks, validate_task

register_envs()

__all__ = [
    "ACTION_DIM",
    "ALL_TASKS",
    "MAX_EPISODE_STEPS",
    "MT10",
    "MT50",
    "OBS_CURRENT",
    "OBS_DIM",
    "OBS_GOAL",
    "OBS_GRIPPER",
    "OBS_HAND",
    "OBS_OBJECTS",
    "OBS_PREVIOUS",
    "OBS_SLICES",
    "OBS_VIEWS",
    "TASK_SETS",
    "apply_view",
    "env_id",
    "make_env",
    "register_envs",
    "resolve_tasks",
    "select_slices",
    "validate_task",
]
