"""Circular priors and helpers for angle sites."""

from pyro.distributions import VonMises

from .circular import (
    CircularUniform,
    ProjectedNormalAngle,
    angle_to_vector,
    vector_to_angle,
    wrap_angle,
)

__all__ = [
    "CircularUniform",
    "ProjectedNormalAngle",
    "VonMises",
    "angle_to_vector",
    "vector_to_angle",
    "wrap_angle",
]
