"""Diffraction-specific tools: radial normalisation, orientation search, phase retrieval,
2D classification of sparse photon frames."""

from ..primitives.radial import RadialNormalizer, radial_profile, radius_map
from .classify2d import (
    Classify2DResult,
    bootstrap_classify2d,
    classify2d,
    classify2d_model,
    rotation_angles,
)
from .orientation import OrientationSearch
from .phasing import aligned_correlation, autocorrelation_support, particle_volume, phase_retrieval

__all__ = [
    "Classify2DResult",
    "OrientationSearch",
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
