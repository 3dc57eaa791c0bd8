"""ctdkit: offline-RL datasets and benchmarks for multi-task Meta-World (CTD).

Data flow, one package per stage: ``envs`` -> ``policies`` -> ``collect`` -> ``data``.
"""

__version__ = "0.1.0"

from ctdkit.errors import CtdkitError

__all__ = ["CtdkitError", "__version__"]
