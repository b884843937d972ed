"""Moved to :mod:`pyrolatent.primitives.radial`; this path forwards for one release."""

from .._deprecated import forward

__getattr__ = forward(
    __name__,
    {
        name: "pyrolatent.primitives.radial"
        for name in ("RadialNormalizer", "radial_profile", "radius_map")
    },
)
