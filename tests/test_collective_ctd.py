"""Collective SAC with the ``ctd`` context: the frozen encoder's CLS embedding; ``ctd-e2e``: the
encoder finetuned through the distillation loss."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from test_collective import FAST

from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.collective.context import make_context
from ctdkit.collective.learner import CollectiveSAC
from ctdkit.errors import CtdkitError


@pytest.fixture(scope="module")
def data(reach_push):
    return reach_push


@pytest.fixture(scope="module")
def encoder(data):
    from ctdkit.encoder import EncoderConfig

    encoder = EncoderConfig(window=5, view="goal-hidden", seed=0).create()
    encoder.fit(data, 5, progress=False)
    return encoder


@pytest.mark.parametrize("mode", ["ctd", "ctd+history"])
def test_ctd_embedding_for_training_equals_the_one_at_act_time(data, encoder, mode):
    from ctdkit.policies.history import EpisodeHistory

    context = make_context(mode, data, encoder)
    train, train_next = context.for_transitions(data)
    rows = np.flatnonzero(data.episode_index == 2)
    history = EpisodeHistory(1, 39, 4, len(rows))
    history.start(0, data.observations[rows[0]])
    for row in rows:
        np.testing.assert_allclose(
            context.for_history(history, ["push-v3"])[0], train[row], atol=1e-5
        )
        history.record(
            np.array([0]),
            data.actions[row][None],
            data.rewards[row][None],
            data.next_observations[row][None],
        )
    np.testing.assert_allclose(
        context.for_history(history, ["push-v3"])[0], train_next[rows[-1]], atol=1e-5
    )  # the window ending at the episode's final observation


@pytest.mark.parametrize("mode", ["ctd", "ctd+history"])
def test_ctd_agent_checkpoint_carries_its_encoder(data, encoder, tmp_path, mode):
    learner = CollectiveSACConfig(conditioning=mode, view="goal-hidden", **FAST).create()
    learner.fit(data, 5, context=make_context(mode, data, encoder), progress=False)
    learner.save(tmp_path / "ctd.pt")
    loaded = CollectiveSAC.load(tmp_path / "ctd.pt")  # no encoder passed: it is inside
    context, _ = loaded.context.for_transitions(data)
    np.testing.assert_allclose(context, learner.context.for_transitions(data)[0], atol=1e-6)
    np.testing.assert_array_equal(
        loaded.predict(data.observations[:20], context[:20]),
        learner.predict(data.observations[:20], context[:20]),
    )


def test_an_encoder_that_sees_the_goal_is_refused_for_a_goal_hidden_agent(data):
    from ctdkit.encoder import EncoderConfig

    full_view = EncoderConfig(window=5, view="full").create()
    full_view.fit(data, 2, progress=False)
    learner = CollectiveSACConfig(conditioning="ctd", view="goal-hidden", **FAST).create()
    with pytest.raises(CtdkitError, match="leak the goal"):
        learner.fit(data, 1, context=make_context("ctd", data, full_view), progress=False)


def test_ctd_with_history_is_the_cls_beside_the_raw_window(data, encoder):
    both, _ = make_context("ctd+history", data, encoder, history_steps=3).for_transitions(data)
    cls, _ = make_context("ctd", data, encoder).for_transitions(data)
    raw, _ = make_context("history", data, history_steps=3).for_transitions(data)
    np.testing.assert_array_equal(both, np.concatenate([cls, raw], 1))
    with pytest.raises(CtdkitError, match="'ctd\\+history' needs a trained encoder"):
        make_context("ctd+history", data)


# ----- ctd-e2e: the encoder finetuned through the distillation loss ----------------------------
E2E = dict(FAST, batch_size=64, encoder_lr=1e-3)  # tiny budgets: a larger step than 1e-4


def _weights(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same(a, b, where="state"):
    """Nested state dicts / lists of tensors and plain values equal bit for bit."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=where)
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def e2e(data, encoder):
    """A ctd-e2e collective trained a few updates from the shared encoder (which it copies)."""
    before = _weights(encoder.network)
    learner = CollectiveSACConfig(conditioning="ctd-e2e", view="goal-hidden", **E2E).create()
    learner.fit(data, 4, context=make_context("ctd-e2e", data, encoder), progress=False)
    _assert_same(_weights(encoder.network), before)  # the caller's encoder is not touched
    return learner


def test_ctd_e2e_finetunes_its_encoder_and_ctd_leaves_it_bit_identical(data, encoder, e2e):
    before = _weights(encoder.network)
    ctd = CollectiveSACConfig(conditioning="ctd", view="goal-hidden", **FAST).create()
    ctd.fit(data, 4, context=make_context("ctd", data, encoder), progress=False)
    assert ctd.context.encoder is encoder and ctd.encoder_optim is None
    _assert_same(_weights(encoder.network), before)
    finetuned = e2e.context.encoder.network.state_dict()
    changed = {k for k, v in before.items() if not torch.equal(v, finetuned[k])}
    # every weight on the path to the CLS moved; the reconstruction heads get no gradient
    assert {"cls", "embedding_head.weight", "embed_reward.0.weight", "position.weight"} <= changed
    assert any(k.startswith("layers.2.") for k in changed)
    assert not any(k.startswith("reconstruct_") for k in changed), changed
    assert not any(k.endswith(("_mean", "_std")) for k in changed)  # normalisation: buffers
    assert not e2e.context.encoder.network.training  # eval mode outside fit, as at act time


def test_ctd_e2e_training_windows_embed_as_at_act_time(data, e2e):
    """The rows' windows the finetuning embeds are the act-time windows: in eval mode the
    differentiable forward gives for_history's context, step by step, and the next windows
    give the next contexts (at the episode's end: the window of its final observation)."""
    from ctdkit.policies.history import EpisodeHistory

    context = e2e.context
    context.attach(data)
    train, train_next = context.for_transitions(data)
    rows = np.flatnonzero(data.episode_index == 2)
    with torch.no_grad():
        differentiable = context.encoder.embed_differentiable(context.windows(rows)).numpy()
        following = context.encoder.embed_differentiable(context.next_windows(rows)).numpy()
    np.testing.assert_allclose(differentiable, train[rows], atol=1e-5)
    np.testing.assert_allclose(following, train_next[rows], atol=1e-5)
    history = EpisodeHistory(1, 39, 4, len(rows))
    history.start(0, data.observations[rows[0]])
    for i, row in enumerate(rows):
        np.testing.assert_allclose(context.for_history(history, [])[0], train[row], atol=1e-5)
        history.record(
            np.array([0]),
            data.actions[row][None],
            data.rewards[row][None],
            data.next_observations[row][None],
        )
        np.testing.assert_allclose(context.for_history(history, [])[0], following[i], atol=1e-5)
    context.encoder.network.train()  # dropout: the finetuning's contexts are noisier
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        noisy = context.encoder.embed_differentiable(context.windows(rows)).numpy()
    context.encoder.network.eval()
    assert np.abs(noisy - differentiable).max() > 1e-3


def test_ctd_e2e_resumes_exactly_encoder_and_its_optimiser_included(data, encoder, tmp_path):
    config = CollectiveSACConfig(
        conditioning="ctd-e2e", view="goal-hidden", **{**E2E, "critic": True}
    )
    torch.manual_seed(7)
    global_rng = torch.get_rng_state()
    straight = config.create()
    straight.fit(data, 4, context=make_context("ctd-e2e", data, encoder), progress=False)
    assert torch.equal(torch.get_rng_state(), global_rng)  # dropout drew from its own stream
    first = config.create()
    first.fit(data, 2, context=make_context("ctd-e2e", data, encoder), progress=False)
    first.save(tmp_path / "e2e.pt")
    resumed = CollectiveSAC.load(tmp_path / "e2e.pt")
    resumed.fit(data, 2, progress=False)
    for learner in (resumed, straight):
        learner.save(tmp_path / f"{id(learner)}.pt")
    a, b = (torch.load(tmp_path / f"{id(x)}.pt", weights_only=True) for x in (resumed, straight))
    assert {"encoder_optim", "encoder_rng"} <= a.keys() and a["step"] == 4
    assert a["encoder_optim"]["state"]  # Adam's moments of the encoder, saved and restored
    _assert_same(a, b)  # weights, encoder, every optimiser, every RNG stream
    # the actor's updates (and the encoder's) do not depend on the critic
    actor_only = CollectiveSACConfig(**{**dataclasses.asdict(config), "critic": False}).create()
    actor_only.fit(data, 4, context=make_context("ctd-e2e", data, encoder), progress=False)
    _assert_same(_weights(actor_only.actor), _weights(straight.actor))
    _assert_same(
        _weights(actor_only.context.encoder.network), _weights(straight.context.encoder.network)
    )


def test_ctd_e2e_refusals_are_one_line(data, encoder, e2e, tmp_path):
    from ctdkit.bench import parse_algo

    e2e.save(tmp_path / "e2e.pt")
    with pytest.raises(CtdkitError, match="acts with the encoder it finetuned"):
        CollectiveSAC.load(tmp_path / "e2e.pt", encoder=encoder)
    learner = CollectiveSACConfig(conditioning="ctd", view="goal-hidden", **FAST).create()
    with pytest.raises(CtdkitError, match="'ctd' cannot train on a 'ctd-e2e' context"):
        learner.fit(data, 1, context=make_context("ctd-e2e", data, encoder), progress=False)
    for algo in ("ctd-e2e", "bc-ctd-e2e"):
        with pytest.raises(CtdkitError, match="the bench has no ctd-e2e"):
            parse_algo(algo)
    with pytest.raises(CtdkitError, match="encoder_lr must be a positive number"):
        CollectiveSACConfig(conditioning="ctd-e2e", encoder_lr=0.0)


def test_a_ctd_e2e_collective_is_a_teacher_like_a_ctd_one(data, e2e, tmp_path):
    from ctdkit.policies.history import EpisodeHistory
    from ctdkit.student.teacher import FrozenCollective

    e2e.save(tmp_path / "e2e.pt")
    teacher = FrozenCollective(tmp_path / "e2e.pt", "reach-v3")
    assert teacher.mode == "ctd-e2e" and teacher.dim == e2e.context.dim
    history = EpisodeHistory(1, 39, 4, 3)
    history.start(0, data.observations[0])
    np.testing.assert_array_equal(
        teacher.context(history), e2e.context.for_history(history, ["reach-v3"])
    )


@pytest.fixture(scope="module")
def reach_pick_place(tmp_path_factory):
    """reach and pick-place (they reset to identical observations; their rewards differ from
    the first step): 14 noisy-expert episodes of 25 steps each."""
    from ctdkit.collect import CollectConfig, collect
    from ctdkit.data import load_transitions

    root = tmp_path_factory.mktemp("reach-pick-place")
    result = collect(
        CollectConfig(
            tasks=("reach-v3", "pick-place-v3"),
            episodes_per_task=14,
            max_episode_steps=25,
            noise=0.3,
            ref_episodes=0,
            root=root,
            dataset_id="test/reach-pick-place-v0",
            workers=1,  # 28 short episodes: a second process costs more than it saves
            progress=False,
        )
    )
    return load_transitions(result.group_id, root=result.root)


def _episodes(data, keep: np.ndarray):
    """The rows of the episodes ``keep`` marks, renumbered."""
    rows = keep[data.episode_index]
    arrays = {name: value[rows] for name, value in data.arrays().items()}
    arrays["episode_index"] = np.unique(arrays["episode_index"], return_inverse=True)[1]
    return dataclasses.replace(data, **arrays)


def test_ctd_e2e_beats_the_frozen_cls_on_held_out_episodes(reach_pick_place):
    """From the same self-supervised encoder and the same updates, the finetuned CLS gives a
    lower distillation error on held-out episodes of two tasks that only the window tells
    apart (measured at this size: 0.054-0.066 against 0.084-0.089 over seeds 0-2)."""
    from ctdkit.encoder import EncoderConfig

    data = reach_pick_place
    starts = np.flatnonzero(np.diff(data.episode_index, prepend=-1))
    rank = np.zeros(len(starts), dtype=np.int64)  # an episode's position within its task
    for task in (0, 1):
        rank[data.task_index[starts] == task] = np.arange(14)
    train, held_out = _episodes(data, rank < 10), _episodes(data, rank >= 10)
    encoder = EncoderConfig(
        window=5, d_model=16, n_heads=4, ffn=32, n_layers=1, attention_dropout=0.0,
        batch_size=32, lr=1e-3, seed=0,
    ).create()  # fmt: skip
    encoder.fit(train, 20, progress=False)
    errors = {}
    for mode in ("ctd", "ctd-e2e"):
        learner = CollectiveSACConfig(conditioning=mode, **E2E).create()
        learner.fit(train, 200, context=make_context(mode, train, encoder), progress=False)
        context, _ = learner.context.for_transitions(held_out)
        predicted = learner.predict(held_out.observations, context)
        errors[mode] = float(np.mean((predicted - held_out.expert_action_mean) ** 2))
    assert errors["ctd-e2e"] < 0.85 * errors["ctd"], errors


# ----- cls_swap: the CLS part of some actor rows taken from other rows ------------------------
def _ctd_history(data, encoder, **overrides):
    config = dict(conditioning="ctd+history", view="goal-hidden", **FAST) | overrides
    learner = CollectiveSACConfig(**config).create()
    learner.fit(data, 0, context=make_context("ctd+history", data, encoder), progress=False)
    return learner


def test_cls_swap_replaces_the_cls_of_its_share_of_rows_and_keeps_the_raw_window(data, encoder):
    learner = _ctd_history(data, encoder, cls_swap=0.3)
    contexts = torch.as_tensor(learner.context.for_transitions(data)[0])
    width = learner.context.cls.dim
    swapped = learner._swap_cls(contexts)
    torch.testing.assert_close(swapped[:, width:], contexts[:, width:], rtol=0, atol=0)
    changed = (swapped[:, :width] != contexts[:, :width]).any(1)
    # each changed row's CLS is some row's CLS of the batch
    for row in torch.nonzero(changed).flatten()[:50]:
        assert (contexts[:, :width] == swapped[row, :width]).all(1).any()
    share = changed.float().mean().item()  # a donor with the same CLS changes nothing
    assert 0.2 < share < 0.34, share


def test_cls_swap_teaches_the_actor_to_rely_less_on_the_cls(data, encoder):
    """Trained with every row's CLS swapped, the actor's actions move less when the CLS alone
    is replaced by another task's than when it is trained on true CLS embeddings."""
    reach = np.flatnonzero(data.task_index == 0)[:200]
    push = np.flatnonzero(data.task_index == 1)[:200]

    def cls_sensitivity(share: float) -> float:
        learner = _ctd_history(data, encoder, cls_swap=share)
        learner.fit(data, 300, progress=False)
        contexts = learner.context.for_transitions(data)[0]
        mixed = contexts[reach].copy()
        mixed[:, : learner.context.cls.dim] = contexts[push, : learner.context.cls.dim]
        obs = data.observations[reach]
        moved = learner.predict(obs, contexts[reach]) - learner.predict(obs, mixed)
        return float(np.abs(moved).mean())

    plain, swapped = cls_sensitivity(0.0), cls_sensitivity(1.0)
    print(f"CLS sensitivity: plain {plain:.4f}, cls_swap=1 {swapped:.4f}")
    assert swapped < 0.5 * plain


def test_cls_swap_resumes_exactly_and_is_absent_while_off(data, encoder, tmp_path):
    straight = _ctd_history(data, encoder, cls_swap=0.5)
    straight.fit(data, 6, progress=False)
    first = _ctd_history(data, encoder, cls_swap=0.5)
    first.fit(data, 3, progress=False)
    first.save(tmp_path / "swap.pt")
    resumed = CollectiveSAC.load(tmp_path / "swap.pt")
    resumed.fit(data, 3, progress=False)
    for name, value in straight.actor.state_dict().items():
        torch.testing.assert_close(resumed.actor.state_dict()[name], value, rtol=0, atol=0)
    # the swaps change the updates; off, neither a record field nor a checkpoint entry
    plain = _ctd_history(data, encoder)
    plain.fit(data, 6, progress=False)
    swapped_weights = straight.actor.state_dict()
    assert any(not torch.equal(v, swapped_weights[k]) for k, v in plain.actor.state_dict().items())
    assert "cls_swap" not in plain.config.record() and plain._swap_generator is None
    plain.save(tmp_path / "plain.pt")
    assert "swap_generator" not in torch.load(tmp_path / "plain.pt", weights_only=True)
    state = torch.load(tmp_path / "swap.pt", weights_only=True)
    del state["swap_generator"]
    torch.save(state, tmp_path / "damaged.pt")
    with pytest.raises(CtdkitError, match="swap_generator"):
        CollectiveSAC.load(tmp_path / "damaged.pt")


def test_cls_swap_is_refused_outside_ctd_with_history():
    with pytest.raises(CtdkitError, match="cls_swap applies to conditioning 'ctd\\+history' only"):
        CollectiveSACConfig(conditioning="ctd", cls_swap=0.2)
    with pytest.raises(CtdkitError, match="cls_swap must be in"):
        CollectiveSACConfig(conditioning="ctd+history", cls_swap=1.5)
