"""Diffraction-specific tools: radial normalisation, orientation search (CC, and the
Poisson posterior of :func:`poisson_orientations`), phase retrieval, 2D classification
of sparse photon frames, and 3D EMC (:mod:`pyrolatent.spi.emc`)."""

from ..primitives.radial import RadialNormalizer, radial_profile, radius_map
from .classify2d import (
    Classify2DResult,
    bootstrap_classify2d,
    classify2d,
    classify2d_model,
    rotation_angles,
)
from .emc import poisson_orientations
from .orientation import OrientationSearch
from .phasing import aligned_correlation, autocorrelation_support, particle_volume, phase_retrieval

__all__ = [
    "Classify2DResult",
    "OrientationSearch",
    "poisson_orientations",
    "bootstrap_classify2d",
    "classify2d",
    "classify2d_model",
    "rotation_angles",
    "RadialNormalizer",
    "aligned_correlation",
    "autocorrelation_support",
    "particle_volume",
    "phase_retrieval",
    "radial_profile",
    "radius_map",
]
