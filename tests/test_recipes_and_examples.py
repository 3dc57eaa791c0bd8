"""The dataset recipes in datasets/ name real, parseable commands; the example runs."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import tyro
from scripts import load_script

from ctdkit.collect import CollectConfig
from ctdkit.envs.tasks import resolve_tasks

RECIPES = sorted((Path(__file__).parent.parent / "datasets").glob("*.toml"))
#: recipes built by `ctdkit.collect` (online datasets of `ctdkit.train_expert`: test_experts.py)
COLLECT_RECIPES = [
    p for p in RECIPES if "-m ctdkit.collect" in tomllib.loads(p.read_text())["command"]
]
#: recipes whose published form is recorded (`python -m ctdkit.datasets manifest --recipe`)
MANIFEST_REQUIRED = {
    "ctdkit/mt10-scripted-v0",
    "ctdkit/mt10-scripted-noise0p5-v0",
    "ctdkit/mt10-random-v0",
    "ctdkit/mt10-scripted-random0p5-v0",
}


def test_there_are_recipes_for_the_three_mt10_tiers():
    ids = {tomllib.loads(path.read_text())["id"] for path in RECIPES}
    assert {
        "ctdkit/mt10-scripted-v0",
        "ctdkit/mt10-scripted-noise0p5-v0",
        "ctdkit/mt10-random-v0",
    } <= ids


@pytest.mark.parametrize("path", COLLECT_RECIPES, ids=[p.stem for p in COLLECT_RECIPES])
def test_recipe_command_parses_to_its_own_id(path):
    recipe = tomllib.loads(path.read_text())
    words = shlex.split(recipe["command"])
    assert words[:3] == ["python", "-m", "ctdkit.collect"]
    config = tyro.cli(CollectConfig, args=words[3:])
    assert config.resolved_dataset_id() == recipe["id"]
    tasks = config.resolved_tasks()
    assert tasks == resolve_tasks((recipe["task_set"],)) and set(recipe["success"]) == set(tasks)
    assert recipe["episodes"] == len(tasks) * config.episodes_per_task
    others = {
        tomllib.loads(other.read_text())["content_checksum"] for other in RECIPES if other != path
    }  # a sha256 in hex, and not one copied from another recipe
    assert re.fullmatch("[0-9a-f]{64}", recipe["content_checksum"])
    assert recipe["content_checksum"] not in others
    mean = sum(recipe["success"].values()) / len(recipe["success"])
    assert mean == pytest.approx(recipe["mean_success"], abs=1e-3)


def test_example_collects_loads_and_trains(tmp_path, capsys, monkeypatch):

    module = load_script("examples/collect_and_load.py")
    monkeypatch.chdir(tmp_path)  # its default root is relative, as a user runs it
    module.main(module.Args(episodes_per_task=1, max_episode_steps=60, bc_steps=20))
    out = capsys.readouterr().out
    assert "transitions, 2 episodes" in out and "BC action" in out
    assert (tmp_path / module.Args().root / "example" / "small" / "reach-v0" / "data").is_dir()


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_manifest_belongs_to_its_dataset(path):
    """The published manifest recorded in a recipe covers every task's dataset, and its
    per-dataset content checksums combine to the recipe's group checksum."""
    from ctdkit.data.checksum import combine_checksums
    from ctdkit.data.ids import parse_group_id

    recipe = tomllib.loads(path.read_text())
    if "manifest" not in recipe:
        assert recipe["id"] not in MANIFEST_REQUIRED, f"{path.name} records no manifest"
        return
    group = parse_group_id(recipe["id"])
    members = {task: group.task_dataset_id(task) for task in recipe["success"]}
    assert set(recipe["manifest"]) == set(members.values())
    combined = combine_checksums(
        (task, recipe["manifest"][member]["content_checksum"]) for task, member in members.items()
    )
    assert combined == recipe["content_checksum"]
    hashes, total = set(), 0
    for manifest in recipe["manifest"].values():
        files = manifest["files"]
        assert {"data/metadata.json"} < set(files)
        for file in files.values():
            assert re.fullmatch("[0-9a-f]{64}", file["sha256"]) and file["size"] > 0, file
            hashes.add(file["sha256"])
            total += file["size"]
    # every published file is a different file, and together they are the recorded size
    assert len(hashes) == sum(len(m["files"]) for m in recipe["manifest"].values())
    assert total / 1e6 == pytest.approx(recipe["size_mb"], rel=0.02)
