"""Checkpoint files: every torch file ctdkit reads goes through :func:`read_checkpoint`.

A ctdkit checkpoint is a dict of tensors and plain data (dict, list, str, int, float, bool,
None) whose ``"format"`` entry names its kind and version. It is read with
``torch.load(weights_only=True)``, so a file can never run code while it loads (a file is
untrusted input: it may come from a download or a colleague), and checked against the kind the
caller expects. A missing, damaged or foreign file, a file of another kind or of an older format,
and a pickle that asks to run code each stop with one line naming the file and what was expected.

The kinds live here, together, so that a loader can say what a wrong file *is* ("a SAC expert,
not a collective checkpoint") whichever stage wrote it.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ctdkit.errors import CtdkitError


@dataclass(frozen=True)
class CheckpointKind:
    name: str
    """What a file of this kind is, for messages."""
    format: str
    """The ``"format"`` entry its files carry: kind and version."""
    required: tuple[str, ...]
    """Entries a file of this kind must hold."""
    made_by: str
    """The command that writes one, for messages."""
    unformatted: bool = False
    """Also read files written before the ``"format"`` entry existed, recognised by all of
    ``required`` (expert training runs of hours resume across that change)."""
    older: tuple[str, ...] = ()
    """Entries that mark a file of this kind from before the ``"format"`` entry, which is no
    longer read: it is refused as an older format rather than as a foreign file."""

    def matches(self, payload: dict[str, Any]) -> bool:
        if payload.get("format") == self.format:
            return True
        return (
            self.unformatted
            and "format" not in payload
            and all(key in payload for key in self.required)
        )


COLLECTIVE = CheckpointKind(
    "collective checkpoint",
    "ctdkit-collective/2",
    (
        "config",
        "context",
        "shapes",
        "actor",
        "critic",
        "critic_target",
        "actor_optim",
        "critic_optim",
        "generator",
        "noise_generator",
        "step",
    ),
    "python -m ctdkit.train_collective",
    older=("config", "context", "actor", "critic_target", "torch_rng"),
)
ENCODER = CheckpointKind(
    "encoder checkpoint",
    "ctdkit-encoder/1",
    ("config", "weights", "step"),
    "python -m ctdkit.train_encoder",
)
SAC_EXPERT = CheckpointKind(
    "SAC expert",
    "ctdkit-sac-expert-v1",
    ("task", "obs_dim", "action_dim", "hidden", "actor"),
    "python -m ctdkit.train_expert",
)
SAC_TRAINING = CheckpointKind(
    "SAC training checkpoint",
    "ctdkit-sac-training/1",
    (
        "fingerprint",
        "env_steps",
        "episodes",
        "seconds",
        "evaluations",
        "learner",
        "replay",
        "rng",
        "expert",
    ),
    "python -m ctdkit.train_expert",
    unformatted=True,
)
KINDS = (COLLECTIVE, ENCODER, SAC_EXPERT, SAC_TRAINING)

_CODE = re.compile(r"Unsupported global: GLOBAL (\S+)")
_UNPICKLER = re.compile(r"WeightsUnpickler error:\s*(\S[^\n]*)")


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device, or one line if it is unknown or absent."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise CtdkitError(f"unknown device {device!r} ({error})") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise CtdkitError(f"device {device!r} is not available (torch sees no CUDA GPU)")
    return resolved


def _article(name: str) -> str:
    return "an" if name[0].lower() in "aeiou" else "a"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kinds(expected: CheckpointKind | Sequence[CheckpointKind]) -> tuple[CheckpointKind, ...]:
    return (expected,) if isinstance(expected, CheckpointKind) else tuple(expected)


def read_checkpoint(
    path: Path, expected: CheckpointKind | Sequence[CheckpointKind]
) -> dict[str, Any]:
    """The checked contents of the checkpoint file ``path`` of kind ``expected`` (one kind, or
    several accepted ones). Tensors come back on the CPU: a loader moves them to its device
    (``load_state_dict`` does)."""
    kinds = _kinds(expected)
    what = " or ".join(kind.name for kind in kinds)
    path = Path(path)
    if path.is_dir():
        raise CtdkitError(f"{what} {path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise CtdkitError(f"{what} {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # torch warns about the pickle protocol of foreign files
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged and foreign files
        text = str(error)
        code = _CODE.search(text)
        if code:
            raise CtdkitError(
                f"{path} is not {_article(what)} {what}: it would run Python code "
                f"({code.group(1)}) when loaded, which ctdkit refuses"
            ) from error
        reason = _UNPICKLER.search(text)
        reason = reason.group(1) if reason else (text.splitlines() or [type(error).__name__])[0]
        raise CtdkitError(
            f"{what} {path} is unreadable: damaged, truncated or not a torch file "
            f"({_short(reason)})"
        ) from error
    return check_checkpoint(payload, kinds, str(path))


def check_checkpoint(
    payload: Any, expected: CheckpointKind | Sequence[CheckpointKind], source: str
) -> dict[str, Any]:
    """``payload`` if it is a checkpoint of an ``expected`` kind with all its entries, else one
    line naming ``source`` (the file) and what it is instead."""
    kinds = _kinds(expected)
    what = " or ".join(kind.name for kind in kinds)
    made_by = kinds[0].made_by
    if not isinstance(payload, dict):
        raise CtdkitError(
            f"{source} is not a ctdkit {what} (it holds a "
            f"{type(payload).__name__}; {made_by} writes one)"
        )
    kind = next((k for k in kinds if k.matches(payload)), None)
    if kind is None:
        found = payload.get("format")
        other = next((k for k in KINDS if k.format == found), None)
        if other is not None:
            raise CtdkitError(
                f"{source} is {_article(other.name)} {other.name}, not {_article(what)} {what} "
                f"({made_by} writes one)"
            )
        if found is None and any(k.older and all(key in payload for key in k.older) for k in kinds):
            raise CtdkitError(
                f"{source} is {_article(what)} {what} in an older format that this ctdkit does "
                f"not read; write it again with {made_by}"
            )
        if isinstance(found, str) and found.startswith("ctdkit-"):
            raise CtdkitError(
                f"{source} has format {_short(repr(found), 60)}, which this ctdkit does not read "
                f"(expected {' or '.join(k.format for k in kinds)})"
            )
        raise CtdkitError(f"{source} is not a ctdkit {what} ({made_by} writes one)")
    require_entries(payload, kind, source, kind.required)
    return payload


def require_entries(
    payload: dict[str, Any], kind: CheckpointKind, source: str, keys: Sequence[str]
) -> None:
    """One line naming the first of ``keys`` that ``payload`` lacks (the entries every file of
    ``kind`` holds, or those of one mode of it, e.g. a ``ctd-e2e`` collective's encoder
    optimiser)."""
    missing = [key for key in keys if key not in payload]
    if missing:
        raise CtdkitError(f"{kind.name} {source} is damaged: it has no {missing[0]!r} entry")


def checkpoint_damaged(kind: CheckpointKind, source: str, error: Exception) -> CtdkitError:
    """The one line for a checkpoint whose entries do not fit together (wrong shapes, types)."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return CtdkitError(f"{kind.name} {source} is damaged ({_short(reason)})")


#: entries that time a run rather than describe its content (an encoder's training history
#: logs wall-clock seconds): left out of :func:`content_digest`
TIMING_KEYS = frozenset({"seconds", "cpu_seconds", "wall_seconds"})


def content_digest(state: Any) -> str:
    """sha256 of a checkpoint's content (every tensor's name, dtype, shape and bytes, and the
    plain values), independent of the file: ``torch.save`` writes a fresh serialization id into
    every file, so two saves of the same weights differ byte for byte. Timings
    (:data:`TIMING_KEYS`) are not content: the same command gives the same digest."""
    h = hashlib.sha256()

    def walk(value: Any, name: str) -> None:
        if name.rpartition(".")[2] in TIMING_KEYS:
            return
        if isinstance(value, torch.Tensor):
            array = value.detach().cpu().contiguous()
            h.update(f"{name}|{array.dtype}|{tuple(array.shape)}|".encode())
            h.update(array.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                walk(value[key], f"{name}.{key}")
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, f"{name}[{index}]")
        else:
            h.update(f"{name}={value!r}|".encode())

    walk(state, "")
    return h.hexdigest()
