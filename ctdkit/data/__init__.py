"""Dataset layer: episode arrays, ids, checksums, Minari writing and the aligned loader."""

from ctdkit.data.checksum import content_checksum
from ctdkit.data.episode import EpisodeData
from ctdkit.data.ids import GroupId, parse_group_id
from ctdkit.data.loader import (
    TaskDatasets,
    Transitions,
    concat_transitions,
    load_datasets,
    load_transitions,
    to_d3rlpy,
)

__all__ = [
    "EpisodeData",
    "GroupId",
    "TaskDatasets",
    "Transitions",
    "concat_transitions",
    "content_checksum",
    "load_datasets",
    "load_transitions",
    "parse_group_id",
    "to_d3rlpy",
]
