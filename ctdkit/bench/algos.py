"""Algorithm ids of the benchmark and the d3rlpy baselines behind them.

An id is ``[learner-]conditioning``:

* ``ctd``, ``oracle``, ``none``, ``history`` — ctdkit's collective learner (distillation actor)
  conditioned on the CLS embedding of the trajectory encoder, a one-hot task id, nothing, or
  the raw last 5 actions and rewards of the episode;
* ``bc-*``, ``iql-*``, ``cql-*``, ``td3bc-*`` — d3rlpy's own BC, IQL, CQL and TD3+BC, offered the
  same conditioning: their observations are ``[context, observation]``, built by the same
  :class:`~ctdkit.collective.context.ContextModel` for the training rows and, at act time, from
  the evaluator's episode history (e.g. ``iql-ctd``, ``bc-oracle``, ``cql-none``,
  ``bc-history``).

``ctd-e2e`` is not a bench conditioning: it finetunes its encoder inside the collective, while
the bench trains one encoder per seed and shares its precomputed contexts between algorithms
(:mod:`ctdkit.bench.conditioning`); ``python -m ctdkit.train_collective`` and
``python -m ctdkit.dagger`` train it.

What a d3rlpy learner's dataset holds as actions (:func:`action_targets`): BC on relabelled
data (``Transitions.relabelled``: a labeller's action at every visited state) clones those
labels; BC on other data and every offline-RL learner learn from the executed actions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ctdkit.collective.agent import HistoryContextAgent
from ctdkit.collective.config import CONDITIONINGS, END_TO_END
from ctdkit.collective.context import ContextModel
from ctdkit.envs.observation import apply_view
from ctdkit.errors import CtdkitError, unknown
from ctdkit.policies.history import EpisodeHistory

COLLECTIVE = "collective"
D3RLPY_LEARNERS = ("bc", "iql", "cql", "td3bc")
#: the conditionings the bench offers (all but ctd-e2e: see the module's docstring)
BENCH_CONDITIONINGS: tuple[str, ...] = tuple(c for c in CONDITIONINGS if c != END_TO_END)
ALGO_IDS: tuple[str, ...] = (
    *BENCH_CONDITIONINGS,
    *(f"{learner}-{c}" for learner in D3RLPY_LEARNERS for c in BENCH_CONDITIONINGS),
)
#: rough relative cost per gradient step (longest runs are scheduled first)
COST = {"cql": 10.0, "iql": 3.0, "td3bc": 2.5, "bc": 1.0, COLLECTIVE: 1.0}
ActionTargets = Literal["actions", "labels"]
ACTION_TARGETS: tuple[ActionTargets, ...] = ("actions", "labels")


@dataclass(frozen=True)
class Algo:
    id: str
    learner: str  # "collective" or a d3rlpy learner
    conditioning: str  # ctd | oracle | none | history


def parse_algo(algo_id: str) -> Algo:
    if algo_id.endswith(END_TO_END):
        raise CtdkitError(
            f"algorithm {algo_id!r}: the bench has no {END_TO_END} (it shares one frozen "
            f"encoder per seed); train it with python -m ctdkit.train_collective or "
            f"python -m ctdkit.dagger --collective.conditioning {END_TO_END}"
        )
    if algo_id not in ALGO_IDS:
        raise unknown("algorithm", algo_id, ALGO_IDS)
    learner, _, conditioning = algo_id.rpartition("-")
    return Algo(algo_id, learner or COLLECTIVE, conditioning)


def action_targets(learner: str, relabelled: bool) -> ActionTargets:
    """The actions a d3rlpy ``learner`` trains on. BC on relabelled data clones the labels: a
    labeller's action at every visited state, random episodes included, is what relabelling is
    for. Offline RL keeps the executed actions, whose rewards and next states it learns from
    (a label was never executed, so it has neither)."""
    return "labels" if learner == "bc" and relabelled else "actions"


def d3rlpy_config(
    learner: str,
    hidden: Sequence[int],
    batch_size: int,
    observation_mean: np.ndarray,
    observation_std: np.ndarray,
    reward_scale: float = 1.0,
    options: dict[str, Any] | None = None,
) -> Any:
    """d3rlpy's config for ``learner`` with the suite's network sizes and batch, ``options``
    (config field → value) changed, everything else at d3rlpy's defaults. Observations are
    standardised with statistics of the training data (as the collective learner does), given
    precomputed so d3rlpy need not walk every row."""
    import d3rlpy
    from d3rlpy.models.encoders import VectorEncoderFactory
    from d3rlpy.preprocessing import MultiplyRewardScaler, StandardObservationScaler

    nets = VectorEncoderFactory(list(hidden))
    common: dict[str, Any] = dict(
        batch_size=batch_size,
        observation_scaler=StandardObservationScaler(mean=observation_mean, std=observation_std),
    )
    if reward_scale != 1.0:
        common["reward_scaler"] = MultiplyRewardScaler(reward_scale)
    actor_critic = dict(actor_encoder_factory=nets, critic_encoder_factory=nets, **common)
    configs = {
        "bc": (d3rlpy.algos.BCConfig, dict(encoder_factory=nets, **common)),
        "iql": (d3rlpy.algos.IQLConfig, dict(value_encoder_factory=nets, **actor_critic)),
        "cql": (d3rlpy.algos.CQLConfig, actor_critic),
        "td3bc": (d3rlpy.algos.TD3PlusBCConfig, actor_critic),
    }
    if learner not in configs:
        raise unknown("d3rlpy learner", learner, D3RLPY_LEARNERS)
    config, arguments = configs[learner]
    fields = {f.name for f in dataclasses.fields(config)}
    for name in options or {}:
        if name not in fields or name in arguments:
            settable = sorted(fields - set(arguments))
            raise unknown(f"{config.__name__} option", name, settable)
    return config(**arguments, **(options or {}))


def fit_quietly(algo: Any, dataset: Any, n_steps: int) -> list:
    """``n_steps`` d3rlpy updates as one epoch: no progress bar, logs or saved models (the
    bench, its tests and the learner benchmark count and record what matters themselves).
    d3rlpy's per-epoch metrics are returned."""
    import d3rlpy

    return algo.fit(
        dataset,
        n_steps=n_steps,
        n_steps_per_epoch=n_steps,
        show_progress=False,
        save_interval=10**9,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
        with_timestamp=False,
    )


def conditioned(observations: np.ndarray, contexts: np.ndarray, view: str) -> np.ndarray:
    """``[context, observation]`` rows, the observation through ``view`` (float32)."""
    observations = apply_view(np.asarray(observations, dtype=np.float32), view)
    return np.concatenate([np.asarray(contexts, dtype=np.float32), observations], axis=1)


class ConditionedAgent(HistoryContextAgent):
    """A d3rlpy algorithm as an :class:`~ctdkit.policies.agents.EvalAgent`: each step its
    input is ``[context, observation]``, the context from the same model its training rows
    were built with (for ``ctd``: the encoder's embedding of the episode so far)."""

    def __init__(self, algo: Any, context: ContextModel, view: str, name: str):
        super().__init__(name)
        self.algo, self.context, self.view = algo, context, view

    def act(self, observations: np.ndarray, history: EpisodeHistory | None) -> np.ndarray:
        if self.context.dim:
            contexts = self.context.for_history(history, self.env_tasks)
        else:
            contexts = np.zeros((len(observations), 0), np.float32)
        return self.algo.predict(conditioned(observations, contexts, self.view))
