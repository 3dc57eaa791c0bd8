"""Configuration of the trajectory transformer (doubles as a section of the tyro CLI)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

from ctdkit.envs.observation import ACTION_DIM, OBS_SLICES, validate_view
from ctdkit.errors import CtdkitError, unknown

EncoderMode = Literal["label-free", "label-aware"]
PositivePair = Literal["episode", "window"]

#: fields added after runs were recorded, with the value every earlier run had
LATER_FIELDS = {"reward_weight": 1.0}

#: fields that fix the shapes and meaning of the weights: a checkpoint loads only into a config
#: that agrees on all of them (training hyper-parameters may differ).
ARCHITECTURE_FIELDS = (
    "window",
    "d_model",
    "n_layers",
    "n_heads",
    "ffn",
    "embedding_dim",
    "state_slices",
    "view",
    "use_rewards",
    "action_dim",
)


@dataclass(frozen=True)
class EncoderConfig:
    """Self-supervised trajectory transformer whose CLS output is a task embedding.

    Input: a window of the last ``L <= window`` steps of one episode, ``L`` states
    ``s_0..s_{L-1}`` and the ``L - 1`` actions and rewards between them (the action and reward of
    the last step are not known when the agent acts at ``s_{L-1}``). Each is one token.

    Loss, on a batch of ``B`` pairs of windows ``(x_i, x_i')`` (two windows of one episode, or one
    window twice), each independently BERT-masked into ``m(x_i)``, ``m'(x_i')``::

        L = rec(m(x), x) + rec(m'(x'), x') + contrastive_weight * InfoNCE(z, z')
        rec = mse(states) + mse(actions) + reward_weight * mse(rewards)
        z_i = normalize(head(CLS(m(x_i))))          (likewise z_i')
        InfoNCE = ½ Σ_i [ -log softmax_j(z_i·z'_j / temperature)[i]
                          -log softmax_j(z'_i·z_j / temperature)[i] ] / B

    ``rec`` is the MSE on masked tokens only (see :mod:`ctdkit.encoder.losses`). In
    ``label-free`` mode the negatives of ``i`` are the other episodes in the batch (no task label
    is read); in ``label-aware`` mode pairs of the same task are also removed from the negatives,
    as in the original.
    """

    window: int = 20
    """K: the longest window (steps); shorter windows are padded and masked."""
    d_model: int = 32
    """Token width."""
    n_layers: int = 3
    """Transformer encoder layers (post-LN, ReLU)."""
    n_heads: int = 8
    """Attention heads (d_model must be divisible by it)."""
    ffn: int = 128
    """Hidden width of each layer's feed-forward block."""
    dropout: float = 0.1
    """Dropout in the encoder layers (training only; embed runs in eval mode)."""
    attention_dropout: float | None = None
    """Dropout on attention weights (None: same as `dropout`, as nn.TransformerEncoderLayer).
    SDPA's fused CPU kernels have no dropout, so a value > 0 makes CPU training take the slower
    math path (about 1.5x per step at the default sizes)."""
    embedding_dim: int = 6
    """Width of the task embedding (the CLS head's output)."""
    state_slices: tuple[str, ...] = ("hand", "gripper", "objects", "goal")
    """Named observation slices forming the state token (default: the original's 21 dims)."""
    view: Literal["full", "goal-hidden"] = "full"
    """Observation view the encoder sees: `goal-hidden` zeroes the goal slice."""
    use_rewards: bool = True
    """Give rewards their own tokens."""
    reward_weight: float = 1.0
    """Weight of the reward tokens' reconstruction error in the loss. A task's reward function
    names it from the first step when the states cannot (reach and pick-place reset alike):
    weighting it up is one of the DAgger study's encoder variants."""
    action_dim: int = ACTION_DIM
    """Action width."""
    mask_prob: float = 0.15
    """Probability that a (step, modality) token is masked for reconstruction."""
    contrastive_weight: float = 0.25
    """Weight of the InfoNCE term."""
    temperature: float = 0.15
    """InfoNCE temperature."""
    mode: EncoderMode = "label-free"
    """`label-free`: no task labels read; `label-aware`: same-task pairs are not negatives."""
    positives: PositivePair = "episode"
    """InfoNCE positives: two different windows of one `episode`, or one `window` masked twice."""
    lr: float = 2e-4
    """Adam learning rate."""
    batch_size: int = 128
    """Pairs of windows per update."""
    min_window: int = 1
    """Shortest training window (act-time windows start at length 1)."""
    validation_fraction: float = 0.2
    """Fraction of episodes held out (never trained on; used by the quality metrics)."""
    seed: int = 0
    """Seeds the initial weights, the episode split, window sampling, masking and dropout."""

    #: the class :meth:`create` builds (``TrajectoryEncoder``), set by the package
    #: ``ctdkit.encoder``, which imports both: config and learner never import each other
    #: (Python runs the package before any module in it, so it is set before any use)
    learner: ClassVar[type]

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse settings that cannot build a model, with one line naming the field."""
        validate_view(self.view)
        for name in self.state_slices:
            if name not in OBS_SLICES:
                raise unknown("observation slice", name, OBS_SLICES)
        if not self.state_slices:
            raise CtdkitError("state_slices is empty: name at least one observation slice")
        positive = ("window", "d_model", "n_layers", "n_heads", "ffn", "embedding_dim")
        for name in (*positive, "batch_size", "action_dim", "min_window"):
            if getattr(self, name) < 1:
                raise CtdkitError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise CtdkitError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.min_window > self.window:
            raise CtdkitError(f"min_window={self.min_window} exceeds window={self.window}")
        if not 0.0 <= self.mask_prob <= 1.0:
            raise CtdkitError(f"mask_prob must be in [0, 1], got {self.mask_prob}")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise CtdkitError(f"{name} must be in [0, 1), got {value}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise CtdkitError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if self.temperature <= 0:
            raise CtdkitError(f"temperature must be positive, got {self.temperature}")
        for name in ("reward_weight", "contrastive_weight"):
            if getattr(self, name) < 0:
                raise CtdkitError(f"{name} must be at least 0, got {getattr(self, name)}")
        if self.mode not in ("label-free", "label-aware"):
            raise unknown("encoder mode", self.mode, ("label-free", "label-aware"))
        if self.positives not in ("episode", "window"):
            raise unknown("positive pairing", self.positives, ("episode", "window"))

    def architecture(self) -> dict:
        """The fields that must match for weights to load (see ``ARCHITECTURE_FIELDS``)."""
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}

    def replace(self, **changes) -> EncoderConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready fields; a field added after runs were recorded is left out while it has
        the value those runs used (``LATER_FIELDS``), so their fingerprints still match."""
        out = dataclasses.asdict(self)
        out["state_slices"] = list(self.state_slices)
        for name, earlier in LATER_FIELDS.items():
            if out[name] == earlier:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, values: dict) -> EncoderConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(values) - known)
        if extra:
            raise CtdkitError(f"encoder config has unknown field {extra[0]!r}")
        values = dict(values)
        if "state_slices" in values:
            values["state_slices"] = tuple(values["state_slices"])
        return cls(**values)

    def create(self, device: str = "cpu"):
        """Build the encoder (a :class:`~ctdkit.encoder.TrajectoryEncoder`, weights initialised
        from ``seed``) on ``device``."""
        return self.learner(self, device=device)
