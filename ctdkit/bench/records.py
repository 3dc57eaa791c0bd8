"""Run records: one JSON per (suite, algorithm, data variant, seed), written atomically.

A record holds the per-task success (mean over its evaluation seeds), the settings and their
fingerprint, the dataset id with its content checksum and the checksum of the exact rows
trained on (and, when the dataset has a recipe, the recipe's checksum and ``data_equivalence``:
``identical``, ``equivalent`` within the recipe's fingerprint tolerance, or ``unverified``;
records written before that lack both), package versions, hardware, thread settings and wall
time split into load / train / evaluate; a BC record also says what it cloned (``bc_targets``:
the executed actions, or on relabelled data the labels; records written before relabelled
tiers lack it: actions).
A run of a suite with curve points or several final protocols also holds ``curve``: one entry
per evaluation (``steps``, ``protocol``, ``episodes_per_task``, ``mean_success``, ``per_task``,
``eval_seconds``, ``env_steps`` of the scored episodes), the final point under the suite's
protocol equal to the top-level success (records of other suites lack it); a run continued
from a curve checkpoint says where (``resumed_at``).
``status`` is ``ok`` or ``error`` (with the error and traceback): a rerun skips ``ok`` records
of the same settings and retries the rest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ctdkit.data.fingerprint import cpu_model, installed_version
from ctdkit.errors import CtdkitError
from ctdkit.files import write_json_atomic

SCHEMA = 1
REQUIRED = ("schema", "status", "suite", "algo", "variant", "seed", "fingerprint")
REQUIRED_OK = (
    "success_by_task",
    "mean_success",
    "dataset",
    "settings",
    "learner",
    "conditioning",
    "steps",
)
#: settings the leaderboard prints (every record ``run`` writes has them)
SETTINGS_READ = (
    "view",
    "n_steps",
    "batch_size",
    "hidden",
    "protocol",
    "eval_episodes",
    "max_episode_steps",
    "encoder_steps",
    "encoder_window",
    "eval_seeds_per_run",
    "eval_seed_base",
)
#: how a run's data stand to their recipe (``dataset.data_equivalence``, optional)
DATA_EQUIVALENCE = ("identical", "equivalent", "unverified")
PACKAGES = ("ctdkit", "torch", "d3rlpy", "metaworld", "minari", "gymnasium", "numpy", "rliable")


class RecordWarning(UserWarning):
    """A record file that cannot be used (it is skipped, never silently)."""


def variant_name(episodes_per_task: int | None) -> str:
    return "all" if episodes_per_task is None else f"ep{episodes_per_task}"


def record_path(records: Path, suite: str, algo: str, variant: str, seed: int) -> Path:
    return records / suite / algo / variant / f"seed{seed}.json"


def fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def write_record(path: Path, record: dict[str, Any]) -> None:
    write_json_atomic(path, record)


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None (with a :class:`RecordWarning` naming the file and what
    is wrong) when it is not a readable, valid record."""
    record, problem = checked_record(path)
    if problem is not None:
        warnings.warn(f"skipping record {path}: {problem}", RecordWarning, stacklevel=2)
    return record


def checked_record(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(record, None)`` for a valid record at ``path``, else ``(None, what is wrong)``.
    Records are untrusted input (they are shared and committed): size-capped, parsed, then
    every field the leaderboard reads is checked."""
    from ctdkit.files import read_json_object

    try:
        record = read_json_object(Path(path), str(path))
    except CtdkitError as error:  # missing, too large, not JSON, not an object
        return None, str(error).removeprefix(f"{path} ").removeprefix("is ")
    except (OSError, ValueError, RecursionError) as error:  # unreadable, absurd numbers, nesting
        return None, str(error).splitlines()[0] if str(error) else type(error).__name__
    problem = record_problem(record)
    return (record, None) if problem is None else (None, problem)


#: a suite name: what ``bench run`` writes (suite names in code), nothing a path could hide in
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, tuple[Callable[[object], bool], str]] = {
    "schema": (_is_int, "an integer"),
    "status": (lambda v: v in ("ok", "error"), "'ok' or 'error'"),
    "suite": (lambda v: isinstance(v, str), "a string"),
    "algo": (lambda v: isinstance(v, str), "a string"),
    "variant": (lambda v: isinstance(v, str), "a string"),
    "seed": (_is_int, "an integer"),
    "fingerprint": (lambda v: isinstance(v, str), "a string"),
    "success_by_task": (lambda v: isinstance(v, dict), "an object"),
    "mean_success": (lambda v: _is_number(v) and math.isfinite(v), "a finite number"),
    "dataset": (lambda v: isinstance(v, dict), "an object"),
    "settings": (lambda v: isinstance(v, dict), "an object"),
    "learner": (lambda v: isinstance(v, str), "a string"),
    "conditioning": (lambda v: isinstance(v, str), "a string"),
    "steps": (lambda v: _is_int(v) and v > 0, "a positive integer"),
}


def record_problem(record: object) -> str | None:
    """What makes ``record`` unusable (one phrase), or None for a valid record: required fields
    present and typed; for a finished run every task of its suite scored, each success a finite
    number in [0, 1]."""
    if not isinstance(record, dict):
        return "not a JSON object"
    keys = REQUIRED + (REQUIRED_OK if record.get("status") == "ok" else ())
    for key in keys:
        if key not in record:
            return f"missing field {key!r}"
        check, expected = _TYPES[key]
        if not check(record[key]):
            return f"field {key!r} is not {expected} (got {_shown(record[key])})"
    if not _NAME.match(record["suite"]):  # it names plot files: no path tricks
        return f"suite name {_shown(record['suite'])} is not a plain name"
    if record["status"] != "ok":
        error = record.get("error")
        return None if error is None or isinstance(error, str) else "field 'error' is not a string"
    from ctdkit.bench.algos import ACTION_TARGETS, ALGO_IDS

    if record["algo"] not in ALGO_IDS:
        return f"unknown algorithm {_shown(record['algo'])}"
    if "bc_targets" in record:  # what BC cloned; records before relabelled tiers lack it
        if record["learner"] != "bc":
            return f"field 'bc_targets' on a {_shown(record['learner'])} record, not a bc one"
        if record["bc_targets"] not in ACTION_TARGETS:
            shown = _shown(record["bc_targets"])
            return f"field 'bc_targets' is {shown}, not 'actions' or 'labels'"
    for key, expected in (("seconds", dict), ("hardware", dict), ("threads", dict)):
        if not isinstance(record.get(key, {}), expected):
            return f"field {key!r} is not an object"
    if not isinstance(record.get("encoder") or {}, dict):
        return "field 'encoder' is not an object"
    if not all(_is_number(v) for v in record.get("seconds", {}).values()):
        return "field 'seconds' holds a value that is not a number"
    episodes = record.get("episodes_per_task")
    if not (episodes is None or (_is_int(episodes) and episodes > 0)):
        return f"episodes_per_task is {_shown(episodes)}, not a positive integer or null"
    if record["variant"] != variant_name(episodes):
        return f"variant {_shown(record['variant'])} does not match episodes_per_task {episodes}"
    settings = record["settings"]
    for key in SETTINGS_READ:
        if key not in settings:
            return f"settings lack {key!r}"
    hidden = settings["hidden"]
    if not (isinstance(hidden, list) and all(_is_int(h) for h in hidden)):
        return f"settings.hidden is {_shown(hidden)}, not a list of integers"
    problem = _options_problem(settings)
    if problem:
        return problem
    if not isinstance(record["dataset"].get("id"), str):
        return "dataset.id is not a string"
    tasks = record["dataset"].get("tasks")
    if not (isinstance(tasks, list) and tasks and all(isinstance(t, str) for t in tasks)):
        return "dataset.tasks is not a non-empty list of task names"
    if not isinstance(record["dataset"].get("checksum"), str):
        return "dataset.checksum is not a string"
    if not isinstance(record["dataset"].get("recipe_checksum", ""), str):
        return "dataset.recipe_checksum is not a string"
    if record["dataset"].get("data_equivalence", "identical") not in DATA_EQUIVALENCE:
        shown = _shown(record["dataset"]["data_equivalence"])
        return f"dataset.data_equivalence is {shown}, not one of {list(DATA_EQUIVALENCE)}"
    expected = _suite_tasks(record["suite"])
    if expected is not None and sorted(tasks) != sorted(expected):
        return f"its tasks {tasks} are not suite {record['suite']}'s {list(expected)}"
    problem = scores_problem(record["success_by_task"], tasks, "success_by_task")
    if problem:
        return problem
    resumed = record.get("resumed_at", [])
    if not (isinstance(resumed, list) and all(_is_int(s) and s > 0 for s in resumed)):
        return f"field 'resumed_at' is {_shown(resumed)}, not a list of positive integers"
    if "curve" in record:
        return curve_problem(record["curve"], record, tasks)
    return None


#: what every curve entry holds, with its check
_CURVE_KEYS: dict[str, tuple[Callable[[object], bool], str]] = {
    "steps": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "protocol": (lambda v: isinstance(v, str), "a string"),
    "episodes_per_task": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "mean_success": (lambda v: _is_number(v) and 0.0 <= v <= 1.0, "a number in [0, 1]"),
    "per_task": (lambda v: isinstance(v, dict), "an object"),
    "eval_seconds": (lambda v: _is_number(v) and v >= 0, "a non-negative number"),
    "env_steps": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
}


def scores_problem(scores: dict, tasks: list, where: str) -> str | None:
    """Why per-task success rates ``scores`` are not one number in [0, 1] for each of
    ``tasks`` and nothing else (the top-level ones and every curve point's), or None."""
    for task in tasks:
        if task not in scores:
            return f"{where} has no success for task {task!r}"
        value = scores[task]
        if not (_is_number(value) and math.isfinite(value) and 0.0 <= value <= 1.0):
            return f"{where} scores {task} {_shown(value)}, not a number in [0, 1]"
    extra = sorted(set(scores) - set(tasks))
    if extra:
        return f"{where} scores {extra[0]!r}, which is not among its tasks"
    return None


def curve_problem(curve: object, record: dict[str, Any], tasks: list[str]) -> str | None:
    """What is wrong with a record's ``curve`` (one phrase), or None: a list of entries, each
    typed, at a step of the run (a curve point of its settings, or its last step) under a
    known protocol, scoring every task in [0, 1]; no point twice; the final point under the
    record's protocol equal to its top-level success."""
    from ctdkit.bench.suites import PROTOCOLS

    if not isinstance(curve, list) or not curve:
        return "field 'curve' is not a non-empty list"
    settings, steps = record["settings"], record["steps"]
    allowed = settings.get("curve_steps", [])
    allowed = [*allowed, steps] if isinstance(allowed, list) else [steps]
    seen = set()
    for i, entry in enumerate(curve):
        where = f"curve[{i}]"
        if not isinstance(entry, dict):
            return f"{where} is not an object"
        for key, (check, expected) in _CURVE_KEYS.items():
            if key not in entry:
                return f"{where} lacks {key!r}"
            if not check(entry[key]):
                return f"{where}.{key} is not {expected} (got {_shown(entry[key])})"
        if entry["steps"] not in allowed:
            return f"{where}.steps {entry['steps']} is not among the run's points {allowed}"
        if entry["protocol"] not in PROTOCOLS:
            return f"{where}.protocol {_shown(entry['protocol'])} is not one of {list(PROTOCOLS)}"
        point = (entry["steps"], entry["protocol"])
        if point in seen:
            return f"{where} repeats step {point[0]} under {point[1]}"
        seen.add(point)
        problem = scores_problem(entry["per_task"], tasks, f"{where}.per_task")
        if problem:
            return problem
    final = (steps, settings.get("protocol"))
    entry = next((e for e in curve if (e["steps"], e["protocol"]) == final), None)
    if entry is None:
        return f"curve has no final point (step {steps} under {final[1]})"
    if entry["per_task"] != record["success_by_task"]:
        return f"curve's final point (step {steps}) disagrees with success_by_task"
    return None


def _suite_tasks(suite: str) -> tuple[str, ...] | None:
    """The tasks a known suite names (None: a suite of all its dataset's tasks, or unknown)."""
    from ctdkit.bench.suites import SUITES

    if suite not in SUITES or not SUITES[suite].tasks:
        return None
    from ctdkit.envs.tasks import resolve_tasks

    return tuple(resolve_tasks(SUITES[suite].tasks))


def _options_problem(settings: dict[str, Any]) -> str | None:
    """What is wrong with the optional setting changes the leaderboard prints, if anything."""

    def scalar(value: object) -> bool:
        return value is None or isinstance(value, (str, bool)) or _is_number(value)

    collective = settings.get("collective_options", {})
    if not (isinstance(collective, dict) and all(scalar(v) for v in collective.values())):
        return f"settings.collective_options is {_shown(collective)}, not a field-to-value object"
    d3rlpy = settings.get("d3rlpy_options", [])

    def triple(option: object) -> bool:
        return (
            isinstance(option, list)
            and len(option) == 3
            and all(isinstance(x, str) for x in option[:2])
            and scalar(option[2])
        )

    if not (isinstance(d3rlpy, list) and all(triple(o) for o in d3rlpy)):
        return f"settings.d3rlpy_options is {_shown(d3rlpy)}, not [learner, field, value] lists"
    if not _is_number(settings.get("reward_scale", 1.0)):
        return f"settings.reward_scale is {_shown(settings['reward_scale'])}, not a number"
    return None


def _shown(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_records(locations: Iterable[Path]) -> list[dict[str, Any]]:
    """Every readable record under the given folders (or files); each carries its ``path``."""
    records = []
    for location in locations:
        location = Path(location)
        paths = [location] if location.is_file() else sorted(location.rglob("*.json"))
        for path in paths:
            record = read_record(path)
            if record is not None:
                records.append({**record, "path": str(path)})
    return records


def environment(device: str = "cpu") -> dict[str, Any]:
    """Versions, hardware and thread settings of this process (stored in every record)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "versions": {
            "python": sys.version.split()[0],
            **{p: installed_version(p) for p in PACKAGES},
        },
        "hardware": {
            "cpu": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "machine": platform.machine(),
            "gpu": gpu,
            "device": device,
        },
        "threads": {
            "torch": torch.get_num_threads(),
            **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        },
    }
