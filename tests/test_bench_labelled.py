"""The expert-labelled tiers in the benchmark: BC clones the labels, offline RL the acting data.

A tiny mixed collection (reach + push, 2 episodes each, half random) is built twice, with the
scripted labeller (v1: ``relabelled``) and without (v0). BC and IQL run through the benchmark
on it (5 gradient steps; evaluation stubbed, test_bench*.py cover it); a spy on
``conditioned_dataset`` keeps the d3rlpy dataset each run trained on. Also: the two labelled
suites, the committed records (still valid, still matching their suites), bad input.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import ctdkit.eval
from ctdkit.bench import BenchRunConfig, run_bench
from ctdkit.bench import learners as bench_learners
from ctdkit.bench import suites as suites_module
from ctdkit.bench.algos import ACTION_TARGETS, action_targets, parse_algo
from ctdkit.bench.data import collect_config, recipe, target_actions
from ctdkit.bench.records import RecordWarning, fingerprint, load_records, read_record
from ctdkit.bench.suites import MT10_ALGOS, SUITES
from ctdkit.collect import CollectConfig, collect
from ctdkit.data import load_transitions
from ctdkit.errors import CtdkitError

ROOT = Path(__file__).resolve().parent.parent
LABELLED, ACTING = "t/tiny-labelled-v1", "t/tiny-labelled-v0"
PER_RUN = ("tasks", "algo", "seed", "episodes_per_task", "dataset_checksum")


def _tiny_suite(dataset_id: str, algos: tuple[str, ...]) -> suites_module.Suite:
    return dataclasses.replace(
        SUITES["tiny"], dataset_id=dataset_id, n_steps=5, algos=algos, seeds=(0,)
    )


def _transition_actions(dataset) -> np.ndarray:
    """The actions of a ``to_d3rlpy`` dataset's transitions (a truncated episode's appended
    final row is not one)."""
    return np.concatenate([e.actions if e.terminated else e.actions[:-1] for e in dataset.episodes])


def _transition_rewards(dataset) -> np.ndarray:
    rewards = [e.rewards if e.terminated else e.rewards[:-1] for e in dataset.episodes]
    return np.concatenate(rewards)[:, 0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """BC and IQL on the labelled data, BC on the acting (v0) data."""
    base = tmp_path_factory.mktemp("labelled")
    root = base / "minari"
    common = dict(
        tasks=("reach-v3", "push-v3"),
        episodes_per_task=2,
        max_episode_steps=30,
        random_fraction=0.5,
        ref_episodes=0,
        workers=1,
        progress=False,
        root=root,
    )
    collect(CollectConfig(**common, labeller="scripted", dataset_id=LABELLED))
    collect(CollectConfig(**common, dataset_id=ACTING))
    built = {}  # (targets, relabelled) -> (data, d3rlpy dataset) of each d3rlpy run
    conditioned_dataset = bench_learners.conditioned_dataset  # patched where the learner reads it

    def spy(data, context, next_context, view, targets="actions"):
        dataset = conditioned_dataset(data, context, next_context, view, targets)
        built[targets, data.relabelled] = (data, dataset)
        return dataset

    def no_evaluation(agent, tasks, *args, **kwargs):  # what is trained on is under test
        return SimpleNamespace(success_by_task=lambda: dict.fromkeys(tasks, 0.0))

    records = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench_learners, "conditioned_dataset", spy)
        patch.setattr(ctdkit.eval, "evaluate", no_evaluation)
        plans = [(LABELLED, ("bc-none", "iql-oracle")), (ACTING, ("bc-none",))]
        for dataset_id, algos in plans:
            patch.setitem(suites_module.SUITES, "tiny", _tiny_suite(dataset_id, algos))
            out = base / dataset_id.replace("/", "-")
            config = BenchRunConfig(suite="tiny", out=out, root=root, workers=1, progress=False)
            result = run_bench(config)
            assert [r["status"] for r in result.results] == ["ok"] * len(algos), result.results
            records[dataset_id] = {r["algo"]: r for r in load_records([out / "records"])}
    return {"root": root, "built": built, "records": records}


def test_the_rule_bc_clones_labels_on_relabelled_data_only():
    for learner in ("bc", "iql", "td3bc", "cql"):
        assert action_targets(learner, relabelled=False) == "actions"
        expected = "labels" if learner == "bc" else "actions"
        assert action_targets(learner, relabelled=True) == expected


def test_bc_trains_on_the_labels_of_relabelled_data_and_iql_on_the_executed_actions(runs):
    built = runs["built"]  # BC on labelled data, IQL on labelled data, BC on v0 data
    assert sorted(built) == [("actions", False), ("actions", True), ("labels", True)]
    (labelled, bc), (_, iql), (acting, bc_v0) = (
        built["labels", True],
        built["actions", True],
        built["actions", False],
    )
    labels = np.clip(labelled.expert_action_mean, -1.0, 1.0)
    random_rows = np.abs(labelled.actions - labels).max(axis=1) > 1e-3
    assert 0.25 < random_rows.mean() < 0.75  # the random half: labels differ from the actions
    np.testing.assert_array_equal(_transition_actions(bc), labels)
    np.testing.assert_array_equal(_transition_actions(iql), labelled.actions)
    np.testing.assert_array_equal(_transition_actions(bc_v0), acting.actions)
    for dataset, data in [(bc, labelled), (iql, labelled), (bc_v0, acting)]:  # acting rewards
        np.testing.assert_array_equal(_transition_rewards(dataset), data.rewards)
    # the executed actions of both collections are the same episodes (labels only add infos)
    np.testing.assert_array_equal(labelled.actions, acting.actions)


def test_records_state_what_bc_cloned_and_stay_valid(runs):
    labelled, acting = runs["records"][LABELLED], runs["records"][ACTING]
    assert labelled["bc-none"]["bc_targets"] == "labels"
    assert acting["bc-none"]["bc_targets"] == "actions"
    assert "bc_targets" not in labelled["iql-oracle"]
    assert labelled["iql-oracle"]["dataset"]["relabelled"] is True
    assert acting["bc-none"]["dataset"]["relabelled"] is False
    assert labelled["bc-none"]["fingerprint"] == fingerprint(labelled["bc-none"]["settings"])


def test_the_labelled_suites_use_the_v1_tiers_at_mt10_budgets():
    mixed, noisy = SUITES["mt10-mixed-labelled"], SUITES["mt10-noisy-labelled"]
    assert mixed.dataset_id == "ctdkit/mt10-scripted-random0p5-v1"
    assert noisy.dataset_id == "ctdkit/mt10-scripted-noise0p5-v1"
    for suite, tier in [(mixed, SUITES["mt10-mixed"]), (noisy, SUITES["mt10-noisy"])]:
        assert suite.algos == (*MT10_ALGOS, "history", "bc-history")
        assert all(parse_algo(a) for a in suite.algos) and suite.reference in suite.algos
        assert suite.seeds == tier.seeds and suite.seed_limits == tier.seed_limits
        assert {**suite.settings(), "dataset_id": tier.dataset_id} == tier.settings()
        assert "labelled by the noise-free scripted expert" in suite.description
        command, checksum = recipe(suite.dataset_id)
        config = collect_config(command)
        assert config.resolved_dataset_id() == suite.dataset_id and checksum
        assert config.labeller == "scripted" and config.episodes_per_task == 20
        v0 = collect_config(recipe(tier.dataset_id)[0])
        assert (config.noise, config.random_fraction) == (v0.noise, v0.random_fraction)


def test_committed_records_stay_valid_and_match_their_unchanged_suites():
    records = load_records([ROOT / "benchmarks" / "leaderboard" / "records"])
    assert len(records) >= 70
    for record in records:
        suite = SUITES[record["suite"]]
        assert record["algo"] in suite.algos
        # BC clones the labels on a relabelled tier (e.g. mt10-dagger), the actions elsewhere
        cloned = "labels" if record["dataset"].get("relabelled") else "actions"
        if record["algo"].startswith("bc-"):
            assert record.get("bc_targets", "actions") == cloned, record["suite"]
        else:
            assert "bc_targets" not in record
        settings = {k: v for k, v in record["settings"].items() if k not in PER_RUN}
        assert settings == {k: v for k, v in suite.settings().items() if k not in PER_RUN}
        assert record["fingerprint"] == fingerprint(record["settings"])


def test_bad_targets_are_one_line(runs, tmp_path):
    acting = load_transitions(ACTING, root=runs["root"])
    with pytest.raises(CtdkitError, match=r"t/tiny-labelled-v0 is not relabelled") as error:
        target_actions(acting, "labels")
    with pytest.raises(CtdkitError, match=r"unknown action targets 'label'.*'labels'") as typo:
        target_actions(acting, "label")
    assert "\n" not in str(error.value) + str(typo.value)
    assert ACTION_TARGETS == ("actions", "labels")
    record = json.loads(Path(runs["records"][LABELLED]["bc-none"]["path"]).read_text())
    for change, problem in [
        ({"algo": "bc-none", "learner": "bc", "bc_targets": "label"}, "not 'actions' or 'labels'"),
        ({"algo": "iql-oracle", "learner": "iql", "bc_targets": "labels"}, "not a bc one"),
    ]:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({**record, **change}))
        with pytest.warns(RecordWarning, match=problem):
            assert read_record(path) is None
    old = {k: v for k, v in record.items() if k != "bc_targets"}  # written before the key
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert read_record(tmp_path / "old.json") is not None
