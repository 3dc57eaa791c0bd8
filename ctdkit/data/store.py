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
from minari.namespace import (
    create_namespace,
    get_namespace_metadata,
    list_local_namespaces,
    update_namespace_metadata,
)
from minari.serialization import deserialize_space, serialize_space
from minari.storage import get_dataset_path

from ctdkit.data.checksum import content_checksum
from ctdkit.data.episode import EpisodeData

STAGING_DIRNAME = ".ctdkit-staging"  # hidden: Minari's listings skip dot-directories
CTDKIT_METADATA_KEY = "ctdkit"


def datasets_root() -> Path:
    """The Minari root in use (``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``)."""
    return Path(get_dataset_path())


@contextlib.contextmanager
def minari_root(path: Path) -> Iterator[Path]:
    """Point Minari at ``path`` for the duration of the block (Minari reads the env var)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
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


def publish(staging_root: Path, dataset_ids: list[str], root: Path, overwrite: bool) -> None:
    """Move finished datasets from ``staging_root`` into ``root`` (rename, same filesystem)."""
    for dataset_id in dataset_ids:
        source, target = dataset_dir(staging_root, dataset_id), dataset_dir(root, dataset_id)
        if target.exists():
            if not overwrite:
                raise FileExistsError(target)
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


def update_group_metadata(root: Path, namespace: str, version: int, entry: dict[str, Any]) -> None:
    """Record a group (task set, task list, checksums) in Minari's namespace metadata.

    One namespace can hold several versions; each is a key under ``groups``.
    """
    with minari_root(root):
        if namespace not in list_local_namespaces():
            create_namespace(namespace, description=entry.get("description"), groups={})
        metadata = get_namespace_metadata(namespace)
        groups = dict(metadata.get("groups", {}))
        groups[f"v{version}"] = entry
        metadata["groups"] = groups
        description = metadata.pop("description", None) or entry.get("description")
        update_namespace_metadata(namespace, description=description, **metadata)


def read_group_metadata(root: Path, namespace: str, version: int) -> dict[str, Any] | None:
    with minari_root(root):
        if namespace not in list_local_namespaces():
            return None
        return get_namespace_metadata(namespace).get("groups", {}).get(f"v{version}")
