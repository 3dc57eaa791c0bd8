"""ctdkit: offline-RL datasets and benchmarks for multi-task Meta-World, built around
collective transformer distillation (CTD).

Data flow, one package per stage, in :data:`STAGES` order: a stage imports only the stages
before it (``tests/test_architecture.py`` enforces it; the README and docs repeat this order).
The names below are the public API; they load lazily so that ``import ctdkit.envs`` does not
pull in torch. A stage's main function is reached through its package
(``ctdkit.collect.collect``, ``ctdkit.eval.evaluate``, ``ctdkit.experts.train_expert``): a
top-level ``ctdkit.collect`` function would be replaced by the submodule of the same name as
soon as that is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: the stages of the data flow, earliest first
STAGES = (
    "envs",
    "policies",
    "data",
    "collect",
    "encoder",
    "collective",
    "eval",
    "experts",
    "dagger",
    "student",
    "bench",
    "pipeline",
)

_EXPORTS = {
    "CtdkitError": "ctdkit.errors",
    "make_env": "ctdkit.envs",
    "resolve_tasks": "ctdkit.envs",
    "CollectConfig": "ctdkit.collect",
    "load_transitions": "ctdkit.data",
    "load_datasets": "ctdkit.data",
    "to_d3rlpy": "ctdkit.data",
    "EncoderConfig": "ctdkit.encoder",
    "TrajectoryEncoder": "ctdkit.encoder",
    "CollectiveSACConfig": "ctdkit.collective",
    "CollectiveSAC": "ctdkit.collective",
    "CollectiveAgent": "ctdkit.collective",
    "EvalAgent": "ctdkit.policies",
    "TrainExpertConfig": "ctdkit.experts",
    "summarize": "ctdkit.eval",
    "PipelineConfig": "ctdkit.pipeline",
    "run_pipeline": "ctdkit.pipeline",
}

__all__ = ["STAGES", "__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ctdkit' has no attribute {name!r}")
