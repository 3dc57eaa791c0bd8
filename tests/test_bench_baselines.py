"""Each d3rlpy baseline (IQL, CQL, TD3+BC) trains through the benchmark for real.

The tiny suite, cut to 20 gradient steps and one seed, runs ``iql-oracle``, ``cql-none`` and
``td3bc-none`` in-process (``workers=1``). For each: its record names the right algorithm and
steps and holds finite losses; d3rlpy took exactly 20 gradient steps and every parameter moved
from its initialisation (captured when d3rlpy built the networks); and the record's per-task
success is what the saved model scores when evaluated again here.
"""

from __future__ import annotations

import dataclasses

import d3rlpy
import numpy as np
import pytest
import torch

from ctdkit.bench import BenchRunConfig, run_bench
from ctdkit.bench import suites as suites_module
from ctdkit.bench.algos import ConditionedAgent
from ctdkit.bench.records import load_records
from ctdkit.collective.context import make_context
from ctdkit.data import load_transitions
from ctdkit.eval import evaluate

STEPS = 20
ALGOS = {"iql-oracle": "iql", "cql-none": "cql", "td3bc-none": "td3bc"}
LOSSES = {  # d3rlpy 2.8.0's metric names for each learner
    "iql": {"critic_loss", "q_loss", "v_loss", "actor_loss"},
    "cql": {"critic_loss", "actor_loss"},
    "td3bc": {"critic_loss", "actor_loss"},
}


def _parameters(algo) -> dict[str, torch.Tensor]:
    modules = algo.impl.modules.get_torch_modules()
    return {
        f"{name}.{key}": value.detach().clone()
        for name, module in modules.items()
        for key, value in module.named_parameters()
    }


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    base = tmp_path_factory.mktemp("baselines")
    suite = dataclasses.replace(suites_module.get_suite("tiny"), n_steps=STEPS)
    built = []  # (algo, parameters right after d3rlpy built its networks)
    create_impl = d3rlpy.base.LearnableBase.create_impl

    def spy(self, observation_shape, action_size):
        create_impl(self, observation_shape, action_size)
        built.append((self, _parameters(self)))

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(suites_module.SUITES, "tiny", suite)
        patch.setattr(d3rlpy.base.LearnableBase, "create_impl", spy)
        config = BenchRunConfig(
            suite="tiny",
            algos=tuple(ALGOS),
            seeds=(0,),
            out=base / "runs",
            root=base / "minari",
            workers=1,
            progress=False,
        )
        result = run_bench(config)
    records = {r["algo"]: r for r in load_records([config.out / "records"])}
    return {"suite": suite, "config": config, "result": result, "records": records, "built": built}


def test_every_baseline_run_writes_an_ok_record(baselines):
    assert sorted(baselines["records"]) == sorted(ALGOS)
    assert [r["status"] for r in baselines["result"].results] == ["ok"] * len(ALGOS)


@pytest.mark.parametrize("algo_id", list(ALGOS))
def test_baseline_record_names_its_algorithm_steps_and_finite_losses(baselines, algo_id):
    record = baselines["records"][algo_id]
    assert record["status"] == "ok", record.get("traceback")
    learner = ALGOS[algo_id]
    assert (record["algo"], record["learner"]) == (algo_id, learner)
    assert record["conditioning"] == algo_id.rpartition("-")[2]
    assert record["steps"] == STEPS and record["settings"]["n_steps"] == STEPS
    assert record["dataset"]["rows"] == 2 * 4 * 60  # the tiny recipe: 2 tasks x 4 x 60 steps
    losses = record["train_metrics"]
    assert LOSSES[learner] <= set(losses), losses
    assert all(np.isfinite(v) for v in losses.values()), losses


@pytest.mark.parametrize("algo_id", list(ALGOS))
def test_baseline_took_its_gradient_steps_and_moved_every_parameter(baselines, algo_id):
    kind = {
        "iql": d3rlpy.algos.IQL,
        "cql": d3rlpy.algos.CQL,
        "td3bc": d3rlpy.algos.TD3PlusBC,
    }[ALGOS[algo_id]]
    [(algo, initial)] = [(a, p) for a, p in baselines["built"] if type(a) is kind]
    assert algo.grad_step == STEPS
    trained = _parameters(algo)
    assert trained.keys() == initial.keys() and len(trained) > 0
    frozen = [name for name, value in trained.items() if torch.equal(value, initial[name])]
    # target networks follow their online networks by Polyak averaging: they move as well
    assert frozen == [], frozen
    assert all(torch.isfinite(value).all() for value in trained.values())


@pytest.mark.parametrize("algo_id", list(ALGOS))
def test_baseline_success_is_what_its_saved_model_scores(baselines, algo_id):
    suite, config = baselines["suite"], baselines["config"]
    record = baselines["records"][algo_id]
    learner = ALGOS[algo_id]
    model = config.out / "models" / "tiny" / algo_id / "all" / "seed0" / f"{learner}.d3"
    algo = d3rlpy.load_learnable(str(model))
    data = load_transitions(suite.dataset_id, root=config.root)
    conditioning = record["conditioning"]
    agent = ConditionedAgent(algo, make_context(conditioning, data), suite.view, algo_id)
    [eval_seed] = record["eval"]["seeds"]
    result = evaluate(agent, data.tasks, suite.protocol, eval_seed, **suite.eval_options())
    assert record["success_by_task"] == result.success_by_task()
    counts = [sum(e["success"] for e in result.episodes if e["task"] == t) for t in data.tasks]
    assert record["mean_success"] == pytest.approx(sum(counts) / (3 * len(data.tasks)))


def _no_evaluation(agent, tasks, protocol, seed, **options):
    """Every episode a failure of 9 steps (what is under test is the training)."""
    from ctdkit.eval.protocols import EvalResult

    episodes = options["num_episodes"] if protocol == "official" else len(options["goals"])
    result = EvalResult(protocol, seed, tuple(tasks))
    result.episodes = [
        {"task": t, "success": False, "return": 0.0, "length": 9}
        for t in tasks
        for _ in range(episodes)
    ]
    return result


def test_a_stopped_curve_run_of_each_baseline_continues_to_the_same_weights(baselines, tmp_path):
    """With a curve point at step 7 (odd: TD3+BC updates its actor every 2nd step by d3rlpy's
    grad_step), each baseline stopped after the point and rerun ends with exactly the networks
    and optimiser states of the uninterrupted run above (no curve point, same seed)."""
    import ctdkit.eval
    from ctdkit.bench import learners

    suite = dataclasses.replace(baselines["suite"], curve_steps=(7,))
    config = dataclasses.replace(baselines["config"], out=tmp_path / "runs", save_models=True)
    train = learners.D3rlpyRunLearner.train

    def stopped(self, n_steps):
        if self.step >= 7:
            raise RuntimeError("stopped")
        return train(self, n_steps)

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(suites_module.SUITES, "tiny", suite)
        patch.setattr(ctdkit.eval, "evaluate", _no_evaluation)
        patch.setattr(learners.D3rlpyRunLearner, "train", stopped)
        first = run_bench(config)
        assert {r["status"] for r in first.results} == {"error"}
        patch.setattr(learners.D3rlpyRunLearner, "train", train)
        second = run_bench(config)
    assert {r["status"] for r in second.results} == {"ok"}
    for algo_id, learner in ALGOS.items():
        record = load_records([config.out / "records" / "tiny" / algo_id])[0]
        assert record["resumed_at"] == [7] and [e["steps"] for e in record["curve"]] == [7, STEPS]
        [model] = (config.out / "models" / "tiny" / algo_id / "all" / "seed0").glob("*.d3")
        reference = baselines["config"].out / "models" / "tiny" / algo_id / "all" / "seed0"
        resumed, uninterrupted = (_state(path) for path in (model, reference / model.name))
        assert resumed.keys() == uninterrupted.keys(), learner
        for name, value in uninterrupted.items():
            assert _equal(resumed[name], value), f"{algo_id}: {name}"


def _state(path) -> dict:
    """Every network and optimiser state of a saved d3rlpy model (``save`` writes the torch
    state of ``save_model`` inside its pickle)."""
    import io
    import pickle

    with open(path, "rb") as file:
        return torch.load(io.BytesIO(pickle.load(file)["torch"]), weights_only=True)


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b
