"""Every input from a remote or from a dataset's files is untrusted: one test per hostile class.

Each test checks the one-line refusal and that nothing outside the cache changed (and, for
downloads, nothing inside it either).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ctdkit.collect import CollectConfig, collect
from ctdkit.data.trust import MAX_JSON_BYTES, check_dataset_metadata
from ctdkit.errors import CtdkitError

#: smaller than conftest's TINY: these tests are about refusals, not data
SMALL = dict(
    tasks=("reach-v3", "push-v3"),
    episodes_per_task=1,
    max_episode_steps=30,
    ref_episodes=0,
    seed=5,
    workers=1,
    progress=False,
    noise=0.3,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 2-task group (hdf5), collected once for this module."""
    root = tmp_path_factory.mktemp("small")
    return collect(CollectConfig(**SMALL, root=root, dataset_id="hostile/small-v0"))


def _copy_member(small, tmp_path: Path) -> tuple[Path, str]:
    member = small.tasks[0].dataset_id
    folder = tmp_path / "copy" / member
    shutil.copytree(small.root / member, folder)
    return folder, member


def _edit_metadata(folder: Path, edit) -> None:
    path = folder / "data" / "metadata.json"
    metadata = json.loads(path.read_text())
    edit(metadata)
    path.write_text(json.dumps(metadata))


def _edit_spec(field: str, edit):
    def apply(metadata):
        spec = json.loads(metadata[field])
        edit(spec)
        metadata[field] = json.dumps(spec)

    return apply


def _evil_entry_point(trace: Path):
    """A stdlib callable that leaves a trace when Gymnasium calls it with the spec's kwargs."""

    def edit(spec):
        spec["entry_point"] = "builtins:open"
        spec["kwargs"] = {"file": str(trace), "mode": "w"}

    return edit


def _drop_spaces(metadata):
    """Without stored spaces, ``MinariStorage.read`` calls ``gym.make(env_spec)``."""
    metadata.pop("observation_space")
    metadata.pop("action_space")


def test_genuine_metadata_passes(small):
    for task in small.tasks:
        check_dataset_metadata(small.root / task.dataset_id, task.dataset_id)


def _set(key, value):
    def edit(spec):
        spec[key] = value

    return edit


def _set_kwarg(key, value):
    def edit(spec):
        spec["kwargs"][key] = value

    return edit


def _wrapper_entry_point(value):
    def edit(spec):
        spec["additional_wrappers"][0]["entry_point"] = value

    return edit


@pytest.mark.parametrize(
    "field, edit, expected",
    [
        ("env_spec", _set("entry_point", "os:system"), "entry point 'os:system'"),
        (
            "eval_env_spec",
            _set("entry_point", "ctdkit.envs.make:build_metaworld_env_and_more"),
            "is not ctdkit.envs.make:build_metaworld_env",
        ),
        ("env_spec", _set("vector_entry_point", "os:system"), "vector entry point"),
        ("env_spec", _wrapper_entry_point("os:system"), "wrapper entry point 'os:system'"),
        ("env_spec", _set_kwarg("task", "rm-rf-v3"), "task 'rm-rf-v3'"),
        ("env_spec", _set_kwarg("seed", "0"), "seed is not a int"),
        ("env_spec", _set_kwarg("terminate_on_success", 1), "terminate_on_success is not a bool"),
        ("env_spec", _set_kwarg("view", "x"), "view 'x'"),
        ("env_spec", _set_kwarg("shell", "sh"), "unknown env kwarg 'shell'"),
        ("env_spec", _set("max_episode_steps", 10**6), "max_episode_steps"),
        ("env_spec", _set("id", "other/env-v0"), "env id"),
    ],
)
def test_metadata_naming_foreign_code_is_refused(small, tmp_path, field, edit, expected):
    folder, member = _copy_member(small, tmp_path)
    _edit_metadata(folder, _edit_spec(field, edit))
    with pytest.raises(CtdkitError) as error:
        check_dataset_metadata(folder, member)
    message = str(error.value)
    assert "\n" not in message and member in message and field in message
    assert expected in message


def test_metadata_id_size_and_json_are_checked(small, tmp_path):
    folder, member = _copy_member(small, tmp_path)
    with pytest.raises(CtdkitError, match=r"dataset_id: .* is not the folder's id"):
        check_dataset_metadata(folder, "hostile/small/other-v0")
    metadata = folder / "data" / "metadata.json"
    metadata.write_text("{not json")
    with pytest.raises(CtdkitError, match=r"metadata\.json is not valid JSON"):
        check_dataset_metadata(folder, member)
    metadata.write_text("[1, 2]")
    with pytest.raises(CtdkitError, match=r"metadata\.json is not a JSON object"):
        check_dataset_metadata(folder, member)
    metadata.write_text(" " * (MAX_JSON_BYTES + 1))
    with pytest.raises(CtdkitError, match="larger than"):
        check_dataset_metadata(folder, member)


def test_spaceless_metadata_with_an_evil_entry_point_runs_nothing(small, tmp_path):
    folder, member = _copy_member(small, tmp_path)
    trace = tmp_path / "pwned"
    _edit_metadata(
        folder, lambda m: (_drop_spaces(m), _edit_spec("env_spec", _evil_entry_point(trace))(m))
    )
    with pytest.raises(CtdkitError, match="entry point 'builtins:open'"):
        check_dataset_metadata(folder, member)
    assert not trace.exists()
