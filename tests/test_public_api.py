"""The public API re-exported from ``ctdkit``: each name is the object its module defines and
does its documented job on a tiny input; importing the env layer stays light."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ctdkit

NAMES = sorted(set(ctdkit.__all__) - {"__version__"})
#: each stage's main function, reached through its package: a top-level export of the same
#: name as a submodule (``ctdkit.collect``) would be replaced by that submodule once imported
STAGE_FUNCTIONS = {
    "collect": "ctdkit.collect",
    "evaluate": "ctdkit.eval",
    "train_expert": "ctdkit.experts",
}


def test_no_public_name_is_shadowed_by_a_submodule():
    """Python sets ``ctdkit.<name>`` to the submodule ``ctdkit.<name>`` when that is imported
    (``import ctdkit.collect``, ``python -m ctdkit.evaluate``), after which a lazily exported
    function of that name is unreachable: no public name may be a submodule's name."""
    shadowed = [n for n in NAMES if importlib.util.find_spec(f"ctdkit.{n}") is not None]
    assert shadowed == []


@pytest.mark.parametrize("name", NAMES)
def test_every_public_name_is_the_object_its_module_defines(name):
    public = getattr(ctdkit, name)
    if name not in ctdkit._EXPORTS:  # defined in ctdkit/__init__.py itself
        assert public is vars(ctdkit)[name]
        return
    home = ctdkit._EXPORTS[name]
    assert public is getattr(importlib.import_module(home), name)
    assert inspect.isclass(public) or inspect.isfunction(public), type(public)
    assert public.__module__ == home or public.__module__.startswith(home + "."), public.__module__


@pytest.mark.parametrize("name", sorted(STAGE_FUNCTIONS))
def test_every_stage_function_is_defined_where_its_package_says(name):
    home = importlib.import_module(STAGE_FUNCTIONS[name])
    function = getattr(home, name)
    assert inspect.isfunction(function) and name in home.__all__
    assert function.__module__.startswith(STAGE_FUNCTIONS[name] + "."), function.__module__


# ----- each name, used once on a tiny input ---------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """One 8-step reach episode: enough for the data layer and a 2-step learner."""
    root = tmp_path_factory.mktemp("public-api")
    config = _defined("CollectConfig")(
        tasks=("reach-v3",),
        episodes_per_task=1,
        max_episode_steps=8,
        ref_episodes=0,
        workers=1,
        root=root,
        dataset_id="api/small-v0",
        progress=False,
    )
    return _defined("collect")(config)


def _defined(name):
    """The object ``name`` as its own module defines it (public names and stage functions)."""
    home = ctdkit._EXPORTS.get(name) or STAGE_FUNCTIONS[name]
    return getattr(importlib.import_module(home), name)


def _stages(obj, request, tmp_path):
    packages = {
        p.name for p in Path(ctdkit.__file__).parent.iterdir() if (p / "__init__.py").is_file()
    }
    assert packages <= set(obj), packages - set(obj)  # every stage package is listed
    assert obj[0] == "envs" and obj[-1] == "pipeline" and len(set(obj)) == len(obj)


def _ctdkit_error(obj, request, tmp_path):
    assert issubclass(obj, Exception)
    with pytest.raises(obj, match="nope-v3"):
        _defined("resolve_tasks")("nope-v3")


def _make_env(obj, request, tmp_path):
    env = obj("reach-v3", seed=3, max_episode_steps=5)
    assert env.spec.id == "ctdkit/reach-v3"
    first, _ = env.reset(seed=1)
    assert first.shape == (39,) and env.action_space.shape == (4,)
    for step in range(1, 6):
        _, _, terminated, truncated, _ = env.step(np.zeros(4, dtype=np.float32))
        assert not terminated and truncated == (step == 5)
    np.testing.assert_array_equal(env.reset(seed=1)[0], first)  # reset(seed=) is honoured
    env.close()


def _resolve_tasks(obj, request, tmp_path):
    mt10 = obj("MT10")
    assert len(mt10) == 10 and mt10[0] == "reach-v3"
    assert obj(["push-v3", "MT10"]) == ("push-v3", *(t for t in mt10 if t != "push-v3"))


def _collect_config(obj, request, tmp_path):
    config = obj(tasks=("reach-v3",), noise=0.5)
    assert config.resolved_dataset_id() == "ctdkit/reach-scripted-noise0p5-v0"
    assert obj(tasks=("MT10",)).resolved_tasks() == _defined("resolve_tasks")("MT10")


def _collect(obj, request, tmp_path):
    result = request.getfixturevalue("small")
    assert [(t.task, t.episodes, t.steps) for t in result.tasks] == [("reach-v3", 1, 8)]
    assert result.group_id == "api/small-v0" and result.tasks[0].dataset_id == "api/small/reach-v0"


def _load_transitions(obj, request, tmp_path):
    result = request.getfixturevalue("small")
    data = obj(result.group_id, root=result.root)
    assert data.observations.shape == (8, 39) and data.actions.shape == (8, 4)
    assert data.checksum == result.checksum and data.tasks == ("reach-v3",)


def _load_datasets(obj, request, tmp_path):
    result = request.getfixturevalue("small")
    group = obj(result.group_id, result.root)
    assert group.checksum == result.checksum
    assert {task: dataset.total_steps for task, dataset in group} == {"reach-v3": 8}


def _to_d3rlpy(obj, request, tmp_path):
    result = request.getfixturevalue("small")
    data = _defined("load_transitions")(result.group_id, root=result.root)
    dataset = obj(data)
    assert dataset.transition_count == 8 and len(dataset.episodes) == 1
    episode = dataset.episodes[0]  # N + 1 observations: the last is the final next observation
    expected = np.concatenate([data.observations, data.next_observations[-1:]])
    np.testing.assert_allclose(episode.observations, expected, rtol=1e-6)
    np.testing.assert_allclose(episode.rewards[:8, 0], data.rewards, rtol=1e-6)


SMALL_ENCODER = dict(window=4, d_model=16, n_layers=1, n_heads=2, ffn=32)


def _encoder_config(obj, request, tmp_path):
    with pytest.raises(ctdkit.CtdkitError, match="d_model=30 is not divisible"):
        obj(d_model=30, n_heads=8)
    encoder = obj(**SMALL_ENCODER).create()
    assert isinstance(encoder, _defined("TrajectoryEncoder"))
    assert encoder.config == obj(**SMALL_ENCODER)


def _trajectory_encoder(obj, request, tmp_path):
    config = _defined("EncoderConfig")(**SMALL_ENCODER, seed=2)
    a, b = obj(config), obj(config)
    assert a.config == config
    weights_a, weights_b = a.network.state_dict(), b.network.state_dict()  # seeded init
    assert weights_a.keys() == weights_b.keys() and len(weights_a) > 0
    assert all(np.array_equal(v.numpy(), weights_b[k].numpy()) for k, v in weights_a.items())


def _collective_sac_config(obj, request, tmp_path):
    learner = obj(conditioning="oracle", hidden=(8,), seed=1).create()
    assert isinstance(learner, _defined("CollectiveSAC")) and learner.step == 0
    assert learner.config.hidden == (8,) and learner.actor is None  # built on first fit


def _trained(request):
    from ctdkit.collective.context import make_context

    result = request.getfixturevalue("small")
    data = _defined("load_transitions")(result.group_id, root=result.root)
    learner = _defined("CollectiveSACConfig")(
        conditioning="oracle", hidden=(8,), batch_size=4, seed=1
    ).create()
    history = learner.fit(data, 2, context=make_context("oracle", data), progress=False)
    return learner, data, history


def _collective_sac(obj, request, tmp_path):
    learner, data, history = _trained(request)
    assert isinstance(learner, obj) and learner.step == 2 and history[-1]["step"] == 2
    context, _ = learner.context.for_transitions(data)
    actions = learner.predict(data.observations, context)
    assert actions.shape == (8, 4) and np.all(np.abs(actions) < 1)
    learner.save(tmp_path / "c.pt")
    np.testing.assert_array_equal(
        obj.load(tmp_path / "c.pt").predict(data.observations, context), actions
    )


def _collective_agent(obj, request, tmp_path):
    learner, _, _ = _trained(request)
    agent = obj(learner)
    assert isinstance(agent, _defined("EvalAgent"))
    result = _defined("evaluate")(agent, "reach-v3", "all-goals", 0, goals=[0], max_episode_steps=5)
    assert [(e["task"], e["length"]) for e in result.episodes] == [("reach-v3", 5)]


def _eval_agent(obj, request, tmp_path):
    from ctdkit.policies.agents import RandomAgent, ScriptedAgent

    assert isinstance(ScriptedAgent(), obj) and isinstance(RandomAgent(), obj)
    assert not isinstance(object(), obj)


def _evaluate(obj, request, tmp_path):
    from ctdkit.policies.agents import ScriptedAgent

    result = obj(ScriptedAgent(), "reach-v3", "all-goals", 0, goals=[0, 1], max_episode_steps=150)
    assert [e["goal"] for e in result.episodes] == [0, 1]
    assert result.success_by_task() == {"reach-v3": 1.0}
    assert all(e["length"] < 150 for e in result.episodes)  # ended at their first success
    with pytest.raises(ctdkit.CtdkitError, match="evaluation protocol 'best'"):
        obj(ScriptedAgent(), "reach-v3", "best", 0)


def _train_expert_config(obj, request, tmp_path):
    import shlex

    import tyro

    config = obj(task="push-v3", total_steps=1234, env_seed=5)
    words = shlex.split(config.command())
    assert words[:3] == ["python", "-m", "ctdkit.train_expert"]
    again = tyro.cli(obj, args=words[3:])
    assert (again.task, again.total_steps, again.env_seed) == ("push-v3", 1234, 5)


def _train_expert(obj, request, tmp_path):
    out = tmp_path / "expert"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    config = _defined("TrainExpertConfig")(total_steps=10, out_dir=out, progress=False)
    with pytest.raises(ctdkit.CtdkitError, match=r"holds files but no run\.json"):
        obj(config)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]  # nothing written into it


def _summarize(obj, request, tmp_path):
    from ctdkit.eval.protocols import EvalResult

    def result(seed, flags):
        episodes = [{"task": "a", "success": s, "return": 0.0, "length": 1} for s in flags]
        return EvalResult("all-goals", seed, ("a",), episodes)

    summary = obj([result(0, [True, False]), result(1, [True, True])], bootstrap=50)
    assert summary["mean_success"] == pytest.approx(0.75) and summary["seeds"] == [0, 1]
    assert summary["tasks"]["a"]["n"] == 4 and summary["per_seed"] == {"0": 0.5, "1": 1.0}


def _pipeline_config(obj, request, tmp_path):
    assert obj(out=tmp_path / "p").eval_seeds == (100,)  # the defaults are valid: held out
    with pytest.raises(ctdkit.CtdkitError, match="contains the collection seed 0"):
        _validated(obj(seed=0, eval_seeds=(0,)))
    with pytest.raises(ctdkit.CtdkitError, match="--episodes-per-task must be > 0, got 0"):
        _validated(obj(episodes_per_task=0))


def _validated(config):
    """Configs refuse bad settings when built (or, before that, in ``validate()``)."""
    config.validate()


def _run_pipeline(obj, request, tmp_path):
    out = tmp_path / "pipeline"
    out.write_text("not a folder")
    config = _defined("PipelineConfig")(out=out, progress=False)
    with pytest.raises(ctdkit.CtdkitError, match=f"{out} is a file: choose a folder"):
        obj(config)
    assert out.read_text() == "not a folder"  # refused before anything was written


USES = {
    "STAGES": _stages,
    "CtdkitError": _ctdkit_error,
    "make_env": _make_env,
    "resolve_tasks": _resolve_tasks,
    "CollectConfig": _collect_config,
    "collect": _collect,
    "load_transitions": _load_transitions,
    "load_datasets": _load_datasets,
    "to_d3rlpy": _to_d3rlpy,
    "EncoderConfig": _encoder_config,
    "TrajectoryEncoder": _trajectory_encoder,
    "CollectiveSACConfig": _collective_sac_config,
    "CollectiveSAC": _collective_sac,
    "CollectiveAgent": _collective_agent,
    "EvalAgent": _eval_agent,
    "evaluate": _evaluate,
    "TrainExpertConfig": _train_expert_config,
    "train_expert": _train_expert,
    "summarize": _summarize,
    "PipelineConfig": _pipeline_config,
    "run_pipeline": _run_pipeline,
}


def test_every_public_name_has_a_use_here():
    assert sorted(USES) == sorted([*NAMES, *STAGE_FUNCTIONS])


@pytest.mark.parametrize("name", sorted([*NAMES, *STAGE_FUNCTIONS]))
def test_every_public_name_does_its_job(name, request, tmp_path):
    defined_here = name in NAMES and name not in ctdkit._EXPORTS  # e.g. STAGES
    obj = vars(ctdkit)[name] if defined_here else _defined(name)
    USES[name](obj, request, tmp_path)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = ctdkit.nope


def test_the_env_and_collect_layers_do_not_import_torch():
    code = "import sys, ctdkit.envs, ctdkit.collect; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
