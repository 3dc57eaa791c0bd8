"""Labels independent of who acts (``--labeller``): a labeller's label at every visited state,
unlabelled data unchanged, the loader's choice of targets, concatenation, the memory hook."""

from __future__ import annotations

import shlex
from types import SimpleNamespace

import minari
import numpy as np
import pytest
import tyro

from ctdkit.collect import CollectConfig, collect, rollout_episode
from ctdkit.collect.runner import command_line
from ctdkit.data import concat_transitions, load_transitions
from ctdkit.data.checksum import combine_checksums, episode_metadata, episodes_checksum
from ctdkit.data.episode import (
    INFO_EXPERT_LOG_STD,
    INFO_EXPERT_MEAN,
    INFO_LABEL_LOG_STD,
    INFO_LABEL_MEAN,
    LABEL_KEYS,
)
from ctdkit.data.loader import _check_columns
from ctdkit.data.store import CTDKIT_METADATA_KEY, minari_root
from ctdkit.envs import make_env
from ctdkit.errors import CtdkitError
from ctdkit.policies import RandomPolicy, ScriptedPolicy
from ctdkit.policies.base import Policy, PolicyStep

#: per task: the first episode random, the second a noisy scripted expert (σ=0.3); door-open's
#: scripted controller writes into the observation it is given, so the labeller needs its copy
SMALL = dict(
    tasks=("reach-v3", "door-open-v3"),
    episodes_per_task=2,
    random_fraction=0.5,
    noise=0.3,
    max_episode_steps=20,
    ref_episodes=1,
    seed=5,
    workers=1,
    progress=False,
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same small collection twice: with the scripted labeller, and without one."""
    root = tmp_path_factory.mktemp("labels")
    labelled = collect(
        CollectConfig(**SMALL, labeller="scripted", root=root, dataset_id="test/lab-v1")
    )
    plain = collect(CollectConfig(**SMALL, root=root, dataset_id="test/lab-v0"))
    return root, labelled, plain


def _episodes(root, dataset_id):
    """(episodes, metadata, dataset-level ctdkit metadata) of one task dataset."""
    with minari_root(root):
        dataset = minari.load_dataset(dataset_id)
        episodes = list(dataset.iterate_episodes())
        return episodes, episode_metadata(dataset), dataset.storage.metadata[CTDKIT_METADATA_KEY]


def test_random_episodes_carry_the_scripted_experts_labels(pair):
    root, labelled, _ = pair
    for summary in labelled.tasks:
        episodes, metadatas, extra = _episodes(root, summary.dataset_id)
        assert extra["labeller"] == "scripted"
        expert = ScriptedPolicy(summary.task, noise=0.0)
        for index, (episode, meta) in enumerate(zip(episodes, metadatas, strict=True)):
            assert meta["labeller"] == "scripted"
            labels = [expert.act(obs.copy()) for obs in episode.observations]  # the final too
            np.testing.assert_array_equal(
                episode.infos[INFO_LABEL_MEAN], np.stack([s.mean for s in labels])
            )
            np.testing.assert_array_equal(
                episode.infos[INFO_LABEL_LOG_STD], np.stack([s.log_std for s in labels])
            )
            if index == 0:  # the random policy acted: its actions, its own labels
                assert meta["policy"] == "random"
                random = RandomPolicy()
                random.reset(int(meta["seed"]))
                acts = np.stack([random.act(obs).action for obs in episode.observations[:-1]])
                np.testing.assert_array_equal(episode.actions, acts)
                np.testing.assert_array_equal(episode.infos[INFO_EXPERT_MEAN], 0.0)
                np.testing.assert_allclose(episode.infos[INFO_EXPERT_LOG_STD], -0.5 * np.log(3))
            else:  # the noisy expert acted: its own log σ stays in the acting labels
                assert meta["policy"] == "scripted"
                np.testing.assert_allclose(episode.infos[INFO_EXPERT_LOG_STD], np.log(0.3))


def test_without_a_labeller_the_data_and_checksum_are_unchanged(pair):
    """No label keys, no metadata field; and removing those from the labelled data gives the
    plain collection's checksums exactly: the labeller changes nothing else."""
    root, labelled, plain = pair
    assert "labeller" not in CollectConfig(**SMALL).fingerprint()
    assert CollectConfig(**SMALL, labeller="scripted").fingerprint()["labeller"] == "scripted"
    stripped = []
    for mine, theirs in zip(labelled.tasks, plain.tasks, strict=True):
        plain_episodes, plain_meta, plain_extra = _episodes(root, theirs.dataset_id)
        assert "labeller" not in plain_extra and "--labeller" not in plain_extra["command"]
        assert all("labeller" not in m for m in plain_meta)
        assert all(not set(LABEL_KEYS) & set(e.infos) for e in plain_episodes)
        episodes, metas, _ = _episodes(root, mine.dataset_id)
        bare = [
            SimpleNamespace(
                **{k: getattr(e, k) for k in ("observations", "actions", "rewards")},
                terminations=e.terminations,
                truncations=e.truncations,
                infos={k: v for k, v in e.infos.items() if k not in LABEL_KEYS},
            )
            for e in episodes
        ]
        metas = [{k: v for k, v in m.items() if k != "labeller"} for m in metas]
        assert episodes_checksum(bare, metas) == theirs.checksum
        stripped.append((mine.task, theirs.checksum))
    assert combine_checksums(stripped) == plain.checksum != labelled.checksum


def test_loader_takes_the_labellers_labels_as_targets(pair):
    root, labelled, plain = pair
    data = load_transitions(labelled.group_id, root=root, verify=True)
    assert data.relabelled and data.has_expert_labels
    acting = load_transitions(plain.group_id, root=root)
    assert not acting.relabelled
    np.testing.assert_array_equal(data.actions, acting.actions)  # same acting data
    stored = [e for t in labelled.tasks for e in _episodes(root, t.dataset_id)[0]]
    for key, info in [("mean", INFO_LABEL_MEAN), ("log_std", INFO_LABEL_LOG_STD)]:
        want = np.concatenate([e.infos[info][:-1] for e in stored])  # row t: label at obs t
        np.testing.assert_array_equal(getattr(data, f"expert_action_{key}"), want)
    random_rows = acting.episode_index % 2 == 0  # each task's first episode: random
    np.testing.assert_array_equal(acting.expert_action_mean[random_rows], 0.0)
    assert np.abs(data.expert_action_mean[random_rows]).max() > 0


def test_loader_checks_the_label_columns_width():
    n, bad = 3, np.zeros((4, 3), dtype=np.float32)
    episode = SimpleNamespace(
        id=0,
        observations=np.zeros((n + 1, 39)),
        actions=np.zeros((n, 4), dtype=np.float32),
        rewards=np.zeros(n),
        terminations=np.zeros(n, dtype=bool),
        truncations=np.zeros(n, dtype=bool),
        infos={"success": np.zeros((n + 1, 1), dtype=bool), INFO_LABEL_MEAN: bad},
    )
    with pytest.raises(CtdkitError, match=r"label_action_mean.*\(4, 4\)") as error:
        _check_columns("test/x", episode, 39, 4)
    assert "\n" not in str(error.value)


def test_concat_renumbers_episodes_and_refuses_other_tasks(pair):
    root, labelled, plain = pair
    parts = [load_transitions(i, root=root) for i in (plain.group_id, labelled.group_id)]
    both = concat_transitions(parts, "test/both-v0")
    assert len(both) == len(parts[0]) + len(parts[1]) and both.dataset_id == "test/both-v0"
    assert both.num_episodes == parts[0].num_episodes + parts[1].num_episodes == 8
    np.testing.assert_array_equal(np.unique(both.episode_index), np.arange(8))
    np.testing.assert_array_equal(both.episode_index[len(parts[0]) :], parts[1].episode_index + 4)
    assert both.checksum == combine_checksums((p.dataset_id, p.checksum) for p in parts)
    assert not both.relabelled and both.tasks == parts[0].tasks
    assert concat_transitions(parts[1:], "test/one-v1").relabelled
    reach_only = load_transitions(labelled.tasks[0].dataset_id, root=root)
    with pytest.raises(CtdkitError, match="tasks reach-v3,") as error:
        concat_transitions([parts[0], reach_only], "test/bad-v0")
    assert "\n" not in str(error.value)


class _Remembering:
    """A scripted expert that records the order of its calls (a policy with a memory)."""

    name = "remembering"

    def __init__(self):
        self.inner, self.calls = ScriptedPolicy("reach-v3"), []

    def reset(self, seed: int) -> None:
        self.calls.append(("reset", seed))

    def act(self, observation: np.ndarray) -> PolicyStep:
        self.calls.append(("act", observation.copy()))
        return self.inner.act(observation)

    def observe(self, action, reward, next_observation) -> None:
        self.calls.append(("observe", action.copy(), reward, next_observation.copy()))


def test_observe_hook_gets_each_executed_action_and_reward():
    env = make_env("reach-v3", seed=0, max_episode_steps=6)
    policy, labeller = _Remembering(), _Remembering()
    assert isinstance(policy, Policy)
    episode = rollout_episode(env, policy, seed=11, labeller=labeller)
    n = episode.length
    assert [c[0] for c in policy.calls] == ["reset"] + ["act", "observe"] * n + ["act"]
    observed = [c for c in policy.calls if c[0] == "observe"]
    np.testing.assert_array_equal(np.stack([c[1] for c in observed]), episode.actions)
    np.testing.assert_array_equal([c[2] for c in observed], episode.rewards)
    np.testing.assert_array_equal(np.stack([c[3] for c in observed]), episode.observations[1:])
    # the labeller is reset with the seed and asked at every observation, the final one too
    assert labeller.calls[0] == ("reset", 11)
    asked = np.stack([c[1] for c in labeller.calls if c[0] == "act"])
    np.testing.assert_array_equal(asked, episode.observations)


def test_labelled_id_is_v1_and_sac_labeller_needs_a_checkpoint():
    config = CollectConfig(tasks=("MT10",), random_fraction=0.5, labeller="scripted")
    assert config.resolved_dataset_id() == "ctdkit/mt10-scripted-random0p5-v1"
    assert CollectConfig(tasks=("MT10",), random_fraction=0.5).resolved_dataset_id().endswith("-v0")
    words = shlex.split(command_line(config))
    assert words[words.index("--labeller") + 1] == "scripted"
    assert tyro.cli(CollectConfig, args=words[3:]).labeller == "scripted"
    assert "--labeller" not in command_line(config.replace(labeller="none", dataset_id=None))
    with pytest.raises(CtdkitError, match="--labeller sac needs --checkpoint") as error:
        CollectConfig(tasks=("reach-v3",), labeller="sac")
    assert "\n" not in str(error.value)
    with pytest.raises(CtdkitError, match="unknown labeller"):
        CollectConfig(tasks=("reach-v3",), labeller="oracle")


def test_sac_labeller_labels_with_the_checkpoint_that_fits_every_task(tmp_path):
    import torch

    from ctdkit.policies.sac import SACActor, actor_labels, expert_record, load_expert

    with torch.random.fork_rng():
        torch.manual_seed(1)
        actor = SACActor(39, 4, (32, 32))
    checkpoint = tmp_path / "expert.pt"
    torch.save(expert_record(actor, "reach-v3", {}), checkpoint)
    config = CollectConfig(
        tasks=("reach-v3",),
        episodes_per_task=1,
        policy="random",
        labeller="sac",
        checkpoint=checkpoint,
        max_episode_steps=10,
        ref_episodes=0,
        workers=1,
        root=tmp_path / "root",
        progress=False,
    )
    assert config.resolved_dataset_id() == "ctdkit/reach-random-v1"
    assert config.fingerprint()["checkpoint_sha256"] == config.checkpoint_sha256()
    result = collect(config)
    data = load_transitions(result.group_id, root=tmp_path / "root")
    mean, log_std = actor_labels(load_expert(checkpoint)[0], data.observations)
    assert data.relabelled
    np.testing.assert_allclose(data.expert_action_mean, mean, atol=1e-6)
    np.testing.assert_allclose(data.expert_action_log_std, log_std, atol=1e-6)
    assert not np.allclose(data.actions, mean, atol=1e-2)  # the random policy acted
    extra = _episodes(tmp_path / "root", result.tasks[0].dataset_id)[2]
    assert extra["labeller"] == "sac" and extra["checkpoint_sha256"] == config.checkpoint_sha256()
    assert f"--checkpoint {checkpoint}" in extra["command"] and "--labeller sac" in extra["command"]
    with pytest.raises(CtdkitError, match="expert for reach-v3, not for push-v3"):
        collect(config.replace(tasks=("reach-v3", "push-v3"), dataset_id="test/two-v1"))
