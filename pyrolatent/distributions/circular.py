"""Circular distributions for in-plane angles (radians).

Every distribution here has ``event_shape == ()`` and values in radians, so any
of them (and Pyro's :class:`~pyro.distributions.VonMises`) can serve as the
prior of an ``angle`` sample site. Densities are with respect to arc length on
the circle, i.e. they integrate to one over any interval of length ``2 pi``.
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from pyro.distributions.torch_distribution import TorchDistribution
from torch.distributions import constraints

from ..primitives.angles import wrap_angle

__all__ = [
    "angle_to_vector",
    "vector_to_angle",
    "wrap_angle",
    "CircularUniform",
    "ProjectedNormalAngle",
]


def angle_to_vector(angle: torch.Tensor) -> torch.Tensor:
    """``(...,)`` radians -> ``(..., 2)`` unit vectors ``(cos, sin)``."""
    return torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)


def vector_to_angle(vector: torch.Tensor) -> torch.Tensor:
    """``(..., 2)`` vectors -> ``(...,)`` radians in ``(-pi, pi]``."""
    return torch.atan2(vector[..., 1], vector[..., 0])


class CircularUniform(TorchDistribution):
    """Uniform distribution on the circle, values in ``[-pi, pi)``.

    Parameters
    ----------
    batch_shape : tuple of int
        Batch shape; use ``.expand`` to change it later.
    """

    arg_constraints: dict = {}
    support = constraints.real
    has_rsample = False

    def __init__(self, batch_shape=torch.Size(), validate_args=None):
        super().__init__(torch.Size(batch_shape), torch.Size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return CircularUniform(batch_shape)

    def sample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        return (torch.rand(shape) * 2 - 1) * math.pi

    def log_prob(self, value):
        return torch.full_like(value, -math.log(2 * math.pi)).expand(
            torch.broadcast_shapes(value.shape, self.batch_shape)
        )


class ProjectedNormalAngle(TorchDistribution):
    """The angle of a projected normal vector on the unit circle.

    If ``v ~ Normal(concentration, I_2)`` then ``angle = atan2(v_y, v_x)``. The
    mean direction is ``concentration / |concentration|``; the spread shrinks as
    ``|concentration|`` grows (about ``1 / |concentration|`` radians when it is
    large); ``concentration = 0`` is the uniform distribution. Sampling is
    reparameterised, so it works as a variational posterior, and the density is
    Pyro's :class:`~pyro.distributions.ProjectedNormal` density on the circle.

    With ``symmetry = n > 1`` the projected normal describes ``n * angle`` and the
    angle lives in ``[-pi/n, pi/n)``: the natural posterior for a shape with
    n-fold rotational symmetry, whose angle is only defined modulo ``2 pi / n``.
    The density ``n * PN(n * angle)`` is normalised on that interval.

    Parameters
    ----------
    concentration : torch.Tensor
        ``(..., 2)``.
    symmetry : int
        Rotational symmetry order n (1: the whole circle).
    """

    arg_constraints = {"concentration": constraints.real_vector}
    support = constraints.real
    has_rsample = True

    def __init__(self, concentration: torch.Tensor, symmetry: int = 1, validate_args=None):
        if concentration.shape[-1:] != (2,):
            raise ValueError(
                f"concentration must have a last dimension of 2, got {tuple(concentration.shape)}"
            )
        if int(symmetry) != symmetry or symmetry < 1:
            raise ValueError(f"symmetry must be a positive integer, got {symmetry}")
        self.concentration = concentration
        self.symmetry = int(symmetry)
        self._pn = dist.ProjectedNormal(concentration)
        super().__init__(concentration.shape[:-1], torch.Size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return ProjectedNormalAngle(
            self.concentration.expand(batch_shape + (2,)), symmetry=self.symmetry
        )

    @property
    def mean_direction(self) -> torch.Tensor:
        """Angle of the concentration vector (divided by the symmetry order), radians."""
        return vector_to_angle(self.concentration) / self.symmetry

    @property
    def circular_scale(self) -> torch.Tensor:
        """Approximate angular spread, ``1 / (n |concentration|)`` radians."""
        return 1.0 / (self.symmetry * self.concentration.norm(dim=-1).clamp_min(1e-6))

    def rsample(self, sample_shape=torch.Size()):
        return vector_to_angle(self._pn.rsample(sample_shape)) / self.symmetry

    def log_prob(self, value):
        n = self.symmetry
        lp = self._pn.log_prob(angle_to_vector(n * value))
        return lp + math.log(n) if n > 1 else lp
