"""Run folders: one lock, one settings record and one set of rules for ``--resume`` /
``--overwrite``, so every stage that writes a run behaves, and words its refusals, the same way.

A stage (collect's staging, the encoder, the collective, an expert, an evaluation, the pipeline)
opens its folder with :func:`open_run` after validating its inputs:

* the folder is locked while the run writes (``.lock``, :func:`ctdkit.files.exclusive_lock`):
  a second process stops with one line naming the holder's pid, and ``kill -9`` leaves no
  stale lock behind;
* ``run.json`` (``{"fingerprint": {...}}``) records the settings that determine the result;
  it is written atomically before anything else, so a folder without it holds no run;
* a folder holding a run is refused unless ``--resume`` (same settings: continue; other
  settings: refused, naming the keys that differ) or ``--overwrite`` (discard it) is given;
  with both, ``--resume`` decides (``--overwrite`` then concerns only what the stage publishes);
* ``--overwrite`` empties the folder only as the run opens: inputs are validated first, so a
  bad command never costs the old run;
* a folder holding files but no run is never written into or emptied.

A stage without a ``--resume`` flag (it always continues: evaluate, the pipeline) passes
``resume=None``; one without ``--overwrite`` passes ``overwrite=None``; messages then name only
flags the command has. The benchmark's records carry their own settings and go through
:func:`differences` / :func:`different_config`.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctdkit.errors import CtdkitError
from ctdkit.files import (
    exclusive_lock,
    read_json_object,
    safe_relative_path,
    write_atomic,
    write_json_atomic,
    write_text_atomic,
)

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
#: what a run folder may hold without holding a run: its lock, a temp file of a killed writer
_NOT_A_RUN = re.compile(rf"^({re.escape(LOCK_FILE)}|\.{re.escape(RUN_FILE)}\.\d+\.tmp)$")
_MISSING = object()

#: the fingerprint of a run recorded before run.json existed (read from the folder), or None
Legacy = Callable[[Path], dict[str, Any] | None]


def normalized(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as JSON gives it back (tuples become lists): what ``run.json`` holds."""
    if not isinstance(settings, dict):
        raise TypeError(f"run settings must be a dict, got {type(settings).__name__}")
    return json.loads(json.dumps(settings))  # a non-JSON value is a bug: TypeError


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(
    previous: dict[str, Any], settings: dict[str, Any], defaults: dict[str, Any] | None = None
) -> list[str]:
    """The keys (dotted for nested settings) whose values differ, sorted. ``defaults`` fill the
    keys ``previous`` lacks: settings added after it was recorded took their default then."""
    old = {**_flat(normalized(defaults or {})), **_flat(normalized(previous))}
    new = _flat(normalized(settings))
    return sorted(
        k for k in old.keys() | new.keys() if old.get(k, _MISSING) != new.get(k, _MISSING)
    )


def _remedy(resume: bool | None, overwrite: bool | None) -> str:
    if overwrite is None:
        return "choose another --out"
    if resume is None:
        return "pass --overwrite to discard it"
    return "pass --overwrite (without --resume) to discard it"


def different_config(
    where: Path | str, keys: list[str], *, resume: bool | None, overwrite: bool | None
) -> CtdkitError:
    """The one refusal of a run continued with other settings (``keys``: those that differ)."""
    prefix = "--resume: " if resume is not None else ""
    return CtdkitError(
        f"{prefix}the run in {where} used a different config ({', '.join(keys)} differ); "
        f"rerun it unchanged or {_remedy(resume, overwrite)}"
    )


def check_same_settings(
    previous: dict[str, Any],
    settings: dict[str, Any],
    where: Path | str,
    *,
    resume: bool | None,
    overwrite: bool | None,
    defaults: dict[str, Any] | None = None,
) -> None:
    """Raise :func:`different_config` unless ``previous`` (with ``defaults`` under it) and
    ``settings`` agree."""
    keys = differences(previous, settings, defaults)
    if keys:
        raise different_config(where, keys, resume=resume, overwrite=overwrite)


def check_count(flag: str, value: int, minimum: int = 1) -> None:
    """One line for a count below its minimum: ``--n-steps must be > 0, got 0`` (configs call
    it in ``__post_init__``, so a bad flag stops before anything is read or written)."""
    if value < minimum:
        bound = "> 0" if minimum == 1 else f">= {minimum}"
        raise CtdkitError(f"{flag} must be {bound}, got {value}")


def torch_save_atomic(path: Path, obj: Any) -> Path:
    """``torch.save(obj, path)`` through a temp file: a reader never sees half a checkpoint."""
    import torch  # only the stages that save tensors pay for the import

    write_atomic(Path(path), lambda tmp: torch.save(obj, tmp))
    return Path(path)


@dataclass(frozen=True)
class Run:
    """An open run folder: ``resumed`` says whether an existing run continues (its files are
    there to read); writes into it are atomic."""

    path: Path
    settings: dict[str, Any]
    resumed: bool

    def file(self, name: str) -> Path:
        return self.path / safe_relative_path(name, f"a file of the run in {self.path}")

    def write_json(self, name: str, obj: Any, indent: int | None = 1) -> Path:
        write_json_atomic(self.file(name), obj, indent=indent)
        return self.file(name)

    def write_text(self, name: str, text: str) -> Path:
        write_text_atomic(self.file(name), text)
        return self.file(name)

    def write_bytes(self, name: str, data: bytes) -> Path:
        write_atomic(self.file(name), lambda tmp: tmp.write_bytes(data))
        return self.file(name)

    def save_torch(self, name: str, obj: Any) -> Path:
        return torch_save_atomic(self.file(name), obj)

    def remaining_steps(self, step: int, n_steps: int) -> int:
        """The updates still to make for a run at ``step`` to reach ``n_steps`` (what ``fit``
        takes: d3rlpy's meaning, n more steps)."""
        if step > n_steps:
            raise CtdkitError(
                f"the run in {self.path} is already at step {step}, past --n-steps {n_steps}: "
                "pass a larger --n-steps, or --overwrite to start again"
            )
        return n_steps - step


def lock_run(path: Path, what: str) -> contextlib.AbstractContextManager[None]:
    """The lock :func:`open_run` holds, for a folder whose records are checked one by one."""
    return exclusive_lock(Path(path) / LOCK_FILE, f"{what} in {path}")


@contextlib.contextmanager
def open_run(path: Path, settings: dict[str, Any], *, what: str, **rules: Any) -> Iterator[Run]:
    """Lock ``path`` for the block and open the run in it by :func:`prepare_run`'s rules
    (``rules``: its keywords ``resume``, ``overwrite``, ``defaults``, ``legacy``).

    Call it after validating the inputs: ``--overwrite`` empties the folder here.
    """
    path = Path(path)
    settings = normalized(settings)  # a bug (settings JSON cannot hold) fails before the lock
    _refuse_a_file(path, what)
    with lock_run(path, what):
        yield prepare_run(path, settings, what=what, **rules)


def prepare_run(
    path: Path,
    settings: dict[str, Any],
    *,
    resume: bool | None,
    overwrite: bool | None,
    what: str,
    defaults: dict[str, Any] | None = None,
    legacy: Legacy | None = None,
) -> Run:
    """Open the run in ``path`` by the module's rules, without :func:`open_run`'s lock: for a
    caller whose own lock covers ``path`` (collect's staging, under the dataset id's writer
    lock).

    ``settings``: the JSON-safe settings fingerprint. ``what``: the run as a noun phrase ("an
    encoder run"), for messages. ``defaults``: values of settings added since older runs were
    recorded. ``legacy``: reads the fingerprint of a run written before ``run.json``.
    """
    path = Path(path)
    settings = normalized(settings)
    _refuse_a_file(path, what)
    entries = [p for p in path.iterdir() if not _NOT_A_RUN.match(p.name)] if path.is_dir() else []
    if entries:
        recorded = (path / RUN_FILE).is_file()
        previous = None if recorded or legacy is None else legacy(path)
        if not recorded and previous is None:
            raise CtdkitError(
                f"{path} holds files but no {RUN_FILE}, so it is not a ctdkit run: choose "
                f"another folder for {what}, or empty it"
            )
        if resume is not False:  # --resume, or a stage that always continues
            if previous is None:
                previous = _read_fingerprint(path, resume, overwrite)
            check_same_settings(
                previous, settings, path, resume=resume, overwrite=overwrite, defaults=defaults
            )
            if not recorded:  # a run from before run.json: record it now
                write_json_atomic(path / RUN_FILE, {"fingerprint": settings})
            return Run(path, settings, resumed=True)
        if not overwrite:
            raise CtdkitError(
                f"{path} already holds {what}: pass --resume to continue it or --overwrite "
                "to discard it"
            )
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path / RUN_FILE, {"fingerprint": settings})
    return Run(path, settings, resumed=False)


def _refuse_a_file(path: Path, what: str) -> None:
    if path.exists() and not path.is_dir():
        raise CtdkitError(f"{path} is a file: choose a folder for {what}")


def _read_fingerprint(path: Path, resume: bool | None, overwrite: bool | None) -> dict[str, Any]:
    run_file = path / RUN_FILE
    try:
        fingerprint = read_json_object(run_file, str(run_file)).get("fingerprint")
        if not isinstance(fingerprint, dict):
            raise CtdkitError(f"{run_file} holds no settings fingerprint")
    except CtdkitError as error:
        raise CtdkitError(f"{error}: {_remedy(resume, overwrite)}") from None
    return fingerprint
