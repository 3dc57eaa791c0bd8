"""The student's shaping: the bonus b(s, a) and its weight w(step) (docs/method.md, "Student").

The critic's target becomes ``y = r + w · b(s, a) + γ (1 − terminated) (…)`` with

* ``b(s, a) = exp(−½ Σᵢ ((aᵢ − μᵢ) / σᵢ)²)``: an unnormalised Gaussian around the frozen
  collective's action at the student's state and context, so ``0 < b ≤ 1`` whatever σ is and w
  alone bounds what the bonus adds. ``μ = tanh(mean)`` is the collective's action (the space the
  student's actions live in) and ``σ = exp(log_std)`` its log-std label, floored at
  :data:`STD_FLOOR`: the pair the datasets store as ``expert_action_mean`` / ``_log_std`` and the
  collective was distilled on;
* ``w = weight`` up to ``full_until`` env steps, then linearly down to 0 at ``zero_at``.
"""

from __future__ import annotations

import numpy as np

STD_FLOOR = 1e-4
"""The smallest σ in the bonus by default, the original's (a collective sure of its action would
give b = 0 elsewhere). A collective distilled from scripted labels is that sure: its σ is about
0.01 per dimension, so b underflows to 0 for nearly every action a learner tries and the student
is plain SAC bit for bit. ``--bonus-std-floor`` raises it (docs/student.md)."""


def bonus(
    action: np.ndarray, mean: np.ndarray, std: np.ndarray, floor: float = STD_FLOOR
) -> np.ndarray:
    """``exp(−½ Σᵢ ((aᵢ − μᵢ) / max(σᵢ, floor))²)`` over the last axis."""
    z = (np.asarray(action) - np.asarray(mean)) / np.maximum(std, floor)
    return np.exp(-0.5 * np.sum(z * z, axis=-1))


def bonus_weight(step: int, weight: float, full_until: int, zero_at: int) -> float:
    """``w(step)``: ``weight`` until ``full_until``, then linear to 0 at ``zero_at`` (0 after)."""
    if step <= full_until:
        return float(weight)
    if step >= zero_at:
        return 0.0
    return float(weight) * (zero_at - step) / (zero_at - full_until)
