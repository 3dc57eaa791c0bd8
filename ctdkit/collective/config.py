"""Configuration of the collective SAC learner (doubles as a tyro CLI section)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

from ctdkit.envs.observation import validate_view
from ctdkit.errors import CtdkitError, unknown

Conditioning = Literal["ctd", "oracle", "none", "history", "ctd+history", "ctd-e2e"]
CONDITIONINGS: tuple[str, ...] = get_args(Conditioning)
#: the conditionings whose context comes from a trained trajectory encoder
ENCODER_CONDITIONINGS: tuple[str, ...] = ("ctd", "ctd+history", "ctd-e2e")
#: the conditioning whose encoder the collective finetunes through its distillation loss
END_TO_END = "ctd-e2e"
#: fields only ``ctd-e2e`` reads: left out of the other modes' records (checkpoint config, run
#: settings), which therefore stay what they were before these fields existed
END_TO_END_FIELDS = ("encoder_lr",)
#: the conditioning whose context puts a CLS embedding beside the raw window (``cls_swap``)
CLS_WITH_HISTORY = "ctd+history"
#: the longest ``history`` window (Meta-World episodes are 500 steps; a checkpoint asking for
#: more is refused before it sizes a network)
MAX_HISTORY_STEPS = 10_000


@dataclass
class CollectiveSACConfig:
    r"""One multi-task SAC actor/critic on [context, observation], distilled offline.

    Actor (distillation toward the experts' labels ``μ*``, ``log σ*`` stored with every step):

    .. math:: L_\pi = \lVert \tanh \mu_\theta(c, s) - \mu^* \rVert^2
              + w \, \lVert \log\sigma_\theta(c, s) - \log\sigma^* \rVert^2

    Critic (policy evaluation of the distilled policy by TD on the dataset's rewards; only
    termination stops bootstrapping — a time-limit truncation does not):

    .. math:: y = r + \gamma (1 - \mathrm{terminated}) \min_{i} Q'_i(c', s', a'),\;
              a' \sim \pi_\theta(\cdot \mid c', s'), \quad
              L_Q = \sum_i (Q_i(c, s, a) - y)^2

    TD rather than Monte-Carlo return-to-go: the data's episodes are time-limited (truncated),
    so return-to-go labels would be biased low near the limit, while TD bootstraps through
    truncation. The target critic starts as a copy of the critic and follows it by Polyak
    averaging with rate ``tau``.
    """

    conditioning: Conditioning = "ctd"
    """Context: CLS embedding of the frozen encoder (ctd), one-hot task id (oracle), nothing
    (none), the raw last rewards and actions of the episode (history), CLS beside that window
    (ctd+history), or the CLS of an encoder finetuned through the distillation loss (ctd-e2e)."""
    history_steps: int = 5
    """Past steps in the `history` context."""
    view: Literal["full", "goal-hidden"] = "full"
    """Observation view the agent sees (goal-hidden zeroes the goal slice)."""
    hidden: tuple[int, ...] = (300, 300)
    """Hidden layer widths of actor and critics."""
    normalize_observations: bool = True
    """Standardise observations by the training data's per-dimension mean/std (saved with the
    weights): goals and object positions differ by centimetres, which a raw-input MLP resolves
    poorly."""
    obs_std_floor: float = 0.05
    """Smallest std used for standardising (dimensions constant in the data, e.g. a hidden goal)."""
    normalize_context: bool = False
    """Also standardise the context by the training rows' per-dimension mean/std (floored as
    observations), as d3rlpy's baselines standardise [context, observation] together: a
    one-hot then spans about ±3 instead of 0/1, and the small differences between the tasks'
    CLS embeddings are stretched to unit scale."""
    actor_lr: float = 2e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 2e-4
    """Adam learning rate of the twin critics."""
    encoder_lr: float = 1e-4
    """ctd-e2e: Adam learning rate of the encoder, finetuned through the actor's loss."""
    batch_size: int = 512
    """Rows per gradient step (sampled uniformly from the aggregate of all tasks)."""
    log_std_weight: float = 0.2
    """Weight w of the log-std distillation term."""
    gamma: float = 0.99
    """Discount of the critics' TD targets."""
    tau: float = 0.01
    """Polyak rate of the target critics."""
    actor_average: float = 0.0
    """Polyak rate of an averaged copy of the actor, updated after every actor step; when > 0
    that copy is the one that acts (``predict``, evaluation, DAgger's acting rounds, the
    student's teacher). Meant to steady the last weights that constant-rate Adam leaves
    wandering; measured on peg-insert-side DAgger (0.01: 0.53 against 0.45 over 3 seeds, inside
    the seed spread) it did not help, so it is off by default; 0: the trained actor acts."""
    cls_swap: float = 0.0
    """ctd+history: the share of each actor batch whose CLS part is replaced by that of another
    row of the batch (drawn at random; the raw window and the label stay the row's own). The
    context probe found the actor following a wrong CLS although its raw window named the right
    task; trained on rows where the two disagree, it must learn to read the window too. The
    critics see the true contexts. 0: off."""
    critic: bool = True
    """Also learn the twin critics (each step: one actor and one critic update)."""
    seed: int = 0
    """Seeds the networks' initialisation and the batch sampling."""

    #: the class :meth:`create` builds (``CollectiveSAC``), set by the package
    #: ``ctdkit.collective``, which imports both: config and learner never import each other
    learner: ClassVar[type]

    def __post_init__(self) -> None:
        """Refuse settings that cannot train, with one line naming the field."""
        if self.conditioning not in CONDITIONINGS:
            raise unknown("conditioning mode", self.conditioning, CONDITIONINGS)
        if not 1 <= self.history_steps <= MAX_HISTORY_STEPS:
            raise CtdkitError(
                f"history_steps must be in 1..{MAX_HISTORY_STEPS}, got {self.history_steps}"
            )
        validate_view(self.view)
        if self.normalize_context and self.conditioning == END_TO_END:
            raise CtdkitError(
                "normalize_context does not apply to ctd-e2e: its contexts move while it trains"
            )
        for width in self.hidden:
            if width < 1:
                raise CtdkitError(f"hidden widths must be at least 1, got {self.hidden}")
        if self.batch_size < 1:
            raise CtdkitError(f"batch_size must be at least 1, got {self.batch_size}")
        for name in ("actor_lr", "critic_lr", "encoder_lr", "obs_std_floor"):
            if not 0 < getattr(self, name) < math.inf:  # NaN fails too
                raise CtdkitError(f"{name} must be a positive number, got {getattr(self, name)}")
        if not 0 <= self.log_std_weight < math.inf:
            raise CtdkitError(f"log_std_weight must be a number >= 0, got {self.log_std_weight}")
        for name in ("gamma", "tau"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise CtdkitError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.actor_average <= 1.0:  # NaN fails too
            raise CtdkitError(f"actor_average must be in [0, 1], got {self.actor_average}")
        if not 0.0 <= self.cls_swap <= 1.0:  # NaN fails too
            raise CtdkitError(f"cls_swap must be in [0, 1], got {self.cls_swap}")
        if self.cls_swap and self.conditioning != CLS_WITH_HISTORY:
            raise CtdkitError(
                f"cls_swap applies to conditioning {CLS_WITH_HISTORY!r} only (the CLS beside a "
                f"raw window), not {self.conditioning!r}"
            )

    def record(self) -> dict:
        """The fields as plain data, as checkpoints and run settings keep them: without the
        ``ctd-e2e`` fields unless that is the mode, and without ``normalize_context``,
        ``actor_average`` and ``cls_swap`` while they are off (so earlier records, and the
        digests of their checkpoints, stay as they were)."""
        values = dataclasses.asdict(self)
        values["hidden"] = list(values["hidden"])
        if self.conditioning != END_TO_END:
            for name in END_TO_END_FIELDS:
                del values[name]
        if not self.normalize_context:
            del values["normalize_context"]
        for name in ("actor_average", "cls_swap"):
            if not values[name]:
                del values[name]
        return values

    def create(self, device: str = "cpu"):
        """The learner (a :class:`~ctdkit.collective.CollectiveSAC`) on ``device``."""
        return self.learner(self, device=device)
