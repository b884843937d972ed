"""Losses of the stereo-pair angle method, on phase vectors ``e^{i n theta}``.

A plain MSE on angles breaks at the symmetry wrap-around (for a square 85 and
95 degrees are 10 degrees apart, not 80), so the networks output the unit
vector ``e^{i n theta}`` of the symmetry-reduced phase, and every loss compares
such vectors. Angles are radians; phases are ``(..., 2)`` tensors.
"""

from __future__ import annotations

import torch

from .._renamed import renamed_argument
from ..primitives.angles import check_symmetry

__all__ = ["periodic_loss", "pair_consistency_loss"]


def _rotate_phase(phase: torch.Tensor, turn: torch.Tensor) -> torch.Tensor:
    """Multiply the complex numbers ``phase`` by ``e^{i turn}``."""
    c, s = torch.cos(turn), torch.sin(turn)
    x, y = phase[..., 0], phase[..., 1]
    return torch.stack([c * x - s * y, s * x + c * y], dim=-1)


def _fold_phase(phase: torch.Tensor) -> torch.Tensor:
    """Identify ``e^{i phi}`` with ``e^{-i phi}`` (complex conjugate): ``(x, |y|)``."""
    return torch.stack([phase[..., 0], phase[..., 1].abs()], dim=-1)


def periodic_loss(
    pred_angle: torch.Tensor,
    true_angle: torch.Tensor,
    symmetry: int = 1,
    *,
    order: int | None = None,
):
    """Symmetry-aware angle loss ``mean(1 - cos(n (pred - true)))``.

    It is zero whenever ``pred`` and ``true`` agree modulo ``2 pi / n`` and is
    smooth across the wrap-around, unlike the MSE on angles.
    """
    symmetry = renamed_argument(symmetry, order, old="order", new="symmetry", where="periodic_loss")
    n = check_symmetry(symmetry)
    return (1 - torch.cos(n * (pred_angle - true_angle))).mean()


def pair_consistency_loss(
    phase_a: torch.Tensor,
    phase_b: torch.Tensor,
    delta: torch.Tensor,
    symmetry: int = 1,
    mirror: bool = False,
    *,
    order: int | None = None,
) -> torch.Tensor:
    """Method 1: the angles of a pair must differ by ``delta`` modulo ``2 pi / n``.

    Compares ``e^{i n theta_b}`` with ``e^{i n (theta_a + delta)}``:
    ``mean |u_b - u_a e^{i n delta}|^2``, which equals
    ``2 (1 - cos(n (theta_b - theta_a - delta)))`` for unit vectors.

    Parameters
    ----------
    phase_a, phase_b : torch.Tensor
        ``(B, 2)`` network outputs ``e^{i n theta}`` for images ``a`` and ``b``.
    delta : torch.Tensor
        ``(B,)`` known offsets ``theta_b - theta_a`` in radians.
    symmetry : int
        Rotational symmetry order ``n >= 1``.
    mirror : bool
        For inputs that cannot tell ``theta`` from ``-theta`` (1D projections):
        compare the folded phases ``(cos, |sin|)`` and take the better of the
        two sign choices for ``theta_a``.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    symmetry = renamed_argument(
        symmetry, order, old="order", new="symmetry", where="pair_consistency_loss"
    )
    n = check_symmetry(symmetry)
    turn = n * delta
    if not mirror:
        return (phase_b - _rotate_phase(phase_a, turn)).pow(2).sum(-1).mean()
    conj_a = torch.stack([phase_a[..., 0], -phase_a[..., 1]], dim=-1)
    target_b = _fold_phase(phase_b)
    plus = (target_b - _fold_phase(_rotate_phase(phase_a, turn))).pow(2).sum(-1)
    minus = (target_b - _fold_phase(_rotate_phase(conj_a, turn))).pow(2).sum(-1)
    return torch.minimum(plus, minus).mean()
