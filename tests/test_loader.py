"""The aligned loader: transitions, d3rlpy conversion, and refusal of bad data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY

from ctdkit.data import load_transitions, to_d3rlpy
from ctdkit.data.episode import EpisodeData
from ctdkit.data.store import minari_root
from ctdkit.envs import OBS_GOAL
from ctdkit.errors import CtdkitError


def test_transitions_are_aligned_inside_episodes(tiny):
    t = load_transitions(tiny.group_id, root=tiny.root)
    steps = TINY["max_episode_steps"]
    assert len(t) == 2 * TINY["episodes_per_task"] * steps
    assert t.tasks == ("reach-v3", "push-v3") and t.checksum == tiny.checksum
    same_episode = t.episode_index[1:] == t.episode_index[:-1]
    np.testing.assert_array_equal(
        t.next_observations[:-1][same_episode], t.observations[1:][same_episode]
    )
    assert same_episode.sum() == len(t) - t.num_episodes
    np.testing.assert_array_equal(np.bincount(t.task_index), [2 * steps, 2 * steps])
    assert t.step_index.max() == steps - 1 and t.num_episodes == 4
    # time-limit ends are truncations, never terminations
    ends = ~np.append(same_episode, False)
    assert t.truncated[ends].all() and not t.terminated.any() and t.truncated.sum() == 4
    np.testing.assert_allclose(t.expert_action_log_std, np.log(0.3), rtol=1e-6)
    assert 0 < t.success.mean() < 1


def test_transitions_match_the_stored_episodes(tiny):
    import minari

    t = load_transitions(tiny.group_id, root=tiny.root)
    with minari_root(tiny.root):
        push = minari.load_dataset(tiny.tasks[1].dataset_id)[1]  # 2nd push episode
    rows = t.episode_index == 3
    np.testing.assert_allclose(t.observations[rows], push.observations[:-1], rtol=1e-6)
    np.testing.assert_allclose(t.next_observations[rows][-1], push.observations[-1], rtol=1e-6)
    np.testing.assert_array_equal(t.actions[rows], push.actions)
    np.testing.assert_allclose(t.rewards[rows], push.rewards, rtol=1e-6)
    np.testing.assert_array_equal(t.success[rows], push.infos["success"][1:, 0])
    np.testing.assert_array_equal(t.expert_action_mean[rows], push.infos["expert_action_mean"][:-1])


def test_single_task_dataset_and_goal_hidden_view(tiny):
    t = load_transitions(tiny.tasks[0].dataset_id, view="goal-hidden", root=tiny.root)
    assert t.tasks == ("reach-v3",) and len(t) == 2 * TINY["max_episode_steps"]
    assert np.all(t.observations[:, OBS_GOAL] == 0) and np.all(
        t.next_observations[:, OBS_GOAL] == 0
    )


def test_d3rlpy_dataset_has_every_transition_aligned(tiny):
    t = load_transitions(tiny.group_id, root=tiny.root)
    dataset = to_d3rlpy(t)
    assert dataset.transition_count == len(t)
    assert len(dataset.episodes) == t.num_episodes
    row = 0
    for episode in dataset.episodes:
        n = episode.transition_count
        np.testing.assert_array_equal(episode.observations[:n], t.observations[row : row + n])
        np.testing.assert_array_equal(
            episode.observations[1 : n + 1], t.next_observations[row : row + n]
        )
        np.testing.assert_array_equal(episode.actions[:n], t.actions[row : row + n])
        np.testing.assert_array_equal(episode.rewards[:n, 0], t.rewards[row : row + n])
        row += n
    assert row == len(t)


def test_d3rlpy_terminated_episode_keeps_its_last_transition():
    from ctdkit.data.loader import Transitions

    n = 5
    z = np.zeros
    t = Transitions(
        observations=np.arange(2 * n * 3, dtype=np.float32).reshape(2 * n, 3),
        actions=np.ones((2 * n, 2), np.float32),
        rewards=np.arange(2 * n, dtype=np.float32),
        next_observations=np.arange(3, 2 * n * 3 + 3, dtype=np.float32).reshape(2 * n, 3),
        terminated=np.array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0], bool),
        truncated=np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 1], bool),
        task_index=z(2 * n, np.int64),
        episode_index=np.repeat([0, 1], n),
        step_index=np.tile(np.arange(n), 2),
        expert_action_mean=z((2 * n, 2), np.float32),
        expert_action_log_std=z((2 * n, 2), np.float32),
        success=z(2 * n, bool),
    )
    dataset = to_d3rlpy(t)
    terminated, truncated = dataset.episodes
    assert terminated.terminated and terminated.transition_count == n
    assert not truncated.terminated and truncated.transition_count == n
    np.testing.assert_array_equal(truncated.observations[-1], t.next_observations[-1])


def test_unknown_dataset_id_suggests_close_matches(tiny):
    with pytest.raises(CtdkitError, match=r"unknown dataset id 'test/tinyy-v0'.*test/tiny"):
        load_transitions("test/tinyy-v0", root=tiny.root)
    with pytest.raises(CtdkitError, match="needs a version suffix"):
        load_transitions("test/tiny", root=tiny.root)


def _copy_root(tiny, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny.root, root)
    return root


def test_corrupt_file_is_refused_with_one_line(tiny, tmp_path):
    root = _copy_root(tiny, tmp_path)
    data_dir = root / tiny.tasks[0].dataset_id / "data"
    files = sorted(p for p in data_dir.rglob("*") if p.is_file() and p.name != "metadata.json")
    for path in files:
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 3])  # truncate every data file
    with pytest.raises(
        CtdkitError, match=r"dataset test/tiny/reach-v0 is corrupt or unreadable"
    ) as err:
        load_transitions(tiny.group_id, root=root)
    assert "\n" not in str(err.value)


def test_missing_member_of_a_group_is_refused(tiny, tmp_path):
    import shutil

    root = _copy_root(tiny, tmp_path)
    shutil.rmtree(root / tiny.tasks[1].dataset_id)
    with pytest.raises(CtdkitError, match="incomplete: test/tiny/push-v0 is missing"):
        load_transitions(tiny.group_id, root=root)


def test_nan_in_data_is_refused(minari_root):
    from ctdkit.collect.rollout import rollout_episode
    from ctdkit.data.store import write_dataset
    from ctdkit.envs import make_env
    from ctdkit.policies import ScriptedPolicy

    env = make_env("reach-v3", max_episode_steps=20)
    episode: EpisodeData = rollout_episode(env, ScriptedPolicy("reach-v3"), seed=0)
    episode.rewards[7] = np.nan
    episode.metadata |= {"task": "reach-v3", "task_index": 0}
    write_dataset(
        "test/nan/reach-v0",
        [episode],
        env,
        data_format="hdf5",
        description="nan",
        algorithm_name="x",
        ref_min_score=None,
        ref_max_score=None,
        extra_metadata={"task": "reach-v3"},
    )
    with pytest.raises(CtdkitError, match="test/nan/reach-v0 episode 0: rewards contains NaN"):
        load_transitions("test/nan/reach-v0")


# ----- untrusted dataset files: every column checked, checksums verified, metadata trusted first
@pytest.fixture(scope="module")
def reach_episode() -> EpisodeData:
    """One 20-step scripted reach episode, and the env that gives the declared spaces."""
    from ctdkit.collect.rollout import rollout_episode
    from ctdkit.envs import make_env
    from ctdkit.policies import ScriptedPolicy

    env = make_env("reach-v3", max_episode_steps=20)
    episode = rollout_episode(env, ScriptedPolicy("reach-v3"), seed=0)
    episode.metadata |= {"task": "reach-v3", "task_index": 0}
    return episode, env


def _write_hdf5(root, episodes, env, dataset_id="test/bad/reach-v0") -> None:
    """A dataset written by Minari's own writer; hdf5 stores columns of any length as given."""
    from ctdkit.data.store import write_dataset

    with minari_root(root):
        write_dataset(
            dataset_id,
            episodes,
            env,
            data_format="hdf5",
            description="hand-built",
            algorithm_name="x",
            ref_min_score=None,
            ref_max_score=None,
            extra_metadata={"task": "reach-v3"},
        )


def _cut(name: str, rows: slice | None = None, cols: slice | None = None):
    def change(episode: EpisodeData) -> None:
        value = episode.infos[name] if name in episode.infos else getattr(episode, name)
        value = value[rows] if rows is not None else value[:, cols]
        if name in episode.infos:
            episode.infos[name] = value
        else:
            setattr(episode, name, value)

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _cut("observations", rows=slice(-1)),
            r"observations has shape \(20, 39\), expected \(21, 39\)",
        ),
        (
            _cut("observations", cols=slice(38)),
            r"observations has shape \(21, 38\), expected \(21, 39\)",
        ),
        (_cut("actions", cols=slice(3)), r"actions has shape \(20, 3\), expected \(20, 4\)"),
        (_cut("rewards", rows=slice(-1)), r"rewards has shape \(19,\), expected \(20,\)"),
        (_cut("terminations", rows=slice(-1)), r"terminations has shape \(19,\), expected \(20,\)"),
        (_cut("truncations", rows=slice(-1)), r"truncations has shape \(19,\), expected \(20,\)"),
        (
            _cut("success", rows=slice(-1)),
            r"infos\['success'\] has shape \(20, 1\), expected \(21, 1\)",
        ),
        (
            _cut("expert_action_mean", rows=slice(-1)),
            r"infos\['expert_action_mean'\] has shape \(20, 4\), expected \(21, 4\)",
        ),
        (
            _cut("expert_action_log_std", cols=slice(3)),
            r"infos\['expert_action_log_std'\] has shape \(21, 3\), expected \(21, 4\)",
        ),
    ],
    ids=[
        "obs-rows",
        "obs-width",
        "action-width",
        "rewards",
        "terminations",
        "truncations",
        "success",
        "label-rows",
        "label-width",
    ],
)
def test_a_column_that_does_not_fit_its_episode_is_one_line(
    reach_episode, tmp_path, change, message
):
    import copy

    episode, env = reach_episode
    good, bad = copy.deepcopy(episode), copy.deepcopy(episode)
    change(bad)
    _write_hdf5(tmp_path, [good, bad], env)
    with pytest.raises(
        CtdkitError, match=f"^dataset test/bad/reach-v0 episode 1: {message}"
    ) as err:
        load_transitions("test/bad/reach-v0", root=tmp_path)
    assert "\n" not in str(err.value)


def test_verify_recomputes_the_content_checksum(reach_episode, tmp_path):
    import h5py

    episode, env = reach_episode
    _write_hdf5(tmp_path, [episode, episode], env)
    clean = load_transitions("test/bad/reach-v0", root=tmp_path, verify=True)
    with h5py.File(tmp_path / "test/bad/reach-v0/data/main_data.hdf5", "r+") as f:
        f["episode_1/rewards"][5] += 1.0  # damage that keeps every shape
    tampered = load_transitions("test/bad/reach-v0", root=tmp_path)  # unverified: goes unseen
    assert tampered.rewards[20 + 5] == clean.rewards[20 + 5] + 1.0
    with pytest.raises(
        CtdkitError, match=r"^dataset test/bad/reach-v0 fails its content checksum \(stored"
    ) as err:
        load_transitions("test/bad/reach-v0", root=tmp_path, verify=True)
    assert "\n" not in str(err.value)
    metadata_path = tmp_path / "test/bad/reach-v0/data/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    del metadata["ctdkit"]["content_checksum"]
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(CtdkitError, match="has no stored content checksum to verify against"):
        load_transitions("test/bad/reach-v0", root=tmp_path, verify=True)


def test_verify_checks_a_groups_own_record(tiny, tmp_path):
    root = _copy_root(tiny, tmp_path)
    assert load_transitions(tiny.group_id, root=root, verify=True).checksum == tiny.checksum
    record_path = root / "test/tiny/namespace_metadata.json"
    record = json.loads(record_path.read_text())
    record["groups"]["v0"]["content_checksum"] = "0" * 64
    record_path.write_text(json.dumps(record))
    load_transitions(tiny.group_id, root=root)  # unverified
    with pytest.raises(CtdkitError, match="dataset group test/tiny-v0 fails its content checksum"):
        load_transitions(tiny.group_id, root=root, verify=True)


def test_a_foreign_entry_point_is_refused_before_minari_reads_it(tiny, tmp_path, monkeypatch):
    """Without stored spaces Minari builds the env its spec names: the code must never run."""
    root = _copy_root(tiny, tmp_path)
    marker = tmp_path / "marker"
    (tmp_path / "evil_env.py").write_text(
        f"def make(**kwargs):\n    open({str(marker)!r}, 'w').close()\n    raise SystemExit\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    metadata_path = root / tiny.tasks[0].dataset_id / "data" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    spec = json.loads(metadata["env_spec"])
    spec["entry_point"] = "evil_env:make"
    metadata["env_spec"] = metadata["eval_env_spec"] = json.dumps(spec)
    del metadata["observation_space"], metadata["action_space"]
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(CtdkitError, match=r"dataset test/tiny/reach-v0 refused: .*evil_env:make"):
        load_transitions(tiny.group_id, root=root)
    with pytest.raises(CtdkitError, match="refused"):
        load_transitions(tiny.tasks[0].dataset_id, root=root)
    assert not marker.exists()


def test_a_group_member_outside_the_root_is_refused(tiny, tmp_path):
    root = _copy_root(tiny, tmp_path)
    record_path = root / "test/tiny/namespace_metadata.json"
    record = json.loads(record_path.read_text())
    record["groups"]["v0"]["dataset_ids"][0] = "../../outside/reach-v0"
    record_path.write_text(json.dumps(record))
    with pytest.raises(
        CtdkitError, match=r"group member: '\.\./\.\./outside/reach-v0' is not a safe"
    ):
        load_transitions(tiny.group_id, root=root)
