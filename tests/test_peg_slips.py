"""``benchmarks/peg_slips.py`` reads the scripted peg policy's phase off an observation, marks
an episode as slipped when the phase falls back from carrying (>= 2) to reaching (<= 1), and
with ``takeover`` hands that env to the scripted teacher for the rest of its episode."""

from __future__ import annotations

import numpy as np
from scripts import load_script

from ctdkit.eval import evaluate
from ctdkit.policies.agents import ScriptedAgent

SLIPS = load_script("benchmarks/peg_slips.py")


def _obs(hand, peg, goal_y=0.7) -> np.ndarray:
    observation = np.zeros(39, dtype=np.float64)
    observation[:3], observation[4:7] = hand, peg
    observation[-3:] = (-0.3, goal_y, 0.13)
    return observation


ABOVE = _obs((0.0, 0.6, 0.2), (0.1, 0.6, 0.02))  # hand 0.1 away in xy: phase 0
DESCEND = _obs((0.1, 0.6, 0.2), (0.1, 0.6, 0.02))  # over the peg, 0.18 above it: phase 1
CARRY = _obs((0.1, 0.6, 0.03), (0.1, 0.6, 0.02))  # holding it, off the hole's line: phase 2
INSERT = _obs((0.0, 0.7, 0.165), (0.0, 0.7, 0.16))  # on the hole's line: phase 3


def test_the_phase_is_the_scripted_policys():
    assert [SLIPS.peg_phase(o) for o in (ABOVE, DESCEND, CARRY, INSERT)] == [0, 1, 2, 3]


class _Zeros:
    name = "zeros"

    def bind(self, env_tasks):
        pass

    def reset(self, env_mask):
        pass

    def act(self, observations, history):
        return np.zeros((len(observations), 4), dtype=np.float32)


def test_a_fall_from_carrying_is_a_slip_and_the_teacher_takes_over_from_there():
    watcher = SLIPS.SlipWatcher(_Zeros(), takeover=True)
    watcher.bind([SLIPS.TASK])
    watcher.reset(np.ones(1, dtype=bool))
    for observation in (ABOVE, DESCEND, CARRY):  # a clean approach: no slip, the agent acts
        assert not watcher.act(observation[None], None).any()
    slipped_action = watcher.act(DESCEND[None], None)
    teacher = ScriptedAgent()
    teacher.bind([SLIPS.TASK])
    np.testing.assert_array_equal(slipped_action, teacher.act(DESCEND[None]))
    assert slipped_action.any()
    watcher.reset(np.ones(1, dtype=bool))
    for observation in (ABOVE, DESCEND, CARRY, INSERT):
        assert not watcher.act(observation[None], None).any()
    watcher.reset(np.ones(1, dtype=bool))
    assert watcher.slipped == [True, False]
    assert watcher.carried == [True, True]


def test_every_scored_episode_gets_a_slip_flag():
    watcher = SLIPS.SlipWatcher(ScriptedAgent())
    result = evaluate(watcher, (SLIPS.TASK,), "official", 100, num_episodes=3)
    assert len(result.episodes) == len(watcher.slipped) == len(watcher.carried) == 3
