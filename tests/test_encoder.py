"""Trajectory transformer: padding, windows and split, losses, determinism, resume, persistence,
bad input and the bf16 path, on small synthetic transitions (no environment needed)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from ctdkit.data import Transitions
from ctdkit.encoder import (
    EncoderConfig,
    EpisodeTable,
    TrajectoryEncoder,
    WindowSampler,
    gather_windows,
    latest_checkpoint,
    split_episodes,
)
from ctdkit.encoder.losses import bert_mask, info_nce, masked_mse
from ctdkit.encoder.metrics import cluster_purity, knn_accuracy, linear_probe_accuracy
from ctdkit.encoder.network import attention, encoder_layer
from ctdkit.envs.observation import ACTION_DIM, OBS_DIM, OBS_GOAL
from ctdkit.errors import CtdkitError
from ctdkit.policies.history import Windows

#: a small model so that every fit here takes well under a second
SMALL = dict(window=6, d_model=16, n_heads=4, ffn=32, n_layers=2, batch_size=8)


def synthetic_transitions(episodes: int = 12, seed: int = 0, tasks: int = 3) -> Transitions:
    """Random episodes of varying length; the task shifts the actions' mean."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 25, size=episodes)
    rows = int(lengths.sum())
    episode = np.repeat(np.arange(episodes), lengths)
    task = np.repeat(np.arange(episodes) % tasks, lengths)
    actions = (rng.normal(size=(rows, ACTION_DIM)) * 0.3 + task[:, None] * 0.5 - 0.5).clip(-1, 1)
    return Transitions(
        observations=rng.normal(size=(rows, OBS_DIM)).astype(np.float32),
        actions=actions.astype(np.float32),
        rewards=(rng.random(rows) + task).astype(np.float32),
        next_observations=rng.normal(size=(rows, OBS_DIM)).astype(np.float32),
        terminated=np.zeros(rows, bool),
        truncated=np.zeros(rows, bool),
        task_index=task.astype(np.int64),
        episode_index=episode.astype(np.int64),
        step_index=np.concatenate([np.arange(n) for n in lengths]).astype(np.int64),
        expert_action_mean=np.zeros((rows, ACTION_DIM), np.float32),
        expert_action_log_std=np.zeros((rows, ACTION_DIM), np.float32),
        success=np.zeros(rows, bool),
        tasks=tuple(f"task{i}" for i in range(tasks)),
        dataset_id="synthetic-v0",
        checksum=f"seed{seed}",
    )


@pytest.fixture(scope="module")
def data() -> Transitions:
    return synthetic_transitions()


@pytest.fixture(scope="module")
def trained(data) -> TrajectoryEncoder:
    encoder = EncoderConfig(**SMALL).create()
    encoder.fit(data, 5, progress=False)
    return encoder


def random_window(rng, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        rng.normal(size=(length, OBS_DIM)).astype(np.float32),
        rng.normal(size=(length, ACTION_DIM)).astype(np.float32),
        rng.normal(size=length).astype(np.float32),
    )


def pad(observations, actions, rewards, steps: int, fill: float) -> Windows:
    """One window padded to ``steps`` with ``fill`` (NaN, inf, huge: it must not matter)."""
    length = len(observations)
    o = np.full((1, steps, OBS_DIM), fill, np.float32)
    a = np.full((1, steps, ACTION_DIM), fill, np.float32)
    r = np.full((1, steps), fill, np.float32)
    o[0, :length], a[0, :length], r[0, :length] = observations, actions, rewards
    return Windows(o, a, r, np.array([length]))


def weights(encoder: TrajectoryEncoder) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in encoder.network.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def differ(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[key], b[key]) for key in a)


# ----- model --------------------------------------------------------------------------------
def test_encoder_layer_is_the_torch_layer():
    """Our explicit layer forward computes exactly nn.TransformerEncoderLayer's math."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 4, 32, 0.0, batch_first=True).eval()
    x = torch.randn(5, 9, 16)
    valid = torch.rand(5, 9) > 0.3
    valid[:, 0] = True
    with torch.no_grad():
        expected = layer(x, src_key_padding_mask=~valid)
        ours = encoder_layer(layer, x, valid[:, None, None, :])
        first = encoder_layer(layer, x, valid[:, None, None, :], n_queries=1)
    torch.testing.assert_close(ours[valid], expected[valid], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(first[:, 0], expected[:, 0], atol=1e-5, rtol=1e-5)


def test_head_padding_for_fused_gpu_kernels_is_exact():
    """The GPU path zero-pads head_dim 4 to 8 for fused kernels; the result is unchanged."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 8, 11, 4) for _ in range(3))
    mask = torch.rand(3, 1, 1, 11) > 0.3
    mask[..., 0] = True
    exact = attention(q, k, v, mask, align=1)
    torch.testing.assert_close(attention(q, k, v, mask, align=8), exact, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(attention(q, k, v, None, align=8), attention(q, k, v, None))


@pytest.mark.parametrize("length", [1, 2, 5, 6])
def test_padding_never_changes_the_embedding(trained, length):
    rng = np.random.default_rng(length)
    window = random_window(rng, length)
    reference = trained.embed(pad(*window, steps=length, fill=0.0))
    full = pad(*random_window(rng, 6), steps=6, fill=0.0)  # keeps the batch padded to 6 steps
    for steps in sorted({length, min(length + 2, 6), 6}):
        for fill in (np.nan, np.inf, 1e30, -7.0):
            padded = pad(*window, steps=steps, fill=fill)
            np.testing.assert_allclose(trained.embed(padded), reference, atol=1e-6)
            if steps == 6:  # embed trims a chunk to its longest window: make it keep the padding
                batch = Windows(
                    *(
                        np.concatenate([getattr(padded, f.name), getattr(full, f.name)])
                        for f in dataclasses.fields(Windows)
                    )
                )
                np.testing.assert_allclose(trained.embed(batch)[:1], reference, atol=1e-6)
    # and at the network level, padded to the model's K with no trimming at all
    net = trained.network.eval()
    padded = pad(*window, steps=6, fill=0.0)
    with torch.no_grad():
        direct = net(
            *(
                torch.as_tensor(x)
                for x in (padded.observations, padded.actions, padded.rewards, padded.lengths)
            )
        )
    np.testing.assert_allclose(
        torch.nn.functional.normalize(direct, dim=-1).numpy(), reference, atol=1e-6
    )
    # the last step's action and reward are not inputs (unknown when acting at that state)
    observations, actions, rewards = window
    changed = pad(
        observations,
        actions + 5.0 * (np.arange(length) == length - 1)[:, None],
        rewards,
        steps=6,
        fill=0.0,
    )
    np.testing.assert_allclose(trained.embed(changed), reference, atol=1e-6)
    if length > 1:  # ... while earlier actions are
        moved = pad(observations, actions + 5.0, rewards, steps=6, fill=0.0)
        assert np.abs(trained.embed(moved) - reference).max() > 1e-3


def test_length_one_window_and_mixed_batches(trained):
    rng = np.random.default_rng(1)
    observation = rng.normal(size=(1, OBS_DIM)).astype(np.float32)
    single = Windows.single(observation, np.zeros((0, ACTION_DIM)), np.zeros(0))
    z = trained.embed(single)
    assert z.shape == (1, trained.config.embedding_dim)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    # a mixed batch, embedded at once or in chunks of 3, matches window-by-window embedding
    windows = [random_window(rng, n) for n in (1, 6, 3, 2, 6, 4, 5)]
    batch = Windows(
        np.concatenate([pad(*w, 6, 0.0).observations for w in windows]),
        np.concatenate([pad(*w, 6, 0.0).actions for w in windows]),
        np.concatenate([pad(*w, 6, 0.0).rewards for w in windows]),
        np.array([len(w[0]) for w in windows]),
    )
    alone = np.concatenate([trained.embed(pad(*w, len(w[0]), 0.0)) for w in windows])
    np.testing.assert_allclose(trained.embed(batch), alone, atol=1e-5)
    np.testing.assert_allclose(trained.embed(batch, batch_size=3), alone, atol=1e-5)
    as_torch = trained.embed(
        Windows(
            *(
                torch.as_tensor(np.asarray(x))
                for x in (batch.observations, batch.actions, batch.rewards, batch.lengths)
            )
        )
    )
    assert torch.is_tensor(as_torch)
    np.testing.assert_allclose(as_torch.numpy(), alone, atol=1e-5)
    assert trained.embed(batch[:0]).shape == (0, trained.config.embedding_dim)


def test_act_time_windows_match_the_offline_relabelling(trained, data):
    """An agent growing its window step by step from the episode start gets exactly the
    embedding ``embed_rows`` gives offline (lengths 1, 2, ..., K, then sliding)."""
    table = EpisodeTable.from_episode_index(data.episode_index)
    episode = 2
    start, length = table.starts[episode], table.lengths[episode]
    offline = trained.embed_rows(data, np.arange(start, start + length))
    k = trained.config.window
    for t in range(length):
        first = max(0, t - k + 1)
        rows = slice(start + first, start + t + 1)
        before = slice(start + first, start + t)  # the action at step t is not taken yet
        window = Windows.single(data.observations[rows], data.actions[before], data.rewards[before])
        np.testing.assert_allclose(trained.embed(window)[0], offline[t], atol=1e-6)
    assert trained.embed_rows(data).shape == (len(data), trained.config.embedding_dim)


def test_goal_hidden_view_ignores_the_goal():
    encoder = EncoderConfig(**SMALL, view="goal-hidden").create()
    rng = np.random.default_rng(2)
    observations, actions, rewards = random_window(rng, 4)
    moved = observations.copy()
    moved[:, OBS_GOAL] += 3.0
    np.testing.assert_array_equal(
        encoder.embed(pad(observations, actions, rewards, 4, 0.0)),
        encoder.embed(pad(moved, actions, rewards, 4, 0.0)),
    )
    full = EncoderConfig(**SMALL).create()
    assert not np.allclose(
        full.embed(pad(observations, actions, rewards, 4, 0.0)),
        full.embed(pad(moved, actions, rewards, 4, 0.0)),
    )


def test_bf16_autocast_runs_and_is_close_to_float32(trained, data):
    table = EpisodeTable.from_episode_index(data.episode_index)
    ends = np.arange(0, len(data), 5)
    windows = gather_windows(
        data.observations, data.actions, data.rewards, table, ends, np.full(len(ends), 6)
    )
    z32 = trained.embed(windows)
    z16 = trained.embed(windows, bf16=True)
    assert z16.dtype == np.float32 and z16.shape == z32.shape
    cosine = (z16 * z32).sum(1)
    assert cosine.min() > 0.98, cosine.min()
    assert np.abs(z16 - z32).max() > 0  # it really ran in lower precision


@pytest.mark.skipif(
    os.environ.get("CTDKIT_TEST_COMPILE") != "1",
    reason="torch.compile takes ~1 min on 2 CPU cores; set CTDKIT_TEST_COMPILE=1 to run",
)
def test_compiled_embed_matches_eager(trained, data):
    table = EpisodeTable.from_episode_index(data.episode_index)
    ends = np.arange(0, len(data), 3)
    lengths = 1 + np.arange(len(ends)) % 6
    windows = gather_windows(data.observations, data.actions, data.rewards, table, ends, lengths)
    np.testing.assert_allclose(
        trained.embed(windows, compile=True), trained.embed(windows), atol=1e-4
    )


# ----- windows and split ---------------------------------------------------------------------
def test_episode_split_has_no_overlap_and_sampling_stays_in_training_episodes(data):
    for n, fraction, seed in [(12, 0.2, 0), (30, 0.25, 3), (2, 0.5, 1), (101, 0.1, 9)]:
        split = split_episodes(n, fraction, seed)
        assert len(np.intersect1d(split.train, split.validation)) == 0
        np.testing.assert_array_equal(np.union1d(split.train, split.validation), np.arange(n))
        assert len(split.validation) == max(1, round(fraction * n))
    with pytest.raises(CtdkitError, match="cannot split 1 episode"):
        split_episodes(1, 0.2, 0)
    # systematic: evenly spread over episode order (tasks are stored one after another)
    blocks = np.bincount(split_episodes(30, 0.2, 5).validation // 10)
    np.testing.assert_array_equal(blocks, [2, 2, 2])

    table = EpisodeTable.from_episode_index(data.episode_index)
    split = split_episodes(table.num_episodes, 0.25, 0)
    for positives in ("episode", "window"):
        sampler = WindowSampler(table, split.train, window=6, min_window=1, positives=positives)
        rng = np.random.default_rng(0)
        for _ in range(20):
            batch = sampler.sample(rng, 64)
            for rows, lengths in ((batch.rows_a, batch.lengths_a), (batch.rows_b, batch.lengths_b)):
                episodes = table.row_episode[rows]
                assert np.isin(episodes, split.train).all()
                assert (episodes == batch.episodes[:, None]).all()  # pair from one episode
                assert (lengths >= 1).all() and (lengths <= 6).all()
                steps = np.arange(6)[None, :]
                real = steps < lengths[:, None]
                consecutive = np.diff(rows, axis=1)[real[:, 1:]]
                assert (consecutive == 1).all()  # real steps are consecutive rows
    encoder = EncoderConfig(**SMALL, validation_fraction=0.25).create()
    encoder.fit(data, 0, progress=False)
    np.testing.assert_array_equal(encoder.split.validation, split.validation)
    # normalisation statistics come from training episodes only
    train_rows = table.rows_of(split.train)
    np.testing.assert_allclose(
        encoder.network.action_mean.numpy(), data.actions[train_rows].mean(0), atol=1e-5
    )


def test_windows_that_would_cross_an_episode_start_are_clipped(data):
    table = EpisodeTable.from_episode_index(data.episode_index)
    second = table.starts[1]
    windows = gather_windows(
        data.observations, data.actions, data.rewards, table, np.array([second + 2]), np.array([6])
    )
    assert windows.lengths.tolist() == [3]
    np.testing.assert_array_equal(
        windows.observations[0, :3], data.observations[second : second + 3]
    )
    shuffled = dataclasses.replace(data, episode_index=np.roll(data.episode_index, 3))
    with pytest.raises(CtdkitError, match="not grouped by episode"):
        EncoderConfig(**SMALL).create().fit(shuffled, 1, progress=False)


# ----- losses --------------------------------------------------------------------------------
def test_losses():
    torch.manual_seed(0)
    x = torch.randn(400, 10, 3)
    valid = torch.arange(10)[None, :] < torch.randint(1, 11, (400, 1))
    masked, selected = bert_mask(x, valid, 0.15)
    assert not (selected & ~valid).any()  # padding is never a target
    assert abs(selected.sum() / valid.sum() - 0.15) < 0.02
    unchanged = (masked == x).all(-1)
    assert unchanged[~selected].all()
    zeroed = (masked == 0).all(-1) & selected
    assert abs(zeroed.sum() / selected.sum() - 0.8) < 0.05
    # the MSE sees selected positions only
    prediction = x.clone().requires_grad_(True)
    target = torch.where(selected[..., None], x + 1.0, x + 100.0)
    loss = masked_mse(prediction, target, selected)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert (prediction.grad[~selected] == 0).all()
    # InfoNCE: aligned views give a low loss; excluded negatives cannot add to it
    z = torch.nn.functional.normalize(torch.randn(8, 6), dim=1)
    assert info_nce(z, z, 0.15) < info_nce(z, z.roll(1, 0), 0.15)
    same = torch.ones(8, 8, dtype=torch.bool)  # everything excluded but the positive
    assert info_nce(z, z.roll(1, 0), 0.15, same).item() == pytest.approx(0.0, abs=1e-6)


# ----- training: determinism, labels, resume, persistence ----------------------------------
def test_same_seed_same_weights_other_seed_other_weights(data):
    runs = []
    for seed in (0, 0, 1):
        encoder = EncoderConfig(**SMALL, seed=seed).create()
        encoder.fit(data, 4, progress=False)
        runs.append(weights(encoder))
    assert_same_weights(runs[0], runs[1])
    assert differ(runs[0], runs[2])


class _NoTaskLabels:
    """Transitions whose task_index may not be touched."""

    def __init__(self, transitions: Transitions) -> None:
        self._transitions = transitions

    def __getattr__(self, name: str):
        if name == "task_index":
            raise AssertionError("label-free training read task_index")
        return getattr(self._transitions, name)

    def __len__(self) -> int:
        return len(self._transitions)


def test_label_free_mode_never_reads_task_labels(data):
    def train(transitions, mode="label-free"):
        encoder = EncoderConfig(**SMALL, mode=mode).create()
        encoder.fit(transitions, 4, progress=False)
        return weights(encoder)

    reference = train(data)
    scrambled = dataclasses.replace(
        data, task_index=np.random.default_rng(0).permutation(data.task_index)
    )
    assert_same_weights(train(scrambled), reference)
    assert_same_weights(train(dataclasses.replace(data, task_index=None)), reference)
    assert_same_weights(train(_NoTaskLabels(data)), reference)
    # label-aware mode does use them (so the check above can fail)
    aware = train(data, "label-aware")
    assert differ(train(scrambled, "label-aware"), aware)
    with pytest.raises(CtdkitError, match="label-aware mode needs task_index"):
        train(dataclasses.replace(data, task_index=None), "label-aware")


def test_resume_from_checkpoint_continues_the_same_run(data, tmp_path):
    straight = EncoderConfig(**SMALL).create()
    straight.fit(data, 6, progress=False)
    first = EncoderConfig(**SMALL).create()
    first.fit(data, 4, progress=False, checkpoint_dir=tmp_path, checkpoint_every=2)
    assert sorted(p.name for p in tmp_path.glob("step_*.pt")) == [
        "step_00000002.pt",
        "step_00000004.pt",
    ]
    resumed = TrajectoryEncoder.load(latest_checkpoint(tmp_path))
    assert resumed.step == 4
    resumed.fit(data, 2, progress=False)
    assert_same_weights(weights(resumed), weights(straight))
    other = synthetic_transitions(seed=5)
    with pytest.raises(CtdkitError, match="trained on other data"):
        resumed.fit(other, 1, progress=False)


def test_save_and_load_give_identical_embeddings(trained, data, tmp_path):
    table = EpisodeTable.from_episode_index(data.episode_index)
    ends = np.arange(0, len(data), 4)
    windows = gather_windows(
        data.observations, data.actions, data.rewards, table, ends, 1 + np.arange(len(ends)) % 6
    )
    path = trained.save(tmp_path / "encoder.pt")
    assert not list(tmp_path.glob("*.tmp"))
    loaded = TrajectoryEncoder.load(path)
    assert loaded.config == trained.config and loaded.step == trained.step
    np.testing.assert_array_equal(loaded.embed(windows), trained.embed(windows))
    np.testing.assert_array_equal(loaded.split.validation, trained.split.validation)
    fresh = EncoderConfig(**{**SMALL, "lr": 1e-3}).create()  # training settings may differ
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.embed(windows), trained.embed(windows))


# ----- bad input ----------------------------------------------------------------------------
def one_line_error(function, *args, match: str, **kwargs) -> str:
    with pytest.raises(CtdkitError, match=match) as info:
        function(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_inputs_give_one_line_errors(trained, tmp_path):
    rng = np.random.default_rng(3)
    observations, actions, rewards = random_window(rng, 4)
    good = pad(observations, actions, rewards, 6, 0.0)
    embed = trained.embed
    one_line_error(
        embed,
        dataclasses.replace(good, observations=good.observations[..., :21]),
        match="observations have width 21.*39",
    )
    one_line_error(
        embed,
        dataclasses.replace(good, actions=good.actions[..., :3]),
        match="actions have shape .*action_dim=4",
    )
    one_line_error(
        embed, dataclasses.replace(good, lengths=np.array([0])), match="window 0 is empty"
    )
    empty = Windows(np.zeros((2, 0, OBS_DIM)), np.zeros((2, 0, 4)), np.zeros((2, 0)), np.zeros(2))
    one_line_error(embed, dataclasses.replace(empty, lengths=np.array([0, 0])), match="empty")
    one_line_error(
        embed, dataclasses.replace(good, lengths=np.array([7])), match="window 0 has length 7"
    )
    too_long = pad(*random_window(rng, 8), 8, 0.0)
    one_line_error(embed, too_long, match=r"at most 6 steps \(window=K\)")
    for field, index in (("observations", (0, 2, 5)), ("actions", (0, 1, 0)), ("rewards", (0, 2))):
        bad = pad(observations, actions, rewards, 6, 0.0)
        getattr(bad, field)[index] = np.nan
        one_line_error(embed, bad, match=f"window 0 has NaN or inf in its {field} at step")
    nan_padding = pad(observations, actions, rewards, 6, np.nan)  # padding may hold anything
    np.testing.assert_allclose(embed(nan_padding), embed(good), atol=1e-6)
    # weights into a config that does not match; unreadable and foreign files
    path = trained.save(tmp_path / "encoder.pt")
    for change, name in (
        ({"d_model": 32}, "d_model"),
        ({"view": "goal-hidden"}, "view"),
        ({"state_slices": ("hand", "gripper")}, "state_slices"),
    ):
        other = EncoderConfig(**{**SMALL, **change}).create()
        message = one_line_error(other.load_weights, path, match=f"has {name}=")
        assert "this encoder's config" in message
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    one_line_error(TrajectoryEncoder.load, tmp_path / "junk.pt", match="unreadable")
    one_line_error(TrajectoryEncoder.load, tmp_path / "missing.pt", match="does not exist")
    torch.save({"weights": {}}, tmp_path / "foreign.pt")
    one_line_error(TrajectoryEncoder.load, tmp_path / "foreign.pt", match="not a ctdkit encoder")


def test_bad_configs_and_data_give_one_line_errors(data):
    one_line_error(EncoderConfig, d_model=30, n_heads=8, match="d_model=30 is not divisible")
    one_line_error(EncoderConfig, state_slices=("hand", "gripers"), match="gripers")
    one_line_error(EncoderConfig, view="hidden", match="observation view 'hidden'")
    one_line_error(EncoderConfig, min_window=30, match="min_window=30 exceeds window=20")
    one_line_error(EncoderConfig, mode="labels", match="encoder mode 'labels'")
    one_line_error(
        EncoderConfig(**SMALL).create,
        "cuda:7" if not torch.cuda.is_available() else "nonsense",
        match="device",
    )
    encoder = EncoderConfig(**SMALL).create()
    hidden = dataclasses.replace(data, view="goal-hidden")
    one_line_error(encoder.fit, hidden, 1, progress=False, match="view 'goal-hidden'")
    one_line_error(encoder.fit, data, -1, progress=False, match="n_steps")


# ----- configuration variants and probes ----------------------------------------------------
def test_variants_train_and_embed(data):
    """No reward tokens, same-window positives, other slices: each trains and embeds."""
    table = EpisodeTable.from_episode_index(data.episode_index)
    ends = np.arange(0, len(data), 9)
    windows = gather_windows(
        data.observations, data.actions, data.rewards, table, ends, np.full(len(ends), 6)
    )
    for change in (
        {"use_rewards": False},
        {"positives": "window", "mode": "label-aware"},
        {"state_slices": ("hand", "previous"), "min_window": 3, "attention_dropout": 0.0},
    ):
        encoder = EncoderConfig(**SMALL, **change).create()
        log = encoder.fit(data, 3, progress=False, log_every=1)
        assert [entry["step"] for entry in log] == [1, 2, 3]
        assert all(np.isfinite(entry["loss"]) for entry in log)
        assert encoder.embed(windows).shape == (len(ends), 6)


def test_reward_weight_scales_only_the_reward_reconstruction(data):
    """Same seed, same masks: rec(w) = rec_states_actions + w * rec_rewards, at the first step."""
    first = {}
    for weight in (0.0, 1.0, 3.0):
        encoder = EncoderConfig(**SMALL, reward_weight=weight).create()
        first[weight] = encoder.fit(data, 1, progress=False, log_every=1)[0]
    reward_term = first[1.0]["reconstruction"] - first[0.0]["reconstruction"]
    assert reward_term > 1e-3
    assert first[3.0]["reconstruction"] == pytest.approx(
        first[0.0]["reconstruction"] + 3 * reward_term, rel=1e-4
    )
    assert first[3.0]["contrastive"] == pytest.approx(first[0.0]["contrastive"], rel=1e-5)
    one_line_error(EncoderConfig, reward_weight=-1.0, match="reward_weight must be at least 0")


def test_a_later_field_at_its_earlier_value_keeps_old_records_matching():
    """Runs recorded before `reward_weight` existed have no such key; at 1.0 it stays out of
    the record (so they resume), and any other value is recorded and read back."""
    assert "reward_weight" not in EncoderConfig().to_dict()
    assert EncoderConfig.from_dict(EncoderConfig().to_dict()) == EncoderConfig()
    weighted = EncoderConfig(reward_weight=10.0)
    assert weighted.to_dict()["reward_weight"] == 10.0
    assert EncoderConfig.from_dict(weighted.to_dict()) == weighted


def test_probes_and_purity_on_separable_and_random_features():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    centres = rng.normal(size=(3, 5)) * 4
    x = centres[y] + rng.normal(size=(120, 5))
    train, test = slice(0, None, 2), slice(1, None, 2)
    assert linear_probe_accuracy(x[train], y[train], x[test], y[test]) > 0.95
    assert knn_accuracy(x[train], y[train], x[test], y[test]) > 0.95
    assert cluster_purity(x, y, 3) > 0.95
    noise = rng.normal(size=(120, 5))
    assert linear_probe_accuracy(noise[train], y[train], noise[test], y[test]) < 0.6
    assert cluster_purity(noise, y, 3) < 0.6
