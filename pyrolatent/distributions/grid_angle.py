"""The exact posterior of an angle over a grid of rotations (:class:`GridAngle`)."""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch.distributions import constraints

from ..primitives.angles import wrap_angle

__all__ = ["GridAngle"]


class GridAngle(dist.TorchDistribution):
    """A distribution on the angles of a regular grid, radians.

    The posterior that exact enumeration over a rotation grid gives: the
    probability of each grid angle. ``mean_direction`` is the most probable
    angle, refined between its neighbours by a parabola through the three
    log-probabilities (a multi-modal posterior, e.g. of a symmetric particle,
    reports one of its modes, never the meaningless average of them);
    ``circular_scale`` is ``sqrt(-2 ln R)`` of the posterior's mean resultant
    length ``R`` (radians; 0 for a point mass, large for a flat posterior).

    Parameters
    ----------
    angles : torch.Tensor
        ``(K,)`` grid angles, radians, evenly spaced over one period
        ``2 pi / symmetry``.
    logits : torch.Tensor
        ``(..., K)`` unnormalised log-probabilities.
    symmetry : int
        The grid covers ``[0, 2 pi / symmetry)``; reported angles lie in
        ``[-pi / symmetry, pi / symmetry)``.
    """

    arg_constraints = {"logits": constraints.real_vector}
    support = constraints.real
    has_rsample = False

    def __init__(self, angles: torch.Tensor, logits: torch.Tensor, symmetry: int = 1,
                 validate_args=None):  # fmt: skip
        if angles.dim() != 1 or logits.shape[-1] != angles.shape[0]:
            raise ValueError(
                f"logits (..., K) must match angles (K,), got {tuple(logits.shape)} "
                f"and {tuple(angles.shape)}"
            )
        self.angles, self.symmetry = angles, int(symmetry)
        self.logits = logits - logits.logsumexp(-1, keepdim=True)
        super().__init__(logits.shape[:-1], validate_args=validate_args)

    @property
    def probs(self) -> torch.Tensor:
        """``(..., K)`` probability of each grid angle."""
        return self.logits.exp()

    def _wrap(self, angle: torch.Tensor) -> torch.Tensor:
        return wrap_angle(angle, period=2 * math.pi / self.symmetry)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        idx = dist.Categorical(logits=self.logits).sample(sample_shape)
        return self._wrap(self.angles[idx])

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-probability of the grid angle nearest to ``value``."""
        step = 2 * math.pi / (self.symmetry * self.angles.shape[0])
        idx = torch.round(torch.remainder(value - self.angles[0], 2 * math.pi / self.symmetry)
                          / step).long() % self.angles.shape[0]  # fmt: skip
        return self.logits.gather(-1, idx.unsqueeze(-1)).squeeze(-1)

    @property
    def mean_direction(self) -> torch.Tensor:
        """The posterior mode, refined by a parabola through its neighbours, radians."""
        k = self.angles.shape[0]
        best = self.logits.argmax(-1, keepdim=True)
        around = torch.cat([(best - 1) % k, best, (best + 1) % k], -1)
        lm, l0, lp = self.logits.gather(-1, around).unbind(-1)
        curvature = lm - 2 * l0 + lp
        shift = torch.where(curvature < 0, 0.5 * (lm - lp) / curvature.clamp(max=-1e-12),
                            torch.zeros_like(l0)).clamp(-0.5, 0.5)  # fmt: skip
        step = 2 * math.pi / (self.symmetry * k)
        return self._wrap(self.angles[best.squeeze(-1)] + shift * step)

    @property
    def circular_scale(self) -> torch.Tensor:
        """``sqrt(-2 ln R)`` of the posterior (of ``n * angle``, divided by ``n``), radians."""
        n = self.symmetry
        p = self.probs
        c = (p * torch.cos(n * self.angles)).sum(-1)
        s = (p * torch.sin(n * self.angles)).sum(-1)
        r = torch.sqrt(c**2 + s**2).clamp(1e-12, 1.0)
        return torch.sqrt(-2 * r.log()) / n

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape) + self.angles.shape
        return GridAngle(self.angles, self.logits.expand(shape), self.symmetry)
