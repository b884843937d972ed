"""Moved to :mod:`pyrolatent.primitives.angles`; this path forwards for one release."""

from .._deprecated import forward

__getattr__ = forward(
    __name__,
    {
        name: "pyrolatent.primitives.angles"
        for name in (
            "check_order",
            "wrap_angle",
            "symmetric_difference",
            "calibrate_offset",
            "apply_calibration",
            "angle_errors",
            "fraction_within",
            "evaluate_angles",
        )
    },
)
