"""Saving and loading the trajectory encoder: ``payload``/``from_payload`` (tensors and plain
data, which a collective checkpoint embeds), ``save``/``load`` (a file of that payload, read
with ``weights_only=True`` by :mod:`ctdkit.policies.checkpoint`), training checkpoints and
``load_weights``.

Loading builds the encoder on the ``device`` it is given and reads or moves no global RNG (the
seeded weight initialisation it overwrites runs inside a forked RNG).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from ctdkit.encoder.config import ARCHITECTURE_FIELDS, EncoderConfig
from ctdkit.encoder.windows import EpisodeSplit
from ctdkit.errors import CtdkitError
from ctdkit.files import write_atomic
from ctdkit.policies.checkpoint import (
    ENCODER,
    check_checkpoint,
    checkpoint_damaged,
    read_checkpoint,
)

CHECKPOINT_FORMAT = ENCODER.format
CHECKPOINT_GLOB = "step_*.pt"
#: checkpoints kept in a checkpoint directory (older ones are deleted)
CHECKPOINTS_KEPT = 2


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint with the highest step in ``directory`` (None if there is none)."""
    paths = sorted(Path(directory).glob(CHECKPOINT_GLOB))
    return paths[-1] if paths else None


class EncoderPersistence:
    """``payload``, ``save``, ``load`` and friends of :class:`~ctdkit.encoder.TrajectoryEncoder`."""

    def payload(self, training_state: bool = False) -> dict:
        """What :meth:`save` writes: tensors and plain data (``torch.load(weights_only=True)``
        reads it back; a collective checkpoint embeds it)."""
        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "weights": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "step": self.step,
            "split": None
            if self.split is None
            else {"train": self.split.train.tolist(), "validation": self.split.validation.tolist()},
            "data": dict(self.data),
            "history": list(self.history),
        }
        if training_state:
            payload["training"] = {
                "optimizer": self.optimizer.state_dict(),
                "numpy_rng": self._numpy_rng_state,
                "torch_rng": self._torch_rng_state,
            }
        return payload

    def save(self, path: Path, training_state: bool = False) -> Path:
        """Write config, normalisation statistics, weights, split and history to ``path``
        (with the optimizer and RNG states too if ``training_state``); atomic (temp + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda tmp: torch.save(self.payload(training_state), tmp))
        return path

    def save_checkpoint(self, directory: Path) -> Path:
        """Save the full training state as ``directory/step_XXXXXXXX.pt``; keep the newest few."""
        path = self.save(Path(directory) / f"step_{self.step:08d}.pt", training_state=True)
        for old in sorted(Path(directory).glob(CHECKPOINT_GLOB))[:-CHECKPOINTS_KEPT]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
        return path

    @classmethod
    def load(cls, path: Path, device: str | torch.device = "cpu"):
        """The encoder saved in ``path``, rebuilt from its own config on ``device`` (training
        state included if saved, so ``fit`` continues the run)."""
        return cls.from_payload(read_checkpoint(path, ENCODER), device, str(path))

    @classmethod
    def from_payload(
        cls, payload: dict, device: str | torch.device = "cpu", source: str = "encoder payload"
    ):
        """The encoder of a :meth:`payload`, on ``device`` (``source`` names where it came
        from, for the one-line error if it is not an encoder's)."""
        payload = check_checkpoint(payload, ENCODER, source)
        try:
            config = EncoderConfig.from_dict(payload["config"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise checkpoint_damaged(ENCODER, source, error) from error
        encoder = cls(config, device=device)
        encoder._restore(payload, source)
        return encoder

    def load_weights(self, path: Path) -> None:
        """Load weights (and normalisation, split, training state) saved by an encoder of the
        same architecture; a mismatch is one line naming the first differing field."""
        payload = read_checkpoint(path, ENCODER)
        theirs = EncoderConfig.from_dict(payload["config"]).architecture()
        ours = self.config.architecture()
        for name in ARCHITECTURE_FIELDS:
            if theirs[name] != ours[name]:
                raise CtdkitError(
                    f"checkpoint {path} has {name}={theirs[name]!r} but this encoder's config "
                    f"has {name}={ours[name]!r}"
                )
        self._restore(payload, str(path))

    def _restore(self, payload: dict, source: str) -> None:
        try:
            self.network.load_state_dict(payload["weights"])
        except (RuntimeError, TypeError, AttributeError) as error:
            first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
            raise CtdkitError(f"checkpoint {source} does not fit this encoder ({first})") from error
        try:
            self._restore_state(payload)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise checkpoint_damaged(ENCODER, source, error) from error

    def _restore_state(self, payload: dict) -> None:
        self.step = int(payload["step"])
        split = payload.get("split")
        self.split = (
            None
            if split is None
            else EpisodeSplit(
                np.asarray(split["train"], dtype=np.int64),
                np.asarray(split["validation"], dtype=np.int64),
            )
        )
        self.data = dict(payload.get("data", {}))
        self.history = list(payload.get("history", []))
        training = payload.get("training")
        if training is not None:
            self.optimizer.load_state_dict(training["optimizer"])
            self._numpy_rng_state = training["numpy_rng"]
            self._torch_rng_state = training["torch_rng"]
