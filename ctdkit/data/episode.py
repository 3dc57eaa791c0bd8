"""One episode as whole numpy arrays: what a rollout produces and a Minari dataset stores.

Minari's convention is kept: ``N`` steps have ``N + 1`` observations and ``N + 1`` infos (the
reset's first). Per-step infos use fixed keys, present at reset too, each with a trailing axis
(minari 0.5.4's arrow reader cannot decode 1-D info arrays):

* ``expert_action_mean[t]``, ``expert_action_log_std[t]``: the acting policy's label *at
  observation t*, i.e. for action ``t`` (the last row labels the final observation, where no
  action was taken).
* ``success[t]``: Meta-World's success flag of the step that produced observation ``t``
  (``success[0]`` belongs to the reset and is 0), so ``success[t + 1]`` goes with ``reward[t]``.
* ``label_action_mean[t]``, ``label_action_log_std[t]``: only in data collected with a
  *labeller* (``--labeller``): an expert's label at observation ``t`` whoever acted, so random
  episodes of the mixed tier carry expert targets too. The ``expert_*`` keys keep the acting
  policy's own labels (offline-RL baselines need what was done); without a labeller neither key
  is written, so such datasets keep their content checksums.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from minari.data_collector import EpisodeBuffer

INFO_SUCCESS = "success"
INFO_EXPERT_MEAN = "expert_action_mean"
INFO_EXPERT_LOG_STD = "expert_action_log_std"
INFO_KEYS = (INFO_EXPERT_LOG_STD, INFO_EXPERT_MEAN, INFO_SUCCESS)  # sorted: checksum order
INFO_LABEL_MEAN = "label_action_mean"
INFO_LABEL_LOG_STD = "label_action_log_std"
#: written in addition to INFO_KEYS by a collection with a labeller
LABEL_KEYS = (INFO_LABEL_LOG_STD, INFO_LABEL_MEAN)

_ARRAY_FIELDS = ("observations", "actions", "rewards", "terminations", "truncations")


@dataclass
class EpisodeData:
    """Arrays of one episode plus its per-episode metadata (task, seed, success, ...)."""

    observations: np.ndarray  # (N + 1, obs_dim) float64
    actions: np.ndarray  # (N, action_dim) float32
    rewards: np.ndarray  # (N,) float64
    terminations: np.ndarray  # (N,) bool
    truncations: np.ndarray  # (N,) bool
    infos: dict[str, np.ndarray]  # INFO_KEYS (+ LABEL_KEYS if labelled) -> (N + 1, k)
    metadata: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    @property
    def length(self) -> int:
        return len(self.actions)

    def to_buffer(self) -> EpisodeBuffer:
        """Minari's own episode container, ready for ``create_dataset_from_buffers``."""
        return EpisodeBuffer(
            seed=self.seed,
            observations=self.observations,
            actions=self.actions,
            rewards=self.rewards,
            terminations=self.terminations,
            truncations=self.truncations,
            infos=dict(self.infos),
        )

    def save(self, path: Path) -> None:
        """Write atomically (temp file, then rename): a crash never leaves a partial shard."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in _ARRAY_FIELDS}
        arrays |= {f"info.{k}": v for k, v in self.infos.items()}
        meta = {"metadata": self.metadata, "seed": self.seed}
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, __meta__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> EpisodeData:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["__meta__"]))
            infos = {k.removeprefix("info."): z[k] for k in z.files if k.startswith("info.")}
            return cls(
                **{name: z[name] for name in _ARRAY_FIELDS},
                infos=infos,
                metadata=meta["metadata"],
                seed=meta["seed"],
            )
