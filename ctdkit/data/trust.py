"""Refuse a dataset whose metadata would make Minari or Gymnasium run code that ctdkit did not
write.

A Minari dataset stores its env spec as JSON: an ``entry_point`` (``module:function``), its
kwargs and a list of wrappers, each with its own entry point. ``gym.make(spec)`` imports and
calls whatever those name, and ``MinariStorage.read`` does so on a plain ``load_dataset`` when the
stored spaces are missing. A downloaded dataset is untrusted data, so :func:`check_dataset_metadata`
reads ``data/metadata.json`` itself (size-capped, JSON checked) and accepts only what ctdkit
writes: our one entry point, the wrappers Gymnasium, Meta-World and ctdkit record for our envs,
and kwargs of the right names and types. Call it before Minari or Gymnasium see the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from ctdkit.envs.make import ENTRY_POINT, MAX_EPISODE_STEPS, env_id
from ctdkit.envs.observation import OBS_VIEWS
from ctdkit.envs.tasks import ALL_TASKS
from ctdkit.errors import CtdkitError
from ctdkit.files import read_json_object

#: the largest metadata / index / manifest file read (ours are a few KiB; Minari's spaces grow

#: every wrapper recorded in the spec of a ``ctdkit/<task>`` env, with the kwargs keys it may
#: carry (read from the spec of a real collection: Meta-World's, Gymnasium's, ours)
WRAPPER_KWARGS: dict[str, frozenset[str]] = {
    "metaworld.wrappers:AutoTerminateOnSuccessWrapper": frozenset(),
    "gymnasium.wrappers.common:RecordEpisodeStatistics": frozenset({"buffer_length", "stats_key"}),
    "metaworld.wrappers:RandomTaskSelectWrapper": frozenset(),
    "metaworld.wrappers:CheckpointWrapper": frozenset(),
    "ctdkit.envs.make:TrueObservationSpace": frozenset(),
    "ctdkit.envs.make:SeededReset": frozenset(),
    "ctdkit.envs.make:ObservationView": frozenset(),
}
#: the kwargs of ``build_metaworld_env`` and the type each must have
ENV_KWARGS: dict[str, type] = {"task": str, "seed": int, "view": str, "terminate_on_success": bool}
_SPEC_KEYS = {
    "id",
    "entry_point",
    "reward_threshold",
    "nondeterministic",
    "max_episode_steps",
    "order_enforce",
    "disable_env_checker",
    "kwargs",
    "additional_wrappers",
    "vector_entry_point",
    "apply_api_compatibility",  # older Gymnasium wrote these two; Minari strips them on read
    "autoreset",
}
_BOOL_SPEC_KEYS = ("nondeterministic", "order_enforce", "disable_env_checker", "autoreset")


def is_plain_int(value: object) -> bool:
    """An int that is not a bool (JSON ``true`` is not a size or a seed)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_kwargs(kwargs: object, bad) -> str:
    if not isinstance(kwargs, dict):
        raise bad("kwargs is not an object")
    unknown = sorted(set(kwargs) - set(ENV_KWARGS))
    if unknown:
        raise bad(f"unknown env kwarg {unknown[0]!r}")
    for key, kind in ENV_KWARGS.items():
        value = kwargs.get(key, kind())
        if not (is_plain_int(value) if kind is int else type(value) is kind):
            raise bad(f"env kwarg {key} is not a {kind.__name__}")
    task = kwargs.get("task")
    if task not in ALL_TASKS:
        raise bad(f"env kwarg task {task!r} is not a Meta-World task")
    if kwargs.get("view", "full") not in OBS_VIEWS:
        raise bad(f"env kwarg view {kwargs['view']!r} is not one of {', '.join(OBS_VIEWS)}")
    return task


def _check_wrapper(wrapper: object, bad) -> None:
    if not isinstance(wrapper, dict) or set(wrapper) - {"name", "entry_point", "kwargs"}:
        raise bad("a wrapper entry is not {name, entry_point, kwargs}")
    entry_point = wrapper.get("entry_point")
    if entry_point not in WRAPPER_KWARGS:
        raise bad(f"wrapper entry point {entry_point!r} is not one ctdkit writes")
    if wrapper.get("name") != entry_point.rpartition(":")[2]:
        raise bad(f"wrapper name {wrapper.get('name')!r} does not match {entry_point}")
    kwargs = wrapper.get("kwargs")
    if kwargs is None:
        return
    if not isinstance(kwargs, dict) or set(kwargs) - WRAPPER_KWARGS[entry_point]:
        raise bad(f"wrapper {entry_point} has kwargs ctdkit does not write")
    if not all(isinstance(v, str | int | float | bool) for v in kwargs.values()):
        raise bad(f"wrapper {entry_point} has kwargs that are not plain values")


def check_env_spec(spec_json: object, bad) -> None:
    """One stored env spec (a JSON string, or None): only ctdkit's env, wrappers and kwargs."""
    if spec_json is None:
        return
    if not isinstance(spec_json, str):
        raise bad("not a JSON string")
    try:
        spec = json.loads(spec_json)
    except json.JSONDecodeError:
        raise bad("not valid JSON") from None
    if not isinstance(spec, dict):
        raise bad("not a JSON object")
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise bad(f"unknown key {unknown[0]!r}")
    if spec.get("entry_point") != ENTRY_POINT:
        raise bad(f"entry point {spec.get('entry_point')!r} is not {ENTRY_POINT}")
    if spec.get("vector_entry_point") is not None:
        raise bad(f"vector entry point {spec['vector_entry_point']!r} is not allowed")
    task = _check_kwargs(spec.get("kwargs"), bad)
    if spec.get("id") != env_id(task):
        raise bad(f"env id {spec.get('id')!r} is not {env_id(task)}")
    steps = spec.get("max_episode_steps")
    if steps is not None and not (is_plain_int(steps) and 1 <= steps <= MAX_EPISODE_STEPS):
        raise bad(f"max_episode_steps {steps!r} is not an int in 1..{MAX_EPISODE_STEPS}")
    threshold = spec.get("reward_threshold")
    if threshold is not None and not (is_plain_int(threshold) or isinstance(threshold, float)):
        raise bad("reward_threshold is not a number")
    for key in _BOOL_SPEC_KEYS:
        if key in spec and type(spec[key]) is not bool:
            raise bad(f"{key} is not a bool")
    wrappers = spec.get("additional_wrappers", [])
    if not isinstance(wrappers, list):
        raise bad("additional_wrappers is not a list")
    for wrapper in wrappers:
        _check_wrapper(wrapper, bad)


def check_dataset_metadata(dataset_dir: Path, dataset_id: str) -> None:
    """Refuse (one line) a dataset folder whose ``data/metadata.json`` names code or ids that
    ctdkit does not write; see the module docstring. Reads the file itself, never via Minari."""
    path = Path(dataset_dir) / "data" / "metadata.json"
    metadata = read_json_object(path, f"dataset {dataset_id}: data/metadata.json")

    def bad_in(field: str):
        def bad(problem: str) -> CtdkitError:
            return CtdkitError(
                f"dataset {dataset_id} refused: data/metadata.json {field}: {problem} "
                "(not written by ctdkit, or tampered with: delete it)"
            )

        return bad

    if metadata.get("dataset_id") != dataset_id:
        raise bad_in("dataset_id")(f"{metadata.get('dataset_id')!r} is not the folder's id")
    for field in ("env_spec", "eval_env_spec"):
        check_env_spec(metadata.get(field), bad_in(field))
    for field in ("observation_space", "action_space"):  # absent: Minari would build the env
        if not isinstance(metadata.get(field), str):
            raise bad_in(field)("missing")
    if metadata.get("data_format") not in ("hdf5", "arrow"):
        raise bad_in("data_format")(f"{metadata.get('data_format')!r} is not hdf5 or arrow")
    if metadata.get("combined_datasets"):  # Minari's download would fetch these ids as well
        raise bad_in("combined_datasets")("not empty (ctdkit does not combine datasets)")
