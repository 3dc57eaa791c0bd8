"""A pinned fingerprint of one tiny collection, read back from disk through Minari.

2 tasks x 2 episodes x 100 steps of the scripted experts with action noise 0.3, seed 7. The
numbers below were computed once by this collection (metaworld 3.1.1, minari 0.5.4, gymnasium
1.4.0) and written in as literals, so silent drift in Meta-World (goals, dynamics, rewards,
success), in Minari (what it stores and gives back) or in ctdkit's writer (episode seeds,
metadata, truncation) fails here.

Why not the content checksum: it hashes the raw float bytes, and another CPU (e.g. one with
AVX-512) rounds MuJoCo's and numpy's arithmetic differently, so every checksum differs there
while lengths, success flags and returns agree (docs/ecosystem.md, "Floating point across
machines"). So: lengths, success flags and per-episode seeds exactly; the goal drawn at reset
(a sample of the env's RNG, no accumulated arithmetic) to 1e-6; returns to 1% relative.
"""

from __future__ import annotations

import minari
import numpy as np
import pytest

from ctdkit.collect import CollectConfig, collect

CONFIG = dict(
    tasks=("reach-v3", "push-v3"),
    episodes_per_task=2,
    max_episode_steps=100,
    noise=0.3,
    seed=7,
    ref_episodes=0,
    workers=1,
    dataset_id="test/fingerprint-v0",
    progress=False,
)
#: (task, length, success, return, episode seed, goal at reset), in stored order
PINNED = [
    ("reach-v3", 100, True, 856.04, 1604112839, (-0.089871, 0.806745, 0.158868)),
    ("reach-v3", 100, True, 840.06, 2411196805, (-0.067695, 0.849739, 0.102094)),
    ("push-v3", 100, True, 626.08, 1551245001, (0.079019, 0.880706, 0.019405)),
    ("push-v3", 100, False, 33.36, 3829772028, (0.065619, 0.810688, 0.019405)),
]


@pytest.fixture(scope="module")
def fingerprint(tmp_path_factory):
    root = tmp_path_factory.mktemp("fingerprint")
    result = collect(CollectConfig(**CONFIG, root=root))
    rows = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        for summary in result.tasks:
            dataset = minari.load_dataset(summary.dataset_id)  # Minari's own reader
            indices = list(dataset.episode_indices)
            metadata = dataset.storage.get_episode_metadata(indices)
            for episode, meta in zip(dataset.iterate_episodes(indices), metadata, strict=True):
                rows.append((summary.task, episode, meta))
    return result, rows


def test_episode_lengths_successes_seeds_and_goals_are_pinned(fingerprint):
    _, rows = fingerprint
    assert len(rows) == len(PINNED)
    for (task, episode, meta), pinned in zip(rows, PINNED, strict=True):
        want_task, length, success, _, seed, goal = pinned
        assert task == want_task
        assert len(episode.rewards) == length and len(episode.observations) == length + 1
        assert bool(np.any(episode.infos["success"])) is success, pinned
        assert int(meta["seed"]) == seed, pinned
        np.testing.assert_allclose(episode.observations[0][36:39], goal, rtol=0, atol=1e-6)
        # the episode ends by the time limit only (no termination in Meta-World's data)
        assert not episode.terminations.any() and bool(episode.truncations[-1])


def test_episode_returns_are_pinned_to_one_percent(fingerprint):
    _, rows = fingerprint
    returns = [float(np.sum(episode.rewards)) for _, episode, _ in rows]
    assert returns == pytest.approx([p[3] for p in PINNED], rel=0.01)


def test_stored_metadata_and_summary_agree_with_the_arrays(fingerprint):
    """What the writer records about each episode is what its arrays say."""
    result, rows = fingerprint
    for _, episode, meta in rows:
        assert int(meta["length"]) == len(episode.rewards)
        assert bool(meta["success"]) == bool(np.any(episode.infos["success"]))
        assert float(meta["return"]) == pytest.approx(float(np.sum(episode.rewards)), rel=1e-9)
    by_task = {t.task: t for t in result.tasks}
    for task in CONFIG["tasks"]:
        mine = [(e, m) for t, e, m in rows if t == task]
        assert by_task[task].steps == sum(len(e.rewards) for e, _ in mine)
        assert by_task[task].success_rate == np.mean([bool(m["success"]) for _, m in mine])
