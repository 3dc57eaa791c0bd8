"""Micro-benchmarks of the hot paths (pytest-benchmark), outside the default test run:

    .venv/bin/python -m pytest benchmarks/test_micro.py --benchmark-only
    .venv/bin/python -m pytest benchmarks/test_micro.py --benchmark-only --benchmark-group-by=group

Window batching (dataset rows and act-time history), the encoder forward, and one learner
update: ctdkit's collective actor update next to d3rlpy's BC update (and d3rlpy's sample +
update, what its ``fit`` does per step) on the same synthetic data, network sizes (256x256,
the MT10 suites') and batch (256). Threads are pinned to 1; compare ratios within one run.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import warnings

import numpy as np
import pytest
import torch

from ctdkit.data import Transitions, to_d3rlpy
from ctdkit.encoder import EncoderConfig, EpisodeTable, gather_windows
from ctdkit.envs.observation import ACTION_DIM, OBS_DIM
from ctdkit.policies.history import EpisodeHistory

warnings.filterwarnings("ignore")
torch.set_num_threads(1)

HIDDEN, BATCH, WINDOW = (256, 256), 256, 20
EPISODES, STEPS = 40, 250


@pytest.fixture(scope="module")
def data() -> Transitions:
    """Synthetic aligned transitions: 40 episodes x 250 steps of 2 tasks (10k rows)."""
    rng = np.random.default_rng(0)
    n = EPISODES * STEPS
    obs = rng.normal(size=(n, OBS_DIM)).astype(np.float32)
    actions = rng.uniform(-1, 1, (n, ACTION_DIM)).astype(np.float32)
    episode = np.repeat(np.arange(EPISODES), STEPS)
    truncated = np.zeros(n, bool)
    truncated[STEPS - 1 :: STEPS] = True
    return Transitions(
        observations=obs,
        actions=actions,
        rewards=rng.uniform(0, 10, n).astype(np.float32),
        next_observations=np.roll(obs, -1, axis=0),
        terminated=np.zeros(n, bool),
        truncated=truncated,
        task_index=episode % 2,
        episode_index=episode,
        step_index=np.tile(np.arange(STEPS), EPISODES),
        expert_action_mean=actions,
        expert_action_log_std=np.full((n, ACTION_DIM), -1.0, np.float32),
        success=np.zeros(n, bool),
        tasks=("reach-v3", "push-v3"),
    )


@pytest.mark.benchmark(group="windows")
def test_gather_dataset_windows(benchmark, data):
    table = EpisodeTable.from_episode_index(data.episode_index)
    rows = np.random.default_rng(1).integers(0, len(data), 256)
    lengths = np.full(256, WINDOW)
    windows = benchmark(
        gather_windows, data.observations, data.actions, data.rewards, table, rows, lengths
    )
    assert windows.observations.shape == (256, WINDOW, OBS_DIM)


@pytest.mark.benchmark(group="windows")
def test_history_window_of_ten_envs(benchmark):
    history = EpisodeHistory(10, OBS_DIM, ACTION_DIM, 500)
    rng = np.random.default_rng(2)
    history.start(np.arange(10), rng.normal(size=(10, OBS_DIM)))
    for _ in range(100):
        history.record(
            np.arange(10), rng.normal(size=(10, 4)), rng.normal(size=10), rng.normal(size=(10, 39))
        )
    window = benchmark(history.window, WINDOW)
    assert window.lengths.tolist() == [WINDOW] * 10


@pytest.mark.benchmark(group="encoder")
@pytest.mark.parametrize("batch", [10, 256])
def test_encoder_forward(benchmark, data, batch):
    encoder = EncoderConfig(window=WINDOW, attention_dropout=0.0).create()
    table = EpisodeTable.from_episode_index(data.episode_index)
    rows = np.random.default_rng(3).integers(0, len(data), batch)
    windows = gather_windows(
        data.observations, data.actions, data.rewards, table, rows, np.full(batch, WINDOW)
    )
    z = benchmark(encoder.embed, windows)
    assert z.shape == (batch, encoder.config.embedding_dim)


@pytest.mark.benchmark(group="learner update")
def test_collective_actor_update(benchmark, data):
    from ctdkit.collective import CollectiveSACConfig, make_context

    learner = CollectiveSACConfig(
        conditioning="oracle", hidden=HIDDEN, batch_size=BATCH, critic=False
    ).create()
    learner.fit(data, 1, context=make_context("oracle", data), progress=False)
    tensors = learner._tensors(data)
    benchmark(lambda: learner.update(learner._batch(tensors)))


@pytest.mark.benchmark(group="learner update")
def test_collective_actor_and_critic_update(benchmark, data):
    from ctdkit.collective import CollectiveSACConfig, make_context

    learner = CollectiveSACConfig(
        conditioning="oracle", hidden=HIDDEN, batch_size=BATCH, critic=True
    ).create()
    learner.fit(data, 1, context=make_context("oracle", data), progress=False)
    tensors = learner._tensors(data)
    benchmark(lambda: learner.update(learner._batch(tensors)))


@pytest.fixture(scope="module")
def d3rlpy_bc(data):
    import d3rlpy
    from d3rlpy.models.encoders import VectorEncoderFactory

    dataset = to_d3rlpy(data)
    algo = d3rlpy.algos.BCConfig(
        batch_size=BATCH, encoder_factory=VectorEncoderFactory(list(HIDDEN))
    ).create()
    algo.fit(
        dataset,
        n_steps=1,
        n_steps_per_epoch=1,
        show_progress=False,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
    )
    return algo, dataset


@pytest.mark.benchmark(group="learner update")
def test_d3rlpy_bc_update(benchmark, d3rlpy_bc):
    algo, dataset = d3rlpy_bc
    batch = dataset.sample_transition_batch(BATCH)
    benchmark(algo.update, batch)


@pytest.mark.benchmark(group="learner update")
def test_d3rlpy_bc_sample_and_update(benchmark, d3rlpy_bc):
    algo, dataset = d3rlpy_bc
    benchmark(lambda: algo.update(dataset.sample_transition_batch(BATCH)))
