"""Named pieces of the 39-dim Meta-World observation, and observation views.

Layout (metaworld v3): hand xyz, gripper opening, 14 object features (two objects' position and
quaternion), the previous frame's first 18 entries, then the goal xyz. Code names these slices
instead of writing bare 18/36/39.

A *view* is what a learner is allowed to see. ``full`` is the raw observation; ``goal-hidden``
zeroes the goal slice, which makes tasks that share a scene (reach/push/pick-place) ambiguous so
that only behaviour (actions, rewards) can tell them apart.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from ctdkit.errors import unknown

OBS_DIM = 39
ACTION_DIM = 4
OBS_HAND = slice(0, 3)
OBS_GRIPPER = slice(3, 4)
OBS_OBJECTS = slice(4, 18)
OBS_CURRENT = slice(0, 18)  # hand + gripper + objects of the current frame
OBS_PREVIOUS = slice(18, 36)  # the same 18 entries one frame earlier
OBS_GOAL = slice(36, 39)

OBS_SLICES: dict[str, slice] = {
    "hand": OBS_HAND,
    "gripper": OBS_GRIPPER,
    "objects": OBS_OBJECTS,
    "previous": OBS_PREVIOUS,
    "goal": OBS_GOAL,
}

ObsView = Literal["full", "goal-hidden"]
OBS_VIEWS: tuple[str, ...] = get_args(ObsView)


def validate_view(view: str) -> ObsView:
    if view not in OBS_VIEWS:
        raise unknown("observation view", view, OBS_VIEWS)
    return view  # type: ignore[return-value]


def apply_view(obs: np.ndarray, view: str) -> np.ndarray:
    """Return ``obs`` (shape ``(..., 39)``) as seen through ``view``; never modifies the input."""
    validate_view(view)
    if view == "full":
        return obs
    out = np.array(obs, copy=True)
    out[..., OBS_GOAL] = 0.0
    return out


def select_slices(obs: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Concatenate the named slices of ``obs`` along the last axis (e.g. the original's 21-dim
    'compressed' state is ``("hand", "gripper", "objects", "goal")``)."""
    parts = []
    for name in names:
        if name not in OBS_SLICES:
            raise unknown("observation slice", name, OBS_SLICES)
        parts.append(obs[..., OBS_SLICES[name]])
    return np.concatenate(parts, axis=-1)
