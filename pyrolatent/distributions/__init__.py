"""Circular priors and helpers for angle sites; the pixel likelihood of images in [0, 1]."""

from pyro.distributions import VonMises

from .circular import (
    CircularUniform,
    ProjectedNormalAngle,
    angle_to_vector,
    vector_to_angle,
    wrap_angle,
)
from .grid_angle import GridAngle
from .pixel_bernoulli import PixelBernoulli

__all__ = [
    "CircularUniform",
    "GridAngle",
    "PixelBernoulli",
    "ProjectedNormalAngle",
    "VonMises",
    "angle_to_vector",
    "vector_to_angle",
    "wrap_angle",
]
