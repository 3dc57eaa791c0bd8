"""Content checksums: one sha256 that identifies a dataset's data, not its provenance.

The hash covers, per episode in order, the observation/action/reward/termination/truncation
arrays, every info array (sorted keys) and the episode metadata (canonical JSON); each array
contributes its dtype and shape as well as its bytes. Dataset-level metadata (dates, code
version, command) is deliberately left out, so re-running the same command with the same seed
must reproduce the checksum. Later work (publishing, benchmarks) identifies data by it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import minari
import numpy as np


def _update_array(h: hashlib._Hash, name: str, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
    h.update(array.tobytes())


def _plain(value: Any) -> Any:
    """numpy scalars/arrays (hdf5 attributes come back as those) -> JSON-native values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def canonical_metadata(metadata: dict[str, Any]) -> str:
    return json.dumps(_plain(metadata), sort_keys=True)


def content_checksum(dataset: minari.MinariDataset) -> str:
    """sha256 over the data arrays and episode metadata of a Minari dataset, in a fixed order."""
    indices = list(dataset.episode_indices)
    return episodes_checksum(dataset.iterate_episodes(indices), episode_metadata(dataset))


def episode_metadata(dataset: minari.MinariDataset) -> list[dict[str, Any]]:
    """Every episode's metadata, in episode order."""
    return list(dataset.storage.get_episode_metadata(list(dataset.episode_indices)))


def episodes_checksum(episodes: Iterable[Any], metadatas: Iterable[dict[str, Any]]) -> str:
    """:func:`content_checksum` of episodes already read (Minari ``EpisodeData``, in order) and
    their metadata: the loader verifies the very arrays it returns without reading them twice."""
    h = hashlib.sha256()
    for episode, metadata in zip(episodes, metadatas, strict=True):
        for name in ("observations", "actions", "rewards", "terminations", "truncations"):
            _update_array(h, name, np.asarray(getattr(episode, name)))
        for key in sorted(episode.infos):
            _update_array(h, f"info.{key}", np.asarray(episode.infos[key]))
        h.update(canonical_metadata(metadata).encode())
    return h.hexdigest()


def combine_checksums(named: Iterable[tuple[str, str]]) -> str:
    """One checksum for a group from its members' (name, checksum) pairs, in order."""
    h = hashlib.sha256()
    for name, checksum in named:
        h.update(f"{name}:{checksum}\n".encode())
    return h.hexdigest()
