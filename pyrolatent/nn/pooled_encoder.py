"""A content encoder that cannot see the angle: features averaged over turned copies."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..primitives import turn_copies, warp_images

__all__ = ["RotationPooledEncoder", "he_init", "NORM_EPS"]

#: Variance floor of the batch normalisation of the pooled features.
NORM_EPS = 1e-2


def he_init(module: nn.Module) -> nn.Module:
    """He (Kaiming) initialisation of every linear and convolution layer, zero biases.

    PyTorch's default initialisation shrinks the signal by about 0.4 per layer;
    features averaged over turned copies of different images then barely differ
    and the content latent starts (and stays) collapsed.
    """
    for mod in module.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
    return module


class RotationPooledEncoder(nn.Module):
    """Encode ``views`` copies of each image turned by ``2 pi j / views``; average; standardise.

    The average over the turned copies is invariant to turns of the input by
    multiples of ``2 pi / views`` (and nearly so to other turns), so the content
    code it feeds cannot carry the angle. A batch normalisation of the pooled
    features keeps different images apart at the start of training.

    Parameters
    ----------
    base : nn.Module
        Image encoder ``(B, H, W) -> (B, F)`` with ``out_features``.
    views : int
        Turned copies per image (>= 1).
    """

    def __init__(self, base: nn.Module, views: int = 8):
        super().__init__()
        if int(views) < 1:
            raise ValueError(f"views must be at least 1, got {views}")
        self.base, self.views = base, int(views)
        self.out_features = base.out_features
        # eps caps the gain at 10: features that barely differ across images (one
        # particle type) are not blown up, so the running statistics used by
        # ``encode`` stay close to the batch statistics of training
        self.norm = nn.BatchNorm1d(self.out_features, eps=NORM_EPS)

    def forward(self, x: torch.Tensor, centre: torch.Tensor | None = None) -> torch.Tensor:
        """Features ``(B, F)`` of images ``(B, H, W)``.

        ``centre`` ``(B, 2)``, pixels: each image is first moved by ``-centre``
        (re-centred on its particle), then turned.
        """
        b, v = x.shape[0], self.views
        turns = torch.arange(v, device=x.device, dtype=x.dtype) * (2 * math.pi / v)
        if self.training:  # random phase: what z learns of the angle modulo 2 pi / v is noise
            turns = turns + torch.rand((), device=x.device, dtype=x.dtype) * (2 * math.pi / v)
        if centre is not None:
            x = warp_images(x, offset=-centre)
        copies = turn_copies(x, turns)  # (v, b, H, W): one sampling grid per turn
        feats = self.base(copies.reshape(v * b, *x.shape[1:])).reshape(v, b, -1).mean(0)
        if self.training and b == 1:  # no batch statistics of one item: the running ones
            n = self.norm
            return F.batch_norm(feats, n.running_mean, n.running_var, n.weight, n.bias,
                                training=False, eps=n.eps)  # fmt: skip
        return self.norm(feats)
