"""Write Minari datasets safely: build in a hidden staging root, then rename into place.

Everything goes through Minari's own API (``create_dataset_from_buffers``,
``update_dataset_from_buffer``, ``update_episode_metadata``, namespaces), so the result is a
real Minari dataset that plain ``minari.load_dataset`` opens. Minari writes under the root named
by ``MINARI_DATASETS_PATH``; :func:`minari_root` points it at a staging directory for the
duration of a write, and :func:`publish` moves finished datasets into the real root with
``os.replace`` — a crash at any point leaves no visible half-written dataset.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any

import gymnasium as gym
import minari
from minari.serialization import deserialize_space, serialize_space

from ctdkit.data.checksum import content_checksum
from ctdkit.data.episode import EpisodeData
from ctdkit.errors import CtdkitError
from ctdkit.files import exclusive_lock, inside, read_json_object, write_json_atomic

STAGING_DIRNAME = ".ctdkit-staging"  # hidden: Minari's listings skip dot-directories
LOCKS_DIRNAME = ".ctdkit-locks"  # a lock file per id being written (the lock is the kernel's)
CTDKIT_METADATA_KEY = "ctdkit"
NAMESPACE_FILE = "namespace_metadata.json"  # Minari's per-namespace record


def datasets_root(root: Path | str | None = None) -> Path:
    """The datasets root as an absolute path: ``root`` if given, else the Minari root in use
    (``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``).

    Absolute because Minari's hdf5 writer joins a relative data path onto itself
    (``runs/x/.../data/runs/x/.../main_data.hdf5``): a relative root must never reach it.
    """
    if root is None:  # Minari's own default, without creating it (a read must not write)
        root = os.environ.get("MINARI_DATASETS_PATH") or Path.home() / ".minari" / "datasets"
    return Path(root).expanduser().resolve()


@contextlib.contextmanager
def minari_root(path: Path) -> Iterator[Path]:
    """Point Minari at ``path`` (made absolute) for the duration of the block (Minari reads the
    env var)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    path = datasets_root(path)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


class RecordedEnv(gym.Env):
    """An env's spec and spaces, recorded where the data were collected, for Minari to store.

    Building a Meta-World env costs about a second; the process that writes a dataset has no
    need to step one. Minari reads only ``spec``, ``observation_space`` and ``action_space`` from
    the env it is given, and ``recover_environment()`` later rebuilds the real env from the spec.
    """

    def __init__(self, description: dict[str, Any]):
        self.spec = gym.envs.registration.EnvSpec.from_json(description["spec"])
        self.observation_space = deserialize_space(json.loads(description["observation_space"]))
        self.action_space = deserialize_space(json.loads(description["action_space"]))

    @staticmethod
    def describe(env: gym.Env) -> dict[str, str]:
        """The JSON-safe record of ``env`` that :class:`RecordedEnv` is built from."""
        return {
            "spec": env.spec.to_json(),
            "observation_space": serialize_space(env.observation_space),
            "action_space": serialize_space(env.action_space),
        }

    def step(self, action):  # pragma: no cover - a record, not a simulator
        raise NotImplementedError("RecordedEnv only describes an env; use recover_environment()")

    def reset(self, *, seed=None, options=None):  # pragma: no cover
        raise NotImplementedError("RecordedEnv only describes an env; use recover_environment()")


def _chunks(items: Iterable[EpisodeData], size: int) -> Iterator[list[EpisodeData]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def write_dataset(
    dataset_id: str,
    episodes: Iterable[EpisodeData],
    env: gym.Env,
    *,
    data_format: str,
    description: str,
    algorithm_name: str,
    ref_min_score: float | None,
    ref_max_score: float | None,
    extra_metadata: dict[str, Any],
    author: str = "ctdkit",
    code_permalink: str = "https://github.com/ctdkit/ctdkit",
    requirements: list[str] | None = None,
    chunk_episodes: int = 32,
) -> minari.MinariDataset:
    """Create a Minari dataset from episodes, ``chunk_episodes`` at a time (flat memory).

    Writes under the *current* Minari root: call inside :func:`minari_root` (staging). ``env``
    (real, or a :class:`RecordedEnv`) gives the spec that ``recover_environment`` rebuilds, and
    the spaces. The reference scores
    come from our own random/expert episodes and are written as metadata afterwards, so Minari
    neither runs its 100 evaluation episodes nor builds a second env. The content checksum is
    computed from the data as read back and stored under ``metadata["ctdkit"]["content_checksum"]``.
    """
    dataset = None
    episode_metadata: list[dict[str, Any]] = []
    for chunk in _chunks(episodes, chunk_episodes):
        buffers = [episode.to_buffer() for episode in chunk]
        episode_metadata.extend(episode.metadata for episode in chunk)
        if dataset is None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*author_email.*")
                dataset = minari.create_dataset_from_buffers(
                    dataset_id=dataset_id,
                    buffer=buffers,
                    env=env,
                    eval_env=env.spec,
                    algorithm_name=algorithm_name,
                    author=author,
                    code_permalink=code_permalink,
                    description=description,
                    data_format=data_format,
                    requirements=requirements,
                )
        else:
            dataset.update_dataset_from_buffer(buffers)
    if dataset is None:
        raise ValueError(f"no episodes to write for {dataset_id}")
    dataset.storage.update_episode_metadata(episode_metadata, range(len(episode_metadata)))
    checksum = content_checksum(dataset)
    metadata: dict[str, Any] = {
        CTDKIT_METADATA_KEY: {**extra_metadata, "content_checksum": checksum}
    }
    if ref_min_score is not None and ref_max_score is not None:
        metadata |= {"ref_min_score": ref_min_score, "ref_max_score": ref_max_score}
    dataset.storage.update_metadata(metadata)
    return minari.load_dataset(dataset_id)


def dataset_dir(root: Path, dataset_id: str) -> Path:
    return root / dataset_id


def staging_dir(root: Path, name: str) -> Path:
    """The hidden staging folder of one writer of ``name`` (a group or dataset id) in ``root``."""
    return root / STAGING_DIRNAME / name.replace("/", "__")


def writer_lock(root: Path, name: str) -> contextlib.AbstractContextManager[None]:
    """The OS lock every ctdkit writer of ``name`` (a group or dataset id) in ``root`` holds:
    a second collect, download or publish of the same id stops with one line naming the pid."""
    lock_file = root / LOCKS_DIRNAME / (name.replace("/", "__") + ".lock")
    return exclusive_lock(lock_file, f"{name} in {root}")


JOURNAL_FILE = "journal.json"


def publish_group(
    staging: Path,
    dataset_ids: list[str],
    root: Path,
    *,
    records: list[dict[str, Any]],
    overwrite: bool,
    source: str = "new",
) -> None:
    """Move the finished datasets ``staging/<source>/<id>`` into ``root`` as one all-or-nothing
    step, then apply the JSON ``records`` (namespace records, a remote's index; see
    :func:`apply_records`) in order. The one group writer: collect, the experts' online
    datasets, download and publish all go through it. Call under :func:`writer_lock`.

    Several folders cannot appear in one rename, so the step is journalled
    (``staging/journal.json``). Each existing copy is moved aside (``staging/old``) before the
    new one goes in; once every member is in, the journal says *committed*. A failure before
    that is undone at once; a kill is undone (before the commit) or completed (after it) by
    :func:`recover_group`, which every later writer and reader of the group runs first — so no
    reader ever sees half a group, and a replaced copy is deleted only after the records. When
    it returns, ``staging`` is gone.
    """
    if not overwrite:
        for dataset_id in dataset_ids:
            if (root / dataset_id).exists():
                raise CtdkitError(
                    f"dataset {dataset_id} already exists in {root} "
                    "(pass --overwrite to replace it)"
                )
    journal = {"members": list(dataset_ids), "source": source, "records": records}
    write_json_atomic(staging / JOURNAL_FILE, {**journal, "committed": False})
    try:
        for member in dataset_ids:
            if (root / member).exists():
                _move(root / member, staging / "old" / member)
            _move(staging / source / member, root / member)
        write_json_atomic(staging / JOURNAL_FILE, {**journal, "committed": True})
    except BaseException:
        _undo(staging, root, journal)
        raise
    _finish(staging, root, journal)


def recover_group(staging: Path, root: Path) -> str | None:
    """Undo (not committed) or complete (committed) a publish that was killed in ``staging``:
    returns ``"undone"`` (the new copies are back in ``staging``), ``"completed"`` (the group
    is in ``root`` and ``staging`` is gone) or None (nothing to recover). Idempotent: a
    recovery killed half-way can run again."""
    path = staging / JOURNAL_FILE
    if not path.is_file():
        return None
    journal = read_json_object(path, str(path))
    if journal.get("committed"):
        _finish(staging, root, journal)
        return "completed"
    _undo(staging, root, journal)
    return "undone"


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _undo(staging: Path, root: Path, journal: dict[str, Any]) -> None:
    """Put every member back as it was; each step is a rename whose state says whether it is
    still to do."""
    for member in journal["members"]:
        new, old = staging / journal["source"] / member, staging / "old" / member
        target = root / member
        if not new.exists() and target.exists():
            _move(target, new)
        if old.exists():
            _move(old, target)
        _prune_empty(target.parent, root)
        _prune_empty(old.parent, staging)  # the folders the old copy was moved into
    (staging / JOURNAL_FILE).unlink(missing_ok=True)


def _finish(staging: Path, root: Path, journal: dict[str, Any]) -> None:
    """Apply the records, then remove the staging folder, its journal last (a kill in between
    only repeats this step)."""
    apply_records(root, journal["records"])
    for child in staging.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        elif child.name != JOURNAL_FILE:
            child.unlink()
    (staging / JOURNAL_FILE).unlink()
    staging.rmdir()


def _prune_empty(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents below ``stop`` while they are empty."""
    for path in [folder, *folder.parents]:
        if path == stop or not path.is_relative_to(stop):
            return
        try:
            path.rmdir()
        except FileNotFoundError:  # already gone: its parent may be empty now
            continue
        except OSError:  # not empty
            return


def apply_records(root: Path, ops: list[dict[str, Any]]) -> None:
    """Merge JSON records into files under ``root``, in order. Each op names a ``path``; a
    missing file starts from ``base``; ``update`` merges objects one level deep (a group
    version, a dataset), ``add`` unions lists (namespaces). Idempotent, so a killed publish's
    records can be applied again; other entries (another version's group) are kept."""
    for op in ops:
        path = inside(root, op["path"], "record")
        data = read_json_object(path, str(path)) if path.exists() else dict(op["base"])
        for key, value in op.get("update", {}).items():
            if not isinstance(data.get(key, {}), dict):
                raise CtdkitError(f"{path}: {key} is not an object; fix or delete the file")
            data[key] = {**data.get(key, {}), **value}
        for key, names in op.get("add", {}).items():
            if not isinstance(data.get(key, []), list):
                raise CtdkitError(f"{path}: {key} is not a list; fix or delete the file")
            data[key] = sorted({*data.get(key, []), *names})
        write_json_atomic(path, data)


def group_records(
    namespace: str, version: int, entry: dict[str, Any], base: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The record ops of group ``namespace``-v``version``: Minari's namespace record for each
    parent namespace (empty, as Minari writes them) and the group's own, which gains this
    version's ``entry`` and keeps every other version's. ``base`` starts a new record (default:
    the entry's description)."""
    parents = [str(p) for p in PurePosixPath(namespace).parents if str(p) != "."]
    start = base if base is not None else {"description": entry.get("description")}
    return [
        *({"path": f"{p}/{NAMESPACE_FILE}", "base": {}} for p in sorted(parents)),
        {
            "path": f"{namespace}/{NAMESPACE_FILE}",
            "base": start,
            "update": {"groups": {f"v{version}": entry}},
        },
    ]


def read_group_metadata(root: Path, namespace: str, version: int) -> dict[str, Any] | None:
    """The group's record, or None. A publish of this group that was killed between renames is
    recovered first (undone or completed), so a reader sees the whole group or none of it."""
    staging = staging_dir(datasets_root(root), f"{namespace}-v{version}")
    if (staging / JOURNAL_FILE).is_file():
        with writer_lock(datasets_root(root), f"{namespace}-v{version}"):
            recover_group(staging, datasets_root(root))
    if not (datasets_root(root) / namespace / NAMESPACE_FILE).is_file():
        return None
    return _namespace_record(root, namespace).get("groups", {}).get(f"v{version}")


def _namespace_record(root: Path, namespace: str) -> dict[str, Any]:
    """A namespace's metadata, read as untrusted JSON (size cap, shape checked)."""
    path = datasets_root(root) / namespace / NAMESPACE_FILE
    record = read_json_object(path, str(path))
    if not isinstance(record.get("groups", {}), dict):
        raise CtdkitError(f"{path}: 'groups' is not an object; delete it and rerun the command")
    return record
