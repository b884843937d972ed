"""Circular priors and helpers for angle sites."""

from pyro.distributions import VonMises

from .circular import (
    CircularUniform,
    ProjectedNormalAngle,
    angle_to_vector,
    vector_to_angle,
    wrap_angle,
)
from .grid_angle import GridAngle

__all__ = [
    "CircularUniform",
    "GridAngle",
    "ProjectedNormalAngle",
    "VonMises",
    "angle_to_vector",
    "vector_to_angle",
    "wrap_angle",
]
