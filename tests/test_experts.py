"""SAC experts: learning, exact resume, online datasets, `collect --policy sac`, bad input."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import tomllib
from pathlib import Path

import minari
import numpy as np
import pytest
import torch
import tyro
from torch import nn

from ctdkit.cli import run_cli
from ctdkit.collect import CollectConfig, collect, rollout_episode
from ctdkit.data import content_checksum, load_transitions
from ctdkit.data.store import minari_root
from ctdkit.envs import make_env
from ctdkit.experts import SACConfig, SACLearner, TrainExpertConfig, train_expert
from ctdkit.experts.run import ExpertTrainer
from ctdkit.policies import RandomPolicy
from ctdkit.policies.sac import SACActor, SACPolicy, actor_labels, expert_record, load_expert
from ctdkit.train_expert import main as train_expert_main

ONLINE_RECIPES = sorted((Path(__file__).parent.parent / "datasets").glob("*-sac-online-v*.toml"))


def tiny(out_dir: Path, total_steps: int, **changes) -> TrainExpertConfig:
    """A seconds-long run: 20-step episodes, small nets and batches."""
    sac = SACConfig(hidden=(32, 32), batch_size=16, warmup_steps=30, buffer_size=1000)
    config = TrainExpertConfig(
        task="reach-v3",
        total_steps=total_steps,
        sac=sac,
        max_episode_steps=20,
        eval_every=0,
        eval_episodes=0,
        checkpoint_every=40,
        out_dir=out_dir,
        progress=False,
    )
    return config.replace(**changes)


@pytest.fixture(scope="module")
def online_run(tmp_path_factory):
    """A tiny run that publishes its replay as ``test/reach-online-v0``."""
    tmp = tmp_path_factory.mktemp("online")
    config = tiny(tmp / "run", 100, dataset_id="test/reach-online-v0", root=tmp / "root")
    return config, train_expert(config)


def test_sac_return_beats_random_on_short_reach(tmp_path):
    """5000 steps of 100-step reach episodes (small nets, fast critic targets, γ 0.9, α 0.1):
    the deterministic actor's return is a clear multiple of the random policy's on the same
    goals, and its own untrained initialisation does not pass the same bar. Measured over
    seeds 0-7: 1.40-2.65× random (seed 0: 2.65×; its untrained actor 0.95×)."""
    sac = SACConfig(
        hidden=(64, 64),
        batch_size=128,
        buffer_size=5000,
        warmup_steps=500,
        actor_lr=1e-3,
        critic_lr=1e-3,
        gamma=0.9,
        tau=0.05,
        init_temperature=0.1,
        seed=0,
    )
    config = TrainExpertConfig(
        task="reach-v3",
        total_steps=5000,
        sac=sac,
        max_episode_steps=100,
        eval_every=0,
        eval_episodes=0,
        checkpoint_every=0,
        out_dir=tmp_path,
        progress=False,
    )
    train_expert(config)
    actor, _ = load_expert(tmp_path / "expert.pt")
    env = make_env("reach-v3", seed=0, max_episode_steps=100)
    seeds = range(1000, 1010)  # reset seeds other than the training episodes'

    def mean_return(policy) -> float:
        return float(np.mean([rollout_episode(env, policy, s).metadata["return"] for s in seeds]))

    sac_return, random_return = mean_return(SACPolicy(actor)), mean_return(RandomPolicy())
    untrained = SACLearner(sac, env.observation_space.shape[0], env.action_space.shape[0]).actor
    untrained_return = mean_return(SACPolicy(untrained))
    assert sac_return > 1.3 * random_return, (sac_return, random_return)
    assert untrained_return < 1.3 * random_return < sac_return, untrained_return


@pytest.mark.parametrize("demos", [False, True], ids=["plain", "demos+layernorm"])
def test_resumed_run_makes_the_same_updates_as_an_uninterrupted_one(tmp_path, demos):
    def config(name: str, steps: int, **changes) -> TrainExpertConfig:
        base = tiny(tmp_path / name, steps, **changes)
        if not demos:
            return base
        sac = dataclasses.replace(base.sac, critic_layer_norm=True)
        return base.replace(sac=sac, demo_episodes=2)

    whole = train_expert(config("whole", 120))
    train_expert(config("split", 60))
    resumed = train_expert(config("split", 120, resume=True))
    assert (resumed.env_steps, resumed.updates) == (whole.env_steps, whole.updates) == (120, 91)
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    for net in ("actor", "critic", "critic_target"):
        for name, value in a["learner"][net].items():
            assert torch.equal(value, b["learner"][net][name]), (net, name)
    assert torch.equal(a["learner"]["log_alpha"], b["learner"]["log_alpha"])
    assert torch.equal(a["replay"]["obs"], b["replay"]["obs"])
    assert a["rng"] == b["rng"]
    for i in range(6):  # the replay stream on disk is the same episode for episode
        name = f"episodes/{i:06d}.npz"
        x, y = np.load(tmp_path / "whole" / name), np.load(tmp_path / "split" / name)
        assert np.array_equal(x["actions"], y["actions"])


def test_demo_replay_feeds_a_fixed_share_of_every_batch(tmp_path):
    """--demo-episodes: scripted episodes on their own reset seeds, rebuilt identically, and
    each batch's last ``round(batch · fraction)`` rows drawn from them."""
    config = tiny(tmp_path / "run", 60, demo_episodes=3, demo_fraction=0.25)
    trainer = ExpertTrainer(config)
    demos = trainer.demos
    assert len(demos) == 60
    # reach-v3's success: the hand within 0.05 of the goal, recomputed from the stored rows
    rows = demos.next_obs[:60].numpy().reshape(3, 20, -1)
    reached = (np.linalg.norm(rows[..., 0:3] - rows[..., 36:39], axis=-1) <= 0.05).any(axis=1)
    assert trainer.demo_success == reached.mean()
    assert torch.equal(ExpertTrainer(config).demos.obs, demos.obs)  # deterministic rebuild
    trainer.train(60)
    assert trainer.learner.updates == 31
    online = trainer.replay.obs[: len(trainer.replay)]
    assert not any(torch.equal(online[0], row) for row in demos.obs)  # other reset seeds
    batch = trainer.sample_batch()
    assert batch["obs"].shape == (16, 39)

    def rows_in(rows, table):
        return [bool((table == row).all(dim=1).any()) for row in rows]

    assert all(rows_in(batch["obs"][:12], online)) and all(rows_in(batch["obs"][12:], demos.obs))
    assert not any(rows_in(batch["obs"][:12], demos.obs))
    # the critic's LayerNorm is opt-in; the actor (expert.pt) has the same shape either way
    layer_norm = dataclasses.replace(config.sac, critic_layer_norm=True)
    norms = [
        m for m in SACLearner(layer_norm, 39, 4).critic.modules() if isinstance(m, nn.LayerNorm)
    ]
    assert len(norms) == 4
    assert not any(isinstance(m, nn.LayerNorm) for m in trainer.learner.critic.modules())


def test_online_dataset_loads_with_minari_tagged_and_aligned(online_run):
    config, result = online_run
    assert result.dataset_id == "test/reach-online-v0" and result.episodes == 5
    with minari_root(config.root):
        dataset = minari.load_dataset("test/reach-online/reach-v0")
        metadata = list(dataset.storage.get_episode_metadata(dataset.episode_indices))
        assert content_checksum(dataset) == dataset.storage.metadata["ctdkit"]["content_checksum"]
    assert dataset.total_steps == 100 and dataset.total_episodes == 5
    assert [int(m["training_step"]) for m in metadata] == [0, 20, 40, 60, 80]
    # warm-up is 30 steps and the batch 16: updates begin at step 30, one per step
    assert [int(m["policy_version"]) for m in metadata] == [0, 0, 11, 31, 51]
    assert [int(m["random_steps"]) for m in metadata] == [20, 10, 0, 0, 0]
    assert all(m["policy"] == "sac" and "success" in m for m in metadata)
    assert dataset.storage.metadata["ctdkit"]["command"].startswith("python -m ctdkit.train_expert")

    data = load_transitions("test/reach-online-v0", root=config.root)
    same_episode = data.episode_index[1:] == data.episode_index[:-1]
    assert np.array_equal(
        data.next_observations[:-1][same_episode], data.observations[1:][same_episode]
    )
    assert data.truncated.sum() == 5 and not data.terminated.any()
    # the dataset is the replay the learner trained on, row for row
    replay = torch.load(config.out_dir / "checkpoint.pt", weights_only=True)["replay"]
    assert np.allclose(replay["obs"].numpy(), data.observations, atol=1e-6)
    assert np.array_equal(replay["actions"].numpy(), data.actions)
    # labels: the random policy's during warm-up (first 30 steps), then the acting actor's; the
    # final observation of the last episode is labelled by the final actor (expert.pt)
    warmup = data.step_index + 20 * data.episode_index < 30
    assert np.all(data.expert_action_mean[warmup] == 0.0)
    assert np.allclose(data.expert_action_log_std[warmup], -0.5 * np.log(3.0))
    assert not np.any(np.all(data.expert_action_mean[~warmup] == 0.0, axis=1))
    last = dataset[4]
    actor, _ = load_expert(config.out_dir / "expert.pt")
    mean, log_std = actor_labels(actor, last.observations[-1:])
    assert np.allclose(last.infos["expert_action_mean"][-1], mean[0], atol=1e-6)
    assert np.allclose(last.infos["expert_action_log_std"][-1], log_std[0], atol=1e-6)


def _random_expert(tmp_path: Path, task: str = "reach-v3", obs_dim: int = 39) -> Path:
    with torch.random.fork_rng():
        torch.manual_seed(1)
        actor = SACActor(obs_dim, 4, (32, 32))
    path = tmp_path / f"expert-{task}-{obs_dim}.pt"
    torch.save(expert_record(actor, task, {}), path)
    return path


def test_collect_with_sac_stores_the_actors_mean_and_log_std(tmp_path):
    checkpoint = _random_expert(tmp_path)
    config = CollectConfig(
        tasks=("reach-v3",),
        episodes_per_task=2,
        policy="sac",
        checkpoint=checkpoint,
        max_episode_steps=30,
        ref_episodes=1,
        workers=1,
        root=tmp_path / "root",
        progress=False,
    )
    result = collect(config)
    data = load_transitions(result.group_id, root=tmp_path / "root")
    actor, _ = load_expert(checkpoint)
    mean, log_std = actor_labels(actor, data.observations)
    np.testing.assert_allclose(data.expert_action_mean, mean, atol=1e-6)
    np.testing.assert_allclose(data.expert_action_log_std, log_std, atol=1e-6)
    np.testing.assert_allclose(data.actions, mean, atol=1e-6)  # deterministic acting
    stored = load_transitions(result.group_id, root=tmp_path / "root")
    assert len(stored) == 60
    with minari_root(tmp_path / "root"):
        meta = minari.load_dataset(result.tasks[0].dataset_id).storage.metadata["ctdkit"]
    assert meta["checkpoint_sha256"] == config.checkpoint_sha256()
    assert f"--checkpoint {checkpoint}" in meta["command"]


def test_sampling_sac_policy_is_seeded_and_keeps_its_labels(tmp_path):
    actor, _ = load_expert(_random_expert(tmp_path))
    obs = make_env("reach-v3").reset(seed=0)[0]
    policy = SACPolicy(actor, sample=True)
    policy.reset(5)
    first = policy.act(obs)
    policy.reset(5)
    again = policy.act(obs)
    assert np.array_equal(first.action, again.action)
    assert not np.allclose(first.action, first.mean)  # sampled, not the mean
    assert np.allclose(first.mean, actor_labels(actor, obs[None])[0][0], atol=1e-6)


def _cli_error(capsys, config_type, main, args) -> str:
    assert run_cli(config_type, main, args=args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ctdkit: "), err
    return err


def test_bad_input_is_one_line(tmp_path, capsys):
    out = str(tmp_path / "run")
    err = _cli_error(
        capsys, TrainExpertConfig, train_expert_main, ["--task", "reachh-v3", "--out-dir", out]
    )
    assert "unknown task 'reachh-v3'" in err and not (tmp_path / "run").exists()

    def collect_main(config):
        collect(config)

    base = ["--episodes-per-task", "1", "--policy", "sac", "--root", str(tmp_path / "root")]
    err = _cli_error(capsys, CollectConfig, collect_main, ["--tasks", "reach-v3", *base])
    assert "needs --checkpoint" in err
    other_task = _random_expert(tmp_path, task="push-v3")
    err = _cli_error(
        capsys,
        CollectConfig,
        collect_main,
        ["--tasks", "reach-v3", *base, "--checkpoint", str(other_task)],
    )
    assert "expert for push-v3, not for reach-v3" in err
    other_dim = _random_expert(tmp_path, obs_dim=21)
    err = _cli_error(
        capsys,
        CollectConfig,
        collect_main,
        ["--tasks", "reach-v3", *base, "--checkpoint", str(other_dim)],
    )
    assert "21-dim observations" in err
    assert not (tmp_path / "root" / "ctdkit").exists()


def test_resume_with_another_config_is_refused_and_overwrites_nothing(tmp_path, capsys):
    config = tiny(tmp_path / "run", 40)
    train_expert(config)
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    args = ["--out-dir", str(tmp_path / "run"), "--total-steps", "80", "--max-episode-steps", "20"]
    args += ["--sac.hidden", "32", "32", "--sac.batch-size", "16", "--sac.warmup-steps", "30"]
    args += ["--sac.buffer-size", "1000", "--no-progress", "--eval-episodes", "0"]
    err = _cli_error(
        capsys, TrainExpertConfig, train_expert_main, [*args, "--resume", "--sac.gamma", "0.5"]
    )
    assert "different config" in err and "sac.gamma" in err
    err = _cli_error(
        capsys, TrainExpertConfig, train_expert_main, args
    )  # neither --resume nor --overwrite
    assert "--resume" in err
    err = _cli_error(
        capsys,
        TrainExpertConfig,
        train_expert_main,
        [*args, "--resume", "--demo-episodes", "2", "--demo-fraction", "1.0"],
    )
    assert "--demo-fraction must be in (0, 1), got 1.0" in err
    after = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert after == before
    # a run recorded before a setting existed resumes: the missing setting was its default
    run_file = tmp_path / "run" / "run.json"
    record = json.loads(run_file.read_text())
    for key in ("demo_episodes", "demo_fraction", "sac.critic_layer_norm"):
        del record["fingerprint"][key]
    run_file.write_text(json.dumps(record))
    assert train_expert(config.replace(total_steps=60, resume=True)).env_steps == 60


@pytest.mark.parametrize("path", ONLINE_RECIPES, ids=lambda p: p.stem)
def test_online_recipe_names_a_train_expert_command_for_its_id(path):
    recipe = tomllib.loads(path.read_text())
    words = shlex.split(recipe["command"])
    assert words[:3] == ["python", "-m", "ctdkit.train_expert"]
    config = tyro.cli(TrainExpertConfig, args=words[3:])
    assert config.dataset_id == recipe["id"] and list(recipe["success"]) == [config.task]
    assert recipe["id"].split("/")[1].startswith(config.task.removesuffix("-v3") + "-sac-online")
    assert config.command() == recipe["command"]
    others = {
        tomllib.loads(other.read_text())["content_checksum"]
        for other in path.parent.glob("*.toml")
        if other != path
    }  # a sha256 in hex, and not one copied from another recipe
    assert re.fullmatch("[0-9a-f]{64}", recipe["content_checksum"])
    assert recipe["content_checksum"] not in others
    if config.stop_at_success is None:  # whole episodes up to the budget
        assert recipe["steps"] >= config.total_steps
    else:  # stopped at its target: the last evaluations reached it
        assert recipe["steps"] <= config.total_steps
        patience = recipe["training"]["eval_success"][-config.stop_patience :]
        assert all(s >= config.stop_at_success for s in patience)
    assert recipe["episodes"] * config.max_episode_steps == recipe["steps"]


def test_stop_at_success_ends_the_run_after_patience_evaluations(tmp_path, capsys):
    """Target 0 is met by every evaluation: the run stops after `stop_patience` of them, far
    short of its budget; an unreachable target (1.0 for an untrained reach actor over 500-step
    official episodes) runs the whole budget."""
    stop = dict(eval_every=20, eval_episodes=1, stop_at_success=0.0, stop_patience=2)
    early = train_expert(tiny(tmp_path / "early", 200, **stop))
    assert early.env_steps == 40 and [e["env_steps"] for e in early.evaluations] == [20, 40]
    full = train_expert(tiny(tmp_path / "full", 60, **{**stop, "stop_at_success": 1.0}))
    assert full.env_steps == 60 and len(full.evaluations) == 3
    assert full.final_success == 0.0
    command = tiny(tmp_path / "x", 200, **stop).command()
    assert "--stop-at-success 0.0 --stop-patience 2" in command and "--eval-every 20" in command
    out = str(tmp_path / "bad")
    err = _cli_error(
        capsys,
        TrainExpertConfig,
        train_expert_main,
        ["--stop-at-success", "1.5", "--out-dir", out],
    )
    assert "--stop-at-success must be in [0, 1], got 1.5" in err
    err = _cli_error(
        capsys,
        TrainExpertConfig,
        train_expert_main,
        ["--stop-at-success", "0.9", "--eval-every", "0", "--out-dir", out],
    )
    assert "needs --stop-patience >= 1 and periodic evaluations" in err
    assert not (tmp_path / "bad").exists()


def test_resume_reads_its_checkpoint_as_untrusted_data(tmp_path):
    """checkpoint.pt carries its kind; one written before that still resumes; a file of another
    kind in its place is one line, before any training."""
    from ctdkit.errors import CtdkitError

    train_expert(tiny(tmp_path / "run", 40))
    path = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    assert state["format"] == "ctdkit-sac-training/1"
    del state["format"]  # the layout before the format entry
    torch.save(state, path)
    assert train_expert(tiny(tmp_path / "run", 60, resume=True)).env_steps == 60
    torch.save(expert_record(SACActor(39, 4), "reach-v3", {}), path)  # an expert.pt, misplaced
    with pytest.raises(CtdkitError, match="is a SAC expert, not a SAC training checkpoint") as err:
        train_expert(tiny(tmp_path / "run", 80, resume=True))
    assert str(path) in str(err.value) and "\n" not in str(err.value)
