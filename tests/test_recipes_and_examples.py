"""The dataset recipes in datasets/ name real, parseable commands; the example runs."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest
import tyro

from ctdkit.collect import CollectConfig
from ctdkit.envs import MT10

RECIPES = sorted((Path(__file__).parent.parent / "datasets").glob("*.toml"))


def test_there_are_recipes_for_the_three_mt10_tiers():
    ids = {tomllib.loads(path.read_text())["id"] for path in RECIPES}
    assert {
        "ctdkit/mt10-scripted-v0",
        "ctdkit/mt10-scripted-noise0p5-v0",
        "ctdkit/mt10-random-v0",
    } <= ids


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_command_parses_to_its_own_id(path):
    recipe = tomllib.loads(path.read_text())
    words = shlex.split(recipe["command"])
    assert words[:3] == ["python", "-m", "ctdkit.collect"]
    config = tyro.cli(CollectConfig, args=words[3:])
    assert config.resolved_dataset_id() == recipe["id"]
    assert config.resolved_tasks() == MT10 and set(recipe["success"]) == set(MT10)
    assert recipe["episodes"] == 10 * config.episodes_per_task
    assert len(recipe["content_checksum"]) == 64
    mean = sum(recipe["success"].values()) / len(recipe["success"])
    assert mean == pytest.approx(recipe["mean_success"], abs=1e-3)


def test_example_collects_loads_and_trains(tmp_path, capsys):
    import importlib.util
    import sys

    path = Path(__file__).parent.parent / "examples" / "collect_and_load.py"
    spec = importlib.util.spec_from_file_location("collect_and_load", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    module.main(module.Args(episodes_per_task=1, max_episode_steps=60, root=tmp_path, bc_steps=20))
    out = capsys.readouterr().out
    assert "transitions, 2 episodes" in out and "BC action" in out
