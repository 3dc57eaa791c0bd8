"""The trajectory transformer: one token per (step, modality), a CLS token, masked attention.

Token sequence for a window padded to ``T`` steps (``N = 1 + T + 2 (T - 1)`` tokens, 59 at the
original's ``T = 20``)::

    [CLS, s_0 .. s_{T-1}, a_0 .. a_{T-2}, r_0 .. r_{T-2}]

Each modality has its own ``Linear -> LayerNorm`` embedding; ``s_t``, ``a_t`` and ``r_t`` add the
same learned positional embedding of step ``t`` (``t = 0`` is the window's oldest step); CLS
gets none. Attention is bidirectional and permutation-equivariant, so grouping tokens by
modality (rather than interleaving ``s_0, a_0, r_0, ...`` as the original) computes the same
function and lets every modality embed as one contiguous block. Padding (steps ``>= L``, and
the action/reward of step ``L - 1``) is removed from the keys by the attention mask and zeroed
at the input, so it can never change the CLS output.

The layers are standard ``nn.TransformerEncoderLayer`` modules (post-LN, ReLU; the parameter
layout of PyTorch and of the original), run by :func:`encoder_layer`: the same math written out
so that attention goes through ``F.scaled_dot_product_attention`` with a boolean key mask in
training and inference alike, and so the last layer can compute the CLS query alone when only
the embedding is needed. A batch without padding builds no mask at all (SDPA's mask-free
kernel is faster).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ctdkit.encoder.config import EncoderConfig
from ctdkit.envs.observation import OBS_DIM, OBS_GOAL, OBS_SLICES

#: the CLS token's initial value (the original's constant)
CLS_INIT = -2.0
#: fused GPU attention kernels need the head dimension to be a multiple of this
GPU_HEAD_ALIGN = 8
#: a normalisation std below this is treated as a constant feature (divided by 1 instead)
MIN_STD = 1e-6


def state_columns(config: EncoderConfig) -> tuple[list[int], list[bool]]:
    """Observation columns forming the state, and which of them the view keeps (not zeroed)."""
    columns = [c for name in config.state_slices for c in range(OBS_DIM)[OBS_SLICES[name]]]
    goal = set(range(OBS_DIM)[OBS_GOAL])
    keep = [not (config.view == "goal-hidden" and c in goal) for c in columns]
    return columns, keep


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor | None,
    dropout: float = 0.0,
    align: int | None = None,
) -> torch.Tensor:
    """``softmax(q kᵀ / sqrt(head_dim) + mask) v`` through ``F.scaled_dot_product_attention``.

    Fused GPU kernels (flash, cuDNN) need ``head_dim % 8 == 0`` and the default sizes give
    ``head_dim = 32 / 8 = 4``; with ``align`` (default: ``GPU_HEAD_ALIGN`` on CUDA, none on
    CPU), q, k and v are zero-padded to a multiple of it. This is exact: the zeros add nothing
    to ``q·k``, the scale is kept at ``1/sqrt(head_dim)``, and the padded output columns (zero
    weights times values) are cut off.
    """
    head_dim = q.shape[-1]
    if align is None:
        align = GPU_HEAD_ALIGN if q.is_cuda else 1
    extra = -head_dim % align
    if extra == 0:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout)
    q, k, v = (F.pad(t, (0, extra)) for t in (q, k, v))
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=key_mask, dropout_p=dropout, scale=head_dim**-0.5
    )
    return out[..., :head_dim]


def encoder_layer(
    layer: nn.TransformerEncoderLayer,
    x: torch.Tensor,
    key_mask: torch.Tensor | None,
    n_queries: int | None = None,
) -> torch.Tensor:
    """One post-LN encoder layer, identical in math to ``layer(x, src_key_padding_mask=...)``::

        x = LN1(x + Dropout(MHA(x)))
        x = LN2(x + Dropout(W2 Dropout(ReLU(W1 x))))

    ``x``: ``(B, N, d)``; ``key_mask``: ``(B, 1, 1, N)`` bool, True where a key takes part (or
    None: all do). With ``n_queries``, only the first ``n_queries`` tokens are computed (keys and
    values still come from all ``N``): the last layer needs just CLS when embedding.
    """
    mha = layer.self_attn
    batch, n_tokens, width = x.shape
    qkv = F.linear(x, mha.in_proj_weight, mha.in_proj_bias)
    q, k, v = qkv.view(batch, n_tokens, 3, mha.num_heads, width // mha.num_heads).permute(
        2, 0, 3, 1, 4
    )
    if n_queries is not None:
        q, x = q[:, :, :n_queries], x[:, :n_queries]
    dropout = mha.dropout if layer.training else 0.0
    a = attention(q, k, v, key_mask, dropout).transpose(1, 2).reshape(batch, x.shape[1], width)
    x = layer.norm1(layer.dropout1(mha.out_proj(a)).add_(x))
    hidden = layer.dropout(layer.activation(layer.linear1(x)))
    return layer.norm2(layer.dropout2(layer.linear2(hidden)).add_(x))


class TrajectoryTransformer(nn.Module):
    """Embeddings, encoder layers and heads; inputs are *normalised* features except in
    :meth:`forward`, which takes raw windows (normalisation statistics are buffers, so they are
    saved and loaded with the weights)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        columns, keep = state_columns(config)
        self.state_dim, self.action_dim = len(columns), config.action_dim
        self.register_buffer("state_columns", torch.tensor(columns, dtype=torch.long))
        self.register_buffer("state_keep", torch.tensor(keep, dtype=torch.bool))
        for name, width in (("state", self.state_dim), ("action", self.action_dim), ("reward", 1)):
            self.register_buffer(f"{name}_mean", torch.zeros(width))
            self.register_buffer(f"{name}_std", torch.ones(width))

        self.embed_state = nn.Sequential(nn.Linear(self.state_dim, d), nn.LayerNorm(d))
        self.embed_action = nn.Sequential(nn.Linear(self.action_dim, d), nn.LayerNorm(d))
        self.embed_reward = (
            nn.Sequential(nn.Linear(1, d), nn.LayerNorm(d)) if config.use_rewards else None
        )
        self.position = nn.Embedding(config.window, d)  # N(0, 1) init, as nn.Embedding
        self.cls = nn.Parameter(torch.full((d,), CLS_INIT))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d,
                config.n_heads,
                config.ffn,
                config.dropout,
                activation="relu",
                batch_first=True,
                norm_first=False,
            )
            for _ in range(config.n_layers)
        )
        if config.attention_dropout is not None:
            for layer in self.layers:
                layer.self_attn.dropout = config.attention_dropout
        self.embedding_head = nn.Linear(d, config.embedding_dim)
        self.reconstruct_state = nn.Linear(d, self.state_dim)
        self.reconstruct_action = nn.Linear(d, self.action_dim)
        self.reconstruct_reward = nn.Linear(d, 1) if config.use_rewards else None

    # ----- inputs ---------------------------------------------------------------------------
    def features(
        self, observations: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw ``(..., obs_dim)``, ``(..., action_dim)``, ``(...)`` -> normalised state, action
        and reward features (view and state slices applied)."""
        states = observations.index_select(-1, self.state_columns)
        states = torch.where(self.state_keep, states, 0.0)
        states = (states - self.state_mean) / self.state_std
        actions = (actions - self.action_mean) / self.action_std
        rewards = (rewards.unsqueeze(-1) - self.reward_mean) / self.reward_std
        return states, actions, rewards

    @torch.no_grad()
    def set_normalization(
        self, observations: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor
    ) -> None:
        """Mean/std of the features over the given (training) rows; constants get std 1."""
        states = observations.index_select(-1, self.state_columns)
        states = torch.where(self.state_keep, states, 0.0)
        for name, values in (("state", states), ("action", actions), ("reward", rewards[:, None])):
            values = values.double()
            std = values.std(0, unbiased=False)
            getattr(self, f"{name}_mean").copy_(values.mean(0))
            getattr(self, f"{name}_std").copy_(torch.where(std < MIN_STD, 1.0, std))

    # ----- encoder --------------------------------------------------------------------------
    def encode(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        lengths: torch.Tensor,
        cls_only: bool = False,
        padded: bool | None = None,
    ) -> torch.Tensor:
        """Normalised ``(B, T, ·)`` features and lengths -> last hidden states ``(B, N, d)``
        (``(B, 1, d)``, CLS alone, with ``cls_only``). ``padded=False`` promises every window has
        ``T`` steps (no mask needed; saves a device sync); None checks."""
        batch, steps, _ = states.shape
        if padded is None:
            padded = bool((lengths != steps).any())
        actions, rewards = actions[:, :-1], rewards[:, :-1]  # the last step's are not inputs
        key_mask = None
        if padded:  # zero the padding (it may hold anything, even NaN) and hide it from attention
            state_valid = torch.arange(steps, device=states.device) < lengths[:, None]  # (B, T)
            transition_valid = state_valid[:, 1:]  # step t < L - 1  <=>  step t + 1 < L
            states = torch.where(state_valid[..., None], states, 0.0)
            actions = torch.where(transition_valid[..., None], actions, 0.0)
            rewards = torch.where(transition_valid[..., None], rewards, 0.0)
            valid = [state_valid.new_ones(batch, 1), state_valid, transition_valid]
            if self.embed_reward is not None:
                valid.append(transition_valid)
            key_mask = torch.cat(valid, dim=1)[:, None, None, :]
        position = self.position.weight[:steps]
        tokens = [
            self.cls.expand(batch, 1, -1),
            self.embed_state(states) + position,
            self.embed_action(actions) + position[:-1],
        ]
        if self.embed_reward is not None:
            tokens.append(self.embed_reward(rewards) + position[:-1])
        x = torch.cat(tokens, dim=1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = encoder_layer(layer, x, key_mask, n_queries=1 if cls_only and i == last else None)
        return x

    def embedding(self, hidden: torch.Tensor) -> torch.Tensor:
        """The CLS head's output ``(B, embedding_dim)`` (not normalised)."""
        return self.embedding_head(hidden[:, 0])

    def reconstruction(
        self, hidden: torch.Tensor, steps: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Predicted normalised states ``(B, T, S)``, actions ``(B, T-1, A)`` and rewards
        ``(B, T-1, 1)`` from the token outputs."""
        states = self.reconstruct_state(hidden[:, 1 : 1 + steps])
        actions = self.reconstruct_action(hidden[:, 1 + steps : 2 * steps])
        rewards = None
        if self.reconstruct_reward is not None:
            rewards = self.reconstruct_reward(hidden[:, 2 * steps : 3 * steps - 1])
        return states, actions, rewards

    def forward(
        self,
        observations: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        lengths: torch.Tensor,
        padded: bool | None = None,
    ) -> torch.Tensor:
        """Raw windows -> task embeddings ``(B, embedding_dim)`` (not normalised)."""
        states, actions, rewards = self.features(observations, actions, rewards)
        hidden = self.encode(states, actions, rewards, lengths, cls_only=True, padded=padded)
        return self.embedding(hidden)
