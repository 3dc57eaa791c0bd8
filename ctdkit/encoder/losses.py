"""The encoder's losses, in one place: BERT-style masking, masked reconstruction, InfoNCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: of the tokens selected for reconstruction: this share is zeroed (the feature mean, since
#: features are normalised), the next share replaced by N(0, I) noise, the rest left unchanged
MASK_ZERO_SHARE = 0.8
MASK_NOISE_SHARE = 0.1


def bert_mask(
    x: torch.Tensor, valid: torch.Tensor, mask_prob: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt tokens of one modality for masked reconstruction (BERT, Devlin et al. 2019).

    ``x``: ``(B, T, D)`` normalised features; ``valid``: ``(B, T)`` real (non-padding) tokens.
    Each valid token is selected with probability ``mask_prob``; a selected token is replaced by
    0 with probability 0.8, by ``N(0, I)`` noise with probability 0.1, and kept with 0.1 (so the
    model cannot tell which tokens it will be asked about). Returns the corrupted features and
    the ``(B, T)`` selection. Uses the global torch RNG (forked and saved by ``fit``).
    """
    selected = (torch.rand(valid.shape, device=x.device) < mask_prob) & valid
    how = torch.rand(valid.shape, device=x.device)
    zero = selected & (how < MASK_ZERO_SHARE)
    noise = selected & (how >= MASK_ZERO_SHARE) & (how < MASK_ZERO_SHARE + MASK_NOISE_SHARE)
    out = torch.where(zero[..., None], 0.0, x)
    out = torch.where(noise[..., None], torch.randn_like(x), out)
    return out, selected


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, selected: torch.Tensor):
    """``Σ_{selected (b,t)} ||ŷ_bt − y_bt||² / D`` divided by the number of selected tokens
    (0 when none is selected): the error on masked positions only, never on padding."""
    per_token = (prediction - target).square().mean(-1)
    return (per_token * selected).sum() / selected.sum().clamp(min=1)


def info_nce(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    temperature: float,
    same_group: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised embeddings ``z_a``, ``z_b`` (``(B, E)``)::

        ℓ_ij = z_a_i · z_b_j / τ
        L = ½ (1/B) Σ_i [ −log( e^{ℓ_ii} / Σ_{j∈N(i)∪{i}} e^{ℓ_ij} )
                          −log( e^{ℓ_ii} / Σ_{j∈N(i)∪{i}} e^{ℓ_ji} ) ]

    Pair ``i`` is the positive; the negatives ``N(i)`` are all other ``j`` except those with
    ``same_group[i, j]`` (same episode in label-free mode, same task in label-aware mode: known
    positives must not be pushed apart).
    """
    logits = z_a @ z_b.T / temperature
    if same_group is not None:
        diagonal = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(same_group & ~diagonal, float("-inf"))
    labels = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
