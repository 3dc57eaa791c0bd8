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
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
from minari.namespace import create_namespace, list_local_namespaces
from minari.serialization import deserialize_space, serialize_space

from ctdkit.data.checksum import content_checksum
from ctdkit.data.episode import EpisodeData
from ctdkit.errors import CtdkitError
from ctdkit.files import exclusive_lock, read_json_object, write_json_atomic

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


JOURNAL_FILE = "publish.json"


def publish_group(
    staging: Path,
    dataset_ids: list[str],
    root: Path,
    *,
    overwrite: bool,
    group: tuple[str, int, dict[str, Any]] | None = None,
) -> None:
    """Move finished datasets from ``staging/minari`` into ``root`` as one all-or-nothing step,
    then record the group (``(namespace, version, entry)``) and remove ``staging``.

    Several folders cannot appear in one rename, so the step is journalled: the plan (moves and
    group record) is written to ``staging/publish.json`` before the first rename, and
    :func:`finish_publish` — run by every later reader or writer of the group — completes an
    interrupted one. The data were complete and checked before the journal was written, so
    finishing forward is always right. A replaced dataset is moved aside first and deleted
    only once the new one is in place. Call under :func:`writer_lock`.
    """
    for dataset_id in dataset_ids:
        if (root / dataset_id).exists() and not overwrite:
            raise CtdkitError(
                f"dataset {dataset_id} already exists in {root} (pass --overwrite to replace it)"
            )
    journal = {"dataset_ids": list(dataset_ids), "group": list(group) if group else None}
    write_json_atomic(staging / JOURNAL_FILE, journal)
    finish_publish(staging, root)


def finish_publish(staging: Path, root: Path) -> bool:
    """Complete the journalled publish in ``staging`` (idempotent); False if there is none."""
    journal_path = staging / JOURNAL_FILE
    if not journal_path.is_file():
        return False
    journal = json.loads(journal_path.read_text())
    replaced = staging / "replaced"
    for dataset_id in journal["dataset_ids"]:
        source, target = dataset_dir(staging / "minari", dataset_id), dataset_dir(root, dataset_id)
        if not source.exists():
            continue  # moved before an interruption
        if target.exists():
            aside = replaced / dataset_id
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(target, aside)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    if journal["group"] is not None:
        namespace, version, entry = journal["group"]
        update_group_metadata(root, namespace, version, entry)
    shutil.rmtree(staging)
    return True


def update_group_metadata(root: Path, namespace: str, version: int, entry: dict[str, Any]) -> None:
    """Record a group (task set, task list, checksums) in Minari's namespace metadata.

    One namespace can hold several versions; each is a key under ``groups``, and the others are
    kept. The record file is replaced atomically.
    """
    with minari_root(root):
        if namespace not in list_local_namespaces():
            create_namespace(namespace, description=entry.get("description"), groups={})
        metadata = _namespace_record(root, namespace)
        groups = dict(metadata.get("groups", {}))
        groups[f"v{version}"] = entry
        metadata["groups"] = groups
        metadata["description"] = metadata.get("description") or entry.get("description")
        write_json_atomic(datasets_root(root) / namespace / NAMESPACE_FILE, metadata)


def read_group_metadata(root: Path, namespace: str, version: int) -> dict[str, Any] | None:
    """The group's record, or None. A publish of this group that was interrupted (kill -9
    between renames) is finished first, so a reader sees the whole group or none of it."""
    staging = staging_dir(datasets_root(root), f"{namespace}-v{version}")
    if (staging / JOURNAL_FILE).is_file():
        with writer_lock(datasets_root(root), f"{namespace}-v{version}"):
            finish_publish(staging, datasets_root(root))
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
