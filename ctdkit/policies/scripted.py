"""Meta-World's scripted policies as experts, with optional Gaussian exploration noise."""

from __future__ import annotations

import warnings

import numpy as np
from metaworld.policies import ENV_POLICY_MAP

from ctdkit.envs.tasks import validate_task
from ctdkit.errors import CtdkitError
from ctdkit.policies.base import PolicyStep

# Meta-World's controllers warn on every step whose gains exceed 1; we clip to [-1, 1] anyway.
warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", category=UserWarning)

#: log-std reported when the policy adds (almost) no noise: finite, and small against σ=0.1.
DEFAULT_LOG_STD_FLOOR = float(np.log(1e-2))


class ScriptedPolicy:
    """Meta-World's hand-written controller for one task.

    The label is the scripted action (clipped to [-1, 1]) as the mean and
    ``log(max(noise, exp(log_std_floor)))`` as the log-std; the action sent to the env is
    ``clip(mean + noise * N(0, I), -1, 1)``.
    """

    name = "scripted"

    def __init__(self, task: str, noise: float = 0.0, log_std_floor: float = DEFAULT_LOG_STD_FLOOR):
        validate_task(task)
        if noise < 0 or not np.isfinite(noise):
            raise CtdkitError(f"noise must be a finite number >= 0, got {noise}")
        self.task = task
        self.noise = float(noise)
        self._controller = ENV_POLICY_MAP[task]()
        std = max(self.noise, float(np.exp(log_std_floor)))
        self._log_std = np.full(4, np.log(std), dtype=np.float32)
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray) -> PolicyStep:
        # a copy: door-open's controller shifts the door's x in the array it is given
        action = self._controller.get_action(np.array(observation, dtype=np.float64))
        mean = np.clip(action, -1.0, 1.0).astype(np.float32)
        if self.noise > 0:
            noisy = mean + self.noise * self._rng.standard_normal(mean.shape)
            action = np.clip(noisy, -1.0, 1.0).astype(np.float32)
        else:
            action = mean.copy()
        return PolicyStep(action=action, mean=mean, log_std=self._log_std.copy())
