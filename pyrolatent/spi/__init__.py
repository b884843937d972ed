"""Diffraction-specific tools: radial normalisation, orientation search, phase retrieval."""

from .orientation import OrientationSearch
from .phasing import aligned_correlation, autocorrelation_support, particle_volume, phase_retrieval
from .radial import RadialNormalizer, radial_profile, radius_map

__all__ = [
    "OrientationSearch",
    "RadialNormalizer",
    "aligned_correlation",
    "autocorrelation_support",
    "particle_volume",
    "phase_retrieval",
    "radial_profile",
    "radius_map",
]
