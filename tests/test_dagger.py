"""DAgger rounds: the acting mixture, exact resume after kill -9, seed discipline, learning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import minari
import numpy as np
import pytest

from ctdkit.collect import CollectConfig, collect
from ctdkit.collective import CollectiveSACConfig
from ctdkit.dagger import DaggerActing, DaggerConfig, collect_seed, round_dataset_id, run_dagger
from ctdkit.data import load_transitions
from ctdkit.data.store import minari_root
from ctdkit.errors import CtdkitError
from ctdkit.files import read_json_object, sha256_file

TASKS = ("reach-v3", "push-v3")
SMALL = CollectiveSACConfig(
    conditioning="oracle", hidden=(32, 32), batch_size=64, actor_lr=1e-3, critic=False
)


def small_run(out: Path, **changes) -> DaggerConfig:
    settings = dict(
        tasks=TASKS,
        rounds=1,
        episodes_per_task=2,
        max_episode_steps=30,
        collective=SMALL,
        collective_steps=200,
        checkpoint_every=100,
        screening_episodes=0,
        final_episodes=0,
        workers=1,
        out=out,
        progress=False,
    )
    return DaggerConfig(**(settings | changes))


@pytest.fixture(scope="module")
def one_round(tmp_path_factory) -> Path:
    """A finished two-round run (rounds 0 and 1) with a short screening evaluation."""
    out = tmp_path_factory.mktemp("dagger") / "run"
    run_dagger(small_run(out, screening_episodes=1))
    return out


def _plain_and_mixture(tmp_path: Path, checkpoint: Path, beta: float):
    """The same collection acted by the scripted expert alone and by the β-mixture."""
    common = dict(
        tasks=TASKS,
        episodes_per_task=2,
        max_episode_steps=30,
        noise=0.3,
        labeller="scripted",
        ref_episodes=0,
        seed=4,
        workers=1,
        progress=False,
        root=tmp_path / f"data-{beta:g}",
    )
    collect(CollectConfig(**common, dataset_id="t/plain-v1"))
    acting = DaggerActing(str(checkpoint), sha256_file(checkpoint), beta, 0.3)
    collect(CollectConfig(**common, dataset_id=f"t/mix{beta:g}-v1"), acting=acting)
    plain = load_transitions("t/plain-v1", root=common["root"])
    mixed = load_transitions(f"t/mix{beta:g}-v1", root=common["root"])
    return plain, mixed


def test_beta_one_gives_the_plain_expert_collection_and_beta_zero_does_not(one_round, tmp_path):
    checkpoint = one_round / "round-0" / "collective.pt"
    plain, same = _plain_and_mixture(tmp_path, checkpoint, beta=1.0)
    for name in ("observations", "actions", "rewards", "expert_action_mean"):
        np.testing.assert_array_equal(getattr(same, name), getattr(plain, name), err_msg=name)
    _, learner_acts = _plain_and_mixture(tmp_path, checkpoint, beta=0.0)
    assert not np.array_equal(learner_acts.actions, plain.actions)
    # whoever acts, the labels are the expert's at the visited states
    from ctdkit.policies import ScriptedPolicy

    rows = np.flatnonzero(learner_acts.task_index == 0)[:10]
    expert = ScriptedPolicy(TASKS[0])
    for row in rows:
        label = expert.act(learner_acts.observations[row].astype(np.float64)).mean
        np.testing.assert_allclose(learner_acts.expert_action_mean[row], label, atol=1e-6)


def test_rounds_record_what_they_did(one_round):
    records = json.loads((one_round / "rounds.json").read_text())["rounds"]
    assert [r["round"] for r in records] == [0, 1]
    assert [r["beta"] for r in records] == [1.0, 0.5]
    assert records[0]["acting_checkpoint_sha256"] is None
    weights = one_round / "round-0" / "collective.pt"
    assert records[1]["acting_checkpoint_sha256"] == sha256_file(weights)
    # the aggregate grows by one round's episodes; the collective warm-starts
    assert records[1]["episodes"] == 2 * records[0]["episodes"] == 8
    assert records[1]["labelled_transitions"] > records[0]["labelled_transitions"]
    assert [r["actor_steps"] for r in records] == [200, 400]
    with minari_root(one_round / "datasets"):
        metadata = minari.load_dataset("dagger/round-1/reach-v0").storage.metadata["ctdkit"]
    assert metadata["policy"] == "dagger"
    assert metadata["acting"]["beta"] == 0.5
    assert metadata["labeller"] == "scripted"


def test_evaluation_seeds_never_reach_collection(one_round):
    records = json.loads((one_round / "rounds.json").read_text())["rounds"]
    collected = set()
    with minari_root(one_round / "datasets"):
        for record in records:
            group = round_dataset_id(record["round"]).removesuffix("-v0")
            for task in TASKS:
                dataset = minari.load_dataset(f"{group}/{task.removesuffix('-v3')}-v0")
                collected.add(dataset.storage.metadata["ctdkit"]["seed"])
    evaluated = set()
    for path in one_round.glob("round-*/screening/*-seed*.json"):
        evaluated.add(read_json_object(path, str(path))["result"]["seed"])
    assert collected == {collect_seed(0, 0), collect_seed(0, 1)} == {0, 10}
    assert evaluated == {100}
    assert max(collected) < 100 <= min(evaluated)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"eval_seeds": (5,)}, "--eval-seeds 5 is below 100"),
        ({"seed": 10}, "--seed must be in 0..9"),
        ({"rounds": 10}, "--rounds at most 9"),
        ({"beta": 1.5}, "--beta must be in [0, 1]"),
    ],
)
def test_settings_that_would_break_the_seed_discipline_are_refused(tmp_path, changes, words):
    with pytest.raises(CtdkitError, match=words.replace("[", r"\[").replace("]", r"\]")):
        small_run(tmp_path / "x", **changes)
    assert not (tmp_path / "x").exists()


def _cli(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ctdkit.dagger",
        "--tasks",
        *TASKS,
        "--rounds",
        "1",
        "--episodes-per-task",
        "2",
        "--max-episode-steps",
        "30",
        "--collective.conditioning",
        "oracle",
        "--collective.hidden",
        "32",
        "32",
        "--collective.batch-size",
        "64",
        "--collective-steps",
        "600",
        "--checkpoint-every",
        "100",
        "--screening-episodes",
        "0",
        "--final-episodes",
        "0",
        "--workers",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]


def test_a_round_killed_mid_training_resumes_to_the_same_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    subprocess.run(_cli(reference), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    process = subprocess.Popen(_cli(killed), env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    checkpoint = killed / "round-1" / "checkpoint.pt"
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before round 1 saved a checkpoint"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "round-1" / "round.json").exists()
    done = subprocess.run(_cli(killed), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for index in (0, 1):
        ours = json.loads((killed / f"round-{index}" / "round.json").read_text())
        theirs = json.loads((reference / f"round-{index}" / "round.json").read_text())
        for key in ("collective_digest", "data_checksum", "labelled_transitions", "actor_steps"):
            assert ours[key] == theirs[key], (index, key)


def test_bad_flags_are_one_line_and_write_nothing(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "ctdkit.dagger", "--eval-seeds", "7", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "--eval-seeds 7 is below 100" in done.stderr
    assert not out.exists()


def _held_out_return(weights: Path, task: str, episodes: int = 6, steps: int = 200) -> float:
    """Mean return of the collective acting alone (β = 0) on held-out goals (seed 100)."""
    from ctdkit.collect.rollout import rollout_episode
    from ctdkit.collective import CollectiveSAC
    from ctdkit.dagger import MixturePolicy
    from ctdkit.envs import make_env
    from ctdkit.policies import ScriptedPolicy

    learner = CollectiveSAC.load(weights)
    env = make_env(task, seed=100, max_episode_steps=steps)
    policy = MixturePolicy(task, learner, ScriptedPolicy(task), beta=0.0)
    returns = [rollout_episode(env, policy, 1000 + k).metadata["return"] for k in range(episodes)]
    env.close()
    return float(np.mean(returns))


def test_a_dagger_round_beats_offline_distillation_of_the_same_expert(tmp_path):
    """Round 0 distils 3 noisy expert episodes per task; round 1 adds 3 episodes in which the
    collective acts half the steps, labelled by the expert. With the same number of updates
    per round, the collective of round 1 earns clearly more on held-out goals (measured here:
    return 1017 -> 1566 on reach, 14 -> 228 on push)."""
    out = tmp_path / "run"
    run_dagger(
        small_run(
            out,
            episodes_per_task=3,
            max_episode_steps=200,
            collective=CollectiveSACConfig(
                conditioning="oracle", hidden=(64, 64), batch_size=128, actor_lr=1e-3, critic=False
            ),
            collective_steps=1500,
            checkpoint_every=10_000,
        )
    )
    before = [_held_out_return(out / "round-0" / "collective.pt", t) for t in TASKS]
    after = [_held_out_return(out / "round-1" / "collective.pt", t) for t in TASKS]
    assert sum(after) > 1.25 * sum(before), (before, after)
    assert after[1] > before[1] + 100, (before, after)  # push: from nowhere to moving the puck


def test_the_dagger_tier_is_every_round_in_one_group_and_a_rerun_keeps_it(one_round, tmp_path):
    from ctdkit.dagger.tier import export_tier
    from ctdkit.data import concat_transitions
    from ctdkit.data.loader import load_datasets

    root = tmp_path / "store"
    config = small_run(one_round, screening_episodes=1, export_dataset_id="test/tier-v0", root=root)
    first = run_dagger(config)["export"]  # the rounds are done: this only exports
    tier = load_transitions("test/tier-v0", root=root)
    rounds = concat_transitions(
        [load_transitions(round_dataset_id(i), root=one_round / "datasets") for i in (0, 1)],
        "rounds",
    )
    assert tier.relabelled and tier.tasks == rounds.tasks == TASKS
    # per task, round 0's episodes then round 1's: the same rows as the rounds' aggregate,
    # which is ordered round by round, so compare task by task
    for name in ("observations", "actions", "rewards", "expert_action_mean"):
        for task in range(len(TASKS)):
            mine = getattr(tier, name)[tier.task_index == task]
            theirs = getattr(rounds, name)[rounds.task_index == task]
            np.testing.assert_array_equal(mine, theirs)
    group = load_datasets("test/tier-v0", root)
    assert group.checksum == first["content_checksum"]
    _, reach = next(iter(group))
    meta = reach.storage.get_episode_metadata(list(reach.episode_indices))
    assert [(int(m["round"]), float(m["beta"])) for m in meta] == [(0, 1.0)] * 2 + [(1, 0.5)] * 2
    recorded = reach.storage.metadata["ctdkit"]
    assert [r["round"] for r in recorded["dagger_rounds"]] == [0, 1]
    assert recorded["command"].startswith("python -m ctdkit.dagger --tasks reach-v3 push-v3")
    assert "--export-dataset-id test/tier-v0" in recorded["command"]
    # a rerun leaves the group as it is; another run's rounds under the same id are refused
    assert run_dagger(config)["export"] == first
    records = json.loads((one_round / "rounds.json").read_text())["rounds"]
    other = [{**r, "data_checksum": "0" * 64} for r in records]
    with pytest.raises(CtdkitError, match=r"already exists .* other DAgger rounds"):
        export_tier(one_round / "datasets", other, "test/tier-v0", root, {}, "x")


def test_encoder_schedules_continued_starts_from_the_last_rounds_weights(tmp_path):
    """`continued`: round 1's encoder is round 0's weights trained on rounds 0-1; `retrained`:
    new weights trained on the same aggregate. Both recomputed here, bit for bit."""
    from ctdkit.dagger import round_aggregate
    from ctdkit.encoder import EncoderConfig, TrajectoryEncoder

    encoder = EncoderConfig(window=6, d_model=16, n_heads=4, ffn=32, n_layers=2, batch_size=8)
    ctd = CollectiveSACConfig(
        conditioning="ctd", hidden=(32, 32), batch_size=64, actor_lr=1e-3, critic=False
    )
    weights = {}
    for schedule in ("continued", "retrained"):
        config = small_run(
            tmp_path / schedule,
            collective=ctd,
            collective_steps=50,
            encoder=encoder,
            encoder_steps=5,
            encoder_schedule=schedule,
        )
        run_dagger(config)
        saved = {
            i: TrajectoryEncoder.load(config.out / f"round-{i}/encoder/encoder.pt") for i in (0, 1)
        }
        expected = config.encoder_config().create()
        if schedule == "continued":
            expected.network.load_state_dict(saved[0].network.state_dict())
        expected.fit(round_aggregate(config.out, 1), 5, progress=False)
        got = saved[1].network.state_dict()
        for name, tensor in expected.network.state_dict().items():
            assert np.array_equal(tensor.numpy(), got[name].numpy()), (schedule, name)
        weights[schedule] = got
    assert any(
        not np.array_equal(weights["continued"][k].numpy(), weights["retrained"][k].numpy())
        for k in weights["continued"]
    )


def test_episodes_are_allocated_by_failure_with_one_each_and_the_total_kept():
    from ctdkit.dagger.config import allocate_episodes

    # weights 0.1, 0.1, 0.6, 1.1 share 36 episodes after one each: 1.89, 1.89, 11.37, 20.84;
    # the three largest remainders (0.89, 0.89, 0.84) get the 3 left over
    assert allocate_episodes([1.0, 1.0, 0.5, 0.0], 40, 0.1) == (3, 3, 12, 22)
    assert allocate_episodes([0.3, 0.3, 0.3], 30, 0.1) == (10, 10, 10)
    assert allocate_episodes([1.0, 0.0], 2, 0.1) == (1, 1)
    with pytest.raises(CtdkitError, match="cannot give each"):
        allocate_episodes([1.0, 0.0, 0.0], 2, 0.1)


def test_a_failures_round_spends_its_episodes_where_the_last_collection_failed(tmp_path):
    from ctdkit.dagger.config import allocate_episodes
    from ctdkit.dagger.rounds import episode_success_by_task

    out = tmp_path / "run"
    result = run_dagger(
        small_run(out, episodes_per_task=3, max_episode_steps=60, allocation="failures")
    )
    root = out / "datasets"
    before = episode_success_by_task(load_transitions(round_dataset_id(0), root=root))
    assert before["reach-v3"] > before["push-v3"]  # the scripted reach succeeds within 60 steps
    expected = allocate_episodes([before[t] for t in TASKS], 6, 0.1)
    assert expected[1] > expected[0]  # push, which failed, gets more
    record = result["rounds"][1]
    assert record["task_episodes"] == dict(zip(TASKS, expected, strict=True))
    assert "task_episodes" not in result["rounds"][0]
    with minari_root(root):
        stored = [minari.load_dataset(f"dagger/round-1/{t[:-3]}-v0").total_episodes for t in TASKS]
    assert tuple(stored) == expected
