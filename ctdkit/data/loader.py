"""Load a dataset or a multi-task group by id into aligned transition arrays.

``load_transitions("ctdkit/mt10-scripted-v0")`` gives one :class:`Transitions` whose row ``t``
is a full transition ``(obs, action, reward, next_obs, terminated, truncated)`` with its task,
episode and step indices and the expert labels at ``obs``: a labeller's (``label_action_*``,
data collected with ``--labeller``) where an episode has them, else the acting policy's own.
Minari stores ``N + 1`` observations per ``N``-step episode; rows are built per episode from
``observations[:-1]`` and ``observations[1:]``, so ``next_obs`` is the real final observation,
never a reset observation.

A dataset folder is untrusted input (it may have been downloaded or edited): its
``metadata.json`` passes :func:`~ctdkit.data.trust.check_dataset_metadata` before Minari reads
it, and every column of every episode is checked against the episode's length and the declared
spaces before it is used, so damage is one line naming the dataset, episode and column.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np

from ctdkit.data.checksum import combine_checksums, episode_metadata, episodes_checksum
from ctdkit.data.episode import (
    INFO_EXPERT_LOG_STD,
    INFO_EXPERT_MEAN,
    INFO_LABEL_LOG_STD,
    INFO_LABEL_MEAN,
    INFO_SUCCESS,
)
from ctdkit.data.ids import parse_group_id
from ctdkit.data.store import CTDKIT_METADATA_KEY, datasets_root, minari_root, read_group_metadata
from ctdkit.data.trust import check_dataset_metadata
from ctdkit.envs.observation import apply_view
from ctdkit.errors import CtdkitError, unknown
from ctdkit.files import inside


@dataclass
class TaskDatasets:
    """A loaded group: one Minari dataset per task, in task-index order."""

    dataset_id: str
    tasks: tuple[str, ...]
    datasets: list[minari.MinariDataset]
    checksum: str

    def __iter__(self) -> Iterator[tuple[str, minari.MinariDataset]]:
        return iter(zip(self.tasks, self.datasets, strict=True))


@dataclass
class Transitions:
    """Aligned transition arrays of one dataset or group (row = one environment step)."""

    observations: np.ndarray  # (T, obs_dim) float32, through the requested view
    actions: np.ndarray  # (T, action_dim) float32
    rewards: np.ndarray  # (T,) float32
    next_observations: np.ndarray  # (T, obs_dim) float32
    terminated: np.ndarray  # (T,) bool
    truncated: np.ndarray  # (T,) bool
    task_index: np.ndarray  # (T,) int64, index into ``tasks``
    episode_index: np.ndarray  # (T,) int64, episode number within the loaded group
    step_index: np.ndarray  # (T,) int64, step within the episode
    expert_action_mean: np.ndarray  # (T, action_dim) float32, label at ``observations``:
    # the labeller's where the episode was labelled (``label_action_*``), else the acting policy's
    expert_action_log_std: np.ndarray  # (T, action_dim) float32
    success: np.ndarray  # (T,) bool, Meta-World's success flag after this step
    tasks: tuple[str, ...] = ()
    dataset_id: str = ""
    checksum: str = ""
    view: str = "full"
    has_expert_labels: bool = True  # False: the dataset stores no labels (arrays are zeros)
    relabelled: bool = False  # True: every episode's labels are a labeller's (``--labeller``)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def num_episodes(self) -> int:
        return int(self.episode_index.max()) + 1 if len(self) else 0

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type == "np.ndarray"}


def _unreadable(dataset_id: str, error: Exception) -> CtdkitError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return CtdkitError(f"dataset {dataset_id} is corrupt or unreadable ({reason})")


def _open(root: Path, dataset_id: str) -> minari.MinariDataset:
    """Minari's dataset, after its metadata passed the trust check (Minari would otherwise run
    the entry point its env spec names when the stored spaces are missing)."""
    check_dataset_metadata(inside(root, dataset_id, "dataset id"), dataset_id)
    try:
        return minari.load_dataset(dataset_id)
    except Exception as error:  # minari raises many types for damaged files
        raise _unreadable(dataset_id, error) from error


def _known_ids(root: Path) -> list[str]:
    with contextlib.suppress(Exception):
        return sorted(minari.list_local_datasets())
    return []


def load_datasets(dataset_id: str, root: Path | None = None) -> TaskDatasets:
    """Open a single-task dataset (``ctdkit/mt10-scripted/reach-v0``) or a group
    (``ctdkit/mt10-scripted-v0``) with Minari."""
    root = datasets_root(root)
    with minari_root(root):
        if (inside(root, dataset_id, "dataset id") / "data").is_dir():
            dataset = _open(root, dataset_id)
            meta = dataset.storage.metadata.get(CTDKIT_METADATA_KEY, {})
            task = meta.get("task") or dataset.spec.env_spec.kwargs.get("task", dataset_id)
            return TaskDatasets(dataset_id, (task,), [dataset], meta.get("content_checksum", ""))
        group = parse_group_id(dataset_id)
        entry = read_group_metadata(root, group.namespace, group.version)
        if entry is None:
            groups = _known_ids(root)
            raise unknown(
                "dataset id", dataset_id, groups or ["(no datasets in " + str(root) + ")"]
            )
        members = entry["dataset_ids"]
        missing = [i for i in members if not (inside(root, i, "group member") / "data").is_dir()]
        if missing:
            raise CtdkitError(f"dataset group {dataset_id} is incomplete: {missing[0]} is missing")
        datasets = [_open(root, i) for i in members]
        return TaskDatasets(dataset_id, tuple(entry["tasks"]), datasets, entry["content_checksum"])


def _width(space: gym.Space, name: str, what: str) -> int:
    """The width of a declared 1-D Box space."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise CtdkitError(
            f"dataset {name} declares the {what} space {space}; ctdkit reads 1-D Box spaces only"
        )
    return int(space.shape[0])


def _check_columns(name: str, episode, obs_dim: int, action_dim: int) -> dict[str, np.ndarray]:
    """The episode's columns as arrays, each checked against the episode's length ``N`` (from
    its actions) and the declared widths: one line naming the first column that does not fit."""

    def bad(problem: str) -> CtdkitError:
        return CtdkitError(
            f"dataset {name} episode {episode.id}: {problem} (damaged, or not written by ctdkit)"
        )

    actions = np.asarray(episode.actions)
    n = len(actions) if actions.ndim else 0
    expected = {
        "observations": (n + 1, obs_dim),
        "actions": (n, action_dim),
        "rewards": (n,),
        "terminations": (n,),
        "truncations": (n,),
    }
    infos = episode.infos
    if INFO_SUCCESS not in infos:
        raise bad(f"info column {INFO_SUCCESS!r} is missing")
    label_keys = (INFO_EXPERT_MEAN, INFO_EXPERT_LOG_STD, INFO_LABEL_MEAN, INFO_LABEL_LOG_STD)
    widths = {INFO_SUCCESS: 1} | dict.fromkeys(label_keys, action_dim)
    columns = {key: np.asarray(getattr(episode, key)) for key in expected}
    for key, value in infos.items():
        value = np.asarray(value)
        columns[f"infos[{key!r}]"] = value
        width = widths.get(key)
        # other infos: one row per observation, any width
        expected[f"infos[{key!r}]"] = (n + 1, width) if width else (n + 1, *value.shape[1:])
    for key, value in columns.items():
        if value.shape != expected[key]:
            raise bad(f"{key} has shape {value.shape}, expected {expected[key]}")
        if value.dtype.kind not in "biuf":
            raise bad(f"{key} holds {value.dtype} values, not numbers")
    return columns


def _verify(group: TaskDatasets, actual: list[str]) -> None:
    """Compare recomputed content checksums with the stored ones (``verify=True``)."""
    for dataset, checksum in zip(group.datasets, actual, strict=True):
        name = dataset.spec.dataset_id
        stored = dataset.storage.metadata.get(CTDKIT_METADATA_KEY, {}).get("content_checksum")
        if not stored:
            raise CtdkitError(f"dataset {name} has no stored content checksum to verify against")
        if stored != checksum:
            raise CtdkitError(
                f"dataset {name} fails its content checksum (stored {stored[:12]}, data "
                f"{checksum[:12]}): its files changed after it was written; collect or download "
                "it again"
            )
    if group.dataset_id != group.datasets[0].spec.dataset_id:  # a group: its own checksum too
        combined = combine_checksums(zip(group.tasks, actual, strict=True))
        if combined != group.checksum:
            raise CtdkitError(
                f"dataset group {group.dataset_id} fails its content checksum (its record does "
                "not match its members' data); collect or download it again"
            )


def load_transitions(
    dataset_id: str, view: str = "full", root: Path | None = None, verify: bool = False
) -> Transitions:
    """Load a dataset or group as aligned transitions (see module docstring).

    Every column must fit its episode (``N + 1`` observations and infos, ``N`` actions, rewards,
    terminations and truncations) and the declared observation and action widths; NaN or inf
    anywhere is refused. Each is one line naming the dataset, episode and column.

    ``verify=True`` also recomputes each dataset's content checksum from the arrays read (and a
    group's from its members') and refuses data that differ from the stored one. It hashes the
    arrays already in memory, so it adds about 0.2 s per 100k steps to a load of about 1 s per
    100k steps (measured on a shared 2-core CPU, hdf5 and arrow alike; a separate
    :func:`~ctdkit.data.checksum.content_checksum` pass would read everything again, ~1 s).
    """
    group = load_datasets(dataset_id, root)
    columns: dict[str, list[np.ndarray]] = {f.name: [] for f in fields(Transitions)}
    episode_counter = 0
    has_labels, relabelled = True, True
    widths: tuple[int, int] | None = None
    checksums: list[str] = []
    for task_index, (_task, dataset) in enumerate(group):
        name = dataset.spec.dataset_id
        obs_dim = _width(dataset.observation_space, name, "observation")
        action_dim = _width(dataset.action_space, name, "action")
        if widths is not None and widths != (obs_dim, action_dim):
            raise CtdkitError(
                f"dataset group {dataset_id} mixes widths: {name} has {obs_dim}-dim observations "
                f"and {action_dim}-dim actions, an earlier member {widths[0]} and {widths[1]}"
            )
        widths = (obs_dim, action_dim)
        try:
            episodes = list(dataset.iterate_episodes())
            metadatas = episode_metadata(dataset) if verify else []
        except Exception as error:
            raise _unreadable(name, error) from error
        for episode in episodes:
            episode_columns = _check_columns(name, episode, obs_dim, action_dim)
            obs = episode_columns["observations"]
            n = len(episode_columns["actions"])
            infos = episode.infos
            if INFO_LABEL_MEAN in infos and INFO_LABEL_LOG_STD in infos:  # a labeller's
                mean_key, log_std_key = INFO_LABEL_MEAN, INFO_LABEL_LOG_STD
            else:
                mean_key, log_std_key = INFO_EXPERT_MEAN, INFO_EXPERT_LOG_STD
                relabelled = False
            has_labels = has_labels and mean_key in infos and log_std_key in infos
            no_label = np.zeros((n + 1, action_dim), dtype=np.float32)
            rows = {
                "observations": obs[:-1],
                "actions": episode_columns["actions"],
                "rewards": episode_columns["rewards"],
                "next_observations": obs[1:],
                "terminated": episode_columns["terminations"],
                "truncated": episode_columns["truncations"],
                "task_index": np.full(n, task_index),
                "episode_index": np.full(n, episode_counter),
                "step_index": np.arange(n),
                "expert_action_mean": infos.get(mean_key, no_label)[:-1],
                "expert_action_log_std": infos.get(log_std_key, no_label)[:-1],
                "success": np.asarray(infos[INFO_SUCCESS])[1:].reshape(n),
            }
            for key, value in rows.items():
                value = np.asarray(value)
                if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                    raise CtdkitError(
                        f"dataset {name} episode {episode.id}: {key} contains NaN or inf"
                    )
                columns[key].append(value)
            episode_counter += 1
        if verify:
            checksums.append(episodes_checksum(episodes, metadatas))
    if episode_counter == 0:
        raise CtdkitError(f"dataset {dataset_id} has no episodes")
    if verify:
        _verify(group, checksums)
    dtypes = {
        "terminated": bool,
        "truncated": bool,
        "success": bool,
        "task_index": np.int64,
        "episode_index": np.int64,
        "step_index": np.int64,
    }
    arrays = {
        key: np.concatenate(parts).astype(dtypes.get(key, np.float32), copy=False)
        for key, parts in columns.items()
        if parts
    }
    arrays["observations"] = apply_view(arrays["observations"], view)
    arrays["next_observations"] = apply_view(arrays["next_observations"], view)
    return Transitions(
        **arrays,
        tasks=group.tasks,
        dataset_id=dataset_id,
        checksum=group.checksum,
        view=view,
        has_expert_labels=has_labels,
        relabelled=relabelled,
    )


def concat_transitions(parts: Sequence[Transitions], dataset_id: str) -> Transitions:
    """The rows of ``parts`` in order, as one dataset named ``dataset_id`` (e.g. a base dataset
    and DAgger rounds collected later): the parts must share tasks, view and widths, episodes
    are renumbered consecutively, and the checksum combines the parts' (id, checksum) pairs."""
    if not parts:
        raise CtdkitError(f"concat_transitions: no parts to concatenate into {dataset_id}")
    first = parts[0]
    for part in parts[1:]:
        for what, mine, theirs in [
            ("tasks", " ".join(part.tasks), " ".join(first.tasks)),
            ("view", part.view, first.view),
        ]:
            if mine != theirs:
                raise CtdkitError(
                    f"concat_transitions: {part.dataset_id} has {what} {mine}, "
                    f"{first.dataset_id} {theirs}; only parts alike concatenate"
                )
        widths = [(t.observations.shape[1], t.actions.shape[1]) for t in (first, part)]
        if widths[0] != widths[1]:
            raise CtdkitError(
                f"concat_transitions: {part.dataset_id} has {widths[1][0]}-dim observations and "
                f"{widths[1][1]}-dim actions, {first.dataset_id} {widths[0][0]} and "
                f"{widths[0][1]}"
            )
    arrays: dict[str, np.ndarray] = {}
    for key in first.arrays():
        values = [getattr(part, key) for part in parts]
        if key == "episode_index":  # each part's episodes follow the previous parts'
            offsets = np.cumsum([0] + [part.num_episodes for part in parts[:-1]])
            values = [value + offset for value, offset in zip(values, offsets, strict=True)]
        arrays[key] = np.concatenate(values)
    return Transitions(
        **arrays,
        tasks=first.tasks,
        dataset_id=dataset_id,
        checksum=combine_checksums((part.dataset_id, part.checksum) for part in parts),
        view=first.view,
        has_expert_labels=all(part.has_expert_labels for part in parts),
        relabelled=all(part.relabelled for part in parts),
    )


def to_d3rlpy(transitions: Transitions):
    """An aligned d3rlpy ``MDPDataset`` (d3rlpy's own ``get_minari`` misaligns by one step).

    d3rlpy stores episodes as observation sequences and takes ``next_obs[t] = obs[t + 1]``.
    A terminated episode is given its ``N`` observations with ``terminals[-1] = 1``; a truncated
    one also gets its final observation appended (with a zero action and reward that d3rlpy
    never samples, as a timeout's last row is not a transition), so all ``N`` transitions keep
    their true next observation.
    """
    from d3rlpy.dataset import MDPDataset

    t = transitions
    ends = np.flatnonzero(np.diff(t.episode_index, append=-1) != 0)  # last row of each episode
    appended = ~t.terminated[ends]  # truncated (or cut) episodes get their final obs appended
    total = len(t) + int(appended.sum())
    # destination row of each transition: shifted down by the rows appended before it
    rows = np.arange(len(t))
    dest = rows + np.searchsorted(ends[appended], rows, side="left")
    observations = np.zeros((total, t.observations.shape[1]), dtype=np.float32)
    actions = np.zeros((total, t.actions.shape[1]), dtype=np.float32)
    rewards = np.zeros((total, 1), dtype=np.float32)
    terminals = np.zeros(total, dtype=np.float32)
    timeouts = np.zeros(total, dtype=np.float32)
    observations[dest], actions[dest], rewards[dest, 0] = t.observations, t.actions, t.rewards
    last_rows = dest[ends]
    terminals[last_rows[~appended]] = 1.0
    extra_rows = last_rows[appended] + 1
    observations[extra_rows] = t.next_observations[ends[appended]]
    timeouts[extra_rows] = 1.0
    return MDPDataset(observations, actions, rewards, terminals, timeouts)
