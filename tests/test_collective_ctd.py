"""Collective SAC with the ``ctd`` context: the frozen encoder's CLS embedding."""

from __future__ import annotations

import numpy as np
import pytest
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
