"""``ctdkit.collect``: real Minari datasets, determinism, resume, and refusal of bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import minari
import numpy as np
import pytest
from conftest import TINY

from ctdkit.collect import CollectConfig, collect
from ctdkit.collect.__main__ import main as collect_main
from ctdkit.collect.runner import command_line
from ctdkit.data.store import STAGING_DIRNAME, minari_root
from ctdkit.errors import CtdkitError

PLAIN_MINARI_CHECK = textwrap.dedent(
    """
    import json, sys
    import minari, numpy as np
    out = {}
    for dataset_id in sorted(minari.list_local_datasets()):
        ds = minari.load_dataset(dataset_id)
        eps = list(ds.iterate_episodes())
        meta = list(ds.storage.get_episode_metadata(range(ds.total_episodes)))
        out[dataset_id] = {
            "episodes": len(eps),
            "steps": int(sum(len(e.actions) for e in eps)),
            "obs_rows": [int(len(e.observations)) for e in eps],
            "info_keys": sorted(eps[0].infos),
            "task": str(meta[0]["task"]),
            "in_space": bool(all(ds.observation_space.contains(o) for e in eps
                                 for o in e.observations)),
            "ref": [ds.storage.metadata["ref_min_score"], ds.storage.metadata["ref_max_score"]],
            "normalized": float(
                minari.get_normalized_score(ds, np.array([ds.storage.metadata["ref_max_score"]]))[0]
            ),
        }
    assert "ctdkit" not in sys.modules, "plain minari must not need ctdkit"
    print(json.dumps(out))
    """
)


def test_tiny_collection_opens_with_plain_minari_in_a_subprocess(tiny):
    env = dict(os.environ, MINARI_DATASETS_PATH=str(tiny.root))
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_MINARI_CHECK], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(report) == ["test/tiny/push-v0", "test/tiny/reach-v0"]
    for dataset_id, info in report.items():
        assert info["episodes"] == TINY["episodes_per_task"]
        assert info["obs_rows"] == [TINY["max_episode_steps"] + 1] * 2  # N + 1 observations
        assert info["info_keys"] == ["expert_action_log_std", "expert_action_mean", "success"]
        assert info["task"] == dataset_id.split("/")[-1].replace("-v0", "-v3")
        assert info["in_space"]
        assert info["ref"][1] > info["ref"][0]  # expert reference beats random
        assert info["normalized"] == pytest.approx(1.0)


def test_recover_environment_gives_each_datasets_task(tiny):
    with minari_root(tiny.root):
        for summary in tiny.tasks:
            dataset = minari.load_dataset(summary.dataset_id)
            env = dataset.recover_environment()
            assert env.get_wrapper_attr("task_name") == summary.task
            assert env.spec.max_episode_steps == TINY["max_episode_steps"]
            episode = dataset[0]
            # the recovered env reproduces the stored episode's first observation from its seed
            seed = next(iter(dataset.storage.get_episode_metadata([0])))["seed"]
            np.testing.assert_array_equal(env.reset(seed=int(seed))[0], episode.observations[0])


def test_metadata_episode_and_dataset_level(tiny):
    with minari_root(tiny.root):
        dataset = minari.load_dataset(tiny.tasks[1].dataset_id)
        meta = dataset.storage.metadata["ctdkit"]
        assert meta["task"] == "push-v3" and meta["task_index"] == 1
        assert meta["tasks"] == ["reach-v3", "push-v3"] and meta["noise"] == 0.3
        assert meta["content_checksum"] == tiny.tasks[1].checksum
        assert "python -m ctdkit.collect" in meta["command"]
        episode_meta = list(dataset.storage.get_episode_metadata(range(2)))
        for i, m in enumerate(episode_meta):
            episode = dataset[i]
            assert m["policy"] == "scripted" and m["noise"] == 0.3 and m["task_index"] == 1
            assert m["length"] == len(episode.actions)
            assert m["return"] == pytest.approx(float(np.sum(episode.rewards)))
            assert bool(m["success"]) == bool(episode.infos["success"].any())
            labels = episode.infos["expert_action_log_std"]
            np.testing.assert_allclose(labels, np.log(0.3), rtol=1e-6)


def test_same_seed_same_checksum_any_worker_count_and_format(tmp_path, tiny):
    base = dict(TINY, noise=0.3, dataset_id="test/tiny-v0")
    two_workers = collect(CollectConfig(**{**base, "workers": 2}, root=tmp_path / "a"))
    assert two_workers.checksum == tiny.checksum  # 1 worker (fixture) vs 2, hdf5 and arrow
    other_seed = collect(CollectConfig(**{**base, "seed": 4}, root=tmp_path / "b"))
    assert other_seed.checksum != tiny.checksum


def _collect_cli(args, root):
    env = dict(os.environ, MINARI_DATASETS_PATH=str(root))
    return subprocess.run(
        [sys.executable, "-m", "ctdkit.collect", *args], env=env, capture_output=True, text=True
    )


def _visible_datasets(root: Path) -> list[str]:
    with minari_root(root):
        return sorted(minari.list_local_datasets())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "reachh-v3"], "unknown task 'reachh-v3'"),
        (["--tasks", "reach-v3", "--dataset-id", "test/nover"], "needs a version suffix -vN"),
        (["--tasks", "reach-v3", "--episodes-per-task", "0"], "--episodes-per-task must be > 0"),
        (["--tasks", "reach-v3", "--noise", "nan"], "--noise must be a finite number"),
        (
            ["--tasks", "reach-v3", "push-v3", "--task-episodes", "2"],
            "--task-episodes has 1 counts for 2 tasks",
        ),
        (["--tasks", "reach-v3", "--task-episodes", "0"], "--task-episodes must be > 0"),
    ],
)
def test_cli_bad_input_is_one_line_without_traceback(tmp_path, args, message):
    done = _collect_cli([*args, "--max-episode-steps", "20"], tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert _visible_datasets(tmp_path) == []


def test_existing_id_needs_overwrite(tiny, capsys):
    config = CollectConfig(**TINY, root=tiny.root, dataset_id="test/tiny-v0")
    with pytest.raises(CtdkitError, match=r"already exists .*--overwrite"):
        collect(config)
    replaced = collect(config.replace(overwrite=True, noise=0.3, data_format="hdf5"))
    assert replaced.checksum == tiny.checksum  # same data again, old copy replaced


def test_main_prints_where_data_went_and_success(minari_root, capsys):
    collect_main(
        CollectConfig(
            tasks=("reach-v3",),
            episodes_per_task=1,
            max_episode_steps=60,
            ref_episodes=0,
            progress=False,
        )
    )
    out = capsys.readouterr().out
    assert "ctdkit/reach-scripted-v0" in out and str(minari_root) in out and "success" in out


def _staged_shards(root: Path) -> int:
    return len(list((root / STAGING_DIRNAME).glob("*/episodes/*/*.npz")))


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_collection_leaves_nothing_visible_and_resumes_to_same_checksum(tmp_path, stop):
    args = [
        "--tasks",
        "reach-v3",
        "push-v3",
        "--episodes-per-task",
        "6",
        "--max-episode-steps",
        "100",
        "--ref-episodes",
        "1",
        "--seed",
        "5",
        "--dataset-id",
        "test/resume-v0",
        "--no-progress",
    ]
    root = tmp_path / "interrupted"
    env = dict(os.environ, MINARI_DATASETS_PATH=str(root))
    process = subprocess.Popen(
        [sys.executable, "-m", "ctdkit.collect", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a test run started in the background inherits SIGINT ignored (POSIX shells do that
        # for async jobs); give the child the default handling a terminal's Ctrl-C meets
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while _staged_shards(root) < 4 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "collection finished before it could be interrupted"
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    if stop == signal.SIGINT:
        assert process.returncode == 130 and "--resume" in stderr
    assert _visible_datasets(root) == []
    staged = _staged_shards(root)
    assert 4 <= staged < 2 * (6 + 2)

    refused = _collect_cli(args, root)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = _collect_cli([*args, "--resume"], root)
    assert resumed.returncode == 0, resumed.stderr
    assert _visible_datasets(root) == ["test/resume/push-v0", "test/resume/reach-v0"]
    assert not any((root / STAGING_DIRNAME).iterdir())

    reference = _collect_cli(args, tmp_path / "straight")
    checksum = [line for line in reference.stdout.splitlines() if "checksum" in line]
    resumed_checksum = [line for line in resumed.stdout.splitlines() if "checksum" in line]
    assert checksum and checksum == resumed_checksum


def test_resume_with_a_different_config_is_refused(tmp_path):
    config = CollectConfig(**TINY, root=tmp_path, dataset_id="test/r-v0")
    staging = tmp_path / STAGING_DIRNAME / "test__r-v0"
    staging.mkdir(parents=True)
    (staging / "plan.json").write_text(json.dumps({**config.fingerprint(), "noise": 0.9}))
    with pytest.raises(CtdkitError, match=r"different config .*noise"):
        collect(config.replace(resume=True))


def test_rebuild_from_the_recorded_command_gives_the_same_checksum(tiny, tmp_path):
    import shutil

    from ctdkit.collect.rebuild import rebuild_problems

    assert rebuild_problems(tiny.group_id, root=tiny.root) == []
    # a dataset whose recorded command no longer produces it is caught
    root = tmp_path / "copy"
    shutil.copytree(tiny.root, root)
    for summary in tiny.tasks:
        path = root / summary.dataset_id / "data" / "metadata.json"
        metadata = json.loads(path.read_text())
        metadata["ctdkit"]["command"] = metadata["ctdkit"]["command"].replace(
            "--seed 3", "--seed 4"
        )
        path.write_text(json.dumps(metadata))
    problems = rebuild_problems(tiny.group_id, root=root)
    assert len(problems) == 2 and all("rebuilt content checksum differs" in p for p in problems)


def test_mixed_tier_replaces_the_first_episodes_with_random_ones(tiny, tmp_path):
    """--random-fraction 0.5: episode 0 of each task is the random policy's, episode 1 is the
    very episode the pure expert collection stored (same seed, same arrays)."""
    settings = dict(TINY, noise=0.3, data_format="hdf5", root=tmp_path, dataset_id="t/mixed-v0")
    mixed = collect(CollectConfig(**settings, random_fraction=0.5))
    with minari_root(tmp_path):
        mixed_reach = minari.load_dataset("t/mixed/reach-v0")
        meta = list(mixed_reach.storage.get_episode_metadata(range(2)))
        assert [str(m["policy"]) for m in meta] == ["random", "scripted"]
        mixed_eps = list(mixed_reach.iterate_episodes())
    with minari_root(tiny.root):
        pure_eps = list(minari.load_dataset("test/tiny/reach-v0").iterate_episodes())
    np.testing.assert_array_equal(mixed_eps[1].actions, pure_eps[1].actions)
    assert not np.array_equal(mixed_eps[0].actions, pure_eps[0].actions)
    assert mixed.checksum != tiny.checksum
    assert "--random-fraction 0.5" in command_line(CollectConfig(**settings, random_fraction=0.5))


def test_random_fraction_outside_unit_interval_is_refused(tmp_path):
    with pytest.raises(CtdkitError, match="--random-fraction must be in"):
        collect(CollectConfig(**dict(TINY, root=tmp_path), random_fraction=1.5))


@dataclass(frozen=True)
class _NoisyScriptedSource:
    """An acting policy handed to collect as an object (as DAgger hands it a collective)."""

    name: str = "my-noisy-expert"
    noise: float = 0.3

    def fingerprint(self) -> dict:
        return {"noise": self.noise}

    def __call__(self, task):
        from ctdkit.policies import ScriptedPolicy

        return ScriptedPolicy(task, noise=self.noise)


def test_collect_takes_an_acting_policy_object(tmp_path):
    from ctdkit.data import load_datasets, load_transitions

    small = dict(tasks=("reach-v3",), episodes_per_task=2, max_episode_steps=40, ref_episodes=0)
    named = collect(
        CollectConfig(**small, noise=0.3, root=tmp_path, dataset_id="obj/named-v0", progress=False)
    )
    given = collect(
        CollectConfig(**small, root=tmp_path, dataset_id="obj/given-v0", progress=False),
        acting=_NoisyScriptedSource(),
    )
    by_name = load_transitions(named.group_id, root=tmp_path)
    by_object = load_transitions(given.group_id, root=tmp_path)
    for field in ("observations", "actions", "rewards", "expert_action_mean"):
        np.testing.assert_array_equal(getattr(by_name, field), getattr(by_object, field))
    ((_, dataset),) = load_datasets(given.group_id, root=tmp_path)
    recorded = dataset.storage.metadata["ctdkit"]
    assert recorded["policy"] == "my-noisy-expert" and recorded["acting"] == {"noise": 0.3}
    with pytest.raises(CtdkitError, match="not an ActingPolicy"):
        collect(CollectConfig(**small, root=tmp_path, dataset_id="obj/bad-v0"), acting="scripted")
