"""Collective SAC: distillation learns, the context is used, TD handles truncation, I/O."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from ctdkit.collective.agent import CollectiveAgent
from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.collective.context import make_context
from ctdkit.collective.learner import CollectiveSAC, td_target
from ctdkit.errors import CtdkitError
from ctdkit.eval import RandomAgent, evaluate_all_goals

FAST = dict(batch_size=256, actor_lr=1e-3, critic=False, seed=0)


@pytest.fixture(scope="module")
def data(reach_push):
    return reach_push


@pytest.fixture(scope="module")
def oracle(data):
    learner = CollectiveSACConfig(conditioning="oracle", **FAST).create()
    learner.fit(data, 1500, context=make_context("oracle", data), progress=False)
    return learner


def _action_mse(learner: CollectiveSAC, data) -> float:
    context, _ = learner.context.for_transitions(data)
    return float(
        np.mean((learner.predict(data.observations, context) - data.expert_action_mean) ** 2)
    )


def test_td_target_bootstraps_through_truncation_but_not_termination():
    rewards, next_q = torch.tensor([1.0, 1.0]), torch.tensor([10.0, 10.0])
    terminated = torch.tensor([True, False])  # the second row is a truncation or a mid-episode step
    np.testing.assert_allclose(td_target(rewards, terminated, next_q, 0.9).numpy(), [1.0, 10.0])


def test_distillation_cuts_action_error_far_below_the_untrained_actor(data, oracle):
    untrained = CollectiveSACConfig(conditioning="oracle", **FAST).create()
    untrained.build(39, 4, make_context("oracle", data))
    before, after = _action_mse(untrained, data), _action_mse(oracle, data)
    assert after < 0.2 * before, (before, after)


def test_distilled_policy_succeeds_where_random_does_not(oracle):
    kwargs = dict(tasks=("reach-v3",), seed=11, goals=range(6), max_episode_steps=150)
    ours = evaluate_all_goals(CollectiveAgent(oracle), **kwargs).mean_success
    random = evaluate_all_goals(RandomAgent(), **kwargs).mean_success
    assert ours >= random + 0.5, (ours, random)


def test_the_policy_uses_its_context(data, oracle):
    context, _ = oracle.context.for_transitions(data)
    swapped = context[:, ::-1].copy()  # reach <-> push one-hot
    rows = slice(0, 300)
    a = oracle.predict(data.observations[rows], context[rows])
    b = oracle.predict(data.observations[rows], swapped[rows])
    assert np.abs(a - b).mean() > 0.05


def test_save_load_gives_identical_actions_and_resumes_the_same_updates(data, oracle, tmp_path):
    path = tmp_path / "collective.pt"
    oracle.save(path)
    loaded = CollectiveSAC.load(path)
    context, _ = oracle.context.for_transitions(data)
    np.testing.assert_array_equal(
        loaded.predict(data.observations[:50], context[:50]),
        oracle.predict(data.observations[:50], context[:50]),
    )
    assert loaded.step == oracle.step and loaded.config == oracle.config
    # continuing from the checkpoint = continuing the original run
    continued = CollectiveSAC.load(path)
    first = continued.fit(data, 3, progress=False, log_every=1)
    again = CollectiveSAC.load(path).fit(data, 3, progress=False, log_every=1)
    assert first == again
    # d3rlpy's meaning of fit(n): n more steps from where the checkpoint was
    assert [h["step"] for h in first] == [oracle.step + 1, oracle.step + 2, oracle.step + 3]


def test_critic_target_starts_as_the_critic_and_td_loss_falls(data):
    learner = CollectiveSACConfig(conditioning="none", batch_size=128, critic_lr=1e-3).create()
    learner.build(39, 4, make_context("none", data))
    for p, q in zip(learner.critic.parameters(), learner.critic_target.parameters(), strict=True):
        assert torch.equal(p, q)
    history = learner.fit(data, 300, progress=False, log_every=100)
    assert history[-1]["critic"] < history[0]["critic"]


def test_bad_inputs_are_one_line_errors(data, tmp_path):
    with pytest.raises(CtdkitError, match="unknown conditioning mode 'cls'"):
        make_context("cls", data)
    with pytest.raises(CtdkitError, match="needs a trained encoder"):
        make_context("ctd", data)
    unlabelled = dataclasses.replace(data, has_expert_labels=False)
    learner = CollectiveSACConfig(conditioning="none", **FAST).create()
    with pytest.raises(CtdkitError, match="has no expert labels"):
        learner.fit(unlabelled, 1, context=make_context("none", data), progress=False)
    narrow = dataclasses.replace(data, observations=data.observations[:, :30])
    learner = CollectiveSACConfig(conditioning="none", **FAST).create()
    learner.build(39, 4, make_context("none", data))
    with pytest.raises(CtdkitError, match="observation width 30 does not match the agent's 39"):
        learner.fit(narrow, 1, progress=False)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(CtdkitError, match=r"collective checkpoint .*broken\.pt is unreadable"):
        CollectiveSAC.load(broken)
    oracle_agent = CollectiveAgent(CollectiveSACConfig(conditioning="oracle", **FAST).create())
    oracle_agent.learner.build(39, 4, make_context("oracle", data))
    oracle_agent.bind(["hammer-v3"])
    with pytest.raises(CtdkitError, match="not trained on task 'hammer-v3'"):
        oracle_agent.act(np.zeros((1, 39)), None)


def test_a_constant_context_loses_when_tasks_share_a_scene_without_goal(data):
    """reach and push share the scene; with the goal hidden only the context tells them apart."""
    learner = CollectiveSACConfig(conditioning="oracle", view="goal-hidden", **FAST).create()
    learner.fit(data, 1500, context=make_context("oracle", data), progress=False)
    true, _ = learner.context.for_transitions(data)
    constant = np.full_like(true, 0.5)
    obs, labels = data.observations, data.expert_action_mean
    true_mse = np.mean((learner.predict(obs, true) - labels) ** 2)
    constant_mse = np.mean((learner.predict(obs, constant) - labels) ** 2)
    assert constant_mse > 2 * true_mse, (constant_mse, true_mse)


def test_train_collective_cli_resumes_and_its_checkpoint_evaluates(reach_push, tmp_path):
    from ctdkit.collective.run import TrainCollectiveConfig, train_collective
    from ctdkit.eval.run import EvaluateConfig, run_evaluation

    root = tmp_path / "minari"
    from ctdkit.collect import CollectConfig, collect

    group = collect(
        CollectConfig(
            tasks=("reach-v3",),
            episodes_per_task=2,
            max_episode_steps=60,
            ref_episodes=0,
            root=root,
            dataset_id="test/tc-v0",
            progress=False,
        )
    ).group_id
    base = dict(
        dataset_id=group,
        root=root,
        out_dir=tmp_path / "run",
        progress=False,
        collective=CollectiveSACConfig(conditioning="oracle", **FAST),
    )
    first = train_collective(TrainCollectiveConfig(**base, n_steps=20, checkpoint_every=10))
    assert first.steps == 20 and first.weights.exists()
    with pytest.raises(
        CtdkitError, match=r"already holds a collective run: pass --resume .*--overwrite"
    ):
        train_collective(TrainCollectiveConfig(**base, n_steps=30))
    (tmp_path / "run" / "run.json").unlink()  # a run from before run.json: its checkpoint speaks
    changed = {
        **base,
        "collective": CollectiveSACConfig(conditioning="oracle", **{**FAST, "seed": 1}),
    }
    with pytest.raises(CtdkitError, match=r"different config \(collective\.seed differ\)"):
        train_collective(TrainCollectiveConfig(**changed, n_steps=30, resume=True))
    resumed = train_collective(TrainCollectiveConfig(**base, n_steps=30, resume=True))
    assert resumed.steps == 30 and len(resumed.history) == 1  # n_steps - step more: 10
    assert json.loads((tmp_path / "run" / "history.json").read_text())[-1]["step"] == 30
    summary = run_evaluation(
        EvaluateConfig(
            agent="collective",
            checkpoint=first.weights,
            tasks=("reach-v3",),
            seeds=(3,),
            episodes=1,
            out=tmp_path / "eval",
            progress=False,
        )
    )
    # the CLI's numbers are those of its checkpoint evaluated here, episode for episode
    from ctdkit.eval import evaluate_official

    again = evaluate_official(CollectiveAgent(CollectiveSAC.load(first.weights)), "reach-v3", 3, 1)
    assert summary["mean_success"] == again.mean_success and summary["tasks"]["reach-v3"]["n"] == 1
    saved = json.loads((tmp_path / "eval" / "official-seed3.json").read_text())
    assert saved["result"]["episodes"] == again.episodes
    with pytest.raises(CtdkitError, match="needs --checkpoint"):
        run_evaluation(EvaluateConfig(agent="collective", out=tmp_path / "e2", progress=False))


def test_the_actor_does_not_depend_on_the_critic(data):
    """Success tables may train critic-free: the actor's updates are the same either way."""
    actors = []
    for critic in (True, False):
        learner = CollectiveSACConfig(**{**FAST, "critic": critic}, conditioning="oracle").create()
        learner.fit(data, 20, context=make_context("oracle", data), progress=False)
        actors.append(learner.actor.state_dict())
    for name, value in actors[0].items():
        torch.testing.assert_close(value, actors[1][name], rtol=0, atol=0)


def test_observations_are_standardised_by_the_training_data(data, oracle):
    obs = torch.as_tensor(data.observations)
    torch.testing.assert_close(oracle.actor.obs_norm.mean, obs.mean(0).float())
    assert torch.all(oracle.actor.obs_norm.std >= oracle.config.obs_std_floor)
    raw = CollectiveSACConfig(conditioning="oracle", normalize_observations=False, **FAST).create()
    raw.fit(data, 1, context=make_context("oracle", data), progress=False)
    assert torch.all(raw.actor.obs_norm.mean == 0) and torch.all(raw.actor.obs_norm.std == 1)


def test_the_context_is_standardised_only_when_asked(data, oracle, tmp_path):
    context = make_context("oracle", data)
    scaled = CollectiveSACConfig(conditioning="oracle", normalize_context=True, **FAST).create()
    scaled.fit(data, 5, context=context, progress=False)
    one_hot = torch.as_tensor(context.for_transitions(data)[0])
    for net in (scaled.actor, scaled.critic, scaled.critic_target):
        torch.testing.assert_close(net.context_norm.mean, one_hot.mean(0))
        torch.testing.assert_close(net.context_norm.std, one_hot.std(0).clamp_min(0.05))
    # the actor sees the standardised one-hot: its first layer gets (c - mean) / std
    obs = data.observations[:3]
    c = one_hot[:3].numpy()
    x = torch.cat(
        [
            scaled.actor.context_norm(torch.as_tensor(c)),
            scaled.actor.obs_norm(torch.as_tensor(obs)),
        ],
        dim=-1,
    )
    expected = torch.tanh(scaled.actor.gaussian(x)[0]).detach().numpy()
    np.testing.assert_allclose(scaled.predict(obs, c), expected, rtol=1e-6)
    path = tmp_path / "scaled.pt"
    scaled.save(path)
    loaded = CollectiveSAC.load(path)
    assert loaded.config.normalize_context
    np.testing.assert_array_equal(loaded.predict(obs, c), scaled.predict(obs, c))
    # off (the default): no context state and no new field in the record, as before the option
    assert "normalize_context" not in oracle.config.record()
    assert not any("context_norm" in key for key in oracle.actor.state_dict())
    with pytest.raises(CtdkitError, match="normalize_context does not apply to ctd-e2e"):
        CollectiveSACConfig(conditioning="ctd-e2e", normalize_context=True)


def test_the_averaged_actor_follows_polyak_acts_and_survives_save_load(data, tmp_path):
    """actor_average > 0: after every actor step the copy moves by the rate toward the actor,
    and it (not the last weights) is what predicts; the checkpoint carries it; 0 changes
    nothing (no entry, no field in the record, the same weights as before the option)."""
    rate = 0.1
    averaged = CollectiveSACConfig(conditioning="oracle", actor_average=rate, **FAST).create()
    plain = CollectiveSACConfig(conditioning="oracle", **FAST).create()
    context = make_context("oracle", data)
    averaged.fit(data, 1, context=context, progress=False)
    plain.fit(data, 1, context=context, progress=False)
    before = {k: v.clone() for k, v in averaged.actor_average.state_dict().items()}
    trained = {k: v.clone() for k, v in averaged.actor.state_dict().items()}
    averaged.fit(data, 1, progress=False)
    plain.fit(data, 1, progress=False)
    for name, value in averaged.actor_average.state_dict().items():
        if name.startswith(("obs_norm", "context_norm")):  # fitted once, as the actor's
            torch.testing.assert_close(value, averaged.actor.state_dict()[name])
            continue
        expected = before[name] + rate * (averaged.actor.state_dict()[name] - before[name])
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-7)
        assert not torch.equal(value, averaged.actor.state_dict()[name])
    assert any(not torch.equal(trained[k], averaged.actor.state_dict()[k]) for k in trained)
    # the average never feeds back: the trained actor's updates equal the plain learner's
    for name, value in plain.actor.state_dict().items():
        torch.testing.assert_close(averaged.actor.state_dict()[name], value, rtol=0, atol=0)
    obs, c = data.observations[:20], context.for_transitions(data)[0][:20]
    with torch.no_grad():
        mean, _ = averaged.actor_average(torch.as_tensor(c), torch.as_tensor(obs))
    np.testing.assert_array_equal(averaged.predict(obs, c), torch.tanh(mean).numpy())
    assert not np.array_equal(averaged.predict(obs, c), plain.predict(obs, c))
    path = tmp_path / "averaged.pt"
    averaged.save(path)
    loaded = CollectiveSAC.load(path)
    np.testing.assert_array_equal(loaded.predict(obs, c), averaged.predict(obs, c))
    assert loaded.config.actor_average == rate
    # off (the default): neither a checkpoint entry nor a field in the record
    assert plain.actor_average is None and "actor_average" not in plain.config.record()
    plain.save(tmp_path / "plain.pt")
    assert "actor_average" not in torch.load(tmp_path / "plain.pt", weights_only=True)
    with pytest.raises(CtdkitError, match="actor_average must be in"):
        CollectiveSACConfig(actor_average=1.5)
