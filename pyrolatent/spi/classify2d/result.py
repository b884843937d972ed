"""The result of :func:`pyrolatent.spi.classify2d.classify2d`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["Classify2DResult"]


@dataclass
class Classify2DResult:
    """Output of :func:`classify2d`.

    Attributes
    ----------
    averages : torch.Tensor
        ``(K, S, S)`` class averages, in photons per pixel at fluence 1
        (zero where no rotated frame ever covered the pixel).
    class_probabilities : torch.Tensor
        ``(N, K)`` posterior class probabilities of every classified frame.
    best_class : torch.Tensor
        ``(N,)`` most probable class.
    best_rotation : torch.Tensor
        ``(N,)`` radians: the most probable in-plane rotation within the best
        class. Frame ``n`` looks like ``averages[best_class[n]]`` rotated
        counter-clockwise by this angle.
    fluence : torch.Tensor
        ``(N,)`` per-frame fluence scale (mean 1).
    class_prior : torch.Tensor
        ``(K,)`` class weights.
    angles : torch.Tensor
        ``(R,)`` the enumerated rotation angles (radians).
    frame_indices : numpy.ndarray
        ``(N,)`` indices of the classified frames in the input.
    log_likelihood : list of float
        Mean per-frame log marginal likelihood (up to the constant
        ``-sum log K_np!``) at every iteration (a pre-update value: the E-step of
        iteration ``i`` scores the averages of iteration ``i - 1``).
    mask : torch.Tensor
        ``(S, S)`` bool, the pixels used (inscribed disc and detector mask).
    """

    averages: torch.Tensor
    class_probabilities: torch.Tensor
    best_class: torch.Tensor
    best_rotation: torch.Tensor
    fluence: torch.Tensor
    class_prior: torch.Tensor
    angles: torch.Tensor
    frame_indices: np.ndarray
    log_likelihood: list = field(default_factory=list)
    mask: torch.Tensor | None = None
