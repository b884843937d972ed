"""Segmentation losses: cross-entropy, Dice, focal and weighted combinations.

Two target conventions:

* ``multiclass=False`` (binary or multi-label): ``logits`` ``(B, C, H, W)``,
  ``target`` ``(B, C, H, W)`` in {0, 1}; each channel is an independent
  sigmoid (particle/background with ``C = 1``; overlapping layers with ``C = 2``).
* ``multiclass=True``: ``logits`` ``(B, K, H, W)``, softmax over ``K`` classes;
  ``target`` ``(B, H, W)`` integer class indices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SegmentationLoss", "dice_loss", "focal_loss", "cross_entropy_loss"]


def _probabilities_and_onehot(logits, target, multiclass):
    if multiclass:
        probs = logits.softmax(dim=1)
        onehot = F.one_hot(target.long(), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
        return probs, onehot
    return torch.sigmoid(logits), target.to(logits.dtype)


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, multiclass: bool = False):
    """Mean binary (sigmoid) or categorical (softmax) cross-entropy per pixel."""
    if multiclass:
        return F.cross_entropy(logits, target.long())
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def dice_loss(
    logits: torch.Tensor, target: torch.Tensor, multiclass: bool = False, smooth: float = 1.0
):
    """``1 - soft Dice``, averaged over images and channels."""
    probs, onehot = _probabilities_and_onehot(logits, target, multiclass)
    inter = (probs * onehot).sum(dim=(-2, -1))
    total = probs.sum(dim=(-2, -1)) + onehot.sum(dim=(-2, -1))
    return 1.0 - ((2 * inter + smooth) / (total + smooth)).mean()


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, multiclass: bool = False, gamma: float = 2.0
):
    """Focal loss (Lin et al. 2017): cross-entropy weighted by ``(1 - p_true) ** gamma``."""
    if multiclass:
        logp = F.log_softmax(logits, dim=1).gather(1, target.long().unsqueeze(1)).squeeze(1)
    else:
        t = target.to(logits.dtype)
        logp = -F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


class SegmentationLoss(torch.nn.Module):
    """Weighted sum ``ce_weight * CE + dice_weight * Dice + focal_weight * focal``.

    Parameters
    ----------
    ce_weight, dice_weight, focal_weight : float
        Non-negative weights; at least one must be positive.
    focal_gamma : float
        Focusing exponent of the focal term.
    multiclass : bool
        Softmax over channels with integer targets, instead of per-channel sigmoids.
    """

    def __init__(
        self,
        ce_weight: float = 1.0,
        dice_weight: float = 0.0,
        focal_weight: float = 0.0,
        focal_gamma: float = 2.0,
        multiclass: bool = False,
    ):
        super().__init__()
        weights = (ce_weight, dice_weight, focal_weight)
        if min(weights) < 0 or max(weights) <= 0:
            raise ValueError(f"loss weights must be >= 0 with one > 0, got {weights}")
        self.ce_weight, self.dice_weight, self.focal_weight = weights
        self.focal_gamma, self.multiclass = focal_gamma, multiclass

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros(())
        if self.ce_weight:
            loss = loss + self.ce_weight * cross_entropy_loss(logits, target, self.multiclass)
        if self.dice_weight:
            loss = loss + self.dice_weight * dice_loss(logits, target, self.multiclass)
        if self.focal_weight:
            loss = loss + self.focal_weight * focal_loss(
                logits, target, self.multiclass, self.focal_gamma
            )
        return loss
